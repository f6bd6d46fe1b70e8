"""The NAS-Bench-Macro space behind the :class:`~micronas.spaces.base.SearchSpace` door."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from micronas.errors import ArchError
from micronas.ir import Network
from micronas.spaces.nbmacro.arch import CHOICES, LAYERS, NUM_ARCHS, NBMacroArch, stages_of
from micronas.spaces.nbmacro.network import nbmacro_counts, nbmacro_network, plan
from micronas.tasks import Task

if TYPE_CHECKING:
    from torch import nn


@cache
def class_representatives() -> tuple[NBMacroArch, ...]:
    """One canonical architecture per isomorphism class (3,969), in code order."""
    seen: dict[NBMacroArch, None] = {}
    for code in range(NUM_ARCHS):
        seen.setdefault(NBMacroArch.from_code(code).canonical(), None)
    return tuple(seen)


class NBMacroSpace:
    """NAS-Bench-Macro (CIFAR-10 MobileNetV2-style macro space): 8 layers, each identity,
    MB3_K3 or MB6_K5; 6,561 architectures in 3,969 isomorphism classes. Module variants:
    ``full`` (the benchmark's network), ``small`` and ``thin`` (every channel count / 4, / 8)."""

    name = "nbmacro"

    # --- values ------------------------------------------------------------------------
    def parse(self, text: str) -> NBMacroArch:
        if isinstance(text, NBMacroArch):
            return text
        return NBMacroArch.from_string(str(text))

    def format(self, arch: NBMacroArch) -> str:
        return str(arch)

    def size(self) -> int:
        return NUM_ARCHS

    def enumerate(self) -> Iterator[NBMacroArch]:
        """All 6,561 architectures in code order (00000000, 00000001, ...)."""
        return (NBMacroArch.from_code(c) for c in range(NUM_ARCHS))

    def classes(self) -> tuple[NBMacroArch, ...]:
        """One canonical architecture per isomorphism class (3,969)."""
        return class_representatives()

    def sample(self, rng: np.random.Generator) -> NBMacroArch:
        return NBMacroArch(tuple(int(i) for i in rng.integers(0, len(CHOICES), LAYERS)))

    def mutate(self, arch: NBMacroArch, rng: np.random.Generator) -> NBMacroArch:
        i = int(rng.integers(LAYERS))
        other = [o for o in range(len(CHOICES)) if o != arch.ops[i]]
        new = list(arch.ops)
        new[i] = other[int(rng.integers(len(other)))]
        return NBMacroArch(tuple(new))

    def neighbours(self, arch: NBMacroArch) -> list[NBMacroArch]:
        out = []
        for i in range(LAYERS):
            for o in range(len(CHOICES)):
                if o != arch.ops[i]:
                    new = list(arch.ops)
                    new[i] = o
                    out.append(NBMacroArch(tuple(new)))
        return out

    def iso_key(self, arch: NBMacroArch) -> str:
        """The canonical member's string (identities inside a stage moved last)."""
        return str(arch.canonical())

    def canonical(self, arch: NBMacroArch) -> NBMacroArch:
        return arch.canonical()

    def cost_key(self, arch: NBMacroArch) -> str:
        """Isomorphic architectures deploy to the same layers."""
        return str(arch.canonical())

    def floor(self) -> NBMacroArch:
        """Every layer identity: the stem, the three reducing 1x1 convs and the head, which
        every network of the space has."""
        return NBMacroArch((0,) * LAYERS)

    def info(self, arch: NBMacroArch, task: Task) -> dict[str, Any]:
        flops, params = nbmacro_counts(arch, task)
        return {"arch": str(arch), "canonical": str(arch.canonical()),
                "stage_ops": [[CHOICES[o][0] for o in st] for st in stages_of(arch.ops)],
                "flops": flops, "params": params}

    # --- builders ----------------------------------------------------------------------
    def to_network(self, arch: NBMacroArch, task: Task) -> Network:
        return nbmacro_network(arch.canonical(), task)

    def to_module(self, arch: NBMacroArch, task: Task, variant: str = "full") -> nn.Module:
        from micronas.spaces.nbmacro.modules import MacroNetwork

        return MacroNetwork(plan(arch, task, variant))

    def variant_input(self, variant: str, task: Task, arch: Any = None) -> tuple[int, int, int]:
        if variant not in ("full", "small", "thin"):
            raise ArchError(f"unknown NAS-Bench-Macro network variant {variant!r}")
        return task.input_shape
