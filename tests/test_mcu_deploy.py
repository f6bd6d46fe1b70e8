"""The mcu space through the deployed pipeline: ReLU6, depthwise 5x5/7x7, (height, width)
strides in TFLM, the int8 model, generated C on the emulator, the tracer, and the CLI."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from micronas.cli import main
from micronas.deploy.trace import trace
from micronas.errors import MicronasError
from micronas.ir import GraphBuilder
from micronas.spaces.mcu import McuSpace
from micronas.tasks import Task

pytestmark = pytest.mark.integration

SMALL = "w0.2_h128|k5e3|k7e4|k3e6|k5e3|k7e3|k3e4"
KWS = Task.custom((1, 49, 10), 12)


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _standalone_relu6():
    g = GraphBuilder("relu6", (8, 6, 5))
    c = g.conv(g.input_name, 8, (3, 1), (2, 1), (1, 0), name="c")
    r = g.relu6(c, name="r6")          # c has two readers: ReLU6 stays a layer of its own
    return g.build([g.add(r, c, name="a")])


def test_relu6_layers_in_the_ir():
    net = _standalone_relu6()
    assert [la.op for la in net.layers] == ["conv2d", "relu6", "add"]
    assert net.layers[0].stride == (2, 1) and net.layers[0].kernel == (3, 1)
    fused = McuSpace().to_network(McuSpace().parse(SMALL), KWS)
    acts = {la.activation for la in fused.layers}
    assert acts == {"none", "relu6"}
    assert {la.stride for la in fused.layers if la.op == "depthwise_conv2d"} >= {(2, 1), (2, 2)}
    assert {la.kernel for la in fused.layers if la.op == "depthwise_conv2d"} == {
        (3, 3), (5, 5), (7, 7)}


def test_tflm_bit_exact_and_arena_on_mcu_networks():
    pytest.importorskip("tflite_micro", reason="pip install tflite-micro")
    from micronas.deploy.export import parity, prepare
    from micronas.deploy.quantize import gaussian_batch
    from micronas.deploy.tflite import build_tflite, tflm_arena
    from micronas.hardware.planner import plan

    nets = [McuSpace().to_network(McuSpace().parse(SMALL), KWS),
            McuSpace().to_network(McuSpace().parse(SMALL), Task.custom((3, 20, 20), 10)),
            _standalone_relu6()]
    for i, net in enumerate(nets):
        q = prepare(net, seed=i)
        data, index = build_tflite(q)
        x_q = q.input_quant.quantize(gaussian_batch(net, 2, i))
        p = parity(q, data, index, x_q)
        assert p["tflm_equals_int8_model"], net.name
        assert p["layerwise_max_lsb"] <= 1
        assert tflm_arena(data).head == plan(q.net)[0]


def test_relu6_clamp_is_tflms():
    """A fused ReLU6's upper clamp is zero_point + round(6 / scale), as TFLM computes it."""
    from micronas.deploy.export import prepare
    from micronas.deploy.int8 import layer_constants

    q = prepare(_standalone_relu6(), seed=0)
    layer = next(la for la in q.net.layers if la.op == "relu6")
    k = layer_constants(q, layer)
    tq = q.tensors[layer.output]
    assert k.act_min == max(-128, tq.zero_point)
    assert k.act_max == min(127, tq.zero_point + int(np.floor(np.float32(6.0) / np.float32(
        tq.scale) + np.float32(0.5))))


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                    reason="no arm-none-eabi-gcc; install with: apt-get install "
                    "--no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi")
def test_generated_c_bit_exact_on_mcu_layers():
    pytest.importorskip("unicorn", reason="pip install unicorn capstone")
    from micronas.measure.layers import measure_network

    assert measure_network(_standalone_relu6(), "cortex-m4", "whole").bit_exact
    net = McuSpace().to_network(McuSpace().parse(SMALL), Task.custom((1, 12, 9), 2))
    assert measure_network(net, "cortex-m0plus", "whole").bit_exact


def test_tracer_relu6_conv1d_and_errors():
    m = nn.Sequential(nn.Conv2d(1, 4, (3, 1), (2, 1), (1, 0)), nn.BatchNorm2d(4), nn.ReLU6(),
                      nn.Conv2d(4, 4, 3, 1, 1), nn.Hardtanh(0.0, 6.0),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    net = trace(m, (1, 9, 5))
    assert [la.activation for la in net.layers if la.op == "conv2d"] == ["relu6", "relu6"]
    assert net.layers[0].stride == (2, 1) and net.tensors[net.layers[0].output].shape == (4, 5, 5)
    one_d = nn.Sequential(nn.Conv1d(10, 8, 5, 2, 2), nn.BatchNorm1d(8), nn.ReLU(),
                          nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 2))
    net = trace(one_d, (10, 49))
    conv = net.layers[0]
    assert conv.kernel == (1, 5) and conv.stride == (1, 2) and conv.activation == "relu"
    assert net.macs == 8 * 10 * 5 * 25 + 8 * 2
    with pytest.raises(MicronasError, match=r"^layer 1 \(GELU\) is an activation the IR tracer "
                       r"does not support; supported activations: .*Hardswish, SiLU"):
        trace(nn.Sequential(nn.Conv2d(1, 2, 3), nn.GELU()), (1, 8, 8))

    class Cat(nn.Module):
        def __init__(self, dim: int = 1):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 2, 1), nn.Conv2d(1, 2, 1)
            self.dim = dim

        def forward(self, x):
            return torch.cat([self.a(x), self.b(x)], dim=self.dim)

    with pytest.raises(MicronasError, match="only concatenation along channels"):
        trace(Cat(2), (1, 8, 8))


