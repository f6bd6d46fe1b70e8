"""The network's own input resize (``resize_bilinear``): IR, torch module, tracer, int8
reference, TFLM, generated C, costs and the search's choice of resolution."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from micronas.deploy.int8 import resize_bilinear
from micronas.errors import MicronasError
from micronas.hardware import estimate, load_device
from micronas.ir import TFLITE_OPS, GraphBuilder
from micronas.spaces.mcu import McuSpace
from micronas.tasks import Task

FLOOR80 = "w0.2_r80_h128|k3e3|k3e3|k3e3|k3e3|k3e3|k3e3"
SMALL40 = "w0.2_r40_h128|k5e3|k7e4|k3e6|k5e3|k7e3|k3e4"
PERSON = Task.custom((1, 96, 96), 2)


def _resize_net(c: int, h: int, w: int, oh: int, ow: int):
    g = GraphBuilder("rs", (c, h, w))
    y = g.resize_bilinear(g.input_name, (oh, ow), name="resize")
    y = g.relu6(g.conv(y, 8, 3, 2, 1, name="stem"))
    return g.build([g.fc(g.global_avgpool(y, name="pool"), 3, name="fc")])


#: down and up, square and not, 1 to 4 channels
SHAPES = [(1, 96, 96, 80, 80), (3, 32, 32, 24, 24), (2, 17, 13, 9, 11), (1, 10, 10, 23, 15),
          (4, 49, 10, 25, 5)]


@pytest.mark.unit
def test_ir_op_shapes_and_no_params():
    net = _resize_net(3, 32, 32, 24, 20)
    rs = net.layers[0]
    assert rs.op == "resize_bilinear" and rs.macs == 0 and rs.params == 0
    assert net.tensors[rs.output].shape == (3, 24, 20)
    assert TFLITE_OPS["resize_bilinear"] == "RESIZE_BILINEAR"
    g = GraphBuilder("bad", (8,))
    with pytest.raises(MicronasError, match="needs a \\(C, H, W\\) input"):
        g.resize_bilinear(g.input_name, 4, name="r")


@pytest.mark.unit
def test_int8_resize_is_tflms_integer_kernel_near_torch():
    """Against PyTorch's bilinear (align_corners=False) on smooth ramps: TFLM's integer
    kernel samples on a 1/1024-pixel grid from a rounded scale, so it may be off by a few
    tenths; on a constant image it is exact."""
    x = np.full((1, 2, 17, 13), -37, np.int8)
    assert (resize_bilinear(x, (9, 30)) == -37).all()
    yy, xx = np.meshgrid(np.arange(40), np.arange(30), indexing="ij")
    ramp = (yy * 3 + xx * 2 - 100).astype(np.int8)[None, None]
    for size in ((32, 24), (20, 15), (57, 41)):
        ours = resize_bilinear(ramp, size)
        ref = F.interpolate(torch.from_numpy(ramp.astype(np.float64)), size=size,
                            mode="bilinear", align_corners=False).numpy()
        assert np.abs(ours - ref).max() <= 1.0, size


@pytest.mark.integration
@pytest.mark.parametrize("shape", SHAPES)
def test_tflm_runs_the_resize_bit_exactly(shape):
    pytest.importorskip("tflite_micro", reason="pip install tflite-micro")
    from micronas.deploy.export import parity, prepare
    from micronas.deploy.quantize import gaussian_batch
    from micronas.deploy.tflite import build_tflite, tflm_arena
    from micronas.hardware.planner import plan

    net = _resize_net(*shape)
    q = prepare(net, seed=3)
    assert q.tensors["resize"] == q.tensors[net.inputs[0]]  # one scale and zero point
    data, index = build_tflite(q)
    x_q = q.input_quant.quantize(gaussian_batch(net, 2, 9))
    p = parity(q, data, index, x_q)
    assert p["tflm_equals_int8_model"]
    # the float reference resizes on exact coordinates: on noise a few LSB apart at most
    assert p["layerwise_max_lsb"] <= 3 and p["layerwise_within_1lsb"] >= 0.98
    assert tflm_arena(data).head == plan(q.net)[0]  # the full-resolution input is planned


@pytest.mark.integration
def test_mcu_network_with_its_resize_tflm_and_planner():
    pytest.importorskip("tflite_micro", reason="pip install tflite-micro")
    from micronas.deploy.export import parity, prepare
    from micronas.deploy.quantize import gaussian_batch
    from micronas.deploy.tflite import build_tflite, tflm_arena
    from micronas.hardware.planner import plan

    net = McuSpace().to_network(McuSpace().parse(SMALL40), Task.custom((1, 48, 48), 2))
    assert net.layers[0].op == "resize_bilinear"
    q = prepare(net, seed=1)
    data, index = build_tflite(q)
    p = parity(q, data, index, q.input_quant.quantize(gaussian_batch(net, 2, 4)))
    assert p["tflm_equals_int8_model"]
    assert tflm_arena(data).head == plan(q.net)[0]


@pytest.mark.integration
def test_module_trace_and_ir_agree():
    """The module reads the task's input and resizes it as the IR says; tracing it gives the
    IR's layers, MACs and params; the reduced variants (indicators) have no resize."""
    space = McuSpace()
    a = space.parse(FLOOR80)
    net = space.to_network(a, PERSON)
    m = space.to_module(a, PERSON).eval()
    from micronas.deploy.trace import trace

    t = trace(m, (1, 96, 96))
    assert [la.op for la in t.layers] == [la.op for la in net.layers]
    assert (t.macs, t.params) == (net.macs, net.params)
    x = torch.randn(2, 1, 96, 96)
    with torch.no_grad():
        inner = F.interpolate(x, size=(80, 80), mode="bilinear", align_corners=False)
        ref = m.classifier(m.head(m.blocks(m.stem(inner))).mean(dim=(2, 3)))
        assert torch.allclose(m(x), ref)
    assert space.variant_input("full", PERSON, a) == (1, 96, 96)
    assert space.variant_input("small", PERSON, a) == (1, 80, 80)
    assert space.to_module(a, PERSON, "small").resize is None
    assert space.info(a, PERSON)["resized_from"] == "96x96x1"


