# SPDX-License-Identifier: Apache-2.0
"""int16-activation kernels (16x8 CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED; int16 ADD, SUB,
MUL, LOGISTIC, TANH, LEAKY_RELU, MEAN, RSQRT, QUANTIZE int8 <-> int16) and their numpy reference
ops against TFLM, value for value.

The one-op models come from the real TFLite converter in its 16x8 mode
(EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8: int16 activations with zero point
0, int8 weights, int64 biases), as GTCRN's mixed core uses them (issue 14); LEAKY_RELU and RSQRT
also in int8. Unary int16 ops are swept over all 65536 inputs. QUANTIZE between int8 and int16 is
made from a converted one-input model by rewriting the op and tensor types in the flatbuffer.
The C kernels run in tests/kernel_harness/conv_harness.c (host: tests/test_kernels_s16.py; the
boards: tests/test_kernels_conv_arm.py).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping
from dataclasses import astuple, dataclass

import flatbuffers
import numpy as np
import oneop
import pytest
import tensorflow as tf
from conv_checks import (
    CONV_CASES,
    NSN_OK,
    ConvCase,
    ConvHarness,
    _i32,
    _keras_layer,
    conv_header,
    conv_setup,
    with_dilation,
)
from kernel_checks import assert_same, assert_varied, random_scales
from nsconv.quant import params, refops
from nsconv.quant.fixedpoint import INT32_MAX
from tensorflow.lite.python import schema_py_generated as schema
from tflite_micro.python.tflite_micro import runtime

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)


def convert16(model: tf.keras.Model, samples: list[dict]) -> oneop.OneOp:
    """16x8 post-training quantization, int16 model inputs and outputs."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
    ]
    converter.inference_input_type = tf.int16
    converter.inference_output_type = tf.int16
    converter.representative_dataset = lambda: iter(samples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return oneop.parse(converter.convert())


class Tflm:
    """TFLM holding one model; outputs keep the model's output type. Answers are remembered
    by model and input bytes for the session (oneop.remembered: the host and each board ask
    the same questions)."""

    def __init__(self, model: oneop.OneOp) -> None:
        self._model = model
        self._digest = hashlib.sha256(model.flatbuffer).digest()
        self._interpreter = None
        by_index = {t.index: t for t in model.inputs if t is not None}
        self._inputs = [by_index[i] for i in model.model_inputs]

    def _invoke(self, inputs: list[np.ndarray]) -> np.ndarray:
        if self._interpreter is None:
            model = self._model
            shapes = [t.shape for t in (*model.inputs, model.output) if t is not None]
            arena = 4 * sum(int(np.prod(s)) * 8 for s in shapes) + len(model.flatbuffer) + 65536
            self._interpreter = runtime.Interpreter.from_bytes(
                model.flatbuffer, arena_size=arena,
                intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
        for position, data in enumerate(inputs):
            self._interpreter.set_input(data, position)
        self._interpreter.invoke()
        return np.asarray(self._interpreter.get_output(0)).reshape(-1)

    def __call__(self, feeds: Mapping[int, np.ndarray], dtype: type = np.int16) -> np.ndarray:
        inputs = [np.asarray(feeds[t.index]).astype(dtype).reshape(t.shape) for t in self._inputs]
        return oneop.remembered(oneop.answer_key(self._digest, inputs),
                                lambda: self._invoke(inputs))


def _samples(rng: np.random.Generator, shapes: Mapping[str, tuple], lo=-1.0, hi=1.0, n=24):
    return [{k: rng.uniform(lo, hi, (1, *s)).astype(np.float32) for k, s in shapes.items()}
            for _ in range(n)]


# --------------------------------------------------------------------------------------------
# Harness records (tests/kernel_harness/conv_harness.c)
# --------------------------------------------------------------------------------------------

OP_CONV16, OP_DEPTHWISE16, OP_FC16, OP_ADD16, OP_SUB16, OP_MUL16, OP_UNARY = 6, 7, 8, 9, 10, 11, 12
UNARY = {"logistic": 0, "tanh": 1, "rsqrt": 2, "leaky8": 3, "leaky16": 4, "s8_s16": 5,
         "s16_s8": 6, "s16_s16": 7, "mean16": 8}


def conv16_record(op: int, p: params.FcParams, g, x: np.ndarray, w: np.ndarray,
                  bias: np.ndarray | None, ctx: int = 0) -> bytes:
    body = _i32(op, ctx) + conv_header(p, g) + _i32(int(bias is not None))
    body += _i32(*p.multipliers) + _i32(*p.shifts)
    if bias is not None:
        body += np.asarray(bias, dtype="<i8").tobytes()
    w = np.ascontiguousarray(w, np.int8)
    return body + _i32(w.size) + w.tobytes() + np.ascontiguousarray(x, "<i2").tobytes()


def fc16_record(p: params.FcParams, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None) -> bytes:
    x = np.atleast_2d(x)
    out_f, in_f = w.shape
    body = _i32(OP_FC16, p.input_offset, p.output_offset, p.activation_min, p.activation_max,
                in_f, out_f, int(bias is not None), len(x))
    body += _i32(*p.multipliers) + _i32(*p.shifts)
    if bias is not None:
        body += np.asarray(bias, dtype="<i8").tobytes()
    return body + np.ascontiguousarray(w, np.int8).tobytes() + np.ascontiguousarray(x, "<i2").tobytes()


def binary16_record(op: str, p, x1: np.ndarray, x2: np.ndarray) -> bytes:
    code = {"add": OP_ADD16, "sub": OP_SUB16, "mul": OP_MUL16}[op]
    return (_i32(code, *astuple(p), x1.size, x2.size) + np.asarray(x1, "<i2").tobytes()
            + np.asarray(x2, "<i2").tobytes())


def unary_record(kind: str, p, x: np.ndarray, extra: tuple[int, ...] = ()) -> bytes:
    fields = (*astuple(p)[: 4 if kind == "mean16" else None], *extra)
    fields = fields + (0,) * (6 - len(fields))
    width = "<i1" if kind in ("leaky8", "s8_s16") else "<i2"
    return _i32(OP_UNARY, UNARY[kind], *fields, x.size) + np.asarray(x, width).tobytes()


def c_outputs(harness: ConvHarness | None, records: list[bytes]) -> list[np.ndarray] | None:
    """The harness's outputs (asserting NSN_OK), or None without a harness."""
    if harness is None:
        return None
    replies = harness.run(records)
    assert all(r.status == NSN_OK for r in replies), [r.status for r in replies]
    return [r.values for r in replies]


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------

CONV16_CASES = {name: CONV_CASES[name] for name in (
    "gtcrn_enc_9x129_k1x5_s2", "gtcrn_pw_24_to_16", "gtcrn_pw_16_to_8", "gtcrn_dec_16x133_k1x5_to_2",
    "odd_3x7x5_k3x3_s2_same_relu", "k2x3_s1x2_valid_no_bias", "g3_6_to_9_k1x3_same",
    "gtcrn_dw_d1", "gtcrn_dw_d2", "gtcrn_dw_d5", "dw_same_s2_relu_7ch",
)}
FC16_CASES = {"gru_16_to_48": (16, 48, None), "in_24_to_32_relu": (24, 32, "relu"),
              "odd_7_to_3": (7, 3, None)}
BINARY16 = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b}


def convert_conv16(rng: np.random.Generator, c: ConvCase) -> oneop.OneOp:
    h, w, ch = c.input_hwc
    eff_h = h - (c.kernel[0] - 1) * (c.dilation_h - 1)
    x = tf.keras.Input(shape=(eff_h, w, ch), name="x")
    layer = _keras_layer(c)
    y = layer(x)
    if c.activation == "relu":
        y = tf.keras.layers.ReLU()(y)
    wts = [rng.normal(0.0, 0.3, wt.shape) * (10.0 ** rng.uniform(-1, 0, wt.shape[-1]))
           if wt.ndim > 1 else rng.normal(0.1, 0.3, wt.shape) for wt in layer.get_weights()]
    layer.set_weights([wt.astype(np.float32) for wt in wts])
    model = convert16(tf.keras.Model(x, y), _samples(rng, {"x": (eff_h, w, ch)}))
    return with_dilation(model, c.dilation_h, h) if c.dilation_h != 1 else model


def convert_fc16(rng: np.random.Generator, n_in: int, n_out: int, act) -> oneop.OneOp:
    x = tf.keras.Input(shape=(n_in,), name="x")
    dense = tf.keras.layers.Dense(n_out, activation=act)
    model = tf.keras.Model(x, dense(x))
    dense.set_weights([(rng.normal(0, 1 / np.sqrt(n_in), (n_in, n_out)) *
                        10.0 ** rng.uniform(-1, 0, n_out)).astype(np.float32),
                       rng.normal(0, 0.3, n_out).astype(np.float32)])
    return convert16(model, _samples(rng, {"x": (n_in,)}, -2.0, 2.0))


def convert_binary16(rng: np.random.Generator, op: str, n: int, n2: int) -> oneop.OneOp:
    a = tf.keras.Input(shape=(n,), name="a")
    b = tf.keras.Input(shape=(n2,), name="b")
    model = tf.keras.Model([a, b], BINARY16[op](a, b))
    return convert16(model, _samples(rng, {"a": (n,), "b": (n2,)}, -2.0, 2.0))


class _Fn(tf.keras.layers.Layer):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def call(self, x):
        return self.fn(x)


def convert_unary(rng: np.random.Generator, fn, lo: float, hi: float, int16: bool,
                  n: int = 4096) -> oneop.OneOp:
    x = tf.keras.Input(shape=(n,), name="x")
    model = tf.keras.Model(x, _Fn(fn)(x))
    samples = _samples(rng, {"x": (n,)}, lo, hi, n=8)
    return convert16(model, samples) if int16 else oneop.convert(model, lambda: iter(samples))


def retype(model: oneop.OneOp, opcode: int | None, in_type: int, out_type: int,
           in_q: tuple[float, int], out_q: tuple[float, int]) -> oneop.OneOp:
    """The one-input model with its op (QUANTIZE when opcode is given), tensor types and
    quantizations rewritten."""
    m = schema.ModelT.InitFromPackedBuf(model.flatbuffer, 0)
    sg = m.subgraphs[0]
    op = sg.operators[0]
    if opcode is not None:
        code = m.operatorCodes[op.opcodeIndex]
        code.builtinCode = code.deprecatedBuiltinCode = opcode
        code.version = 1
        op.builtinOptionsType = schema.BuiltinOptions.NONE
        op.builtinOptions = None
    for idx, ty, (s, z) in ((op.inputs[0], in_type, in_q), (op.outputs[0], out_type, out_q)):
        t = sg.tensors[idx]
        t.type = ty
        t.quantization.scale = [float(np.float32(s))]
        t.quantization.zeroPoint = [int(z)]
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return oneop.parse(bytes(builder.Output()))


@dataclass
class Models:
    conv: dict
    fc: dict
    binary: dict
    logistic: oneop.OneOp
    tanh: oneop.OneOp
    leaky: dict
    mean: oneop.OneOp
    rsqrt: dict


@pytest.fixture(scope="module")
def s16_models() -> Models:
    return _s16_models()


@oneop.shared
def _s16_models() -> Models:
    rng = np.random.default_rng(1616)

    class _Mean(tf.keras.layers.Layer):
        def call(self, x):
            return tf.reduce_mean(x, axis=2)

    xm = tf.keras.Input(shape=(1, 33, 16), name="x")
    mean = convert16(tf.keras.Model(xm, _Mean()(xm)), _samples(rng, {"x": (1, 33, 16)}))
    return Models(
        conv={k: convert_conv16(rng, c) for k, c in CONV16_CASES.items()},
        fc={k: convert_fc16(rng, *v) for k, v in FC16_CASES.items()},
        binary={(op, n): convert_binary16(rng, op, n, n2) for op in BINARY16
                for n, n2 in ((33, 33), (16, 1), (1, 7))},
        logistic=convert_unary(rng, tf.sigmoid, -8.0, 8.0, True),
        tanh=convert_unary(rng, tf.tanh, -4.0, 4.0, True),
        leaky={(a, i16): convert_unary(rng, lambda v, a=a: tf.nn.leaky_relu(v, alpha=a),
                                      -3.0, 2.0, i16)
               for a in (0.25, -0.6) for i16 in (False, True)},
        mean=mean,
        rsqrt={i16: convert_unary(rng, tf.math.rsqrt, 0.01, 4.0, i16) for i16 in (False, True)},
    )


# --------------------------------------------------------------------------------------------
# refops against TFLM
# --------------------------------------------------------------------------------------------


def test_conv16_match_tflm(conv_harness: ConvHarness, s16_models: Models) -> None:
    """16x8 CONV_2D / DEPTHWISE_CONV_2D: refops and the C kernels against TFLM."""
    for name, model in s16_models.conv.items():
        x, w = model.inputs[0], model.inputs[1]
        b = model.inputs[2] if len(model.inputs) > 2 else None
        _, g = conv_setup(model)
        assert b is None or b.data.dtype == np.int64, "16x8 biases are int64"
        p = params.conv_params_s16(x.scale, w.scales, model.output.scale, g.output_c,
                                   model.activation)
        ref = refops.depthwise_conv_s16 if model.opcode == "DEPTHWISE_CONV_2D" else refops.conv_s16
        tflm = Tflm(model)
        rng = np.random.default_rng(len(name))
        vectors = rng.integers(-32768, 32768, (4, *x.shape[1:]))
        vectors[0] = 32767
        bias = None if b is None else b.data
        expected = [tflm({x.index: v}) for v in vectors]
        op = OP_DEPTHWISE16 if model.opcode == "DEPTHWISE_CONV_2D" else OP_CONV16
        got = c_outputs(conv_harness, [conv16_record(op, p, g, v, w.data, bias) for v in vectors])
        for k, v in enumerate(vectors):
            assert_same(expected[k], ref(p, g, v, w.data, bias), f"refops 16x8 {name}")
            assert_same(expected[k], got[k], f"C 16x8 {name}")


def fc16_setup(model: oneop.OneOp) -> tuple[params.FcParams, np.ndarray, np.ndarray | None]:
    x, w = model.inputs[0], model.inputs[1]
    b = model.inputs[2] if len(model.inputs) > 2 and model.inputs[2] is not None else None
    p = params.conv_params_s16(x.scale, w.scales, model.output.scale, w.shape[0],
                               model.activation)
    return p, w.data, None if b is None else b.data


def test_fc16_match_tflm(conv_harness: ConvHarness, s16_models: Models) -> None:
    for name, model in s16_models.fc.items():
        x = model.inputs[0]
        p, w, b = fc16_setup(model)
        tflm = Tflm(model)
        rng = np.random.default_rng(len(name))
        vectors = rng.integers(-32768, 32768, (6, x.shape[-1]))
        expected = np.stack([tflm({x.index: v}) for v in vectors])
        assert_same(expected, refops.fc_s16(p, vectors, w, b), f"refops fc16 {name}")
        assert_same(expected, c_outputs(conv_harness, [fc16_record(p, vectors, w, b)])[0],
                    f"C fc16 {name}")


def binary16_params(op: str, model: oneop.OneOp):
    a, b = model.inputs
    build = {"add": params.add_params_s16, "sub": params.add_params_s16,
             "mul": params.mul_params_s16}[op]
    return build(a.scale, a.zero_point, b.scale, b.zero_point, model.output.scale,
                 model.output.zero_point, model.activation)


BINARY16_REF = {"add": refops.add_s16, "sub": refops.sub_s16, "mul": refops.mul_s16}


def test_binary16_match_tflm(conv_harness: ConvHarness, s16_models: Models) -> None:
    for (op, n), model in s16_models.binary.items():
        a, b = model.inputs
        p = binary16_params(op, model)
        tflm = Tflm(model)
        rng = np.random.default_rng(n)
        runs = [(rng.integers(-32768, 32768, a.shape[-1]), rng.integers(-32768, 32768, b.shape[-1]))
                for _ in range(4)]
        got = c_outputs(conv_harness, [binary16_record(op, p, x1, x2) for x1, x2 in runs])
        for k, (x1, x2) in enumerate(runs):
            expected = tflm({a.index: x1, b.index: x2})
            assert_same(expected, BINARY16_REF[op](p, x1, x2), f"refops {op}16 {n}")
            assert_same(expected, got[k], f"C {op}16 {n}")


def unary16_models(s16_models: Models, which: str, count: int, seed: int):
    """(model, params) under random input scales (the output stays 2**-15)."""
    base = getattr(s16_models, which)
    x = base.inputs[0]
    rng = np.random.default_rng(seed)
    shifts = (0,) if which == "logistic" else (0, 1)
    scales = random_scales(rng, 2e-5, 2e-3, count) + [2.0 ** -12, 2.0 ** -11]
    for s in scales:
        model = oneop.with_quantization(base, {x.index: (s, 0)})
        yield model, params.unary_params_s16(s, shifts)


@pytest.mark.parametrize("which", ["logistic", "tanh"])
def test_sigmoid_tanh16_match_tflm(conv_harness: ConvHarness, s16_models: Models,
                                   which: str) -> None:
    """All 65536 inputs under random input scales and the power-of-two ones."""
    ref = refops.logistic_s16 if which == "logistic" else refops.tanh_s16
    pots = 0
    cases = list(unary16_models(s16_models, which, 6, 3))
    got = c_outputs(conv_harness, [unary_record(which, p, ALL_INT16) for _, p in cases])
    for k, (model, p) in enumerate(cases):
        x = model.inputs[0]
        tflm = Tflm(model)
        out = np.concatenate([tflm({x.index: c}) for c in ALL_INT16.reshape(-1, x.shape[-1])])
        assert_same(out, ref(p, ALL_INT16), f"refops {which}16 scale {x.scale} {p}")
        if got is not None:
            assert_same(out, got[k], f"C {which}16 scale {x.scale} {p}")
        pots += p.input_multiplier == 0
    assert pots >= 1, "the power-of-two path was not exercised"


@pytest.mark.parametrize("int16", [False, True], ids=["int8", "int16"])
def test_leaky_relu_match_tflm(conv_harness: ConvHarness, s16_models: Models, int16: bool) -> None:
    dtype = np.int16 if int16 else np.int8
    values = ALL_INT16 if int16 else np.arange(-128, 128)
    for (alpha, i16), model in s16_models.leaky.items():
        if i16 != int16:
            continue
        x = model.inputs[0]
        assert model.opcode == "LEAKY_RELU"
        p = params.leaky_relu_params(x.scale, x.zero_point, alpha, model.output.scale,
                                     model.output.zero_point)
        tflm = Tflm(model)
        n = x.shape[-1]
        vals = np.resize(values, (len(values) + n - 1) // n * n)
        out = np.concatenate([tflm({x.index: c}, dtype) for c in vals.reshape(-1, n)])
        assert_same(out, refops.leaky_relu(p, vals, dtype), f"refops leaky alpha {alpha}")
        got = c_outputs(conv_harness, [unary_record("leaky16" if int16 else "leaky8", p, vals)])
        assert_same(out, got[0], f"C leaky alpha {alpha}")


def test_mean16_match_tflm(conv_harness: ConvHarness, s16_models: Models) -> None:
    model = s16_models.mean
    x = model.inputs[0]
    p = params.mean_params(x.scale, x.zero_point, model.output.scale, model.output.zero_point, 33)
    tflm = Tflm(model)
    vectors = np.random.default_rng(4).integers(-32768, 32768, (6, 1, 33, 16))
    vectors[0] = -32768
    got = c_outputs(conv_harness, [unary_record("mean16", p, v.ravel(), (1, 16)) for v in vectors])
    for k, v in enumerate(vectors):
        expected = tflm({x.index: v})
        assert_same(expected, refops.mean_s16(p, v.reshape(1, 33, 16)), "refops mean16")
        assert_same(expected, got[k], "C mean16")


@pytest.mark.parametrize("int16", [False, True], ids=["int8", "int16"])
def test_rsqrt_match_tflm(conv_harness: ConvHarness, s16_models: Models, int16: bool) -> None:
    model = s16_models.rsqrt[int16]
    assert model.opcode == "RSQRT"
    x = model.inputs[0]
    dtype = np.int16 if int16 else np.int8
    p = params.rsqrt_params(x.scale, x.zero_point, model.output.scale, model.output.zero_point)
    lo = x.zero_point  # RSQRT is defined from the zero point up
    values = np.arange(lo, 32768 if int16 else 128)
    n = x.shape[-1]
    values = np.resize(values, (len(values) + n - 1) // n * n)
    tflm = Tflm(model)
    out = np.concatenate([tflm({x.index: c}, dtype) for c in values.reshape(-1, n)])
    assert_same(out, refops.rsqrt(p, values, dtype), "refops rsqrt")
    assert_varied(out, "rsqrt outputs")
    if int16:
        assert_same(out, c_outputs(conv_harness, [unary_record("rsqrt", p, values)])[0], "C rsqrt")


QUANTIZE_TYPES = {"s8_s16": (schema.TensorType.INT8, schema.TensorType.INT16),
                  "s16_s8": (schema.TensorType.INT16, schema.TensorType.INT8),
                  "s16_s16": (schema.TensorType.INT16, schema.TensorType.INT16)}


@pytest.mark.parametrize("kind", QUANTIZE_TYPES)
def test_quantize_match_tflm(conv_harness: ConvHarness, s16_models: Models, kind: str) -> None:
    base = s16_models.rsqrt[False]
    tin, tout = QUANTIZE_TYPES[kind]
    rng = np.random.default_rng(len(kind))
    din = np.int16 if tin == schema.TensorType.INT16 else np.int8
    dout = np.int16 if tout == schema.TensorType.INT16 else np.int8
    values = ALL_INT16 if din == np.int16 else np.arange(-128, 128)
    for _ in range(5):
        s_in, s_out = random_scales(rng, 1e-4, 1e-1, 2)
        zin = 0 if din == np.int16 else int(rng.integers(-128, 128))
        zout = 0 if dout == np.int16 else int(rng.integers(-128, 128))
        model = retype(base, schema.BuiltinOperator.QUANTIZE, tin, tout, (s_in, zin), (s_out, zout))
        p = params.requantize_params(s_in, zin, s_out, zout)
        x = model.inputs[0]
        n = x.shape[-1]
        vals = np.resize(values, (len(values) + n - 1) // n * n)
        tflm = Tflm(model)
        out = np.concatenate([tflm({x.index: c}, din) for c in vals.reshape(-1, n)])
        assert_same(out, refops.requantize(p, vals, dout), f"refops quantize {kind}")
        assert_same(out, c_outputs(conv_harness, [unary_record(kind, p, vals)])[0], f"C {kind}")


# --------------------------------------------------------------------------------------------
# The optimized int16 rescaling (nsn_rescale16: DSP SMLAWB, MVE lanes) at its bounds
# --------------------------------------------------------------------------------------------

# (multiplier, shift, output offset): multipliers 2^30 (ties on every step), 2^31 - 1, 0 and
# GTCRN's; right shifts 16 (the DSP path's last) and 17, left shifts 14 and 15; offsets that put
# the folded constant just inside and just outside its bound (shift -8 / -9 with -128)
REQ16_EXTREMES = {
    "s16_s8": [(1 << 30, -7, -85), (INT32_MAX, -7, 127), (1779721845, -16, -128),
               (1779721845, -17, 5), (1 << 30, -1, 0), (1 << 30, 0, -128), (1415457837, -20, 100),
               (0, -3, 7), (1 << 30, -8, -128), (INT32_MAX, -9, -128), (1 << 30, 14, 0),
               (1 << 30, 15, 3)],
    "s16_s16": [(1416574958, 0, 0), (1 << 30, -16, 0), (INT32_MAX, -17, 0), (1 << 30, 14, 0),
                (1 << 30, 15, 0), (1295344838, -1, 300), (1 << 30, -15, -65536),
                (INT32_MAX, 1, 65536), (1 << 30, -1, -2)],
}


@pytest.mark.parametrize("kind", REQ16_EXTREMES)
def test_requantize16_extremes_match_refops(conv_harness: ConvHarness, kind: str) -> None:
    """QUANTIZE from int16 over all 65536 inputs at the bounds of the optimized paths, against
    refops (held equal to TFLM by test_quantize_match_tflm)."""
    dout = np.int8 if kind == "s16_s8" else np.int16
    ps = [params.RequantizeParams(0, zo, m, s) for m, s, zo in REQ16_EXTREMES[kind]]
    xs = [ALL_INT16] * len(ps) + [ALL_INT16[::-1][:7], ALL_INT16[1:]]  # odd sizes: the tail
    ps += ps[:2]
    got = c_outputs(conv_harness, [unary_record(kind, p, x) for p, x in zip(ps, xs, strict=True)])
    for p, x, out in zip(ps, xs, got, strict=True):
        assert_same(refops.requantize(p, x, dout), out, f"C {kind} {p} size {x.size}")


# (identity multiplier, shift, alpha multiplier, shift, output zero point, input zero point):
# GTCRN's two, left shift 14 / 15, right shift 16 / 17, a negative and a zero alpha, offsets
LEAKY16_EXTREMES = [
    (1754100565, 3, 1734852234, -2, 0, 0), (1969297284, 2, 1073741852, 1, 0, 0),
    (1 << 30, 14, INT32_MAX, -16, 0, 0), (INT32_MAX, 15, 1 << 30, -17, 0, 0),
    (1 << 30, -16, -1288490189, -1, 0, 0), (1 << 30, 0, 0, 0, 1000, 0),
    (1 << 30, -1, 1 << 30, -3, -32768, 0), (1 << 30, 1, 1 << 30, -3, 5, 7),
]


def test_leaky16_extremes_match_refops(conv_harness: ConvHarness) -> None:
    """int16 LEAKY_RELU over all 65536 inputs at the bounds of the optimized paths."""
    ps = [params.LeakyReluParams(zi, zo, ma, sa, mi, si)
          for mi, si, ma, sa, zo, zi in LEAKY16_EXTREMES]
    xs = [ALL_INT16] * len(ps) + [ALL_INT16[::-1][:7], ALL_INT16[1:]]  # odd sizes: the tail
    ps += ps[:2]
    got = c_outputs(conv_harness, [unary_record("leaky16", p, x) for p, x in zip(ps, xs, strict=True)])
    for p, x, out in zip(ps, xs, got, strict=True):
        assert_same(refops.leaky_relu(p, x, np.int16), out, f"C leaky16 {p} size {x.size}")


# --------------------------------------------------------------------------------------------
# The optimized 16x8 CONV_2D paths at their bounds (DSP: weights widened once and one pixel
# against four channels, the 32-bit requantization SMMULR(acc + bias, rm * 2^(32 - t)); the
# 4-pixel blocks for few pixels)
# --------------------------------------------------------------------------------------------

# (input_hwc, output_c, kernel, stride, padding, groups)
CONV16_BOUND_SHAPES = [
    ((1, 129, 9), 16, (1, 5), (1, 2), "same", 1),   # GTCRN's first conv
    ((1, 65, 8), 8, (1, 5), (1, 2), "same", 1),     # GTCRN's second and third
    ((1, 3, 192), 64, (1, 1), (1, 1), "valid", 1),  # the ERB FC as a 1x1 conv over 3 rows
    ((1, 33, 16), 6, (1, 1), (1, 1), "valid", 1),   # a block of 4 and one of 2 channels
    ((1, 13, 9), 7, (1, 5), (1, 1), "valid", 1),    # odd patch ending at the input's end
    ((1, 12, 6), 6, (1, 3), (1, 1), "same", 2),     # groups: gathered patches
    ((2, 9, 5), 4, (2, 3), (1, 2), "same", 1),      # two kernel rows: gathered patches
]


def _conv16_bound_cases(rng: np.random.Generator):
    """(label, params, geometry, x, w, bias): shifts at t = 15 - shift = 15, 16, 31, 32,
    biases at the 32-bit path's bound (|bias| + patch * 2^22 < 2^31) on both sides, the
    largest sums (weights -128 against -32768), activation ranges inside int16."""
    for hwc, out_c, kernel, stride, padding, groups in CONV16_BOUND_SHAPES:
        g = params.conv_geometry(hwc, kernel, out_c, padding=padding, stride=stride,
                                 groups=groups)
        patch = kernel[0] * kernel[1] * hwc[2] // groups
        wshape = (out_c, *kernel, hwc[2] // groups)
        edge = (1 << 31) - (patch << 22)
        variants = [
            ("gtcrn", rng.integers(-13, -7, out_c), rng.integers(-(1 << 20), 1 << 20, out_c),
             (-32768, 32767), "random"),
            ("t16_t31", np.resize([-1, -16], out_c), np.resize([edge - 1, 1 - edge], out_c),
             (-32768, 32767), "max"),
            ("t15_t32", np.resize([0, -17, -9, -9], out_c), np.zeros(out_c, np.int64),
             (-300, 2000), "random"),
            ("bias_edge", np.full(out_c, -9), np.resize([edge, -edge, 5, 7], out_c),
             (0, 32767), "max"),
        ]
        for label, shifts, bias, (lo, hi), fill in variants:
            mult = rng.integers(1 << 30, INT32_MAX, out_c, endpoint=True)
            mult[0] = 0x7FFF0000  # the reduced multiplier's largest value
            p = params.FcParams(0, 0, lo, hi, tuple(int(m) for m in mult),
                                tuple(int(s) for s in shifts))
            w = rng.integers(-128, 128, wshape).astype(np.int8)
            x = rng.integers(-32768, 32768, hwc).astype(np.int16)
            if fill == "max":
                w[...] = -128
                x[...] = -32768
            yield f"{label} {hwc}->{out_c}", p, g, x, w, np.asarray(bias, np.int64)


def test_conv16_bounds_match_refops(conv_harness: ConvHarness) -> None:
    """16x8 CONV_2D on the bounds of the optimized paths, against refops (held equal to TFLM
    by test_conv16_match_tflm)."""
    cases = list(_conv16_bound_cases(np.random.default_rng(1617)))
    got = c_outputs(conv_harness, [conv16_record(OP_CONV16, *c[1:]) for c in cases])
    for (label, p, g, x, w, b), out in zip(cases, got, strict=True):
        assert_same(refops.conv_s16(p, g, x, w, b), out, f"C conv16 {label}")
