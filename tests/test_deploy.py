"""int8 quantisation, TFLite export checked in TFLM, the arena, ONNX export."""

import math

import numpy as np
import pytest

from micronas.api import build_ir
from micronas.deploy.export import export, parity, prepare
from micronas.deploy.fixedpoint import (
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rdbpot,
    srdhm,
)
from micronas.deploy.int8 import run_int8
from micronas.deploy.quantize import activation_quant, gaussian_batch
from micronas.errors import MicronasError
from micronas.hardware.planner import plan
from micronas.ir import lower_for_tflm, tflite_padding
from micronas.spaces.nb201 import NB201Arch, nb201_network

pytestmark = pytest.mark.integration

tflm = pytest.importorskip("tflite_micro", reason="pip install tflite-micro")


def small(index: int = 6111):
    return nb201_network(NB201Arch.from_index(index), C=4, N=1)


def test_quantize_multiplier_hand_cases():
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(1.0) == (1 << 30, 1)
    m, s = quantize_multiplier(0.3)
    assert abs(m * 2.0 ** (s - 31) - 0.3) < 1e-9
    assert quantize_multiplier(0.0) == (0, 0)


def test_fixed_point_helpers_against_exact_rationals():
    rng = np.random.default_rng(0)
    x = rng.integers(-(2**20), 2**20, size=2000)
    m, s = quantize_multiplier(0.0123)
    got = multiply_by_quantized_multiplier(x, m, s)
    exact = x * (m / 2**31) * 2.0**s
    assert np.all(np.abs(got - exact) <= 1)  # two roundings, each at most half an LSB
    assert rdbpot(np.array([5, -5, 6, -6]), 1).tolist() == [3, -3, 3, -3]  # half away from zero
    assert int(srdhm(np.array([-(2**31)]), -(2**31))[0]) == 2**31 - 1  # the one saturating case


def test_activation_quant_keeps_zero_exact():
    q = activation_quant(-1.3, 2.7)
    assert q.dequantize(np.array([q.zero_point]))[0] == 0.0
    assert q.quantize(np.array([0.0]))[0] == q.zero_point
    assert math.isclose(q.scale, 4.0 / 255, rel_tol=1e-6)


def test_tflite_padding_rules():
    assert tflite_padding(32, 3, 1, 1) == "SAME"
    assert tflite_padding(32, 3, 2, 1) is None  # TFLite SAME pads 0 on top here, PyTorch 1
    assert tflite_padding(32, 1, 2, 0) == "VALID"
    net = lower_for_tflm(small())
    pads = [lay for lay in net.layers if lay.op == "pad"]
    # 32 -> 33 rows (1 on top, none at the bottom: the last window ends at row 32), 16 -> 17
    assert [net.tensors[p.output].shape[1:] for p in pads] == [(33, 33), (17, 17)]


@pytest.mark.parametrize("arch", ["6111", "mlperf:kws", "mlperf:ic", "mlperf:ad"])
def test_tflm_bit_exact_and_arena(arch):
    from micronas.deploy.tflite import build_tflite, tflm_arena

    net = small() if arch == "6111" else build_ir(arch)
    q = prepare(net, seed=3)
    data, index = build_tflite(q)
    x_q = q.input_quant.quantize(gaussian_batch(net, 2, 9))
    p = parity(q, data, index, x_q)
    assert p["tflm_equals_int8_model"]                 # every tensor, both samples
    assert p["layerwise_within_1lsb"] >= 0.99 and p["layerwise_max_lsb"] <= 1
    assert tflm_arena(data).head == plan(q.net)[0]     # our planner = TFLM's arena


def test_export_writes_files_and_checks(tmp_path):
    r = export(small(), "tflite", tmp_path / "m.tflite")
    assert (tmp_path / "m.tflite").read_bytes()[4:8] == b"TFL3"
    assert r.checks["tflm_equals_int8_model"]
    o = export(build_ir("mlperf:kws"), "onnx", tmp_path / "m.onnx")
    assert o.checks["onnxruntime_max_rel_error"] < 1e-5


def test_export_bad_input(tmp_path):
    with pytest.raises(MicronasError, match="unknown export format"):
        export(small(), "pb", tmp_path / "m.pb")
    with pytest.raises(MicronasError, match="existing directory"):
        export(small(), "tflite", tmp_path / "missing" / "m.tflite")
    dead = nb201_network(NB201Arch.from_string("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"),
                         C=4, N=1)
    with pytest.raises(MicronasError, match="constant-zero node"):
        export(dead, "tflite", tmp_path / "d.tflite")
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_int8_model_matches_tflm_rounding_variant():
    """The pip TFLM build uses double rounding; single rounding would differ somewhere."""
    from micronas.deploy.tflite import run_tflm, to_tflite

    net = small(100)
    q = prepare(net, seed=1)
    x_q = q.input_quant.quantize(gaussian_batch(net, 4, 5))
    tf = run_tflm(to_tflite(q), x_q)
    out = q.net.outputs[0]
    assert np.array_equal(tf, run_int8(q, x_q, "double")[out].reshape(4, -1))


def test_cli_export(cli, tmp_path):
    code, out, err = cli("export", "6111", "--out", str(tmp_path / "a.tflite"), "--json")
    assert code == 0, err
    code, out, err = cli("export", "6111", "--format", "xml", "--out", str(tmp_path / "a"))
    assert code == 2 and err.count("\n") == 1 and "unknown export format" in err
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 8, 8)))
    code, out, err = cli("export", "6111", "--out", str(tmp_path / "b.tflite"), "--calibration",
                         str(tmp_path / "bad.npy"))
    assert code == 2 and "expected (batch, 3, 32, 32)" in err
