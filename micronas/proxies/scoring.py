"""Scoring architectures with registered indicators: canonical representatives, the results
cache, worker processes, and population-level combinations (``tenas``)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from micronas.errors import MicronasError
from micronas.proxies.registry import IndicatorValue, ProxySettings, get_indicator
from micronas.spaces.nb201 import NB201Arch, NB201Space
from micronas.spaces.nb201_ir import EdgeOps
from micronas.store import ResultStore

TENAS_PARTS = ("ntk_cond", "linear_regions")


@dataclass(frozen=True)
class Score:
    """One indicator value for one architecture. ``seconds``: compute time (0 if unknown)."""

    indicator: str
    value: float
    flags: tuple[str, ...] = ()
    seconds: float = 0.0
    cached: bool = False


@cache
def _representatives() -> dict[str, NB201Arch]:
    reps: dict[str, NB201Arch] = {}
    for a in NB201Space().enumerate():  # index order: the first seen has the lowest index
        reps.setdefault(a.iso_key(), a)
    return reps


def canonical(arch: NB201Arch) -> NB201Arch:
    """The lowest-index architecture computing the same function as ``arch``.

    Indicators are computed on it, so isomorphic architectures get identical values and
    share cache entries."""
    return _representatives()[arch.iso_key()]


def expand(indicators: Sequence[str]) -> list[str]:
    """The per-architecture indicators needed for ``indicators`` (``tenas`` needs its parts)."""
    out: list[str] = []
    for name in indicators:
        parts = TENAS_PARTS if get_indicator(name).population else (name,)
        out.extend(p for p in parts if p not in out)
    return out


def compute(name: str, cell: NB201Arch | EdgeOps, s: ProxySettings, seed: int) -> IndicatorValue:
    """One per-network indicator of an architecture or a supernet (op sets per edge), checked:
    a non-finite value is a bug and raises rather than reach a ranking."""
    ind = get_indicator(name)
    if ind.fn is None:
        raise MicronasError(f"indicator {name!r} is defined over a set, not one network")
    v = ind.fn(cell, s, seed)
    if not np.isfinite(v.value):
        raise MicronasError(f"indicator {name} returned {v.value} for {cell}: a bug, report it")
    return IndicatorValue(float(v.value), v.flags, v.extra)


def score_arch(arch: NB201Arch, indicators: Sequence[str], seed: int = 0,
               settings: ProxySettings | None = None,
               store: ResultStore | None = None) -> dict[str, Score]:
    """Per-architecture indicators of ``arch`` (population ones are skipped)."""
    s = settings or ProxySettings()
    s.validate()
    rep = canonical(arch)
    key = rep.iso_key()
    out: dict[str, Score] = {}
    for name in expand(indicators):
        hit = store.get(key, name, s.key(), seed) if store else None
        if hit is not None:
            out[name] = Score(name, hit[0], hit[1], hit[2], True)
            continue
        t0 = time.perf_counter()
        v = compute(name, rep, s, seed)
        dt = time.perf_counter() - t0
        out[name] = Score(name, v.value, tuple(v.flags), dt, False)
        if store:
            store.put(key, name, s.key(), seed, float(v.value), tuple(v.flags), dt)
    return out


def combine_population(scores: list[dict[str, Score]], indicators: Sequence[str]) -> None:
    """Add population indicators in place: ``tenas`` = rank of -kappa + rank of R over the
    set (average ranks; higher is better), TE-NAS's rank combination."""
    if "tenas" not in indicators or not scores:
        return
    kappa = np.array([s["ntk_cond"].value for s in scores])
    regions = np.array([s["linear_regions"].value for s in scores])
    total = rankdata(-kappa) + rankdata(regions)
    for s, t in zip(scores, total, strict=True):
        s["tenas"] = Score("tenas", float(t),
                           s["ntk_cond"].flags + s["linear_regions"].flags,
                           s["ntk_cond"].seconds + s["linear_regions"].seconds,
                           s["ntk_cond"].cached and s["linear_regions"].cached)


_WORKER: dict[str, object] = {}


def _init_worker(threads: int, cache_path: str | None) -> None:
    import torch

    torch.set_num_threads(threads)
    _WORKER["store"] = ResultStore(cache_path) if cache_path else None


def _work(args: tuple[str, tuple[str, ...], int, ProxySettings]) -> dict[str, Score]:
    arch, names, seed, settings = args
    return score_arch(NB201Arch.from_string(arch), names, seed, settings,
                      _WORKER.get("store"))  # type: ignore[arg-type]


def worker_pool(workers: int, cache_path: str | None = None) -> ProcessPoolExecutor:
    """``workers`` spawned processes sharing the cores (torch threads = cores // workers),
    each with the results cache at ``cache_path`` (if any)."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    return ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                               initializer=_init_worker, initargs=(threads, cache_path))


def score_many(archs: Sequence[NB201Arch], indicators: Sequence[str], seed: int = 0,
               settings: ProxySettings | None = None, cache_path: str | Path | None = None,
               workers: int = 1,
               progress: Callable[[int], None] | None = None) -> list[dict[str, Score]]:
    """Score ``archs`` (in order) with ``workers`` processes; population indicators last."""
    s = settings or ProxySettings()
    s.validate()
    if workers < 1:
        raise MicronasError(f"--workers must be >= 1, got {workers}")
    names = tuple(expand(indicators))
    path = str(cache_path) if cache_path is not None else None
    results: list[dict[str, Score]] = []
    if workers == 1:
        store = ResultStore(path) if path else None
        for a in archs:
            results.append(score_arch(a, names, seed, s, store))
            if progress:
                progress(1)
    else:
        if path:
            ResultStore(path).close()  # fail fast on an unusable cache
        with worker_pool(workers, path) as ex:
            for r in ex.map(_work, [(str(a), names, seed, s) for a in archs], chunksize=4):
                results.append(r)
                if progress:
                    progress(1)
    combine_population(results, indicators)
    return results
