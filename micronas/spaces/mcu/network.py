"""The layer plan of an ``mcu`` architecture for a task, and its network IR.

:func:`plan` turns an architecture and an input shape into concrete layers (channels,
kernels, per-axis strides); the IR (:func:`mcu_network`) and the torch module
(:mod:`micronas.spaces.mcu.modules`) are both built from that one plan, so they cannot
disagree on shapes, MACs or parameters.

- Channels: MobileNetV2's rounding (:func:`make_divisible`) of template x width; a block's
  hidden width is ``round(in x expansion)``. Reduced variants (for indicators) scale every
  channel count by 1/4 (``small``) or 1/8 (``thin``), at least 1 channel, keeping depths,
  kernels, expansions, strides and the head.
- Strides: a stride-2 stage halves an axis only where it has at least 3 pixels, so a 49x10
  MFCC map goes 49x10 -> 25x5 -> 13x3 -> 7x2 -> 4x2 -> 2x2 and an 8x8 input stops at
  2x2.
- Padding ``k // 2`` on both sides (PyTorch's), ReLU6 after the stem, every expansion and
  depthwise conv and the head conv; the projection is linear; a residual add where the
  block keeps the shape.
- A 1-D input (a time series, ``(C, L, 1)``: :attr:`Task.is_1d`) gets ``k x 1`` kernels,
  padding ``(k // 2, 0)`` and strides ``(s, 1)`` everywhere (stem, depthwise convs), so it
  downsamples only along time; it needs at least :data:`MIN_LENGTH` steps.
- Resolution: an architecture that names a side other than the task's input (``_r80`` on a
  96x96 task) starts with a bilinear resize of the task's input to that side (half-pixel
  centres, PyTorch's ``align_corners=False``): the network reads the task's data as it is,
  and the deployed network resizes it itself, at a cost the IR counts. The reduced variants
  (indicators) read the input at the network's resolution, without the resize (it has no
  parameters).
"""

from __future__ import annotations

from dataclasses import dataclass

from micronas.errors import ArchError
from micronas.ir import GraphBuilder, Network
from micronas.spaces.mcu.arch import FIRST_CHANNELS, STAGES, STEM_CHANNELS, McuArch, make_divisible
from micronas.tasks import Task

#: Channel scale of each module variant.
VARIANT_SCALE = {"full": 1.0, "small": 0.25, "thin": 0.125}
MIN_SIDE = 8
#: The shortest time series (1-D input) the space takes.
MIN_LENGTH = 8


@dataclass(frozen=True)
class BlockPlan:
    name: str
    cin: int
    hidden: int       # == cin when there is no expansion conv (the first block)
    cout: int
    kernel: int
    stride: tuple[int, int]
    expand: bool
    residual: bool


