"""Scoring candidates with registered indicators: canonical representatives, the results
cache, executors, and population-level combinations (``tenas``).

One path for everything that computes indicators (``micronas score``, ``bench correlate``
and the search's evaluator): :func:`score_batch`. It reads the cache in the driver, sends
what is missing to an executor (serial, or worker processes), and writes the cache in the
driver as results come back: workers compute and return.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np

from micronas.errors import MicronasBug, MicronasError
from micronas.infra.cache import ResultStore
from micronas.infra.execution import SerialExecutor, ThreadExecutor, make_executor
from micronas.infra.stats import rankdata
from micronas.proxies.registry import IndicatorValue, ProxySettings, get_indicator
from micronas.spaces import Candidate, SearchSpace, canonical
from micronas.tasks import Task

TENAS_PARTS = ("ntk_cond", "linear_regions")  # the default parts of register_population


@dataclass(frozen=True)
class Score:
    """One indicator value for one candidate. ``seconds``: compute time (0 if unknown)."""

    indicator: str
    value: float
    flags: tuple[str, ...] = ()
    seconds: float = 0.0
    cached: bool = False


def expand(indicators: Sequence[str]) -> list[str]:
    """The per-candidate indicators needed for ``indicators`` (a population indicator such as
    ``tenas`` needs its parts)."""
    out: list[str] = []
    for name in indicators:
        ind = get_indicator(name)
        parts = ind.parts if ind.population else (ind.name,)
        out.extend(p for p in parts if p not in out)
    return out


def compute(name: str, cand: Candidate, s: ProxySettings, seed: int) -> IndicatorValue:
    """One per-network indicator of a candidate, checked: a non-finite value is a bug and
    raises rather than reach a ranking."""
    ind = get_indicator(name)
    if ind.fn is None:
        raise MicronasError(f"indicator {name!r} is defined over a set, not one network")
    v = ind.fn(cand, s, seed)
    if not np.isfinite(v.value):
        raise MicronasBug(f"indicator {name} returned {v.value} for {cand}")
    return IndicatorValue(float(v.value), v.flags, v.extra)


def representative(cand: Candidate) -> tuple[Candidate, str]:
    """(the candidate indicators are computed on, its cache key): an architecture's
    canonical representative and iso key (isomorphic architectures share values and cache
    entries), a supernet as it is."""
    if cand.supernet:
        return cand, "supernet:" + cand.space.supernet().format(cand.arch)
    rep = canonical(cand.space, cand.arch)
    return Candidate(cand.space, rep, cand.task), cand.space.iso_key(rep)


def _compute_all(cand: Candidate, names: tuple[str, ...], s: ProxySettings, seed: int
                 ) -> dict[str, tuple[IndicatorValue, float]]:
    """Worker job: every named indicator of one candidate, with its compute time."""
    out = {}
    for name in names:
        t0 = time.perf_counter()
        v = compute(name, cand, s, seed)
        out[name] = (v, time.perf_counter() - t0)
    return out


def score_batch(cands: Sequence[Candidate], indicators: Sequence[str], seed: int,
                settings: ProxySettings, store: ResultStore | None = None,
                executor: Executor | None = None,
                progress: Callable[[int], None] | None = None,
                chunksize: int = 1,
                meanwhile: Callable[[], None] | None = None) -> list[dict[str, Score]]:
    """Per-candidate indicators of ``cands`` (in order; population indicators are skipped).

    Cached values are read here; the rest are computed on ``executor`` (serial when None or
    when only one candidate needs computing; a thread executor gets one call per indicator,
    or per group sharing one computation; a broken process pool falls back to serial for
    what is left) and written to ``store`` here, as they arrive. ``meanwhile``: the caller's own
    work, run here once the computations are handed to the executor, before their results
    are collected (it overlaps them on an executor of threads or processes)."""
    names = tuple(expand(indicators))
    key = settings.key()
    out: list[dict[str, Score]] = [{} for _ in cands]
    jobs: list[tuple[int, Candidate, str, tuple[str, ...]]] = []
    for i, c in enumerate(cands):
        rep, iso = representative(c)
        missing = []
        for n in names:
            hit = store.get(c.space.name, c.task.key(), iso, n, key, seed) if store else None
            if hit is None:
                missing.append(n)
            else:
                out[i][n] = Score(n, hit[0], hit[1], hit[2], True)
        if missing:
            jobs.append((i, rep, iso, tuple(missing)))
        elif progress:
            progress(1)

    def take(job: tuple[int, Candidate, str, tuple[str, ...]],
             res: dict[str, tuple[IndicatorValue, float]]) -> None:
        i, rep, iso, _ = job
        for n, (v, dt) in res.items():
            out[i][n] = Score(n, v.value, tuple(v.flags), dt, False)
            if store:
                store.put(rep.space.name, rep.task.key(), iso, n, key, seed, v.value,
                          tuple(v.flags), dt)
        if progress:
            progress(1)

    done = 0
    ex = executor or SerialExecutor()
    if jobs and isinstance(ex, ThreadExecutor):
        # threads: one call per indicator (or group of indicators from one computation), so
        # a candidate's indicators run side by side and the threads drift out of step: one
        # thread's GIL-heavy indicator (synflow's Python) overlaps the other's GIL-free one
        # (the NTK's backward passes), ~15 % faster than a call per candidate
        calls = [(n, job, group) for n, job in enumerate(jobs) for group in _groups(job[3])]
        results = ex.map(_compute_all, [c[1][1] for c in calls], [c[2] for c in calls],
                         [settings] * len(calls), [seed] * len(calls))
        if meanwhile:
            meanwhile()
        merged: list[dict[str, tuple[IndicatorValue, float]]] = [{} for _ in jobs]
        for (n, job, _group), res in zip(calls, results, strict=True):
            merged[n].update(res)
            if len(merged[n]) == len(job[3]):  # the candidate's last group: in order
                take(job, merged[n])
        return _ordered(out, names)
    if len(jobs) > 1 and not isinstance(ex, SerialExecutor):  # one job: here, no round trip
        try:
            results = ex.map(_compute_all, [j[1] for j in jobs], [j[3] for j in jobs],
                             [settings] * len(jobs), [seed] * len(jobs), chunksize=chunksize)
            if meanwhile:
                meanwhile()
                meanwhile = None
            for job, res in zip(jobs, results, strict=False):
                take(job, res)
                done += 1
        except (OSError, BrokenProcessPool):  # no usable worker processes: go serial
            pass
    if meanwhile:
        meanwhile()
    for job in jobs[done:]:
        take(job, _compute_all(job[1], job[3], settings, seed))
    return _ordered(out, names)


def _groups(names: tuple[str, ...]) -> list[tuple[str, ...]]:
    """``names`` in groups computed together: those sharing one computation, else alone."""
    by: dict[str, list[str]] = {}
    for n in names:
        by.setdefault(get_indicator(n).shares or n, []).append(n)
    return [tuple(g) for g in by.values()]


def _ordered(out: list[dict[str, Score]], names: tuple[str, ...]) -> list[dict[str, Score]]:
    """Each candidate's scores in the requested order of names."""
    return [{n: o[n] for n in names} for o in out]


