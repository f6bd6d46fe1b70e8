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


def wrap32(x: np.ndarray) -> np.ndarray:
    """int32 two's-complement wrap-around of int64 values (C's int32 addition)."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def saturating_shift_left(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingMultiplyByPOT<exponent>`` with ``exponent > 0`` on int32:
    ``x * 2**exponent``, saturating at the int32 limits."""
    x = np.asarray(x, dtype=np.int64)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX,
                    np.where(x < -threshold, INT32_MIN, x << exponent))


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    """gemmlowp: exp(a) for a Q0.31 ``a`` in [-1/4, 0), as Q0.31."""
    x = wrap32(a + (1 << 28))                       # a + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    poly = rdbpot(wrap32(srdhm(wrap32(x4_over_4 + x3), 715827883) + x2), 1)  # 1/3
    constant_term = 1895147668                       # exp(-1/8)
    return wrap32(constant_term + srdhm(constant_term, wrap32(x + poly)))


def _exp_on_negative_values(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp ``exp_on_negative_values`` of a Q``integer_bits`` value ``a`` <= 0, as Q0.31."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = wrap32((a & (one_quarter - 1)) - one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_shift_left(a_mod_quarter_minus_one_quarter, integer_bits)
        if integer_bits else a_mod_quarter_minus_one_quarter)
    remainder = wrap32(a_mod_quarter_minus_one_quarter - a)
    # exp(-2**e) in Q0.31, for the barrel shifter's exponents e
    for exponent, multiplier in ((-2, 1672461947), (-1, 1302514674), (0, 790015084),
                                 (1, 290630308), (2, 39332535), (3, 720401), (4, 242)):
        if integer_bits > exponent:
            bit = (remainder >> (fractional_bits + exponent)) & 1
            result = np.where(bit != 0, srdhm(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))          # -32.0
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """gemmlowp: 1 / (1 + a) for a Q0.31 ``a`` in (0, 1), as Q0.31 (Newton-Raphson)."""
    s = np.asarray(a, dtype=np.int64) + INT32_MAX
    half_denominator = np.where(s >= 0, (s + 1) // 2, -((-(s - 1)) // 2))  # (s + sign) / 2
    x = wrap32(1515870810 + srdhm(half_denominator, -1010580540))  # 48/17 - 32/17 d, Q2.29
    for _ in range(3):
        one_minus_half_denominator_times_x = wrap32((1 << 29) - srdhm(half_denominator, x))
        x = wrap32(x + saturating_shift_left(srdhm(x, one_minus_half_denominator_times_x), 2))
    return saturating_shift_left(x, 1)


def gemmlowp_logistic(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp's fixed-point ``logistic`` of raw int32 values ``a`` with ``integer_bits``
    integer bits (TFLite's int8 LOGISTIC uses 4): 1 / (1 + exp(-a)) as raw Q0.31 values,
    integer for integer as the C++ (int32 arithmetic emulated in int64)."""
    a = np.asarray(a, dtype=np.int64)
    abs_input = np.where(a > 0, a, -a)
    positive = _one_over_one_plus_x_for_x_in_0_1(_exp_on_negative_values(-abs_input,
                                                                         integer_bits))
    negative = wrap32(INT32_MAX - positive)
    return np.where(a == 0, 1 << 30, np.where(a > 0, positive, negative))


def srdhm16(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int16 values (held in int64)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    s = ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    out = np.where(s >= 0, s >> 15, -((-s) >> 15))   # C division truncates toward zero
    return np.where((a == -32768) & (b == -32768), 32767, out)


def doubling_high_mul16(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """TFLite's (non-rounding) ``SaturatingDoublingHighMul`` on int16 values."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    out = np.where(ab >= 0, ab >> 15, -((-ab) >> 15))
    return np.where((a == -32768) & (b == -32768), 32767, out)


def saturating_left_shift16(x: np.ndarray, amount: int) -> np.ndarray:
    """TFLite's ``SaturatingLeftShift`` of int16 values: x * 2**amount clamped to int16."""
    return np.clip(np.asarray(x, dtype=np.int64) * (1 << amount), -32768, 32767)


def downscale_int32_to_int16_multiplier(m: int) -> int:
    """TFLite ``DownScaleInt32ToInt16Multiplier``: a Q31 multiplier rounded to Q15."""
    if m >= INT32_MAX - (1 << 15):
        return 32767
    return (m + (1 << 15)) >> 16
