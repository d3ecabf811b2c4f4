# SPDX-License-Identifier: Apache-2.0
"""The convolution kernels (firmware/kernels: nsn_conv_s8, nsn_depthwise_conv_s8, nsn_mean_s8)
and their numpy reference ops against TFLM, value for value.

Each op is converted by the real TFLite converter into a one-op int8 model and run in TFLM, the
oracle; shapes are GTCRN's (issue 14: the encoder's strided and grouped (1, 5) convolutions, the
pointwise convolutions, the decoder's valid (1, 5) convolutions, the depthwise (3, 3)
convolutions over cached frames with time dilations 1, 2 and 5, the MEANs over frequency and
over frequency x channels) plus awkward ones. The converter lowers a dilated depthwise
convolution into SPACE_TO_BATCH_ND around it, so the dilated models here are converted
undilated and given their dilation and input height in the flatbuffer; TFLM computes the rest.
The kernel parameters come from nsconv.quant.params; the kernels run in
tests/kernel_harness/conv_harness.c (ASan/UBSan on the host: tests/test_kernels_conv.py; each
board in QEMU: tests/test_kernels_conv_arm.py, each module giving its own `conv_harness`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import flatbuffers
import numpy as np
import oneop
import pytest
import tensorflow as tf
from kernel_checks import assert_same, assert_varied, random_scales
from nsconv.quant import params, refops
from nsconv.quant.params import ConvGeometry
from nsconv.resources import KERNEL_DIR
from tensorflow.lite.python import schema_py_generated as schema

INCLUDE = KERNEL_DIR / "include"
SOURCES = sorted((KERNEL_DIR / "src").glob("*.c"))
CONV_HARNESS = Path(__file__).resolve().parent / "kernel_harness" / "conv_harness.c"

OP_CONV, OP_DEPTHWISE, OP_MEAN, OP_CONV_BUFFER, OP_PATH = 1, 2, 3, 4, 5
OP_CONV_ACT, OP_DEPTHWISE_ACT = 13, 14  # with nsn_conv_params.activation (a 256-entry table)
CTX_EXACT, CTX_NULL, CTX_SHORT, CTX_MISALIGNED = 0, 1, 2, 3
NSN_OK, NSN_ARG_ERROR, NSN_SCRATCH_ERROR = 0, -1, -2
_WIDTHS = {1: "<i1", 2: "<i2", 4: "<i4", 8: "<i8"}


def _i32(*values: int) -> bytes:
    return np.asarray(values, dtype="<i4").tobytes()


@dataclass(frozen=True)
class Reply:
    status: int
    values: np.ndarray


def parse_replies(out: bytes, n: int) -> list[Reply]:
    replies, pos = [], 0
    for _ in range(n):
        status, count, width = np.frombuffer(out, dtype="<i4", count=3, offset=pos)
        end = pos + 12 + int(count) * int(width)
        values = np.frombuffer(out[pos + 12 : end], dtype=_WIDTHS[int(width)])
        replies.append(Reply(int(status), values))
        pos = end
    assert pos == len(out), "the harness wrote more than the records asked for"
    return replies


class ConvHarness:
    """conv_harness on the host (one process per batch of records)."""

    def __init__(self, exe: Path) -> None:
        self.exe = exe

    def run(self, records: Sequence[bytes]) -> list[Reply]:
        out = subprocess.run(
            [str(self.exe)], input=b"".join(records), capture_output=True, check=True
        ).stdout
        return parse_replies(out, len(records))

    def path(self) -> str:
        return bytes(self.run([_i32(OP_PATH)])[0].values.view(np.uint8)).decode()


def conv_header(p: params.FcParams, g: ConvGeometry) -> bytes:
    return _i32(
        p.input_offset, p.output_offset, g.stride_h, g.stride_w, g.pad_h, g.pad_w,
        g.dilation_h, g.dilation_w, p.activation_min, p.activation_max,
        g.input_h, g.input_w, g.input_c, g.filter_h, g.filter_w,
        g.output_h, g.output_w, g.output_c, g.groups,
    )


def conv_record(
    op: int,
    p: params.FcParams,
    g: ConvGeometry,
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    ctx: int = CTX_EXACT,
) -> bytes:
    body = _i32(op, ctx) + conv_header(p, g) + _i32(int(bias is not None))
    body += _i32(*p.multipliers) + _i32(*p.shifts)
    if bias is not None:
        body += np.asarray(bias, dtype="<i4").tobytes()
    w = np.ascontiguousarray(w, np.int8)
    return body + _i32(w.size) + w.tobytes() + np.ascontiguousarray(x, np.int8).tobytes()


def mean_record(p: params.MeanParams, outer: int, inner: int, x: np.ndarray) -> bytes:
    return (
        _i32(OP_MEAN, p.input_offset, p.output_offset, p.multiplier, p.shift, outer, p.count, inner)
        + np.ascontiguousarray(x, np.int8).tobytes()
    )


# --------------------------------------------------------------------------------------------
# One-op models
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvCase:
    """A CONV_2D (groups) or DEPTHWISE_CONV_2D (depth multiplier) one-op model."""

    input_hwc: tuple[int, int, int]
    output_c: int
    kernel: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: str = "valid"
    groups: int = 1
    dilation_h: int = 1  # set in the flatbuffer after conversion (see the module docstring)
    activation: str | None = None
    use_bias: bool = True
    depthwise: bool = False
    input_range: tuple[float, float] = (-1.0, 1.0)


CONV_CASES = {
    # GTCRN encoder: SFE features (9) -> 16, (1, 5) stride (1, 2) over 129 bands; grouped 16 -> 16
    "gtcrn_enc_9x129_k1x5_s2": ConvCase((1, 129, 9), 16, (1, 5), (1, 2), "same"),
    "gtcrn_enc_g2_16x65_k1x5_s2": ConvCase((1, 65, 16), 16, (1, 5), (1, 2), "same", groups=2),
    # GTConvBlock pointwise convolutions over 33 bands
    "gtcrn_pw_24_to_16": ConvCase((1, 33, 24), 16, (1, 1), input_range=(0.0, 2.0)),
    "gtcrn_pw_16_to_8": ConvCase((1, 33, 16), 8, (1, 1)),
    # GTCRN decoder: the ConvTransposes as valid (1, 5) convolutions
    "gtcrn_dec_g2_16x69_k1x5": ConvCase((1, 69, 16), 16, (1, 5), groups=2),
    "gtcrn_dec_16x133_k1x5_to_2": ConvCase((1, 133, 16), 2, (1, 5), activation="tanh"),
    # awkward: odd sizes, 2-D kernels and strides, same padding, relu, no bias, 3 groups
    "odd_3x7x5_k3x3_s2_same_relu": ConvCase((3, 7, 5), 3, (3, 3), (2, 2), "same", activation="relu"),
    "k2x3_s1x2_valid_no_bias": ConvCase((4, 9, 7), 5, (2, 3), (1, 2), use_bias=False),
    "g3_6_to_9_k1x3_same": ConvCase((2, 11, 6), 9, (1, 3), (1, 1), "same", groups=3),
    "dilated_h2_k3x1": ConvCase((5, 4, 3), 4, (3, 1), dilation_h=2),
    "pointwise_1_to_1": ConvCase((1, 5, 1), 1, (1, 1)),
    # GTCRN depthwise (3, 3) over 2d + 1 cached frames, dilation d in time, 33 bands + padding
    "gtcrn_dw_d1": ConvCase((3, 35, 16), 16, (3, 3), depthwise=True),
    "gtcrn_dw_d2": ConvCase((5, 35, 16), 16, (3, 3), dilation_h=2, depthwise=True),
    "gtcrn_dw_d5": ConvCase((11, 35, 16), 16, (3, 3), dilation_h=5, depthwise=True),
    "dw_same_s2_relu_7ch": ConvCase((5, 9, 7), 7, (3, 3), (2, 2), "same", activation="relu",
                                    depthwise=True),
    "dw_multiplier_2_no_bias": ConvCase((4, 6, 3), 6, (2, 2), use_bias=False, depthwise=True),
}


def _keras_layer(c: ConvCase) -> tf.keras.layers.Layer:
    common = dict(strides=c.strides, padding=c.padding, use_bias=c.use_bias)
    if c.depthwise:
        return tf.keras.layers.DepthwiseConv2D(
            c.kernel, depth_multiplier=c.output_c // c.input_hwc[2], **common)
    return tf.keras.layers.Conv2D(c.output_c, c.kernel, groups=c.groups, **common)


def convert_conv(rng: np.random.Generator, c: ConvCase) -> oneop.OneOp:
    """The case converted without its dilation, then dilated in the flatbuffer."""
    h, w, ch = c.input_hwc
    effective_h = h - (c.kernel[0] - 1) * (c.dilation_h - 1)
    x = tf.keras.Input(shape=(effective_h, w, ch), name="x")
    layer = _keras_layer(c)
    y = layer(x)
    if c.activation is not None:
        y = tf.keras.layers.Activation(c.activation)(y)
    model = tf.keras.Model(x, y)
    weights = []
    for wt in layer.get_weights():
        if wt.ndim > 1:  # channel gains over a decade: varied per-channel scales
            gain = 10.0 ** rng.uniform(-1.0, 0.0, wt.shape[-1])
            fan_in = int(np.prod(wt.shape[:-1])) if not c.depthwise else int(np.prod(wt.shape[:2]))
            weights.append(rng.normal(0.0, 1.0 / np.sqrt(fan_in), wt.shape) * gain)
        else:
            weights.append(rng.normal(0.1, 0.3, wt.shape))
    layer.set_weights([wt.astype(np.float32) for wt in weights])
    samples = [
        {"x": rng.uniform(*c.input_range, (1, effective_h, w, ch)).astype(np.float32)}
        for _ in range(24)
    ]
    if c.activation == "tanh":  # keep the conv alone: tanh is its own op
        model = tf.keras.Model(x, layer(x))
    converted = oneop.convert(model, lambda: iter(samples))
    if c.dilation_h != 1:
        converted = with_dilation(converted, c.dilation_h, h)
    return converted


def with_dilation(model: oneop.OneOp, dilation_h: int, input_h: int) -> oneop.OneOp:
    m = schema.ModelT.InitFromPackedBuf(model.flatbuffer, 0)
    sg = m.subgraphs[0]
    op = sg.operators[0]
    op.builtinOptions.dilationHFactor = dilation_h
    t = sg.tensors[op.inputs[0]]
    t.shape = np.array([1, input_h, *list(t.shape[2:])], dtype=np.int32)
    if t.shapeSignature is not None:
        t.shapeSignature = np.array([-1, input_h, *list(t.shape[2:])], dtype=np.int32)
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return oneop.parse(bytes(builder.Output()))


def _options(model: oneop.OneOp):
    m = schema.ModelT.InitFromPackedBuf(model.flatbuffer, 0)
    return m.subgraphs[0].operators[0].builtinOptions


def conv_setup(model: oneop.OneOp) -> tuple[params.FcParams, ConvGeometry]:
    """The kernel parameters and geometry of a converted CONV_2D / DEPTHWISE_CONV_2D."""
    x, w = model.inputs[0], model.inputs[1]
    o = _options(model)
    out_c = model.output.shape[-1]
    depthwise = model.opcode == "DEPTHWISE_CONV_2D"
    groups = 1 if depthwise else x.shape[-1] // w.shape[-1]
    g = params.conv_geometry(
        x.shape[1:], w.shape[1:3], out_c,
        padding={0: "same", 1: "valid"}[o.padding],
        stride=(o.strideH, o.strideW), dilation=(o.dilationHFactor, o.dilationWFactor),
        groups=groups,
    )
    assert (g.output_h, g.output_w) == model.output.shape[1:3], "geometry differs from TFLite's"
    p = params.conv_params(x.scale, x.zero_point, w.scales, model.output.scale,
                           model.output.zero_point, out_c, model.activation)
    return p, g


@dataclass(frozen=True)
class MeanCase:
    input_shape: tuple[int, ...]
    axes: tuple[int, ...]
    keepdims: bool
    input_range: tuple[float, float] = (-1.0, 1.0)


MEAN_CASES = {
    # GTCRN TRA: mean over frequency of the squared features; DPGRNN layer norm: (freq, channels)
    "gtcrn_freq_33x16": MeanCase((1, 33, 16), (2,), False, (0.0, 1.0)),
    "gtcrn_freq_channels_33x16": MeanCase((1, 33, 16), (2, 3), True),
    "channels_last_5x7": MeanCase((2, 5, 7), (3,), False, (-3.0, 1.0)),
    "height_4x3x2": MeanCase((4, 3, 2), (1,), True),
    "one_element": MeanCase((1, 1, 1), (2,), False),
}


class _Mean(tf.keras.layers.Layer):
    def __init__(self, axes: tuple[int, ...], keepdims: bool) -> None:
        super().__init__()
        self.axes, self.keepdims = list(axes), keepdims

    def call(self, x):
        return tf.reduce_mean(x, axis=self.axes, keepdims=self.keepdims)


def convert_mean(rng: np.random.Generator, c: MeanCase) -> oneop.OneOp:
    x = tf.keras.Input(shape=c.input_shape, name="x")
    model = tf.keras.Model(x, _Mean(c.axes, c.keepdims)(x))
    samples = [{"x": rng.uniform(*c.input_range, (1, *c.input_shape)).astype(np.float32)}
               for _ in range(24)]
    return oneop.convert(model, lambda: iter(samples))


def mean_view(model: oneop.OneOp) -> tuple[int, int, int]:
    """(outer, count, inner) of a MEAN over a contiguous run of axes."""
    shape = model.inputs[0].shape
    axes = sorted(int(a) % len(shape) for a in np.atleast_1d(model.inputs[1].data))
    assert axes == list(range(axes[0], axes[-1] + 1)), "reduced axes not contiguous"
    outer = int(np.prod(shape[: axes[0]]))
    count = int(np.prod(shape[axes[0] : axes[-1] + 1]))
    return outer, count, int(np.prod(shape[axes[-1] + 1 :]))


# --------------------------------------------------------------------------------------------
# Checks (collected by the test modules)
# --------------------------------------------------------------------------------------------


@oneop.shared  # converted once per session, for the host and every board (oneop.shared)
def _conv_models() -> dict[str, oneop.OneOp]:
    rng = np.random.default_rng(1414)
    return {name: convert_conv(rng, c) for name, c in CONV_CASES.items()}


@oneop.shared
def _mean_models() -> dict[str, oneop.OneOp]:
    rng = np.random.default_rng(2828)
    return {name: convert_mean(rng, c) for name, c in MEAN_CASES.items()}


@pytest.fixture(scope="module")
def conv_models() -> dict[str, oneop.OneOp]:
    return dict(_conv_models())


@pytest.fixture(scope="module")
def mean_models() -> dict[str, oneop.OneOp]:
    return dict(_mean_models())


def _conv_vectors(rng: np.random.Generator, shape: Sequence[int], n: int = 6) -> np.ndarray:
    vectors = rng.integers(-128, 128, (n, *shape)).astype(np.int8)
    vectors[0] = 127  # every input at one end: saturation and the largest sums
    vectors[1] = -128
    return vectors


def check_conv(harness: ConvHarness, model: oneop.OneOp, vectors: np.ndarray) -> np.ndarray:
    """TFLM, refops and the C kernel on each input; returns TFLM's outputs."""
    x, w = model.inputs[0], model.inputs[1]
    b = model.inputs[2] if len(model.inputs) > 2 and model.inputs[2] is not None else None
    bias = None if b is None else b.data
    p, g = conv_setup(model)
    depthwise = model.opcode == "DEPTHWISE_CONV_2D"
    tflm = oneop.Tflm(model)
    op = OP_DEPTHWISE if depthwise else OP_CONV
    ref = refops.depthwise_conv_s8 if depthwise else refops.conv_s8
    expected = [tflm({x.index: v}) for v in vectors]
    records = [conv_record(op, p, g, v.reshape(x.shape[1:]), w.data, bias) for v in vectors]
    for v, exp, reply in zip(vectors, expected, harness.run(records), strict=True):
        assert_same(exp, ref(p, g, v.reshape(x.shape[1:]), w.data, bias), f"refops {model.opcode}")
        assert reply.status == NSN_OK
        assert_same(exp, reply.values, f"C {model.opcode}")
    return np.stack(expected)


