"""A trained torch model's weights in the IR: :func:`weights_from_torch`.

The model is traced (:func:`micronas.deploy.trace.trace`), so the network deployed is exactly the
one trained. Each BatchNorm that follows a convolution is folded into it, in float64::

    s = gamma / sqrt(running_var + eps)
    w' = w * s (per output channel),  b' = beta + (b - running_mean) * s

A standalone BatchNorm becomes an ``affine`` layer with scale ``s`` and shift
``beta - running_mean * s``. The folded network computes what the model computes in
``eval()`` mode (float rounding aside: :func:`micronas.deploy.reference.run_float` matches
it to about 1e-5, a test).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import nn

from micronas.deploy.quantize import WEIGHTED, FloatParams
from micronas.errors import MicronasError
from micronas.ir import Network


def _np(t) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _bn_scale_shift(bn: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(bn, nn.BatchNorm1d | nn.BatchNorm2d) or bn.running_var is None:
        raise MicronasError(f"{type(bn).__name__}: BatchNorm without running statistics cannot "
                            "be folded (build it with track_running_stats=True)")
    var, mean = _np(bn.running_var), _np(bn.running_mean)
    gamma = _np(bn.weight) if bn.weight is not None else np.ones_like(var)
    beta = _np(bn.bias) if bn.bias is not None else np.zeros_like(var)
    s = gamma / np.sqrt(var + bn.eps)
    return s, beta - mean * s


def weights_from_torch(model: nn.Module, input_shape: Sequence[int], name: str | None = None,
                       ) -> tuple[Network, dict[str, FloatParams]]:
    """The IR of ``model`` (traced for one input of ``input_shape``, channels first, no batch)
    and its float weights with every BatchNorm folded; ready for
    :func:`micronas.deploy.export.quantize_network`."""
    from micronas.deploy.trace import trace

    net = trace(model, input_shape, name)
    sources = net.meta.get("sources", {})
    out: dict[str, FloatParams] = {}
    for layer in net.layers:
        if layer.op not in WEIGHTED:
            continue
        if layer.name not in sources:
            raise MicronasError(f"layer {layer.name}: the tracer recorded no module for it")
        src, bn_name = sources[layer.name]  # type: ignore[misc]
        if layer.op == "affine":
            scale, shift = _bn_scale_shift(model.get_submodule(bn_name))
            out[layer.name] = FloatParams(scale, shift)
            continue
        m = model.get_submodule(src)
        w = _np(m.weight)
        if isinstance(m, nn.Conv1d):
            w = w[:, :, None, :]     # (O, I, K) -> (O, I, 1, K): a 1 x K convolution
        b = _np(m.bias) if getattr(m, "bias", None) is not None else None
        if bn_name is not None:
            s, shift = _bn_scale_shift(model.get_submodule(bn_name))
            w = w * s.reshape(-1, *([1] * (w.ndim - 1)))
            b = shift + (b * s if b is not None else 0.0)
        if not np.isfinite(w).all() or (b is not None and not np.isfinite(b).all()):
            raise MicronasError(f"layer {layer.name} ({src}): weights hold NaN or infinity; "
                                "the model diverged in training")
        out[layer.name] = FloatParams(w, b)
    return net, out


__all__ = ["weights_from_torch"]
