"""Channels-first (the IR, PyTorch) <-> channels-last (TFLite, the generated C) conversions,
shared by the .tflite writer, the code generator and the emulator."""

from __future__ import annotations

import numpy as np

from micronas.ir import Layer, Network


def to_hwc(x: np.ndarray) -> np.ndarray:
    """One activation (C, H, W) as contiguous (H, W, C); a vector is unchanged."""
    return np.ascontiguousarray(x.transpose(1, 2, 0)) if x.ndim == 3 else x


def from_hwc(flat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Flat channels-last values of a tensor of IR ``shape`` as channels-first."""
    if len(shape) == 3:
        c, h, w = shape
        return flat.reshape(h, w, c).transpose(2, 0, 1)
    return flat.reshape(shape)


def conv_weight(w: np.ndarray) -> np.ndarray:
    """(O, I, kh, kw) -> OHWI."""
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1))


def depthwise_weight(w: np.ndarray) -> np.ndarray:
    """(C, 1, kh, kw) -> (kh, kw, C)."""
    return np.ascontiguousarray(w[:, 0].transpose(1, 2, 0))


def fc_weight(net: Network, layer: Layer, w: np.ndarray) -> np.ndarray:
    """(O, I) with I in PyTorch's CHW flatten order -> columns in HWC order when the input
    is a spatial map (a vector input needs nothing)."""
    shape = net.tensors[layer.inputs[0]].shape
    if len(shape) == 3 and shape[1] * shape[2] > 1:
        c, h, w_ = shape
        w = w.reshape(-1, c, h, w_).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
    return np.ascontiguousarray(w)
