"""Hardswish, SiLU (LOGISTIC + MUL) and Sigmoid: tracing, the int8 reference bit-exact with
TFLite Micro (every int8 input, several scales), export, costs and the standalone C's refusal."""

import numpy as np
import pytest
import torch
from torch import nn

from micronas.deploy.quantize import LOGISTIC_QUANT, QNetwork, QParams, TensorQuant
from micronas.errors import MicronasError
from micronas.ir import GraphBuilder

#: (input scale, input zero point): narrow to wide ranges, centred and one-sided
INPUT_QUANTS = [(0.0123, 0), (0.047, -17), (0.1, 40), (0.25, -128), (1.7, 5), (0.0039, 127)]


class MobileBlock(nn.Module):
    """A tiny MobileNetV3-style network: conv + Hardswish, depthwise + ReLU6, a SiLU
    projection, a squeeze-excite style sigmoid gate (an elementwise product), a classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.hs = nn.Hardswish()
        self.dw = nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False)
        self.dw_bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU6()
        self.pw = nn.Conv2d(8, 16, 1)
        self.silu = nn.SiLU()
        self.gate = nn.Conv2d(16, 16, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.hs(self.bn(self.stem(x)))
        x = self.act(self.dw_bn(self.dw(x)))
        x = self.silu(self.pw(x))
        x = x * torch.sigmoid(self.gate(x))
        return self.fc(self.pool(x).flatten(1))


def _single(op: str, in_q: TensorQuant, out_q: TensorQuant) -> QNetwork:
    """A one-op network over all 256 int8 values (a 1 x 16 x 16 input), quantised by hand."""
    g = GraphBuilder(op, (1, 16, 16))
    if op == "square":
        y = g.mul("input", "input", name="y")
    else:
        y = getattr(g, op)("input", name="y")
    net = g.build([y])
    return QNetwork(net, {"input": in_q, "y": out_q}, {})


def _all_int8() -> np.ndarray:
    return np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 16, 16)


def _tflm_vs_reference(qnet: QNetwork, x_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from micronas.deploy.int8 import run_int8
    from micronas.deploy.tflite import run_tflm, to_tflite

    want = run_int8(qnet, x_q)[qnet.net.outputs[0]].reshape(len(x_q), -1)
    got = run_tflm(to_tflite(qnet), x_q)
    return got, want


# ---------------------------------------------------------------- tracing and the IR


@pytest.mark.unit
def test_trace_maps_the_activations_to_ir_ops():
    from micronas.deploy.trace import trace

    net = trace(MobileBlock(), (3, 32, 32))
    ops = [(la.name, la.op, la.activation) for la in net.layers]
    assert ("hs", "hard_swish", "none") in ops
    assert ("dw", "depthwise_conv2d", "relu6") in ops          # ReLU6 fused
    assert ("silu.sigmoid", "logistic", "none") in ops and ("silu", "mul", "none") in ops
    silu = next(la for la in net.layers if la.name == "silu")
    assert silu.inputs == ("pw", "silu.sigmoid")               # x * sigmoid(x)
    gate = next(la for la in net.layers if la.op == "mul" and la.name != "silu")
    assert gate.inputs == ("silu", "sigmoid")
    for la in net.layers:
        if la.op in ("hard_swish", "logistic", "mul"):
            assert la.macs == 0 and la.params == 0
            assert net.tensors[la.output].shape == net.tensors[la.inputs[0]].shape


@pytest.mark.unit
@pytest.mark.parametrize("form", ["module", "functional", "method"])
def test_trace_functional_forms(form):
    from micronas.deploy.trace import trace

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 4, 1)
            self.hs, self.silu = nn.Hardswish(), nn.SiLU()

        def forward(self, x):
            x = self.c(x)
            if form == "functional":
                return nn.functional.silu(nn.functional.hardswish(x))
            if form == "method":
                return torch.mul(x.sigmoid(), x)
            return self.silu(self.hs(x))

    ops = [la.op for la in trace(M(), (3, 8, 8)).layers]
    assert ops == (["conv2d", "logistic", "mul"] if form == "method"
                   else ["conv2d", "hard_swish", "logistic", "mul"])


@pytest.mark.unit
@pytest.mark.parametrize("act", [nn.GELU(), nn.ELU(), nn.Tanh(), nn.LeakyReLU()])
def test_unsupported_activation_names_layer_and_supported_ones(act):
    from micronas.deploy.trace import trace

    model = nn.Sequential(nn.Conv2d(3, 4, 1), act)
    with pytest.raises(MicronasError) as e:
        trace(model, (3, 8, 8))
    msg = str(e.value)
    assert "\n" not in msg and "layer 1" in msg and type(act).__name__ in msg
    assert "Hardswish" in msg and "SiLU" in msg and "ReLU6" in msg


@pytest.mark.unit
def test_unsupported_functional_activation_is_named():
    from micronas.deploy.trace import trace

    class M(nn.Module):
        def forward(self, x):
            return nn.functional.gelu(x)

    with pytest.raises(MicronasError, match=r"node gelu .*supported activations: .*SiLU"):
        trace(M(), (3, 8, 8))


@pytest.mark.unit
def test_mul_of_different_shapes_is_refused():
    g = GraphBuilder("m", (3, 4, 4))
    pooled = g.pool("input", 2, 2, name="p")
    with pytest.raises(MicronasError, match="cannot multiply shapes"):
        g.mul("input", pooled, name="m")


@pytest.mark.unit
def test_logistic_output_has_tflites_fixed_quantisation():
    from micronas.deploy.export import prepare
    from micronas.deploy.trace import trace

    q = prepare(trace(MobileBlock(), (3, 16, 16)), seed=3)
    for la in q.net.layers:
        if la.op == "logistic":
            assert q.tensors[la.output] == LOGISTIC_QUANT
            assert LOGISTIC_QUANT.scale == 1 / 256 and LOGISTIC_QUANT.zero_point == -128
        if la.op in ("hard_swish", "mul"):  # calibrated: not the input's quantisation
            assert q.tensors[la.output] != q.tensors[la.inputs[0]]


# ---------------------------------------------------------------- int8 against TFLM

tflm_only = pytest.mark.skipif(
    __import__("importlib").util.find_spec("tflite_micro") is None,
    reason="pip install tflite-micro")


@pytest.mark.integration
@tflm_only
@pytest.mark.parametrize("in_scale,in_zp", INPUT_QUANTS)
def test_hard_swish_every_int8_input_bit_exact(in_scale, in_zp):
    """All 256 inputs, output scales from finer to coarser than the input's."""
    from micronas.deploy.reference import run_fake_quant

    in_q = TensorQuant(float(np.float32(in_scale)), in_zp)
    x = _all_int8()
    for ratio, out_zp in ((0.6, -100), (1.0, -20), (2.5, 3)):
        out_q = TensorQuant(float(np.float32(in_scale * ratio)), out_zp)
        qnet = _single("hard_swish", in_q, out_q)
        got, want = _tflm_vs_reference(qnet, x)
        np.testing.assert_array_equal(got, want)
        # and within 1 LSB of hardswish in float64 (the fixed point's accuracy)
        ref = run_fake_quant(qnet, x)["y"].reshape(1, -1).astype(int)
        assert np.abs(ref - want).max() <= 1


