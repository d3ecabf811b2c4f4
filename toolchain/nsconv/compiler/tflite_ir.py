# SPDX-License-Identifier: Apache-2.0
"""Reader of int8 .tflite step models into a typed IR (stage "IR" of the pipeline).

Only what the nsNet2 step-model converter emits, and only what the nsn_ kernels can compute
bit-exactly with TFLM, is accepted:

  FULLY_CONNECTED  int8 in/out (per-tensor), int8 weights [out, in] with symmetric per-tensor or
                   per-channel (axis 0) scales, optional int32 bias, batch 1, any fused activation
                   of NONE/RELU/RELU6/RELU_N1_TO_1
  ADD, SUB, MUL    int8 per-tensor; equal sizes or one operand of one element (broadcast scalar);
                   one operand may be a constant (e.g. the 1 of `1 - z`)
  LOGISTIC, TANH   int8 with TFLM's fixed output quantization (1/256, -128) and (1/128, 0)
  QUANTIZE         int8 -> int8 requantization
  RESHAPE          an alias of its input (same bytes)
  SPLIT            along an axis whose outer dimensions are all 1: contiguous copies
  CONCATENATION    same, all operands in the output quantization: contiguous copies

Anything else raises NsconvError(problem, path) naming the op and tensor. Model inputs and
outputs are named by the SignatureDef (the converter orders inputs by name, not by role).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nsconv.errors import NsconvError
from nsconv.names import identifier
from nsconv.quant.params import Activation

#  TFLM LOGISTIC/TANH int8 require these output quantizations (micro/kernels/*_common.cc).
LOGISTIC_OUT = (1.0 / 256.0, -128)
# FULLY_CONNECTED filters the manifest lists as int4 hold int8 values in this range
INT4_RANGE = (-7, 7)
TANH_OUT = (1.0 / 128.0, 0)


class OpKind(enum.Enum):
    FULLY_CONNECTED = "FULLY_CONNECTED"
    ADD = "ADD"
    SUB = "SUB"
    MUL = "MUL"
    LOGISTIC = "LOGISTIC"
    TANH = "TANH"
    SPLIT = "SPLIT"
    CONCATENATION = "CONCATENATION"
    RESHAPE = "RESHAPE"
    QUANTIZE = "QUANTIZE"


class DType(enum.Enum):
    INT8 = "int8"
    INT32 = "int32"


@dataclass(frozen=True)
class Quant:
    """Affine quantization; one (scale, zero point) per channel along `axis`, or one in all."""

    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scales) > 1

    @property
    def scale(self) -> float:
        if self.per_channel:
            raise ValueError("per-channel quantization has no single scale")
        return self.scales[0]

    @property
    def zero_point(self) -> int:
        if self.per_channel:
            raise ValueError("per-channel quantization has no single zero point")
        return self.zero_points[0]


@dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: DType
    quant: Quant | None
    data: bytes | None = None  # constant contents (little-endian), None for activations
    int4: bool = False  # a FULLY_CONNECTED filter on the int4 grid, emitted packed

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * (1 if self.dtype is DType.INT8 else 4)

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def scale(self) -> float:
        assert self.quant is not None
        return self.quant.scale

    @property
    def zero_point(self) -> int:
        assert self.quant is not None
        return self.quant.zero_point

    def array(self) -> np.ndarray:
        """The constant contents, shaped; read-only."""
        if self.data is None:
            raise ValueError(f"tensor {self.name!r} is not a constant")
        dt = np.int8 if self.dtype is DType.INT8 else np.dtype("<i4")
        arr = np.frombuffer(self.data, dtype=dt).reshape(self.shape)
        return arr


@dataclass(frozen=True)
class FcOptions:
    activation: Activation
    keep_num_dims: bool


@dataclass(frozen=True)
class ElementwiseOptions:
    activation: Activation


@dataclass(frozen=True)
class SplitOptions:
    axis: int  # normalised, >= 0
    num_splits: int


@dataclass(frozen=True)
class ConcatOptions:
    axis: int  # normalised, >= 0
    activation: Activation


@dataclass(frozen=True)
class NoOptions:
    pass


OpOptions = FcOptions | ElementwiseOptions | SplitOptions | ConcatOptions | NoOptions


@dataclass(frozen=True)
class Op:
    """One operator. `inputs` are tensor indices, -1 for an absent optional input (FC bias).

    For SPLIT and RESHAPE the constant axis/shape operand is dropped: `inputs` holds only data.
    """

    index: int
    kind: OpKind
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: OpOptions

    @property
    def activation(self) -> Activation:
        return getattr(self.options, "activation", Activation.NONE)


@dataclass(frozen=True)
class Graph:
    path: str
    sha256: str
    tensors: tuple[Tensor, ...]
    ops: tuple[Op, ...]
    inputs: tuple[tuple[str, int], ...]  # (signature name, tensor index), in signature order
    outputs: tuple[tuple[str, int], ...]

    def input(self, name: str) -> Tensor:
        return self.tensors[self._lookup(self.inputs, name, "input")]

    def output(self, name: str) -> Tensor:
        return self.tensors[self._lookup(self.outputs, name, "output")]

    def _lookup(self, table: tuple[tuple[str, int], ...], name: str, what: str) -> int:
        for key, idx in table:
            if key == name:
                return idx
        raise NsconvError(f"model has no {what} named {name!r} (has: "
                          + ", ".join(k for k, _ in table) + ")", self.path)

    def producer(self, tensor: int) -> Op | None:
        for op in self.ops:
            if tensor in op.outputs:
                return op
        return None

    def consumers(self, tensor: int) -> list[Op]:
        return [op for op in self.ops if tensor in op.inputs]

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one step: FULLY_CONNECTED in * out."""
        total = 0
        for op in self.ops:
            if op.kind is OpKind.FULLY_CONNECTED:
                w = self.tensors[op.inputs[1]]
                total += w.shape[0] * w.shape[1]
        return total


