"""Exact costs of a space's architectures on a device, memoised and cached on disk, and the
budgets a search must meet.

Architectures with the same ``cost_key`` (NB201: the same live ops) deploy to the same
network, so costs are memoised by it. The memo is cached in the cache directory
(:mod:`micronas.infra.cache`), in a file named by a hash of the space, the task, the device
profile, the cost model's revision and the micronas version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from micronas import __version__
from micronas.errors import BudgetError
from micronas.hardware import Device, estimate
from micronas.hardware.cost import COST_MODEL_REVISION, latency_ms
from micronas.hardware.planner import live_bytes
from micronas.infra.cache import Memo
from micronas.ir import TFLITE_OPS, Network, lower_for_tflm
from micronas.spaces import HasFloor, SearchSpace, Shrinkable, cost_key, offers
from micronas.spaces.base import State, enumerate_space
from micronas.tasks import Task


@dataclass(frozen=True)
class Costs:
    """The costs a search constrains and optimises (ms, bytes, MACs)."""

    latency_ms: float
    peak_sram_bytes: int
    flash_bytes: int
    macs: int
    params: int


@dataclass(frozen=True)
class Budgets:
    """Hard limits; None = unconstrained. The device's own SRAM and flash always apply."""

    max_latency_ms: float | None = None
    max_sram_bytes: int | None = None
    max_flash_bytes: int | None = None

    def violations(self, c: Costs) -> list[str]:
        """Why ``c`` is infeasible (empty when it meets every budget)."""
        out = []
        if self.max_latency_ms is not None and c.latency_ms > self.max_latency_ms:
            out.append(f"latency {c.latency_ms:.2f} ms > {self.max_latency_ms:.2f} ms")
        if self.max_sram_bytes is not None and c.peak_sram_bytes > self.max_sram_bytes:
            out.append(f"peak SRAM {c.peak_sram_bytes / 1024:.1f} KB > "
                       f"{self.max_sram_bytes / 1024:.1f} KB")
        if self.max_flash_bytes is not None and c.flash_bytes > self.max_flash_bytes:
            out.append(f"flash {c.flash_bytes / 1024:.1f} KB > {self.max_flash_bytes / 1024:.1f} KB")
        return out

    def ok(self, c: Costs) -> bool:
        return not self.violations(c)

    @staticmethod
    def with_device(device: Device, max_latency_ms: float | None = None,
                    max_sram_bytes: int | None = None,
                    max_flash_bytes: int | None = None, reserve_sram_bytes: int = 0,
                    reserve_flash_bytes: int = 0) -> Budgets:
        """User budgets intersected with the device's SRAM and flash less what is reserved
        for the application."""
        dev_sram = device.sram_bytes - reserve_sram_bytes
        dev_flash = device.flash_bytes - reserve_flash_bytes
        sram = dev_sram if max_sram_bytes is None else min(max_sram_bytes, dev_sram)
        flash = dev_flash if max_flash_bytes is None else min(max_flash_bytes, dev_flash)
        return Budgets(max_latency_ms, sram, flash)


def device_hash(device: Device) -> str:
    fields = {k: v for k, v in asdict(device).items() if k != "path"}
    fields["cost_model_revision"] = COST_MODEL_REVISION
    blob = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def costs_of(net: Network, device: Device) -> Costs:
    r = estimate(net, device)
    return Costs(r.latency_ms, r.peak_sram_bytes, r.flash_bytes, r.macs, r.params)


class CostModel:
    """Memoised exact costs of a space's architectures (and supernets) for a task on one
    device. ``cache_dir``: where the memo lives (default: the cache directory rule)."""

    def __init__(self, space: SearchSpace, task: Task, device: Device, disk_cache: bool = True,
                 cache_dir: str | None = None):
        self.space = space
        self.task = task
        self.device = device
        blob = json.dumps([space.name, task.key(), device_hash(device), __version__])
        name = f"costs-{space.name}-{hashlib.sha256(blob.encode()).hexdigest()[:20]}.json"
        self._memo = Memo(name, cache_dir, enabled=disk_cache)
        self._costs: dict[str, Costs] = {}
        try:
            self._costs = {k: Costs(**v) for k, v in self._memo.data.items()}
        except TypeError:
            self._memo.data = {}  # a memo of another layout: recompute (it is only a cache)
        self._capacity: dict[tuple[State, Budgets], int] = {}

    def arch(self, arch: Any) -> Costs:
        key = cost_key(self.space, arch)
        c = self._costs.get(key)
        if c is None:
            c = costs_of(self.space.to_network(arch, self.task), self.device)
            self._costs[key] = c
            self._memo.put(key, asdict(c))
        return c

    def supernet(self, state: State) -> Costs:
        """Latency and MACs of the supernet itself (every op on every edge computed); its
        memory is not needed by the search and is reported as 0."""
        net = self.space.supernet().to_network(state, self.task)
        return Costs(latency_ms(net, self.device), 0, 0, net.macs, net.params)

    def feasible_completion(self, state: State, budgets: Budgets) -> Any | None:
        """A completion of the supernet ``state`` that meets ``budgets``, or None."""
        for a in self.space.supernet().completions(state):
            if budgets.ok(self.arch(a)):
                return a
        return None

    def capacity(self, state: State, budgets: Budgets) -> int:
        """The most parameters of a completion of ``state`` that meets ``budgets`` (0 if
        none found): how much of the budgets the supernet can still use. Scans the
        supernet's ``capacity_archs`` (for every parameter count the cheapest completion;
        a skip can hold a buffer longer than a pool, so under an SRAM budget this is a
        lower bound of the true maximum; the completion it reports always meets the
        budgets)."""
        key = (state, budgets)
        cap = self._capacity.get(key)
        if cap is None:
            archs = self.space.supernet().capacity_archs(state)
            cap = max((c.params for c in map(self.arch, archs) if budgets.ok(c)), default=0)
            self._capacity[key] = cap
        return cap

    def all_archs(self, archs: Sequence[Any] | None = None) -> dict[Any, Costs]:
        """Costs of every architecture (the whole space by default); saved to the memo."""
        archs = list(archs) if archs is not None else list(enumerate_space(self.space))
        out = {a: self.arch(a) for a in archs}
        self.save()
        return out

    def save(self) -> None:
        """Write the memo to the disk cache atomically."""
        self._memo.save()