@pytest.mark.integration
@tflm_only
@pytest.mark.parametrize("in_scale,in_zp", INPUT_QUANTS)
def test_logistic_every_int8_input_bit_exact(in_scale, in_zp):
    from micronas.deploy.reference import run_fake_quant

    qnet = _single("logistic", TensorQuant(float(np.float32(in_scale)), in_zp), LOGISTIC_QUANT)
    x = _all_int8()
    got, want = _tflm_vs_reference(qnet, x)
    np.testing.assert_array_equal(got, want)
    ref = run_fake_quant(qnet, x)["y"].reshape(1, -1).astype(int)
    assert np.abs(ref - want).max() <= 1
    assert np.all(np.diff(want[0][np.argsort(np.arange(-128, 128) - in_zp)].astype(int)) >= 0)


@pytest.mark.integration
@tflm_only
@pytest.mark.parametrize("in_scale,in_zp", INPUT_QUANTS)
def test_silu_and_square_every_int8_input_bit_exact(in_scale, in_zp):
    """MUL of the input with its sigmoid (SiLU) and with itself, all 256 inputs."""
    in_q = TensorQuant(float(np.float32(in_scale)), in_zp)
    x = _all_int8()
    g = GraphBuilder("silu", (1, 16, 16))
    net = g.build([g.silu("input", name="y")])
    for out_scale, out_zp in ((in_scale * 0.7, -60), (in_scale * 3.0, 10)):
        out_q = TensorQuant(float(np.float32(out_scale)), out_zp)
        silu = QNetwork(net, {"input": in_q, "y.sigmoid": LOGISTIC_QUANT, "y": out_q}, {})
        got, want = _tflm_vs_reference(silu, x)
        np.testing.assert_array_equal(got, want)
        sq = _single("square", in_q, TensorQuant(float(np.float32(out_scale * 128 * in_scale)),
                                                 out_zp))
        got, want = _tflm_vs_reference(sq, x)
        np.testing.assert_array_equal(got, want)


