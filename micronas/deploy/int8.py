"""The integer semantics of TFLite Micro's int8 reference kernels, in numpy.

:func:`layer_constants` derives, from a :class:`QNetwork`, every integer a kernel needs
(offsets, per-channel multipliers and shifts, activation clamps) exactly as TFLM's ``Prepare``
functions do; the C code generator emits these same integers. :func:`run_int8` executes the
network with them and is bit-exact with the TFLM interpreter (tested), so it is the reference
for the generated C.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from micronas.deploy.fixedpoint import (
    doubling_high_mul16,
    downscale_int32_to_int16_multiplier,
    gemmlowp_logistic,
    multiply_by_quantized_multiplier,
    multiply_smaller_than_one,
    quantize_multiplier,
    rdbpot,
    round_half_away,
    saturating_left_shift16,
    srdhm16,
)
from micronas.deploy.quantize import QNetwork
from micronas.ir import Layer

ROUNDING = "double"  # TFLM's default build (no TFLITE_SINGLE_ROUNDING); checked by the tests


@dataclass(frozen=True)
class LayerConstants:
    """Integer constants of one layer (unused fields are empty)."""

    input_offsets: tuple[int, ...]        # -zero_point of each input
    output_offset: int                    # output zero point
    act_min: int
    act_max: int
    multipliers: tuple[int, ...] = ()     # conv/fc: per channel (fc: one); add: (in1, in2, out)
    shifts: tuple[int, ...] = ()
    left_shift: int = 0                   # add only
    #: logistic only: |input - zero point| at or beyond which the output saturates
    input_range_radius: int = 0


def _quantize_f32(value: float, scale: float, zero_point: int) -> int:
    """TFLM's ``zero_point + round(value / scale)`` in float32, rounding half away from 0."""
    q = np.float32(value) / np.float32(scale)
    return int(zero_point + np.sign(q) * np.floor(np.abs(q) + np.float32(0.5)))


def _act_range(qnet: QNetwork, layer: Layer) -> tuple[int, int]:
    """The output clamp: TFLM's ``CalculateActivationRangeQuantized`` for a fused activation,
    and the same bounds for a standalone RELU / RELU6 (input and output share quantisation)."""
    out = qnet.tensors[layer.output]
    act = layer.op if layer.op in ("relu", "relu6") else layer.activation
    if act == "none":
        return -128, 127
    lo = max(-128, out.zero_point)
    if act == "relu6":
        return lo, min(127, _quantize_f32(6.0, out.scale, out.zero_point))
    return lo, 127


def layer_constants(qnet: QNetwork, layer: Layer) -> LayerConstants:
    tq = qnet.tensors
    out = tq[layer.output]
    offs = tuple(-tq[t].zero_point for t in layer.inputs)
    lo, hi = _act_range(qnet, layer)
    if layer.op in ("conv2d", "depthwise_conv2d", "affine", "fully_connected"):
        s_in = float(tq[layer.inputs[0]].scale)
        ms = [quantize_multiplier(s_in * float(ws) / float(out.scale))
              for ws in qnet.params[layer.name].weight_scale]
        return LayerConstants(offs, out.zero_point, lo, hi, tuple(m for m, _ in ms),
                              tuple(s for _, s in ms))
    if layer.op == "add":
        s1, s2 = float(tq[layer.inputs[0]].scale), float(tq[layer.inputs[1]].scale)
        left = 20
        twice_max = 2 * max(s1, s2)
        m1, sh1 = quantize_multiplier(s1 / twice_max)
        m2, sh2 = quantize_multiplier(s2 / twice_max)
        mo, sho = quantize_multiplier(twice_max / ((1 << left) * float(out.scale)))
        return LayerConstants(offs, out.zero_point, lo, hi, (m1, m2, mo), (sh1, sh2, sho), left)
    if op_consts := _elementwise_constants(qnet, layer, offs, lo, hi):
        return op_consts
    return LayerConstants(offs, out.zero_point, lo, hi)


