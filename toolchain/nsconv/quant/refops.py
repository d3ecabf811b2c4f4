# SPDX-License-Identifier: Apache-2.0
"""The int8 ops of TFLM's Eval functions, run in numpy from the parameters of
nsconv.quant.params: the layer-by-layer reference that tells a wrong parameter from a wrong kernel,
and the oracle the C kernel tests compare against (with TFLM itself)."""

from __future__ import annotations

import numpy as np

from nsconv.quant.fixedpoint import (
    INT8_MAX,
    INT8_MIN,
    INT32_MAX,
    ArrayLike,
    Int8Array,
    IntArray,
    as_int64,
    clamp,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_int64,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    saturating_shift_left,
    wrap_int32,
)
from nsconv.quant.params import (
    INT16_MAX,
    INT16_MIN,
    AddParams,
    ConvGeometry,
    FcParams,
    LeakyReluParams,
    MeanParams,
    MulParams,
    RequantizeParams,
    RsqrtParams,
    UnaryS16Params,
    sigmoid_table_u16,
)

# --------------------------------------------------------------------------------------------


def fc_s8(params: FcParams, x: ArrayLike, weights: ArrayLike, bias: ArrayLike | None) -> Int8Array:
    """FULLY_CONNECTED on int8 x of shape (..., in); weights (out, in) int8; bias (out,) int32."""
    acc = (as_int64(x) + params.input_offset) @ as_int64(weights).T
    if bias is not None:
        acc = acc + as_int64(bias)
    acc = wrap_int32(acc)
    out = multiply_by_quantized_multiplier(acc, as_int64(params.multipliers), as_int64(params.shifts))
    out = wrap_int32(out + params.output_offset)
    return clamp(out, params.activation_min, params.activation_max).astype(np.int8)


def _add_sub_s8(p: AddParams, x1: ArrayLike, x2: ArrayLike, sign: int) -> Int8Array:
    shifted1 = (as_int64(x1) + p.input1_offset) << p.left_shift
    shifted2 = (as_int64(x2) + p.input2_offset) << p.left_shift
    scaled1 = multiply_by_quantized_multiplier(shifted1, p.input1_multiplier, p.input1_shift)
    scaled2 = multiply_by_quantized_multiplier(shifted2, p.input2_multiplier, p.input2_shift)
    raw = wrap_int32(scaled1 + sign * scaled2)
    out = (
        multiply_by_quantized_multiplier(raw, p.output_multiplier, p.output_shift) + p.output_offset
    )
    return clamp(out, p.activation_min, p.activation_max).astype(np.int8)


def add_s8(params: AddParams, x1: ArrayLike, x2: ArrayLike) -> Int8Array:
    """ADD (numpy broadcasting covers TFLM's broadcast of a one-element operand)."""
    return _add_sub_s8(params, x1, x2, 1)


def sub_s8(params: AddParams, x1: ArrayLike, x2: ArrayLike) -> Int8Array:
    """SUB: x1 - x2, each side rescaled as in ADD."""
    return _add_sub_s8(params, x1, x2, -1)


def mul_s8(params: MulParams, x1: ArrayLike, x2: ArrayLike) -> Int8Array:
    """MUL: zo + MBQM((x1 - z1) * (x2 - z2)), clamped."""
    prod = (as_int64(x1) + params.input1_offset) * (as_int64(x2) + params.input2_offset)
    out = multiply_by_quantized_multiplier(prod, params.output_multiplier, params.output_shift)
    out = wrap_int32(out + params.output_offset)
    return clamp(out, params.activation_min, params.activation_max).astype(np.int8)


def lut_s8(table: ArrayLike, x: ArrayLike) -> Int8Array:
    """A 256-entry table applied to int8 x (index = the byte's unsigned value)."""
    return np.asarray(table, dtype=np.int8)[np.asarray(x, dtype=np.int8).view(np.uint8)]


def requantize_s8(params: RequantizeParams, x: ArrayLike) -> Int8Array:
    """int8 -> int8 QUANTIZE (reference_ops::Requantize)."""
    out = multiply_by_quantized_multiplier(
        as_int64(x) + params.input_offset, params.multiplier, params.shift
    )
    out = wrap_int32(out + params.output_offset)
    return clamp(out, INT8_MIN, INT8_MAX).astype(np.int8)


# --------------------------------------------------------------------------------------------
# CONV_2D, DEPTHWISE_CONV_2D, MEAN (reference_integer_ops conv.h, depthwise_conv.h; reduce.h)
# --------------------------------------------------------------------------------------------


