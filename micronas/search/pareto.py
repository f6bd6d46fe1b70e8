"""The Pareto front of a search: lower latency against a higher indicator part of the
objective, over the complete architectures the search evaluated (all feasible: strategies
evaluate nothing the budget filter rejects)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from micronas.search.objective import goodness, ranks


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats in both lower x and higher y, by increasing x."""
    front: list[tuple[float, float]] = []
    best = float("-inf")
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def evaluated_archs(history: list[dict[str, Any]], arch: str, indicators: dict[str, float],
                    latency_ms: float) -> list[dict[str, Any]]:
    """The complete architectures a search evaluated (never pruning's supernets), each
    once, with the chosen one (``arch``) last."""
    items: dict[str, dict[str, Any]] = {}
    for h in history:
        for x in h.get("refine", [h]):
            if "arch" in x and "latency_ms" in x:
                items.setdefault(x["arch"], x)
    chosen = {**items.pop(arch, {}), "arch": arch, **indicators, "latency_ms": latency_ms}
    return [*items.values(), chosen]


def indicator_part(items: list[dict[str, Any]], mix: Sequence[tuple[str, float]]) -> list[float]:
    """Each item's indicator part of the objective: percentile ranks weighted by share."""
    if len(items) <= 1:
        return [1.0] * len(items)
    y = sum(share * ranks(goodness(n, [x[n] for x in items]), "percentile") for n, share in mix)
    return [float(v) for v in y]


def front(history: list[dict[str, Any]], arch: str, indicators: dict[str, float],
          latency_ms: float, mix: Sequence[tuple[str, float]]) -> list[dict[str, Any]]:
    """The front, by increasing latency; each point with its costs where known."""
    items = evaluated_archs(history, arch, indicators, latency_ms)
    ys = indicator_part(items, mix)
    on = set(pareto_front([(x["latency_ms"], y) for x, y in zip(items, ys, strict=True)]))
    out = []
    for x, y in zip(items, ys, strict=True):
        if (x["latency_ms"], y) in on:
            on.discard((x["latency_ms"], y))
            keep = {k: x[k] for k in ("peak_sram_bytes", "flash_bytes") if k in x}
            out.append({"arch": x["arch"], "latency_ms": x["latency_ms"], "score": y,
                        "chosen": x["arch"] == arch, **keep})
    return sorted(out, key=lambda d: d["latency_ms"])
