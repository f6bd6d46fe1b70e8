"""TFLite's int8 fixed-point arithmetic, vectorised over numpy int64 arrays.

These are the integer helpers TFLite Micro's reference kernels use (``QuantizeMultiplier``,
gemmlowp's ``SaturatingRoundingDoublingHighMul`` and ``RoundingDivideByPOT``), written so the
numpy reference, the generated C and the TFLM interpreter agree bit for bit. ``rounding``
selects TFLite's default double rounding or the ``TFLITE_SINGLE_ROUNDING`` build variant.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def round_half_away(x: float) -> int:
    """C's ``std::round``: halves round away from zero."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(multiplier, shift) with ``real ~= multiplier * 2**(shift - 31)``, multiplier in [2^30, 2^31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def srdhm(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values held in int64."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    # C integer division truncates toward zero.
    out = np.where(s >= 0, s >> 31, -((-s) >> 31))
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, INT32_MAX, out)


def rdbpot(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2**exponent, rounding half away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray | int,
                                     shift: np.ndarray | int, rounding: str = "double") -> np.ndarray:
    """TFLite ``MultiplyByQuantizedMultiplier`` (x int32 accumulators, per-channel or scalar)."""
    x = np.asarray(x, dtype=np.int64)
    m = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if rounding == "single":
        total = 31 - shift
        return (x * m + (np.int64(1) << (total - 1))) >> total
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = x * (np.int64(1) << left)
    return rdbpot(srdhm(shifted, m), right)


def multiply_smaller_than_one(x: np.ndarray, multiplier: int, shift: int,
                              rounding: str = "double") -> np.ndarray:
    """TFLite ``MultiplyByQuantizedMultiplierSmallerThanOneExp`` (shift <= 0)."""
    if rounding == "single":
        return multiply_by_quantized_multiplier(x, multiplier, shift, rounding)
    return rdbpot(srdhm(x, multiplier), -shift)
