"""Search artifacts: result.json, report.md, pareto.png and config.json, each written
atomically (temporary file in the same directory, then rename)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from micronas.fileio import atomic_write
from micronas.search.objective import goodness, ranks
from micronas.search.run import SearchConfig, SearchResult

LABELS = {"ntk_cond": "NTK condition number", "linear_regions": "linear regions"}


def indicator_text(values: dict[str, float]) -> str:
    """``NTK condition number 5823, linear regions 883.0, synflow 113.4``."""
    return ", ".join(f"{LABELS.get(n, n)} {v:.4g}" for n, v in values.items())


def _budget(value: float | None, unit: str) -> str:
    return "none" if value is None else f"{value:g} {unit}"


def arch_label(r: SearchResult) -> str:
    """``index 6111`` for spaces with an index, else the architecture string."""
    return f"index {r.index}" if r.index is not None else r.arch


def _markdown(r: SearchResult) -> str:
    c = r.config
    h, w = r.input_shape[1:]
    lines = [
        "# micronas search result", "",
        f"- architecture: `{r.arch}`" + (f" ({r.space} index {r.index})" if r.index is not None
                                         else f" ({r.space} space)"),
        f"- device: {c['device']}, task: {r.task} ({h}x{w}x{r.input_shape[0]}, {r.classes} "
        f"classes), strategy: {c['strategy']}, seed: {r.seed}",
        f"- weights: latency {c['latency_weight']}, FLOPs {c['flops_weight']}, indicators "
        f"`{c['indicators']}` (rank mode {c['rank_mode']})",
        f"- budgets: latency {_budget(c['max_latency_ms'], 'ms')}, SRAM "
        f"{_budget(c['max_sram_kb'], 'KB')}, flash {_budget(c['max_flash_kb'], 'KB')} (plus the "
        "device's own memory)"
        + (f"; pruning keeps >= {c['fill']:g} of a binding budget's capacity"
           if c["strategy"] == "prune" and c["fill"] else ""), "",
        "| quantity | value |", "|---|---|",
        *[f"| {LABELS.get(n, n)} | {v:.4g} |" for n, v in r.indicators.items()],
        f"| latency | {r.latency_ms:.2f} ms |",
        f"| peak SRAM | {r.peak_sram_bytes / 1024:.1f} KB |",
        f"| flash | {r.flash_bytes / 1024:.1f} KB |",
        f"| MACs | {r.macs:,} |",
        f"| params | {r.params:,} |",
        f"| fits | {'yes' if r.fits else 'no'} |",
        f"| search time | {r.search_seconds:.1f} s ({r.evaluations} indicator evaluations) |",
    ]
    if r.accuracy is not None:
        lines += [f"| true test accuracy (ground truth) | {r.accuracy:.2f} % |",
                  f"| best accuracy under the same budgets | {r.oracle_accuracy:.2f} % "
                  f"(`{r.oracle_arch}`) |"]
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in r.versions.items()), ""]
    return "\n".join(lines)


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats in both lower x and higher y, by increasing x."""
    front: list[tuple[float, float]] = []
    best = float("-inf")
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def _plot(r: SearchResult, path: Path, points: list[tuple[float, float]],
          ylabel: str, chosen_y: float, note: str | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    if points:
        xs, ys = zip(*points, strict=True)
        ax.scatter(xs, ys, s=6, c="0.65", label=f"architectures ({len(points)})")
        fx, fy = zip(*pareto_front(points), strict=True)
        ax.step(fx, fy, where="post", c="tab:blue", lw=1.2, label="Pareto front")
    ax.scatter([r.latency_ms], [chosen_y], marker="*", s=180, c="tab:red", zorder=5,
               label=f"chosen ({arch_label(r)[:24]})")
    if r.config.get("max_latency_ms"):
        ax.axvline(r.config["max_latency_ms"], ls="--", c="tab:orange", lw=1,
                   label="latency budget")
    xs_all = [p[0] for p in points] + [r.latency_ms]
    if max(xs_all) / min(xs_all) > 3:  # a log axis only where it spans enough
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"latency on {r.config['device']} (ms, cost model)")
    ax.set_ylabel(ylabel)
    if note:
        ax.set_title(note, fontsize=8)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"), binary=True)
    plt.close(fig)