# ---------------------------------------------------------------------------------------------
# Reading


def read_tflite(path: str | Path, int4: Collection[str] = ()) -> Graph:
    """The IR of a .tflite file; `int4` names the FULLY_CONNECTED filter tensors stored on the
    int4 grid (the manifest's int4_weights of the exit), checked and flagged Tensor.int4."""
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise NsconvError(f"cannot read ({exc.strerror})", path) from None
    return parse_tflite(buf, path, int4)


def parse_tflite(buf: bytes, path: str | Path = "<memory>", int4: Collection[str] = ()) -> Graph:
    from tensorflow.lite.python import schema_py_generated as schema

    path = str(path)
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise NsconvError("not a TFLite flatbuffer (no TFL3 identifier)", path)
    try:
        model = schema.ModelT.InitFromPackedBuf(buf, 0)
    except Exception as exc:  # a corrupt flatbuffer raises anything from struct to IndexError
        raise NsconvError(f"corrupt TFLite flatbuffer ({type(exc).__name__})", path) from None
    if not model.subgraphs or len(model.subgraphs) != 1:
        raise NsconvError(f"expected one subgraph, found {len(model.subgraphs or [])} "
                          "(control flow such as WHILE is not supported)", path)
    reader = _Reader(schema, model, buf, path, frozenset(int4))
    try:
        return reader.graph(hashlib.sha256(buf).hexdigest())
    except NsconvError:
        raise
    except (IndexError, KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        # a structurally valid flatbuffer whose fields contradict each other (fuzzed, truncated)
        raise NsconvError(f"malformed TFLite model ({type(exc).__name__}: {exc})", path) from None


_BUILTIN_NAMES: dict[int, str] = {}


def _builtin_name(schema, code: int) -> str:
    if not _BUILTIN_NAMES:
        for key, val in vars(schema.BuiltinOperator).items():
            if not key.startswith("_") and isinstance(val, int):
                _BUILTIN_NAMES[val] = key
    return _BUILTIN_NAMES.get(code, f"builtin#{code}")


def _name(raw) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")


class _Reader:
    def __init__(self, schema, model, buf: bytes, path: str, int4: frozenset[str]) -> None:
        self.s = schema
        self.int4 = int4
        self.model = model
        self.buf = buf
        self.path = path
        self.sg = model.subgraphs[0]
        self.type_names = {v: k for k, v in vars(schema.TensorType).items()
                           if not k.startswith("_") and isinstance(v, int)}
        self.act_names = {v: k for k, v in vars(schema.ActivationFunctionType).items()
                          if not k.startswith("_") and isinstance(v, int)}
        self.tensors: list[Tensor | None] = [None] * len(self.sg.tensors or [])

    def fail(self, problem: str) -> NsconvError:
        return NsconvError(problem, self.path)

    # -- tensors ------------------------------------------------------------------------------

    def raw_tensor(self, i: int):
        if i < 0 or i >= len(self.tensors):
            raise self.fail(f"tensor index {i} out of range")
        return self.sg.tensors[i]

    def tensor_name(self, i: int) -> str:
        return _name(self.raw_tensor(i).name)

    def const_bytes(self, t) -> bytes | None:
        if t.buffer is None or t.buffer <= 0 or t.buffer >= len(self.model.buffers or []):
            return None
        b = self.model.buffers[t.buffer]
        if b.offset and b.offset > 1:  # large models keep data after the flatbuffer
            return bytes(self.buf[b.offset : b.offset + b.size])
        if b.data is None or len(b.data) == 0:
            return None
        return np.asarray(b.data, dtype=np.uint8).tobytes()

    def tensor(self, i: int, allow_int32: bool = False) -> Tensor:
        """The IR tensor; int8 unless allow_int32 (bias, axis, shape operands)."""
        self.raw_tensor(i)  # range check (a negative index would count from the end)
        if self.tensors[i] is not None:
            t = self.tensors[i]
            if t.dtype is DType.INT32 and not allow_int32:
                raise self.fail(f"tensor {t.name!r} is int32 where int8 is required")
            return t
        raw = self.raw_tensor(i)
        name = _name(raw.name)
        type_name = self.type_names.get(raw.type, str(raw.type))
        if raw.type == self.s.TensorType.INT8:
            dtype = DType.INT8
        elif raw.type == self.s.TensorType.INT32 and allow_int32:
            dtype = DType.INT32
        else:
            want = "int8 or int32" if allow_int32 else "int8"
            raise self.fail(f"tensor {name!r} has type {type_name}, only {want} is supported "
                            "(convert with full int8 quantization)")
        if raw.sparsity is not None:
            raise self.fail(f"tensor {name!r} is sparse, not supported")
        shape = tuple(int(d) for d in (raw.shape if raw.shape is not None else ()))
        if any(d < 0 for d in shape):
            raise self.fail(f"tensor {name!r} has a dynamic shape {list(shape)}")
        data = self.const_bytes(raw)
        quant = None
        q = raw.quantization
        if q is not None and q.scale is not None and len(q.scale) > 0:
            scales = tuple(float(np.float32(v)) for v in q.scale)
            zps = tuple(int(v) for v in (q.zeroPoint if q.zeroPoint is not None else []))
            if len(zps) != len(scales):
                raise self.fail(f"tensor {name!r}: {len(scales)} scales but {len(zps)} zero points")
            if any(not np.isfinite(v) or v <= 0 for v in scales):
                raise self.fail(f"tensor {name!r} has a non-positive or non-finite scale")
            if dtype is DType.INT8 and any(z < -128 or z > 127 for z in zps):
                raise self.fail(f"tensor {name!r} has an int8 zero point outside [-128, 127]")
            quant = Quant(scales, zps, int(q.quantizedDimension or 0))
        if dtype is DType.INT8 and quant is None:
            raise self.fail(f"int8 tensor {name!r} has no quantization parameters")
        if data is not None:
            itemsize = 1 if dtype is DType.INT8 else 4
            need = (int(np.prod(shape, dtype=np.int64)) if shape else 1) * itemsize
            if len(data) != need:
                raise self.fail(f"tensor {name!r} holds {len(data)} bytes, shape needs {need}")
        t = Tensor(i, name, shape, dtype, quant, data)
        self.tensors[i] = t
        return t

    def activation_tensor(self, i: int, op: str, allow_const: bool = False) -> Tensor:
        """A per-tensor int8 operand; computed unless allow_const (ADD/SUB/MUL operands)."""
        t = self.tensor(i)
        if t.is_const and not allow_const:
            raise self.fail(f"{op}: operand {t.name!r} is a constant; only FULLY_CONNECTED "
                            "weights and ADD/SUB/MUL operands may be constant")
        assert t.quant is not None
        if t.quant.per_channel:
            raise self.fail(f"{op}: activation tensor {t.name!r} is per-channel quantized; "
                            "the kernels take one scale and zero point")
        return t

    # -- ops ----------------------------------------------------------------------------------

    def activation(self, code: int, op: str) -> Activation:
        name = self.act_names.get(code, str(code))
        try:
            return Activation[name]
        except KeyError:
            raise self.fail(f"{op}: fused activation {name} is not supported") from None

    def graph(self, sha: str) -> Graph:
        ops = []
        for k, raw in enumerate(self.sg.operators or []):
            ops.append(self.op(k, raw))
        inputs, outputs = self.signature()
        for _, idx in inputs + outputs:
            self.tensor(idx)
        for _, idx in inputs:
            if self.tensors[idx].is_const:
                raise self.fail(f"model input {self.tensors[idx].name!r} is a constant")
        tensors = tuple(t if t is not None else self._placeholder(i)
                        for i, t in enumerate(self.tensors))
        missing = self.int4 - {t.name for t in tensors if t.int4}
        if missing:
            raise self.fail("int4 weights " + ", ".join(repr(n) for n in sorted(missing))
                            + " named by the manifest are no FULLY_CONNECTED filter of this model")
        return Graph(self.path, sha, tensors, tuple(ops), tuple(inputs), tuple(outputs))

    def _placeholder(self, i: int) -> Tensor:
        # Tensors no supported op touches (e.g. unused constants) are kept by name only.
        raw = self.raw_tensor(i)
        shape = tuple(int(d) for d in (raw.shape if raw.shape is not None else ()))
        return Tensor(i, _name(raw.name), shape, DType.INT32, None, None)

    def signature(self) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        sigs = self.model.signatureDefs or []
        if sigs:
            sig = sigs[0]
            ins = [(_name(x.name), int(x.tensorIndex)) for x in sig.inputs or []]
            outs = [(_name(x.name), int(x.tensorIndex)) for x in sig.outputs or []]
        else:  # no signature: fall back to tensor names
            ins = [(self.tensor_name(i), int(i)) for i in self.sg.inputs]
            outs = [(self.tensor_name(i), int(i)) for i in self.sg.outputs]
        graph_in = {int(i) for i in self.sg.inputs}
        graph_out = {int(i) for i in self.sg.outputs}
        if {i for _, i in ins} != graph_in or {i for _, i in outs} != graph_out:
            raise self.fail("signature does not match the subgraph inputs/outputs")
        return ins, outs

    def op(self, k: int, raw) -> Op:
        codes = self.model.operatorCodes or []
        if not 0 <= int(raw.opcodeIndex) < len(codes):
            raise self.fail(f"op {k}: operator code index {raw.opcodeIndex} out of range")
        code = codes[raw.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        name = _builtin_name(self.s, builtin)
        where = f"op {k} ({name})"
        if builtin == self.s.BuiltinOperator.CUSTOM:
            raise self.fail(f"{where}: custom op {_name(code.customCode)!r} is not supported")
        try:
            kind = OpKind[name]
        except KeyError:
            raise self.fail(f"{where} is not supported (supported: "
                            + ", ".join(x.value for x in OpKind) + ")") from None
        ins = [int(i) for i in (raw.inputs if raw.inputs is not None else [])]
        outs = [int(i) for i in (raw.outputs if raw.outputs is not None else [])]
        if raw.intermediates is not None and len(raw.intermediates):
            raise self.fail(f"{where} has intermediate tensors (not an int8 op)")
        opt = raw.builtinOptions
        handler = getattr(self, "_" + kind.value.lower())
        return handler(k, kind, where, ins, outs, opt)

    def _n(self, where: str, ins, outs, n_in: tuple[int, ...], n_out: int = 1) -> None:
        if len(ins) not in n_in or len(outs) != n_out:
            raise self.fail(f"{where}: unexpected operand count {len(ins)} -> {len(outs)}")

    def _fully_connected(self, k, kind, where, ins, outs, opt) -> Op:
        self._n(where, ins, outs, (2, 3))
        x = self.activation_tensor(ins[0], where)
        w = self.tensor(ins[1])
        y = self.activation_tensor(outs[0], where)
        if not w.is_const:
            raise self.fail(f"{where}: weights {w.name!r} are not constant")
        if len(w.shape) != 2:
            raise self.fail(f"{where}: weights {w.name!r} have shape {list(w.shape)}, need 2-D")
        n_out, n_in = w.shape
        assert w.quant is not None
        if any(z != 0 for z in w.quant.zero_points):
            raise self.fail(f"{where}: weights {w.name!r} are asymmetric (zero point != 0); the "
                            "kernel takes symmetric int8 weights")
        if w.quant.per_channel and (w.quant.axis != 0 or len(w.quant.scales) != n_out):
            raise self.fail(f"{where}: weights {w.name!r} are per-channel along axis "
                            f"{w.quant.axis} with {len(w.quant.scales)} scales; need axis 0 with "
                            f"{n_out}")
        if x.size != n_in:
            raise self.fail(f"{where}: input {x.name!r} has {x.size} elements for {n_in} weight "
                            "columns (only batch 1 is supported)")
        if w.name in self.int4:
            self._flag_int4(where, w)
        if y.size != n_out:
            raise self.fail(f"{where}: output {y.name!r} has {y.size} elements, expected {n_out}")
        bias_idx = ins[2] if len(ins) == 3 else -1
        if bias_idx >= 0:
            b = self.tensor(bias_idx, allow_int32=True)
            if b.dtype is not DType.INT32 or not b.is_const or b.size != n_out:
                raise self.fail(f"{where}: bias {b.name!r} must be a constant int32 vector of "
                                f"{n_out}")
        if opt is None:
            raise self.fail(f"{where}: missing options")
        if int(opt.weightsFormat) != 0:
            raise self.fail(f"{where}: shuffled weights format is not supported")
        if bool(opt.asymmetricQuantizeInputs):
            raise self.fail(f"{where}: hybrid (dynamic-range) quantization is not supported")
        options = FcOptions(self.activation(opt.fusedActivationFunction, where),
                            bool(opt.keepNumDims))
        return Op(k, kind, (ins[0], ins[1], bias_idx), (outs[0],), options)

    def _flag_int4(self, where: str, w: Tensor) -> None:
        """A filter listed as int4: its int8 values must lie on the int4 grid."""
        lo, hi = INT4_RANGE
        values = w.array()
        if values.size and (int(values.min()) < lo or int(values.max()) > hi):
            raise self.fail(f"{where}: weights {w.name!r} are listed as int4 but hold values in "
                            f"[{int(values.min())}, {int(values.max())}], outside [{lo}, {hi}]")
        self.tensors[w.index] = dataclasses.replace(w, int4=True)

    def _elementwise(self, k, kind, where, ins, outs, opt) -> Op:
        self._n(where, ins, outs, (2,))
        a = self.activation_tensor(ins[0], where, allow_const=True)
        b = self.activation_tensor(ins[1], where, allow_const=True)
        y = self.activation_tensor(outs[0], where)
        if a.is_const and b.is_const:
            raise self.fail(f"{where}: both operands are constants (not folded by the converter)")
        big = max(a.size, b.size)
        if not ((a.size == b.size == y.size) or (min(a.size, b.size) == 1 and y.size == big)):
            raise self.fail(f"{where}: shapes {list(a.shape)} and {list(b.shape)} -> "
                            f"{list(y.shape)}: only equal sizes or a one-element operand "
                            "are supported")
        code = opt.fusedActivationFunction if opt is not None else 0
        return Op(k, kind, (ins[0], ins[1]), (outs[0],),
                  ElementwiseOptions(self.activation(code, where)))

    _add = _elementwise
    _sub = _elementwise
    _mul = _elementwise

    def _lut(self, k, kind, where, ins, outs, opt, want: tuple[float, int]) -> Op:
        self._n(where, ins, outs, (1,))
        x = self.activation_tensor(ins[0], where)
        y = self.activation_tensor(outs[0], where)
        if x.size != y.size:
            raise self.fail(f"{where}: {x.size} inputs but {y.size} outputs")
        if abs(y.scale - want[0]) > want[0] * 1e-6 or y.zero_point != want[1]:
            raise self.fail(f"{where}: output {y.name!r} has scale {y.scale:g} zero point "
                            f"{y.zero_point}; TFLM needs {want[0]:g} / {want[1]}")
        return Op(k, kind, (ins[0],), (outs[0],), NoOptions())

    def _logistic(self, k, kind, where, ins, outs, opt) -> Op:
        return self._lut(k, kind, where, ins, outs, opt, LOGISTIC_OUT)

    def _tanh(self, k, kind, where, ins, outs, opt) -> Op:
        return self._lut(k, kind, where, ins, outs, opt, TANH_OUT)

    def _quantize(self, k, kind, where, ins, outs, opt) -> Op:
        self._n(where, ins, outs, (1,))
        raw_in = self.raw_tensor(ins[0])
        if raw_in.type != self.s.TensorType.INT8:
            raise self.fail(f"{where}: input {_name(raw_in.name)!r} has type "
                            f"{self.type_names.get(raw_in.type)}; only int8 -> int8 "
                            "requantization is supported (feed int8 inputs)")
        x = self.activation_tensor(ins[0], where)
        y = self.activation_tensor(outs[0], where)
        if x.size != y.size:
            raise self.fail(f"{where}: {x.size} inputs but {y.size} outputs")
        return Op(k, kind, (ins[0],), (outs[0],), NoOptions())

    def _reshape(self, k, kind, where, ins, outs, opt) -> Op:
        self._n(where, ins, outs, (1, 2))
        x = self.activation_tensor(ins[0], where)
        y = self.activation_tensor(outs[0], where)
        if x.size != y.size:
            raise self.fail(f"{where}: {x.size} elements reshaped to {y.size}")
        if x.quant != y.quant:
            raise self.fail(f"{where}: input and output quantization differ; a reshape must "
                            "keep them (it is an alias)")
        return Op(k, kind, (ins[0],), (outs[0],), NoOptions())

    @staticmethod
    def _outer_is_one(shape: tuple[int, ...], axis: int) -> bool:
        return all(d == 1 for d in shape[:axis])

    def _split(self, k, kind, where, ins, outs, opt) -> Op:
        if len(ins) != 2 or len(outs) < 1:
            raise self.fail(f"{where}: unexpected operand count {len(ins)} -> {len(outs)}")
        axis_t = self.tensor(ins[0], allow_int32=True)
        if not axis_t.is_const or axis_t.dtype is not DType.INT32 or axis_t.size != 1:
            raise self.fail(f"{where}: the split axis must be a constant int32 scalar")
        x = self.activation_tensor(ins[1], where)
        axis = int(axis_t.array().reshape(-1)[0])
        rank = len(x.shape)
        if axis < 0:
            axis += rank
        if not 0 <= axis < rank:
            raise self.fail(f"{where}: axis {axis} out of range for {list(x.shape)}")
        n = len(outs)
        if x.shape[axis] % n:
            raise self.fail(f"{where}: {x.shape[axis]} not divisible in {n} parts")
        if not self._outer_is_one(x.shape, axis):
            raise self.fail(f"{where}: split along axis {axis} of {list(x.shape)} is not "
                            "contiguous (dimensions before the axis must be 1)")
        for o in outs:
            y = self.activation_tensor(o, where)
            if y.size * n != x.size:
                raise self.fail(f"{where}: output {y.name!r} has {y.size} elements")
            if y.quant != x.quant:
                raise self.fail(f"{where}: output {y.name!r} is quantized unlike the input; "
                                "split copies bytes")
        return Op(k, kind, (ins[1],), tuple(outs), SplitOptions(axis, n))

    def _concatenation(self, k, kind, where, ins, outs, opt) -> Op:
        if len(ins) < 1 or len(outs) != 1:
            raise self.fail(f"{where}: unexpected operand count {len(ins)} -> {len(outs)}")
        y = self.activation_tensor(outs[0], where)
        axis = int(opt.axis) if opt is not None else 0
        rank = len(y.shape)
        if axis < 0:
            axis += rank
        if not 0 <= axis < rank or not self._outer_is_one(y.shape, axis):
            raise self.fail(f"{where}: concatenation along axis {axis} of {list(y.shape)} is not "
                            "contiguous (dimensions before the axis must be 1)")
        total = 0
        for i in ins:
            x = self.activation_tensor(i, where)
            total += x.size
            if x.quant != y.quant:
                raise self.fail(f"{where}: operand {x.name!r} (scale {x.scale:g}, zero point "
                                f"{x.zero_point}) is quantized unlike the output (scale "
                                f"{y.scale:g}, zero point {y.zero_point}); concatenation copies "
                                "bytes")
        if total != y.size:
            raise self.fail(f"{where}: operands hold {total} elements, output {y.size}")
        code = opt.fusedActivationFunction if opt is not None else 0
        act = self.activation(code, where)
        if act is not Activation.NONE:
            raise self.fail(f"{where}: fused activation {act.value} on a concatenation")
        return Op(k, kind, tuple(ins), (outs[0],), ConcatOptions(axis, act))


# ---------------------------------------------------------------------------------------------
# Names


def c_identifier(name: str) -> str:
    """A lower-case C identifier from a TFLite tensor name (last ';' part, '/' joined).

    Keras scope suffixes such as `_1` are dropped from each path part; the rest is
    `nsconv.names.identifier`, the one naming rule.
    """
    part = name.split(";")[-1]
    pieces = [re.sub(r"(_\d+)+$", "", p) for p in part.split("/") if p]
    return identifier("_".join(p for p in pieces if p) or "t")
