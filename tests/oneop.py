# SPDX-License-Identifier: Apache-2.0
"""One-op int8 TFLite models for the kernel tests, and a TFLM runner for them.

The models come from the real TFLite converter (tiny Keras models, full int8 post-training
quantization), so their scales, zero points, weight layouts and broadcast shapes are those the
nsconv pipeline meets. `with_quantization` then rewrites tensor scales and zero points in the
flatbuffer: TFLM recomputes every multiplier from them at Prepare, which sweeps many quantizations
without a conversion each. `requantize_model` turns a converted unary model into the int8 -> int8
QUANTIZE that the converter only emits inside larger graphs.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import pickle
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import flatbuffers  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from nsconv.quant.params import Activation  # noqa: E402
from tensorflow.lite.python import schema_py_generated as schema  # noqa: E402
from tflite_micro.python.tflite_micro import runtime  # noqa: E402

_OPCODE_NAMES = {
    value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")
}
_NUMPY_TYPES = {
    schema.TensorType.INT8: np.int8,
    schema.TensorType.INT16: np.int16,
    schema.TensorType.INT32: np.int32,
    schema.TensorType.INT64: np.int64,
}

Representative = Callable[[], Iterator[dict[str, np.ndarray]]]
T = TypeVar("T")


@dataclass(frozen=True)
class Tensor:
    """One tensor of a converted model, as TFLM will see it."""

    index: int
    name: str
    shape: tuple[int, ...]
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    data: np.ndarray | None  # contents of a constant tensor, None for activations

    @property
    def scale(self) -> float:
        return self.scales[0]

    @property
    def zero_point(self) -> int:
        return self.zero_points[0]


@dataclass(frozen=True)
class OneOp:
    """A model holding a single operator, parsed from its flatbuffer."""

    flatbuffer: bytes
    opcode: str
    inputs: tuple[Tensor | None, ...]  # in operator order; None for an omitted optional input
    output: Tensor
    activation: Activation
    model_inputs: tuple[int, ...]  # tensor indices, in the order TFLM's set_input numbers them


def _tensor(model: schema.ModelT, subgraph: schema.SubGraphT, index: int) -> Tensor:
    t = subgraph.tensors[index]
    q = t.quantization
    scales = tuple(float(s) for s in q.scale) if q is not None and q.scale is not None else ()
    zps = tuple(int(z) for z in q.zeroPoint) if q is not None and q.zeroPoint is not None else ()
    raw = model.buffers[t.buffer].data
    data = None
    if raw is not None and len(raw) > 0:
        shape = () if t.shape is None else tuple(t.shape)  # a scalar may have no shape field
        data = np.frombuffer(bytes(raw), dtype=_NUMPY_TYPES[t.type]).reshape(shape)
    dims = () if t.shape is None else t.shape
    return Tensor(index, t.name.decode(), tuple(int(d) for d in dims), scales, zps, data)


def parse(flatbuffer: bytes) -> OneOp:
    """Reads the single operator of a converted model; fails if the converter added others."""
    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    subgraph = model.subgraphs[0]
    if len(subgraph.operators) != 1:
        raise ValueError(f"expected one operator, got {len(subgraph.operators)}")
    op = subgraph.operators[0]
    code = model.operatorCodes[op.opcodeIndex]
    opcode = _OPCODE_NAMES[max(code.builtinCode, code.deprecatedBuiltinCode)]
    options = op.builtinOptions
    activation = Activation(getattr(options, "fusedActivationFunction", 0) if options else 0)
    inputs = tuple(None if i < 0 else _tensor(model, subgraph, i) for i in op.inputs)
    return OneOp(
        flatbuffer=bytes(flatbuffer),
        opcode=opcode,
        inputs=inputs,
        output=_tensor(model, subgraph, op.outputs[0]),
        activation=activation,
        model_inputs=tuple(int(i) for i in subgraph.inputs),
    )


def convert(model: tf.keras.Model, representative: Representative) -> OneOp:
    """Full int8 post-training quantization with int8 model inputs and outputs."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    converter.representative_dataset = representative
    with warnings.catch_warnings():
        # the converter warns about its own internals (tf.lite.Interpreter deprecation, input
        # statistics it does not need for full int8): nothing a test can act on
        warnings.simplefilter("ignore", UserWarning)
        flatbuffer = converter.convert()
    return parse(flatbuffer)


def _uniform_samples(
    rng: np.random.Generator, ranges: Mapping[str, tuple[float, float, int]], count: int = 32
) -> list[dict[str, np.ndarray]]:
    """`count` calibration samples: name -> uniform floats in [lo, hi) of shape (1, size)."""
    return [
        {
            name: rng.uniform(lo, hi, (1, size)).astype(np.float32)
            for name, (lo, hi, size) in ranges.items()
        }
        for _ in range(count)
    ]


