"""``micronas search``: settings, the run, and its result."""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Hashable
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from micronas import __version__
from micronas.errors import BudgetError, MicronasBug, MicronasError
from micronas.hardware import Device, load_device
from micronas.hardware.frontend import FrontEndCost, frontend_cost
from micronas.infra.cache import ResultStore, cache_dir
from micronas.infra.execution import default_threads, workers_beside
from micronas.search.config import SearchConfig
from micronas.search.costs import BudgetFilter, Budgets, CostModel, floor_costs, lower_bound
from micronas.search.evaluate import Evaluation, Evaluator
from micronas.search.objective import Weights
from micronas.search.pareto import front
from micronas.search.strategies import Progress, Refine, drive, make_strategy
from micronas.spaces import Candidate, HasSupernet, SearchSpace, bind, get_space, index_of, offers
from micronas.tasks import Task


class GroundTruth(Protocol):
    """A ground-truth table of a space: the trained accuracy (%) of an architecture."""

    def acc(self, arch: Hashable, task: Task) -> float: ...


@dataclass
class SearchResult:
    """The chosen architecture, its indicators and costs, and how it was found."""

    arch: str
    index: int | None
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
    space: str = "nb201"
    task: str = "cifar10"
    input_shape: tuple[int, int, int] = (3, 32, 32)
    classes: int = 10
    #: the resolution the network computes at, (C, H, W): the task's input, or lower where
    #: the network resizes its input itself (``resolution`` says which and why)
    network_input: tuple[int, int, int] | None = None
    #: how the resolution was chosen: ``side`` and ``input`` (H, W), ``chosen_by`` ("task":
    #: the input as it is, "--resolutions", or "search": the search lowered it because the
    #: budgets cannot be met at the input), ``searched`` (the sides drawn), ``reason`` (the
    #: floors missed at the input), ``resize_latency_ms`` (the network's own resize, in
    #: ``latency_ms``) and ``note`` (one line for the outputs; empty at the task's input)
    resolution: dict[str, Any] = field(default_factory=dict)
    reserve_sram_bytes: int = 0    # left to the application (the budgets exclude it)
    reserve_flash_bytes: int = 0
    pareto: list[dict[str, Any]] = field(default_factory=list)  # feasible evaluated front
    accuracy: float | None = None
    oracle_accuracy: float | None = None
    oracle_arch: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    #: the runtime the latency and memory are for (its name, ", extrapolated" where its
    #: latency on the device's core is not grounded) and where its constants come from
    runtime: str = ""
    runtime_source: str = ""
    #: where the device profile came from ("built-in", "yours (PATH)", "file PATH")
    device_origin: str = ""
    #: an audio task's front end: its parameters, its cost on the device and the totals
    #: (network + front end) the budgets were checked on; None for other tasks
    frontend: dict[str, Any] | None = None
    #: how the objective's noise was measured and whether a network with fewer parameters
    #: within it replaced the best-scored one (:func:`fewer_params`); None when not compared
    parsimony: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        if self.accuracy is None:
            for k in ("accuracy", "oracle_accuracy", "oracle_arch"):
                d.pop(k)
        return d


def latency_target(cfg: SearchConfig, costs: CostModel) -> float | None:
    """``latency_mode="target"``: the latency weight w sets a latency ceiling by geometric
    interpolation between the slowest and the fastest-looking completion of the space's
    full supernet (NB201: every edge conv3x3, every edge skip_connect):
    L_hi^(1-w) * L_lo^w. w = 0 sets none (TE-NAS)."""
    if cfg.objective.latency_mode != "target" or cfg.objective.latency_weight <= 0:
        return None
    if not offers(costs.space, HasSupernet):
        raise MicronasError(f"--latency-mode target needs a supernet, which space "
                            f"{costs.space.name!r} lacks; use --max-latency-ms")
    sn = costs.space.supernet()
    order = list(sn.completions(sn.full()))
    lo, hi = costs.arch(order[0]).latency_ms, costs.arch(order[-1]).latency_ms
    w = cfg.objective.latency_weight
    return hi ** (1 - w) * lo ** w