@dataclass(frozen=True)
class Plan:
    input_shape: tuple[int, int, int]  # what the stem reads (the network's resolution)
    stem: int                      # stem conv output channels (3x3)
    stem_stride: tuple[int, int]
    blocks: tuple[BlockPlan, ...]
    head: int                      # head conv channels (0: none)
    classes: int
    one_d: bool = False            # a time series: k x 1 kernels, (k // 2, 0) padding
    #: the task's input, where the network reads it and resizes it to ``input_shape``
    #: (None: the network reads ``input_shape`` itself)
    resize_from: tuple[int, int, int] | None = None

    @property
    def reads(self) -> tuple[int, int, int]:
        """(C, H, W) the network reads."""
        return self.resize_from or self.input_shape

    @property
    def last_channels(self) -> int:
        return self.head or self.blocks[-1].cout

    def kernel(self, k: int) -> int | tuple[int, int]:
        """The (height, width) window of a k-tap kernel: ``k`` (k x k), or ``(k, 1)`` for a
        time series."""
        return (k, 1) if self.one_d else k

    def padding(self, k: int) -> int | tuple[int, int]:
        """PyTorch-style padding of a k-tap kernel: ``k // 2`` on both axes, or
        ``(k // 2, 0)`` for a time series."""
        return (k // 2, 0) if self.one_d else k // 2


def input_shape(arch: McuArch, task: Task) -> tuple[int, int, int]:
    """(C, H, W) the network computes at (its stem reads): the task's input, or ``r x r``
    where ``arch`` names a resolution. A square task allows any side from the space's minimum
    up to its own (the network resizes its input down) and the larger sides
    ``task.resolutions`` names (upsampling only where asked for)."""
    c, h, w = task.input_shape
    if task.is_1d:
        if arch.resolution is not None:
            raise ArchError(f"task {task.name} is a time series of fixed length {h}: drop the "
                            f"_r{arch.resolution} from the architecture")
        check_input(task)
        return c, h, w
    if arch.resolution is not None:
        if h != w:
            raise ArchError(f"task {task.name} has a non-square {h}x{w} input, so its resolution "
                            f"is fixed: drop the _r{arch.resolution} from the architecture")
        if arch.resolution > h and arch.resolution not in (task.resolutions or ()):
            raise ArchError(f"resolution {arch.resolution} is above task {task.name}'s "
                            f"{h}x{w} input; choose a side from {MIN_SIDE} to {h} (the network "
                            f"resizes its input down), or give --resolutions {arch.resolution} "
                            "to let it upsample")
        h = w = arch.resolution
    if min(h, w) < MIN_SIDE:
        check_input(task)  # the task's own input is too small: the refusal with its hint
        raise ArchError(f"the mcu space needs an input of at least {MIN_SIDE}x{MIN_SIDE}; "
                        f"task {task.name} gives {h}x{w}")
    return c, h, w


def check_input(task: Task) -> None:
    """Refuse, in one line, an input the space cannot take: an image under 8x8, a time series
    under :data:`MIN_LENGTH` steps."""
    c, h, w = task.input_shape
    if task.is_1d:
        if h < MIN_LENGTH:
            raise ArchError(f"the mcu space needs a time series of at least {MIN_LENGTH} steps; "
                            f"task {task.name} gives {h}")
        return
    if min(h, w) < MIN_SIDE:
        hint = (f" (a time series is read along its height: spell it LxC, --input {w}x{c})"
                if h == 1 and w >= MIN_LENGTH else
                " (a time series of L steps and C channels is spelled LxC, e.g. --input 128x3)")
        raise ArchError(f"the mcu space needs an input of at least {MIN_SIDE}x{MIN_SIDE}; "
                        f"task {task.name} gives {h}x{w}{hint}")


def _halve(h: int, w: int, stride: int) -> tuple[tuple[int, int], int, int]:
    if stride == 1:
        return (1, 1), h, w
    sh, sw = (2 if h >= 3 else 1), (2 if w >= 3 else 1)
    return (sh, sw), (h - 1) // sh + 1, (w - 1) // sw + 1


def plan(arch: McuArch, task: Task, variant: str = "full") -> Plan:
    if variant not in VARIANT_SCALE:
        raise ArchError(f"unknown mcu network variant {variant!r}; choose from "
                        f"{', '.join(VARIANT_SCALE)}")
    scale = VARIANT_SCALE[variant]
    shape = input_shape(arch, task)
    c, h, w = shape
    mult = arch.width_multiplier

    def ch(v: int) -> int:
        full = make_divisible(v * mult)
        return full if scale == 1.0 else max(1, round(full * scale))

    stem_stride, h, w = _halve(h, w, 2)
    stem = ch(STEM_CHANNELS)
    blocks = [BlockPlan("b0", stem, stem, ch(FIRST_CHANNELS), 3, (1, 1), False, False)]
    cin = blocks[0].cout
    for i, ((cout_t, stride), stage) in enumerate(zip(STAGES, arch.stages, strict=True), 1):
        cout = ch(cout_t)
        for j, b in enumerate(stage):
            st, h, w = _halve(h, w, stride if j == 0 else 1)
            blocks.append(BlockPlan(f"s{i}.b{j}", cin, int(round(cin * b.expand)), cout, b.kernel,
                                    st, True, st == (1, 1) and cin == cout))
            cin = cout
    head = 0 if arch.head == 0 else (arch.head if scale == 1.0 else max(1, round(arch.head * scale)))
    resize = tuple(task.input_shape) if variant == "full" and shape != task.input_shape else None
    return Plan(shape, stem, stem_stride, tuple(blocks), head,
                task.classes, task.is_1d, resize)  # type: ignore[arg-type]


def build_ir(p: Plan, name: str) -> Network:
    g = GraphBuilder(name, p.reads)
    x = g.input_name
    if p.resize_from:
        x = g.resize_bilinear(x, p.input_shape[1:], name="resize")
    x = g.relu6(g.conv(x, p.stem, p.kernel(3), p.stem_stride, p.padding(3), name="stem"))
    for b in p.blocks:
        y = x
        if b.expand:
            y = g.relu6(g.conv(y, b.hidden, 1, name=f"{b.name}.expand"))
        y = g.relu6(g.conv(y, b.hidden, p.kernel(b.kernel), b.stride, p.padding(b.kernel),
                           groups=b.hidden, name=f"{b.name}.dw"))
        y = g.conv(y, b.cout, 1, name=f"{b.name}.project")
        x = g.add(x, y, name=f"{b.name}.add") if b.residual else y
    if p.head:
        x = g.relu6(g.conv(x, p.head, 1, name="head"))
    x = g.global_avgpool(x, name="pool")
    x = g.fc(x, p.classes, name="classifier")
    return g.build([x], meta={"space": "mcu"})


def mcu_network(arch: McuArch, task: Task) -> Network:
    """The deployed network IR of ``arch`` for ``task``."""
    return build_ir(plan(arch, task), str(arch))