def fully_connected(
    rng: np.random.Generator,
    input_features: int,
    output_features: int,
    *,
    activation: str | None,
    use_bias: bool,
    input_range: tuple[float, float],
    bias_mean: float = 0.0,
) -> OneOp:
    """Dense layer whose channel weight magnitudes spread over a decade (varied channel scales)."""
    x = tf.keras.Input(shape=(input_features,), name="x")
    dense = tf.keras.layers.Dense(output_features, activation=activation, use_bias=use_bias)
    model = tf.keras.Model(x, dense(x))
    gain = 10.0 ** rng.uniform(-1.0, 0.0, output_features)
    weights = [
        rng.normal(0.0, 1.0 / np.sqrt(input_features), (input_features, output_features)) * gain
    ]
    if use_bias:
        weights.append(rng.normal(bias_mean, 0.3, output_features))
    dense.set_weights([w.astype(np.float32) for w in weights])
    samples = _uniform_samples(rng, {"x": (*input_range, input_features)})
    return convert(model, lambda: iter(samples))


def binary(
    rng: np.random.Generator,
    op: str,
    size1: int,
    size2: int,
    range1: tuple[float, float],
    range2: tuple[float, float],
    *,
    anti_correlated: bool = False,
) -> OneOp:
    """ADD/SUB/MUL of two model inputs a (size1) and b (size2); a size of 1 broadcasts.

    anti_correlated calibrates with b tied to a (b = -a, or b = a for SUB), so that the output
    range is narrow and independent test inputs drive the output into saturation.
    """
    a = tf.keras.Input(shape=(size1,), name="a")
    b = tf.keras.Input(shape=(size2,), name="b")
    out = {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b}[op]()
    model = tf.keras.Model([a, b], out)
    samples = _uniform_samples(rng, {"a": (*range1, size1), "b": (*range2, size2)})
    if anti_correlated:
        if size1 != size2:
            raise ValueError("anti-correlated calibration needs equal sizes")
        sign = 1.0 if op == "sub" else -1.0
        noise = 0.02 * (range1[1] - range1[0])
        for s in samples:
            s["b"] = (sign * s["a"] + rng.uniform(-noise, noise, s["a"].shape)).astype(np.float32)
    return convert(model, lambda: iter(samples))


def one_minus(rng: np.random.Generator, size: int, z_range: tuple[float, float]) -> OneOp:
    """`1 - z`, as in a GRU's update: a SUB whose first operand is a one-element int8 constant."""
    z = tf.keras.Input(shape=(size,), name="z")
    model = tf.keras.Model(z, 1.0 - z)
    samples = _uniform_samples(rng, {"z": (*z_range, size)})
    return convert(model, lambda: iter(samples))


def unary(
    rng: np.random.Generator, op: str, input_range: tuple[float, float], size: int = 256
) -> OneOp:
    """LOGISTIC ("sigmoid") or TANH on `size` values."""
    x = tf.keras.Input(shape=(size,), name="x")
    model = tf.keras.Model(x, tf.keras.layers.Activation(op)(x))
    samples = _uniform_samples(rng, {"x": (*input_range, size)})
    return convert(model, lambda: iter(samples))


def _pack(model: schema.ModelT) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _set_quantization(tensor: schema.TensorT, scale: float, zero_point: int) -> None:
    tensor.quantization.scale = [float(np.float32(scale))]
    tensor.quantization.zeroPoint = [int(zero_point)]


def with_quantization(
    model: OneOp,
    changes: Mapping[int, tuple[float, int]],
    weight_scales: Sequence[float] | None = None,
    constants: Mapping[int, np.ndarray] | None = None,
) -> OneOp:
    """The same model with new (scale, zero point) for the given tensor indices.

    weight_scales replaces the per-channel scales of a FULLY_CONNECTED filter (input 1);
    constants replaces the contents of constant tensors (same shape and type).
    """
    m = schema.ModelT.InitFromPackedBuf(model.flatbuffer, 0)
    tensors = m.subgraphs[0].tensors
    for index, (scale, zp) in changes.items():
        _set_quantization(tensors[index], scale, zp)
    if weight_scales is not None:
        q = tensors[m.subgraphs[0].operators[0].inputs[1]].quantization
        q.scale = [float(np.float32(s)) for s in weight_scales]
        q.zeroPoint = [0] * len(weight_scales)
    for index, values in (constants or {}).items():
        t = tensors[index]
        data = np.ascontiguousarray(values, dtype=_NUMPY_TYPES[t.type]).reshape(tuple(t.shape))
        m.buffers[t.buffer].data = np.frombuffer(data.tobytes(), dtype=np.uint8)
    return parse(_pack(m))


