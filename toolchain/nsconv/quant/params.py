# SPDX-License-Identifier: Apache-2.0
"""TFLM's Prepare arithmetic for the int8 ops nsconv generates: multipliers, shifts, offsets,
activation ranges and the LOGISTIC/TANH tables, computed once from the tensors' float32 scales
exactly as TensorFlow Lite Micro computes them, so that the generated C only does integer work.

Sources read (tensorflow/tflite-micro): kernels/internal/common.{h,cc},
quantization_util.cc (QuantizeMultiplier, CalculateInputRadius), fully_connected_common.cc,
add_common.cc, sub_common.cc, mul_common.cc, quantize_common.cc, logistic_common.cc,
tanh_common.cc and kernel_util.cc (CalculateActivationRangeQuantized). Where the pinned
tflite-micro build differs from those sources (SUB ratios, per-tensor FC scale product: double,
not float32), the code follows the build, as measured by tests/test_kernels.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from nsconv.quant.fixedpoint import (
    INT8_MAX,
    INT8_MIN,
    INT32_MAX,
    Int8Array,
    IntArray,
    clamp,
    logistic_raw,
    multiply_by_quantized_multiplier,
    rounding_divide_by_pot,
    tanh_raw,
)
from nsconv.resources import KERNEL_DIR

#: ADD/SUB rescale both int8 inputs by 2**20 before the multipliers (TFLM's left_shift for int8).
ADD_LEFT_SHIFT = 20


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
    out = clamp(rounding_divide_by_pot(raw, output_rshift) + output_zero_point, INT8_MIN, INT8_MAX)
    out = np.where(
        x <= -p.input_range_radius, INT8_MIN, np.where(x >= p.input_range_radius, INT8_MAX, out)
    )
    return out.astype(np.int8)


def logistic_table_s8(input_scale: float, input_zero_point: int) -> Int8Array:
    """Table of TFLM's int8 LOGISTIC (output scale 1/256, zero point -128), indexed by uint8(x)."""
    return _unary_table(input_scale, input_zero_point, logistic_raw, 31 - 8, -128)


def tanh_table_s8(input_scale: float, input_zero_point: int) -> Int8Array:
    """Table of TFLM's int8 TANH (output scale 1/128, zero point 0), indexed by uint8(x)."""
    return _unary_table(input_scale, input_zero_point, tanh_raw, 31 - 7, 0)


# --------------------------------------------------------------------------------------------
# Reference ops (TFLM Eval), for debugging and for checking the C kernels


# --------------------------------------------------------------------------------------------
# CONV_2D, DEPTHWISE_CONV_2D, MEAN (GTCRN, issue 14)
# --------------------------------------------------------------------------------------------


def conv_out_size(padding: str, size: int, kernel: int, stride: int, dilation: int) -> int:
    """ComputeOutSize (kernels/padding.h): "same" or "valid" padding."""
    effective = (kernel - 1) * dilation + 1
    if padding == "same":
        return (size + stride - 1) // stride
    if padding == "valid":
        return (size + stride - effective) // stride
    raise ValueError(f"padding {padding!r}: expected 'same' or 'valid'")


def conv_padding(size: int, kernel: int, stride: int, dilation: int, out_size: int) -> int:
    """ComputePaddingWithOffset: the padding before the first element (the reference kernels
    never read the odd extra element at the end; they bound-check every tap)."""
    effective = (kernel - 1) * dilation + 1
    return max((out_size - 1) * stride + effective - size, 0) // 2


@dataclass(frozen=True)
class ConvGeometry:
    """nsn_conv_dims and the spatial fields of nsn_conv_params: one image (batch 1), NHWC."""

    input_h: int
    input_w: int
    input_c: int
    filter_h: int
    filter_w: int
    output_h: int
    output_w: int
    output_c: int
    stride_h: int = 1
    stride_w: int = 1
    dilation_h: int = 1
    dilation_w: int = 1
    pad_h: int = 0
    pad_w: int = 0
    groups: int = 1  # CONV_2D: input_c / filter input depth; DEPTHWISE: unused (1)


def conv_geometry(
    input_hwc: Sequence[int],
    filter_hw: Sequence[int],
    output_c: int,
    *,
    padding: str,
    stride: Sequence[int] = (1, 1),
    dilation: Sequence[int] = (1, 1),
    groups: int = 1,
) -> ConvGeometry:
    """The geometry TFLM's conv Prepare derives from the tensors and the builtin options."""
    (h, w, c), (kh, kw) = input_hwc, filter_hw
    oh = conv_out_size(padding, h, kh, stride[0], dilation[0])
    ow = conv_out_size(padding, w, kw, stride[1], dilation[1])
    if oh < 1 or ow < 1 or c % groups != 0 or output_c % groups != 0:
        raise ValueError(f"conv geometry {input_hwc} {filter_hw} -> {output_c}: no output")
    return ConvGeometry(
        h, w, c, kh, kw, oh, ow, output_c, stride[0], stride[1], dilation[0], dilation[1],
        conv_padding(h, kh, stride[0], dilation[0], oh),
        conv_padding(w, kw, stride[1], dilation[1], ow), groups,
    )