@pytest.mark.parametrize("name", CONV_CASES)
def test_conv_matches_tflm(
    conv_harness: ConvHarness, conv_models: dict[str, oneop.OneOp], name: str
) -> None:
    model = conv_models[name]
    case = CONV_CASES[name]
    assert model.opcode == ("DEPTHWISE_CONV_2D" if case.depthwise else "CONV_2D")
    w = model.inputs[1]
    if case.output_c > 1:
        assert len(set(w.scales)) > 1, "per-channel weights"
    p, g = conv_setup(model)
    assert (g.groups, g.dilation_h) == ((1 if case.depthwise else case.groups), case.dilation_h)
    rng = np.random.default_rng(len(name))
    out = check_conv(conv_harness, model, _conv_vectors(rng, model.inputs[0].shape[1:]))
    assert_varied(out, f"{name} outputs", max_fraction=0.6)


@pytest.mark.parametrize("name", ["gtcrn_dec_16x133_k1x5_to_2", "gtcrn_pw_16_to_8",
                                  "gtcrn_dec_g2_16x69_k1x5"])
def test_conv_stuffed_matches_tflm(
    conv_harness: ConvHarness, conv_models: dict[str, oneop.OneOp], name: str
) -> None:
    """Zero-stuffed inputs (every other column at the input zero point, as a ConvTranspose
    lowered to a conv sees them; the DSP row path skips those taps), either parity, plus one
    column off the pattern (the dense path again)."""
    model = conv_models[name]
    x = model.inputs[0]
    rng = np.random.default_rng(5 + len(name))
    vectors = _conv_vectors(rng, x.shape[1:], 6)
    for i, v in enumerate(vectors):
        v[:, (i + 1) % 2 :: 2, :] = x.zero_point
    vectors[5][0, 1, 0] = np.int8(x.zero_point + 1 if x.zero_point < 127 else 0)
    out = check_conv(conv_harness, model, vectors)
    assert_varied(out, f"{name} stuffed outputs", max_fraction=0.8)


