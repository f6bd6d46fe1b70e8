"""Rank correlation of indicators with NB201 ground-truth accuracy."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau, spearmanr

from micronas import __version__
from micronas.bench.table import NB201Table, check_task
from micronas.errors import MicronasError
from micronas.proxies import ProxySettings, score_many
from micronas.spaces import get_space
from micronas.spaces.nb201 import NUM_ARCHS, NB201Arch
from micronas.tasks import Task


def sample_archs(n: int | None, seed: int) -> list[NB201Arch]:
    """``n`` distinct architectures drawn with ``seed`` (all 15,625 in index order if None)."""
    if n is None:
        return [NB201Arch.from_index(i) for i in range(NUM_ARCHS)]
    if n < 1:
        raise MicronasError(f"--sample must be a positive number of architectures, got {n}")
    n = min(n, NUM_ARCHS)
    idx = np.random.default_rng(seed).choice(NUM_ARCHS, size=n, replace=False)
    return [NB201Arch.from_index(int(i)) for i in idx]


def correlate(table: NB201Table, indicators: Sequence[str], task: Task,
              sample: int | None = 1000, seed: int = 0, workers: int = 1,
              cache_path: str | Path | None = None,
              progress: Callable[[int], None] | None = None,
              archs: Sequence[NB201Arch] | None = None,
              settings: ProxySettings | None = None) -> dict[str, Any]:
    """Spearman rho and Kendall tau of each indicator with test accuracy on ``task``."""
    check_task(task)
    if workers < 1:
        raise MicronasError(f"--workers must be >= 1, got {workers}")
    archs = list(archs) if archs is not None else sample_archs(sample, seed)
    settings = settings or ProxySettings()
    t0 = time.perf_counter()
    scores = score_many(get_space("nb201"), archs, task, indicators, seed, settings,
                        None if cache_path is None else str(cache_path), f"process:{workers}",
                        progress)
    wall = time.perf_counter() - t0
    acc = np.array([table.acc(a, task) for a in archs])
    out: dict[str, Any] = {"n": len(archs), "dataset": task.name, "seed": seed, "indicators": {},
                           "wall_seconds": wall, "settings": settings.__dict__,
                           "settings_hash": settings.key(), "version": __version__,
                           "workers": workers}
    for name in indicators:
        vals = np.array([s[name].value for s in scores])
        rho = spearmanr(vals, acc).statistic if len(archs) > 2 else float("nan")
        tau = kendalltau(vals, acc).statistic if len(archs) > 2 else float("nan")
        flagged = sum(1 for s in scores if s[name].flags)
        out["indicators"][name] = {
            "spearman": None if not np.isfinite(rho) else float(rho),
            "kendall": None if not np.isfinite(tau) else float(tau),
            "seconds_per_arch": float(np.mean([s[name].seconds for s in scores])),
            "flagged": flagged,
        }
    return out