#: integer bits of the fixed-point input of TFLite's int8 LOGISTIC (Q4.27)
LOGISTIC_INPUT_INTEGER_BITS = 4


def _elementwise_constants(qnet: QNetwork, layer: Layer, offs: tuple[int, ...], lo: int,
                           hi: int) -> LayerConstants | None:
    """Constants of HARD_SWISH, LOGISTIC and MUL as TFLM's Prepare computes them; None for
    other ops.

    - hard_swish: ``multipliers`` = (output, reluish) int16 fixed-point multipliers,
      ``shifts`` = their exponents (``HardSwishPrepare``: float32 scale ratios, then
      ``QuantizeMultiplier`` and ``DownScaleInt32ToInt16Multiplier``).
    - logistic: the input multiplier and left shift onto Q4.27 and the input range radius.
    - mul: the output multiplier and shift of ``s1 * s2 / s_out``.
    """
    tq = qnet.tensors
    out = tq[layer.output]
    if layer.op == "hard_swish":
        f32 = np.float32
        hires = f32(1.0 / 128.0) * f32(tq[layer.inputs[0]].scale)
        reluish_scale = f32(3.0) / f32(32768.0)
        mo, so = quantize_multiplier(float(hires / f32(out.scale)))
        mr, sr = quantize_multiplier(float(hires / reluish_scale))
        return LayerConstants(offs, out.zero_point, lo, hi,
                              (downscale_int32_to_int16_multiplier(mo),
                               downscale_int32_to_int16_multiplier(mr)), (so, sr))
    if layer.op == "logistic":
        real = float(tq[layer.inputs[0]].scale) * float(1 << (31 - LOGISTIC_INPUT_INTEGER_BITS))
        q, left = math.frexp(real)
        m = round_half_away(q * (1 << 31))
        radius = math.floor(((1 << LOGISTIC_INPUT_INTEGER_BITS) - 1)
                            * float(1 << (31 - LOGISTIC_INPUT_INTEGER_BITS)) / float(1 << left))
        return LayerConstants(offs, out.zero_point, -128, 127, (m,), (left,),
                              input_range_radius=radius)
    if layer.op == "mul":
        s1, s2 = float(tq[layer.inputs[0]].scale), float(tq[layer.inputs[1]].scale)
        m, sh = quantize_multiplier(s1 * s2 / float(out.scale))
        return LayerConstants(offs, out.zero_point, lo, hi, (m,), (sh,))
    return None


def hard_swish_int8(x: np.ndarray, k: LayerConstants) -> np.ndarray:
    """TFLite's int8 ``reference_ops::HardSwish`` (int16 fixed point) on int8 values; returns
    the int8 outputs (as int64)."""
    out_m, relu_m = k.multipliers
    out_exp, relu_exp = k.shifts
    hires = (x.astype(np.int64) + k.input_offsets[0]) * (1 << 7)   # |.| <= 255 * 128: int16
    preshift_output = srdhm16(hires, out_m)
    reluish = hires
    if relu_exp > 0:
        reluish = saturating_left_shift16(reluish, relu_exp - 1)
    reluish = srdhm16(reluish, relu_m)
    if relu_exp > 0:
        reluish = saturating_left_shift16(reluish, 1)
    if relu_exp < 0:
        reluish = rdbpot(reluish, -relu_exp)
    reluish = (reluish + (1 << 15)) >> 1                            # [-1, 1] -> [0, 1]
    y = rdbpot(doubling_high_mul16(reluish, preshift_output), -out_exp)
    y = ((y + k.output_offset + (1 << 15)) & 0xFFFF) - (1 << 15)     # int16 wrap, as the C
    return np.clip(y, -128, 127)