# Cases reaching every output stage of the kernels with a fused activation table: the DSP row
# path's quads and pairs (wide) and single channels (relu clamp: not wide), its zero-stuffed
# variant, the 4-pixel path (strides, groups, odd sizes, clamp), the depthwise fast 3-row asm
# loop and its C tail, the depthwise quads + single channels, a depth multiplier of 2 (the
# portable loop on DSP/MVE); each with outputs forced to saturate (output scale / 16).
ACT_CASES = ("gtcrn_pw_24_to_16", "gtcrn_dec_16x133_k1x5_to_2", "gtcrn_enc_9x129_k1x5_s2",
             "gtcrn_enc_g2_16x65_k1x5_s2", "odd_3x7x5_k3x3_s2_same_relu", "gtcrn_dw_d2",
             "dw_same_s2_relu_7ch", "dw_multiplier_2_no_bias", "g3_6_to_9_k1x3_same")


def _act_jobs(model: oneop.OneOp, table: np.ndarray, rng: np.random.Generator, stuffed: bool
              ) -> list[tuple[np.ndarray, bytes]]:
    """(TFLM's conv output, record with the table) for a few inputs of one model."""
    x, w = model.inputs[0], model.inputs[1]
    b = model.inputs[2] if len(model.inputs) > 2 and model.inputs[2] is not None else None
    p, g = conv_setup(model)
    op = OP_DEPTHWISE_ACT if model.opcode == "DEPTHWISE_CONV_2D" else OP_CONV_ACT
    tflm = oneop.Tflm(model)
    vectors = _conv_vectors(rng, x.shape[1:], 4)
    if stuffed:  # the DSP row path's sparse variant (every other column at the zero point)
        vectors[3][:, 1::2, :] = x.zero_point
    return [(tflm({x.index: v}), conv_record(op, p, g, v, w.data, None if b is None else b.data)
             + table.tobytes()) for v in vectors]


