"""Rank correlation of indicators with a benchmark's ground-truth accuracy (NB201's,
NAS-Bench-Macro's): Spearman rho, Kendall tau and nDCG@k (how well the top of the predicted
ranking holds the best networks).

Isomorphic architectures compute the same function: each isomorphism class is scored once
(through its canonical representative; ``--all``: NB201's 6,466 classes for 15,625 networks,
NAS-Bench-Macro's 3,969 classes) and its value given to every member. Scoring goes through
the results cache, written as results arrive, so an interrupted run resumes where it
stopped; with a table file it also resumes from the table (``resume``), which can travel.
"""

from __future__ import annotations

import gzip
import json
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy.stats import kendalltau, spearmanr

from micronas import __version__
from micronas.errors import DataError, MicronasError
from micronas.infra.cache import ResultStore
from micronas.infra.execution import make_executor
from micronas.infra.fileio import atomic_write
from micronas.proxies import ProxySettings
from micronas.proxies.scoring import Score, combine_population, expand, score_batch
from micronas.spaces import AnySpace, Candidate, canonical, get_space
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


class Truth(Protocol):
    """A ground-truth table ``correlate`` reads (NB201's, NAS-Bench-Macro's)."""

    path: str
    space: str

    def check_task(self, task: Task) -> None: ...

    def acc(self, arch: Any, task: Task) -> float: ...

    def runs(self, arch: Any, task: Task) -> tuple[float, ...] | None: ...

    def archs(self, sample: int | None, seed: int) -> list[Any]: ...

    def row(self, arch: Any, task: Task) -> dict[str, object]: ...


def iso_classes(archs: Sequence[Any], space: str | AnySpace = "nb201"
                ) -> tuple[list[Any], list[int]]:
    """(one canonical representative per isomorphism class, in first-seen order; for each
    architecture the position of its class)."""
    space = get_space(space)
    reps: list[Any] = []
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


def read_table(path: str | Path) -> dict[str, Any]:
    """A table written by :func:`write_table` (gzip-compressed when its name ends in .gz)."""
    try:
        blob = Path(path).read_bytes()
        if str(path).endswith(".gz"):
            blob = gzip.decompress(blob)
        res = json.loads(blob)
    except (OSError, EOFError, gzip.BadGzipFile, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read scored table {path} ({type(e).__name__}); give a table "
                        "written by bench correlate --table") from None
    if not isinstance(res, dict) or not isinstance(res.get("rows"), list):
        raise DataError(f"{path} is not a table written by bench correlate --table (no rows)")
    return res


def row_arch(space: AnySpace, row: dict[str, Any]) -> Any:
    """The architecture of a table's row (its ``arch`` string, or NB201's ``index``)."""
    return space.parse(str(row["arch"]) if "arch" in row else str(row["index"]))


def _resumable(path: str | Path, space: AnySpace, task: Task, seed: int,
               settings: ProxySettings, names: Sequence[str]) -> dict[str, dict[str, Score]]:
    """iso key -> the per-network scores a table at ``path`` already holds (every one of
    ``names``), after checking it was scored the same way."""
    old = read_table(path)
    want = {"space": space.name, "dataset": task.name, "seed": seed,
            "settings_hash": settings.key()}
    have = {"space": old.get("space", "nb201"), "dataset": old.get("dataset"),
            "seed": old.get("seed"), "settings_hash": old.get("settings_hash")}
    for k, v in want.items():
        if have[k] != v:
            raise DataError(f"cannot resume {path}: it was scored with {k} {have[k]!r}, this run "
                            f"uses {v!r} (use another --table, or the same settings)")
    out: dict[str, dict[str, Score]] = {}
    for row in old["rows"]:
        key = space.iso_key(row_arch(space, row))
        if key in out or not all(n in row for n in names):
            continue
        flags, secs = row.get("flags", {}), row.get("seconds", {})
        out[key] = {n: Score(n, float(row[n]), tuple(flags.get(n, ())),
                             float(secs.get(n, 0.0)), True) for n in names}
    return out