@pytest.mark.unit
def test_tracer_refuses_other_interpolations():
    from micronas.deploy.trace import trace

    class Up(nn.Module):
        def forward(self, x):
            return F.interpolate(x, scale_factor=2, mode="nearest")

    with pytest.raises(MicronasError, match="only bilinear interpolation"):
        trace(nn.Sequential(Up(), nn.Conv2d(1, 2, 3)), (1, 8, 8))

    class Corners(nn.Module):
        def forward(self, x):
            return F.interpolate(x, size=(5, 5), mode="bilinear", align_corners=True)

    with pytest.raises(MicronasError, match="align_corners=True"):
        trace(Corners(), (1, 8, 8))


@pytest.mark.unit
@pytest.mark.parametrize("runtime", ["tflm-cmsis-nn", "micronas-c", "optimized",
                                     "tflm-reference"])
def test_every_runtime_costs_the_resize(runtime):
    """The resize has a latency on every runtime (its own op class; extrapolated except on
    micronas-c, where it is emulated), flash (an operator entry, RESIZE_BILINEAR's code where
    the runtime has per-op sizes) and SRAM (the full-resolution input is in the arena)."""
    dev = load_device("nrf52840", runtime)
    space = McuSpace()
    with_resize = space.to_network(space.parse(FLOOR80), PERSON)
    at80 = space.to_network(space.parse(FLOOR80.replace("_r80", "")), Task.custom((1, 80, 80), 2))
    r, r80 = estimate(with_resize, dev), estimate(at80, dev)
    rs = r.layers[0]
    assert rs.op == "resize_bilinear" and rs.cycles > dev.overhead_cycles
    # the same network after the resize: the resize is all the latency difference
    assert r.latency_ms == pytest.approx(r80.latency_ms + rs.latency_ms)
    # the 96x96 input is planned, live with the resized 80x80 while the resize runs
    from micronas.hardware.planner import plan

    _, bufs = plan(with_resize)
    assert {b.tensor: b.size_bytes for b in bufs}[with_resize.inputs[0]] == 96 * 96
    assert r.arena_bytes >= 96 * 96 + 80 * 80
    big = _resize_net(3, 128, 128, 32, 32)  # where the input is the largest tensor
    assert estimate(big, dev).arena_bytes >= 3 * (128 * 128 + 32 * 32)
    assert r.flash_bytes > r80.flash_bytes
    if runtime != "micronas-c":
        assert "extrapolated" in r.runtime_label
    else:
        assert r.runtime_label == "micronas-c"
    if runtime in ("tflm-cmsis-nn", "tflm-reference"):
        assert "RESIZE_BILINEAR as CONCATENATION" in r.runtime_code_source
        assert r.runtime_code_bytes > r80.runtime_code_bytes