def test_conv_activation_matches_tflm(
    conv_harness: ConvHarness, conv_models: dict[str, oneop.OneOp]
) -> None:
    """A fused activation (nsn_conv_params.activation): every output is TFLM's conv output
    through the table (a random permutation, so any wrong index shows), on every output stage
    of the path built, outputs at both int8 ends included; one run of the harness."""
    rng = np.random.default_rng(1313)
    table = rng.permutation(256).astype(np.uint8).view(np.int8)  # [i]: output for i - 128
    jobs = []
    for name in ACT_CASES:
        base = conv_models[name]
        y = base.output
        squeezed = oneop.with_quantization(base, {y.index: (y.scale / 16, y.zero_point)})
        for model in (base, squeezed):
            jobs += [(name, *j) for j in _act_jobs(model, table, rng, name == ACT_CASES[1])]
    ends: set[int] = set()
    for (name, exp, _), reply in zip(jobs, conv_harness.run([j[2] for j in jobs]), strict=True):
        assert reply.status == NSN_OK, name
        e = np.asarray(exp).astype(np.int32).ravel()
        assert_same(table[e + 128], reply.values, f"C {name} with an activation table")
        ends |= {int(v) for v in e if v in (-128, 127)}
    assert ends == {-128, 127}, "outputs at both int8 ends"