def _requantize_channels(p: FcParams, acc: ArrayLike) -> Int8Array:
    """acc (..., channels) int32 (wrapped) -> int8 with per-channel multipliers."""
    acc = wrap_int32(acc)
    out = multiply_by_quantized_multiplier(acc, as_int64(p.multipliers), as_int64(p.shifts))
    out = wrap_int32(out + p.output_offset)
    return clamp(out, p.activation_min, p.activation_max).astype(np.int8)


def _taps(g: ConvGeometry, x: ArrayLike, offset: int):
    """Yields (ky, kx, window): window[oy, ox, c] = x at the tap + offset, 0 outside the image."""
    x = as_int64(x).reshape(g.input_h, g.input_w, -1) + offset
    oy = np.arange(g.output_h) * g.stride_h - g.pad_h
    ox = np.arange(g.output_w) * g.stride_w - g.pad_w
    for ky in range(g.filter_h):
        iy = oy + ky * g.dilation_h
        for kx in range(g.filter_w):
            ix = ox + kx * g.dilation_w
            inside = ((iy >= 0) & (iy < g.input_h))[:, None] & ((ix >= 0) & (ix < g.input_w))
            win = x[np.clip(iy, 0, g.input_h - 1)][:, np.clip(ix, 0, g.input_w - 1)]
            yield ky, kx, np.where(inside[..., None], win, 0)


def conv_s8(
    p: FcParams, g: ConvGeometry, x: ArrayLike, weights: ArrayLike, bias: ArrayLike | None
) -> Int8Array:
    """CONV_2D (ConvPerChannel, groups included): x (H, W, C_in), weights (C_out, KH, KW,
    C_in / groups), bias (C_out,) -> (OH, OW, C_out)."""
    w = as_int64(weights)
    cin_g, cout_g = g.input_c // g.groups, g.output_c // g.groups
    acc = np.zeros((g.output_h, g.output_w, g.output_c), np.int64)
    for ky, kx, win in _taps(g, x, p.input_offset):
        for grp in range(g.groups):
            cols = slice(grp * cout_g, (grp + 1) * cout_g)
            acc[..., cols] += win[..., grp * cin_g:(grp + 1) * cin_g] @ w[cols, ky, kx, :].T
    if bias is not None:
        acc += as_int64(bias)
    return _requantize_channels(p, acc)


def depthwise_conv_s8(
    p: FcParams, g: ConvGeometry, x: ArrayLike, weights: ArrayLike, bias: ArrayLike | None
) -> Int8Array:
    """DEPTHWISE_CONV_2D (DepthwiseConvPerChannel): x (H, W, C_in), weights (1, KH, KW, C_out)
    with C_out = C_in * depth_multiplier, output channel c reads input channel c // multiplier."""
    w = as_int64(weights).reshape(g.filter_h, g.filter_w, g.output_c)
    mult = g.output_c // g.input_c
    acc = np.zeros((g.output_h, g.output_w, g.output_c), np.int64)
    for ky, kx, win in _taps(g, x, p.input_offset):
        acc += np.repeat(win, mult, axis=-1) * w[ky, kx]
    if bias is not None:
        acc += as_int64(bias)
    return _requantize_channels(p, acc)


def mean_s8(p: MeanParams, x: ArrayLike) -> Int8Array:
    """MEAN (QuantizedMeanOrSum) over axis 1 of x viewed as (outer, count, inner)."""
    x = as_int64(x)
    total = wrap_int32(x.sum(axis=1) + p.input_offset * p.count)
    out = multiply_by_quantized_multiplier(total, p.multiplier, p.shift) + p.output_offset
    return clamp(out, INT8_MIN, INT8_MAX).astype(np.int8)


# --------------------------------------------------------------------------------------------
# int16 activations: 16x8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED, int16 element-wise ops
# --------------------------------------------------------------------------------------------


def _requantize_channels_s16(p: FcParams, acc: ArrayLike) -> IntArray:
    """int64 acc (..., channels) -> int16 with the int64 MultiplyByQuantizedMultiplier."""
    out = multiply_by_quantized_multiplier_int64(acc, as_int64(p.multipliers), as_int64(p.shifts))
    return clamp(out, p.activation_min, p.activation_max).astype(np.int16)


