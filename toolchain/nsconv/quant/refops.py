# SPDX-License-Identifier: Apache-2.0
"""The int8 ops of TFLM's Eval functions, run in numpy from the parameters of
nsconv.quant.params: the layer-by-layer reference that tells a wrong parameter from a wrong kernel,
and the oracle the C kernel tests compare against (with TFLM itself)."""

from __future__ import annotations

import numpy as np

from nsconv.quant.fixedpoint import (
    INT8_MAX,
    INT8_MIN,
    ArrayLike,
    Int8Array,
    as_int64,
    clamp,
    multiply_by_quantized_multiplier,
    wrap_int32,
)
from nsconv.quant.params import (
    AddParams,
    ConvGeometry,
    FcParams,
    MeanParams,
    MulParams,
    RequantizeParams,
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
