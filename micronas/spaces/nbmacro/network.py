"""NAS-Bench-Macro architecture -> layer plan -> network IR. No torch.

The network is the benchmark's: stem 3x3 conv (3 -> 32) + BN + ReLU; three stages of 2, 3 and 3
searchable layers, the first of each with stride 2 and twice the channels (32 -> 64 -> 128 ->
256), where identity is a 1x1 stride-2 conv + BN (no activation); an inverted residual is
1x1 expand + BN + ReLU, depthwise kxk + BN + ReLU, 1x1 project + BN, with a shortcut when
its stride is 1 and its channels are equal; head 1x1 conv to 1280 + BN + ReLU, global average
pool, linear classifier. ReLU (not ReLU6). Any input shape: a stride-2 layer halves each axis,
rounding up. The torch module (:mod:`micronas.spaces.nbmacro.modules`) is built from the
same plan.

Module variants for indicators (``small``, ``thin``) scale every channel count by 1/4 and
1/8 (as the ``mcu`` space's do), keeping kernels, expansions and strides.
"""

from __future__ import annotations

from dataclasses import dataclass

from micronas.errors import ArchError
from micronas.ir import GraphBuilder, Network
from micronas.spaces.nbmacro.arch import (
    CHOICES,
    HEAD_CHANNELS,
    STAGE_CHANNELS,
    STEM_CHANNELS,
    NBMacroArch,
    stages_of,
)
from micronas.tasks import Task

VARIANT_SCALE = {"full": 1.0, "small": 0.25, "thin": 0.125}


@dataclass(frozen=True)
class LayerPlan:
    name: str
    cin: int
    cout: int
    stride: int
    expand: int   # 0: identity (a 1x1 conv + BN where the layer reduces, else no layer)
    kernel: int

    @property
    def residual(self) -> bool:
        return self.expand > 0 and self.stride == 1 and self.cin == self.cout


@dataclass(frozen=True)
class Plan:
    input_shape: tuple[int, int, int]
    stem: int
    layers: tuple[LayerPlan, ...]   # the layers that compute (pass-through identities dropped)
    head: int
    classes: int


def plan(arch: NBMacroArch, task: Task, variant: str = "full") -> Plan:
    if variant not in VARIANT_SCALE:
        raise ArchError(f"unknown NAS-Bench-Macro network variant {variant!r}; choose from "
                        f"{', '.join(VARIANT_SCALE)}")
    scale = VARIANT_SCALE[variant]

    def ch(c: int) -> int:
        return c if scale == 1.0 else max(1, round(c * scale))

    cin = ch(STEM_CHANNELS)
    layers = []
    for s, (ops, cout_full) in enumerate(zip(stages_of(arch.ops), STAGE_CHANNELS, strict=True)):
        cout = ch(cout_full)
        for j, op in enumerate(ops):
            _, e, k = CHOICES[op]
            stride = 2 if j == 0 else 1
            if op or stride == 2:
                layers.append(LayerPlan(f"s{s + 1}.l{j}", cin, cout, stride, e, k))
            cin = cout
    return Plan(task.input_shape, ch(STEM_CHANNELS), tuple(layers), ch(HEAD_CHANNELS),
                task.classes)


def build_ir(p: Plan, name: str) -> Network:
    g = GraphBuilder(name, p.input_shape)
    x = g.relu(g.conv(g.input_name, p.stem, 3, 1, 1, name="stem"))
    for la in p.layers:
        if not la.expand:  # the reducing identity
            x = g.conv(x, la.cout, 1, la.stride, 0, name=f"{la.name}.reduce")
            continue
        hidden = la.cin * la.expand
        y = g.relu(g.conv(x, hidden, 1, name=f"{la.name}.expand"))
        y = g.relu(g.conv(y, hidden, la.kernel, la.stride, la.kernel // 2, groups=hidden,
                          name=f"{la.name}.dw"))
        y = g.conv(y, la.cout, 1, name=f"{la.name}.project")
        x = g.add(x, y, name=f"{la.name}.add") if la.residual else y
    x = g.relu(g.conv(x, p.head, 1, name="head"))
    x = g.global_avgpool(x, name="pool")
    x = g.fc(x, p.classes, name="classifier")
    return g.build([x], meta={"space": "nbmacro"})


def nbmacro_network(arch: NBMacroArch, task: Task, variant: str = "full") -> Network:
    """The deployed network IR of ``arch`` for ``task``."""
    return build_ir(plan(arch, task, variant), str(arch) if variant == "full"
                    else f"{arch}:{variant}")


def nbmacro_counts(arch: NBMacroArch, task: Task) -> tuple[int, int]:
    """(FLOPs, params) as NAS-Bench-Macro reports them: FLOPs are the multiply-accumulates
    of the convolutions and the classifier (nothing for BN, ReLU, adds or pooling); params
    count every weight, BN's gamma and beta and the classifier's bias (the float model's
    ``source_params``)."""
    net = nbmacro_network(arch, task)
    return net.macs, sum(la.source_params for la in net.layers)