def with_activation(model: OneOp, activation: Activation) -> OneOp:
    """The same one-op model with another fused activation (FULLY_CONNECTED, ADD, SUB, MUL):
    the converter only fuses RELU-like Keras activations, TFLM accepts all four."""
    m = schema.ModelT.InitFromPackedBuf(model.flatbuffer, 0)
    m.subgraphs[0].operators[0].builtinOptions.fusedActivationFunction = int(activation)
    return parse(_pack(m))


def requantize_model(
    unary_model: OneOp, input_q: tuple[float, int], output_q: tuple[float, int]
) -> OneOp:
    """An int8 -> int8 QUANTIZE built from a converted one-input model of the same shape."""
    m = schema.ModelT.InitFromPackedBuf(unary_model.flatbuffer, 0)
    subgraph = m.subgraphs[0]
    op = subgraph.operators[0]
    code = m.operatorCodes[op.opcodeIndex]
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.QUANTIZE
    code.version = 1
    op.builtinOptionsType = schema.BuiltinOptions.NONE
    op.builtinOptions = None
    _set_quantization(subgraph.tensors[op.inputs[0]], *input_q)
    _set_quantization(subgraph.tensors[op.outputs[0]], *output_q)
    return parse(_pack(m))


# A folder every pytest process of one run sees (conftest.py sets it; unset outside pytest).
SHARED_ENV = "NSCONV_TEST_SHARED"


def shared(build: Callable[[], T]) -> Callable[[], T]:
    """`build` run once per test run: the one-op models of a check module are converted once
    and then served to every module that collects its checks (host, each board), instead of
    once per module, and to both xdist workers (pickled into the run's shared folder, under a
    lock: the first process converts, the other reads the same models). `build` is
    deterministic (fixed seeds), so this is the per-process cache of before, run-wide. The
    models are frozen dataclasses; callers must not mutate the dict."""

    @functools.cache
    def once() -> T:
        folder = os.environ.get(SHARED_ENV)
        if not folder:
            return build()
        path = Path(folder) / "oneop" / f"{build.__module__}.{build.__qualname__}.pickle"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if path.exists():
                return pickle.loads(path.read_bytes())
            value = build()
            try:
                data = pickle.dumps(value)
            except (pickle.PicklingError, TypeError, AttributeError):
                return value  # not picklable: each process builds its own, as before
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
            return value

    return once


# TFLM's outputs, keyed by the model's flatbuffer and the input bytes (sha256): the same check
# on the host and on each board asks TFLM the same question, and TFLM is deterministic, so it
# is asked once per session. Every C result is still compared with TFLM's answer to exactly
# its own model and inputs.
_ANSWERS: dict[tuple[bytes, bytes], np.ndarray] = {}


def answer_key(flatbuffer_digest: bytes, arrays: Sequence[np.ndarray]) -> tuple[bytes, bytes]:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return flatbuffer_digest, h.digest()


def remembered(key: tuple[bytes, bytes], invoke: Callable[[], np.ndarray]) -> np.ndarray:
    """TFLM's answer for key, invoking it only the first time; a fresh copy each call."""
    if key not in _ANSWERS:
        _ANSWERS[key] = np.array(invoke(), copy=True)
    return _ANSWERS[key].copy()


class Tflm:
    """A TFLM interpreter (the bit-exactness oracle) holding one model (created on the first
    question not answered before, see _ANSWERS)."""

    def __init__(self, model: OneOp) -> None:
        self._model = model
        self._digest = hashlib.sha256(model.flatbuffer).digest()
        self._interpreter = None
        by_index = {t.index: t for t in model.inputs if t is not None}
        self._input_shapes = [by_index[i].shape for i in model.model_inputs]

    def _invoke(self, inputs: list[np.ndarray]) -> np.ndarray:
        if self._interpreter is None:
            model = self._model
            shapes = [t.shape for t in (*model.inputs, model.output) if t is not None]
            tensor_bytes = sum(int(np.prod(s)) * 4 for s in shapes)
            self._interpreter = runtime.Interpreter.from_bytes(
                model.flatbuffer,
                arena_size=2 * tensor_bytes + len(model.flatbuffer) + 65536,
                intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors,
            )
        for position, data in enumerate(inputs):
            self._interpreter.set_input(data, position)
        self._interpreter.invoke()
        return np.asarray(self._interpreter.get_output(0), dtype=np.int8).reshape(-1)

    def __call__(self, feeds: Mapping[int, np.ndarray]) -> np.ndarray:
        """One invocation; feeds maps model-input tensor indices to int8 arrays. Flat int8 out."""
        inputs = [np.asarray(feeds[index], dtype=np.int8).reshape(self._input_shapes[position])
                  for position, index in enumerate(self._model.model_inputs)]
        return remembered(answer_key(self._digest, inputs), lambda: self._invoke(inputs))