def evaluated_archs(r: SearchResult) -> list[dict[str, Any]]:
    """The complete architectures a search evaluated (never pruning's supernets), each
    once, with the chosen one last."""
    items: dict[str, dict[str, Any]] = {}
    for h in r.history:
        for x in h.get("refine", [h]):
            if "arch" in x and "latency_ms" in x:
                items.setdefault(x["arch"], x)
    items.pop(r.arch, None)
    return [*items.values(), {"arch": r.arch, **r.indicators, "latency_ms": r.latency_ms}]


def _indicator_part(r: SearchResult, items: list[dict[str, Any]]) -> list[float]:
    """Each item's indicator part of the objective: percentile ranks weighted by share."""
    mix = SearchConfig(**r.config).weights().indicators
    if len(items) <= 1:
        return [1.0] * len(items)
    y = sum(share * ranks(goodness(n, [x[n] for x in items]), "percentile") for n, share in mix)
    return [float(v) for v in y]


def front(r: SearchResult) -> list[dict[str, Any]]:
    """The Pareto front (lower latency, higher indicator part of the objective) of the
    complete architectures the search evaluated (all feasible: strategies evaluate nothing
    else), by increasing latency; each with its costs when known."""
    items = evaluated_archs(r)
    ys = _indicator_part(r, items)
    pts = {(x["latency_ms"], y) for x, y in zip(items, ys, strict=True)}
    on = set(pareto_front(sorted(pts)))
    out = []
    for x, y in zip(items, ys, strict=True):
        if (x["latency_ms"], y) in on:
            on.discard((x["latency_ms"], y))
            keep = {k: x[k] for k in ("peak_sram_bytes", "flash_bytes") if k in x}
            out.append({"arch": x["arch"], "latency_ms": x["latency_ms"], "score": y,
                        "chosen": x["arch"] == r.arch, **keep})
    return sorted(out, key=lambda d: d["latency_ms"])


def plot_points(r: SearchResult, table: Any, all_costs: dict | None
                ) -> tuple[list[tuple[float, float]], str, float, str | None]:
    """(points, y label, chosen y, note): true accuracy of every architecture when a
    ground-truth table is known, else the indicator part of the objective (each
    indicator's percentile rank, weighted by its share) over the complete architectures
    the search evaluated, the chosen one included."""
    if table is not None and all_costs is not None:
        from micronas.tasks import resolve_task

        task = resolve_task(r.task)
        pts = [(c.latency_ms, table.acc(a, task)) for a, c in all_costs.items()]
        return pts, f"{r.task} test accuracy (%, ground truth)", float(r.accuracy), None
    items = evaluated_archs(r)
    y = _indicator_part(r, items)
    pts = [(x["latency_ms"], v) for x, v in zip(items, y, strict=True)]
    note = None
    if len(items) == 1:
        note = (f"{r.config['strategy']} evaluated no other complete architecture (pruning "
                "scores supernets); --strategy evolution or a ground-truth table draws a front")
    elif (pts[-1][0], pts[-1][1]) not in pareto_front(pts):
        note = ("the chosen architecture maximises the whole objective (with latency and FLOPs "
                "weights and ranks over every evaluation), not this indicator part alone")
    return pts[:-1], "indicator part of the objective (weighted ranks)", pts[-1][1], note


def write_outputs(r: SearchResult, out: Path, points: list[tuple[float, float]],
                  ylabel: str, chosen_y: float, note: str | None = None) -> list[Path]:
    """Write the four artifacts into ``out``; returns their paths."""
    files = [out / "config.json", out / "result.json", out / "report.md", out / "pareto.png"]
    atomic_write(files[0], lambda f: json.dump(r.config, f, indent=2))
    atomic_write(files[1], lambda f: json.dump(r.to_json(), f, indent=2, default=str))
    atomic_write(files[2], lambda f: f.write(_markdown(r)))
    _plot(r, files[3], points, ylabel, chosen_y, note)
    return files
