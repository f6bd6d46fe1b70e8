"""The NB201 space behind the :class:`~micronas.spaces.base.SearchSpace` door."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from micronas.errors import ArchError
from micronas.ir import Network
from micronas.spaces.base import State
from micronas.spaces.nb201.arch import EDGES, NUM_ARCHS, OPS, NB201Arch, _index_tables
from micronas.spaces.nb201.network import EdgeOps, as_edge_ops, nb201_counts, nb201_network
from micronas.tasks import Task

if TYPE_CHECKING:
    from torch import nn

    from micronas.spaces.nb201.modules import OpPool

#: The ops the pruning supernet starts with (``none`` pre-pruned, as in MicroNAS and TE-NAS).
PRUNE_OPS = ("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")

#: Network sizes of the module variants: (stem width C, cells per stage N, stem).
_VARIANTS = {"full": (16, 5, True), "small": (3, 1, True), "thin": (1, 1, False)}


@cache
def _representatives() -> dict[str, NB201Arch]:
    reps: dict[str, NB201Arch] = {}
    for code in _index_tables()[0]:  # index order: the first seen has the lowest index
        a = NB201Arch._from_code(code)
        reps.setdefault(a.iso_key(), a)
    return reps


def _variant(variant: str) -> tuple[int, int, bool]:
    if variant not in _VARIANTS:
        raise ArchError(f"unknown NB201 network variant {variant!r}; choose from "
                        f"{', '.join(_VARIANTS)}")
    return _VARIANTS[variant]


def check_task(task: Task) -> Task:
    """NB201's two reductions halve height and width with a 2x2 pool beside a stride-2
    conv: both must be divisible by 4."""
    h, w = task.height, task.width
    if h % 4 or w % 4:
        raise ArchError(f"the NB201 network needs an input whose height and width are "
                        f"multiples of 4 (two 2x reductions); task {task.name} is {h}x{w}")
    return task


def _module(cell: NB201Arch | EdgeOps, task: Task, variant: str, pooled: bool = False,
            fused: bool | None = None) -> nn.Module:
    """``pooled``: ops from this process's OpPool; ``fused`` (default: as ``pooled``, i.e. for
    supernets): the cells run each node's ops together (modules.Cell)."""
    from micronas.spaces.nb201.modules import build_network

    check_task(task)
    C, N, stem = _variant(variant)
    return build_network(cell, task, C, N, seed=None, stem=stem,
                         pool=_op_pool() if pooled else None,
                         fused=pooled if fused is None else fused)


@cache
def _op_pool() -> OpPool:
    """This process's pool of reusable supernet ops (see OpPool)."""
    from micronas.spaces.nb201.modules import OpPool

    return OpPool()