@pytest.mark.parametrize("name", ["gtcrn_enc_g2_16x65_k1x5_s2", "gtcrn_dw_d5",
                                  "odd_3x7x5_k3x3_s2_same_relu", "gtcrn_pw_16_to_8"])
def test_conv_quantization_sweep(
    conv_harness: ConvHarness, conv_models: dict[str, oneop.OneOp], name: str
) -> None:
    """The same weights under random input, weight and output quantizations (zero points at
    the int8 ends included): many multipliers and offsets through TFLM's own Prepare."""
    base = conv_models[name]
    x, w = base.inputs[0], base.inputs[1]
    rng = np.random.default_rng(7 + len(name))
    for i in range(6):
        (xs,), (ys,) = random_scales(rng, 1e-3, 0.1, 1), random_scales(rng, 1e-3, 1.0, 1)
        ws = random_scales(rng, 1e-4, 0.05, len(w.scales))
        zx, zy = ([-128, 127][i % 2], int(rng.integers(-128, 128))) if i < 2 else rng.integers(-128, 128, 2)
        model = oneop.with_quantization(
            base, {x.index: (xs, int(zx)), base.output.index: (ys, int(zy))}, weight_scales=ws)
        check_conv(conv_harness, model, _conv_vectors(rng, x.shape[1:], 3))