def lower_bound(space: SearchSpace, task: Task, device: Device) -> Costs | None:
    """Costs no architecture of ``space`` can go below (None when the space has no
    ``floor``): the layers every network has, i.e. the floor architecture's network (the
    least, cost by cost, of the space's ``floors()`` where it has several: one per input
    resolution, each with its own input resize).

    Only its unfused ReLU layers may be absent in other architectures, so those are
    excluded from the latency and flash bounds; its SRAM bound is the most bytes live at
    once during those layers (which no planner can beat) plus scratch and reserved RAM.
    """
    if not offers(space, HasFloor):
        return None
    floors = space.floors() if hasattr(space, "floors") else [space.floor()]
    bounds = [floor_costs(space, task, device, f) for f in floors]
    return Costs(min(b.latency_ms for b in bounds), min(b.peak_sram_bytes for b in bounds),
                 min(b.flash_bytes for b in bounds), min(b.macs for b in bounds),
                 min(b.params for b in bounds))


def floor_costs(space: SearchSpace, task: Task, device: Device, floor: Any = None) -> Costs:
    """The costs :func:`lower_bound` takes from one floor architecture (``space.floor()``
    unless given): its network's, less the unfused ReLU layers other architectures may lack."""
    net = space.to_network(space.floor() if floor is None else floor, task)
    r = estimate(net, device)
    relu = sum(lc.latency_ms for lc in r.layers if lc.op in ("relu", "relu6"))
    live = max(live_bytes(net, device.runtime.arena_alignment_bytes))
    sram = r.peak_sram_bytes - r.persistent_bytes - r.arena_bytes + live
    ops = {TFLITE_OPS[la.op] for la in lower_for_tflm(net).layers if la.op in TFLITE_OPS}
    rt = device.runtime
    relu_code = rt.code_bytes(ops) - rt.code_bytes(ops - {"RELU", "RELU6"})
    return Costs(r.latency_ms - relu, sram, r.flash_bytes - relu_code
                 - rt.per_layer_flash_bytes * sum(1 for la in net.layers
                                                  if la.op in ("relu", "relu6")),
                 r.macs, r.params)


class BudgetFilter:
    """The one filter in front of every strategy: which architectures meet the budgets.
    Strategies never propose, evaluate or return an architecture it rejects."""

    def __init__(self, costs: CostModel, budgets: Budgets, device_limits: Budgets):
        self.costs = costs
        self.budgets = budgets
        self.device_limits = device_limits  # the device's own memory only

    def ok(self, arch: Any) -> bool:
        return self.budgets.ok(self.costs.arch(arch))

    def violations(self, arch: Any) -> list[str]:
        return self.budgets.violations(self.costs.arch(arch))

    def sample(self, rng: Any, tries: int = 20000, walk_after: int = 20) -> Any:
        """A feasible architecture drawn with ``rng``: redrawn until it meets the budgets. A
        space that can ``shrink`` an architecture (one choice made smaller) turns a draw that
        still misses after ``walk_after`` redraws into a random walk down to the budgets, so
        tight budgets (where few draws fit) are met in a few steps."""
        space = self.costs.space
        walk = offers(space, Shrinkable)
        for i in range(tries):
            a = space.sample(rng)
            if self.ok(a):
                return a
            if walk and i >= walk_after:
                while a is not None and not self.ok(a):
                    a = space.shrink(a, rng)
                if a is not None:
                    return a
        raise BudgetError("could not sample an architecture within the budgets; loosen them")

    def feasible(self, archs: Iterable[Any]) -> list[Any]:
        return [a for a in archs if self.ok(a)]


__all__ = ["BudgetFilter", "Budgets", "CostModel", "Costs", "floor_costs", "lower_bound"]
