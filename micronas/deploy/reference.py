"""PyTorch references for an IR network with weights: float64, and fake-quantised.

``run_float`` gives the calibration activations. ``run_fake_quant`` is the independent
reference the int8 paths (TFLM, the numpy integer model, generated C) are checked against:
float64 arithmetic on dequantised weights and activations, with each layer's output rounded
to its int8 grid (round half to even, clamp). It shares no integer arithmetic with them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from micronas.deploy.quantize import FloatParams, QNetwork
from micronas.ir import Layer, Network


def _layer(layer: Layer, net: Network, xs: list[torch.Tensor], w: torch.Tensor | None,
           b: torch.Tensor | None) -> torch.Tensor:
    op = layer.op
    x = xs[0] if xs else None
    if op in ("conv2d", "depthwise_conv2d"):
        y = F.conv2d(x, w, b, layer.stride, layer.padding, groups=layer.groups)
    elif op == "affine":
        y = x * w.reshape(1, -1, 1, 1)
        if b is not None:
            y = y + b.reshape(1, -1, 1, 1)
    elif op == "fully_connected":
        y = F.linear(x.flatten(1), w, b)
    elif op == "avgpool2d":
        y = F.avg_pool2d(x, layer.kernel, layer.stride, layer.padding, count_include_pad=False)
    elif op == "maxpool2d":
        y = F.max_pool2d(x, layer.kernel, layer.stride, layer.padding)
    elif op == "global_avgpool":
        y = x.mean(dim=(2, 3))
    elif op == "add":
        y = xs[0] + xs[1]
    elif op == "concat":
        y = torch.cat(xs, dim=1)
    elif op == "relu":
        y = torch.relu(x)
    elif op == "relu6":
        y = torch.clamp(x, 0.0, 6.0)
    elif op == "hard_swish":
        y = F.hardswish(x)
    elif op == "logistic":
        y = torch.sigmoid(x)
    elif op == "mul":
        y = xs[0] * xs[1]
    elif op == "pad":
        ph, pw = layer.padding
        _, h, w_ = net.tensors[layer.output].shape
        _, hin, win = net.tensors[layer.inputs[0]].shape
        y = F.pad(x, (pw, w_ - win - pw, ph, h - hin - ph))
    elif op == "resize_bilinear":
        y = F.interpolate(x, size=net.tensors[layer.output].shape[1:], mode="bilinear",
                          align_corners=False)
    else:
        raise ValueError(f"op {op} has no reference")
    if layer.activation == "relu6":
        return torch.clamp(y, 0.0, 6.0)
    return torch.relu(y) if layer.activation == "relu" else y


def _run(net: Network, x: torch.Tensor,
         params: Callable[[Layer], tuple[torch.Tensor | None, torch.Tensor | None]],
         post: Callable[[str, torch.Tensor], torch.Tensor]) -> dict[str, torch.Tensor]:
    vals = {net.inputs[0]: post(net.inputs[0], x)}
    for layer in net.layers:
        w, b = params(layer)
        y = _layer(layer, net, [vals[t] for t in layer.inputs], w, b)
        vals[layer.output] = post(layer.output, y)
    return vals


def run_float(net: Network, weights: dict[str, FloatParams], x: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of ``net`` (float64, batch first) for the float input batch ``x``."""
    def params(layer: Layer) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        fp = weights.get(layer.name)
        if fp is None:
            return None, None
        b = None if fp.bias is None else torch.as_tensor(fp.bias, dtype=torch.float64)
        return torch.as_tensor(fp.weight, dtype=torch.float64), b

    with torch.no_grad():
        vals = _run(net, torch.as_tensor(x, dtype=torch.float64), params, lambda _n, v: v)
    return {k: v.numpy() for k, v in vals.items()}


def run_fake_quant(qnet: QNetwork, x_q: np.ndarray,
                   given: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every tensor as int8 values, from the fake-quantised float64 reference (input int8).

    With ``given`` (int8 tensors, e.g. TFLM's own), each layer reads its inputs from ``given``
    instead of from this reference: a layer-by-layer comparison that does not accumulate the
    ~1 LSB rounding differences of earlier layers."""
    net = qnet.net

    def params(layer: Layer) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        qp = qnet.params.get(layer.name)
        if qp is None:
            return None, None
        scale = torch.as_tensor(qp.weight_scale.astype(np.float64))
        w = torch.as_tensor(qp.weight.astype(np.float64))
        w = w * scale.reshape(-1, *([1] * (w.ndim - 1)))
        s_in = float(qnet.tensors[layer.inputs[0]].scale)
        b = torch.as_tensor(qp.bias.astype(np.float64)) * s_in * scale
        if layer.op == "affine":
            w = w.reshape(-1)
        return w, b

    def deq(name: str, q: np.ndarray | torch.Tensor) -> torch.Tensor:
        tq = qnet.tensors[name]
        return (torch.as_tensor(np.asarray(q, dtype=np.float64)) - tq.zero_point) * tq.scale

    def post(name: str, v: torch.Tensor) -> torch.Tensor:
        tq = qnet.tensors[name]
        return torch.clamp(torch.round(v / tq.scale) + tq.zero_point, -128, 127)

    vals = {net.inputs[0]: torch.as_tensor(x_q.astype(np.float64))}
    with torch.no_grad():
        for layer in net.layers:
            src = given if given is not None else vals
            xs = [deq(t, src[t]) for t in layer.inputs]
            w, b = params(layer)
            vals[layer.output] = post(layer.output, _layer(layer, net, xs, w, b))
    return {k: v.numpy().astype(np.int8) for k, v in vals.items()}


class IRModule(torch.nn.Module):
    """The float network (IR + weights, BatchNorm folded) as a torch module (float32), for
    ONNX export; it runs the same layer code as :func:`run_float`."""

    def __init__(self, net: Network, weights: dict[str, FloatParams]):
        super().__init__()
        self.net = net
        self._names: dict[str, str] = {}
        for i, (name, fp) in enumerate(weights.items()):
            key = f"p{i}"
            self._names[name] = key
            self.register_buffer(f"{key}_w", torch.as_tensor(np.asarray(fp.weight), dtype=torch.float32))
            self.register_buffer(f"{key}_b", None if fp.bias is None
                                 else torch.as_tensor(fp.bias, dtype=torch.float32))

    def _params(self, layer: Layer) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        key = self._names.get(layer.name)
        if key is None:
            return None, None
        return getattr(self, f"{key}_w"), getattr(self, f"{key}_b")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vals = _run(self.net, x, self._params, lambda _n, v: v)
        return vals[self.net.outputs[0]]