def test_conv_scratch_errors(conv_harness: ConvHarness, conv_models: dict[str, oneop.OneOp]) -> None:
    """Short or misaligned scratch: NSN_SCRATCH_ERROR and no output, on every path; no scratch
    is an error where the path needs some; the exact one gives TFLM's bits."""
    path = conv_harness.path()
    cases = []
    for name in ("gtcrn_enc_9x129_k1x5_s2", "gtcrn_dw_d2"):
        model = conv_models[name]
        x, w, b = model.inputs[:3]
        p, g = conv_setup(model)
        v = np.random.default_rng(3).integers(-128, 128, x.shape[1:]).astype(np.int8)
        op = OP_DEPTHWISE if model.opcode == "DEPTHWISE_CONV_2D" else OP_CONV
        expected = oneop.Tflm(model)({x.index: v})
        for mode in (CTX_EXACT, CTX_NULL, CTX_SHORT, CTX_MISALIGNED):
            needs = path != "reference" and (op == OP_CONV or path == "dsp")  # dw: DSP only
            error = mode in (CTX_SHORT, CTX_MISALIGNED) or (mode == CTX_NULL and needs)
            cases.append((conv_record(op, p, g, v, w.data, b.data, mode), error, expected))
    replies = conv_harness.run([c[0] for c in cases])
    for (_, error, expected), reply in zip(cases, replies, strict=True):
        if error:
            assert reply.status == NSN_SCRATCH_ERROR and reply.values.size == 0
        else:
            assert reply.status == NSN_OK
            assert_same(expected, reply.values, "conv with a good scratch")


def test_conv_bad_arguments(conv_harness: ConvHarness) -> None:
    g = params.conv_geometry((1, 8, 4), (1, 3), 6, padding="same", groups=2)
    p = params.FcParams(0, 0, -128, 127, (1 << 30,) * 6, (-3,) * 6)
    x = np.zeros((1, 8, 4), np.int8)
    w = np.zeros((6, 1, 3, 2), np.int8)
    bad = [
        replace(g, groups=3),  # 4 channels in 3 groups
        replace(g, stride_w=0),
        replace(g, output_w=0),
    ]
    records = [conv_record(OP_CONV, p, b, x, w, None) for b in bad]
    dw = replace(g, input_c=4, output_c=6, groups=1)  # 6 channels from 4: no multiplier
    records.append(conv_record(OP_DEPTHWISE, p, dw, x, np.zeros((1, 1, 3, 6), np.int8), None))
    for reply in conv_harness.run(records):
        assert reply.status == NSN_ARG_ERROR and reply.values.size == 0


