"""What a search evaluates: indicators of a cell (architecture or supernet) plus its costs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from micronas.proxies.registry import ProxySettings
from micronas.proxies.scoring import compute, score_arch
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


class Evaluator:
    """Evaluates the named indicators of supernets and architectures and counts the
    evaluations; architectures go through the results cache."""

    def __init__(self, costs: CostModel, settings: ProxySettings, seed: int,
                 store: ResultStore | None = None,
                 indicators: Sequence[str] = ("ntk_cond", "linear_regions")):
        self.costs = costs
        self.settings = settings
        self.seed = seed
        self.store = store
        self.indicators = tuple(indicators)
        self.evaluations = 0

    def supernet(self, edge_ops: EdgeOps) -> Evaluation:
        values: dict[str, float] = {}
        flags: list[str] = []
        for name in self.indicators:
            v = compute(name, edge_ops, self.settings, self.seed)
            values[name] = v.value
            flags += [f"{name}:{f}" for f in v.flags]
        self.evaluations += 1
        return Evaluation(values, self.costs.supernet(edge_ops), tuple(flags))

    def arch(self, arch: NB201Arch) -> Evaluation:
        s = score_arch(arch, self.indicators, self.seed, self.settings, self.store)
        self.evaluations += 1
        return Evaluation({n: s[n].value for n in self.indicators}, self.costs.arch(arch),
                          tuple(f"{n}:{f}" for n in self.indicators for f in s[n].flags))