def _pairs_network(in_q: TensorQuant, out_q: TensorQuant) -> tuple[QNetwork, np.ndarray]:
    """MUL of two independent tensors covering every pair of int8 values: two 1x2 convs pick
    column j and j + 1 of an input whose even columns hold a row's value and odd ones every
    value, so the product sees all 65,536 (a, b) pairs."""
    g = GraphBuilder("pairs", (1, 256, 513))
    a = g.conv("input", 1, (1, 2), bn=False, bias=True, name="a")
    b = g.conv("input", 1, (1, 2), bn=False, bias=True, name="b")
    net = g.build([g.mul(a, b, name="y")])
    ws = np.array([1 / 127], np.float32)
    params = {"a": QParams(np.array([127, 0], np.int8).reshape(1, 1, 1, 2), ws,
                           np.zeros(1, np.int32)),
              "b": QParams(np.array([0, 127], np.int8).reshape(1, 1, 1, 2), ws,
                           np.zeros(1, np.int32))}
    b_q = TensorQuant(float(np.float32(in_q.scale * 2)), -7)
    qnet = QNetwork(net, {"input": in_q, "a": in_q, "b": b_q, "y": out_q}, params)
    x = np.empty((1, 1, 256, 513), np.int8)
    x[0, 0, :, 0::2] = np.arange(-128, 128, dtype=np.int8)[:, None]
    x[0, 0, :, 1::2] = np.arange(-128, 128, dtype=np.int8)[None, :]
    return qnet, x


@pytest.mark.integration
@tflm_only
@pytest.mark.parametrize("in_scale,out_scale", [(0.05, 0.02), (0.02, 0.9), (0.3, 0.01)])
def test_mul_every_pair_of_int8_inputs_bit_exact(in_scale, out_scale):
    """Output multipliers below and above 1 (a left shift), all 65,536 input pairs."""
    from micronas.deploy.int8 import run_int8
    from micronas.deploy.tflite import build_tflite, tflm_tensors

    f32 = np.float32  # scales as a .tflite stores them
    qnet, x = _pairs_network(TensorQuant(float(f32(in_scale)), 3),
                             TensorQuant(float(f32(out_scale)), -11))
    ref = run_int8(qnet, x)
    pairs = {(int(p), int(q)) for p, q in zip(ref["a"].ravel()[::2], ref["b"].ravel()[::2],
                                               strict=True)}
    assert len(pairs) > 30000  # the product sees most pairs of values
    data, index = build_tflite(qnet)
    got = tflm_tensors(data, index, {k: v.shape for k, v in qnet.net.tensors.items()}, x[0])
    for name in ("a", "b", "y"):
        np.testing.assert_array_equal(got[name], ref[name][0])