def conv_s16(
    p: FcParams, g: ConvGeometry, x: ArrayLike, weights: ArrayLike, bias: ArrayLike | None
) -> IntArray:
    """16x8 CONV_2D: int16 x (zero point 0), int8 weights, int64 bias, int64 sums."""
    w = as_int64(weights)
    cin_g, cout_g = g.input_c // g.groups, g.output_c // g.groups
    acc = np.zeros((g.output_h, g.output_w, g.output_c), np.int64)
    for ky, kx, win in _taps(g, x, 0):
        for grp in range(g.groups):
            cols = slice(grp * cout_g, (grp + 1) * cout_g)
            acc[..., cols] += win[..., grp * cin_g:(grp + 1) * cin_g] @ w[cols, ky, kx, :].T
    if bias is not None:
        acc += as_int64(bias)
    return _requantize_channels_s16(p, acc)


def depthwise_conv_s16(
    p: FcParams, g: ConvGeometry, x: ArrayLike, weights: ArrayLike, bias: ArrayLike | None
) -> IntArray:
    w = as_int64(weights).reshape(g.filter_h, g.filter_w, g.output_c)
    mult = g.output_c // g.input_c
    acc = np.zeros((g.output_h, g.output_w, g.output_c), np.int64)
    for ky, kx, win in _taps(g, x, 0):
        acc += np.repeat(win, mult, axis=-1) * w[ky, kx]
    if bias is not None:
        acc += as_int64(bias)
    return _requantize_channels_s16(p, acc)


def fc_s16(p: FcParams, x: ArrayLike, weights: ArrayLike, bias: ArrayLike | None) -> IntArray:
    """16x8 FULLY_CONNECTED on int16 x (..., in): int64 sums and bias."""
    acc = as_int64(x) @ as_int64(weights).T
    if bias is not None:
        acc = acc + as_int64(bias)
    return _requantize_channels_s16(p, acc)


def add_s16(params: AddParams, x1: ArrayLike, x2: ArrayLike) -> IntArray:
    return _add_sub(params, x1, x2, 1, INT16_MIN, INT16_MAX).astype(np.int16)


def sub_s16(params: AddParams, x1: ArrayLike, x2: ArrayLike) -> IntArray:
    return _add_sub(params, x1, x2, -1, INT16_MIN, INT16_MAX).astype(np.int16)


def _add_sub(p: AddParams, x1: ArrayLike, x2: ArrayLike, sign: int, lo: int, hi: int) -> IntArray:
    shifted1 = (as_int64(x1) + p.input1_offset) << p.left_shift
    shifted2 = (as_int64(x2) + p.input2_offset) << p.left_shift
    scaled1 = multiply_by_quantized_multiplier(shifted1, p.input1_multiplier, p.input1_shift)
    scaled2 = multiply_by_quantized_multiplier(shifted2, p.input2_multiplier, p.input2_shift)
    raw = wrap_int32(scaled1 + sign * scaled2)
    out = multiply_by_quantized_multiplier(raw, p.output_multiplier, p.output_shift)
    out = wrap_int32(out + p.output_offset)
    return clamp(clamp(out, p.activation_min, p.activation_max), lo, hi)


def mul_s16(params: MulParams, x1: ArrayLike, x2: ArrayLike) -> IntArray:
    prod = wrap_int32((as_int64(x1) + params.input1_offset) * (as_int64(x2) + params.input2_offset))
    out = multiply_by_quantized_multiplier(prod, params.output_multiplier, params.output_shift)
    out = wrap_int32(out + params.output_offset)
    return clamp(out, params.activation_min, params.activation_max).astype(np.int16)


def requantize(params: RequantizeParams, x: ArrayLike, out_dtype: type) -> IntArray:
    """QUANTIZE between int8 and int16 (either way, or int16 -> int16): Requantize."""
    info = np.iinfo(out_dtype)
    out = multiply_by_quantized_multiplier(
        as_int64(x) + params.input_offset, params.multiplier, params.shift
    )
    return clamp(wrap_int32(out + params.output_offset), int(info.min), int(info.max)).astype(
        out_dtype
    )


def mean_s16(p: MeanParams, x: ArrayLike) -> IntArray:
    x = as_int64(x)
    total = wrap_int32(x.sum(axis=1) + p.input_offset * p.count)
    out = multiply_by_quantized_multiplier(total, p.multiplier, p.shift) + p.output_offset
    return clamp(out, INT16_MIN, INT16_MAX).astype(np.int16)