@pytest.mark.unit
def test_lower_bound_is_the_least_floor_over_resolutions():
    from micronas.search.costs import floor_costs, lower_bound
    from micronas.spaces import bind

    dev = load_device("nrf52840")
    task = Task.custom((1, 96, 96), 2, resolutions=(40, 80))
    space = bind(McuSpace(), task)
    per = [floor_costs(space, task, dev, f) for f in space.floors()]
    lb = lower_bound(space, task, dev)
    assert len(per) == 3 and lb.latency_ms == min(p.latency_ms for p in per)
    assert lb.peak_sram_bytes == min(p.peak_sram_bytes for p in per)


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                    reason="no arm-none-eabi-gcc; install with: apt-get install "
                    "--no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi")
@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m0plus"])
def test_generated_c_resize_bit_exact_in_the_emulator(core):
    pytest.importorskip("unicorn", reason="pip install unicorn capstone")
    from micronas.measure.layers import measure_network

    for shape in [(1, 40, 40, 32, 32), (3, 17, 13, 9, 11), (2, 10, 10, 23, 15)]:
        assert measure_network(_resize_net(*shape), core, "whole").bit_exact, shape
    net = McuSpace().to_network(McuSpace().parse(SMALL40.replace("_r40", "_r16")),
                                Task.custom((1, 24, 24), 2))
    m = measure_network(net, core, "whole")
    assert m.bit_exact and m.layers[0].cycles > 0


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                    reason="no arm-none-eabi-gcc; install with: apt-get install "
                    "--no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi")
def test_micronas_c_resize_constants_predict_the_emulator():
    """micronas-c's resize constants (emulated, fitted on the designed set) predict a resize
    the fit did not see within 3 %."""
    pytest.importorskip("unicorn", reason="pip install unicorn capstone")
    from micronas.hardware.cost import layer_cycles
    from micronas.measure.layers import LayerCache, measure_layer

    net = _resize_net(1, 96, 96, 72, 72)
    m = measure_layer(net, net.layers[0], "cortex-m4", LayerCache("cortex-m4", disk=False))
    dev = load_device("stm32l4r5", "micronas-c")
    assert layer_cycles(net, net.layers[0], dev) == pytest.approx(m.cycles, rel=0.03)


@pytest.mark.unit
def test_bundle_registers_every_exported_op():
    """main.cc's op resolver has an Add call for every TFLite operator the exporter writes
    (RESIZE_BILINEAR included)."""
    from micronas.ship.bundle import _RESOLVER

    assert set(TFLITE_OPS.values()) <= set(_RESOLVER)
    assert _RESOLVER["RESIZE_BILINEAR"] == "AddResizeBilinear"