def _summary(indicators: Sequence[str], scores: Sequence[dict[str, Score]], acc: np.ndarray,
             rep_scores: Sequence[dict[str, Score]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    n = len(acc)
    for name in indicators:
        vals = np.array([s[name].value for s in scores])
        with warnings.catch_warnings():  # a constant column has no rank correlation: n/a
            warnings.simplefilter("ignore")
            rho = spearmanr(vals, acc).statistic if n > 2 else float("nan")
            tau = kendalltau(vals, acc).statistic if n > 2 else float("nan")
        secs = [s[name].seconds for s in rep_scores if not s[name].cached]
        out[name] = {
            "spearman": None if not np.isfinite(rho) else float(rho),
            "kendall": None if not np.isfinite(tau) else float(tau),
            **{f"ndcg@{k}": ndcg(vals, acc, k) for k in NDCG_K},
            # per scored network (one per isomorphism class), over those computed in this run
            # (all of them where every value came from a table or the cache)
            "seconds_per_arch": float(np.mean(secs or [s[name].seconds for s in rep_scores])),
            "flagged": sum(1 for s in scores if s[name].flags),
        }
    return out


def correlate(table: Truth, indicators: Sequence[str], task: Task,
              sample: int | None = 1000, seed: int = 0, workers: int = 1,
              cache_path: str | Path | None = None,
              progress: Callable[[int], None] | None = None,
              archs: Sequence[Any] | None = None,
              settings: ProxySettings | None = None,
              keep_values: bool = False, executor: str | None = None,
              table_path: str | Path | None = None, resume: bool = False,
              checkpoint_seconds: float = 900.0, device: str | None = None,
              runtime: str | None = None, draws: int = 20) -> dict[str, Any]:
    """Spearman rho, Kendall tau and nDCG@{10, 100} of each indicator with test accuracy on
    ``task`` (population indicators over the whole sample). ``keep_values``: also return
    ``rows`` (the architecture, its accuracy (and runs where the table has several) and
    every indicator's value, flags and seconds). ``executor``: where scoring runs
    (:func:`micronas.infra.execution.make_executor`; default ``process:workers``).

    ``table_path``: write the result with its rows there (see :func:`write_table`), also
    every ``checkpoint_seconds`` while scoring (a partial table: ``"complete": false``, the
    rows scored so far, its numbers over them). ``resume``: take the values a table already
    at ``table_path`` holds (scored with the same space, task, seed and settings) and score
    only the rest, so a run stopped anywhere (or a committed partial table) continues.

    ``device``: also the in-budget report on it (:func:`micronas.bench.budget.report`:
    in-slice correlation and the pick metric over ``draws`` seeded budgets, with
    ``runtime``'s latency), in ``budget``."""
    table.check_task(task)
    if workers < 1:
        raise MicronasError(f"--workers must be >= 1, got {workers}")
    space = get_space(table.space)
    archs = list(archs) if archs is not None else table.archs(sample, seed)
    settings = settings or ProxySettings()
    per_net = expand(indicators)
    t0 = time.perf_counter()
    reps, member = iso_classes(archs, space)
    sizes = np.bincount(member, minlength=len(reps))
    known = (_resumable(table_path, space, task, seed, settings, per_net)
             if resume and table_path is not None and Path(table_path).exists() else {})
    rep_scores: list[dict[str, Score] | None] = [known.get(space.iso_key(r)) for r in reps]
    # scored in a seeded random order, so a partial table is a uniform sample of the classes
    todo = [j for j, s in enumerate(rep_scores) if s is None]
    todo = [todo[int(i)] for i in np.random.default_rng(seed).permutation(len(todo))]
    if progress is not None:
        done_sizes = int(sum(sizes[j] for j, s in enumerate(rep_scores) if s is not None))
        if done_sizes:
            progress(done_sizes)
    acc_all = np.array([table.acc(a, task) for a in archs])
    ex_spec = executor or f"process:{workers}"
    meta = {"space": space.name, "dataset": task.name, "seed": seed,
            "settings": settings.__dict__, "settings_hash": settings.key(),
            "version": __version__, "workers": workers, "executor": ex_spec,
            "resumed_classes": len(reps) - len(todo)}

    def result(final: bool, with_rows: bool) -> dict[str, Any]:
        done = [j for j, s in enumerate(rep_scores) if s is not None]
        scored = [dict(rep_scores[j]) for j in done]  # type: ignore[arg-type]
        combine_population(scored, indicators)
        by_rep = dict(zip(done, scored, strict=True))
        keep = [i for i, m in enumerate(member) if m in by_rep]
        scores = [by_rep[member[i]] for i in keep]
        acc = acc_all[keep]
        out: dict[str, Any] = {"n": len(keep), "classes": len(done), **meta,
                               "complete": final, "wall_seconds": time.perf_counter() - t0}
        if not final:
            out["total_classes"] = len(reps)
        out["indicators"] = _summary(indicators, scores, acc, scored)
        if final and device is not None and len(keep) > 2:
            from micronas.bench.budget import report

            runs = [table.runs(archs[i], task) for i in keep]
            out["budget"] = report(space, [archs[i] for i in keep], task,
                                   {n: [s[n].value for s in scores] for n in indicators}, acc,
                                   None if any(r is None for r in runs) else runs, device,
                                   runtime, draws, seed)
        if with_rows:
            rows = []
            for i, s in zip(keep, scores, strict=True):
                a = archs[i]
                runs = table.runs(a, task)
                rows.append({**table.row(a, task), "acc": float(acc_all[i]),
                             **({"runs": list(runs)} if runs is not None else {}),
                             **{n: sc.value for n, sc in s.items()},
                             "flags": {n: list(sc.flags) for n, sc in s.items() if sc.flags},
                             "seconds": {n: round(s[n].seconds, 4) for n in per_net}})
            out["rows"] = rows
        return out

    if todo:
        store = ResultStore(str(cache_path)) if cache_path is not None else None
        ex = make_executor(ex_spec)
        last = time.perf_counter()
        chunk = max(8, 4 * workers) if table_path is not None else len(todo)
        try:
            for k in range(0, len(todo), chunk):
                part = todo[k:k + chunk]
                count = [0]

                def step(n: int, part: list[int] = part, count: list[int] = count) -> None:
                    for _ in range(n):
                        if progress is not None and count[0] < len(part):
                            progress(int(sizes[part[count[0]]]))
                        count[0] += 1

                cands = [Candidate(space, reps[j], task) for j in part]
                got = score_batch(cands, per_net, seed, settings, store, ex, step, chunksize=4)
                for j, sc in zip(part, got, strict=True):
                    rep_scores[j] = sc
                if (table_path is not None and k + chunk < len(todo)
                        and time.perf_counter() - last >= checkpoint_seconds):
                    write_table(result(False, True), table_path)
                    last = time.perf_counter()
        finally:
            ex.shutdown()
            if store:
                store.close()
    res = result(True, keep_values or table_path is not None)
    if table_path is not None and (todo or not Path(table_path).exists()):
        write_table(res, table_path)  # (a table resumed with nothing to score stays as it is)
    return res


def write_table(res: dict[str, Any], path: str | Path) -> None:
    """``res`` (with its ``rows``) as JSON at ``path``, gzip-compressed when the name ends in
    ``.gz`` (no timestamp in the gzip header); written atomically."""
    blob = json.dumps(res, indent=None, separators=(",", ":")).encode()
    if str(path).endswith(".gz"):
        blob = gzip.compress(blob, mtime=0)
    atomic_write(Path(path), lambda f: f.write(blob), binary=True)

