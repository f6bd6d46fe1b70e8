"""The mcu space: conformance, IR against torch on 300 seeded architectures over four tasks,
a plain-torch MobileNetV2 against the same network in the space's string form, parse errors."""

from __future__ import annotations

import numpy as np
import pytest

from micronas.errors import ArchError
from micronas.spaces import get_space
from micronas.spaces.mcu import McuSpace
from micronas.spaces.testing import SpaceConformance, module_counts
from micronas.tasks import Task

pytestmark = pytest.mark.unit

TASKS = (
    Task.custom((3, 32, 32), 10),
    Task.custom((1, 96, 96), 2),
    Task.custom((1, 49, 10), 12),
    Task.custom((1, 28, 28), 10),
)
MBV2_035 = ("w0.35_h1280|k3e6,k3e6|k3e6,k3e6,k3e6|k3e6,k3e6,k3e6,k3e6|k3e6,k3e6,k3e6|"
            "k3e6,k3e6,k3e6|k3e6")


class TestMcuConformance(SpaceConformance):
    space = McuSpace()
    tasks = TASKS


class TestBoundMcuConformance(SpaceConformance):
    space = McuSpace((64, 80, 96))
    tasks = (Task("img96", (1, 96, 96), 2, (64, 80)),)


def test_registered() -> None:
    assert isinstance(get_space("mcu"), McuSpace)


@pytest.mark.slow
def test_ir_and_torch_agree_on_300_architectures() -> None:
    space = McuSpace()
    rng = np.random.default_rng(2026)
    for i in range(300):
        task = TASKS[i % len(TASKS)]
        a = space.sample(rng)
        net = space.to_network(a, task)
        shape, macs, params = module_counts(space.to_module(a, task), task.input_shape)
        assert shape == net.tensors[net.outputs[0]].shape == (task.classes,)
        assert macs == net.macs, str(a)
        assert params == sum(la.source_params for la in net.layers), str(a)


def test_strides_follow_the_input() -> None:
    space = McuSpace()
    a = space.parse(MBV2_035)
    net = space.to_network(a, TASKS[2])  # 49x10
    shapes = [net.tensors[la.output].shape[1:] for la in net.layers if la.name.endswith(".dw")]
    assert shapes[0] == (25, 5) and shapes[-1] == (2, 2)
    assert {la.stride for la in net.layers if la.op == "depthwise_conv2d"} >= {(2, 1), (1, 1)}
    net = space.to_network(a, Task.custom((1, 8, 8), 2))
    assert net.tensors["pool"].shape == (net.tensors["head"].shape[0],)


def _mobilenet_v2(width: float, classes: int):
    """MobileNetV2 as its paper and torchvision write it, in plain torch."""
    from torch import nn

    def div(v: float, d: int = 8) -> int:
        new = max(d, int(v + d / 2) // d * d)
        return new + d if new < 0.9 * v else new

    def cbr(i: int, o: int, k: int, s: int = 1, g: int = 1) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(i, o, k, s, k // 2, groups=g, bias=False),
                             nn.BatchNorm2d(o), nn.ReLU6(inplace=True))

    class Block(nn.Module):
        def __init__(self, i: int, o: int, s: int, t: int):
            super().__init__()
            h = int(round(i * t))
            layers = [cbr(i, h, 1)] if t != 1 else []
            layers += [cbr(h, h, 3, s, h), nn.Conv2d(h, o, 1, bias=False), nn.BatchNorm2d(o)]
            self.conv = nn.Sequential(*layers)
            self.res = s == 1 and i == o

        def forward(self, x):
            return x + self.conv(x) if self.res else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                   (6, 160, 3, 2), (6, 320, 1, 1)]
            c = div(32 * width)
            layers: list[nn.Module] = [cbr(3, c, 3, 2)]
            for t, ch, n, s in cfg:
                o = div(ch * width)
                for j in range(n):
                    layers.append(Block(c, o, s if j == 0 else 1, t))
                    c = o
            layers.append(cbr(c, 1280, 1))
            self.features = nn.Sequential(*layers)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, classes))

        def forward(self, x):
            return self.classifier(self.pool(self.features(x)).flatten(1))

    return MobileNetV2()


def test_plain_torch_mobilenet_v2_matches_the_string_form() -> None:
    from micronas.deploy.trace import trace
    from micronas.hardware import estimate, load_device

    task = Task.custom((3, 96, 96), 2)
    traced = trace(_mobilenet_v2(0.35, 2), task.input_shape)
    ours = McuSpace().to_network(McuSpace().parse(MBV2_035), task)
    assert traced.macs == ours.macs and traced.params == ours.params
    assert (sum(la.source_params for la in traced.layers)
            == sum(la.source_params for la in ours.layers))
    dev = load_device("stm32f746")
    a, b = estimate(traced, dev), estimate(ours, dev)
    assert (a.peak_sram_bytes, a.flash_bytes, a.arena_bytes) == (
        b.peak_sram_bytes, b.flash_bytes, b.arena_bytes)
    assert a.latency_ms == pytest.approx(b.latency_ms)
    assert [la.activation for la in traced.layers] == [la.activation for la in ours.layers]
    assert "relu6" in {la.activation for la in ours.layers}