class Inception(nn.Module):
    """Two branches of different widths concatenated, a pooled skip among them."""

    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(3, 6, 3, 2, 1), nn.BatchNorm2d(6), nn.ReLU6())
        self.pool = nn.MaxPool2d(2, 2)
        self.head = nn.Linear(13, 5)

    def forward(self, x):
        y = torch.cat([self.pool(self.a(x)), self.b(x), self.pool(x)], dim=1)
        return self.head(y.mean(dim=(2, 3)))


def test_concat_traced_exported_and_emulated():
    pytest.importorskip("tflite_micro", reason="pip install tflite-micro")
    from micronas.deploy.export import parity, prepare
    from micronas.deploy.quantize import gaussian_batch
    from micronas.deploy.tflite import build_tflite, tflm_arena
    from micronas.hardware import estimate, load_device
    from micronas.hardware.planner import plan

    net = trace(Inception(), (3, 10, 10))
    cat = next(la for la in net.layers if la.op == "concat")
    assert len(cat.inputs) == 3 and net.tensors[cat.output].shape == (13, 5, 5)
    assert estimate(net, load_device("stm32l4r5")).latency_ms > 0
    q = prepare(net, seed=3)
    assert len({q.tensors[t] for t in (*cat.inputs, cat.output)}) == 1  # one quantisation
    data, index = build_tflite(q)
    p = parity(q, data, index, q.input_quant.quantize(gaussian_batch(net, 2, 5)))
    assert p["tflm_equals_int8_model"] and p["layerwise_max_lsb"] <= 1
    assert tflm_arena(data).head == plan(q.net)[0]
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("no arm-none-eabi-gcc for the emulated half")
    pytest.importorskip("unicorn", reason="pip install unicorn capstone")
    from micronas.measure.layers import LayerCache, measure_network

    assert measure_network(net, "cortex-m4", "whole").bit_exact
    layers = measure_network(net, "cortex-m4", "layers", cache=LayerCache("cortex-m4", disk=False))
    assert all(m.cycles > 0 for m in layers.layers)


def test_cli_search_mcu_json(capsys):
    code, out, err = run(capsys, "search", "--space", "mcu", "--input", "20x20x1", "--classes",
                         "2", "--device", "nrf52840", "--max-latency-ms", "60", "--evaluations",
                         "6", "--json", "--no-cache", "--quiet")
    assert code == 0, err
    d = json.loads(out)
    assert d["config"]["strategy"]["name"] == "evolution" and d["space"] == "mcu"
    assert d["latency_ms"] <= 60
    assert d["reserve_sram_bytes"] == round(0.1 * 256 * 1024)
    assert d["peak_sram_bytes"] <= 256 * 1024 - d["reserve_sram_bytes"]
    assert d["flash_bytes"] <= 1024 * 1024 - d["reserve_flash_bytes"]
    front = d["pareto"]
    assert front and [p["latency_ms"] for p in front] == sorted(p["latency_ms"] for p in front)
    scores = [p["score"] for p in front]
    assert scores == sorted(scores)  # slower points on the front must score higher
    McuSpace().parse(d["arch"])


def test_reserve_is_held_back_from_the_budgets():
    from micronas.hardware import load_device
    from micronas.search import SearchConfig

    dev = load_device("nrf52840")
    b = SearchConfig.of(space="mcu").budgets.for_device(dev)
    assert b.max_sram_bytes == dev.sram_bytes - round(0.1 * dev.sram_bytes)
    b = SearchConfig.of(reserve_sram_kb=0, reserve_flash_kb=200).budgets.for_device(dev)
    assert (b.max_sram_bytes, b.max_flash_bytes) == (dev.sram_bytes, dev.flash_bytes - 200 * 1024)
    b = SearchConfig.of(max_flash_kb=100, reserve_flash_kb=200).budgets.for_device(dev)
    assert b.max_flash_bytes == 100 * 1024


