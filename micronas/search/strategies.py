"""Search strategies as objects: MicroNAS pruning, aging evolution, random, exhaustive, and
hill-climbing refinement.

Every strategy has one interface: :meth:`Strategy.ask` returns a batch of candidates to
evaluate (None when done), :meth:`Strategy.tell` gives it their evaluations, and
:meth:`Strategy.result` the chosen architecture. :meth:`Strategy.state_dict` /
:meth:`Strategy.load_state_dict` save and restore a strategy between batches (JSON-able),
so a search can resume. Budgets are one filter in front of every strategy
(:class:`~micronas.search.costs.BudgetFilter`): no strategy evaluates or returns an
architecture it rejects. :func:`drive` runs a strategy through an evaluator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from micronas.errors import BudgetError, MicronasError
from micronas.infra import defaults
from micronas.infra.registry import Registry, summary_of
from micronas.search.costs import BudgetFilter, Budgets, Costs
from micronas.search.evaluate import Evaluation, Evaluator
from micronas.search.objective import Weights, hybrid_scores
from micronas.spaces import Candidate, Enumerable, HasSupernet, SearchSpace, offers
from micronas.spaces.base import State, enumerate_space
from micronas.tasks import Task

Progress = Callable[[int], None] | None


@dataclass
class StrategyResult:
    arch: Any
    evaluations: int
    history: list[dict[str, Any]] = field(default_factory=list)  # for reports and plots


def _scores(evals: list[Evaluation], w: Weights, mode: str) -> np.ndarray:
    return hybrid_scores([x.values for x in evals], [x.costs.macs for x in evals],
                         [x.costs.latency_ms for x in evals], w, mode)


def _best(evals: list[Evaluation], w: Weights, mode: str) -> int:
    return int(np.argmax(_scores(evals, w, mode)))


class Strategy:
    """Base class: holds the space, task, filter, objective and a seeded generator."""

    name = "strategy"

    def __init__(self, space: SearchSpace, task: Task, filter: BudgetFilter, weights: Weights,
                 rng: np.random.Generator, rank_mode: str = "percentile"):
        self.space = space
        self.task = task
        self.filter = filter
        self.weights = weights
        self.rng = rng
        self.rank_mode = rank_mode
        self.evaluated: list[Evaluation] = []

    # --- what it takes from the settings ----------------------------------------------
    @classmethod
    def options(cls, evaluations: int, fill: float) -> dict[str, Any]:
        """The constructor options this strategy takes from a search's settings."""
        return {}

    @classmethod
    def expected_evaluations(cls, evaluations: int) -> int | None:
        """How many indicator evaluations a run makes (None: unknown in advance)."""
        return None

    # --- the interface -----------------------------------------------------------------
    def ask(self) -> list[Candidate] | None:
        raise NotImplementedError

    def tell(self, evals: list[Evaluation]) -> None:
        """Default: keep every evaluation."""
        self.evaluated += evals

    def result(self) -> StrategyResult:
        """Default: the best evaluated architecture by the hybrid score ranked over all."""
        pop = self.evaluated
        best = pop[_best(pop, self.weights, self.rank_mode)].arch
        return StrategyResult(best, 0, [self._record(x) for x in pop])

    # --- saved state -------------------------------------------------------------------
    def _cand(self, arch: Any, supernet: bool = False) -> Candidate:
        return Candidate(self.space, arch, self.task, supernet)

    def _eval_dict(self, x: Evaluation) -> dict[str, Any]:
        return {"arch": self.space.format(x.arch), "values": x.values,
                "costs": x.costs.__dict__, "flags": list(x.flags)}

    def _eval_load(self, d: dict[str, Any]) -> Evaluation:
        return Evaluation(self._cand(self.space.parse(d["arch"])), dict(d["values"]),
                          Costs(**d["costs"]), tuple(d["flags"]))

    def state_dict(self) -> dict[str, Any]:
        return {"strategy": self.name, "rng": self.rng.bit_generator.state,
                "evaluated": [self._eval_dict(x) for x in self.evaluated]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("strategy") != self.name:
            raise MicronasError(f"saved state is for strategy {state.get('strategy')!r}, "
                                f"not {self.name!r}")
        self.rng.bit_generator.state = state["rng"]
        self.evaluated = [self._eval_load(d) for d in state["evaluated"]]

    def _record(self, x: Evaluation) -> dict[str, Any]:
        from micronas.spaces import index_of

        return {"arch": self.space.format(x.arch), "index": index_of(self.space, x.arch),
                **x.record()}


class Prune(Strategy):
    """MicroNAS/TE-NAS pruning from the supernet with every op on every edge (a space with
    the ``supernet`` capability).

    Each round evaluates, for every op still on an edge with more than one, the supernet
    without it. The candidates are ranked by the hybrid objective applied to the pruned
    supernets: for each indicator and cost, ranking the value after removal is ranking the
    published relative change (x(N) - x(N \\ o)) / x(N), since x(N) is common to all
    candidates (and positive for kappa, R, FLOPs and latency); so the round's supernet N
    itself is not evaluated (its costs are recorded in the history). On each edge the op whose
    removal leaves the best supernet is removed, provided the pruned supernet still has at
    least one completion within the budgets (edges are processed in order, each check against
    the supernet as already pruned in this pruning step).

    ``fill`` (ours): when the budgets bind, i.e. they allow a smaller largest network than
    the device's own memory does, a removal must also leave a feasible completion with more
    than ``fill`` times the parameters of the largest feasible network
    (:meth:`CostModel.capacity`). A budget is then a target to use, while the device's own
    memory stays only a limit (the latency and FLOPs weights keep their effect without a
    budget). Published pruning (``fill=0``) drops skip connections and pools first, as the
    indicators prefer convolutions, and a tight latency budget then leaves only small
    all-1x1 cells; filling keeps the cheap ops that let a 3x3 convolution fit. Progress is
    guaranteed: removing any op but the one the largest feasible completion uses on that
    edge keeps that completion.
    """

    name = "prune"

    @classmethod
    def options(cls, evaluations: int, fill: float) -> dict[str, Any]:
        return {"fill": fill}

    @classmethod
    def expected_evaluations(cls, evaluations: int) -> int | None:
        return 24 + 18 + 12  # NB201's supernet: 6 edges x (4, then 3, then 2 open ops)

    def __init__(self, *args: Any, fill: float = 0.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not offers(self.space, HasSupernet):
            raise MicronasError(f"--strategy prune needs a supernet, which space "
                                f"{self.space.name!r} lacks; use --strategy evolution")
        self.supernet = self.space.supernet()
        self.state: State = self.supernet.full()
        costs = self.filter.costs
        if costs.feasible_completion(self.state, self.filter.budgets) is None:
            raise BudgetError(self._infeasible())
        self.need = 0.0
        if fill > 0 and self.filter.budgets != self.filter.device_limits:
            # the budgets bind when they allow less than the device's memory does (the scan
            # of completions is skipped when they are the device's memory: nothing to fill)
            cap = costs.capacity(self.state, self.filter.budgets)
            if cap < costs.capacity(self.state, self.filter.device_limits):
                self.need = fill * cap
        self.round = 0
        self.history: list[dict[str, Any]] = []
        self._cands: list[tuple[int, str]] = []

    def _infeasible(self) -> str:
        space, device = self.space.name.upper(), self.filter.costs.device.name
        full = (offers(self.space, Enumerable)
                and any(self.filter.ok(a) for a in enumerate_space(self.space)))
        if full:
            return (f"the pruning supernet of the {space} space has no network within the "
                    f"budgets on {device}, but the whole space has (pruning never picks "
                    "'none'): use --strategy evolution (or random)")
        return (f"no architecture of the {space} space meets the budgets on {device}; loosen "
                "the budget or pick a larger device")

    def _allowed(self, trial: State) -> bool:
        costs = self.filter.costs
        if self.need > 0:  # a completion above `need` is itself feasible
            return costs.capacity(trial, self.filter.budgets) > self.need
        return costs.feasible_completion(trial, self.filter.budgets) is not None

    @staticmethod
    def _remove(state: State, e: int, op: str) -> State:
        out = list(state)
        out[e] = out[e] - {op}
        return tuple(out)

    def ask(self) -> list[Candidate] | None:
        if all(len(s) == 1 for s in self.state):
            return None
        self._cands = [(e, op) for e, s in enumerate(self.state) if len(s) > 1 for op in sorted(s)]
        return [self._cand(self._remove(self.state, e, op), supernet=True)
                for e, op in self._cands]

    def tell(self, evals: list[Evaluation]) -> None:
        cands, before = self._cands, self.state
        base = self.filter.costs.supernet(before)  # the round's supernet: costs only
        score = _scores(evals, self.weights, self.rank_mode)
        removed = []
        for e in range(len(self.state)):
            idx = sorted((i for i, (ce, _) in enumerate(cands) if ce == e),
                         key=lambda i: (-score[i], cands[i][1]))
            for i in idx:
                trial = self._remove(self.state, e, cands[i][1])
                if self._allowed(trial):
                    self.state = trial
                    removed.append(cands[i][1])
                    break
        self.round += 1
        self.history.append({
            "round": self.round, "supernet": self.supernet.format(before),
            "latency_ms": base.latency_ms, "macs": base.macs, "removed": removed,
            "fill_params": self.need,
            "candidates": [{"edge": e, "op": op, **x.record(), "score": float(s)}
                           for (e, op), x, s in zip(cands, evals, score, strict=True)],
        })

    def result(self) -> StrategyResult:
        return StrategyResult(self.supernet.arch(self.state), 0, self.history)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "state": [sorted(s) for s in self.state],
                "round": self.round, "history": self.history, "need": self.need}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.state = tuple(frozenset(s) for s in state["state"])
        self.round, self.history, self.need = state["round"], state["history"], state["need"]


class _Counted(Strategy):
    """A strategy that makes ``n`` indicator evaluations, ``n`` from the settings."""

    @classmethod
    def options(cls, evaluations: int, fill: float) -> dict[str, Any]:
        return {"n": evaluations}

    @classmethod
    def expected_evaluations(cls, evaluations: int) -> int | None:
        return evaluations


class RandomSearch(_Counted):
    """``n`` distinct feasible architectures drawn at random; the best by the hybrid score
    (ranks within the drawn set)."""

    name = "random"

    def __init__(self, *args: Any, n: int = defaults.EVALUATIONS, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.n = n

    def ask(self) -> list[Candidate] | None:
        if self.evaluated:
            return None
        seen: dict[Any, None] = {}
        for _ in range(self.n * 50):
            if len(seen) >= self.n:
                break
            seen.setdefault(self.filter.sample(self.rng))
        return [self._cand(a) for a in seen]


class Evolution(_Counted):
    """Aging (regularised) evolution (Real et al. 2019) with ``n`` indicator evaluations.

    Fitness is the hybrid score ranked over every architecture evaluated so far; mutations
    that the budget filter rejects are redrawn."""

    name = "evolution"

    def __init__(self, *args: Any, n: int = defaults.EVALUATIONS, population: int = 16, sample: int = 4,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.n, self.population, self.tournament = n, population, sample
        self.pop: list[int] = []  # indices into self.evaluated, oldest first

    def ask(self) -> list[Candidate] | None:
        hist = self.evaluated
        if len(hist) >= self.n:
            return None
        if not hist:  # the initial population, drawn before any evaluation
            k = min(self.population, self.n)
            return [self._cand(self.filter.sample(self.rng)) for _ in range(k)]
        scores = _scores(hist, self.weights, self.rank_mode)
        by_arch = {x.arch: s for x, s in zip(hist, scores, strict=True)}
        picks = self.rng.choice(len(self.pop), size=min(self.tournament, len(self.pop)),
                                replace=False)
        parent = max((hist[self.pop[int(i)]].arch for i in picks), key=lambda a: by_arch[a])
        child = parent
        for _ in range(200):
            child = self.space.mutate(parent, self.rng)
            if self.filter.ok(child):
                break
        else:
            child = self.filter.sample(self.rng)
        return [self._cand(child)]

    def tell(self, evals: list[Evaluation]) -> None:
        for x in evals:
            self.evaluated.append(x)
            self.pop.append(len(self.evaluated) - 1)
            if len(self.evaluated) > self.population:
                self.pop.pop(0)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "pop": list(self.pop)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.pop = list(state["pop"])


class Exhaustive(Strategy):
    """Every feasible architecture (one per isomorphism class) of a finite space, scored
    through the results cache: instant once ``micronas bench correlate --all`` has filled
    it, hours otherwise."""

    name = "exhaustive"

    def ask(self) -> list[Candidate] | None:
        if self.evaluated:
            return None
        seen: dict[str, Any] = {}
        for a in enumerate_space(self.space):
            key = self.space.iso_key(a)
            if key not in seen and self.filter.ok(a):
                seen[key] = a
        if not seen:
            raise BudgetError(f"no architecture of the {self.space.name.upper()} space meets the "
                              "budgets on this device")
        return [self._cand(a) for a in seen.values()]


class Refine(Strategy):
    """Hill-climb from ``start`` (ours, beyond the published method): up to ``steps`` times,
    evaluate the current architecture's feasible one-choice neighbours and move to the best
    of them by the hybrid score ranked within that neighbourhood; stop at a local optimum.
    Every move stays within the budgets."""

    name = "refine"

    def __init__(self, *args: Any, start: Any = None, steps: int = 1, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.cur, self.steps, self.step = start, steps, 0
        self.seen: dict[Any, Evaluation] = {}
        self.trail: list[dict[str, Any]] = []
        self.done = False
        self._nbrs: list[Any] = []

    def ask(self) -> list[Candidate] | None:
        if not self.seen:
            return [self._cand(self.cur)]
        if self.done or self.step >= self.steps:
            return None
        self._nbrs = self.filter.feasible(self.space.neighbours(self.cur))
        new = [n for n in self._nbrs if n not in self.seen]
        return [self._cand(a) for a in new] or [self._cand(self.cur)]

    def tell(self, evals: list[Evaluation]) -> None:
        for x in evals:
            self.seen.setdefault(x.arch, x)
        self.evaluated += evals
        if not self.trail:
            self.trail.append({"step": 0, **self._record(self.seen[self.cur])})
            return
        local = [self.seen[a] for a in [self.cur, *self._nbrs]]
        best = local[_best(local, self.weights, self.rank_mode)].arch
        self.step += 1
        if best == self.cur:
            self.done = True
            return
        self.cur = best
        self.trail.append({"step": self.step, **self._record(self.seen[self.cur])})

    def result(self) -> StrategyResult:
        return StrategyResult(self.cur, 0, [{"refine": self.trail}])


#: Every search strategy (name -> class).
STRATEGIES: Registry[type[Strategy]] = Registry("strategy")
for _cls in (Prune, Evolution, RandomSearch, Exhaustive):
    STRATEGIES.register(_cls.name, _cls, summary_of(_cls.__doc__))


def make_strategy(name: str, space: SearchSpace, task: Task, filter: BudgetFilter,
                  weights: Weights, rng: np.random.Generator, rank_mode: str = "percentile",
                  **options: Any) -> Strategy:
    """A strategy by name; ``options`` are its own (``n``, ``fill``, ...)."""
    return STRATEGIES[name](space, task, filter, weights, rng, rank_mode, **options)


def drive(strategy: Strategy, ev: Evaluator, progress: Progress = None) -> StrategyResult:
    """Ask, evaluate, tell until the strategy is done; its result, with the evaluations
    this run made."""
    before = ev.evaluations
    while (batch := strategy.ask()) is not None:
        strategy.tell(ev.evaluate(batch, progress))
    res = strategy.result()
    res.evaluations = ev.evaluations - before
    return res


__all__ = ["STRATEGIES", "Budgets", "Evolution", "Exhaustive", "Prune", "RandomSearch",
           "Refine", "Strategy", "StrategyResult", "drive", "make_strategy"]