@pytest.mark.parametrize("text, fragment", [
    ("w0.35_h0|k3e6|k4e6|k3e6|k3e6|k3e6|k3e6", "character 16: stage 2, block 1 ('k4e6'): kernel 4 "
     "is not one of 3, 5, 7"),
    ("w0.35_h0|k3e6|k3e5|k3e6|k3e6|k3e6|k3e6", "expansion 5 is not one of 3, 4, 6"),
    ("w0.35_h0|k3e6|k3e6|k3e6|k3e6|k3e6", "5 stage(s) given; the space has 6"),
    ("w0.35_h0|k3e6|k3e6,k3e6,k3e6,k3e6,k3e6|k3e6|k3e6|k3e6|k3e6", "stage 2 has 5 block(s)"),
    ("w1.5_h0|k3e6|k3e6|k3e6|k3e6|k3e6|k3e6", "width 1.5 must be 0.2 to 1.0"),
    ("w0.35_h12|k3e6|k3e6|k3e6|k3e6|k3e6|k3e6", "head 12 must be 0"),
    ("w0.35_h0|k3e6||k3e6|k3e6|k3e6|k3e6", "stage 2 has 0 block(s)"),
    ("w0.35_h0|k3x6|k3e6|k3e6|k3e6|k3e6|k3e6", "must be k<kernel>e<expansion>"),
    ("nonsense", "the header 'nonsense' must be"),
    ("w0.35_h0|k３e6|k3e6|k3e6|k3e6|k3e6|k3e6", "only ASCII"),
])
def test_parse_errors(text: str, fragment: str) -> None:
    with pytest.raises(ArchError) as e:
        McuSpace().parse(text)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_input_and_resolution_errors() -> None:
    space = McuSpace()
    a = space.parse(MBV2_035)
    with pytest.raises(ArchError, match="at least 8x8"):
        space.to_network(a, Task.custom((1, 6, 6), 2))
    with pytest.raises(ArchError, match="at least 8x8"):
        space.for_task(Task.custom((1, 49, 4), 2))
    r80 = space.parse(MBV2_035.replace("_h", "_r80_h"))
    r128 = space.parse(MBV2_035.replace("_h", "_r128_h"))
    # a lower side needs no --resolutions (the network resizes its input); a higher one does
    with pytest.raises(ArchError, match="resolution 128 is above task .*96x96 input; choose a "
                       "side from 8 to 96 .*--resolutions 128"):
        space.to_network(r128, Task.custom((1, 96, 96), 2))
    with pytest.raises(ArchError, match="non-square"):
        space.to_network(r80, TASKS[2])
    for task in (Task.custom((1, 96, 96), 2), Task("t", (1, 96, 96), 2, (64, 80))):
        net = space.to_network(r80, task)
        # the network reads the task's input and resizes it itself
        assert net.tensors[net.inputs[0]].shape == (1, 96, 96)
        assert net.layers[0].op == "resize_bilinear"
        assert net.tensors[net.layers[0].output].shape == (1, 80, 80)
    up = space.to_network(r128, Task("t", (1, 96, 96), 2, (128,)))
    assert up.tensors[up.layers[0].output].shape == (1, 128, 128)
    assert space.to_network(a, Task.custom((1, 96, 96), 2)).layers[0].op == "conv2d"


def test_bound_space_draws_the_task_resolutions() -> None:
    bound = McuSpace().for_task(Task("t", (1, 96, 96), 2, (64, 80)))
    rng = np.random.default_rng(0)
    assert {bound.sample(rng).resolution for _ in range(60)} == {64, 80, 96}
    assert bound.floor().resolution == 64
    assert McuSpace().for_task(TASKS[2]).resolutions is None


def test_every_indicator_runs_on_mcu_networks() -> None:
    from micronas.proxies.registry import ProxySettings, get_indicator, list_indicators
    from micronas.spaces import Candidate

    task = Task.custom((1, 12, 9), 3)
    arch = McuSpace().parse("w0.2_h128|k5e3|k7e4|k3e6|k5e3|k7e3|k3e4")
    settings = ProxySettings(ntk_batch=4, lr_samples=50, zc_batch=4)
    ran = 0
    for name in list_indicators():
        ind = get_indicator(name)
        if ind.fn is None:  # population indicators (a rank sum of others)
            continue
        v = ind.fn(Candidate(McuSpace(), arch, task), settings, 0)
        assert np.isfinite(v.value), name
        ran += 1
    assert ran >= 8
