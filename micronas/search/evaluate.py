"""What a search evaluates: indicators of a candidate (architecture or supernet) plus its
costs, in batches, through an executor; the driver alone writes the results cache."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from micronas.infra.cache import ResultStore
from micronas.infra.execution import make_executor
from micronas.proxies.registry import ProxySettings
from micronas.proxies.scoring import score_batch
from micronas.search.costs import CostModel, Costs
from micronas.spaces import Candidate


@dataclass(frozen=True)
class Evaluation:
    """Indicator values (by name) and costs of one candidate."""

    candidate: Candidate
    values: dict[str, float]
    costs: Costs
    flags: tuple[str, ...] = ()

    @property
    def arch(self) -> Any:
        return self.candidate.arch

    def record(self) -> dict[str, float]:
        """The values and the costs the reports show, for histories."""
        return {**self.values, "latency_ms": self.costs.latency_ms, "macs": self.costs.macs,
                "peak_sram_bytes": self.costs.peak_sram_bytes,
                "flash_bytes": self.costs.flash_bytes}


class Evaluator:
    """Evaluates the named indicators of candidates and counts the evaluations.

    Every value is computed from its own seeded generator, so results do not depend on the
    executor (up to float32 summation order: about 1e-7 relative in the NTK condition
    number, which depends on the torch thread count). Architectures and supernets go
    through the results cache ``store`` (written here, never by workers)."""

    def __init__(self, costs: CostModel, settings: ProxySettings, seed: int,
                 store: ResultStore | None = None,
                 indicators: Sequence[str] = ("ntk_cond", "linear_regions"),
                 executor: str | Executor = "serial"):
        self.costs = costs
        self.space = costs.space
        self.task = costs.task
        self.settings = settings
        self.seed = seed
        self.store = store
        self.indicators = tuple(indicators)
        self.evaluations = 0
        self._executor = make_executor(executor)
        self._owned = self._executor is not executor

    def candidate(self, arch: Any, supernet: bool = False) -> Candidate:
        return Candidate(self.space, arch, self.task, supernet)

    def evaluate(self, cands: Sequence[Candidate],
                 progress: Callable[[int], None] | None = None) -> list[Evaluation]:
        """Evaluations of ``cands``, in order."""
        costs: list[Costs] = []

        def cost_all() -> None:  # the driver's part, while the executor computes indicators
            costs.extend(self.costs.supernet(c.arch) if c.supernet else self.costs.arch(c.arch)
                         for c in cands)

        scores = score_batch(cands, self.indicators, self.seed, self.settings, self.store,
                             self._executor, progress, meanwhile=cost_all)
        self.evaluations += len(cands)
        out = []
        for c, s, cost in zip(cands, scores, costs, strict=True):
            out.append(Evaluation(c, {n: s[n].value for n in self.indicators}, cost,
                                  tuple(f"{n}:{f}" for n in self.indicators for f in s[n].flags)))
        return out

    def arch(self, arch: Any, progress: Callable[[int], None] | None = None) -> Evaluation:
        return self.evaluate([self.candidate(arch)], progress)[0]

    @property
    def executor(self) -> Executor:
        """Where the indicator batches run (for another evaluator to share)."""
        return self._executor

    def close(self) -> None:
        """Stop the executor's workers (when this evaluator made them)."""
        if self._owned:
            self._executor.shutdown()