@pytest.mark.integration
def test_training_reads_full_resolution_and_old_checkpoints_still_load(tmp_path):
    """Training feeds the task's data as it is (the network resizes it); a checkpoint made
    when the data was resized beforehand (its network_input the lower side) quantises to the
    same network reading the task's input."""
    from dataclasses import replace

    from micronas.ship.checkpoint import Checkpoint
    from micronas.ship.int8 import quantize_checkpoint
    from micronas.ship.train import Recipe, train
    from micronas.tasks.data import load_dataset

    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=rng.normal(size=(24, 1, 24, 24)).astype(np.float32),
             y_train=np.arange(24) % 2, x_test=rng.normal(size=(8, 1, 24, 24)).astype(np.float32),
             y_test=np.arange(8) % 2)
    ds = load_dataset(str(path), seed=0)
    arch = "w0.2_r16_h128|k3e3|k3e3|k3e3|k3e3|k3e3|k3e3"
    tr = train(arch, "mcu", ds, tmp_path / "t", Recipe(epochs=1, batch_size=8), seed=0)
    assert tuple(tr.network_input) == (1, 24, 24)  # what the network reads
    m = quantize_checkpoint(tr.checkpoint, ds)
    net = m.qnet.net
    assert net.tensors[net.inputs[0]].shape == (1, 24, 24) and net.layers[0].op == "resize_bilinear"
    old = replace(Checkpoint.load(tr.checkpoint), network_input=(1, 16, 16))
    m_old = quantize_checkpoint(old, ds)
    old_net = m_old.qnet.net
    assert old_net.tensors[old_net.inputs[0]].shape == (1, 24, 24)
    assert [la.op for la in old_net.layers] == [la.op for la in net.layers]
    assert m_old.trained.float_accuracy == m.trained.float_accuracy


@pytest.mark.system
def test_build_lowers_the_resolution_and_ships_the_resize(tmp_path):
    """micronas build on square images whose budget no network meets at their size: the
    search lowers the resolution, training reads the images as they are, the int8 network
    starts with RESIZE_BILINEAR and passes the TFLM check (and the emulator's, with the
    toolchain); report.md and build.json say which resolution and why."""
    import json
    import subprocess
    import sys

    from micronas.search.costs import Budgets, lower_bound
    from micronas.spaces import bind

    rng = np.random.default_rng(0)
    path = tmp_path / "sq.npz"
    np.savez(path, x_train=rng.normal(size=(64, 1, 32, 32)).astype(np.float32),
             y_train=np.arange(64) % 2, x_test=rng.normal(size=(16, 1, 32, 32)).astype(np.float32),
             y_test=np.arange(16) % 2)
    task = Task.custom((1, 32, 32), 2)
    floor = lower_bound(bind(McuSpace(), task), task, load_device("nrf52840")).latency_ms
    budget = f"{0.8 * floor:.2f}"
    assert not Budgets(float(budget)).ok(lower_bound(bind(McuSpace(), task), task,
                                                     load_device("nrf52840")))
    compile_args = [] if shutil.which("arm-none-eabi-gcc") else ["--no-compile"]
    out = tmp_path / "b"
    r = subprocess.run([sys.executable, "-m", "micronas", "build", "--data", str(path),
                        "--device", "nrf52840", "--max-latency-ms", budget, "--epochs", "1",
                        "--batch-size", "16", "--evaluations", "4", "--no-cache", "--quiet",
                        "--out", str(out), *compile_args], capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr
    b = json.loads((out / "build.json").read_text())
    res = b["search"]["resolution"]
    assert res["chosen_by"] == "search" and res["side"][0] < 32 and res["input"] == [32, 32]
    assert res["note"] in (out / "report.md").read_text() and res["note"] in r.stdout
    assert b["bundle"]["network_input"] == [1, 32, 32] and b["latency_ms"] <= float(budget)
    assert b["bundle"]["int8_tflm_test_samples"] == 16
    assert "AddResizeBilinear" in (out / "bundle" / "main.cc").read_text()
    if not compile_args:
        assert b["bundle"]["emulator"]["standalone_equals_tflm"]
        assert "mn_resize_bilinear(" in (out / "bundle" / "standalone" / "model.c").read_text()