def combine_columns(columns: Sequence[np.ndarray], how: str) -> np.ndarray:
    """Rank combination of value columns, each oriented higher = better: ``rank_sum`` (sum
    of average ranks) or ``log_rank`` (sum of log(rank / N), ranks ascending so the best of
    N gets N: AZ-NAS's non-linear aggregation)."""
    cols = [np.asarray(c, dtype=np.float64) for c in columns]
    if how == "log_rank":
        return sum(np.log(rankdata(c) / len(c)) for c in cols)
    if how == "rank_sum":
        return sum(rankdata(c) for c in cols)
    raise MicronasError(f"unknown rank combination {how!r}")


def combine_population(scores: list[dict[str, Score]], indicators: Sequence[str]) -> None:
    """Add population indicators in place, each over the set: ``rank_sum`` (``tenas``: rank
    of -kappa + rank of R, average ranks, TE-NAS's rank combination) or ``log_rank``
    (``az_nas``: sum of log(rank / N), AZ-NAS's). Higher is better; flags, seconds and the
    cached mark come from the parts."""
    if not scores:
        return
    for name in indicators:
        ind = get_indicator(name)
        if not ind.population:
            continue
        parts = ind.parts
        good = {p: np.array([s[p].value for s in scores]) *
                (1.0 if get_indicator(p).higher_is_better else -1.0) for p in parts}
        total = combine_columns(list(good.values()), ind.combine)
        for s, t in zip(scores, total, strict=True):
            s[name] = Score(name, float(t),
                            tuple(dict.fromkeys(f for p in parts for f in s[p].flags)),
                            sum(s[p].seconds for p in parts),
                            all(s[p].cached for p in parts))


def score_many(space: SearchSpace, archs: Sequence[Any], task: Task, indicators: Sequence[str],
               seed: int = 0, settings: ProxySettings | None = None,
               cache_path: str | None = None, executor: str | Executor = "serial",
               progress: Callable[[int], None] | None = None) -> list[dict[str, Score]]:
    """Score architectures ``archs`` of ``space`` for ``task`` (in order), population
    indicators last. ``executor``: ``"serial"``, ``"process:N"`` or an Executor."""
    s = settings or ProxySettings()
    store = ResultStore(cache_path) if cache_path else None
    ex = make_executor(executor)
    try:
        cands = [Candidate(space, a, task) for a in archs]
        results = score_batch(cands, indicators, seed, s, store, ex, progress, chunksize=4)
    finally:
        if ex is not executor:
            ex.shutdown()
        if store:
            store.close()
    combine_population(results, indicators)
    return results