@pytest.mark.integration
@tflm_only
def test_mobilenet_block_tflm_equals_int8_reference_on_many_inputs():
    """The traced MobileNetV3-style block (ReLU6, Hardswish, SiLU, a sigmoid gate, depthwise)
    exported to .tflite: TFLM's every tensor equals the int8 reference on 24 inputs."""
    from micronas.deploy.export import parity, prepare
    from micronas.deploy.quantize import gaussian_batch
    from micronas.deploy.tflite import build_tflite
    from micronas.deploy.weights import weights_from_torch

    torch.manual_seed(0)
    model = MobileBlock().eval()
    net, weights = weights_from_torch(model, (3, 32, 32))
    q = prepare(net, seed=1, weights=weights,
                calibration=gaussian_batch(net, 16, 2))
    assert {"hard_swish", "logistic", "mul", "depthwise_conv2d"} <= {la.op for la in q.net.layers}
    data, index = build_tflite(q)
    x_q = q.input_quant.quantize(gaussian_batch(net, 24, 7))
    p = parity(q, data, index, x_q)
    assert p["tflm_equals_int8_model"]
    assert p["layerwise_max_lsb"] <= 1  # each kernel within 1 LSB of float64 on its grid


@pytest.mark.integration
@tflm_only
def test_export_of_a_traced_model_writes_a_checked_tflite(tmp_path):
    """A user's model through the API: trace, export with its own weights; the written file
    runs in TFLM bit-exact with the int8 reference (the export's own check and a re-run)."""
    from micronas.deploy.export import export, prepare
    from micronas.deploy.int8 import run_int8
    from micronas.deploy.quantize import gaussian_batch
    from micronas.deploy.tflite import run_tflm
    from micronas.deploy.weights import weights_from_torch

    model = MobileBlock().eval()
    net, weights = weights_from_torch(model, (3, 32, 32))
    out = tmp_path / "my_model.tflite"
    r = export(net, "tflite", out, seed=0, weights=weights)
    assert r.checks["tflm_equals_int8_model"] and r.weights == "given"
    q = prepare(net, 0, None, weights)  # the export's quantisation, recomputed
    x_q = q.input_quant.quantize(gaussian_batch(net, 6, 11))
    want = run_int8(q, x_q)[q.net.outputs[0]].reshape(6, -1)
    np.testing.assert_array_equal(run_tflm(out.read_bytes(), x_q), want)


# ---------------------------------------------------------------- costs and codegen


@pytest.mark.unit
def test_costs_of_the_new_ops_are_marked_extrapolated():
    from micronas.deploy.trace import trace
    from micronas.hardware.cost import estimate, op_class
    from micronas.hardware.device import load_device

    net = trace(MobileBlock(), (3, 32, 32))
    for runtime in ("tflm-cmsis-nn", "micronas-c", "optimized", "tflm-reference"):
        r = estimate(net, load_device("nrf52840", runtime))
        by = {lc.name: lc for lc in r.layers}
        for la in net.layers:
            if la.op in ("hard_swish", "logistic", "mul"):
                assert op_class(la) == la.op
                assert by[la.name].cycles > load_device("nrf52840", runtime).overhead_cycles
        if runtime in ("tflm-cmsis-nn", "micronas-c"):
            assert "hard_swish, logistic, mul extrapolated" in r.runtime_grounding, runtime


@pytest.mark.unit
@pytest.mark.parametrize("runtime", ["tflm-cmsis-nn", "micronas-c", "optimized"])
@pytest.mark.parametrize("core", ["cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33"])
def test_derived_classes_follow_their_stated_basis(runtime, core):
    """Every runtime's core file holds the derived classes as DERIVED_CLASSES says (the base
    class of the same file times the factor) and marks them extrapolated."""
    from micronas.hardware.cost import DERIVED_CLASSES, derived_latency
    from micronas.hardware.runtime import get_runtime

    tables, _, _, _, extrapolated = get_runtime(runtime).core_file(core)
    want = derived_latency({c: t for c, t in tables.items() if c not in DERIVED_CLASSES})
    assert set(want) == set(DERIVED_CLASSES) and set(DERIVED_CLASSES) <= set(extrapolated)
    for cls, coefs in want.items():
        assert tables[cls] == pytest.approx(coefs, rel=1e-4), (runtime, core, cls)


