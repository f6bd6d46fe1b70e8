"""The ``mcu`` space behind the :class:`~micronas.spaces.base.SearchSpace` door.

Choices: width multiplier, head width, input resolution (when the task allows several),
and per stage its depth (1-4) and per block its kernel (3/5/7) and expansion (3/4/6). The
space is bound to a task's resolutions with :meth:`McuSpace.for_task` (what a search does);
unbound, architectures keep the task's input as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from micronas.errors import ArchError
from micronas.ir import Network
from micronas.spaces.mcu.arch import (
    EXPANSIONS,
    HEADS,
    KERNELS,
    MAX_DEPTH,
    STAGES,
    WIDTHS,
    Block,
    McuArch,
    parse_arch,
)
from micronas.spaces.mcu.network import (
    MIN_SIDE,
    build_ir,
    check_input,
    input_shape,
    mcu_network,
    plan,
)
from micronas.tasks import Task, input_text

if TYPE_CHECKING:
    from torch import nn

_WIDTHS = tuple(round(w * 100) for w in WIDTHS)
_BLOCKS = tuple(Block(k, e) for k in KERNELS for e in EXPANSIONS)


class McuSpace:
    """MobileNetV2-style networks for microcontrollers (see :mod:`micronas.spaces.mcu`).

    ``resolutions``: the input sides a search may draw (None: the task's input as it is)."""

    name = "mcu"

    def __init__(self, resolutions: tuple[int, ...] | None = None):
        self.resolutions = tuple(sorted(set(resolutions))) if resolutions else None

    def __repr__(self) -> str:
        return f"McuSpace(resolutions={self.resolutions})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, McuSpace) and other.resolutions == self.resolutions

    def __hash__(self) -> int:
        return hash((self.name, self.resolutions))

    def for_task(self, task: Task) -> McuSpace:
        """This space drawing the resolutions ``task`` allows (its input side and
        ``task.resolutions``; fixed for a non-square input and a time series). Checks the
        input is large enough."""
        c, h, w = task.input_shape
        check_input(task)
        if h != w or not task.resolutions:
            return McuSpace(None)
        small = [r for r in task.resolutions if r < MIN_SIDE]
        if small:
            raise ArchError(f"task {task.name}: resolution {small[0]} is below the mcu space's "
                            f"minimum {MIN_SIDE}")
        return McuSpace(tuple(sorted({h, *task.resolutions})))

    # --- values ------------------------------------------------------------------------
    def parse(self, text: str) -> McuArch:
        if isinstance(text, McuArch):
            return text
        return parse_arch(text)

    def format(self, arch: McuArch) -> str:
        return str(arch)

    def _resolutions(self) -> tuple[int | None, ...]:
        return self.resolutions or (None,)

    def sample(self, rng: np.random.Generator) -> McuArch:
        res = self._resolutions()
        width = _WIDTHS[int(rng.integers(len(_WIDTHS)))]
        r = res[int(rng.integers(len(res)))]
        head = HEADS[int(rng.integers(len(HEADS)))]
        stages = []
        for _ in STAGES:
            depth = int(rng.integers(1, MAX_DEPTH + 1))
            stages.append(tuple(_BLOCKS[int(i)] for i in rng.integers(0, len(_BLOCKS), depth)))
        return McuArch(width, r, head, tuple(stages))

    def neighbours(self, arch: McuArch) -> list[McuArch]:
        """Every architecture one choice away: another width, head or resolution; one
        stage one block shorter (its last block dropped) or longer (any block appended);
        one block's kernel or expansion changed."""
        out: list[McuArch] = []
        widths = sorted(set(_WIDTHS) | {arch.width})
        out += [McuArch(w, arch.resolution, arch.head, arch.stages) for w in widths
                if w != arch.width]
        res = self._resolutions()
        out += [McuArch(arch.width, r, arch.head, arch.stages) for r in res
                if r != arch.resolution]
        heads = sorted(set(HEADS) | {arch.head})  # a parsed h0 reaches the drawn heads
        out += [McuArch(arch.width, arch.resolution, h, arch.stages) for h in heads
                if h != arch.head]

        def with_stage(i: int, stage: tuple[Block, ...]) -> McuArch:
            stages = list(arch.stages)
            stages[i] = stage
            return McuArch(arch.width, arch.resolution, arch.head, tuple(stages))

        for i, stage in enumerate(arch.stages):
            if len(stage) > 1:
                out.append(with_stage(i, stage[:-1]))
            if len(stage) < MAX_DEPTH:
                out += [with_stage(i, stage + (b,)) for b in _BLOCKS]
            for j, b in enumerate(stage):
                for k in KERNELS:
                    if k != b.kernel:
                        out.append(with_stage(i, stage[:j] + (Block(k, b.expand),) + stage[j + 1:]))
                for e in EXPANSIONS:
                    if e != b.expand:
                        out.append(with_stage(i, stage[:j] + (Block(b.kernel, e),) + stage[j + 1:]))
        return out

    def mutate(self, arch: McuArch, rng: np.random.Generator) -> McuArch:
        """One choice changed: which kind of choice (width, head, resolution, a stage's
        depth, a block's kernel or expansion) uniformly, then the new value uniformly."""
        kinds = ["width", "head", "depth", "kernel", "expand"]
        if len(self._resolutions()) > 1:
            kinds.append("resolution")
        kind = kinds[int(rng.integers(len(kinds)))]

        def pick(values: list[Any]) -> Any:
            return values[int(rng.integers(len(values)))]

        if kind == "width":
            return McuArch(pick([w for w in _WIDTHS if w != arch.width]), arch.resolution,
                           arch.head, arch.stages)
        if kind == "head":
            return McuArch(arch.width, arch.resolution, pick([h for h in HEADS if h != arch.head]),
                           arch.stages)
        if kind == "resolution":
            return McuArch(arch.width, pick([r for r in self._resolutions()
                                             if r != arch.resolution]), arch.head, arch.stages)
        stages = list(arch.stages)
        i = int(rng.integers(len(stages)))
        stage = stages[i]
        if kind == "depth":
            shorter = len(stage) > 1 and (len(stage) == MAX_DEPTH or rng.random() < 0.5)
            stages[i] = stage[:-1] if shorter else stage + (pick(list(_BLOCKS)),)
        else:
            j = int(rng.integers(len(stage)))
            b = stage[j]
            nb = (Block(pick([k for k in KERNELS if k != b.kernel]), b.expand) if kind == "kernel"
                  else Block(b.kernel, pick([e for e in EXPANSIONS if e != b.expand])))
            stages[i] = stage[:j] + (nb,) + stage[j + 1:]
        return McuArch(arch.width, arch.resolution, arch.head, tuple(stages))

    def smaller(self, arch: McuArch) -> list[McuArch]:
        """The neighbours with one choice made smaller (narrower, no or a smaller head, a
        lower resolution, a stage one block shorter, a smaller kernel or expansion): each
        does less work in less memory."""
        out = []
        for n in self.neighbours(arch):
            if n.depths != arch.depths:
                keep = sum(n.depths) < sum(arch.depths)
            elif n.width != arch.width:
                keep = n.width < arch.width
            elif n.head != arch.head:
                keep = n.head < arch.head
            elif n.resolution != arch.resolution:
                keep = (n.resolution or 0) < (arch.resolution or 0)
            else:  # one block's kernel or expansion
                keep = n.stages < arch.stages
            if keep:
                out.append(n)
        return out

    def shrink(self, arch: McuArch, rng: np.random.Generator) -> McuArch | None:
        """A random :meth:`smaller` neighbour (None at the floor)."""
        opts = self.smaller(arch)
        return opts[int(rng.integers(len(opts)))] if opts else None

    def iso_key(self, arch: McuArch) -> str:
        """The canonical string: no two architectures of this space compute the same
        function for every weight setting."""
        return str(arch)

    def floor(self) -> McuArch:
        """The smallest network the space draws: the narrowest width and head, one 3x3 block
        of expansion 3 per stage, the smallest resolution. Every choice only adds work and memory, so its
        costs bound every architecture's from below."""
        res = min(self.resolutions) if self.resolutions else None
        return McuArch(_WIDTHS[0], res, HEADS[0], tuple((Block(KERNELS[0], EXPANSIONS[0]),)
                                                  for _ in STAGES))

    def floors(self) -> list[McuArch]:
        """:meth:`floor` at each resolution the space draws: a network at a lower resolution
        than the task's starts with a resize that one at the task's own does not have, so the
        space's lower bound is the least of these floors' costs."""
        f = self.floor()
        return [McuArch(f.width, r, f.head, f.stages) for r in self._resolutions()]

    def info(self, arch: McuArch, task: Task) -> dict[str, Any]:
        p = plan(arch, task)
        stages: list[dict[str, Any]] = []
        for b in p.blocks[1:]:
            i = int(b.name[1:b.name.index(".")]) - 1
            if len(stages) <= i:
                stages.append({"channels": b.cout, "stride": list(b.stride), "blocks": []})
            stages[i]["blocks"].append(f"k{b.kernel}e{round(b.hidden / b.cin)}")
        return {"arch": str(arch), "width": arch.width_multiplier,
                "input": input_text(p.input_shape),
                **({"resized_from": input_text(p.resize_from)} if p.resize_from else {}),
                "depths": list(arch.depths), "stem_channels": p.stem, "head": p.head,
                "stages": stages}

    # --- builders ----------------------------------------------------------------------
    def to_network(self, arch: McuArch, task: Task) -> Network:
        return mcu_network(arch, task)

    def to_module(self, arch: McuArch, task: Task, variant: str = "full") -> nn.Module:
        from micronas.spaces.mcu.modules import McuNetwork

        return McuNetwork(plan(arch, task, variant))

    def variant_input(self, variant: str, task: Task, arch: McuArch | None = None
                      ) -> tuple[int, int, int]:
        """The full network reads the task's input (resizing it to the architecture's
        resolution itself); the reduced variants read the input at that resolution."""
        if arch is None:
            return task.input_shape
        return plan(arch, task, variant).reads

    def variant_network(self, arch: McuArch, task: Task, variant: str) -> Network:
        """The IR of a reduced variant (what an indicator's module computes)."""
        return build_ir(plan(arch, task, variant), f"{arch}:{variant}")


__all__ = ["McuSpace", "input_shape"]
