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
from nsconv.quant.params import AddParams, FcParams, MulParams, RequantizeParams

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
