"""What a search evaluates: indicators of a cell (architecture or supernet) plus its costs."""

from __future__ import annotations

from dataclasses import dataclass

from micronas.proxies.registry import ProxySettings
from micronas.proxies.scoring import score_arch
from micronas.proxies.tenas import linear_regions, ntk_cond
from micronas.search.costs import CostModel, Costs
from micronas.spaces.nb201 import NB201Arch
from micronas.spaces.nb201_ir import EdgeOps
from micronas.store import ResultStore


@dataclass(frozen=True)
class Evaluation:
    """Indicators and costs of one network (architecture or supernet)."""

    kappa: float
    regions: float
    costs: Costs
    flags: tuple[str, ...] = ()


class Evaluator:
    """Counts indicator evaluations; architectures go through the results cache."""

    def __init__(self, costs: CostModel, settings: ProxySettings, seed: int,
                 store: ResultStore | None = None):
        self.costs = costs
        self.settings = settings
        self.seed = seed
        self.store = store
        self.evaluations = 0

    def supernet(self, edge_ops: EdgeOps) -> Evaluation:
        k = ntk_cond(edge_ops, self.settings, self.seed)
        r = linear_regions(edge_ops, self.settings, self.seed)
        self.evaluations += 1
        return Evaluation(k.value, r.value, self.costs.supernet(edge_ops), k.flags + r.flags)

    def arch(self, arch: NB201Arch) -> Evaluation:
        s = score_arch(arch, ["ntk_cond", "linear_regions"], self.seed,
                       self.settings, self.store)
        self.evaluations += 1
        return Evaluation(s["ntk_cond"].value, s["linear_regions"].value, self.costs.arch(arch),
                          s["ntk_cond"].flags + s["linear_regions"].flags)