def conv_params(
    input_scale: float,
    input_zero_point: int,
    weight_scales: Sequence[float],
    output_scale: float,
    output_zero_point: int,
    output_channels: int,
    activation: Activation = Activation.NONE,
) -> FcParams:
    """CONV_2D / DEPTHWISE_CONV_2D Prepare (PopulateConvolutionQuantizationParams): per channel
    double(x_s) * double(w_s[c]) / double(y_s), exactly FULLY_CONNECTED's per-channel rule."""
    return fc_params(input_scale, input_zero_point, weight_scales, output_scale,
                     output_zero_point, output_channels, activation)


@dataclass(frozen=True)
class MeanParams:
    """nsn_mean_params: the multiplier and shift already fold in 1 / count (reduce.h)."""

    input_offset: int  # -input zero point
    output_offset: int
    multiplier: int
    shift: int
    count: int  # elements averaged per output


def mean_params(
    input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int,
    count: int,
) -> MeanParams:
    """MEAN Prepare (double(in_s) / double(out_s)), then QuantizedMeanOrSum's Eval-time fold of
    1 / count: shift = min(floor(log2(count)), 32, 31 + shift), multiplier * 2**shift // count
    (int64, truncating)."""
    if count < 1:
        raise ValueError("MEAN over no elements")
    m, s = quantize_multiplier(_f64(input_scale) / _f64(output_scale))
    extra = min(count.bit_length() - 1, 32, 31 + s)
    return MeanParams(-input_zero_point, output_zero_point, (m << extra) // count, s - extra, count)


# --------------------------------------------------------------------------------------------
# int16 activations (16x8 and int16 element-wise ops)
# --------------------------------------------------------------------------------------------

INT16_MIN, INT16_MAX = -32768, 32767
#: ADD/SUB rescale int16 inputs by 2**15 before the multipliers (add_common.cc, sub_common.cc).
ADD_LEFT_SHIFT_S16 = 15


def activation_range_s16(activation: Activation, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int16 outputs."""

    def quantize(value: float) -> int:
        return zero_point + round_half_away(float(np.float32(value) / _f32(scale)))

    if activation == Activation.RELU:
        return max(INT16_MIN, quantize(0.0)), INT16_MAX
    if activation == Activation.RELU6:
        return max(INT16_MIN, quantize(0.0)), min(INT16_MAX, quantize(6.0))
    if activation == Activation.RELU_N1_TO_1:
        return max(INT16_MIN, quantize(-1.0)), min(INT16_MAX, quantize(1.0))
    return INT16_MIN, INT16_MAX


def conv_params_s16(
    input_scale: float,
    weight_scales: Sequence[float],
    output_scale: float,
    output_channels: int,
    activation: Activation = Activation.NONE,
) -> FcParams:
    """16x8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED Prepare: the per-channel multipliers
    of the int8 ops; int16 zero points are 0, the activation range is int16's."""
    p = fc_params(input_scale, 0, weight_scales, output_scale, 0, output_channels)
    lo, hi = activation_range_s16(activation, output_scale, 0)
    return FcParams(0, 0, lo, hi, p.multipliers, p.shifts)


def add_params_s16(
    input1_scale: float, input1_zero_point: int, input2_scale: float, input2_zero_point: int,
    output_scale: float, output_zero_point: int, activation: Activation = Activation.NONE,
) -> AddParams:
    """int16 ADD/SUB Prepare: the int8 rule with left_shift 15 and int16's activation range."""
    twice_max = 2.0 * max(_f64(input1_scale), _f64(input2_scale))
    ratios = (
        _f64(input1_scale) / twice_max,
        _f64(input2_scale) / twice_max,
        twice_max / ((1 << ADD_LEFT_SHIFT_S16) * _f64(output_scale)),
    )
    (m1, s1), (m2, s2), (mo, so) = (_quantize_multiplier_smaller_than_one(r) for r in ratios)
    lo, hi = activation_range_s16(activation, output_scale, output_zero_point)
    return AddParams(-input1_zero_point, m1, s1, -input2_zero_point, m2, s2, ADD_LEFT_SHIFT_S16,
                     output_zero_point, mo, so, lo, hi)


def mul_params_s16(
    input1_scale: float, input1_zero_point: int, input2_scale: float, input2_zero_point: int,
    output_scale: float, output_zero_point: int, activation: Activation = Activation.NONE,
) -> MulParams:
    p = mul_params(input1_scale, input1_zero_point, input2_scale, input2_zero_point,
                   output_scale, output_zero_point)
    lo, hi = activation_range_s16(activation, output_scale, output_zero_point)
    return MulParams(p.input1_offset, p.input2_offset, p.output_offset, p.output_multiplier,
                     p.output_shift, lo, hi)


@dataclass(frozen=True)
class LeakyReluParams:
    """nsn_leaky_relu_params: TFLM's LeakyReluOpData (input_offset here is +input zero point,
    subtracted, as reference_ops::QuantizeLeakyRelu does)."""

    input_zero_point: int
    output_zero_point: int
    multiplier_alpha: int
    shift_alpha: int
    multiplier_identity: int
    shift_identity: int


def leaky_relu_params(
    input_scale: float, input_zero_point: int, alpha: float, output_scale: float,
    output_zero_point: int,
) -> LeakyReluParams:
    """LEAKY_RELU Prepare (leaky_relu_common.cc): double(in_s) * double(alpha) / double(out_s)
    and double(in_s) / double(out_s). Versions of the source form them in float32; the pinned
    TFLM matches the double route (tests/s16_checks.py: an int16 model where the float32 route
    differs on 3 of the 65536 inputs)."""
    a = _f64(input_scale) * _f64(alpha) / _f64(output_scale)
    i = _f64(input_scale) / _f64(output_scale)
    return LeakyReluParams(input_zero_point, output_zero_point, *quantize_multiplier(a),
                           *quantize_multiplier(i))


@dataclass(frozen=True)
class UnaryS16Params:
    """int16 LOGISTIC / TANH (logistic_common.cc / tanh_common.cc): input multiplier (0: the
    power-of-two case) and left shift; zero points 0, output scale 2**-15."""

    input_multiplier: int
    input_left_shift: int


def _checked_log2(x: float) -> tuple[bool, int]:
    """CheckedLog2 in float32: (|frac| < 1e-3, round(log2 x))."""
    x_log2 = np.float32(np.log(np.float32(x))) * (np.float32(1.0) / np.float32(np.log(np.float32(2.0))))
    rounded = np.float32(np.round(x_log2))
    return bool(abs(np.float32(x_log2 - rounded)) < np.float32(1e-3)), int(rounded)


def unary_params_s16(input_scale: float, pot_shifts: tuple[int, ...] = (0,)) -> UnaryS16Params:
    """The int16 Prepare of LOGISTIC (pot_shifts (0,)) and TANH (pot_shifts (0, 1)): a scale
    of 2**-12 (2**-12 or 2**-11 for TANH) takes the power-of-two path; any other gets
    multiplier = floor(scale * 4096 * 3 * 2**k) with the smallest k making it > 16383.5."""
    pot, log2 = _checked_log2(input_scale)
    left_shift = (15 - 3) + log2
    if pot and left_shift in pot_shifts:
        return UnaryS16Params(0, left_shift)
    multiplier = _f64(input_scale) * 4096.0 * 3.0
    left_shift = 0
    while multiplier <= 32767.0 / 2.0 and left_shift <= 30:
        left_shift += 1
        multiplier *= 2.0
    return UnaryS16Params(int(multiplier), left_shift)


def sigmoid_table_u16() -> np.ndarray:
    """The 256-entry sigmoid(i / 24) table (0.16) of TFLM's int16 LOGISTIC / TANH, read from its
    one home, the kernel source firmware/kernels/src/nsn_sigmoid_table_s16.c."""
    text = (KERNEL_DIR / "src" / "nsn_sigmoid_table_s16.c").read_text()
    body = text[text.index("{", text.index("nsn_sigmoid_table_u16[256]")) + 1 : text.index("};")]
    values = np.array([int(v) for v in body.replace("\n", " ").split(",") if v.strip()], np.int64)
    if values.shape != (256,):
        raise ValueError("nsn_sigmoid_table_s16.c does not hold 256 entries")
    return values


@dataclass(frozen=True)
class RsqrtParams:
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int


def rsqrt_params(input_scale: float, input_zero_point: int, output_scale: float,
                 output_zero_point: int) -> RsqrtParams:
    """RSQRT Prepare (elementwise.cc): 1 / (sqrt(in_s) * out_s), all in double (measured: the
    float32 routes differ from the pinned TFLM on some int16 inputs)."""
    denom = math.sqrt(_f64(input_scale)) * _f64(output_scale)
    return RsqrtParams(input_zero_point, output_zero_point, *quantize_multiplier(1.0 / denom))
