"""1-D inputs (time series): spelled LxC / read from (N, L, C) .npz data as (C, L, 1); the mcu
space builds k x 1 kernels and downsamples along time only; costs, indicators, the tracer,
TFLM, the emulated standalone C, training and the build all take them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from micronas.errors import ArchError, DataError, MicronasError
from micronas.ir import lower_for_tflm, window_padding
from micronas.spaces.mcu import McuSpace
from micronas.spaces.testing import SpaceConformance, module_counts
from micronas.tasks import Task, resolve_task
from micronas.tasks.data import load_dataset
from micronas.tasks.synthetic import GESTURES, gestures, write_gestures

IMU = Task.custom((3, 128, 1), 6)
ARCH = "w0.35_h256|k3e3|k5e4,k3e3|k7e6|k3e4|k5e3|k3e3"
TASKS_1D = (IMU, Task.custom((1, 16, 1), 2), Task.custom((9, 50, 1), 4))
needs_toolchain = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                                     reason="no arm-none-eabi-gcc; install with: apt-get "
                                     "install --no-install-recommends gcc-arm-none-eabi "
                                     "libnewlib-arm-none-eabi")


def _windows(net):
    return [la for la in net.layers if la.op in ("conv2d", "depthwise_conv2d", "avgpool2d",
                                                 "maxpool2d")]


def _save(path: Path, **arrays) -> Path:
    rng = np.random.default_rng(0)
    d = {"x_train": rng.normal(size=(36, 40, 3)).astype(np.float32), "y_train": np.arange(36) % 3,
         "x_test": rng.normal(size=(9, 40, 3)).astype(np.float32), "y_test": np.arange(9) % 3}
    d.update(arrays)
    np.savez(path, **d)
    return path


# --- unit: spelling, data, the space, padding, augmentation, the synthetic set ------------

@pytest.mark.unit
def test_lxc_spelling_and_description():
    t = resolve_task(None, "128x3", 6)
    assert t.input_shape == (3, 128, 1) and t.is_1d and t.name == "custom-128x3"
    assert t.describe() == "custom-128x3 (128x3: 128 steps x 3 channels, 6 classes)"
    assert resolve_task(None, "128x1x3", 6).input_shape == (3, 128, 1)
    assert not resolve_task(None, "49x10x1", 12).is_1d
    assert resolve_task(None, "49x10x1", 12).name == "custom-49x10x1"  # 2-D names unchanged
    with pytest.raises(MicronasError, match="a time series' length is fixed"):
        resolve_task(None, "128x3", 6, resolutions="64")


@pytest.mark.unit
def test_npz_series_is_read_as_c_l_1(tmp_path):
    ds = load_dataset(str(_save(tmp_path / "s.npz")))
    assert ds.input_shape == (3, 40, 1) and ds.meta["kind"] == "series"
    raw = np.load(tmp_path / "s.npz")["x_train"]
    # channel 1 of sample 5, in time order, is the raw column normalised with its statistics
    col = raw[:, :, 1].astype(np.float64)
    expect = (col[5] - col.mean()) / col.std()
    assert np.allclose(ds.x_train[5, 1, :, 0], expect, atol=1e-5)
    # a 12-lead ECG-like series needs layout="NLC" (12 could be an image width); without it
    # (N, H, W) images keep today's meaning, as do 49x10 MFCC maps
    ecg = {"x_train": np.ones((6, 64, 12)) * np.arange(6)[:, None, None],
           "x_test": np.ones((3, 64, 12)), "y_train": np.arange(6) % 2, "y_test": np.arange(3) % 2}
    assert load_dataset(str(_save(tmp_path / "e.npz", **ecg, layout="NLC"))).input_shape == (12, 64, 1)
    assert load_dataset(str(_save(tmp_path / "i.npz", **ecg))).input_shape == (1, 64, 12)
    mfcc = {"x_train": np.ones((6, 49, 10)) * np.arange(6)[:, None, None],
            "x_test": np.ones((3, 49, 10)), "y_train": np.arange(6) % 2, "y_test": np.arange(3) % 2}
    assert load_dataset(str(_save(tmp_path / "m.npz", **mfcc))).input_shape == (1, 49, 10)


@pytest.mark.unit
@pytest.mark.parametrize("arrays, needle", [
    ({"x_test": np.zeros((9, 30, 3), np.float32)}, "training sequences are 40 steps"),
    ({"x_train": np.zeros((36, 40), np.float32)}, "give (n, l, c) for a time series"),
    ({"x_train": np.zeros((36, 2, 40, 3, 1), np.float32)}, "give (n, l, c) for a time series"),
    ({"layout": "LNC"}, "layout must be the string 'nlc'"),
    ({"layout": "NLC", "x_train": np.zeros((36, 1, 40, 3), np.float32)}, "layout='nlc' names a 3-d x"),
])
def test_bad_series_data_one_line(tmp_path, arrays, needle):
    with pytest.raises(DataError) as e:
        load_dataset(str(_save(tmp_path / "bad.npz", **arrays)))
    assert needle in str(e.value).lower() and "\n" not in str(e.value)


@pytest.mark.unit
def test_ragged_object_array_is_refused(tmp_path):
    ragged = np.empty(36, dtype=object)
    for i in range(36):
        ragged[i] = np.zeros((30 + i % 4, 3), np.float32)
    np.savez(tmp_path / "r.npz", x_train=ragged, y_train=np.arange(36) % 3,
             x_test=np.zeros((9, 40, 3)), y_test=np.arange(9) % 3)
    with pytest.raises(DataError, match="x_train is an object array .*pad, crop or resample"):
        load_dataset(str(tmp_path / "r.npz"))


@pytest.mark.unit
def test_every_window_is_k_by_1_along_time():
    sp = McuSpace().for_task(IMU)
    rng = np.random.default_rng(3)
    for a in [sp.parse(ARCH), sp.floor(), *(sp.sample(rng) for _ in range(10))]:
        net = sp.to_network(a, IMU)
        assert all(t.shape[2] == 1 for t in net.tensors.values() if len(t.shape) == 3)
        wins = _windows(net)
        assert {la.kernel[1] for la in wins} == {1} and {la.stride[1] for la in wins} == {1}
        assert {la.padding[1] for la in wins} == {0}
        assert {la.padding[0] for la in wins} == {la.kernel[0] // 2 for la in wins}
        assert net.layers[0].kernel == (3, 1) and net.layers[0].stride == (2, 1)
        # 128 -> 64 (stem) -> 32, 16, 8, 4 along time (stages 1, 2, 3, 5 halve it)
        assert net.tensors[net.layers[-3].output].shape[1:] == (4, 1) or a.head == 0
        convs = [m for m in sp.to_module(a, IMU).modules() if isinstance(m, nn.Conv2d)]
        assert len(convs) == sum(la.op in ("conv2d", "depthwise_conv2d") for la in net.layers)
        assert all(m.kernel_size[1] == 1 and m.stride[1] == 1 and m.padding[1] == 0
                   for m in convs)


@pytest.mark.unit
def test_the_space_refuses_short_or_misspelled_series():
    sp = McuSpace()
    with pytest.raises(ArchError, match="time series of at least 8 steps; task custom-4x3 gives 4"):
        sp.for_task(Task.custom((3, 4, 1), 2))
    with pytest.raises(ArchError, match="spell it LxC, --input 128x3"):
        sp.for_task(Task.custom((3, 1, 128), 2))
    with pytest.raises(ArchError, match=r"at least 8x8; .*gives 3x128 \(a time series"):
        sp.for_task(Task.custom((1, 3, 128), 2))
    with pytest.raises(ArchError, match="fixed length 128: drop the _r64"):
        sp.to_network(sp.parse(ARCH.replace("_h", "_r64_h")), IMU)


@pytest.mark.unit
def test_ir_and_torch_agree_on_1d_architectures():
    sp = McuSpace()
    rng = np.random.default_rng(11)
    for i in range(24):
        task = TASKS_1D[i % len(TASKS_1D)]
        a = sp.sample(rng)
        net = sp.to_network(a, task)
        shape, macs, params = module_counts(sp.to_module(a, task), task.input_shape)
        assert shape == (task.classes,) and macs == net.macs, str(a)
        assert params == sum(la.source_params for la in net.layers), str(a)


class TestMcu1DConformance(SpaceConformance):
    space = McuSpace()
    tasks = TASKS_1D
    pytestmark = pytest.mark.unit


@pytest.mark.unit
def test_tflite_padding_of_k_by_1_windows():
    # a k x 1 window over a width-1 map: SAME along time, nothing to pad across: SAME
    assert window_padding((8, 128, 1), (5, 1), (1, 1), (2, 0)) == "SAME"
    assert window_padding((8, 128, 1), (1, 1), (1, 1), (0, 0)) == "VALID"
    # stride 2 on an even length: TFLite's SAME pads the end, PyTorch the start: explicit pad
    assert window_padding((8, 128, 1), (3, 1), (2, 1), (1, 0)) is None
    assert window_padding((8, 127, 1), (3, 1), (2, 1), (1, 0)) == "SAME"
    # a 2-D window keeps its rules: a (3, 1) kernel over a wide map needs SAME on both axes
    assert window_padding((8, 32, 32), (3, 1), (1, 1), (1, 0)) == "SAME"
    assert window_padding((8, 32, 32), (3, 3), (1, 1), (1, 0)) is None
    net = lower_for_tflm(McuSpace().to_network(McuSpace().parse(ARCH), IMU))
    pads = [la for la in net.layers if la.op == "pad"]
    # only the stride-2 windows over even lengths read an explicit pad (stem excluded: 3ch)
    assert pads and all(net.tensors[p.inputs[0]].shape[1] % 2 == 0 for p in pads)
    assert all(net.tensors[p.output].shape[2] == 1 for p in pads)


@pytest.mark.unit
def test_augmentation_shifts_a_series_in_time_only():
    from micronas.ship.train import Recipe, _augmenter
    from micronas.tasks.data import _finish

    rng = np.random.default_rng(0)
    raw = rng.normal(size=(8, 64, 2)).astype(np.float32)
    ds = _finish("s", "s", raw, np.arange(8) % 2, raw, np.arange(8) % 2, None, False,
                 layout="NLC")
    mode, aug = _augmenter(Recipe(augment="auto"), ds, ds.input_shape)
    assert mode == "none" and aug is None          # .npz data: none unless asked
    mode, aug = _augmenter(Recipe(augment="crop"), ds, ds.input_shape)
    x = torch.from_numpy(ds.x_train)
    out = aug(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    fill = torch.tensor([-m / s for m, s in zip(ds.mean, ds.std, strict=True)]).view(-1, 1)
    for i in range(len(x)):  # each sample is the series shifted by -8..8 steps, fill outside
        ok = False
        for d in range(-8, 9):
            ref = torch.cat([fill.expand(2, 8), x[i, :, :, 0], fill.expand(2, 8)], 1)[:, 8 + d:72 + d]
            ok |= torch.allclose(out[i, :, :, 0], ref)
        assert ok, i
    with pytest.raises(MicronasError, match="reverse a time series' time axis"):
        _augmenter(Recipe(augment="crop-flip"), ds, ds.input_shape)


@pytest.mark.unit
def test_synthetic_gestures_are_seeded_balanced_and_distinct():
    a, b, c = gestures(60, 30, seed=1), gestures(60, 30, seed=1), gestures(60, 30, seed=2)
    assert a["x_train"].shape == (60, 128, 3) and a["x_train"].dtype == np.float32
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["x_train"], c["x_train"])
    assert np.bincount(a["y_train"]).tolist() == [10] * len(GESTURES)
    # the classes are told apart by where their energy is: a fast wave on y (1) has more
    # step-to-step change on y than a slow wave on x (0)
    d = np.abs(np.diff(a["x_train"], axis=1)).mean(axis=1)
    assert d[a["y_train"] == 1, 1].mean() > d[a["y_train"] == 0, 1].mean()


# --- integration: costs, indicators, tracer, TFLM, the emulator, the CLI ------------------

@pytest.mark.integration
def test_1d_indicators_are_finite():
    from micronas import api

    r = api.score(ARCH, ["ntk_cond", "linear_regions", "naswot", "synflow", "az_expressivity",
                         "meco", "zico", "jacov"], space="mcu", task=IMU, seed=0)
    values = {k: v.value for k, v in r.scores.items()}
    assert all(np.isfinite(v) for v in values.values()), values
    assert values["linear_regions"] > 1 and "singular" not in r.scores["ntk_cond"].flags


@pytest.mark.integration
def test_tracer_reads_the_1d_module_as_its_ir():
    from micronas.deploy.trace import trace
    from micronas.hardware import estimate, load_device

    sp = McuSpace()
    a = sp.parse(ARCH)
    net = sp.to_network(a, IMU)
    traced = trace(sp.to_module(a, IMU).eval(), IMU.input_shape)
    assert traced.macs == net.macs and traced.params == net.params
    assert [(la.kernel, la.stride, la.padding) for la in _windows(traced)] == \
        [(la.kernel, la.stride, la.padding) for la in _windows(net)]
    dev = load_device("nrf52840")
    r, t = estimate(net, dev), estimate(traced, dev)
    assert (r.latency_ms, r.peak_sram_bytes, r.flash_bytes) == (t.latency_ms, t.peak_sram_bytes,
                                                                 t.flash_bytes)


@pytest.mark.integration
def test_tflm_bit_exact_and_arena_on_1d_networks():
    pytest.importorskip("tflite_micro", reason="pip install tflite-micro")
    from micronas.deploy.export import parity, prepare
    from micronas.deploy.quantize import gaussian_batch
    from micronas.deploy.tflite import build_tflite, tflm_arena
    from micronas.hardware.planner import plan

    sp = McuSpace()
    for i, (arch, task) in enumerate([(ARCH, IMU), (sp.format(sp.floor()), TASKS_1D[2])]):
        net = sp.to_network(sp.parse(arch), task)
        q = prepare(net, seed=i)
        data, index = build_tflite(q)
        x_q = q.input_quant.quantize(gaussian_batch(net, 2, i))
        p = parity(q, data, index, x_q)
        assert p["tflm_equals_int8_model"], arch
        assert p["layerwise_max_lsb"] <= 1
        assert tflm_arena(data).head == plan(q.net)[0]


@pytest.mark.integration
@needs_toolchain
def test_generated_c_bit_exact_on_a_1d_network():
    pytest.importorskip("unicorn", reason="pip install unicorn capstone")
    from micronas.measure.layers import measure_network

    net = McuSpace().to_network(McuSpace().parse(ARCH), Task.custom((3, 40, 1), 6))
    assert measure_network(net, "cortex-m4", "whole").bit_exact


@pytest.mark.integration
def test_cli_cost_and_search_of_a_1d_input(cli):
    code, out, err = cli("cost", ARCH, "--space", "mcu", "--input", "128x3", "--classes", "6",
                         "--device", "nrf52840", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["task"] == "custom-128x3 (128x3: 128 steps x 3 channels, 6 classes)"
    assert all(la["kernel"][1] == 1 for la in d["layers"] if "kernel" in la)
    code, out, err = cli("search", "--space", "mcu", "--input", "128x3", "--classes", "6",
                         "--device", "nrf52840", "--max-latency-ms", "30", "--evaluations", "8",
                         "--no-cache", "--quiet", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["latency_ms"] <= 30 and d["network_input"] == [3, 128, 1]


@pytest.mark.integration
@pytest.mark.parametrize("argv, fragment", [
    (["--input", "1x128x3"], "spell it LxC, --input 128x3"),
    (["--input", "3x128x1"], "a time series of L steps and C channels is spelled LxC"),
    (["--input", "128x3x1"], "at least 8x8"),
    (["--input", "4x3"], "time series of at least 8 steps"),
    (["--input", "128x3", "--resolutions", "64"], "a time series' length is fixed"),
])
def test_1d_bad_input_one_line_exit_2(cli, argv, fragment):
    code, out, err = cli("cost", ARCH, "--space", "mcu", "--classes", "6", *argv)
    assert code == 2 and fragment in err and err.count("\n") == 1, err


# --- system: the CLI on a file, the build end to end -------------------------------------

def _run(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "micronas", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.system
@pytest.mark.parametrize("arrays, needle", [
    ({"x_test": np.zeros((9, 30, 3), np.float32)}, "test sequences 30 x 3"),
    ({"x_train": np.zeros((36, 40), np.float32)}, "(N, L, C) for a time series"),
])
def test_bad_series_file_exit_2_nothing_written(tmp_path, arrays, needle):
    data = _save(tmp_path / "bad.npz", **arrays)
    for cmd in (["train", ARCH, "--epochs", "1"], ["build", "--device", "nrf52840", "--no-cache"]):
        out = tmp_path / cmd[0]
        r = _run(*cmd, "--data", str(data), "--out", str(out), "--quiet")
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and needle in lines[0], r.stderr
        assert not out.exists() or not any(out.iterdir())


@pytest.mark.system
@pytest.mark.slow
def test_build_a_gesture_classifier_end_to_end(tmp_path):
    """The synthetic 128x3 gestures through search -> train -> int8 in TFLM -> bundle (C
    compiled and run in the emulator when the toolchain is here), within a latency budget."""
    data = write_gestures(tmp_path / "IMU.npz", n_train=1200, n_test=300)
    out = tmp_path / "D"
    args = ["build", "--data", str(data), "--device", "nrf52840", "--max-latency-ms", "25",
            "--evaluations", "6", "--epochs", "8", "--augment", "crop", "--out", str(out),
            "--json", "--quiet", "--no-cache"]
    if shutil.which("arm-none-eabi-gcc") is None:
        args.append("--no-compile")
    r = _run(*args)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["latency_ms"] <= 25 and d["fits_with_reserve"]
    assert d["bundle"]["network_input"] == [3, 128, 1]
    # six classes: chance is 1/6; the int8 network in TFLM must have learned the gestures
    assert d["int8_tflm_test_accuracy"] > 0.4, d["int8_tflm_test_accuracy"]
    assert abs(d["int8_tflm_test_accuracy"] - d["float_test_accuracy"]) < 0.1
    if "emulator" in d["bundle"]:
        assert d["bundle"]["emulator"]["standalone_equals_tflm"]
    cfg = (out / "bundle" / "model_config.h").read_text()
    assert "128" in cfg
    assert "128x3 (time steps x channels)" in (out / "report.md").read_text()