def _mean_check(harness: ConvHarness, model: oneop.OneOp, vectors: np.ndarray) -> np.ndarray:
    x = model.inputs[0]
    outer, count, inner = mean_view(model)
    p = params.mean_params(x.scale, x.zero_point, model.output.scale, model.output.zero_point, count)
    tflm = oneop.Tflm(model)
    expected = [tflm({x.index: v}) for v in vectors]
    replies = harness.run([mean_record(p, outer, inner, v) for v in vectors])
    for v, exp, reply in zip(vectors, expected, replies, strict=True):
        assert_same(exp, refops.mean_s8(p, v.reshape(outer, count, inner)).ravel(), "refops.mean_s8")
        assert reply.status == NSN_OK
        assert_same(exp, reply.values, "nsn_mean_s8")
    return np.concatenate(expected)


@pytest.mark.parametrize("name", MEAN_CASES)
def test_mean_matches_tflm(
    conv_harness: ConvHarness, mean_models: dict[str, oneop.OneOp], name: str
) -> None:
    model = mean_models[name]
    assert model.opcode == "MEAN"
    rng = np.random.default_rng(len(name) + 5)
    _mean_check(conv_harness, model, _conv_vectors(rng, model.inputs[0].shape[1:], 8))


def test_mean_shapes_and_extremes_match_refops(conv_harness: ConvHarness) -> None:
    """nsn_mean_s8 against refops.mean_s8 (equal to TFLM above) on the shapes the fast paths
    split differently: contiguous runs with every tail (inner 1), column groups of four with
    remainders (inner 2..17), more than 256 rows (the DSP path's int16 lanes flush), outer > 1,
    and inputs all -128 or all 127 (the largest lane sums) at input offsets 128 and -127."""
    rng = np.random.default_rng(31)
    records, expected, random_fill = [], [], []
    shapes = [(1, c, 1) for c in (1, 3, 4, 5, 7, 8, 528, 1100)]
    shapes += [(1, c, i) for c in (1, 33, 300) for i in (2, 3, 4, 5, 6, 8, 16, 17)]
    shapes += [(3, 7, 5), (2, 33, 8), (2, 529, 1)]
    for k, (outer, count, inner) in enumerate(shapes):
        fill = (-128, 127, None)[k % 3]
        x = (rng.integers(-128, 128, (outer, count, inner)) if fill is None
             else np.full((outer, count, inner), fill)).astype(np.int8)
        # a constant input at its own zero point sums to 0: any lane overflow shows
        zx, zy = ((-128, 0), (127, 0), tuple(int(z) for z in rng.integers(-128, 128, 2)))[k % 3]
        (xs,) = random_scales(rng, 1e-3, 1.0, 1)
        p = params.mean_params(xs, zx, xs * float(rng.uniform(0.05, 2.0)), zy, count)
        records.append(mean_record(p, outer, inner, x))
        expected.append(refops.mean_s8(p, x).ravel())
        if fill is None:
            random_fill.append(expected[-1])
    for exp, reply in zip(expected, conv_harness.run(records), strict=True):
        assert reply.status == NSN_OK
        assert_same(exp, reply.values, "nsn_mean_s8")
    assert_varied(np.concatenate(random_fill), "mean outputs")


def test_mean_quantization_sweep(
    conv_harness: ConvHarness, mean_models: dict[str, oneop.OneOp]
) -> None:
    """Random quantizations, and input and output quantized alike (TFLM versions that take a
    plain integer mean there would differ on these)."""
    rng = np.random.default_rng(99)
    outputs = []
    for name in ("gtcrn_freq_33x16", "gtcrn_freq_channels_33x16", "channels_last_5x7"):
        base = mean_models[name]
        x = base.inputs[0]
        for i in range(8):
            (xs,), (ys,) = random_scales(rng, 1e-3, 1.0, 1), random_scales(rng, 1e-3, 1.0, 1)
            zx, zy = (int(z) for z in rng.integers(-128, 128, 2))
            if i < 3:
                ys, zy = xs, zx
            model = oneop.with_quantization(base, {x.index: (xs, zx), base.output.index: (ys, zy)})
            outputs.append(_mean_check(conv_harness, model, _conv_vectors(rng, x.shape[1:], 3)))
    assert_varied(np.concatenate(outputs), "mean outputs")
