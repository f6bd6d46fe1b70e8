"""Exact per-architecture costs on a device, memoised and cached on disk.

The deployed IR of an NB201 architecture depends only on its live ops (dead edges are
dropped), so costs are memoised by that "live key". A table of all 15,625 architectures
(for oracles and feasibility checks) is cached under the user cache directory, keyed by a
hash of the device profile, the dataset and the micronas version.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from micronas import __version__
from micronas.hardware import Device, estimate
from micronas.hardware.cost import COST_MODEL_REVISION, latency_ms
from micronas.hardware.planner import live_bytes
from micronas.ir import Network
from micronas.spaces.nb201 import NB201Arch, NB201Space
from micronas.spaces.nb201_ir import EdgeOps, live_edge_mask, nb201_network


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
                    max_flash_bytes: int | None = None) -> Budgets:
        """User budgets intersected with the device's SRAM and flash."""
        sram = device.sram_bytes if max_sram_bytes is None else min(max_sram_bytes,
                                                                     device.sram_bytes)
        flash = device.flash_bytes if max_flash_bytes is None else min(max_flash_bytes,
                                                                        device.flash_bytes)
        return Budgets(max_latency_ms, sram, flash)


def live_key(arch: NB201Arch) -> tuple[str, ...]:
    return tuple(op if lv else "none" for op, lv in zip(arch.ops, arch.live_edges(), strict=True))


def device_hash(device: Device) -> str:
    fields = {k: v for k, v in asdict(device).items() if k != "path"}
    fields["cost_model_revision"] = COST_MODEL_REVISION
    blob = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def costs_of(net: Network, device: Device) -> Costs:
    r = estimate(net, device)
    return Costs(r.latency_ms, r.peak_sram_bytes, r.flash_bytes, r.macs, r.params)


def _cache_dir() -> Path:
    env = os.environ.get("MICRONAS_CACHE")
    base = Path(env).parent if env else Path(os.environ.get(
        "XDG_CACHE_HOME", Path.home() / ".cache")) / "micronas"
    return base / "costs"


class CostModel:
    """Memoised exact costs of NB201 architectures (and supernets) on one device."""

    def __init__(self, device: Device, dataset: str = "cifar10", disk_cache: bool = True):
        self.device = device
        self.dataset = dataset
        self._memo: dict[tuple[str, ...], Costs] = {}
        self._capacity: dict[tuple[tuple[tuple[str, ...], ...], Budgets], int] = {}
        self._path = (_cache_dir() / f"{device.name}-{dataset}-{device_hash(device)}-"
                      f"{__version__}.json") if disk_cache else None
        if self._path and self._path.is_file():
            try:
                raw = json.loads(self._path.read_text())
                self._memo = {tuple(k.split(",")): Costs(**v) for k, v in raw.items()}
            except (ValueError, TypeError):
                self._memo = {}  # unreadable cache: recompute (it is only a cache)
        self._dirty = False

    def arch(self, arch: NB201Arch) -> Costs:
        key = live_key(arch)
        c = self._memo.get(key)
        if c is None:
            c = costs_of(nb201_network(arch, self.dataset), self.device)
            self._memo[key] = c
            self._dirty = True
        return c

    def supernet(self, edge_ops: EdgeOps) -> Costs:
        """Latency and MACs of the supernet itself (every op on every edge computed); its
        memory is not needed by the search and is reported as 0."""
        net = nb201_network(edge_ops, self.dataset)
        return Costs(latency_ms(net, self.device), 0, 0, net.macs, net.params)

    def completions(self, edge_ops: EdgeOps) -> Iterable[NB201Arch]:
        """Architectures that pick one op per edge of ``edge_ops``, cheapest-looking first."""
        weight = {"none": 0, "skip_connect": 0, "avg_pool_3x3": 1, "nor_conv_1x1": 2,
                  "nor_conv_3x3": 9}
        combos = itertools.product(*[sorted(s, key=lambda o: (weight[o], o)) for s in edge_ops])
        return (NB201Arch(c) for c in sorted(combos, key=lambda c: sum(weight[o] for o in c)))

    def feasible_completion(self, edge_ops: EdgeOps, budgets: Budgets) -> NB201Arch | None:
        """A completion of ``edge_ops`` that meets ``budgets``, or None if none does."""
        for a in self.completions(edge_ops):
            if budgets.ok(self.arch(a)):
                return a
        return None

    def capacity(self, edge_ops: EdgeOps, budgets: Budgets) -> int:
        """The most parameters of a completion of ``edge_ops`` that meets ``budgets`` (0 if
        none found): how much of the budgets the supernet can still use.

        Completions are taken with, on each edge, the cheapest op of each parameter count:
        avg_pool_3x3 only where the edge has no skip_connect (same parameters, never faster or
        smaller in flash), so a pruning round costs at most 3^6 = 729 networks once, not 4^6.
        A skip can hold a buffer longer than a pool, so under an SRAM budget this is a lower
        bound of the true maximum; the completion it reports always meets the budgets."""
        reduced = tuple(tuple(sorted(_cheapest_per_param_class(s))) for s in edge_ops)
        key = (reduced, budgets)
        cap = self._capacity.get(key)
        if cap is None:
            archs = map(NB201Arch, itertools.product(*reduced))
            cap = max((c.params for c in map(self.arch, archs) if budgets.ok(c)), default=0)
            self._capacity[key] = cap
        return cap

    def all_archs(self, archs: Sequence[NB201Arch] | None = None) -> dict[NB201Arch, Costs]:
        """Costs of every architecture (all 15,625 by default); saved to the disk cache."""
        archs = list(archs) if archs is not None else list(NB201Space().enumerate())
        out = {a: self.arch(a) for a in archs}
        self.save()
        return out

    def save(self) -> None:
        """Write the memo to the disk cache atomically (temporary file, then rename)."""
        if not (self._path and self._dirty):
            return
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._path.parent, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump({",".join(k): asdict(v) for k, v in self._memo.items()}, f)
            os.replace(tmp, self._path)
            self._dirty = False
        except OSError:
            pass  # a cache that cannot be written only costs time


def _cheapest_per_param_class(ops: frozenset[str] | set[str]) -> set[str]:
    if "skip_connect" in ops:
        return set(ops) - {"avg_pool_3x3"}
    return set(ops)


def lower_bound(device: Device, dataset: str) -> Costs:
    """Costs no NB201 architecture can go below: the layers every network has.

    The identity cell (``skip_connect`` chains) adds no layers, so its network holds exactly
    the stem, the reductions and the head; only its unfused ReLU layers may be absent in
    other architectures, so those are excluded from the latency bound. Flash and SRAM of
    that network bound every architecture from below (SRAM: the most bytes live at once
    during those layers, which no planner can beat, plus scratch and reserved RAM).
    """
    ident = NB201Arch(("skip_connect", "none", "none", "skip_connect", "none", "none"))
    net = nb201_network(ident, dataset)
    r = estimate(net, device)
    relu = sum(lc.latency_ms for lc in r.layers if lc.op == "relu")
    live = max(live_bytes(net, device.runtime.arena_alignment_bytes))
    sram = r.peak_sram_bytes - r.persistent_bytes - r.arena_bytes + live
    return Costs(r.latency_ms - relu, sram, r.flash_bytes
                 - device.runtime.per_layer_flash_bytes * sum(1 for la in net.layers
                                                              if la.op == "relu"),
                 r.macs, r.params)


__all__ = ["Budgets", "CostModel", "Costs", "live_edge_mask", "lower_bound"]
