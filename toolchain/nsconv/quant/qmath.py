# SPDX-License-Identifier: Apache-2.0
"""Quantization arithmetic of TFLM's int8 reference kernels, reproduced bit for bit in numpy.

Everything the generated C needs as constants (multipliers, shifts, offsets, activation ranges,
LOGISTIC/TANH tables) is computed here, once, exactly as TensorFlow Lite Micro's Prepare functions
compute it from the tensors' float32 scales; the C kernels then only do integer work. The numpy
reference ops at the end run the same integer arithmetic as TFLM's Eval functions, so that a
layer-by-layer debugger can tell a wrong parameter from a wrong kernel.

Sources read (tensorflow/tflite-micro): kernels/internal/common.{h,cc}
(MultiplyByQuantizedMultiplier, double-rounding form), quantization_util.cc (QuantizeMultiplier,
CalculateInputRadius), fixedpoint.h (gemmlowp fixed point: exp, logistic, tanh),
fully_connected_common.cc, add_common.cc, sub_common.cc, mul_common.cc, quantize_common.cc,
logistic_common.cc, tanh_common.cc and kernel_util.cc (CalculateActivationRangeQuantized). Where
the pinned tflite-micro build differs from those sources (SUB ratios, per-tensor FC scale product:
double, not float32), the code follows the build, as measured by tests/test_kernels.py.

Integer arrays are int64 numpy arrays that hold int32 values; every int32 addition that could wrap
in C++ is wrapped explicitly (`wrap_int32`), so results equal TFLM's even at the edges.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
INT8_MIN = -128
INT8_MAX = 127

#: ADD/SUB rescale both int8 inputs by 2**20 before the multipliers (TFLM's left_shift for int8).
ADD_LEFT_SHIFT = 20

IntArray = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]
ArrayLike = npt.ArrayLike


class Activation(IntEnum):
    """Fused activations, numbered as TFLite's ActivationFunctionType."""

    NONE = 0
    RELU = 1
    RELU_N1_TO_1 = 2
    RELU6 = 3


# --------------------------------------------------------------------------------------------
# Scalar helpers
# --------------------------------------------------------------------------------------------


def round_half_away(x: float) -> int:
    """std::round (TfLiteRound): ties away from zero, exact for every double.

    Python's round() rounds ties to even and floor(x + 0.5) misrounds 0.49999999999999994, so
    the fractional part is compared instead (x - floor(x) is exact for doubles).
    """
    a = abs(x)
    whole = math.floor(a)
    r = whole + 1 if a - whole >= 0.5 else whole
    return int(-r if x < 0 else r)


def _f32(x: float) -> np.float32:
    """A tensor scale as TFLM holds it (float32), whatever Python type it arrived as."""
    return np.float32(x)


def _f64(x: float) -> float:
    """static_cast<double>(float scale)."""
    return float(np.float32(x))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier: real ~= multiplier * 2**(shift - 31), multiplier in [2**30, 2**31).

    Returns (0, 0) for zero and for multipliers below 2**-32 (shift < -31), which TFLM flushes.
    """
    if real == 0.0:
        return 0, 0
    frac, shift = math.frexp(real)
    q = round_half_away(frac * (1 << 31))
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q, shift


def _quantize_multiplier_smaller_than_one(real: float) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp: TFLM refuses to prepare the op outside (0, 1)."""
    if not 0.0 < real < 1.0:
        raise ValueError(f"multiplier {real!r} outside (0, 1): TFLM rejects this quantization")
    return quantize_multiplier(real)


# --------------------------------------------------------------------------------------------
# Vectorized int32 arithmetic (gemmlowp / TFLM common.h)
# --------------------------------------------------------------------------------------------


def _i64(x: ArrayLike) -> IntArray:
    return np.asarray(x, dtype=np.int64)


