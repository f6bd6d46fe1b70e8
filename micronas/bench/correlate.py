"""Rank correlation of indicators with NB201 ground-truth accuracy: Spearman rho, Kendall tau
and nDCG@k (how well the top of the predicted ranking holds the best networks).

Isomorphic architectures compute the same function: each isomorphism class is scored once
(through its canonical representative; ``--all``: 6,466 classes for 15,625 networks) and
its value given to every member. Scoring goes through the results cache, written as
results arrive, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau, spearmanr

from micronas import __version__
from micronas.bench.table import NB201Table, check_task
from micronas.errors import MicronasError
from micronas.infra.fileio import atomic_write
from micronas.proxies import ProxySettings, score_many
from micronas.spaces import canonical, get_space
from micronas.spaces.nb201 import NUM_ARCHS, NB201Arch
from micronas.tasks import Task

NDCG_K = (10, 100)


def ndcg(scores: Sequence[float], accuracy: Sequence[float], k: int) -> float:
    """nDCG@k of the ranking by ``scores`` (descending; ties keep the input order) with
    gains 2^a - 1 for accuracy a in percent (our reading of VKDNW's nDCG, Tybl & Neumann,
    CVPR 2025: one point of accuracy doubles a network's gain, so it is the very top that
    counts); DCG@k = sum_{i<=k} gain_i /
    log2(i + 1), normalised by the DCG of the ideal order (1 = the k best networks ranked
    first, in order). ``k`` larger than the set is cut to its size."""
    s = np.asarray(scores, dtype=np.float64)
    a = np.asarray(accuracy, dtype=np.float64)
    k = min(int(k), len(a))
    if k < 1:
        raise MicronasError("nDCG needs at least one architecture")
    # gains relative to the best accuracy (2^(a - max)): the same ratios, no overflow
    gain = np.exp2(a - a.max()) - np.exp2(-a.max())
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    order = np.argsort(-s, kind="stable")[:k]
    ideal = np.sort(gain)[::-1][:k]
    return float((gain[order] * disc).sum() / (ideal * disc).sum())


def iso_classes(archs: Sequence[NB201Arch]) -> tuple[list[NB201Arch], list[int]]:
    """(one canonical representative per isomorphism class, in first-seen order; for each
    architecture the position of its class)."""
    space = get_space("nb201")
    reps: list[NB201Arch] = []
    where: dict[str, int] = {}
    member = []
    for a in archs:
        key = space.iso_key(a)
        if key not in where:
            where[key] = len(reps)
            reps.append(canonical(space, a))
        member.append(where[key])
    return reps, member


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
              settings: ProxySettings | None = None,
              keep_values: bool = False, executor: str | None = None) -> dict[str, Any]:
    """Spearman rho, Kendall tau and nDCG@{10, 100} of each indicator with test accuracy on
    ``task`` (population indicators over the whole sample). ``keep_values``: also return
    ``rows`` (index, accuracy and every indicator's value and flags per architecture).
    ``executor``: where scoring runs (:func:`micronas.infra.execution.make_executor`; default
    ``process:workers``)."""
    check_task(task)
    if workers < 1:
        raise MicronasError(f"--workers must be >= 1, got {workers}")
    archs = list(archs) if archs is not None else sample_archs(sample, seed)
    settings = settings or ProxySettings()
    t0 = time.perf_counter()
    reps, member = iso_classes(archs)
    step = None
    if progress is not None:  # count every member of a class as its representative is done
        sizes = np.bincount(member, minlength=len(reps))
        done = [0]

        def step(n: int) -> None:
            for _ in range(n):
                progress(int(sizes[done[0]]))
                done[0] += 1
    rep_scores = score_many(get_space("nb201"), reps, task, indicators, seed, settings,
                            None if cache_path is None else str(cache_path),
                            executor or f"process:{workers}", step)
    scores = [rep_scores[m] for m in member]
    wall = time.perf_counter() - t0
    acc = np.array([table.acc(a, task) for a in archs])
    out: dict[str, Any] = {"n": len(archs), "classes": len(reps), "dataset": task.name,
                           "seed": seed, "indicators": {},
                           "wall_seconds": wall, "settings": settings.__dict__,
                           "settings_hash": settings.key(), "version": __version__,
                           "workers": workers, "executor": executor or f"process:{workers}"}
    for name in indicators:
        vals = np.array([s[name].value for s in scores])
        rho = spearmanr(vals, acc).statistic if len(archs) > 2 else float("nan")
        tau = kendalltau(vals, acc).statistic if len(archs) > 2 else float("nan")
        flagged = sum(1 for s in scores if s[name].flags)
        out["indicators"][name] = {
            "spearman": None if not np.isfinite(rho) else float(rho),
            "kendall": None if not np.isfinite(tau) else float(tau),
            **{f"ndcg@{k}": ndcg(vals, acc, k) for k in NDCG_K},
            # per scored network (one per isomorphism class)
            "seconds_per_arch": float(np.mean([s[name].seconds for s in rep_scores])),
            "flagged": flagged,
        }
    if keep_values:
        out["rows"] = [{"index": a.index, "acc": float(y),
                        **{n: sc.value for n, sc in s.items()},
                        "flags": {n: list(sc.flags) for n, sc in s.items() if sc.flags}}
                       for a, y, s in zip(archs, acc, scores, strict=True)]
    return out


def write_table(res: dict[str, Any], path: str | Path) -> None:
    """``res`` (with its ``rows``) as JSON at ``path``, gzip-compressed when the name ends in
    ``.gz`` (no timestamp in the gzip header); written atomically."""
    blob = json.dumps(res, indent=None, separators=(",", ":")).encode()
    if str(path).endswith(".gz"):
        blob = gzip.compress(blob, mtime=0)
    atomic_write(Path(path), lambda f: f.write(blob), binary=True)