def logistic_table(k: LayerConstants, rounding: str = ROUNDING) -> np.ndarray:
    """TFLite's int8 ``reference_integer_ops::Logistic`` for every int8 input -128..127 (index
    ``q + 128``): gemmlowp's fixed-point logistic on the Q4.27 input, to int8 at scale 1/256,
    zero point -128."""
    x = np.arange(-128, 128, dtype=np.int64) + k.input_offsets[0]
    q4 = multiply_by_quantized_multiplier(x, k.multipliers[0], k.shifts[0], rounding)
    q0 = gemmlowp_logistic(q4, LOGISTIC_INPUT_INTEGER_BITS)
    y = np.clip(rdbpot(q0, 31 - 8) - 128, -128, 127)
    r = k.input_range_radius
    return np.where(x <= -r, -128, np.where(x >= r, 127, y))


def _windows(x: np.ndarray, layer: Layer, pad_value: int | None) -> np.ndarray:
    """(B, C, Ho, Wo, kh, kw) windows; padding filled with ``pad_value`` (None: NaN marks)."""
    ph, pw = layer.padding
    kh, kw = layer.kernel
    sh, sw = layer.stride
    fill = np.nan if pad_value is None else pad_value
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    return win


def _round_div(acc: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    """TFLM's average rounding: (acc +- n/2) / n with C truncation toward zero."""
    acc = acc.astype(np.int64)
    n = np.asarray(n, dtype=np.int64)
    half = n // 2
    return np.where(acc > 0, (acc + half) // n, -((-acc + half) // n))


def resize_axis(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TFLM's ``ComputeInterpolationValuesInteger`` along one axis (half-pixel centres, no
    corner alignment) for every output position: the source position in 1/1024 pixels, and
    the lower and upper source indices."""
    scale_10 = ((1 << 10) * size_in + size_out // 2) // size_out
    v = np.arange(size_out, dtype=np.int64) * scale_10 + scale_10 // 2 - (1 << 9)
    lower = np.maximum(np.trunc(v / (1 << 10)).astype(np.int64), 0)  # C truncation, then >= 0
    upper = np.minimum((v + (1 << 10) - 1) // (1 << 10), size_in - 1)
    return v, lower, upper


def resize_bilinear(x: np.ndarray, size: tuple[int, int], rounding: str = ROUNDING) -> np.ndarray:
    """TFLM's ``ResizeBilinearInteger`` (half_pixel_centers, no align_corners) on int8 values
    ``x`` (B, C, H, W) to ``size`` (height, width): weights in 1/1024 pixels, the four products
    summed in int64 and rounded by 2**20 (half away from zero in TFLM's default build, half up
    with single rounding). Input and output share quantisation."""
    (oh, ow), (ih, iw) = size, x.shape[2:]
    vy, y0, y1 = resize_axis(ih, oh)
    vx, x0, x1 = resize_axis(iw, ow)
    one = 1 << 10
    dy = (vy - one * y0)[:, None]   # (oh, 1): weight of the lower row is one - dy
    dx = (vx - one * x0)[None, :]   # (1, ow)
    xi = x.astype(np.int64)
    acc = (xi[:, :, y0][:, :, :, x0] * (one - dy) * (one - dx)
           + xi[:, :, y1][:, :, :, x0] * dy * (one - dx)
           + xi[:, :, y0][:, :, :, x1] * (one - dy) * dx
           + xi[:, :, y1][:, :, :, x1] * dy * dx)
    half = 1 << 19
    if rounding == "single":
        return (acc + half) >> 20
    r = acc + np.where(acc > 0, half, -half)
    return np.where(r >= 0, r >> 20, -((-r) >> 20))  # C division: truncation toward zero


def run_layer(qnet: QNetwork, layer: Layer, xs: list[np.ndarray], rounding: str = ROUNDING,
              ) -> np.ndarray:
    """One layer on int8 inputs (batch first); returns the int8 output."""
    k = layer_constants(qnet, layer)
    op = layer.op
    out_shape = qnet.net.tensors[layer.output].shape
    if op in ("conv2d", "depthwise_conv2d", "affine"):
        qp = qnet.params[layer.name]
        x = xs[0].astype(np.int64) + k.input_offsets[0]
        if op == "affine":
            acc = x * qp.weight.reshape(1, -1, 1, 1).astype(np.int64)
        else:
            win = _windows(x, layer, 0)
            w = qp.weight.astype(np.float64)
            if op == "depthwise_conv2d":
                acc = np.einsum("bchwij,cij->bchw", win, w[:, 0])
            else:
                acc = np.einsum("bchwij,ocij->bohw", win, w, optimize=True)
            acc = np.rint(acc).astype(np.int64)  # exact: |acc| < 2**53
        acc = acc + qp.bias.astype(np.int64).reshape(1, -1, 1, 1)
        m = np.asarray(k.multipliers).reshape(1, -1, 1, 1)
        sh = np.asarray(k.shifts).reshape(1, -1, 1, 1)
        y = multiply_by_quantized_multiplier(acc, m, sh, rounding) + k.output_offset
    elif op == "fully_connected":
        qp = qnet.params[layer.name]
        x = xs[0].reshape(xs[0].shape[0], -1).astype(np.int64) + k.input_offsets[0]
        acc = x @ qp.weight.astype(np.int64).T + qp.bias.astype(np.int64)
        y = multiply_by_quantized_multiplier(acc, k.multipliers[0], k.shifts[0], rounding) + k.output_offset
    elif op in ("avgpool2d", "maxpool2d"):
        win = _windows(xs[0], layer, None)
        valid = ~np.isnan(win)
        if op == "maxpool2d":
            y = np.nanmax(win, axis=(4, 5)).astype(np.int64)
        else:
            acc = np.nansum(win, axis=(4, 5)).astype(np.int64)
            y = _round_div(acc, valid.sum(axis=(4, 5)))
    elif op == "global_avgpool":
        x = xs[0].astype(np.int64)
        y = _round_div(x.sum(axis=(2, 3)), x.shape[2] * x.shape[3])
    elif op == "add":
        a = (xs[0].astype(np.int64) + k.input_offsets[0]) * (1 << k.left_shift)
        b = (xs[1].astype(np.int64) + k.input_offsets[1]) * (1 << k.left_shift)
        sa = multiply_smaller_than_one(a, k.multipliers[0], k.shifts[0], rounding)
        sb = multiply_smaller_than_one(b, k.multipliers[1], k.shifts[1], rounding)
        y = multiply_smaller_than_one(sa + sb, k.multipliers[2], k.shifts[2], rounding) + k.output_offset
    elif op in ("relu", "relu6"):
        y = xs[0].astype(np.int64)
    elif op == "hard_swish":
        y = hard_swish_int8(xs[0], k)
    elif op == "logistic":
        y = logistic_table(k, rounding)[xs[0].astype(np.int64) + 128]
    elif op == "mul":
        prod = ((xs[0].astype(np.int64) + k.input_offsets[0])
                * (xs[1].astype(np.int64) + k.input_offsets[1]))
        y = multiply_by_quantized_multiplier(prod, k.multipliers[0], k.shifts[0], rounding) \
            + k.output_offset
    elif op == "concat":  # inputs and output share quantisation: a copy
        y = np.concatenate([x.astype(np.int64) for x in xs], axis=1)
    elif op == "pad":
        ph, pw = layer.padding
        _, h, w = out_shape
        x = xs[0]
        zp = -k.input_offsets[0]
        y = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (ph, h - x.shape[2] - ph),
                                        (pw, w - x.shape[3] - pw)), constant_values=zp)
    elif op == "resize_bilinear":
        y = resize_bilinear(xs[0], out_shape[1:], rounding)
    else:
        raise ValueError(f"op {op} is not supported by the int8 model")
    return np.clip(y, k.act_min, k.act_max).astype(np.int8)


def run_int8(qnet: QNetwork, x_q: np.ndarray, rounding: str = ROUNDING) -> dict[str, np.ndarray]:
    """Every tensor (int8, batch first) for the int8 input batch ``x_q``."""
    vals = {qnet.net.inputs[0]: np.asarray(x_q, dtype=np.int8)}
    for layer in qnet.net.layers:
        vals[layer.output] = run_layer(qnet, layer, [vals[t] for t in layer.inputs], rounding)
    return vals
