"""What a search evaluates: indicators of a cell (architecture or supernet) plus its costs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from micronas.proxies.registry import ProxySettings
from micronas.proxies.scoring import compute, score_arch, worker_pool
from micronas.search.costs import CostModel, Costs
from micronas.spaces.nb201 import NB201Arch
from micronas.spaces.nb201_ir import EdgeOps
from micronas.store import ResultStore


@dataclass(frozen=True)
class Evaluation:
    """Indicator values (by name) and costs of one network (architecture or supernet)."""

    values: dict[str, float]
    costs: Costs
    flags: tuple[str, ...] = ()

    def record(self) -> dict[str, float]:
        """The values and the two costs the reports plot, for histories."""
        return {**self.values, "latency_ms": self.costs.latency_ms, "macs": self.costs.macs}


def _indicators(cell: EdgeOps, names: tuple[str, ...], settings: ProxySettings, seed: int
                ) -> tuple[dict[str, float], tuple[str, ...]]:
    values: dict[str, float] = {}
    flags: list[str] = []
    for name in names:
        v = compute(name, cell, settings, seed)
        values[name] = v.value
        flags += [f"{name}:{f}" for f in v.flags]
    return values, tuple(flags)


class Evaluator:
    """Evaluates the named indicators of supernets and architectures and counts the
    evaluations; architectures go through the results cache. With ``workers`` > 1, batches
    of supernets are evaluated on that many processes (one torch thread each unless the
    machine has more cores); every value is computed from its own seeded generator, so the
    results agree with serial ones up to float32 summation order (about 1e-7 relative in the
    NTK condition number, which depends on the torch thread count)."""

    def __init__(self, costs: CostModel, settings: ProxySettings, seed: int,
                 store: ResultStore | None = None,
                 indicators: Sequence[str] = ("ntk_cond", "linear_regions"), workers: int = 1):
        self.costs = costs
        self.settings = settings
        self.seed = seed
        self.store = store
        self.indicators = tuple(indicators)
        self.evaluations = 0
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def supernet(self, edge_ops: EdgeOps) -> Evaluation:
        return self.supernets([edge_ops])[0]

    def supernets(self, cells: Sequence[EdgeOps],
                  progress: Callable[[int], None] | None = None) -> list[Evaluation]:
        """Evaluations of several supernets, in order (in parallel with ``workers`` > 1)."""
        jobs = [(c, self.indicators, self.settings, self.seed) for c in cells]
        results: list[tuple[dict[str, float], tuple[str, ...]]] = []
        if self.workers > 1 and len(jobs) > 1:
            try:
                if self._pool is None:
                    self._pool = worker_pool(self.workers)
                for r in self._pool.map(_indicators, *zip(*jobs, strict=True)):
                    results.append(r)
                    if progress:
                        progress(1)
            except (OSError, BrokenProcessPool):  # no usable worker processes: go serial
                self.close()
                self.workers = 1
        for j in jobs[len(results):]:
            results.append(_indicators(*j))
            if progress:
                progress(1)
        self.evaluations += len(cells)
        return [Evaluation(v, self.costs.supernet(c), f)
                for c, (v, f) in zip(cells, results, strict=True)]

    def close(self) -> None:
        """Stop the worker processes (if any)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def arch(self, arch: NB201Arch) -> Evaluation:
        s = score_arch(arch, self.indicators, self.seed, self.settings, self.store)
        self.evaluations += 1
        return Evaluation({n: s[n].value for n in self.indicators}, self.costs.arch(arch),
                          tuple(f"{n}:{f}" for n in self.indicators for f in s[n].flags))
