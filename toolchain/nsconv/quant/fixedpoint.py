# SPDX-License-Identifier: Apache-2.0
"""Integer arithmetic of TFLM's int8 kernels, vectorized in numpy: TFLM common.h's int32
helpers (MultiplyByQuantizedMultiplier in its double-rounding form, RoundingDivideByPOT, ...) and
gemmlowp's fixed-point exp/logistic/tanh (fixedpoint.h), on int32 raw values.

Integer arrays are int64 numpy arrays that hold int32 values; every int32 addition that could wrap
in C++ is wrapped explicitly (`wrap_int32`), so results equal TFLM's even at the edges.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
INT8_MIN = -128
INT8_MAX = 127

IntArray = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]
ArrayLike = npt.ArrayLike


def as_int64(x: ArrayLike) -> IntArray:
    return np.asarray(x, dtype=np.int64)


def wrap_int32(x: ArrayLike) -> IntArray:
    """Two's complement wrap to int32, as TFLM's unchecked int32 arithmetic does on every target."""
    return ((as_int64(x) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def saturating_rounding_doubling_high_mul(a: ArrayLike, b: ArrayLike) -> IntArray:
    """SaturatingRoundingDoublingHighMul: a*b / 2**31 to nearest, ties toward +infinity.

    Only INT32_MIN * INT32_MIN saturates. The nudge (2**30, or 1 - 2**30 for a negative product)
    is added before a division that truncates toward zero: 1.5 -> 2 but -1.5 -> -1, -0.5 -> 0.
    """
    a64, b64 = np.broadcast_arrays(as_int64(a), as_int64(b))
    ab = a64 * b64
    v = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    q = np.where(v >= 0, v >> 31, -((-v) >> 31))
    return np.where((a64 == INT32_MIN) & (b64 == INT32_MIN), INT32_MAX, q)


def rounding_divide_by_pot(x: ArrayLike, exponent: ArrayLike) -> IntArray:
    """RoundingDivideByPOT: x / 2**exponent to nearest, ties away from zero; 0 <= exponent <= 31."""
    x64, e = np.broadcast_arrays(as_int64(x), as_int64(exponent))
    mask = (np.int64(1) << e) - 1
    remainder = x64 & mask
    threshold = (mask >> 1) + (x64 < 0)
    return (x64 >> e) + (remainder > threshold)


def multiply_by_quantized_multiplier(
    x: ArrayLike, multiplier: ArrayLike, shift: ArrayLike
) -> IntArray:
    """MultiplyByQuantizedMultiplier, TFLM's default double-rounding form.

    Left shift (wrapping, as TFLM's unchecked `x * (1 << left_shift)`), a rounding doubling
    high multiply, then a rounding right shift: two roundings, which single-rounding
    implementations (LiteRT's, CMSIS_NN_USE_SINGLE_ROUNDING) do not reproduce.
    """
    s = as_int64(shift)
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    shifted = wrap_int32(as_int64(x) << left)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def clamp(x: IntArray, lo: int, hi: int) -> IntArray:
    return np.minimum(np.maximum(x, lo), hi)




# --------------------------------------------------------------------------------------------
# gemmlowp fixed-point logistic and tanh (TFLM fixedpoint.h), on int32 raw values
# --------------------------------------------------------------------------------------------
# A FixedPoint<int32, IB> value is its raw int32; it has 31 - IB fractional bits. The
# functions below keep that bookkeeping in their names and comments rather than in types.


def _fp_add(a: ArrayLike, b: ArrayLike) -> IntArray:
    return wrap_int32(as_int64(a) + as_int64(b))


def _fp_sub(a: ArrayLike, b: ArrayLike) -> IntArray:
    return wrap_int32(as_int64(a) - as_int64(b))


def _fp_mul(a: ArrayLike, b: ArrayLike) -> IntArray:
    """FixedPoint operator*: integer bits add up, the raw op is the doubling high multiply."""
    return saturating_rounding_doubling_high_mul(a, b)


def _saturating_shift_left(x: IntArray, exponent: int) -> IntArray:
    """SaturatingRoundingMultiplyByPOT with a positive exponent (Rescale to fewer integer bits)."""
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def _rounding_half_sum(a: IntArray, b: IntArray | int) -> IntArray:
    """RoundingHalfSum for int32: (a + b +/- 1) / 2 truncated toward zero."""
    total = as_int64(a) + as_int64(b)
    v = total + np.where(total >= 0, 1, -1)
    return np.where(v >= 0, v // 2, -((-v) // 2))


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: IntArray) -> IntArray:
    """exp(a) for a in [-1/4, 0), Q0.31 in and out: Taylor series around -1/8."""
    constant_term = 1895147668  # exp(-1/8)
    constant_1_over_3 = 715827883
    x = _fp_add(a, 1 << 28)  # a + 1/8
    x2 = _fp_mul(x, x)
    x3 = _fp_mul(x2, x)
    x4 = _fp_mul(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(
        _fp_add(_fp_mul(_fp_add(x4_over_4, x3), constant_1_over_3), x2), 1
    )
    return _fp_add(constant_term, _fp_mul(constant_term, _fp_add(x, poly)))


# exp(-2**k) in Q0.31, applied for each set bit k of the input's whole-quarter part.
_EXP_BARREL_SHIFTER = (
    (-2, 1672461947),
    (-1, 1302514674),
    (0, 790015084),
    (1, 290630308),
    (2, 39332535),
    (3, 720401),
    (4, 242),
)


def _exp_on_negative_values(a: IntArray, integer_bits: int) -> IntArray:
    """exp(a) for a <= 0 given with `integer_bits` integer bits; result Q0.31."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = _fp_sub(a & (one_quarter - 1), one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        _saturating_shift_left(a_mod_quarter_minus_one_quarter, integer_bits)
    )
    remainder = _fp_sub(a_mod_quarter_minus_one_quarter, a)
    for exponent, multiplier in _EXP_BARREL_SHIFTER:
        if integer_bits > exponent:
            bit = 1 << (fractional_bits + exponent)
            result = np.where(remainder & bit, _fp_mul(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))  # -32.0: exp underflows to 0
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _newton_reciprocal(a: IntArray) -> IntArray:
    """Three Newton-Raphson steps for 1 / ((1 + a) / 2), a in (0, 1) Q0.31; result Q2.29."""
    half_denominator = _rounding_half_sum(a, INT32_MAX)
    x = _fp_add(1515870810, _fp_mul(half_denominator, -1010580540))  # 48/17 - 32/17 * d
    one_q2 = 1 << 29
    for _ in range(3):
        half_denominator_times_x = _fp_mul(half_denominator, x)
        one_minus = _fp_sub(one_q2, half_denominator_times_x)
        x = _fp_add(x, _saturating_shift_left(_fp_mul(x, one_minus), 2))  # Q4.27 -> Q2.29
    return x


def logistic_raw(a: IntArray, integer_bits: int) -> IntArray:
    """gemmlowp logistic: Q(integer_bits) in, Q0.31 out."""
    positive = a > 0
    abs_input = np.where(positive, a, wrap_int32(-a))
    exp_neg = _exp_on_negative_values(wrap_int32(-abs_input), integer_bits)
    # 1 / (1 + x) = x_newton / 2, from Q1.30 back to Q0.31
    result_if_positive = _saturating_shift_left(_newton_reciprocal(exp_neg), 1)
    result_if_negative = _fp_sub(INT32_MAX, result_if_positive)
    return np.where(a == 0, 1 << 30, np.where(positive, result_if_positive, result_if_negative))


def tanh_raw(a: IntArray, integer_bits: int) -> IntArray:
    """gemmlowp tanh: Q(integer_bits) in, Q0.31 out; (1 - e^-2x) / (1 + e^-2x) on |x|."""
    negative = a < 0
    n = np.where(negative, a, wrap_int32(-a))  # -|a|
    exp_2n = _exp_on_negative_values(n, integer_bits + 1)  # 2n: same raw, one more integer bit
    t = _saturating_shift_left(_fp_sub(_newton_reciprocal(exp_2n), 1 << 29), 2)
    return np.where(a == 0, 0, np.where(negative, wrap_int32(-t), t))




# --------------------------------------------------------------------------------------------
# 16x8 ops (int16 activations): the int64 MultiplyByQuantizedMultiplier of TFLM common.cc
# --------------------------------------------------------------------------------------------


def multiply_by_quantized_multiplier_int64(
    x: ArrayLike, multiplier: ArrayLike, shift: ArrayLike
) -> IntArray:
    """MultiplyByQuantizedMultiplier(int64 x, ...), the 16x8 conv / FC requantization: the
    multiplier reduced to 16 bits ((M + 2**15) >> 16, 0x7FFF from 0x7FFF0000 up), then one
    rounding shift by 15 - shift; the int64 result is truncated to int32 (static_cast)."""
    m = as_int64(multiplier)
    reduced = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)
    total = 15 - as_int64(shift)
    # |x| < 2**47 (TFLM's precondition) keeps x * reduced inside int64
    return wrap_int32((as_int64(x) * reduced + (np.int64(1) << (total - 1))) >> total)


def saturating_shift_left(x: ArrayLike, exponent: int) -> IntArray:
    """SaturatingRoundingMultiplyByPOT with a positive exponent (public name, 16x8 ops)."""
    return _saturating_shift_left(as_int64(x), exponent)
