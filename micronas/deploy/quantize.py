"""Post-training int8 quantisation of an IR network in TFLite's scheme.

- Weights: symmetric int8 in [-127, 127]; per output channel for convolutions (depthwise and
  the 1x1 depthwise an ``affine`` layer becomes), per tensor for fully connected layers.
- Activations: per-tensor asymmetric int8 from the min/max of a calibration batch (the range
  always includes 0, so 0.0 is exact).
- Biases: int32 with scale ``input_scale * weight_scale`` and zero point 0.
- A concatenation's inputs and output share one quantisation (TFLM's int8 CONCATENATION
  copies bytes): the range over all of them, passed up through the layers that keep their
  input's quantisation.
- Pools, ``pad``, a standalone ReLU / ReLU6 and the global average pool keep their input's
  quantisation (TFLite requires it of the pools; for ReLU it makes the op exact, ``max(x, zp)``).
- A ``logistic`` (sigmoid) output has TFLite's fixed int8 quantisation, scale 1/256 and zero
  point -128 (TFLM's LOGISTIC requires it); ``hard_swish`` and ``mul`` outputs are
  calibrated like other layers.
- Scales are float32 values, as stored in a .tflite file; every multiplier derived from them
  (:mod:`micronas.deploy.int8`) uses those float32 values in double precision, as TFLM does.

Float weights come from :func:`random_weights` (seeded stand-ins for trained weights, so an
architecture can be exported and measured before it is trained) or from a torch model
(:func:`micronas.deploy.weights.weights_from_torch`, BatchNorm folded).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from micronas.errors import MicronasError
from micronas.ir import Layer, Network

WEIGHTED = ("conv2d", "depthwise_conv2d", "fully_connected", "affine")
SAME_QUANT = ("avgpool2d", "maxpool2d", "global_avgpool", "relu", "relu6", "pad",
              "resize_bilinear")
ELEMENTWISE = ("hard_swish", "logistic", "mul")
SUPPORTED = WEIGHTED + SAME_QUANT + ("add", "concat") + ELEMENTWISE


@dataclass(frozen=True)
class FloatParams:
    """Float weights of one layer: conv ``(O, I/groups, kh, kw)``, fully connected ``(O, I)``,
    affine ``(C,)`` scale; ``bias`` ``(O,)`` or None."""

    weight: np.ndarray
    bias: np.ndarray | None = None


@dataclass(frozen=True)
class TensorQuant:
    scale: float       # a float32 value
    zero_point: int

    def quantize(self, x: np.ndarray) -> np.ndarray:
        q = np.round(np.asarray(x, dtype=np.float64) / self.scale) + self.zero_point
        return np.clip(q, -128, 127).astype(np.int8)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (np.asarray(q, dtype=np.float64) - self.zero_point) * self.scale


@dataclass(frozen=True)
class QParams:
    """int8 weights (shaped as the float ones; affine as a 1x1 depthwise ``(C, 1, 1, 1)``),
    float32 weight scales (per output channel, or one), int32 bias."""

    weight: np.ndarray
    weight_scale: np.ndarray
    bias: np.ndarray


@dataclass
class QNetwork:
    """A quantised network: the TFLM-lowered IR, activation quantisation and int8 params."""

    net: Network
    tensors: dict[str, TensorQuant]
    params: dict[str, QParams]
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def input_quant(self) -> TensorQuant:
        return self.tensors[self.net.inputs[0]]

    @property
    def output_quant(self) -> TensorQuant:
        return self.tensors[self.net.outputs[0]]


#: TFLite's fixed output quantisation of an int8 LOGISTIC: [0, 1) on 256 steps.
LOGISTIC_QUANT = TensorQuant(float(np.float32(1.0 / 256.0)), -128)


def check_exportable(net: Network) -> None:
    """Raise a one-line MicronasError naming the first layer int8 export cannot handle."""
    for layer in net.layers:
        if layer.op == "zeros":
            raise MicronasError(f"layer {layer.name}: a constant-zero node (no path from the "
                                "input reaches it); such a network cannot be exported")
        if layer.op not in SUPPORTED:
            raise MicronasError(f"layer {layer.name}: op {layer.op!r} is not supported by the "
                                f"int8 exporter (supported: {', '.join(SUPPORTED)})")
        if layer.op == "conv2d" and layer.groups != 1:
            raise MicronasError(f"layer {layer.name}: grouped convolution (groups={layer.groups}) "
                                "is not supported by the int8 exporter")
    if len(net.inputs) != 1 or len(net.outputs) != 1:
        raise MicronasError("int8 export needs exactly one input and one output tensor")


def weight_shape(net: Network, layer: Layer) -> tuple[int, ...]:
    cin = net.tensors[layer.inputs[0]].shape[0] if layer.inputs else 0
    cout = net.tensors[layer.output].shape[0]
    if layer.op == "fully_connected":
        return (cout, net.tensors[layer.inputs[0]].numel)
    if layer.op == "affine":
        return (cout,)
    return (cout, cin // layer.groups, *layer.kernel)


def random_weights(net: Network, seed: int) -> dict[str, FloatParams]:
    """Seeded stand-in weights for every weighted layer of ``net``.

    Convolutions Kaiming-normal (fan-in); fully connected N(0, 1/fan_in); biases (folded
    BatchNorm shifts) N(0, 0.1); affine scales 1 + N(0, 0.1). Not trained, but with the
    ranges of a trained network's layers, which is what quantisation and cost depend on."""
    rng = np.random.default_rng(seed)
    out: dict[str, FloatParams] = {}
    for layer in net.layers:
        if layer.op not in WEIGHTED:
            continue
        shape = weight_shape(net, layer)
        cout = shape[0]
        if layer.op == "affine":
            w = 1.0 + 0.1 * rng.standard_normal(shape)
        elif layer.op == "fully_connected":
            w = rng.standard_normal(shape) / np.sqrt(shape[1])
        else:
            w = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
        b = 0.1 * rng.standard_normal(cout) if layer.bias_params else None
        out[layer.name] = FloatParams(w, b)
    return out