def leaky_relu(p: LeakyReluParams, x: ArrayLike, dtype: type) -> IntArray:
    """LEAKY_RELU (reference_ops::QuantizeLeakyRelu) for int8 or int16."""
    info = np.iinfo(dtype)
    v = as_int64(x) - p.input_zero_point
    pos = multiply_by_quantized_multiplier(v, p.multiplier_identity, p.shift_identity)
    neg = multiply_by_quantized_multiplier(v, p.multiplier_alpha, p.shift_alpha)
    out = p.output_zero_point + np.where(v >= 0, pos, neg)
    return clamp(out, int(info.min), int(info.max)).astype(dtype)


def _sigmoid_lut_s16(p: UnaryS16Params, x: ArrayLike, tanh: bool) -> IntArray:
    table = sigmoid_table_u16()
    mult, shift = p.input_multiplier, p.input_left_shift
    if mult == 0:
        mult, shift = 3 << shift, 0
    rnd = (1 << (shift - 1)) if shift > 0 else 0
    v = (as_int64(x) * mult + rnd) >> shift
    a = np.abs(v)
    bits = 8 if tanh else 9
    uh = a >> bits
    inside = uh < 255
    idx = np.where(inside, uh, 0)
    ua, ub = table[idx], table[np.minimum(idx + 1, 255)]
    ut = a & ((1 << bits) - 1)
    interp = (ua << bits) + ut * (ub - ua)
    if tanh:
        r = np.where(inside, interp, 0xFFFF << 8)
        r = np.where(v >= 0, r - (1 << 23) + (1 << 7), -r + (1 << 23) + (1 << 7) - 1)
        return (r >> 8).astype(np.int16)
    r = np.where(inside, interp, 0x7FFF << 10) & 0xFFFFFFFF
    r = np.where(v >= 0, r + (1 << 9), ((1 << 25) - r + (1 << 9) - 1) & 0xFFFFFFFF)
    return ((r >> 10) & 0xFFFF).astype(np.uint16).view(np.int16)


def logistic_s16(p: UnaryS16Params, x: ArrayLike) -> IntArray:
    """int16 LOGISTIC (reference_integer_ops::Logistic): interpolated sigmoid table."""
    return _sigmoid_lut_s16(p, x, tanh=False)


def tanh_s16(p: UnaryS16Params, x: ArrayLike) -> IntArray:
    """int16 TANH (reference_integer_ops::Tanh): the sigmoid table, 8 interpolation bits."""
    return _sigmoid_lut_s16(p, x, tanh=True)


def inv_sqrt_multiplier_exp(value: ArrayLike) -> tuple[IntArray, IntArray]:
    """GetInvSqrtQuantizedMultiplierExp(value, kReverseShift) on an array of values in
    [0, 2**29): 5 Newton steps in gemmlowp F3; values <= 1 give (INT32_MAX, 0)."""
    v0 = as_int64(value)
    if np.any(v0 >= 1 << 29):
        raise ValueError("inv_sqrt_multiplier_exp takes values below 2**29")
    v = np.maximum(v0, 2)
    bits = np.frexp(v.astype(np.float64))[1].astype(np.int64)  # bit length (exact < 2**53)
    pairs = (32 - bits - 1) // 2 - 1
    shift = 11 - pairs
    v = v << (2 * pairs)
    half_input = rounding_divide_by_pot(v >> 1, 1)
    half_three = (1 << 28) + (1 << 27)
    srdhm = saturating_rounding_doubling_high_mul
    x = np.full(v.shape, 1 << 28, np.int64)
    for _ in range(5):
        x3 = saturating_shift_left(srdhm(srdhm(x, x), x), 6)
        x = saturating_shift_left(wrap_int32(srdhm(half_three, x) - srdhm(half_input, x3)), 3)
    x = srdhm(x, 1518500250)
    x = np.where(shift < 0, wrap_int32(x << np.maximum(-shift, 0)), x)
    shift = np.maximum(shift, 0)
    small = v0 <= 1
    return np.where(small, INT32_MAX, x), np.where(small, 0, -shift)


def rsqrt(p: RsqrtParams, x: ArrayLike, dtype: type) -> IntArray:
    """RSQRT (elementwise.cc RsqrtEvalQuantized) for int8 or int16 (values from the zero
    point up; below it TFLM refuses the input, here it is treated as zero: the largest output)."""
    info = np.iinfo(dtype)
    v = np.maximum(as_int64(x) - p.input_zero_point, 0)
    m, s = inv_sqrt_multiplier_exp(v)
    data = multiply_by_quantized_multiplier(1, m, s + 20)
    y = multiply_by_quantized_multiplier(data, p.multiplier, p.shift - 20) + p.output_zero_point
    out = np.where(v == 0, int(info.max), clamp(y, int(info.min), int(info.max)))
    return out.astype(dtype)