@pytest.mark.unit
def test_hard_swish_and_logistic_cost_more_than_relu_per_element():
    from micronas.hardware.cost import layer_cycles
    from micronas.hardware.device import load_device

    g = GraphBuilder("e", (16, 8, 8))
    h = g.hard_swish("input", name="h")
    s = g.logistic("input", name="s")
    m = g.mul(h, s, name="m")
    r = g.relu("input", name="r")
    a = g.add(m, r, name="a")
    net = g.build([a])
    layers = {la.name: la for la in net.layers}
    dev = load_device("nrf52840")
    cyc = {k: layer_cycles(net, la, dev) for k, la in layers.items()}
    assert cyc["s"] > cyc["h"] > cyc["r"]


@pytest.mark.unit
def test_runtime_code_counts_the_measured_tflm_kernels():
    from micronas.hardware.cost import runtime_code_bytes
    from micronas.hardware.device import load_device

    dev = load_device("nrf52840")
    g = GraphBuilder("c", (4, 8, 8))
    base = g.conv("input", 4, 1, name="c")
    plain = g.build([base])
    g2 = GraphBuilder("c", (4, 8, 8))
    c = g2.conv("input", 4, 1, name="c")
    with_act = g2.build([g2.silu(g2.hard_swish(c, name="h"), name="s")])
    per_op = {op: marginal for op, _, marginal in dev.runtime.code_per_op}
    extra = runtime_code_bytes(with_act, dev) - runtime_code_bytes(plain, dev)
    assert extra >= per_op["HARD_SWISH"] + per_op["LOGISTIC"] + per_op["MUL"]


@pytest.mark.unit
def test_standalone_c_refuses_with_one_line():
    from micronas.deploy.codegen import generate

    g = GraphBuilder("hs", (1, 16, 16))
    qnet = QNetwork(g.build([g.hard_swish("input", name="y")]),
                    {"input": TensorQuant(0.05, 0), "y": TensorQuant(0.05, 0)}, {})
    with pytest.raises(MicronasError) as e:
        generate(qnet)
    msg = str(e.value)
    assert "\n" not in msg and "layer y" in msg and "main.cc" in msg


ACT_MODEL = '''from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16),
                                  nn.Hardswish())
        self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, 1, 1, groups=16, bias=False),
                                nn.BatchNorm2d(16), nn.ReLU6())
        self.pw = nn.Sequential(nn.Conv2d(16, 24, 1, bias=False), nn.BatchNorm2d(24), nn.SiLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 10))

    def forward(self, x):
        return self.head(self.pw(self.dw(self.stem(x))))


class Gelu(Net):
    def __init__(self):
        super().__init__()
        self.pw[2] = nn.GELU()
'''


@pytest.mark.integration
def test_cli_cost_torch_with_hardswish_and_silu(cli, tmp_path, monkeypatch):
    import json

    (tmp_path / "my_model.py").write_text(ACT_MODEL)
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("cost", "--torch", "my_model.py:Net", "--input", "32x32x3", "--device",
                         "nrf52840", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert {la["op"] for la in d["layers"]} >= {"hard_swish", "logistic", "mul",
                                                "depthwise_conv2d"}
    assert d["macs"] == 16 * 16 * 16 * 27 + 16 * 16 * 16 * 9 + 16 * 16 * 24 * 16 + 240
    assert "hard_swish, logistic, mul extrapolated" in d["runtime_grounding"]
    code, out, err = cli("cost", "--torch", "my_model.py:Net", "--input", "32x32x3", "--device",
                         "nrf52840")
    assert code == 0 and "hard_swish, logistic, mul extrapolated" in out
    code, _, err = cli("cost", "--torch", "my_model.py:Gelu", "--input", "32x32x3")
    assert code == 2 and err.count("\n") == 1, err
    assert "layer pw.2 (GELU)" in err and "Hardswish, SiLU" in err