def wrap_int32(x: ArrayLike) -> IntArray:
    """Two's complement wrap to int32, as TFLM's unchecked int32 arithmetic does on every target."""
    return ((_i64(x) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def saturating_rounding_doubling_high_mul(a: ArrayLike, b: ArrayLike) -> IntArray:
    """SaturatingRoundingDoublingHighMul: a*b / 2**31 to nearest, ties toward +infinity.

    Only INT32_MIN * INT32_MIN saturates. The nudge (2**30, or 1 - 2**30 for a negative product)
    is added before a division that truncates toward zero: 1.5 -> 2 but -1.5 -> -1, -0.5 -> 0.
    """
    a64, b64 = np.broadcast_arrays(_i64(a), _i64(b))
    ab = a64 * b64
    v = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    q = np.where(v >= 0, v >> 31, -((-v) >> 31))
    return np.where((a64 == INT32_MIN) & (b64 == INT32_MIN), INT32_MAX, q)


def rounding_divide_by_pot(x: ArrayLike, exponent: ArrayLike) -> IntArray:
    """RoundingDivideByPOT: x / 2**exponent to nearest, ties away from zero; 0 <= exponent <= 31."""
    x64, e = np.broadcast_arrays(_i64(x), _i64(exponent))
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
    s = _i64(shift)
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    shifted = wrap_int32(_i64(x) << left)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def _clamp(x: IntArray, lo: int, hi: int) -> IntArray:
    return np.minimum(np.maximum(x, lo), hi)


# --------------------------------------------------------------------------------------------
# Parameters, as each op's Prepare computes them
# --------------------------------------------------------------------------------------------


def activation_range(activation: Activation, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8: the bound is quantized in float32."""

    def quantize(value: float) -> int:
        return zero_point + round_half_away(float(np.float32(value) / _f32(scale)))

    if activation == Activation.RELU:
        return max(INT8_MIN, quantize(0.0)), INT8_MAX
    if activation == Activation.RELU6:
        return max(INT8_MIN, quantize(0.0)), min(INT8_MAX, quantize(6.0))
    if activation == Activation.RELU_N1_TO_1:
        return max(INT8_MIN, quantize(-1.0)), min(INT8_MAX, quantize(1.0))
    return INT8_MIN, INT8_MAX


@dataclass(frozen=True)
class FcParams:
    """nsn_fc_params plus the per-channel multipliers and shifts (nsn_per_channel_quant_params)."""

    input_offset: int
    output_offset: int
    activation_min: int
    activation_max: int
    multipliers: tuple[int, ...]
    shifts: tuple[int, ...]


def fc_params(
    input_scale: float,
    input_zero_point: int,
    weight_scales: Sequence[float],
    output_scale: float,
    output_zero_point: int,
    output_features: int,
    activation: Activation = Activation.NONE,
) -> FcParams:
    """FULLY_CONNECTED Prepare (CalculateOpDataFullyConnected): double(x_s) * double(w_s) /
    double(y_s) per channel. A single weight scale (the converter emits one for a 1-unit Dense
    layer) takes TFLM's per-tensor path and is broadcast over the channels. Older TFLM sources
    round that path's scale product to float32; the pinned build multiplies in double
    (measured, and seen in its machine code).
    """
    if len(weight_scales) not in (1, output_features):
        raise ValueError(f"{len(weight_scales)} weight scales for {output_features} channels")
    scales = list(weight_scales) * (output_features if len(weight_scales) == 1 else 1)
    pairs = [
        quantize_multiplier(_f64(input_scale) * _f64(ws) / _f64(output_scale)) for ws in scales
    ]
    lo, hi = activation_range(activation, output_scale, output_zero_point)
    return FcParams(
        input_offset=-input_zero_point,
        output_offset=output_zero_point,
        activation_min=lo,
        activation_max=hi,
        multipliers=tuple(m for m, _ in pairs),
        shifts=tuple(s for _, s in pairs),
    )


@dataclass(frozen=True)
class AddParams:
    """nsn_add_params, field for field (also used for SUB)."""

    input1_offset: int
    input1_multiplier: int
    input1_shift: int
    input2_offset: int
    input2_multiplier: int
    input2_shift: int
    left_shift: int
    output_offset: int
    output_multiplier: int
    output_shift: int
    activation_min: int
    activation_max: int


def _add_sub_params(
    ratios: tuple[float, float, float],
    zero_points: tuple[int, int, int],
    output_scale: float,
    activation: Activation,
) -> AddParams:
    (m1, s1), (m2, s2), (mo, so) = (_quantize_multiplier_smaller_than_one(r) for r in ratios)
    lo, hi = activation_range(activation, output_scale, zero_points[2])
    return AddParams(
        input1_offset=-zero_points[0],
        input1_multiplier=m1,
        input1_shift=s1,
        input2_offset=-zero_points[1],
        input2_multiplier=m2,
        input2_shift=s2,
        left_shift=ADD_LEFT_SHIFT,
        output_offset=zero_points[2],
        output_multiplier=mo,
        output_shift=so,
        activation_min=lo,
        activation_max=hi,
    )


def add_params(
    input1_scale: float,
    input1_zero_point: int,
    input2_scale: float,
    input2_zero_point: int,
    output_scale: float,
    output_zero_point: int,
    activation: Activation = Activation.NONE,
) -> AddParams:
    """ADD Prepare (add_common.cc): twice_max = 2 * max(s1, s2), all ratios in double."""
    twice_max = 2.0 * max(_f64(input1_scale), _f64(input2_scale))
    ratios = (
        _f64(input1_scale) / twice_max,
        _f64(input2_scale) / twice_max,
        twice_max / ((1 << ADD_LEFT_SHIFT) * _f64(output_scale)),
    )
    zps = (input1_zero_point, input2_zero_point, output_zero_point)
    return _add_sub_params(ratios, zps, output_scale, activation)


def sub_params(
    input1_scale: float,
    input1_zero_point: int,
    input2_scale: float,
    input2_zero_point: int,
    output_scale: float,
    output_zero_point: int,
    activation: Activation = Activation.NONE,
) -> AddParams:
    """SUB Prepare: the same parameters as ADD (the kernel subtracts instead of adding).

    The sub_common.cc versions in TFLM's public history compute twice_max and the ratios as
    float32 expressions before the cast to double; the pinned tflite-micro build computes them
    in double (its machine code converts the scales first), and on quantizations where the two
    routes give different outputs it matches the double route every time
    (tests/test_kernels.py::test_scale_ratios_are_double pins this).
    """
    return add_params(
        input1_scale,
        input1_zero_point,
        input2_scale,
        input2_zero_point,
        output_scale,
        output_zero_point,
        activation,
    )


@dataclass(frozen=True)
class MulParams:
    """nsn_mul_params, field for field."""

    input1_offset: int
    input2_offset: int
    output_offset: int
    output_multiplier: int
    output_shift: int
    activation_min: int
    activation_max: int


def mul_params(
    input1_scale: float,
    input1_zero_point: int,
    input2_scale: float,
    input2_zero_point: int,
    output_scale: float,
    output_zero_point: int,
    activation: Activation = Activation.NONE,
) -> MulParams:
    """MUL Prepare (mul_common.cc): s1 * s2 / so in double; the multiplier may exceed 1."""
    m, s = quantize_multiplier(_f64(input1_scale) * _f64(input2_scale) / _f64(output_scale))
    lo, hi = activation_range(activation, output_scale, output_zero_point)
    return MulParams(
        input1_offset=-input1_zero_point,
        input2_offset=-input2_zero_point,
        output_offset=output_zero_point,
        output_multiplier=m,
        output_shift=s,
        activation_min=lo,
        activation_max=hi,
    )


@dataclass(frozen=True)
class RequantizeParams:
    """nsn_requantize_params: input_offset = -input zero point, output_offset = +output one."""

    input_offset: int
    output_offset: int
    multiplier: int
    shift: int


def requantize_params(
    input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int
) -> RequantizeParams:
    """int8 -> int8 QUANTIZE Prepare (quantize_common.cc): double(in_s) / double(out_s)."""
    m, s = quantize_multiplier(_f64(input_scale) / _f64(output_scale))
    return RequantizeParams(-input_zero_point, output_zero_point, m, s)


# --------------------------------------------------------------------------------------------
# gemmlowp fixed-point logistic and tanh (TFLM fixedpoint.h), on int32 raw values
# --------------------------------------------------------------------------------------------
# A FixedPoint<int32, IB> value is its raw int32; it has 31 - IB fractional bits. The
# functions below keep that bookkeeping in their names and comments rather than in types.


def _fp_add(a: ArrayLike, b: ArrayLike) -> IntArray:
    return wrap_int32(_i64(a) + _i64(b))


def _fp_sub(a: ArrayLike, b: ArrayLike) -> IntArray:
    return wrap_int32(_i64(a) - _i64(b))


def _fp_mul(a: ArrayLike, b: ArrayLike) -> IntArray:
    """FixedPoint operator*: integer bits add up, the raw op is the doubling high multiply."""
    return saturating_rounding_doubling_high_mul(a, b)


def _saturating_shift_left(x: IntArray, exponent: int) -> IntArray:
    """SaturatingRoundingMultiplyByPOT with a positive exponent (Rescale to fewer integer bits)."""
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def _rounding_half_sum(a: IntArray, b: IntArray | int) -> IntArray:
    """RoundingHalfSum for int32: (a + b +/- 1) / 2 truncated toward zero."""
    total = _i64(a) + _i64(b)
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


def _logistic_raw(a: IntArray, integer_bits: int) -> IntArray:
    """gemmlowp logistic: Q(integer_bits) in, Q0.31 out."""
    positive = a > 0
    abs_input = np.where(positive, a, wrap_int32(-a))
    exp_neg = _exp_on_negative_values(wrap_int32(-abs_input), integer_bits)
    # 1 / (1 + x) = x_newton / 2, from Q1.30 back to Q0.31
    result_if_positive = _saturating_shift_left(_newton_reciprocal(exp_neg), 1)
    result_if_negative = _fp_sub(INT32_MAX, result_if_positive)
    return np.where(a == 0, 1 << 30, np.where(positive, result_if_positive, result_if_negative))


def _tanh_raw(a: IntArray, integer_bits: int) -> IntArray:
    """gemmlowp tanh: Q(integer_bits) in, Q0.31 out; (1 - e^-2x) / (1 + e^-2x) on |x|."""
    negative = a < 0
    n = np.where(negative, a, wrap_int32(-a))  # -|a|
    exp_2n = _exp_on_negative_values(n, integer_bits + 1)  # 2n: same raw, one more integer bit
    t = _saturating_shift_left(_fp_sub(_newton_reciprocal(exp_2n), 1 << 29), 2)
    return np.where(a == 0, 0, np.where(negative, wrap_int32(-t), t))


# --------------------------------------------------------------------------------------------
# LOGISTIC / TANH as 256-entry tables
# --------------------------------------------------------------------------------------------

_INPUT_INTEGER_BITS = 4  # TFLM rescales int8 LOGISTIC/TANH inputs to Q4.27


@dataclass(frozen=True)
class UnaryFixedPointParams:
    """The parameters LOGISTIC/TANH Prepare derives from the input quantization (int8)."""

    input_zero_point: int
    input_multiplier: int
    input_left_shift: int
    input_range_radius: int


def unary_fixed_point_params(input_scale: float, input_zero_point: int) -> UnaryFixedPointParams:
    """logistic_common.cc / tanh_common.cc: frexp of in_s * 2**27 with no 2**31 correction.

    The missing correction is harmless: a float32 scale has a 24-bit significand, so
    frac * 2**31 is an exact integer below 2**31. CalculateInputRadius floors
    15 * 2**27 / 2**shift: inputs at or beyond it saturate without the fixed-point call.
    """
    real = _f64(input_scale) * float(1 << (31 - _INPUT_INTEGER_BITS))
    frac, left_shift = math.frexp(real)
    multiplier = round_half_away(frac * (1 << 31))
    if not (0 <= left_shift <= 31 and multiplier <= INT32_MAX):
        raise ValueError(f"input scale {input_scale!r} is outside what TFLM's int8 kernel handles")
    radius = (((1 << _INPUT_INTEGER_BITS) - 1) << (31 - _INPUT_INTEGER_BITS)) >> left_shift
    return UnaryFixedPointParams(input_zero_point, multiplier, left_shift, radius)


def _all_int8() -> IntArray:
    """The 256 int8 values in table order: index i holds the value whose bit pattern is i."""
    return np.arange(256, dtype=np.uint8).view(np.int8).astype(np.int64)


def _unary_table(
    input_scale: float,
    input_zero_point: int,
    function: Callable[[IntArray, int], IntArray],
    output_rshift: int,
    output_zero_point: int,
) -> Int8Array:
    p = unary_fixed_point_params(input_scale, input_zero_point)
    x = _all_int8() - p.input_zero_point
    inside = (x > -p.input_range_radius) & (x < p.input_range_radius)
    x_in = np.where(inside, x, 0)  # saturated lanes are replaced below; keep them in range
    q4 = multiply_by_quantized_multiplier(x_in, p.input_multiplier, p.input_left_shift)
    raw = function(q4, _INPUT_INTEGER_BITS)
    out = _clamp(rounding_divide_by_pot(raw, output_rshift) + output_zero_point, INT8_MIN, INT8_MAX)
    out = np.where(
        x <= -p.input_range_radius, INT8_MIN, np.where(x >= p.input_range_radius, INT8_MAX, out)
    )
    return out.astype(np.int8)


def logistic_table_s8(input_scale: float, input_zero_point: int) -> Int8Array:
    """Table of TFLM's int8 LOGISTIC (output scale 1/256, zero point -128), indexed by uint8(x)."""
    return _unary_table(input_scale, input_zero_point, _logistic_raw, 31 - 8, -128)


def tanh_table_s8(input_scale: float, input_zero_point: int) -> Int8Array:
    """Table of TFLM's int8 TANH (output scale 1/128, zero point 0), indexed by uint8(x)."""
    return _unary_table(input_scale, input_zero_point, _tanh_raw, 31 - 7, 0)


# --------------------------------------------------------------------------------------------
# Reference ops (TFLM Eval), for debugging and for checking the C kernels
# --------------------------------------------------------------------------------------------


def fc_s8(params: FcParams, x: ArrayLike, weights: ArrayLike, bias: ArrayLike | None) -> Int8Array:
    """FULLY_CONNECTED on int8 x of shape (..., in); weights (out, in) int8; bias (out,) int32."""
    acc = (_i64(x) + params.input_offset) @ _i64(weights).T
    if bias is not None:
        acc = acc + _i64(bias)
    acc = wrap_int32(acc)
    out = multiply_by_quantized_multiplier(acc, _i64(params.multipliers), _i64(params.shifts))
    out = wrap_int32(out + params.output_offset)
    return _clamp(out, params.activation_min, params.activation_max).astype(np.int8)


def _add_sub_s8(p: AddParams, x1: ArrayLike, x2: ArrayLike, sign: int) -> Int8Array:
    shifted1 = (_i64(x1) + p.input1_offset) << p.left_shift
    shifted2 = (_i64(x2) + p.input2_offset) << p.left_shift
    scaled1 = multiply_by_quantized_multiplier(shifted1, p.input1_multiplier, p.input1_shift)
    scaled2 = multiply_by_quantized_multiplier(shifted2, p.input2_multiplier, p.input2_shift)
    raw = wrap_int32(scaled1 + sign * scaled2)
    out = (
        multiply_by_quantized_multiplier(raw, p.output_multiplier, p.output_shift) + p.output_offset
    )
    return _clamp(out, p.activation_min, p.activation_max).astype(np.int8)


def add_s8(params: AddParams, x1: ArrayLike, x2: ArrayLike) -> Int8Array:
    """ADD (numpy broadcasting covers TFLM's broadcast of a one-element operand)."""
    return _add_sub_s8(params, x1, x2, 1)


def sub_s8(params: AddParams, x1: ArrayLike, x2: ArrayLike) -> Int8Array:
    """SUB: x1 - x2, each side rescaled as in ADD."""
    return _add_sub_s8(params, x1, x2, -1)


def mul_s8(params: MulParams, x1: ArrayLike, x2: ArrayLike) -> Int8Array:
    """MUL: zo + MBQM((x1 - z1) * (x2 - z2)), clamped."""
    prod = (_i64(x1) + params.input1_offset) * (_i64(x2) + params.input2_offset)
    out = multiply_by_quantized_multiplier(prod, params.output_multiplier, params.output_shift)
    out = wrap_int32(out + params.output_offset)
    return _clamp(out, params.activation_min, params.activation_max).astype(np.int8)


def lut_s8(table: ArrayLike, x: ArrayLike) -> Int8Array:
    """A 256-entry table applied to int8 x (index = the byte's unsigned value)."""
    return np.asarray(table, dtype=np.int8)[np.asarray(x, dtype=np.int8).view(np.uint8)]


def requantize_s8(params: RequantizeParams, x: ArrayLike) -> Int8Array:
    """int8 -> int8 QUANTIZE (reference_ops::Requantize)."""
    out = multiply_by_quantized_multiplier(
        _i64(x) + params.input_offset, params.multiplier, params.shift
    )
    out = wrap_int32(out + params.output_offset)
    return _clamp(out, INT8_MIN, INT8_MAX).astype(np.int8)