def check_bounds(space: SearchSpace, task: Task, device: Device, budgets: Budgets,
                 fixed_resolution: bool = False) -> None:
    """Refuse budgets no architecture can meet, before searching (from the space's cost
    lower bound), in one line that names each floor the budgets miss and what would relax
    them: the budget itself, a lower input resolution (square inputs the space can shrink),
    a device whose floor meets them."""
    lb = lower_bound(space, task, device)
    why = budgets.violations(lb) if lb is not None else []
    if not why or lb is None:
        return
    floors = "; ".join(w.replace(" > ", " (budget ") + ")" for w in why)
    relax = []
    if budgets.max_latency_ms is not None and lb.latency_ms > budgets.max_latency_ms:
        lowest = None if fixed_resolution else _lowest_side_floor(space, task, device)
        if lowest is not None and lowest[1].latency_ms < lb.latency_ms:
            relax.append(f"--max-latency-ms {math.ceil(lowest[1].latency_ms * 1.01)} (at "
                         f"{lowest[0]}x{lowest[0]}, the lowest resolution the search would "
                         "lower the input to)")
        else:
            relax.append(f"--max-latency-ms {math.ceil(lb.latency_ms * 1.01)}")
    side = _resolution_that_fits(space, task, device, budgets)
    if side is not None:
        relax.append(f"dropping --fixed-resolution (the search then lowers the resolution to "
                     f"{side}x{side} or below, the network resizing its input)" if fixed_resolution
                     else f"--resolutions {side} (the network resizes its input to "
                     f"{side}x{side} itself)")
    dev = _device_that_fits(space, task, device, budgets)
    if dev is not None:
        relax.append(f"a larger device such as {dev}")
    raise BudgetError(f"no {space.name.upper()} architecture can meet the budgets on "
                      f"{device.name}: even the smallest network has {floors} (the lower "
                      f"bound); try {' or '.join(relax) if relax else 'a larger device'}")