class NB201Space:
    """NAS-Bench-201's cell space: 15,625 architectures with NB201's
    official index. Module variants: ``full`` (C=16, N=5: NB201's network), ``small``
    (TE-NAS's NTK network: C=3, one cell per stage), ``thin`` (TE-NAS's linear-region
    network: one channel, one cell per stage, no stem; it reads one-channel input)."""

    name = "nb201"

    # --- values ------------------------------------------------------------------------
    def parse(self, text: str | int) -> NB201Arch:
        """Parse an index (``"6111"`` or ``6111``) or a canonical string."""
        if isinstance(text, NB201Arch):
            return text
        if isinstance(text, int) and not isinstance(text, bool):
            return NB201Arch.from_index(text)
        s = str(text).strip()
        if s.isascii() and s.lstrip("-").isdigit():
            return NB201Arch.from_index(int(s))
        if not s.startswith("|"):
            raise ArchError(
                f"cannot read architecture {s!r}: give an NB201 index 0..{NUM_ARCHS - 1} or a "
                "string like |nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|...|"
            )
        return NB201Arch.from_string(s)

    def format(self, arch: NB201Arch) -> str:
        return str(arch)

    def size(self) -> int:
        return NUM_ARCHS

    def enumerate(self) -> Iterator[NB201Arch]:
        """All 15,625 architectures in NB201 index order."""
        for code in _index_tables()[0]:
            yield NB201Arch._from_code(code)

    def index(self, arch: NB201Arch) -> int:
        return arch.index

    def sample(self, rng: np.random.Generator) -> NB201Arch:
        return NB201Arch(tuple(OPS[int(i)] for i in rng.integers(0, len(OPS), len(EDGES))))

    def mutate(self, arch: NB201Arch, rng: np.random.Generator) -> NB201Arch:
        edge = int(rng.integers(len(EDGES)))
        choices = [op for op in OPS if op != arch.ops[edge]]
        new = list(arch.ops)
        new[edge] = choices[int(rng.integers(len(choices)))]
        return NB201Arch(tuple(new))

    def neighbours(self, arch: NB201Arch) -> list[NB201Arch]:
        out = []
        for edge in range(len(EDGES)):
            for op in OPS:
                if op != arch.ops[edge]:
                    new = list(arch.ops)
                    new[edge] = op
                    out.append(NB201Arch(tuple(new)))
        return out

    def iso_key(self, arch: NB201Arch) -> str:
        return arch.iso_key()

    def canonical(self, arch: NB201Arch) -> NB201Arch:
        """The lowest-index architecture computing the same function as ``arch``."""
        return _representatives()[arch.iso_key()]

    def cost_key(self, arch: NB201Arch) -> str:
        """The live ops (dead edges read as ``none``): the deployed IR depends only on them."""
        return ",".join(op if lv else "none"
                        for op, lv in zip(arch.ops, arch.live_edges(), strict=True))

    def floor(self) -> NB201Arch:
        """The identity cell (skip chains): its network holds only the stem, reductions and
        head, which every NB201 network has."""
        return NB201Arch(("skip_connect", "none", "none", "skip_connect", "none", "none"))

    def info(self, arch: NB201Arch, task: Task) -> dict[str, Any]:
        flops, params = nb201_counts(arch, check_task(task))
        return {"arch": str(arch), "index": arch.index, "op_counts": arch.op_counts(),
                "live_edges": list(arch.live_edges()), "iso_key": arch.iso_key(),
                "nb201_flops": flops, "nb201_params": params}

    # --- builders ----------------------------------------------------------------------
    def to_network(self, arch: NB201Arch, task: Task) -> Network:
        return nb201_network(arch, check_task(task))

    def to_module(self, arch: NB201Arch, task: Task, variant: str = "full") -> nn.Module:
        return _module(arch, task, variant)

    def trained_network(self, arch: NB201Arch, task: Task) -> Network:
        """The network as NB201 trains it (and ``to_module`` computes it): every edge, dead
        or not. ``to_network`` drops the dead ones."""
        return nb201_network(arch, check_task(task), keep_dead=True)

    def variant_input(self, variant: str, task: Task, arch: Any = None) -> tuple[int, int, int]:
        C, _, stem = _variant(variant)
        return task.input_shape if stem else (C, task.height, task.width)

    def supernet(self) -> NB201Supernet:
        return NB201Supernet()


class NB201Supernet:
    """The MicroNAS pruning supernet: each edge holds a set of ops whose outputs are
    averaged; pruning removes one op per edge per round."""

    #: Relative cost of each op, to try cheap-looking completions first.
    _WEIGHT = {"none": 0, "skip_connect": 0, "avg_pool_3x3": 1, "nor_conv_1x1": 2,
               "nor_conv_3x3": 9}

    def full(self) -> State:
        return tuple(frozenset(PRUNE_OPS) for _ in EDGES)

    def arch(self, state: State) -> NB201Arch:
        if any(len(s) != 1 for s in state):
            raise ArchError("a supernet with several ops on an edge is not an architecture")
        return NB201Arch(tuple(next(iter(s)) for s in state))

    def completions(self, state: State) -> Iterable[NB201Arch]:
        w = self._WEIGHT
        combos = itertools.product(*[sorted(s, key=lambda o: (w[o], o)) for s in state])
        return (NB201Arch(c) for c in sorted(combos, key=lambda c: sum(w[o] for o in c)))

    def capacity_archs(self, state: State) -> Iterable[NB201Arch]:
        """On each edge, the cheapest op of each parameter count: avg_pool_3x3 only where
        the edge has no skip_connect (same parameters, never faster or smaller in flash), so
        a pruning round costs at most 3^6 = 729 networks, not 4^6."""
        reduced = tuple(tuple(sorted(set(s) - {"avg_pool_3x3"} if "skip_connect" in s else s))
                        for s in state)
        return map(NB201Arch, itertools.product(*reduced))

    def format(self, state: State) -> str:
        return "+".join("|" + "|".join("{" + ",".join(sorted(state[k], key=OPS.index)) + f"}}~{s}"
                                       for k, (s, tt) in enumerate(EDGES) if tt == t) + "|"
                        for t in (1, 2, 3))

    def to_network(self, state: State, task: Task) -> Network:
        return nb201_network(as_edge_ops(state), check_task(task))

    def to_module(self, state: State, task: Task, variant: str = "full") -> nn.Module:
        """The supernet's module; its weights are for the caller to initialise (its
        convolution ops may come from networks built before: OpPool)."""
        return _module(as_edge_ops(state), task, variant, pooled=True)
