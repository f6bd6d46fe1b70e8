"""Objectives: weights, rank combination, and the indicators a search evaluates."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from micronas.errors import BudgetError


@dataclass(frozen=True)
class Weights:
    """Hybrid objective weights. w_kappa = w_regions = (1 - flops - latency) / 2."""

    latency: float = 0.0
    flops: float = 0.0

    def __post_init__(self) -> None:
        for name, v in (("--latency-weight", self.latency), ("--flops-weight", self.flops)):
            if not (isinstance(v, int | float) and math.isfinite(v) and 0.0 <= v <= 1.0):
                raise BudgetError(f"{name} must be in [0, 1], got {v}")
        if self.latency + self.flops > 1.0 + 1e-12:
            raise BudgetError(f"--latency-weight + --flops-weight must be <= 1, got "
                              f"{self.latency + self.flops:g}")

    @property
    def indicator(self) -> float:
        return (1.0 - self.latency - self.flops) / 2.0


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


def hybrid_scores(kappa: np.ndarray, regions: np.ndarray, flops: np.ndarray,
                  latency: np.ndarray, w: Weights, mode: str) -> np.ndarray:
    """Goodness of single architectures (higher is better): weighted ranks of low kappa,
    many regions, few FLOPs and low latency, ranked within the given set."""
    return (w.indicator * ranks(-np.asarray(kappa), mode) + w.indicator * ranks(regions, mode)
            + w.flops * ranks(-np.asarray(flops), mode)
            + w.latency * ranks(-np.asarray(latency), mode))