@pytest.mark.parametrize("argv, fragment", [
    (["arch", "w0.35_h128|k3e6|k4e6|k3e6|k3e6|k3e6|k3e6", "--space", "mcu"],
     "character 18: stage 2, block 1 ('k4e6'): kernel 4 is not one of 3, 5, 7"),
    (["cost", SMALL, "--space", "mcu", "--input", "6x6x1", "--classes", "2"],
     "the mcu space needs an input of at least 8x8"),
    (["cost", SMALL.replace("_h", "_r128_h"), "--space", "mcu", "--input", "96x96x1", "--classes",
      "2", "--resolutions", "64"], "resolution 128 is above task custom-96x96x1's 96x96 "
     "input; choose a side from 8 to 96"),
    (["search", "--space", "mcu", "--input", "49x10x1", "--classes", "12", "--resolutions", "32"],
     "--resolutions needs a square --input"),
    (["search", "--space", "mcu", "--strategy", "prune", "--input", "20x20x1", "--classes", "2"],
     "--strategy prune needs a supernet"),
    (["search", "--reserve-flash-kb", "-3"], "--reserve-flash-kb must be a number >= 0"),
    (["search", "--device", "nrf52840", "--reserve-sram-kb", "300"], "leaves no SRAM"),
    (["search", "--space", "mcu", "--input", "96x96x1", "--classes", "2", "--device", "nrf52840",
      "--max-latency-ms", "3"], "even the smallest network has latency"),
    (["search", "--space", "mcu", "--input", "96x96x1", "--classes", "2", "--fixed-resolution",
      "--resolutions", "64"], "--fixed-resolution keeps the input's resolution"),
])
def test_mcu_bad_input_one_line_exit_2(capsys, argv, fragment):
    code, out, err = run(capsys, *argv, *(["--no-cache"] if argv[0] == "search" else []))
    assert code == 2
    assert fragment in err and err.count("\n") == 1, err


def test_an_infeasible_budget_names_its_floors_and_what_relaxes_them(capsys):
    """Person detection 96x96 on an nRF52840 under 150 ms with --fixed-resolution: no network
    at 96x96; the error names the floor against the budget and three ways out (the budget,
    dropping --fixed-resolution, a device), and the resolution it names then gives a network."""
    argv = ["search", "--space", "mcu", "--input", "96x96x1", "--classes", "2", "--device",
            "nrf52840", "--max-latency-ms", "150"]
    code, _, err = run(capsys, *argv, "--fixed-resolution", "--no-cache")
    assert code == 2 and err.count("\n") == 1
    assert "latency 218.44 ms (budget 150.00 ms)" in err  # tflm-cmsis-nn, the default
    assert "--max-latency-ms 221" in err and "a larger device such as" in err
    side = re.search(r"dropping --fixed-resolution \(the search then lowers the resolution to "
                     r"(\d+)x\1 or below", err)
    assert side, err
    code, out, err = run(capsys, *argv, "--resolutions", side.group(1), "--evaluations", "6",
                         "--no-cache", "--quiet", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["latency_ms"] <= 150 and d["network_input"][1] == int(side.group(1))
    r = d["resolution"]
    assert r["chosen_by"] == "--resolutions" and r["side"] == [int(side.group(1))] * 2
    assert r["resize_latency_ms"] > 0 and "(--resolutions)" in r["note"]


def test_a_tight_budget_lowers_the_resolution_by_itself(capsys, tmp_path):
    """The same task without --fixed-resolution: the search binds the task to lower sides
    itself, and the text, result.json and report.md say which it chose and why; the network
    reads the 96x96 input and resizes it (its first layer), at a latency counted in the total."""
    from micronas.hardware import estimate, load_device

    argv = ["search", "--space", "mcu", "--input", "96x96x1", "--classes", "2", "--device",
            "nrf52840", "--max-latency-ms", "150", "--evaluations", "6", "--no-cache", "--quiet"]
    code, out, err = run(capsys, *argv, "--out", str(tmp_path))
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if ln.startswith("resolution"))
    m = re.fullmatch(r"resolution +(\d+)x\1 of 96x96: at 96x96 even the smallest network has "
                     r"latency 218\.44 ms > 150\.00 ms; the network resizes its input "
                     r"\(([0-9.]+) ms counted, extrapolated\)", line)
    assert m, line
    d = json.loads((tmp_path / "result.json").read_text())
    r = d["resolution"]
    side = int(m.group(1))
    assert r["chosen_by"] == "search" and r["side"] == [side, side] and r["input"] == [96, 96]
    assert side in r["searched"] and max(r["searched"]) < 96 and min(r["searched"]) >= 8
    assert all(s % 8 == 0 for s in r["searched"]) and 2 * min(r["searched"]) >= max(r["searched"])
    assert d["latency_ms"] <= 150 and d["network_input"] == [1, side, side]
    assert r["note"] in (tmp_path / "report.md").read_text()
    # the resize is the network's first layer, and its latency is the cost model's
    space = McuSpace()
    net = space.to_network(space.parse(d["arch"]), Task.custom((1, 96, 96), 2))
    assert net.tensors[net.inputs[0]].shape == (1, 96, 96) and net.layers[0].op == "resize_bilinear"
    rep = estimate(net, load_device("nrf52840"))
    assert rep.latency_ms == pytest.approx(d["latency_ms"])
    assert rep.layers[0].latency_ms == pytest.approx(r["resize_latency_ms"])
    assert float(m.group(2)) == pytest.approx(r["resize_latency_ms"], abs=0.05)
