"""Search strategies: MicroNAS pruning, aging evolution, random, exhaustive.

All take the same inputs (an :class:`Evaluator`, weights, budgets, a seeded generator) and
return a :class:`StrategyResult`. Budgets are a filter in front of every strategy: no
strategy evaluates or returns an architecture that violates them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from micronas.errors import BudgetError
from micronas.search.costs import Budgets
from micronas.search.evaluate import Evaluation, Evaluator
from micronas.search.objective import Weights, hybrid_scores
from micronas.spaces.nb201 import EDGES, NB201Arch, NB201Space

PRUNE_OPS = ("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
Progress = Callable[[int], None] | None


@dataclass
class StrategyResult:
    arch: NB201Arch
    evaluations: int
    history: list[dict[str, Any]] = field(default_factory=list)  # for reports and plots


def _remove(edge_ops: tuple[frozenset[str], ...], e: int, op: str) -> tuple[frozenset[str], ...]:
    out = list(edge_ops)
    out[e] = out[e] - {op}
    return tuple(out)


def prune(ev: Evaluator, w: Weights, budgets: Budgets, rng: np.random.Generator,
          rank_mode: str = "percentile", progress: Progress = None,
          fill: float = 0.0, device: Budgets | None = None) -> StrategyResult:
    """MicroNAS/TE-NAS pruning from the supernet with every op on every edge.

    Each round evaluates the supernet and, for every op still on an edge with more than one,
    the supernet without it. The candidates are ranked by the hybrid objective applied to the
    pruned supernets: for each indicator and cost, ranking the value after removal is ranking
    the published relative change (x(N) - x(N \\ o)) / x(N), since x(N) is common to all
    candidates (and positive for kappa, R, FLOPs and latency). On each edge the op whose
    removal leaves the best supernet is removed, provided the pruned supernet still has at
    least one completion within the budgets (edges are processed in order, each check against
    the supernet as already pruned this round).

    ``fill`` (ours): when the budgets bind, i.e. they allow a smaller largest network than
    ``device`` (the device's own memory; default: no limit) does, a removal must also leave a
    feasible completion with more than ``fill`` times the parameters of the largest feasible
    network (:meth:`CostModel.capacity`). A budget is then a target to use, while the
    device's own memory stays only a limit (the latency and FLOPs weights keep their effect
    without a budget). Published pruning (``fill=0``) drops skip connections and pools
    first, as the indicators prefer convolutions, and a tight latency budget then leaves only
    small all-1x1 cells; filling keeps the cheap ops that let a 3x3 convolution fit. Progress
    is guaranteed: removing any op but the one the largest feasible completion uses on that
    edge keeps that completion.
    """
    del rng  # pruning is deterministic given the evaluator's seed
    edge_ops = tuple(frozenset(PRUNE_OPS) for _ in EDGES)
    if ev.costs.feasible_completion(edge_ops, budgets) is None:
        raise BudgetError("no architecture of the NB201 space meets the budgets on this device")
    # budget filling (ours): when the user's budgets bind (they allow less than the device
    # does), keep a completion with at least `fill` of the parameters of the largest they allow
    cap = ev.costs.capacity(edge_ops, budgets)
    need = fill * cap if cap < ev.costs.capacity(edge_ops, device or Budgets()) else 0.0

    def allowed(trial: tuple[frozenset[str], ...]) -> bool:
        if need > 0:  # a completion above `need` is itself feasible
            return ev.costs.capacity(trial, budgets) > need
        return ev.costs.feasible_completion(trial, budgets) is not None

    history: list[dict[str, Any]] = []
    rnd = 0
    while any(len(s) > 1 for s in edge_ops):
        rnd += 1
        cands = [(e, op) for e, s in enumerate(edge_ops) if len(s) > 1 for op in sorted(s)]
        base, *evals = ev.supernets([edge_ops, *(_remove(edge_ops, e, op) for e, op in cands)],
                                    progress)
        score = _scores(evals, w, rank_mode)
        removed = []
        for e in range(len(EDGES)):
            idx = sorted((i for i, (ce, _) in enumerate(cands) if ce == e),
                         key=lambda i: (-score[i], cands[i][1]))
            for i in idx:
                trial = _remove(edge_ops, e, cands[i][1])
                if allowed(trial):
                    edge_ops = trial
                    removed.append(cands[i][1])
                    break
        history.append({
            "round": rnd, **base.record(), "removed": removed, "fill_params": need,
            "candidates": [{"edge": e, "op": op, **x.record(), "score": float(s)}
                           for (e, op), x, s in zip(cands, evals, score, strict=True)],
        })
    arch = NB201Arch(tuple(next(iter(s)) for s in edge_ops))
    return StrategyResult(arch, ev.evaluations, history)


def _feasible_sample(space: NB201Space, ev: Evaluator, budgets: Budgets,
                     rng: np.random.Generator, tries: int = 20000) -> NB201Arch:
    for _ in range(tries):
        a = space.sample(rng)
        if budgets.ok(ev.costs.arch(a)):
            return a
    raise BudgetError("could not sample an architecture within the budgets; loosen them")


def _scores(evals: list[Evaluation], w: Weights, mode: str) -> np.ndarray:
    return hybrid_scores([x.values for x in evals], [x.costs.macs for x in evals],
                         [x.costs.latency_ms for x in evals], w, mode)


def _best(pop: list[tuple[NB201Arch, Evaluation]], w: Weights, mode: str) -> int:
    return int(np.argmax(_scores([x for _, x in pop], w, mode)))


def _record(a: NB201Arch, x: Evaluation) -> dict[str, Any]:
    return {"arch": str(a), "index": a.index, **x.record()}


def random_search(ev: Evaluator, w: Weights, budgets: Budgets, rng: np.random.Generator,
                  n: int = 54, rank_mode: str = "percentile",
                  progress: Progress = None) -> StrategyResult:
    """``n`` distinct feasible architectures drawn at random; the best by the hybrid score
    (ranks within the drawn set)."""
    space = NB201Space()
    seen: dict[NB201Arch, Evaluation] = {}
    for _ in range(n * 50):
        if len(seen) >= n:
            break
        a = _feasible_sample(space, ev, budgets, rng)
        if a not in seen:
            seen[a] = ev.arch(a)
            if progress:
                progress(1)
    pop = list(seen.items())
    best = pop[_best(pop, w, rank_mode)][0]
    return StrategyResult(best, ev.evaluations, [_record(a, x) for a, x in pop])


def evolution(ev: Evaluator, w: Weights, budgets: Budgets, rng: np.random.Generator,
              n: int = 54, population: int = 16, sample: int = 4,
              rank_mode: str = "percentile", progress: Progress = None) -> StrategyResult:
    """Aging (regularised) evolution (Real et al. 2019) with ``n`` indicator evaluations.

    Fitness is the hybrid score ranked over every architecture evaluated so far; mutations
    that violate a budget are redrawn."""
    space = NB201Space()
    history: list[tuple[NB201Arch, Evaluation]] = []
    pop: list[tuple[NB201Arch, Evaluation]] = []
    while len(history) < min(population, n):
        a = _feasible_sample(space, ev, budgets, rng)
        x = ev.arch(a)
        history.append((a, x))
        pop.append((a, x))
        if progress:
            progress(1)
    while len(history) < n:
        scores = _scores([x for _, x in history], w, rank_mode)
        by_arch = {a: s for (a, _), s in zip(history, scores, strict=True)}
        picks = rng.choice(len(pop), size=min(sample, len(pop)), replace=False)
        parent = max((pop[int(i)][0] for i in picks), key=lambda a: by_arch[a])
        child = parent
        for _ in range(1000):
            child = space.mutate(parent, rng)
            if budgets.ok(ev.costs.arch(child)):
                break
        else:
            child = _feasible_sample(space, ev, budgets, rng)
        x = ev.arch(child)
        history.append((child, x))
        pop.append((child, x))
        pop.pop(0)
        if progress:
            progress(1)
    best = history[_best(history, w, rank_mode)][0]
    return StrategyResult(best, ev.evaluations, [_record(a, x) for a, x in history])


def exhaustive(ev: Evaluator, w: Weights, budgets: Budgets, rng: np.random.Generator,
               rank_mode: str = "percentile", progress: Progress = None) -> StrategyResult:
    """Every feasible architecture (one per isomorphism class), scored through the results
    cache: instant once ``micronas bench correlate --all`` has filled it, hours otherwise."""
    del rng
    seen: dict[str, tuple[NB201Arch, Evaluation]] = {}
    for a in NB201Space().enumerate():
        key = a.iso_key()
        if key in seen or not budgets.ok(ev.costs.arch(a)):
            continue
        seen[key] = (a, ev.arch(a))
        if progress:
            progress(1)
    if not seen:
        raise BudgetError("no architecture of the NB201 space meets the budgets on this device")
    pop = list(seen.values())
    best = pop[_best(pop, w, rank_mode)][0]
    return StrategyResult(best, ev.evaluations, [_record(a, x) for a, x in pop])


def refine(ev: Evaluator, w: Weights, budgets: Budgets, start: NB201Arch, steps: int,
           rank_mode: str = "percentile", progress: Progress = None,
           ) -> tuple[NB201Arch, list[dict[str, Any]]]:
    """Hill-climb from ``start`` (ours, beyond the published method): up to ``steps`` times,
    score the current architecture and its feasible one-edge neighbours with ``ev.arch`` and
    move to the best of them by the hybrid score ranked within that neighbourhood; stop at a
    local optimum. Every move stays within the budgets."""
    space = NB201Space()
    seen: dict[NB201Arch, Evaluation] = {start: ev.arch(start)}
    cur = start
    trail: list[dict[str, Any]] = [{"step": 0, **_record(cur, seen[cur])}]
    for step in range(1, steps + 1):
        nbrs = [n for n in space.neighbours(cur) if budgets.ok(ev.costs.arch(n))]
        for n in nbrs:
            if n not in seen:
                seen[n] = ev.arch(n)
                if progress:
                    progress(1)
        local = [(a, seen[a]) for a in [cur, *nbrs]]
        best = local[_best(local, w, rank_mode)][0]
        if best == cur:
            break
        cur = best
        trail.append({"step": step, **_record(cur, seen[cur])})
    return cur, trail


STRATEGIES = {"prune": prune, "evolution": evolution, "random": random_search,
              "exhaustive": exhaustive}
