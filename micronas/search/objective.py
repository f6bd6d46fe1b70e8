"""Objectives: weights, rank combination, and the indicators a search evaluates."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from micronas.errors import BudgetError, MicronasError
from micronas.infra.stats import rankdata

#: TE-NAS's indicators, equal shares: the published method's objective.
TENAS_MIX = "ntk_cond,linear_regions"
#: Ours, the default: TE-NAS's two plus synflow with half of the indicator weight
#: (docs/search.md, "Indicators of the objective"; measured in benchmarks/search_nb201.py).
DEFAULT_MIX = "ntk_cond,linear_regions,synflow:2"


def parse_mix(text: str) -> tuple[tuple[str, float], ...]:
    """``"name[:share],..."`` -> ((name, share), ...) with shares summing to 1.

    Shares are relative (``ntk_cond,linear_regions,synflow:2`` gives 1/4, 1/4, 1/2); a name
    without one counts 1. Population indicators (rank combinations such as ``tenas``) are
    refused: the search does its own rank combination."""
    from micronas.proxies.registry import get_indicator  # torch: only when indicators run

    items: list[tuple[str, float]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, share = part.partition(":")
        name = name.strip()
        try:
            w = float(share) if share.strip() else 1.0
        except ValueError:
            raise MicronasError(f"--indicators: share of {name!r} must be a number, got "
                                f"{share!r}; e.g. ntk_cond,linear_regions,synflow:2") from None
        if not (math.isfinite(w) and w > 0):
            raise MicronasError(f"--indicators: share of {name!r} must be > 0, got {share!r}")
        name = get_indicator(name).name  # validated, in its registered spelling
        if get_indicator(name).population:
            raise MicronasError(f"--indicators: {name!r} is a rank combination over a set; "
                                f"name its parts instead (e.g. {TENAS_MIX})")
        if name in (n for n, _ in items):
            raise MicronasError(f"--indicators: {name!r} is named twice")
        items.append((name, w))
    if not items:
        raise MicronasError(f"--indicators is empty; e.g. {TENAS_MIX}")
    total = sum(w for _, w in items)
    return tuple((n, w / total) for n, w in items)


@dataclass(frozen=True)
class Weights:
    """Hybrid objective weights: latency, FLOPs, and the indicator part 1 - latency - flops
    split among ``indicators`` by their shares (TE-NAS: kappa and R, half each)."""

    latency: float = 0.0
    flops: float = 0.0
    indicators: tuple[tuple[str, float], ...] = (("ntk_cond", 0.5), ("linear_regions", 0.5))

    def __post_init__(self) -> None:
        for name, v in (("--latency-weight", self.latency), ("--flops-weight", self.flops)):
            if not (isinstance(v, int | float) and math.isfinite(v) and 0.0 <= v <= 1.0):
                raise BudgetError(f"{name} must be in [0, 1], got {v}")
        if self.latency + self.flops > 1.0 + 1e-12:
            raise BudgetError(f"--latency-weight + --flops-weight must be <= 1, got "
                              f"{self.latency + self.flops:g}")

    @property
    def indicator(self) -> float:
        return 1.0 - self.latency - self.flops

    def names(self) -> list[str]:
        return [n for n, _ in self.indicators]


def ranks(values: np.ndarray, mode: str) -> np.ndarray:
    """Ranks of ``values`` (ascending: the smallest value gets the lowest rank).

    ``dense``: MicroNAS's dense ranks 0, 1, 2, ... (ties share; few distinct values give a
    short range, which lets the indicator ranks swamp a coarse hardware term).
    ``percentile`` (ours): average ranks scaled to [0, 1], so every criterion spans the same
    range whatever its number of ties, and a weight acts in proportion.
    """
    v = np.asarray(values, dtype=float)
    if len(v) <= 1:
        return np.zeros(len(v))
    if mode == "dense":
        return rankdata(v, method="dense") - 1.0
    if mode == "percentile":
        return (rankdata(v, method="average") - 1.0) / (len(v) - 1.0)
    raise BudgetError(f"unknown rank mode {mode!r}; use percentile or dense")


def goodness(name: str, values: Sequence[float]) -> np.ndarray:
    """``values`` of indicator ``name`` oriented so that higher is better."""
    from micronas.proxies.registry import get_indicator

    v = np.asarray(values, dtype=float)
    return v if get_indicator(name).higher_is_better else -v


def hybrid_scores(values: Sequence[Mapping[str, float]], macs: Sequence[float],
                  latency: Sequence[float], w: Weights, mode: str) -> np.ndarray:
    """Goodness of a set of networks (higher is better): weighted ranks, within the set, of
    each indicator (oriented by its registry entry), few MACs and low latency."""
    s = w.flops * ranks(-np.asarray(macs, dtype=float), mode)
    s = s + w.latency * ranks(-np.asarray(latency, dtype=float), mode)
    for name, share in w.indicators:
        s = s + w.indicator * share * ranks(goodness(name, [v[name] for v in values]), mode)
    return s