def _f32(x: float) -> float:
    return float(np.float32(x))


def activation_quant(lo: float, hi: float) -> TensorQuant:
    """Asymmetric int8 quantisation of the range [lo, hi] widened to include 0."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-12:
        hi = lo + 1e-6
    scale = _f32((hi - lo) / 255.0)
    zp = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return TensorQuant(scale, zp)


def _weight_scales(w: np.ndarray, per_channel: bool) -> np.ndarray:
    amax = np.abs(w).reshape(w.shape[0], -1).max(axis=1) if per_channel else np.array([np.abs(w).max()])
    return np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)


def _shared_quant(net: Network, acts: dict[str, np.ndarray]) -> dict[str, TensorQuant]:
    """One quantisation per group of tensors that must share it: a concatenation's inputs and
    output, joined through the layers that keep their input's quantisation. Tensors outside
    every concatenation's group are not listed."""
    parent: dict[str, str] = {}

    def find(t: str) -> str:
        while parent.get(t, t) != t:
            t = parent[t]
        return t

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb

    concat = [la for la in net.layers if la.op == "concat"]
    if not concat:
        return {}
    for layer in net.layers:
        if layer.op in SAME_QUANT or layer.op == "concat":
            for t in layer.inputs:
                union(t, layer.output)
    fixed = {la.output for la in net.layers if la.op == "logistic"}
    groups: dict[str, list[str]] = {}
    for t in net.tensors:
        groups.setdefault(find(t), []).append(t)
    out: dict[str, TensorQuant] = {}
    for la in concat:
        members = groups[find(la.output)]
        if members[0] in out:
            continue
        lo = min(float(acts[t].min()) for t in members)
        hi = max(float(acts[t].max()) for t in members)
        q = LOGISTIC_QUANT if fixed & set(members) else activation_quant(lo, hi)
        out.update(dict.fromkeys(members, q))
    return out


def quantize_layers(net: Network, weights: dict[str, FloatParams],
                    acts: dict[str, np.ndarray], calibration_batch: int,
                    input_quant: TensorQuant | None = None) -> QNetwork:
    """Quantise the lowered network ``net`` with activation ranges from ``acts`` (the float
    activations of a calibration batch, by tensor name: :func:`micronas.deploy.export.
    quantize_network` computes them)."""
    tq: dict[str, TensorQuant] = {}
    inp = net.inputs[0]
    shared = _shared_quant(net, acts)
    tq[inp] = shared.get(inp) or input_quant or activation_quant(acts[inp].min(), acts[inp].max())
    params: dict[str, QParams] = {}
    for layer in net.layers:
        if layer.output in shared:
            tq[layer.output] = shared[layer.output]
        elif layer.op in SAME_QUANT:
            tq[layer.output] = tq[layer.inputs[0]]
        elif layer.op == "logistic":
            tq[layer.output] = LOGISTIC_QUANT
        else:
            a = acts[layer.output]
            tq[layer.output] = activation_quant(a.min(), a.max())
        if layer.op in WEIGHTED:
            fp = weights[layer.name]
            w = np.asarray(fp.weight, dtype=np.float64)
            if layer.op == "affine":
                w = w.reshape(-1, 1, 1, 1)
            if w.shape[1:] != weight_shape(net, layer)[1:] and layer.op != "affine":
                raise MicronasError(f"layer {layer.name}: weights of shape {w.shape}, expected "
                                    f"{weight_shape(net, layer)}")
            ws = _weight_scales(w, per_channel=layer.op != "fully_connected")
            wsb = ws.astype(np.float64).reshape(-1, *([1] * (w.ndim - 1)))
            wq = np.clip(np.round(w / wsb), -127, 127).astype(np.int8)
            s_in = float(tq[layer.inputs[0]].scale)
            b = np.zeros(w.shape[0]) if fp.bias is None else np.asarray(fp.bias, dtype=np.float64)
            bq = np.round(b / (s_in * ws.astype(np.float64))).astype(np.int64)
            bq = np.clip(bq, -(2**31), 2**31 - 1).astype(np.int32)
            params[layer.name] = QParams(wq, ws, bq)
    return QNetwork(net, tq, params, {"calibration_batch": int(calibration_batch)})


def gaussian_batch(net: Network, batch: int, seed: int) -> np.ndarray:
    """A seeded N(0, 1) batch shaped like the network input (the calibration default)."""
    shape = net.tensors[net.inputs[0]].shape
    return np.random.default_rng(seed).standard_normal((batch, *shape))
