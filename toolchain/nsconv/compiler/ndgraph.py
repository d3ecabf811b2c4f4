# SPDX-License-Identifier: Apache-2.0
"""Reader of a quantized N-D .tflite step model into a generic typed graph (GTCRN's core).

tflite_ir.py reads nsNet2's 1-D step models and accepts only their op kinds; this reader takes
any shape and int8 or int16 activations and keeps every builtin op with its options, so that
the passes after it (layout.py folds the data movement, ndcodegen.py maps the compute ops to
kernels) decide what is supported and refuse the rest by name. Quantization is checked here:
int8/int16 activations need a scale and zero point (int16: zero point 0, TFLM's 16x8 rule),
constants keep theirs. A custom op, control flow, a sparse or dynamic tensor, or a float
activation is refused with the op, tensor and file named.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nsconv.errors import NsconvError

_DTYPES = {"INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
           "FLOAT32": np.float32, "UINT8": np.uint8, "BOOL": np.bool_}


@dataclass(frozen=True)
class NdQuant:
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scales) > 1

    @property
    def scale(self) -> float:
        assert not self.per_channel
        return self.scales[0]

    @property
    def zero_point(self) -> int:
        assert not self.per_channel
        return self.zero_points[0]


@dataclass(frozen=True)
class NdTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # "int8", "int16", "int32", "int64", "float32", ...
    quant: NdQuant | None
    data: bytes | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    @property
    def nbytes(self) -> int:
        return self.size * self.itemsize

    @property
    def is_const(self) -> bool:
        return self.data is not None

    def array(self) -> np.ndarray:
        if self.data is None:
            raise ValueError(f"tensor {self.name!r} is not a constant")
        return np.frombuffer(self.data, np.dtype(self.dtype).newbyteorder("<")).reshape(
            self.shape)

    def same_quant(self, other: NdTensor) -> bool:
        return self.dtype == other.dtype and self.quant == other.quant


@dataclass(frozen=True)
class NdOp:
    index: int
    kind: str  # the builtin operator name, e.g. "CONV_2D"
    inputs: tuple[int, ...]  # tensor indices, -1 for an absent optional input
    outputs: tuple[int, ...]
    options: tuple[tuple[str, object], ...]  # the builtin options' fields, sorted by name

    def opt(self, name: str, default=None):
        for k, v in self.options:
            if k == name:
                return v
        return default


@dataclass(frozen=True)
class NdGraph:
    path: str
    sha256: str
    tensors: tuple[NdTensor, ...]
    ops: tuple[NdOp, ...]
    inputs: tuple[tuple[str, int], ...]  # (signature name, tensor index)
    outputs: tuple[tuple[str, int], ...]
    raw: bytes = field(default=b"", repr=False, compare=False)  # the flatbuffer
    sg_inputs: tuple[int, ...] = ()  # the subgraph's input tensors, in interpreter order
    sg_outputs: tuple[int, ...] = ()

    def position(self, name: str, outputs: bool = False) -> int:
        """The interpreter's input (output) position of a signature name."""
        i = self.index_of(name, outputs)
        return (self.sg_outputs if outputs else self.sg_inputs).index(i)

    def where(self, op: NdOp) -> str:
        out = self.tensors[op.outputs[0]].name if op.outputs else "?"
        return f"op {op.index} ({op.kind}, output {out!r})"

    def fail(self, op: NdOp, problem: str) -> NsconvError:
        return NsconvError(f"{self.where(op)}: {problem}", self.path)

    def index_of(self, name: str, outputs: bool = False) -> int:
        """The tensor of a signature input (or output) name."""
        table = self.outputs if outputs else self.inputs
        for key, idx in table:
            if key == name:
                return idx
        for idx in self.sg_outputs if outputs else self.sg_inputs:  # the tensor's own name
            if self.tensors[idx].name == name:
                return idx
        raise NsconvError(f"model has no {'output' if outputs else 'input'} named {name!r} "
                          "(has: " + ", ".join(k for k, _ in table) + ")", self.path)

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.ops:
            counts[op.kind] = counts.get(op.kind, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def read_nd(path: str | Path) -> NdGraph:
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise NsconvError(f"cannot read ({exc.strerror})", path) from None
    return parse_nd(buf, path)


def parse_nd(buf: bytes, path: str | Path = "<memory>") -> NdGraph:
    from tensorflow.lite.python import schema_py_generated as schema

    path = str(path)
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise NsconvError("not a TFLite flatbuffer (no TFL3 identifier)", path)
    try:
        model = schema.ModelT.InitFromPackedBuf(buf, 0)
    except Exception as exc:  # a corrupt flatbuffer raises anything
        raise NsconvError(f"corrupt TFLite flatbuffer ({type(exc).__name__})", path) from None
    if not model.subgraphs or len(model.subgraphs) != 1:
        raise NsconvError(f"expected one subgraph, found {len(model.subgraphs or [])} "
                          "(control flow such as WHILE is not supported)", path)
    try:
        return _NdReader(schema, model, buf, path).graph(hashlib.sha256(buf).hexdigest())
    except NsconvError:
        raise
    except (IndexError, KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise NsconvError(f"malformed TFLite model ({type(exc).__name__}: {exc})", path) from None


def _name(raw) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")


def _plain(value):
    if isinstance(value, (bytes, str)):
        return _name(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, (np.integer, np.bool_)):
        return int(value)
    return value


class _NdReader:
    def __init__(self, schema, model, buf: bytes, path: str) -> None:
        self.s = schema
        self.model = model
        self.buf = buf
        self.path = path
        self.sg = model.subgraphs[0]
        self.type_names = {v: k for k, v in vars(schema.TensorType).items()
                           if not k.startswith("_") and isinstance(v, int)}
        self.op_names = {v: k for k, v in vars(schema.BuiltinOperator).items()
                         if not k.startswith("_") and isinstance(v, int)}

    def fail(self, problem: str) -> NsconvError:
        return NsconvError(problem, self.path)

    def const_bytes(self, t) -> bytes | None:
        if t.buffer is None or t.buffer <= 0 or t.buffer >= len(self.model.buffers or []):
            return None
        b = self.model.buffers[t.buffer]
        if b.offset and b.offset > 1:
            return bytes(self.buf[b.offset : b.offset + b.size])
        if b.data is None or len(b.data) == 0:
            return None
        return np.asarray(b.data, dtype=np.uint8).tobytes()

    def tensor(self, i: int) -> NdTensor:
        raw = self.sg.tensors[i]
        name = _name(raw.name)
        type_name = self.type_names.get(raw.type, str(raw.type))
        if type_name not in _DTYPES:
            raise self.fail(f"tensor {name!r} has type {type_name}, not supported")
        dtype = np.dtype(_DTYPES[type_name]).name
        if raw.sparsity is not None:
            raise self.fail(f"tensor {name!r} is sparse, not supported")
        shape = tuple(int(d) for d in (raw.shape if raw.shape is not None else ()))
        if any(d < 0 for d in shape):
            raise self.fail(f"tensor {name!r} has a dynamic shape {list(shape)}")
        quant = None
        q = raw.quantization
        if q is not None and q.scale is not None and len(q.scale) > 0:
            scales = tuple(float(np.float32(v)) for v in q.scale)
            zps = tuple(int(v) for v in (q.zeroPoint if q.zeroPoint is not None else []))
            if len(zps) != len(scales) or any(not np.isfinite(v) or v <= 0 for v in scales):
                raise self.fail(f"tensor {name!r} has malformed quantization parameters")
            quant = NdQuant(scales, zps, int(q.quantizedDimension or 0))
        data = self.const_bytes(raw)
        t = NdTensor(i, name, shape, dtype, quant, data)
        if data is not None and len(data) != t.nbytes:
            raise self.fail(f"tensor {name!r} holds {len(data)} bytes, shape needs {t.nbytes}")
        if data is None and dtype in ("int8", "int16"):
            if quant is None:
                raise self.fail(f"{dtype} tensor {name!r} has no quantization parameters")
            if quant.per_channel:
                raise self.fail(f"activation tensor {name!r} is per-channel quantized")
            if dtype == "int16" and quant.zero_point != 0:
                raise self.fail(f"int16 tensor {name!r} has zero point {quant.zero_point}; "
                                "TFLM's 16x8 kernels need 0")
        return t

    def op(self, k: int, raw, tensors: list[NdTensor]) -> NdOp:
        code = self.model.operatorCodes[raw.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        kind = self.op_names.get(builtin, f"builtin#{builtin}")
        if kind == "CUSTOM":
            raise self.fail(f"op {k}: custom op {_name(code.customCode)!r} is not supported")
        ins = tuple(int(i) for i in (raw.inputs if raw.inputs is not None else []))
        outs = tuple(int(i) for i in (raw.outputs if raw.outputs is not None else []))
        if raw.intermediates is not None and len(raw.intermediates):
            raise self.fail(f"op {k} ({kind}) has intermediate tensors (not supported)")
        opts = raw.builtinOptions
        options = tuple(sorted((key, _plain(v)) for key, v in vars(opts).items())) \
            if opts is not None else ()
        for o in outs:
            t = tensors[o]
            if t.dtype == "float32":
                raise self.fail(f"op {k} ({kind}): output {t.name!r} is float32; the model "
                                "must be fully quantized")
        return NdOp(k, kind, ins, outs, options)

    def graph(self, sha: str) -> NdGraph:
        tensors = [self.tensor(i) for i in range(len(self.sg.tensors or []))]
        ops = tuple(self.op(k, raw, tensors) for k, raw in enumerate(self.sg.operators or []))
        sigs = self.model.signatureDefs or []
        if sigs:
            ins = tuple((_name(x.name), int(x.tensorIndex)) for x in sigs[0].inputs or [])
            outs = tuple((_name(x.name), int(x.tensorIndex)) for x in sigs[0].outputs or [])
        else:
            ins = tuple((tensors[int(i)].name, int(i)) for i in self.sg.inputs)
            outs = tuple((tensors[int(i)].name, int(i)) for i in self.sg.outputs)
        return NdGraph(self.path, sha, tuple(tensors), ops, ins, outs, bytes(self.buf),
                       tuple(int(i) for i in self.sg.inputs),
                       tuple(int(i) for i in self.sg.outputs))