def _resolution_that_fits(space: SearchSpace, task: Task, device: Device,
                          budgets: Budgets) -> int | None:
    """The largest lower square side (multiples of 8) at which the space's floor, resizing
    the task's input to it, meets the budgets, for a square custom task whose resolution may
    be searched."""
    c, h, w = task.input_shape
    if h != w or task.resolutions is not None or not task.name.startswith("custom-"):
        return None
    base = get_space(space.name)
    for side in range((h - 1) // 8 * 8, 7, -8):
        t = Task.custom(task.input_shape, task.classes, name=task.name, resolutions=(side,))
        try:
            bound = bind(base, t)
            lb = floor_costs(bound, t, device)  # the floor at the lowest side: this one
        except MicronasError:  # the space cannot take that input
            return None
        if budgets.ok(lb):
            return side
    return None


def _lowest_side_floor(space: SearchSpace, task: Task, device: Device) -> tuple[int, Any] | None:
    """The lowest side (multiple of 8) a search may lower a square custom task's input to, and
    the costs of the space's floor there (None where the resolution is fixed)."""
    c, h, w = task.input_shape
    if h != w or task.resolutions is not None or not task.name.startswith("custom-") or h <= 8:
        return None
    t = Task.custom(task.input_shape, task.classes, name=task.name, resolutions=(8,))
    try:
        return 8, floor_costs(bind(get_space(space.name), t), t, device)
    except MicronasError:
        return None


def lower_resolution(space: SearchSpace, task: Task, device: Device,
                     budgets: Budgets) -> tuple[Task, str] | None:
    """For a square custom task without ``--resolutions`` whose budgets even the space's
    smallest network at the input cannot meet: the task bound to the lower sides to search
    (multiples of 8, from the largest at which the smallest network, resizing its input,
    meets the budgets, down to about half of it) and why (the floors missed at the input).
    None when the input's resolution stays: its floor meets the budgets, the resolution is
    fixed, or no lower side helps (then :func:`check_bounds` names the floors)."""
    lb = lower_bound(space, task, device)
    if lb is None or budgets.ok(lb):
        return None
    side = _resolution_that_fits(space, task, device, budgets)
    if side is None:
        return None
    sides = tuple(s for s in range(side, 7, -8) if 2 * s >= side)
    why = "; ".join(budgets.violations(lb))
    _, h, w = task.input_shape
    return (Task.custom(task.input_shape, task.classes, name=task.name,
                        resolutions=tuple(sorted(sides))),
            f"at {h}x{w} even the smallest network has {why}")


def resolution_choice(space: SearchSpace, task: Task, device: Device, arch: Any,
                      reason: str | None) -> dict[str, Any]:
    """How the network's resolution was chosen (``SearchResult.resolution``): read from its
    IR (a network that resizes its input starts with a ``resize_bilinear`` layer), the resize's
    latency from the same estimate as every other cost."""
    from micronas.hardware import estimate

    net = Candidate(space, arch, task).network()
    first = net.layers[0] if net.layers else None
    shape = tuple(net.tensors[net.inputs[0]].shape)
    resize_ms = 0.0
    if first is not None and first.op == "resize_bilinear":
        shape = tuple(net.tensors[first.output].shape)
        report = estimate(net, device)
        resize_ms = sum(lc.latency_ms for lc in report.layers if lc.op == "resize_bilinear")
    _, h, w = task.input_shape
    side = tuple(shape[1:3]) if len(shape) == 3 else (h, w)
    chosen_by = "search" if reason else ("--resolutions" if task.resolutions and reason is None
                                        and side != (h, w) else "task")
    note = ""
    if side != (h, w):
        why = f": {reason}" if reason else " (--resolutions)"
        guessed = ", extrapolated" if "resize" in device.runtime.extrapolated_classes else ""
        note = (f"resolution {side[0]}x{side[1]} of {h}x{w}{why}; the network resizes its "
                f"input ({resize_ms:.1f} ms counted{guessed})")
    elif reason:
        note = f"resolution {h}x{w} (the input's){': ' + reason}"
    return {"network": list(shape), "side": list(side), "input": [h, w], "chosen_by": chosen_by,
            "searched": sorted(task.resolutions) if task.resolutions else None,
            "reason": reason or "", "resize_latency_ms": resize_ms, "note": note}


def _device_that_fits(space: SearchSpace, task: Task, device: Device,
                      budgets: Budgets) -> str | None:
    """A built-in device on which the space's floor meets the same latency budget and its
    memory (the first by clock)."""
    from micronas.hardware import builtin_devices

    out = []
    for name in builtin_devices():
        if name == device.name:
            continue
        d = load_device(name, device.runtime.name)
        lb = lower_bound(space, task, d)
        mine = Budgets.with_device(d, budgets.max_latency_ms)
        if lb is not None and mine.ok(lb):
            out.append((d.clock_mhz, name))
    return min(out)[1] if out else None


def versions() -> dict[str, str]:
    import scipy
    import torch

    return {"micronas": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__, "torch": torch.__version__}


def run_search(cfg: SearchConfig, table: GroundTruth | None = None, cache_path: str | None = None,
               progress: Progress = None, executor: Executor | None = None) -> SearchResult:
    """Run one search. ``table``: a ground-truth table of the space (``acc(arch, task)``)
    for true and oracle accuracy (optional). ``executor``: the caller's, for the indicators
    (left open), instead of the one ``cfg`` names."""
    cfg = replace(cfg, strategy=replace(cfg.strategy, name=cfg.resolved_strategy()))
    task = cfg.resolve_task()
    space = bind(get_space(cfg.space), task)
    device = load_device(cfg.device, cfg.runtime)
    reserve = cfg.reserves(device)  # bytes of SRAM and flash left to the application
    budgets = cfg.budgets.for_device(device, reserve)
    fe = None if task.frontend is None else frontend_cost(task.frontend, device)
    if fe is not None:  # the network gets what the front end leaves
        budgets = network_budgets(budgets, fe, device)
    lowered = None if cfg.task.fixed_resolution else lower_resolution(space, task, device,
                                                                       budgets)
    if lowered is not None:  # the budgets cannot be met at the input: search lower sides
        task = lowered[0]
        space = bind(get_space(cfg.space), task)
    check_bounds(space, task, device, budgets, cfg.task.fixed_resolution)
    t0 = time.perf_counter()
    # the cost memo lives beside the results cache (--cache); no cache, no memo on disk
    costs = CostModel(space, task, device, disk_cache=cache_path is not None,
                      cache_dir=None if cache_path is None else str(cache_dir(cache_path)))
    target = latency_target(cfg, costs)
    if target is not None:  # the weight acts through a ceiling, not through the rank mix
        ceiling = target if budgets.max_latency_ms is None else min(target, budgets.max_latency_ms)
        budgets = Budgets(ceiling, budgets.max_sram_bytes, budgets.max_flash_bytes)
    store = ResultStore(cache_path) if cache_path else None
    w = cfg.weights(0.0 if target is not None else None)
    # by default the indicators run here, on two threads when there are two cores or more
    # (ThreadExecutor; peak RSS ~330 MB; each worker process imports torch, ~400 MB more)
    # --workers N (N >= 2): N - 1 worker processes beside this one, started now so their
    # start-up overlaps ours (HybridExecutor)
    ex = cfg.execution
    ours = None if executor is not None else workers_beside(ex.workers, ex.executor)
    how: str | Executor = next((e for e in (executor, ours) if e is not None),
                               ex.executor or f"thread:{default_threads()}")  # thread:1: serial
    try:
        ev = Evaluator(costs, cfg.proxy, cfg.seed, store, w.names(), how)
        try:
            limits = Budgets.with_device(device, None, None, None, *reserve)
            if fe is not None:
                limits = network_budgets(limits, fe, device)
            out = _run(cfg, ev, w, BudgetFilter(costs, budgets, limits), device, reserve, table,
                       progress, t0, fe)
            out.resolution = resolution_choice(space, task, device, space.parse(out.arch),
                                               lowered[1] if lowered else None)
            out.network_input = tuple(out.resolution["network"])  # type: ignore[assignment]
            return out
        finally:
            ev.close()
    finally:
        if ours is not None:  # Evaluator closes only what it made from a spec
            ours.shutdown(wait=True, cancel_futures=True)
        if store:
            store.close()


def network_budgets(b: Budgets, fe: FrontEndCost, device: Device) -> Budgets:
    """``b`` less what the audio front end takes: its latency, SRAM and flash."""
    lat = None if b.max_latency_ms is None else b.max_latency_ms - fe.latency_ms
    sram = None if b.max_sram_bytes is None else b.max_sram_bytes - fe.sram_bytes
    flash = None if b.max_flash_bytes is None else b.max_flash_bytes - fe.flash_bytes
    for what, left, need in (("latency", lat, f"{fe.latency_ms:.2f} ms"),
                             ("SRAM", sram, f"{fe.sram_bytes / 1024:.1f} KB"),
                             ("flash", flash, f"{fe.flash_bytes / 1024:.1f} KB")):
        if left is not None and left <= 0:
            raise BudgetError(f"the audio front end alone takes {need} of {device.name}'s {what} "
                              "budget (after the reserve); loosen the budget, shorten the clip "
                              "or choose a faster device")
    return Budgets(lat, sram, flash)


def frontend_info(task: Task, fe: FrontEndCost | None, net_latency_ms: float, net_sram: int,
                  net_flash: int) -> dict[str, Any] | None:
    """The front end's parameters, its cost and the totals with the network (result.json)."""
    if fe is None or task.frontend is None:
        return None
    return {"parameters": task.frontend.to_dict(), "description": task.frontend.describe(),
            "cost": fe.to_dict(), "total_latency_ms": net_latency_ms + fe.latency_ms,
            "total_peak_sram_bytes": net_sram + fe.sram_bytes,
            "total_flash_bytes": net_flash + fe.flash_bytes}


def _run(cfg: SearchConfig, ev: Evaluator, w: Weights, filt: BudgetFilter, device: Device,
         reserve: tuple[int, int], table: GroundTruth | None, progress: Progress, t0: float,
         fe: FrontEndCost | None = None) -> SearchResult:
    space, task, costs = ev.space, ev.task, ev.costs
    rng = np.random.default_rng(cfg.seed)
    st, mode = cfg.strategy, cfg.objective.rank_mode
    strategy = make_strategy(st.name, space, task, filt, w, rng, mode, **st.options(cfg.space))
    res = drive(strategy, ev, progress)
    arch = res.arch
    seen = list(strategy.evaluated)
    if st.refine:  # the same evaluator: the search's indicator settings and cache
        refine = Refine(space, task, filt, w, rng, mode, start=arch, steps=st.refine)
        ref = drive(refine, ev, progress)
        arch = ref.arch
        res.evaluations += ref.evaluations
        res.history = [*res.history, *ref.history]
        seen += refine.evaluated
    parsimony = None
    if cfg.objective.prefer_fewer_params:
        arch, parsimony = fewer_params(seen, arch, ev, w, mode, progress)
        res.evaluations += parsimony["rescored"] if parsimony else 0
    n_evals = res.evaluations
    final = ev.arch(arch, progress)  # its own indicators (cached when seen): the bar's last step
    elapsed = time.perf_counter() - t0
    c = final.costs
    costs.save()
    out = SearchResult(
        arch=space.format(arch), index=index_of(space, arch), indicators=final.values,
        latency_ms=c.latency_ms, peak_sram_bytes=c.peak_sram_bytes, flash_bytes=c.flash_bytes,
        macs=c.macs, params=c.params,
        fits=(c.peak_sram_bytes + (fe.sram_bytes if fe else 0) <= device.sram_bytes
              and c.flash_bytes + (fe.flash_bytes if fe else 0) <= device.flash_bytes),
        search_seconds=elapsed, seed=cfg.seed, evaluations=n_evals,
        config=cfg.to_dict(), space=space.name, task=task.name, input_shape=task.input_shape,
        classes=task.classes, history=res.history, versions=versions(),
        runtime=device.runtime.label(), runtime_source=device.runtime.latency_source,
        device_origin=device.origin,
        frontend=frontend_info(task, fe, c.latency_ms, c.peak_sram_bytes, c.flash_bytes),
        parsimony=parsimony)
    out.reserve_sram_bytes, out.reserve_flash_bytes = reserve
    out.pareto = front(out.history, out.arch, out.indicators, out.latency_ms, w.indicators)
    if not filt.ok(arch):  # an invariant of every strategy; never hand back a violation
        raise MicronasBug(f"the search returned {out.arch}, which violates "
                          f"{filt.violations(arch)}")
    if table is not None:
        out.accuracy = table.acc(arch, task)
        best, best_arch = oracle(table, costs, filt.budgets, task)
        out.oracle_accuracy, out.oracle_arch = best, space.format(best_arch)
    return out


#: how many of the best-scored architectures :func:`fewer_params` scores again
PARSIMONY_TOP = 6


def fewer_params(seen: list[Evaluation], chosen: Any, ev: Evaluator, w: Weights, mode: str,
                 progress: Progress = None, top: int = PARSIMONY_TOP
                 ) -> tuple[Any, dict[str, Any] | None]:
    """Among the architectures whose score is within the objective's noise of ``chosen``'s,
    the one with the fewest parameters.

    The noise is measured, not assumed: the ``top`` best-scored architectures the search
    evaluated are scored again with the next indicator seed, and the noise is the mean
    absolute change of their hybrid score (ranks over everything evaluated). An architecture
    of those ``top`` is within the noise when its score is at least ``chosen``'s less that
    noise. Returns the pick and a record for the result (None when the search evaluated too
    few complete architectures to compare, as NB201's pruning does)."""
    from micronas.search.strategies import _scores

    evals: dict[Any, Evaluation] = {}
    for x in seen:
        if not x.candidate.supernet:
            evals.setdefault(x.arch, x)
    if chosen not in evals or len(evals) < 3:
        return chosen, None
    items = list(evals.values())
    s0 = _scores(items, w, mode)
    order = [int(i) for i in np.argsort(-s0, kind="stable")[:top]]
    i_chosen = next(i for i, x in enumerate(items) if x.arch == chosen)
    if i_chosen not in order:
        order = [*order[:-1], i_chosen]
    again = Evaluator(ev.costs, ev.settings, ev.seed + 1, ev.store, ev.indicators, ev.executor)
    re = again.evaluate([items[i].candidate for i in order], progress)
    items2 = list(items)
    for i, x in zip(order, re, strict=True):
        items2[i] = x
    s1 = _scores(items2, w, mode)
    noise = float(np.mean([abs(s1[i] - s0[i]) for i in order]))
    floor = s0[i_chosen] - noise
    within = [i for i in order if s0[i] >= floor]
    pick = min(within, key=lambda i: (items[i].costs.params, -s0[i]))
    record = {"noise": noise, "rescored": len(order), "seed": ev.seed + 1,
              "within_noise": len(within), "best_scored": ev.space.format(chosen),
              "best_scored_params": items[i_chosen].costs.params,
              "chosen_params": items[pick].costs.params,
              "score_gap": float(s0[i_chosen] - s0[pick]),
              "compared": [{"arch": ev.space.format(items[i].arch), "params": items[i].costs.params,
                            "score": float(s0[i]), "score_again": float(s1[i]),
                            "within_noise": i in within} for i in order]}
    if pick != i_chosen:
        record["note"] = (f"chose {items[pick].costs.params:,} params over the best-scored "
                          f"{items[i_chosen].costs.params:,} ({ev.space.format(chosen)}): scores "
                          f"{s0[i_chosen] - s0[pick]:.3f} apart, within the objective's noise "
                          f"{noise:.3f} (--no-prefer-fewer-params keeps the best-scored)")
    return items[pick].arch, record


def oracle(table: GroundTruth, costs: CostModel, budgets: Budgets, task: Task) -> tuple[float, Any]:
    """The best true accuracy of any architecture meeting ``budgets``."""
    allc = costs.all_archs()
    feas = [a for a, c in allc.items() if budgets.ok(c)]
    if not feas:
        raise BudgetError(f"no {costs.space.name.upper()} architecture meets the budgets")
    best = max(feas, key=lambda a: table.acc(a, task))
    return table.acc(best, task), best
