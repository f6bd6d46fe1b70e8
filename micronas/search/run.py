"""``micronas search``: settings, the run, and its result."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from micronas import __version__
from micronas.datasets import get_dataset
from micronas.errors import BudgetError, MicronasError
from micronas.hardware import Device, load_device
from micronas.proxies.registry import ProxySettings
from micronas.search.costs import Budgets, CostModel, lower_bound
from micronas.search.evaluate import Evaluator
from micronas.search.objective import DEFAULT_MIX, Weights, parse_mix
from micronas.search.strategies import STRATEGIES, Progress, refine
from micronas.spaces.nb201 import NB201Arch
from micronas.store import ResultStore


@dataclass(frozen=True)
class SearchConfig:
    """Every setting of a search; saved beside its results."""

    space: str = "nb201"
    device: str = "stm32f746"
    dataset: str = "cifar10"
    strategy: str = "prune"
    latency_weight: float = 0.0
    flops_weight: float = 0.0
    max_latency_ms: float | None = None
    max_sram_kb: float | None = None
    max_flash_kb: float | None = None
    seed: int = 0
    rank_mode: str = "percentile"
    latency_mode: str = "rank"     # "rank" (the published rank mix) or "target" (ours)
    evaluations: int = 54          # for evolution and random (prune uses 57: 3 + 54)
    ntk_batch: int = 16
    repeats: int = 1
    lr_samples: int = 1000
    lr_batches: int = 1
    ntk_resolution: int | None = 16
    lr_input: str = "smooth"
    network: str = "tenas"
    refine: int = 0                # hill-climbing steps after the strategy (0: none)
    indicators: str = DEFAULT_MIX  # the indicator part of the objective: "name[:share],..."
    fill: float = 0.9              # prune: share of a binding budget's capacity to keep (ours)
    workers: int = 1               # prune: processes for supernet evaluations (0: up to 2;
    #                                the CLI's default; spawned workers re-import __main__,
    #                                so a script using them needs an `if __name__` guard)

    def validate(self) -> None:
        if self.space != "nb201":
            raise MicronasError(f"unknown space {self.space!r}; only nb201 is available")
        if self.strategy not in STRATEGIES:
            raise MicronasError(f"unknown strategy {self.strategy!r}; choose from "
                                f"{', '.join(STRATEGIES)}")
        self.weights()
        for name in ("max_latency_ms", "max_sram_kb", "max_flash_kb"):
            v = getattr(self, name)
            if v is not None and not (np.isfinite(v) and v > 0):
                raise BudgetError(f"--{name.replace('_', '-')} must be a positive number, got {v}")
        if self.evaluations < 1:
            raise MicronasError(f"evaluations must be >= 1, got {self.evaluations}")
        if self.workers < 0:
            raise MicronasError(f"--workers must be >= 0, got {self.workers}")
        if not 0 <= self.fill < 1:
            raise MicronasError(f"--fill must be in [0, 1), got {self.fill}")
        if self.refine < 0:
            raise MicronasError(f"--refine must be >= 0, got {self.refine}")
        if self.latency_mode not in ("rank", "target"):
            raise MicronasError(f"unknown latency mode {self.latency_mode!r}; use rank or target")
        if self.rank_mode not in ("percentile", "dense"):
            raise MicronasError(f"unknown rank mode {self.rank_mode!r}; use percentile or dense")
        get_dataset(self.dataset)

    def weights(self, latency: float | None = None) -> Weights:
        """The objective's weights (``latency`` overrides the latency weight)."""
        return Weights(self.latency_weight if latency is None else latency, self.flops_weight,
                       parse_mix(self.indicators))

    def proxy_settings(self) -> ProxySettings:
        return ProxySettings(dataset=get_dataset(self.dataset).name, network=self.network,
                             ntk_batch=self.ntk_batch, repeats=self.repeats,
                             lr_samples=self.lr_samples, lr_batches=self.lr_batches,
                             ntk_resolution=self.ntk_resolution, lr_input=self.lr_input)


@dataclass
class SearchResult:
    """The chosen architecture, its indicators and costs, and how it was found."""

    arch: str
    index: int
    indicators: dict[str, float]
    latency_ms: float
    peak_sram_bytes: int
    flash_bytes: int
    macs: int
    params: int
    fits: bool
    search_seconds: float
    seed: int
    evaluations: int
    config: dict[str, Any]
    accuracy: float | None = None
    oracle_accuracy: float | None = None
    oracle_arch: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        if self.accuracy is None:
            for k in ("accuracy", "oracle_accuracy", "oracle_arch"):
                d.pop(k)
        return d


def budgets_for(cfg: SearchConfig, device: Device) -> Budgets:
    kb = 1024
    return Budgets.with_device(
        device, cfg.max_latency_ms,
        None if cfg.max_sram_kb is None else int(cfg.max_sram_kb * kb),
        None if cfg.max_flash_kb is None else int(cfg.max_flash_kb * kb))


def latency_target(cfg: SearchConfig, device: Device) -> float | None:
    """``latency_mode="target"``: the latency weight w sets a latency ceiling by geometric
    interpolation between the slowest architecture of the space (every edge conv3x3) and the
    fastest one the pruning space holds (every edge skip_connect): L_hi^(1-w) * L_lo^w.
    w = 0 sets none (TE-NAS)."""
    if cfg.latency_mode != "target" or cfg.latency_weight <= 0:
        return None
    ds = get_dataset(cfg.dataset).name
    cm = CostModel(device, ds)
    lo = cm.arch(NB201Arch(("skip_connect",) * 6)).latency_ms
    hi = cm.arch(NB201Arch(("nor_conv_3x3",) * 6)).latency_ms
    w = cfg.latency_weight
    return hi ** (1 - w) * lo ** w


def check_bounds(cfg: SearchConfig, device: Device, budgets: Budgets) -> None:
    """Refuse budgets no architecture can meet, before searching (from the cost bound)."""
    lb = lower_bound(device, get_dataset(cfg.dataset).name)
    why = budgets.violations(lb)
    if why:
        raise BudgetError(f"no NB201 architecture can meet the budgets on {device.name}: even "
                          f"the smallest network has {why[0].split(' >')[0]} (the lower bound); "
                          "loosen the budget or pick a larger device")


def versions() -> dict[str, str]:
    import scipy
    import torch

    return {"micronas": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__, "torch": torch.__version__}


def run_search(cfg: SearchConfig, table: Any = None, cache_path: str | None = None,
               progress: Progress = None) -> SearchResult:
    """Run one search. ``table``: an NB201Table for true and oracle accuracy (optional)."""
    cfg.validate()
    device = load_device(cfg.device)
    budgets = budgets_for(cfg, device)
    check_bounds(cfg, device, budgets)
    target = latency_target(cfg, device)
    if target is not None:  # the weight acts through a ceiling, not through the rank mix
        ceiling = target if budgets.max_latency_ms is None else min(target, budgets.max_latency_ms)
        budgets = Budgets(ceiling, budgets.max_sram_bytes, budgets.max_flash_bytes)
    ds = get_dataset(cfg.dataset).name
    t0 = time.perf_counter()
    costs = CostModel(device, ds)
    store = ResultStore(cache_path) if cache_path else None
    w = cfg.weights(0.0 if target is not None else None)
    workers = cfg.workers or min(2, os.cpu_count() or 1)
    ev = Evaluator(costs, cfg.proxy_settings(), cfg.seed, store, w.names(), workers)
    try:
        return _run(cfg, ev, w, budgets, device, table, progress, t0)
    finally:
        ev.close()


def _run(cfg: SearchConfig, ev: Evaluator, w: Weights, budgets: Budgets, device: Device,
         table: Any, progress: Progress, t0: float) -> SearchResult:
    costs, store, ds = ev.costs, ev.store, ev.costs.dataset
    rng = np.random.default_rng(cfg.seed)
    strategy = STRATEGIES[cfg.strategy]
    kwargs: dict[str, Any] = {"rank_mode": cfg.rank_mode, "progress": progress}
    if cfg.strategy in ("evolution", "random"):
        kwargs["n"] = cfg.evaluations
    if cfg.strategy == "prune":
        kwargs.update(fill=cfg.fill, device=Budgets.with_device(device))
    res = strategy(ev, w, budgets, rng, **kwargs)
    arch: NB201Arch = res.arch
    if cfg.refine:
        # neighbours are single architectures: score them as `micronas score` does
        rev = Evaluator(costs, ProxySettings(dataset=ds), cfg.seed, store, w.names())
        arch, trail = refine(rev, w, budgets, arch, cfg.refine, cfg.rank_mode, progress)
        res.evaluations += rev.evaluations
        res.history = [*res.history, {"refine": trail}]
    final = ev.arch(arch)  # the chosen architecture's own indicators (cached when seen)
    elapsed = time.perf_counter() - t0
    c = costs.arch(arch)
    costs.save()
    out = SearchResult(
        arch=str(arch), index=arch.index, indicators=final.values,
        latency_ms=c.latency_ms, peak_sram_bytes=c.peak_sram_bytes, flash_bytes=c.flash_bytes,
        macs=c.macs, params=c.params,
        fits=c.peak_sram_bytes <= device.sram_bytes and c.flash_bytes <= device.flash_bytes,
        search_seconds=elapsed, seed=cfg.seed, evaluations=res.evaluations,
        config=asdict(cfg), history=res.history, versions=versions())
    if not budgets.ok(c):  # an invariant of every strategy; never hand back a violation
        raise MicronasError(f"internal error: {arch} violates {budgets.violations(c)}")
    if table is not None:
        out.accuracy = table.acc(arch, ds)
        best, best_arch = oracle(table, costs, budgets, ds)
        out.oracle_accuracy, out.oracle_arch = best, str(best_arch)
    return out


def oracle(table: Any, costs: CostModel, budgets: Budgets, dataset: str
           ) -> tuple[float, NB201Arch]:
    """The best true accuracy of any architecture meeting ``budgets``."""
    allc = costs.all_archs()
    feas = [a for a, c in allc.items() if budgets.ok(c)]
    if not feas:
        raise BudgetError("no NB201 architecture meets the budgets")
    best = max(feas, key=lambda a: table.acc(a, dataset))
    return table.acc(best, dataset), best
