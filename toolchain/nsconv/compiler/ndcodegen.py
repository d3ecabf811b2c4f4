# SPDX-License-Identifier: Apache-2.0
"""C for a single-exit N-D step model (GTCRN's core): kernels, copy tables, a static memory plan.

The model is read by ndgraph.py; layout.py folds its data movement. What remains are compute
ops, each mapped to a kernel of the nsn_ library (`KERNELS`); an op kind without a kernel
refuses the whole model at generation time, naming the op, its output tensor and the file, so
nothing half-works. Every tensor a kernel reads is a buffer and an element offset: the caller's
feature frame (int8, read in place), a state buffer of the model struct, the arena (activations
and copies), or a constant. Views that are not aliases are copied (a `CopyStep`) just before
their first reader; at the end of a step every state output is gathered, then requantized into
its state's input quantization (the state rule of nsNet2's GRU states, see quant/quantize.py)
and stored, and the mask is copied out.

The C API is the one of the nsNet2 models, counted in bytes (NSN_NUM_FEATURES and NSN_NUM_BINS
are the byte sizes of the feature frame and of the mask), with one exit, so the same host
runner and verification plumbing stream it. Templates: nsn_nd_model.[ch].j2, and the nsNet2
weights templates.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nsconv import __version__
from nsconv.compiler import layout, packing
from nsconv.compiler.codegen import (
    ArrayView,
    ConstView,
    Field,
    StructView,
    _c_string,
    _comment_text,
    _fields,
    _fmt,
    _Names,
    _wrap,
    environment,
    write_texts,
)
from nsconv.compiler.memplan import plan_intervals
from nsconv.compiler.ndgraph import NdGraph, NdOp, NdQuant, NdTensor
from nsconv.compiler.tflm_tables import LUT_OPS, lut_s8
from nsconv.errors import NsconvError
from nsconv.names import identifier
from nsconv.quant import params

GENERATED_FILES = ("nsn_model.h", "nsn_model.c", "nsn_weights.h", "nsn_weights.c")
INLINE_RUNS = 8  # a copy of more runs than this uses a constant run table
_CTYPE = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t"}
_ADD_FIELDS = ("input1_offset", "input1_multiplier", "input1_shift", "input2_offset",
               "input2_multiplier", "input2_shift", "left_shift", "output_offset",
               "output_multiplier", "output_shift", "activation_min", "activation_max")
_MUL_FIELDS = ("input1_offset", "input2_offset", "output_offset", "output_multiplier",
               "output_shift", "activation_min", "activation_max")
_REQUANTIZE_FIELDS = ("input_offset", "output_offset", "multiplier", "shift")
_FC_FIELDS = ("input_offset", "output_offset", "activation_min", "activation_max")


@dataclass(frozen=True)
class StatePair:
    """A state: the model input it is read from and the output its next value comes from."""

    name: str
    input: str  # signature names
    output: str


@dataclass(frozen=True)
class NdSpec:
    features: str  # signature input name
    mask: str  # signature output name
    states: tuple[StatePair, ...]
    title: str = "step model"


# -- buffers and operands ----------------------------------------------------------------------


@dataclass
class Buf:
    id: int
    kind: str  # "features", "state", "arena", "const", "tail" (behind a state's bytes)
    dtype: str
    size: int  # elements
    name: str  # C pointer (arena/features), state field, or constant symbol
    tensor: str  # source tensor name (comments)
    start: int = -1  # first step writing it (arena)
    end: int = -1  # last step reading it (arena)
    offset: int = 0  # arena byte offset

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    @property
    def expr(self) -> str:
        if self.kind == "tail":  # behind a state's bytes (`_state_tail`); offset in elements
            return f"(m->{self.name} + {self.offset})"
        return f"m->{self.name}" if self.kind == "state" else self.name


@dataclass(frozen=True)
class Operand:
    buf: int
    offset: int = 0  # elements


# -- steps (what the template emits) -------------------------------------------------------------


@dataclass(frozen=True)
class RunView:
    dst: int  # bytes
    src: str  # C pointer expression of the source ("" for the zero point)
    slot: int  # index into the step's sources, -1 for the zero point
    offset: int  # bytes into the source
    nbytes: int


@dataclass(frozen=True)
class RowLoopView:
    """layout.RowLoop with its pointers' C expressions (ptrs: (expr, first byte, step))."""

    dst: int
    rows: int
    row_bytes: int
    ptrs: tuple[tuple[str, int, int], ...]
    moves: tuple[tuple[int, int, int, int], ...]


@dataclass(frozen=True)
class Step:
    kind: str  # "copy", "fc", "add", "sub", "mul", "lut", "requantize", ...
    id: int
    comment: str
    out: str = ""  # C pointer expression written
    ins: tuple[str, ...] = ()
    sizes: tuple[int, ...] = ()
    sym: str = ""
    rows: int = 1
    n_in: int = 0
    n_out: int = 0
    weights: str = ""
    bias: str = ""
    table: str = ""
    zero_byte: int = 0
    runs: tuple[RunView, ...] = ()
    sources: tuple[str, ...] = ()
    moves: tuple[tuple[int, int, int], ...] = ()  # copy: (dst, src, bytes) within out, first
    # (memcpy; a negative size: memmove of -bytes)
    loops: tuple[RowLoopView, ...] = ()  # copy: unrolled row loops
    nbytes: int = 0
    debug: tuple[tuple[int, str, str, int], ...] = ()  # (tensor, name, ptr, bytes)
    sfx: str = "s8"  # kernel variant: s8, s16, or s8_s16 / s16_s8 (QUANTIZE)
    fn: str = ""  # int16 unary kernel: logistic, tanh, leaky_relu, rsqrt
    records: str = "NULL"  # batched FC: its nsn_fc_record array
    fcs: tuple[FcOpView, ...] = ()  # int8 FCs on one input (nsn_fully_connected_batch_multi_s8)


@dataclass(frozen=True)
class FcOpView:
    """One int8 FULLY_CONNECTED of an fcb step: its nsn_fc_batch_op and its output."""

    sym: str
    table: str
    num_blocks: int
    records: str
    weights: str
    bias: str
    out: str


@dataclass(frozen=True)
class UpdateStep:
    field: str
    src: str
    size: int  # elements
    nbytes: int
    params: str | None
    sfx: str = "s8"  # nsn_requantize_<sfx>


@dataclass(frozen=True)
class RunTable:
    name: str
    runs: tuple[tuple[int, ...], ...]
    # (dst, slot, src, bytes, count0, dst_step0, src_step0, count1, ..., src_step2): copies of
    # `bytes` bytes over three nested loops (level 0 innermost; slot -1: the zero point), see
    # layout.CopyEntry


def strided_runs(runs) -> list[tuple[int, ...]]:
    """The copy table of byte runs (dst, slot, src, bytes): layout.copy_plan's nested strided
    entries, flattened for nsn_copy_run (16-bit fields)."""
    out = []
    for e in layout.copy_plan(runs):
        loops = [v for k in range(layout.COPY_LEVELS)
                 for v in (e.counts[k], e.dst_steps[k], e.src_steps[k])]
        if max(e.dst, e.src, e.bytes, *e.counts) >= 1 << 16:
            raise NsconvError(f"a copy of {e.dst + e.bytes} bytes is beyond the 16-bit copy "
                              "tables")
        out.append((e.dst, e.slot, e.src, e.bytes, *loops))
    return out


@dataclass(frozen=True)
class LutTable:
    name: str
    note: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class StateField:
    name: str
    field: str
    ctype: str
    size: int
    nbytes: int
    quant_text: str
    zero_point: int
    tail: int = 0  # elements behind the state: a tensor read with it (`_state_tail`)


@dataclass(frozen=True)
class PointerLine:
    name: str
    ctype: str
    offset: int
    comment: str


@dataclass(frozen=True)
class NdView:
    version: str
    model_title: str
    source_text: str
    sha256: str
    command_text: str
    command_c: str
    features_bytes: int
    features_ctype: str
    features_in_place: bool
    features_ptr: str
    mask_bytes: int
    mask_ctype: str
    arena_bytes: int
    unshared_bytes: int
    state_bytes: int
    max_fc_input: int
    max_fc_output: int  # of the batched int8 FCs (nsn_fully_connected_batch_s8), 0 if none
    conv_scratch: int
    conv_dims: tuple[tuple[str, str], ...]
    uses_conv: bool
    uses_s16: bool
    const_bytes: int
    states: tuple[StateField, ...]
    pointers: tuple[PointerLine, ...]
    steps: tuple[Step, ...]
    updates: tuple[UpdateStep, ...]
    mask_src: str
    structs: tuple[StructView, ...]
    arrays: tuple[ArrayView, ...]
    luts: tuple[LutTable, ...]
    run_tables: tuple[RunTable, ...]
    consts: tuple[ConstView, ...]
    op_counts: tuple[tuple[str, int], ...]
    folded_counts: tuple[tuple[str, int], ...]
    separate_const_bytes: int = 0

    def context(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


# -- the compiler ---------------------------------------------------------------------------------


def _qtext(q: NdQuant | None) -> str:
    if q is None:
        return "not quantized"
    if q.per_channel:
        return f"per-channel scales {_fmt(min(q.scales))}..{_fmt(max(q.scales))}"
    return f"scale {_fmt(q.scale)}, zero point {q.zero_point}"


@dataclass
class _Program:
    g: NdGraph
    lay: layout.LayoutResult
    spec: NdSpec
    names: _Names = field(default_factory=_Names)
    bufs: list[Buf] = field(default_factory=list)
    tensor_buf: dict[int, int] = field(default_factory=dict)  # root tensor -> buf
    gathered: dict[int, int] = field(default_factory=dict)  # view tensor -> buf
    copies: dict[tuple, int] = field(default_factory=dict)  # (dtype, element ids) -> buf
    consts: dict[tuple, int] = field(default_factory=dict)  # (dtype, shape, data) -> buf
    const_data: dict[int, tuple[NdTensor, bytes]] = field(default_factory=dict)
    steps: list[dict] = field(default_factory=list)  # Step fields, buffers resolved later
    reads: list[set[int]] = field(default_factory=list)
    writes: list[set[int]] = field(default_factory=list)
    structs: list[StructView] = field(default_factory=list)
    arrays: list[ArrayView] = field(default_factory=list)
    luts: dict[bytes, LutTable] = field(default_factory=dict)
    lut_cache: dict[tuple, str] = field(default_factory=dict)
    run_tables: list[RunTable] = field(default_factory=list)
    state_of_input: dict[int, StatePair] = field(default_factory=dict)
    state_tail: dict[int, int] = field(default_factory=dict)  # state input -> tail elements
    slabs: list[list[int]] = field(default_factory=list)  # arena bufs placed back to back
    conv_scratch: int = 0  # bytes, the largest CONV_2D scratch over the DSP and MVE paths
    conv_dims: list[tuple[str, str]] = field(default_factory=list)  # (dims, kernel stem)
    fused: set[int] = field(default_factory=set)  # ops computed by a fused step (GRU gates)
    fc_groups: dict[int, tuple] = field(default_factory=dict)  # int8 FC -> its group (_fc)

    # buffers
    def new_buf(self, kind: str, t: NdTensor, name: str, size: int | None = None) -> int:
        b = Buf(len(self.bufs), kind, t.dtype, t.size if size is None else size, name, t.name)
        self.bufs.append(b)
        return b.id

    def const_buf(self, t: NdTensor, data: bytes) -> int:
        key = (t.dtype, t.shape, data)
        if key not in self.consts:
            name = self.names.take("nsn_" + identifier(t.name.split(";")[-1])[:40])
            bid = self.new_buf("const", t, name)
            self.consts[key] = bid
            self.const_data[bid] = (t, data)
        return self.consts[key]

    def operand(self, i: int) -> Operand:
        """The buffer holding tensor i (materializing a copied view before this step)."""
        t = self.g.tensors[i]
        v = self.lay.views.get(i)
        if v is None:
            if t.is_const:
                return Operand(self.const_buf(t, t.data))
            return Operand(self.tensor_buf[i])
        if v.kind == "alias":
            return Operand(self.root_buf(v.root), v.offset)
        if v.kind == "const":
            return Operand(self.const_buf(t, v.data))
        if i not in self.gathered:  # a copy of the same elements already made is read again
            key = (t.dtype, v.ids.tobytes())
            self.gathered[i] = self.copies.get(key) or self.copy(v, t)
            self.copies[key] = self.gathered[i]
        return Operand(self.gathered[i])

    def root_buf(self, r: int) -> int:
        t = self.g.tensors[r]
        if t.is_const:
            return self.const_buf(t, t.data)
        if r not in self.tensor_buf:
            raise NsconvError(f"tensor {t.name!r} is read before it is written", self.g.path)
        return self.tensor_buf[r]

    def copy(self, v: layout.View, t: NdTensor, dst: int | None = None) -> int:
        """A copy step writing view v into a new arena buffer (or into buffer `dst`, a state
        updated in place: its runs from the state itself become memmoves done first)."""
        if dst is None:
            dst = self.new_buf("arena", t, self.names.take("t_" + identifier(t.name)[:40]))
        item = np.dtype(t.dtype).itemsize
        own = next((r for r, b in self.tensor_buf.items() if b == dst), None)
        moves = tuple(m for r in v.runs if r.root == own and r.dst != r.src
                      for m in _move_chunks(r.dst * item, r.src * item, r.length * item))
        rest = [r for r in v.runs if r.root != own]
        roots = sorted({r.root for r in rest if r.root != layout.ZERO})
        at = self.slab({r: self.root_buf(r) for r in roots})  # root -> (buf, byte offset)
        src_bufs = sorted({b for b, _ in at.values()})
        slots = {r: src_bufs.index(b) for r, (b, _) in at.items()}
        runs = tuple((r.dst * item, slots.get(r.root, -1),
                      r.src * item + at[r.root][1] if r.root in at else 0, r.length * item)
                     for r in rest)
        zp = t.quant.zero_point if t.quant is not None else 0
        self.add_step(dict(kind="copy", comment=f"copy {t.name} ({len(v.runs)} runs)",
                           out=dst, src_bufs=tuple(src_bufs), raw_runs=runs, moves=moves,
                           item=item,
                           zero_byte=zp & 0xFF, nbytes=t.nbytes),
                      reads=set(src_bufs) | ({dst} if moves else set()), writes={dst})
        return dst

    def slab(self, bufs: dict[int, int]) -> dict[int, tuple[int, int]]:
        """Where a copy reads each root: (buffer, byte offset). SLAB or more arena buffers of
        one size (GTCRN's GRU step outputs gathered into one sequence) are placed back to
        back in the arena (build_nd_view), in the order they are written, so that the copy
        reads them as one buffer (a few strided entries instead of one per buffer)."""
        at = {r: (b, 0) for r, b in bufs.items()}
        taken = {b for slab in self.slabs for b in slab}
        cand = sorted(b for b in bufs.values() if self.bufs[b].kind == "arena" and b not in taken)
        sizes = {self.bufs[b].nbytes for b in cand}
        if len(cand) < SLAB or len(sizes) != 1 or sizes.pop() % 4:
            return at
        self.slabs.append(cand)
        step = self.bufs[cand[0]].nbytes
        for r, b in bufs.items():
            if b in cand:
                at[r] = (cand[0], cand.index(b) * step)
        return at

    def add_step(self, fields: dict, reads: set[int], writes: set[int]) -> None:
        self.steps.append(fields)
        self.reads.append(reads)
        self.writes.append(writes)


def conv_input(p: _Program, op: NdOp, geo):
    """The input operand of a DEPTHWISE_CONV_2D and its geometry: a border of zero-point
    elements around the input view (a PAD) becomes the conv's own padding (the kernel skips
    taps outside the input: the same sums), and an input that is a whole state followed by a
    whole arena tensor (GTCRN's cached frames and the current one) is read in place, the
    tensor written behind the state's bytes (`_state_tail`)."""
    i = op.inputs[0]
    v, x = p.lay.views.get(i), p.g.tensors[i]
    if op.kind != "DEPTHWISE_CONV_2D" or v is None or v.kind != "gather" or len(x.shape) != 4:
        return p.operand(i), geo
    ids = v.ids.reshape(x.shape)
    (top, bottom), (left, right) = (layout.zero_border(ids, a) for a in (1, 2))
    if top + bottom + left + right == 0:
        return p.operand(i), geo
    inner = ids[:, top : x.shape[1] - bottom, left : x.shape[2] - right, :]
    geo = dataclasses.replace(geo, input_h=inner.shape[1], input_w=inner.shape[2],
                              pad_h=geo.pad_h + top, pad_w=geo.pad_w + left)
    flat = inner.reshape(-1)
    tail = _state_tail(p, flat)
    if tail is not None:
        return tail, geo
    t = dataclasses.replace(x, shape=tuple(inner.shape))
    return _view_operand(p, i, layout.make_view(p.g, i, flat), t), geo


def _state_tail(p: _Program, flat: np.ndarray) -> Operand | None:
    """If ids `flat` are a whole state input S then a whole arena tensor R of the same type,
    R's buffer moves behind S's bytes in the model struct (S's field grows by R) and the view
    is S's buffer itself; None otherwise."""
    g = p.g
    runs = layout.runs_of(flat)
    if len(runs) != 2 or runs[0].src != 0 or runs[1].src != 0:
        return None
    s, r = (g.tensors[q.root] if q.root != layout.ZERO else None for q in runs)
    if (s is None or r is None or s.index not in p.state_of_input or s.index in p.state_tail
            or runs[0].length != s.size or runs[1].length != r.size or r.dtype != s.dtype):
        return None
    b = p.bufs[p.tensor_buf.get(r.index, -1)] if r.index in p.tensor_buf else None
    if b is None or b.kind != "arena":
        return None
    b.kind, b.name, b.offset = "tail", p.bufs[p.tensor_buf[s.index]].name, s.size
    p.state_tail[s.index] = r.size
    return Operand(p.tensor_buf[s.index])


SLAB = 8  # a copy from this many arena buffers of one size places them back to back

MOVE_CHUNKS = 16  # a move down by d bytes is at most this many memcpys of d bytes


def _move_chunks(dst: int, src: int, n: int) -> list[tuple[int, int, int]]:
    """A move of n bytes down (src > dst) as memcpys of at most src - dst bytes in ascending
    order, none overlapping (so at memcpy speed), or one memmove (negative size) when that
    would take more than MOVE_CHUNKS calls."""
    d = src - dst
    if d <= 0 or -(-n // d) > MOVE_CHUNKS:
        return [(dst, src, -n)]
    return [(dst + k, src + k, min(d, n - k)) for k in range(0, n, d)]


def _refuse(g: NdGraph, op: NdOp, why: str) -> NsconvError:
    return g.fail(op, why)


_DEFINED: set[str] = set()


def kernel_defined(fn: str) -> bool:
    """The kernel library's sources define nsn_status `fn`(...) (a kernel declared in a header
    but not written yet is not there)."""
    if not _DEFINED:
        import re

        from nsconv.resources import KERNEL_DIR

        for src in sorted((KERNEL_DIR / "src").glob("*.c")):
            _DEFINED.update(re.findall(r"^nsn_status\s+(nsn_\w+)\s*\(", src.read_text(),
                                       re.M))
        _DEFINED.add("")  # computed once
    return fn in _DEFINED


def _need(g: NdGraph, op: NdOp, fn: str) -> None:
    if not kernel_defined(fn):
        raise _refuse(g, op, f"no kernel {fn} for {op.kind} in this kernel library yet")


def s16_kernels_ready() -> bool:
    """The int16 (16x8) parameters (branch gtcrn-kernels) are in nsconv.quant.params."""
    return hasattr(params, "conv_params_s16") and hasattr(params, "unary_params_s16")


def _act_of(g: NdGraph, op: NdOp, i: int, dtypes=("int8", "int16")) -> NdTensor:
    t = g.tensors[i]
    if t.dtype not in dtypes:
        raise _refuse(g, op, f"operand {t.name!r} is {t.dtype}; the nsn_ kernel for "
                      f"{op.kind} takes {'/'.join(dtypes)} (no {t.dtype} kernel yet)")
    if t.dtype == "int16" and not s16_kernels_ready():
        raise _refuse(g, op, f"operand {t.name!r} is int16: no int16 parameters for "
                      f"{op.kind} in nsconv.quant.params yet")
    return t


def _same_dtype(g: NdGraph, op: NdOp, *ts: NdTensor) -> str:
    kinds = {t.dtype for t in ts}
    if len(kinds) != 1:
        raise _refuse(g, op, "operands of different types: " + ", ".join(
            f"{t.name!r} {t.dtype}" for t in ts))
    return kinds.pop()


def _sfx(dtype: str) -> str:
    return "s16" if dtype == "int16" else "s8"


def _activation(g: NdGraph, op: NdOp) -> params.Activation:
    code = op.opt("fusedActivationFunction", 0)
    try:
        return params.Activation(code)
    except ValueError:
        raise _refuse(g, op, f"fused activation {code} is not supported") from None


def _out_buf(p: _Program, op: NdOp, y: NdTensor) -> int:
    out = p.new_buf("arena", y, p.names.take("t_" + identifier(y.name)[:40]))
    p.tensor_buf[op.outputs[0]] = out
    return out


def _per_channel(p: _Program, sym: str, pr, n_out: int) -> None:
    p.arrays += [ArrayView("int32_t", f"{sym}_multiplier", n_out,
                           tuple(_wrap(pr.multipliers, 7, 11))),
                 ArrayView("int32_t", f"{sym}_shift", n_out, tuple(_wrap(pr.shifts, 16, 3)))]
    p.structs.append(StructView("nsn_per_channel_quant_params", f"{sym}_quant",
                                (Field("multiplier", f"{sym}_multiplier"),
                                 Field("shift", f"{sym}_shift"))))


def _weights(g: NdGraph, op: NdOp, w: NdTensor) -> list[float]:
    if not w.is_const or w.dtype != "int8":
        raise _refuse(g, op, f"weights {w.name!r} must be constant int8")
    if any(z != 0 for z in w.quant.zero_points):
        raise _refuse(g, op, f"weights {w.name!r} are asymmetric")
    n_out = w.shape[0] if op.kind != "DEPTHWISE_CONV_2D" else w.shape[-1]
    return list(w.quant.scales) if w.quant.per_channel else [w.quant.scale] * n_out


def _bias16(p: _Program, op: NdOp, n_out: int, name: str) -> int | None:
    """The int64 bias of a 16x8 op (None without one)."""
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return None
    b = p.g.tensors[op.inputs[2]]
    data = b.array().astype("<i8").reshape(-1)
    if data.size != n_out:
        raise _refuse(p.g, op, f"bias {b.name!r} has {data.size} values for {n_out} outputs")
    return p.const_buf(NdTensor(-1, name + "_bias64", (n_out,), "int64", None), data.tobytes())


def _fc(p: _Program, op: NdOp) -> None:
    """A FULLY_CONNECTED: int8 ones in one nsn_fully_connected_batch_multi_s8 call together
    with the other int8 FULLY_CONNECTEDs that read the same input (`fc_groups`), at the first
    one's place; 16x8 ones as nsn_fully_connected_s16 (one row) or a 1x1 16x8 conv."""
    g = p.g
    x, w, y = (_act_of(g, op, op.inputs[0]), g.tensors[op.inputs[1]],
               _act_of(g, op, op.outputs[0]))
    dt = _same_dtype(g, op, x, y)
    n_out, n_in = _fc_shape(g, op, x, w, y)
    _need(g, op, f"nsn_fully_connected_{_sfx(dt)}")
    if dt != "int16":
        _need(g, op, "nsn_fully_connected_batch_multi_s8")
        _fc_multi(p, _fc_group(p, op))
        return
    pr = params.conv_params_s16(x.quant.scale, _weights(g, op, w), y.quant.scale, n_out,
                                _activation(g, op))
    bbuf = _bias16(p, op, n_out, w.name)
    wbuf = p.const_buf(w, w.data)
    xin = p.operand(op.inputs[0])
    out = _out_buf(p, op, y)
    sym = p.names.take(f"nsn_op{op.index}")
    _per_channel(p, sym, pr, n_out)
    if x.size // n_in > 1:
        _fc16_batched(p, op, pr, sym, x.size // n_in, (n_in, n_out), (xin, wbuf, bbuf, out))
        return
    p.structs += [StructView("nsn_fc_params", f"{sym}_params", _fields(pr, _FC_FIELDS)),
                  StructView("nsn_fc_dims", f"{sym}_dims",
                             (Field("input_features", n_in), Field("output_features", n_out)))]
    p.add_step(dict(kind="fc", sfx=_sfx(dt), comment=_op_comment(g, op), sym=sym, rows=1,
                    n_in=n_in, n_out=n_out, x=xin, wbuf=wbuf, bbuf=bbuf, out=out,
                    tensor=op.outputs[0], blocks=None, records="NULL"),
               reads={xin.buf}, writes={out})


def _fc_shape(g: NdGraph, op: NdOp, x: NdTensor, w: NdTensor, y: NdTensor) -> tuple[int, int]:
    _weights(g, op, w)
    if len(w.shape) != 2:
        raise _refuse(g, op, f"weights {w.name!r} must be [out, in]")
    n_out, n_in = w.shape
    if x.size % n_in or y.size != x.size // n_in * n_out:
        raise _refuse(g, op, f"input {list(x.shape)} does not fit weights [{n_out}, {n_in}]")
    return n_out, n_in


def _fc_int8(g: NdGraph, op: NdOp) -> bool:
    """An int8 FULLY_CONNECTED that the batched kernel takes (anything else goes through the
    checks of _fc, which refuse it by name)."""
    if op.kind != "FULLY_CONNECTED" or len(op.inputs) < 2 or min(op.inputs[:2]) < 0:
        return False
    x, w, y = (g.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    return (x.dtype == y.dtype == "int8" and w.is_const
            and w.dtype == "int8" and len(w.shape) == 2 and x.size % w.shape[1] == 0)


def fc_groups(g: NdGraph, lay: layout.LayoutResult) -> list[tuple[NdOp, ...]]:
    """The int8 FULLY_CONNECTEDs of the compute ops grouped by what they read: one group per
    input whose elements are the same element ids (the same tensor, or views of the same
    elements) with the same row width, in model order (a GRU step's two hidden-state matmuls
    on h, the input matmuls on one frame). Every op of a group reads only that input and
    constants, so all can run where the first one runs."""
    groups: dict[tuple, list[NdOp]] = {}
    for op in lay.compute:
        if not _fc_int8(g, op):
            continue
        i = op.inputs[0]
        v = lay.views.get(i)
        ids = v.ids if v is not None else layout.root_ids(g.tensors[i]).reshape(-1)
        groups.setdefault((g.tensors[op.inputs[1]].shape[1], ids.tobytes()), []).append(op)
    return sorted((tuple(ops) for ops in groups.values()), key=lambda ops: ops[0].index)


def _fc_group(p: _Program, op: NdOp) -> tuple[NdOp, ...]:
    """The group of an int8 FULLY_CONNECTED (fc_groups, found once per program); the others
    of it are marked fused: this step computes them."""
    if not p.fc_groups:
        p.fc_groups.update({o.index: grp for grp in fc_groups(p.g, p.lay) for o in grp})
    group = p.fc_groups.get(op.index, (op,))
    p.fused.update(o.index for o in group[1:])
    return group


def _fc_op_int8(p: _Program, op: NdOp) -> dict:
    """The constants of one int8 FULLY_CONNECTED (its nsn_fc_batch_op) and its output buffer:
    the input zero point folded into the bias, the weights packed by blocks, the DSP records."""
    g = p.g
    x, w, y = (_act_of(g, op, op.inputs[0]), g.tensors[op.inputs[1]],
               _act_of(g, op, op.outputs[0]))
    _same_dtype(g, op, x, y)
    n_out, n_in = _fc_shape(g, op, x, w, y)
    pr = params.fc_params(x.quant.scale, x.quant.zero_point, _weights(g, op, w), y.quant.scale,
                          y.quant.zero_point, n_out, _activation(g, op))
    pr = dataclasses.replace(pr, input_offset=0)
    bias = np.zeros(n_out, np.int64)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        bias = g.tensors[op.inputs[2]].array().astype(np.int64).reshape(-1)
    folded = bias - x.quant.zero_point * w.array().astype(np.int64).sum(axis=1)
    if np.abs(folded).max(initial=0) >= 1 << 31:
        raise _refuse(g, op, "folded bias overflows int32")
    bt = NdTensor(-1, w.name + "_bias_folded", (n_out,), "int32", None)
    bbuf = p.const_buf(bt, folded.astype("<i4").tobytes())
    blocks, wbuf = _fc_blocks(p, w)
    sym = p.names.take(f"nsn_op{op.index}")
    _per_channel(p, sym, pr, n_out)
    p.structs += [StructView("nsn_fc_params", f"{sym}_params", _fields(pr, _FC_FIELDS)),
                  StructView("nsn_fc_dims", f"{sym}_dims",
                             (Field("input_features", n_in), Field("output_features", n_out)))]
    records = "NULL"
    rec = packing.fc_records(blocks[2], folded, pr.multipliers, pr.shifts, pr.input_offset,
                             pr.output_offset)
    if rec is not None:
        records = f"{sym}_records"
        p.arrays.append(ArrayView("nsn_fc_record", records, n_out, tuple(
            f"{{ {a}, {m}, {nu}, {e} }}," for a, m, nu, e in rec.tolist())))
    return dict(sym=sym, n_in=n_in, n_out=n_out, rows=x.size // n_in, wbuf=wbuf, bbuf=bbuf,
                blocks=blocks[:2], records=records, out=_out_buf(p, op, y),
                tensor=op.outputs[0], comment=_op_comment(g, op))


def _fc_multi(p: _Program, group: tuple[NdOp, ...]) -> None:
    """One nsn_fully_connected_batch_multi_s8 step for the int8 FULLY_CONNECTEDs of a group."""
    _need(p.g, group[0], "nsn_fully_connected_batch_multi_s8")
    fcs = [_fc_op_int8(p, op) for op in group]
    xin = p.operand(group[0].inputs[0])
    comment = fcs[0]["comment"] if len(fcs) == 1 else _comment_text(
        " + ".join(f["comment"] for f in fcs))
    p.add_step(dict(kind="fcb", sfx="s8", comment=comment, x=xin, fcs=tuple(fcs),
                    rows=fcs[0]["rows"], n_in=fcs[0]["n_in"],
                    n_out=max(f["n_out"] for f in fcs)),
               reads={xin.buf}, writes={f["out"] for f in fcs})


def _fc_blocks(p: _Program, w: NdTensor) -> tuple[tuple[str, int, list], int]:
    """int8 FC weights packed by blocks of output channels that read one column range each
    (the structural zeros of grouped matmuls skipped, packing.pack_fc_blocks): the block
    table's symbol and length (identical tables shared) and the blocks, and the packed
    weights' buffer. The blocks are checked here as the kernel checks them (the generated call
    gives records, with which the kernel does not check them again)."""
    blocks, packed = packing.pack_fc_blocks(w.array().astype(np.int8))
    n_out, n_in = w.shape
    if (not blocks or sum(c for c, _, _ in blocks) != n_out
            or any(c < 1 or s + n > n_in or max(c, s, n) > 0xFFFF for c, s, n in blocks)):
        raise NsconvError(f"{w.name}: the packed blocks {blocks} do not cover [{n_out}, "
                          f"{n_in}] (a bug in packing.pack_fc_blocks)")
    lines = tuple(f"{{ {c}u, {s}u, {n}u }}," for c, s, n in blocks)
    table = next((a.name for a in p.arrays if a.ctype == "nsn_fc_block" and a.lines == lines),
                 None)
    if table is None:
        table = p.names.take(f"nsn_fc_blocks{len(lines)}")
        p.arrays.append(ArrayView("nsn_fc_block", table, len(lines), lines))
    t = NdTensor(-1, w.name + "_packed", (packed.size,), "int8", w.quant)
    return (table, len(lines), blocks), p.const_buf(t, packed.tobytes())


def conv16_scratch(patch: int) -> int:
    """nsn_conv_s16_get_buffer_size on the DSP path (the others need none): four interleaved
    int16 patches and a gathered one, 10 bytes per element of the patch rounded up to 4."""
    return 10 * ((patch + 3) & ~3)


def _fc16_batched(p: _Program, op: NdOp, pr, sym: str, rows: int, sizes: tuple[int, int],
                  bufs: tuple) -> None:
    """A 16x8 FULLY_CONNECTED over several rows as the 1x1 nsn_conv_s16 over a [1][rows][in]
    image (nsn_nnfunctions_s16.h): one call, the rows blocked by the kernel, same bits."""
    (n_in, n_out), (xin, wbuf, bbuf, out) = sizes, bufs
    conv = {"input_offset": 0, "output_offset": 0, "stride_h": 1, "stride_w": 1, "pad_h": 0,
            "pad_w": 0, "dilation_h": 1, "dilation_w": 1, "activation_min": pr.activation_min,
            "activation_max": pr.activation_max}
    dims = {"input_h": 1, "input_w": rows, "input_c": n_in, "filter_h": 1, "filter_w": 1,
            "output_h": 1, "output_w": rows, "output_c": n_out, "groups": 1}
    p.structs += [StructView("nsn_conv_params", f"{sym}_params",
                             tuple(Field(f, int(conv[f])) for f in _CONV_PARAM_FIELDS)),
                  StructView("nsn_conv_dims", f"{sym}_dims",
                             tuple(Field(f, dims[f]) for f in _CONV_DIM_FIELDS))]
    p.conv_scratch = max(p.conv_scratch, conv16_scratch(n_in))
    p.conv_dims.append((f"{sym}_dims", "conv_s16"))
    p.add_step(dict(kind="conv", sfx="s16", comment=_op_comment(p.g, op), sym=sym, x=xin,
                    wbuf=wbuf, bbuf=bbuf, out=out, tensor=op.outputs[0]),
               reads={xin.buf}, writes={out})


def _elementwise(p: _Program, op: NdOp) -> None:
    g = p.g
    a, b, y = (_act_of(g, op, i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    dt = _same_dtype(g, op, a, b, y)
    _need(g, op, f"nsn_elementwise_{op.kind.lower()}_{_sfx(dt)}")
    ops = []
    for i, t in ((op.inputs[0], a), (op.inputs[1], b)):
        if t.size in (1, y.size) and (t.size == 1 or t.shape == y.shape or
                                      _same_flat_order(t.shape, y.shape)):
            ops.append(p.operand(i))
            continue
        try:
            v = layout.broadcast_view(g, i, y.shape, p.lay.views.get(i))
        except ValueError:
            raise _refuse(g, op, f"{list(t.shape)} does not broadcast to {list(y.shape)}"
                          ) from None
        ops.append(_view_operand(p, i, v))
    act = _activation(g, op)
    args = (a.quant.scale, a.quant.zero_point, b.quant.scale, b.quant.zero_point,
            y.quant.scale, y.quant.zero_point, act)
    if op.kind in ("ADD", "SUB"):
        if dt == "int16":
            pr = params.add_params_s16(*args)
        else:
            pr = params.add_params(*args) if op.kind == "ADD" else params.sub_params(*args)
        ctype, names = "nsn_add_params", _ADD_FIELDS
    else:
        pr = params.mul_params_s16(*args) if dt == "int16" else params.mul_params(*args)
        ctype, names = "nsn_mul_params", _MUL_FIELDS
    sizes = tuple(1 if t.size == 1 else y.size for t in (a, b))
    out = _out_buf(p, op, y)
    sym = p.names.take(f"nsn_op{op.index}")
    p.structs.append(StructView(ctype, f"{sym}_params", _fields(pr, names)))
    p.add_step(dict(kind=op.kind.lower(), sfx=_sfx(dt), comment=_op_comment(g, op), sym=sym,
                    a=ops[0], b=ops[1], sizes=sizes, out=out, tensor=op.outputs[0]),
               reads={o.buf for o in ops}, writes={out})


def _same_flat_order(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Equal sizes and the same element order (shapes differing by ones only)."""
    return [d for d in a if d != 1] == [d for d in b if d != 1]


def _view_operand(p: _Program, i: int, v: layout.View, t: NdTensor | None = None) -> Operand:
    t = t or dataclasses.replace(p.g.tensors[i], shape=(v.ids.size,))
    if v.kind == "alias":
        return Operand(p.root_buf(v.root), v.offset)
    if v.kind == "const":
        return Operand(p.const_buf(t, v.data))
    return Operand(p.copy(v, t))


def _lut(p: _Program, op: NdOp) -> None:
    g = p.g
    x, y = _act_of(g, op, op.inputs[0]), _act_of(g, op, op.outputs[0])
    if x.size != y.size:
        raise _refuse(g, op, f"{x.size} inputs but {y.size} outputs")
    if _same_dtype(g, op, x, y) == "int16":
        _unary16(p, op, x, y)
        return
    xin = p.operand(op.inputs[0])
    out = _out_buf(p, op, y)
    p.add_step(dict(kind="lut", comment=_op_comment(g, op), table=_lut_table(p, op), x=xin,
                    sizes=(x.size,), out=out, tensor=op.outputs[0]),
               reads={xin.buf}, writes={out})


_UNARY16 = {"LOGISTIC": ("logistic", "nsn_unary_s16_params"),
            "TANH": ("tanh", "nsn_unary_s16_params"),
            "LEAKY_RELU": ("leaky_relu", "nsn_leaky_relu_params"),
            "RSQRT": ("rsqrt", "nsn_rsqrt_params")}


def _unary16(p: _Program, op: NdOp, x: NdTensor, y: NdTensor) -> None:
    """int16 LOGISTIC/TANH (TFLM's interpolated table), LEAKY_RELU, RSQRT."""
    g = p.g
    if op.kind not in _UNARY16:
        raise _refuse(g, op, f"no int16 nsn_ kernel for {op.kind}")
    fn, ctype = _UNARY16[op.kind]
    _need(g, op, f"nsn_{fn}_s16")
    if op.kind == "LOGISTIC":
        pr = params.unary_params_s16(x.quant.scale, (0,))
    elif op.kind == "TANH":
        pr = params.unary_params_s16(x.quant.scale, (0, 1))
    elif op.kind == "LEAKY_RELU":
        pr = params.leaky_relu_params(x.quant.scale, x.quant.zero_point, op.opt("alpha", 0.2),
                                      y.quant.scale, y.quant.zero_point)
    else:
        pr = params.rsqrt_params(x.quant.scale, x.quant.zero_point, y.quant.scale,
                                 y.quant.zero_point)
    sym = p.names.take(f"nsn_op{op.index}")
    p.structs.append(StructView(ctype, f"{sym}_params",
                                _fields(pr, tuple(f.name for f in dataclasses.fields(pr)))))
    xin = p.operand(op.inputs[0])
    out = _out_buf(p, op, y)
    p.add_step(dict(kind="unary16", fn=fn, comment=_op_comment(g, op), sym=sym, x=xin,
                    sizes=(x.size,), out=out, tensor=op.outputs[0]),
               reads={xin.buf}, writes={out})


def _requantize_fn(src: str, dst: str) -> str:
    """The suffix of the nsn_requantize_* kernel from one integer type to another."""
    if src == dst:
        return _sfx(src)
    return f"{_sfx(src)}_{_sfx(dst)}"


def _quantize(p: _Program, op: NdOp) -> None:
    g = p.g
    x, y = _act_of(g, op, op.inputs[0]), _act_of(g, op, op.outputs[0])
    _need(g, op, f"nsn_requantize_{_requantize_fn(x.dtype, y.dtype)}")
    pr = params.requantize_params(x.quant.scale, x.quant.zero_point, y.quant.scale,
                                  y.quant.zero_point)
    sym = p.names.take(f"nsn_op{op.index}")
    p.structs.append(StructView("nsn_requantize_params", f"{sym}_params",
                                _fields(pr, _REQUANTIZE_FIELDS)))
    xin = p.operand(op.inputs[0])
    out = _out_buf(p, op, y)
    p.add_step(dict(kind="requantize", sfx=_requantize_fn(x.dtype, y.dtype),
                    comment=_op_comment(g, op), sym=sym, x=xin, sizes=(x.size,), out=out,
                    tensor=op.outputs[0]),
               reads={xin.buf}, writes={out})


_CONV_PARAM_FIELDS = ("input_offset", "output_offset", "stride_h", "stride_w", "pad_h", "pad_w",
                      "dilation_h", "dilation_w", "activation_min", "activation_max")
_CONV_DIM_FIELDS = ("input_h", "input_w", "input_c", "filter_h", "filter_w", "output_h",
                    "output_w", "output_c", "groups")


def conv_kernels_ready() -> bool:
    """The conv/depthwise/mean kernels (branch gtcrn-kernels) are in the kernel library."""
    from nsconv.resources import KERNEL_DIR

    return ((KERNEL_DIR / "include" / "nsn_nnfunctions_conv.h").is_file()
            and hasattr(params, "conv_geometry") and hasattr(params, "mean_params"))


def _conv_geometry(g: NdGraph, op: NdOp, x: NdTensor, w: NdTensor, y: NdTensor, groups: int):
    try:
        geo = params.conv_geometry(
            x.shape[1:], (w.shape[1], w.shape[2]), y.shape[3],
            padding="same" if op.opt("padding", 0) == 0 else "valid",
            stride=(op.opt("strideH", 1), op.opt("strideW", 1)),
            dilation=(op.opt("dilationHFactor", 1), op.opt("dilationWFactor", 1)), groups=groups)
    except ValueError as exc:
        raise _refuse(g, op, str(exc)) from None
    if (geo.output_h, geo.output_w) != tuple(y.shape[1:3]):
        raise _refuse(g, op, f"output {list(y.shape)} is not TFLM's geometry")
    return geo


def _conv(p: _Program, op: NdOp, act: NdOp | None = None) -> None:
    """CONV_2D (filter [out, kh, kw, in/groups]) and DEPTHWISE_CONV_2D (filter [1, kh, kw,
    out]): nsn_conv_s8/s16 and nsn_depthwise_conv_s8/s16, TFLM's per-channel requantization;
    with `act` (conv_activations), that int8 LEAKY_RELU applied by the conv's output stage: the
    step writes the LEAKY_RELU's output, or (the LEAKY_RELU reading a gather of several convs'
    outputs) the conv's own buffer, activated, which `_act_gather` then gathers."""
    g = p.g
    if not conv_kernels_ready():
        raise _refuse(g, op, f"no nsn_ kernel for {op.kind} in this kernel library yet")
    x, w, y = (_act_of(g, op, op.inputs[0]), g.tensors[op.inputs[1]],
               _act_of(g, op, op.outputs[0]))
    dt = _same_dtype(g, op, x, y)
    if len(x.shape) != 4 or x.shape[0] != 1 or len(w.shape) != 4:
        raise _refuse(g, op, "needs a batch-1 NHWC input and 4-D weights")
    depthwise = op.kind == "DEPTHWISE_CONV_2D"
    _need(g, op, f"nsn_{'depthwise_conv' if depthwise else 'conv'}_{_sfx(dt)}")
    n_out = y.shape[3]
    scales = _weights(g, op, w)
    groups = 1 if depthwise else x.shape[3] // w.shape[3]
    geo = _conv_geometry(g, op, x, w, y, groups)
    if dt == "int16":
        pr = params.conv_params_s16(x.quant.scale, scales, y.quant.scale, n_out,
                                    _activation(g, op))
        bbuf = _bias16(p, op, n_out, w.name)
    else:
        pr = params.conv_params(x.quant.scale, x.quant.zero_point, scales, y.quant.scale,
                                y.quant.zero_point, n_out, _activation(g, op))
        bbuf = None
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            b = g.tensors[op.inputs[2]]
            bbuf = p.const_buf(b, b.data)
    xin, geo = conv_input(p, op, geo)
    wbuf = p.const_buf(w, w.data)
    direct = act is not None and act.inputs[0] == op.outputs[0]
    last = act if direct else op  # the op whose output tensor the step writes
    out = _out_buf(p, last, g.tensors[last.outputs[0]])
    sym = p.names.take(f"nsn_op{op.index}")
    conv_fields = {"input_offset": -x.quant.zero_point, "output_offset": y.quant.zero_point,
                   "activation_min": pr.activation_min, "activation_max": pr.activation_max,
                   **{f: getattr(geo, f) for f in _CONV_PARAM_FIELDS[2:8]}}
    _per_channel(p, sym, pr, n_out)
    fields = tuple(Field(f, int(conv_fields[f])) for f in _CONV_PARAM_FIELDS)
    comment = _op_comment(g, op)
    if act is not None:
        fields += (Field("activation", _act_table(p, act)),)
        comment = _comment_text(f"{comment}; fused: {_op_comment(g, act)}")
    p.structs += [StructView("nsn_conv_params", f"{sym}_params", fields),
                  StructView("nsn_conv_dims", f"{sym}_dims", _fields(geo, _CONV_DIM_FIELDS))]
    k4 = (w.shape[1] * w.shape[2] * (x.shape[3] // groups) + 3) & ~3
    if not depthwise:
        # the DSP/MVE scratch of nsn_conv_s8 (9 k4 / 4 n_out + k4); int16: twice (checked at
        # init against the kernel library's own get_buffer_size)
        need = max(9 * k4, 4 * n_out + k4) * (2 if dt == "int16" else 1)
        cin = x.shape[3]
        if dt != "int16" and geo.filter_h == 1 and groups == 1 and cin % 4 == 0:
            # nsn_conv_s8's DSP row path: channel table, int16 weights, 16 pixels' columns
            need = max(need, 16 * n_out + 2 * n_out * k4 + 2 * cin * (15 + geo.filter_w))
        p.conv_scratch = max(p.conv_scratch, need)
        p.conv_dims.append((f"{sym}_dims", f"conv_{_sfx(dt)}"))
    elif dt != "int16" and n_out == x.shape[3] and n_out % 4 == 0 and geo.filter_w == 3:
        # the DSP scratch of nsn_depthwise_conv_s8: four channels' rows as int16 + weights
        need = 4 * geo.filter_h * (8 + 2 * (((geo.output_w + 3) & ~3) + 2))
        p.conv_scratch = max(p.conv_scratch, need)
        p.conv_dims.append((f"{sym}_dims", "depthwise_conv_s8"))
    step = dict(kind="dwconv" if depthwise else "conv", sfx=_sfx(dt), comment=comment, sym=sym,
                x=xin, wbuf=wbuf, bbuf=bbuf, out=out, tensor=last.outputs[0])
    if act is not None and not direct:
        del step["tensor"]  # holds no tensor of the model (debug dumps): the activated values
    p.add_step(step, reads={xin.buf}, writes={out})


def _act_gather(p: _Program, op: NdOp) -> None:
    """A LEAKY_RELU whose convs applied it (conv_activations, a gather of their outputs): its
    output is that gather of their activated buffers (a copy, as its input would have been)."""
    i = op.inputs[0]
    p.tensor_buf[op.outputs[0]] = p.copy(p.lay.views[i], p.g.tensors[op.outputs[0]])


_CONV_KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def conv_activations(g: NdGraph, lay: layout.LayoutResult) -> dict[int, NdOp]:
    """The int8 LEAKY_RELUs that the int8 convs before them can apply in their output stage
    (nsn_conv_params.activation), by conv op index. The LEAKY_RELU reads either a conv's output
    tensor itself (which is then never stored) or a gather of whole elements (no zero-point
    fill) of int8 conv outputs (a table applied per element commutes with moving elements);
    nothing else reads those outputs (no other op, no model output or state)."""
    made = {o: op for op in lay.compute for o in op.outputs}
    readers = _readers(g, lay)
    fused: dict[int, NdOp] = {}
    for op in lay.compute:
        if op.kind != "LEAKY_RELU" or len(op.inputs) != 1 or len(op.outputs) != 1:
            continue
        i = op.inputs[0]
        x, y = g.tensors[i], g.tensors[op.outputs[0]]
        v = lay.views.get(i)
        if v is not None and (v.kind != "gather" or (v.ids < 0).any()):
            continue
        convs = [made.get(r) for r in sorted(_roots(lay, i))]
        if (x.dtype == "int8" and y.dtype == "int8" and x.size == y.size and all(
                c is not None and c.kind in _CONV_KINDS and len(c.outputs) == 1
                and g.tensors[c.outputs[0]].dtype == "int8"
                and readers.get(c.outputs[0]) == {op.index} for c in convs)):
            fused.update((c.index, op) for c in convs)
    return fused


def _readers(g: NdGraph, lay: layout.LayoutResult) -> dict[int, set[int]]:
    """The compute ops (-1: a model output) reading each root tensor, through any view."""
    readers: dict[int, set[int]] = {}
    roots: dict[int, set[int]] = {}  # per tensor read: views are read by several ops
    for who, ins in [(op.index, op.inputs) for op in lay.compute] + [(-1, [i for _, i in
                                                                          g.outputs])]:
        for i in ins:
            if i not in roots:
                v = lay.views.get(i)  # a gather's roots from its runs (its ids may be many)
                roots[i] = ({r.root for r in v.runs if r.root != layout.ZERO}
                            if v is not None and v.kind == "gather" else _roots(lay, i))
            for r in roots[i]:
                readers.setdefault(r, set()).add(who)
    return readers


def _act_table(p: _Program, op: NdOp) -> str:
    """The int8 op's table in input order -128..127, the form nsn_conv_params.activation
    takes."""
    return _lut_table(p, op, centred=True)


def _mean(p: _Program, op: NdOp) -> None:
    """MEAN over contiguous axes: nsn_mean_s8/s16 on the [outer][count][inner] view."""
    g = p.g
    if not conv_kernels_ready():
        raise _refuse(g, op, "no nsn_ kernel for MEAN in this kernel library yet")
    x, y = _act_of(g, op, op.inputs[0]), _act_of(g, op, op.outputs[0])
    dt = _same_dtype(g, op, x, y)
    _need(g, op, f"nsn_mean_{_sfx(dt)}")
    axes = sorted({int(a) % len(x.shape) for a in g.tensors[op.inputs[1]].array().reshape(-1)})
    if axes != list(range(axes[0], axes[-1] + 1)):
        raise _refuse(g, op, f"reduces axes {axes}; only contiguous axes are supported")
    outer = int(np.prod(x.shape[: axes[0]], dtype=np.int64))
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    inner = int(np.prod(x.shape[axes[-1] + 1 :], dtype=np.int64))
    pr = params.mean_params(x.quant.scale, x.quant.zero_point, y.quant.scale,
                            y.quant.zero_point, count)
    xin = p.operand(op.inputs[0])
    out = _out_buf(p, op, y)
    sym = p.names.take(f"nsn_op{op.index}")
    p.structs.append(StructView("nsn_mean_params", f"{sym}_params",
                                _fields(pr, ("input_offset", "output_offset", "multiplier",
                                             "shift"))))
    p.add_step(dict(kind="mean", sfx=_sfx(dt), comment=_op_comment(g, op), sym=sym, x=xin,
                    sizes=(outer, count, inner), out=out, tensor=op.outputs[0]),
               reads={xin.buf}, writes={out})


KERNELS = {"CONV_2D": _conv, "DEPTHWISE_CONV_2D": _conv, "MEAN": _mean,
           "FULLY_CONNECTED": _fc, "ADD": _elementwise, "SUB": _elementwise,
           "MUL": _elementwise, "QUANTIZE": _quantize, "LOGISTIC": _lut, "TANH": _lut,
           **{k: _lut for k in LUT_OPS}}


# -- one GRU step's gate arithmetic as one call (nsn_gru_gates_s8) -------------------------------

_GRU_OPS = ("add_zr", "logistic", "mul_r", "add_n", "tanh", "sub_d", "mul_z", "add_h")


@dataclass(frozen=True)
class GruChain:
    """The eight ops of a GRU step after its hidden-state matmuls (nsn_nnfunctions_gru.h):
    s = ADD(x_zr, h_zr), g = LOGISTIC(s), z | r = halves of g's rows, m = MUL(r, h_n),
    n = TANH(ADD(x_n, m)), d = SUB(h, n), h' = ADD(n, MUL(z, d)); operands as tensor indices."""

    ops: tuple[NdOp, ...]  # in _GRU_OPS order
    x_zr: int
    h_zr: int
    h_n: int
    x_n: int
    h: int
    z: int  # the views of g's halves
    r: int
    rows: int
    hidden: int
    z_offset: int  # z's first element in a row of 2H gates (r's is hidden - z_offset)


def gru_chains(g: NdGraph, lay: layout.LayoutResult) -> list[GruChain]:
    """Every GRU gate chain of the compute ops whose intermediate tensors nothing else reads
    (no other op, no model output): only h' leaves the chain."""
    made = {o: op for op in lay.compute for o in op.outputs}
    readers: dict[int, set[int]] = {}
    for who, ins in [(op.index, op.inputs) for op in lay.compute] + [(-1, [i for _, i in
                                                                          g.outputs])]:
        for i in ins:
            for r in _roots(lay, i):
                readers.setdefault(r, set()).add(who)
    chains: list[GruChain] = []
    used: set[int] = set()
    for op in lay.compute:
        c = _gru_match(g, lay, made, op)
        mine = {o.index for o in c.ops} if c is not None else set()
        if mine and not used & mine and all(readers.get(o.outputs[0], set()) <= mine
                                            for o in c.ops[:-1]):
            chains.append(c)
            used |= mine
    return chains


def _roots(lay: layout.LayoutResult, i: int) -> set[int]:
    v = lay.views.get(i)
    if i < 0 or v is None:
        return {i} if i >= 0 else set()
    if v.kind == "alias":
        return {v.root}
    ids = v.ids.reshape(-1)
    return {int(r) for r in np.unique(ids[ids >= 0] >> 32)}


def _gru_match(g: NdGraph, lay: layout.LayoutResult, made: dict[int, NdOp], last: NdOp
               ) -> GruChain | None:
    """The chain ending in `last` (the ADD giving h'), or None."""
    def by(i: int, kind: str) -> NdOp | None:
        op = made.get(i)
        return op if op is not None and op.kind == kind and i not in lay.views else None

    def pair(op: NdOp, test) -> tuple[int, int] | None:
        a, b = op.inputs[:2]
        return (a, b) if test(a, b) else (b, a) if test(b, a) else None

    if last.kind != "ADD" or len(last.inputs) != 2:
        return None
    nq = pair(last, lambda a, b: by(a, "TANH") and by(b, "MUL"))
    if nq is None:
        return None
    n, q = nq
    tanh, mul_z = made[n], made[q]
    zd = pair(mul_z, lambda a, b: by(b, "SUB") is not None and made[b].inputs[1] == n)
    if zd is None:
        return None
    sub_d, add_n = made[zd[1]], by(tanh.inputs[0], "ADD")
    xm = add_n and pair(add_n, lambda a, b: by(b, "MUL") is not None)
    if not xm:
        return None
    mul_r = made[xm[1]]
    roots = _roots(lay, zd[0])
    logistic = by(next(iter(roots)), "LOGISTIC") if len(roots) == 1 else None
    rh = logistic and pair(mul_r, lambda a, b: _roots(lay, a) == roots)
    add_zr = logistic and by(logistic.inputs[0], "ADD")
    if not rh or not add_zr:
        return None
    ops = (add_zr, logistic, mul_r, add_n, tanh, sub_d, mul_z, last)
    return _gru_shape(g, lay, ops, add_zr.inputs[0], add_zr.inputs[1], rh[1], xm[0],
                      sub_d.inputs[0], zd[0], rh[0])


def _gru_shape(g: NdGraph, lay: layout.LayoutResult, ops: tuple[NdOp, ...], x_zr: int,
               h_zr: int, h_n: int, x_n: int, h: int, z: int, r: int) -> GruChain | None:
    """The chain's rows and hidden size, when every tensor is int8, no operand broadcasts and
    z and r are the two halves of each row of the gates."""
    ts = g.tensors
    n_shape = ts[ops[4].outputs[0]].shape
    hidden = n_shape[-1] if n_shape else 1
    rows = ts[ops[4].outputs[0]].size // hidden
    gates = ts[ops[1].outputs[0]]
    wide = [ops[0].outputs[0], gates.index, x_zr, h_zr]
    narrow = [o.outputs[0] for o in ops[2:]] + [h_n, x_n, h, z, r]
    if any(ts[i].dtype != "int8" or ts[i].quant is None or ts[i].quant.per_channel
           for i in wide + narrow) or any(len(o.outputs) != 1 for o in ops):
        return None
    if any(ts[i].size != 2 * rows * hidden or not _same_flat_order(ts[i].shape, gates.shape)
           for i in wide) or any(ts[i].size != rows * hidden or not _same_flat_order(
               ts[i].shape, n_shape) for i in narrow if i not in (z, r)):
        return None
    base = (np.int64(gates.index) << 32) + np.arange(rows)[:, None] * 2 * hidden + np.arange(
        hidden)
    ids = {i: (lay.views[i].ids.reshape(-1) if i in lay.views else None) for i in (z, r)}
    for zo in (0, hidden):
        if all(v is not None and np.array_equal(v, (base + o).reshape(-1))
               for v, o in ((ids[z], zo), (ids[r], hidden - zo))):
            return GruChain(ops, x_zr, h_zr, h_n, x_n, h, z, r, rows, hidden, zo)
    return None


def _lut_table(p: _Program, op: NdOp, centred: bool = False) -> str:
    """The name of the 256-entry table of an int8 single-input op (TFLM's output for every
    input, nsconv.compiler.tflm_tables), each table emitted once: indexed by the input byte
    as nsn_lut_s8 and the GRU gates read it, or (`centred`) by input + 128, in input order
    -128..127, as a conv's fused activation reads it."""
    x, y = p.g.tensors[op.inputs[0]], p.g.tensors[op.outputs[0]]
    key = (centred, op.kind, x.quant, y.quant, op.options)
    if key not in p.lut_cache:
        table = lut_s8(p.g, op)
        if centred:
            table = np.roll(table, 128)  # [i] = output for input i - 128
        raw = table.tobytes()
        if raw not in p.luts:
            stem, how = ("act", " fused into a conv, indexed by input + 128:") if centred \
                else ("table", ":")
            name = p.names.take(f"nsn_{op.kind.lower()}_{stem}_{len(p.luts)}")
            p.luts[raw] = LutTable(name, f"{op.kind}{how} input {_qtext(x.quant)} -> output "
                                   f"{_qtext(y.quant)} (TFLM's output for every input)",
                                   tuple(_wrap(table, 16, 4)))
        p.lut_cache[key] = p.luts[raw].name
    return p.lut_cache[key]


def gru_gates_params(g: NdGraph, c: GruChain) -> dict[str, object]:
    """Each op's TFLM parameters, its operands in the kernel's order (ADD and MUL commute)."""
    t = {k: g.tensors[op.outputs[0]] for k, op in zip(_GRU_OPS, c.ops, strict=True)}
    q = {k: (v.quant.scale, v.quant.zero_point) for k, v in t.items()}
    for k, i in (("x_zr", c.x_zr), ("h_zr", c.h_zr), ("h_n", c.h_n), ("x_n", c.x_n),
                 ("h", c.h)):
        q[k] = (g.tensors[i].quant.scale, g.tensors[i].quant.zero_point)
    act = {k: _activation(g, op) for k, op in zip(_GRU_OPS, c.ops, strict=True)}
    return {
        "add_zr": params.add_params(*q["x_zr"], *q["h_zr"], *q["add_zr"], act["add_zr"]),
        "mul_r": params.mul_params(*q["logistic"], *q["h_n"], *q["mul_r"], act["mul_r"]),
        "add_n": params.add_params(*q["x_n"], *q["mul_r"], *q["add_n"], act["add_n"]),
        "sub_d": params.sub_params(*q["h"], *q["tanh"], *q["sub_d"], act["sub_d"]),
        "mul_z": params.mul_params(*q["logistic"], *q["sub_d"], *q["mul_z"], act["mul_z"]),
        "add_h": params.add_params(*q["tanh"], *q["mul_z"], *q["add_h"], act["add_h"]),
    }


def _rescale_init(bound: int, offset: int, pre_shift: int, multiplier: int, shift: int,
                  out_offset: int) -> tuple[list[int], int] | None:
    """nsn_rescale_init (kernels/src/nsn_kernels_internal.h) at generation time: the
    rescaling's (scale, offset, multiplier, nudge, exponent) and its bound, or None where the C
    returns -1."""
    half = multiplier == 1 << 30 and shift == 0 and pre_shift >= 1
    e = 1 if half else max(-shift, 0)
    k = pre_shift + max(shift, 0) + 1 + half
    if (bound < 0 or bound > 1 << 30 or multiplier < 0 or not 0 <= pre_shift <= 30
            or not -31 <= shift <= 31 or k > 30 or bound << k > 2**31 - 1
            or not -256 <= out_offset <= 256 or e > 22):
        return None
    nudge = (1 << (e - 1) if e else 0) + out_offset * (1 << e)
    return [1 << k, offset << k, multiplier, nudge, e], bound << (pre_shift - 1 if half else k - 1)


def _offset_bound(offset: int) -> int:
    return -1 if abs(offset) > 1 << 16 else 128 + abs(offset)


def gru_dsp_constants(prs: dict[str, object]) -> list[int] | None:
    """The DSP path's constants of nsn_gru_gates_s8 (nsn_nnfunctions_gru.h, field `dsp`), or
    None when an op is outside that path's exact bounds (those of nsn_elementwise_s8.c's DSP
    ADD/SUB and MUL, and the fixed scales of its loops: TFLM's int8 ADD/SUB left shift 20 and
    output multipliers below 1) or has a fused activation range."""
    out: list[int] = []
    exact2 = adds = 0  # bit i: the i-th ADD/SUB's exact input is input 2
    for k, pr in prs.items():
        if (pr.activation_min, pr.activation_max) != (-128, 127):
            return None
        if k.startswith("mul"):
            b1, b2 = _offset_bound(pr.input1_offset), _offset_bound(pr.input2_offset)
            r = (_rescale_init(b1 * b2, 0, 0, pr.output_multiplier, pr.output_shift,
                               pr.output_offset) if 0 <= b1 <= 512 and 0 <= b2 <= 512 else None)
            if r is None or r[0][0] != 2 or pr.input1_offset != 128:
                return None  # the loops double x2 with a shift; z, r: LOGISTIC's zero point
            out += [pr.input1_offset, pr.input2_offset * 2] + r[0][2:]
            continue
        c = _add_dsp_constants(pr, -1 if k.startswith("sub") else 1)
        if c is None:
            return None
        out += c[0]
        exact2 |= c[1] << adds
        adds += 1
    return out + [exact2]


def _exact(multiplier: int, shift: int, left_shift: int) -> bool:
    """TFLM's rescaling of the ADD/SUB input with the larger scale: a multiplier of exactly 0.5
    on (x + offset) << left_shift is (x + offset) << (left_shift - 1), no rounding."""
    return multiplier == 1 << 30 and shift == 0 and 1 <= left_shift <= 20


def _add_dsp_constants(pr, sign: int) -> tuple[list[int], int] | None:
    """One ADD (sign 1) or SUB (-1) of the DSP path: the rounded input's rescaling (offset,
    multiplier, nudge, exponent; its scale 2^21) and the output's (multiplier, nudge, exponent;
    scale 2), so that the output rescaling's operand u = +-x_e * 2^20 +- 2 * R(x_r) equals
    nsn_rescale_init's (A +- B) * 2 with the exact input's A = (x_e + o_e) << (left_shift - 1):
    the exact input's offset term o_e * 2^20 goes into R's nudge, divided by the rounded term's
    sign and 2 and multiplied by 2^exponent (adding c to SMMLAR's accumulator adds c to the
    result, and floor((y + c * 2^e) / 2^e) = floor(y / 2^e) + c). Also whether input 2 is the
    exact one."""
    b = [_offset_bound(pr.input1_offset), _offset_bound(pr.input2_offset)]
    r = [_rescale_init(b[i], o, pr.left_shift, m, sh, 0) for i, (o, m, sh) in enumerate((
        (pr.input1_offset, pr.input1_multiplier, pr.input1_shift),
        (pr.input2_offset, pr.input2_multiplier, pr.input2_shift)))]
    if r[0] is None or r[1] is None or max(r[0][1], r[1][1]) > 1 << 29:
        return None
    ro = _rescale_init(r[0][1] + r[1][1], 0, 0, pr.output_multiplier, pr.output_shift,
                       pr.output_offset)
    if ro is None or 0 in (r[0][0][4], r[1][0][4], ro[0][4]):
        return None
    if _exact(pr.input1_multiplier, pr.input1_shift, pr.left_shift):
        e, s_e, s_r, o_e = 0, 1, sign, pr.input1_offset
    elif _exact(pr.input2_multiplier, pr.input2_shift, pr.left_shift):
        e, s_e, s_r, o_e = 1, sign, 1, pr.input2_offset
    else:
        return None
    rin, scale = r[1 - e], ro[0][0]
    if pr.left_shift != 20 or scale != 2 or rin[0][0] != 1 << 21:  # the loops' fixed shifts
        return None
    bound_r = rin[1]  # |R| (nsn_rescale_init's bound)
    ce = o_e * s_e * s_r * (1 << 19)  # the offset term o_e * s_e * 2^20 over 2 * s_r
    nudge = rin[0][3] + ce * (1 << rin[0][4])
    if (abs(ce) + bound_r + 1) << rin[0][4] > 2**31 - 1:
        return None
    return [rin[0][1], rin[0][2], nudge, rin[0][4]] + ro[0][2:], e


def _gru_gates(p: _Program, c: GruChain) -> None:
    """One nsn_gru_gates_s8 step for the chain, where its last op was."""
    g = p.g
    _need(g, c.ops[-1], "nsn_gru_gates_s8")
    sym = p.names.take(f"nsn_op{c.ops[-1].index}")
    prs = gru_gates_params(g, c)
    fields = [Field(k, "{ " + ", ".join(f".{f.name} = {f.value}" for f in _fields(
        pr, _ADD_FIELDS if k.startswith(("add", "sub")) else _MUL_FIELDS)) + " }")
        for k, pr in prs.items()]
    dsp = gru_dsp_constants(prs)
    if dsp is not None:
        p.arrays.append(ArrayView("int32_t", f"{sym}_dsp", len(dsp), tuple(_wrap(dsp, 7, 11))))
    fields += [Field("sigmoid", _lut_table(p, c.ops[1])), Field("tanh", _lut_table(p, c.ops[4])),
               Field("dsp", f"{sym}_dsp" if dsp is not None else "NULL"),
               Field("hidden", c.hidden), Field("z_offset", c.z_offset)]
    p.structs.append(StructView("nsn_gru_gates_params", f"{sym}_params", tuple(fields)))
    ins = tuple(p.operand(i) for i in (c.x_zr, c.h_zr, c.h_n, c.x_n, c.h))
    y = g.tensors[c.ops[-1].outputs[0]]
    out = _out_buf(p, c.ops[-1], y)
    ins_text = ", ".join(f"{g.tensors[i].name} {list(g.tensors[i].shape)}"
                         for i in (c.x_zr, c.h_zr, c.h_n, c.x_n, c.h))
    comment = _comment_text(
        f"op {c.ops[-1].index}: GRU_GATES (ops " + ", ".join(f"{o.index} {o.kind}" for o in c.ops)
        + f"; {ins_text}) -> {y.name} {list(y.shape)} int8, {_qtext(y.quant)}")
    p.add_step(dict(kind="gru", comment=comment, sym=sym, gru_ins=ins, sizes=(c.rows,), out=out,
                    tensor=c.ops[-1].outputs[0]),
               reads={o.buf for o in ins}, writes={out})


def _op_comment(g: NdGraph, op: NdOp) -> str:
    ins = ", ".join(f"{g.tensors[i].name} {list(g.tensors[i].shape)}" for i in op.inputs
                    if i >= 0 and not g.tensors[i].is_const)
    outs = ", ".join(f"{g.tensors[o].name} {list(g.tensors[o].shape)} {g.tensors[o].dtype}, "
                     f"{_qtext(g.tensors[o].quant)}" for o in op.outputs)
    return _comment_text(f"op {op.index}: {op.kind} ({ins}) -> {outs}")


# -- building the program ------------------------------------------------------------------------


def compile_program(g: NdGraph, spec: NdSpec) -> _Program:
    """Fold the layout, map every compute op to its kernel (refusing the first without one),
    add the end of the step; buffers are not placed yet."""
    for op in g.ops:
        if op.kind not in layout.DATA_MOVEMENT and op.kind not in KERNELS:
            raise NsconvError(f"{g.where(op)}: no nsn_ kernel for {op.kind} yet (kernels: "
                              + ", ".join(sorted(k for k in KERNELS if k not in LUT_OPS))
                              + " and int8 tables of " + ", ".join(sorted(LUT_OPS)) + ")",
                              g.path)
    p = _Program(g, layout.fold(g), spec)
    feat = g.tensors[g.index_of(spec.features)]
    if feat.dtype == "int8":  # read in place from the caller's frame
        p.tensor_buf[feat.index] = p.new_buf("features", feat, "features_in")
    else:  # the caller's bytes may be unaligned: copied into the arena first
        b = p.new_buf("arena", feat, "features_in")
        p.tensor_buf[feat.index] = b
        p.add_step(dict(kind="load", comment="the feature frame into the arena", out=b,
                        nbytes=feat.nbytes), reads=set(), writes={b})
    for s in spec.states:
        t = g.tensors[g.index_of(s.input)]
        p.state_of_input[t.index] = s
        p.tensor_buf[t.index] = p.new_buf("state", t, "state_" + identifier(s.name))
    known = {feat.index} | set(p.state_of_input)
    for name, i in g.inputs:
        if i not in known:
            raise NsconvError(f"model input {name!r} is neither the features nor a state",
                              g.path)
    # fused GRU gates: one step at each chain's last op
    chains = {c.ops[-1].index: c for c in gru_chains(g, p.lay)}
    p.fused = {o.index for c in chains.values() for o in c.ops}
    acts = {k: a for k, a in conv_activations(g, p.lay).items() if a.index not in p.fused}
    gathers = {a.index for a in acts.values() if a.inputs[0] in p.lay.views}
    p.fused |= {a.index for a in acts.values()}  # computed by their convs' steps
    for op in p.lay.compute:
        if op.index in chains:
            _gru_gates(p, chains[op.index])
        elif op.index in acts:
            _conv(p, op, acts[op.index])
        elif op.index in gathers:
            _act_gather(p, op)
        elif op.index not in p.fused:
            KERNELS[op.kind](p, op)
    _end(p)
    return p


def _end(p: _Program) -> None:
    """Gather every state output (before any state is written), then the write-backs. A state
    whose next value only moves its own bytes and reads no other state is updated in place
    (`_in_place`), after every other gather."""
    g = p.g
    srcs, in_place = [], []
    for s in p.spec.states:
        i_in, i_out = g.index_of(s.input), g.index_of(s.output, outputs=True)
        t_in, t_out = g.tensors[i_in], g.tensors[i_out]
        if t_in.size != t_out.size or t_out.dtype not in ("int8", "int16"):
            raise NsconvError(f"state {s.name}: output {t_out.name!r} {t_out.dtype} "
                              f"{list(t_out.shape)} does not fit input {t_in.name!r} "
                              f"{t_in.dtype} {list(t_in.shape)}", g.path)
        if _in_place(p, i_in, i_out):
            in_place.append((s, i_in, i_out))
            continue
        srcs.append((s, t_in, t_out, _state_source(p, i_out)))
    mask_i = g.index_of(p.spec.mask, outputs=True)
    mask = p.operand(mask_i)
    for s, i_in, i_out in in_place:
        if p.bufs[mask.buf].kind == "state":  # the mask is read after the updates
            srcs.append((s, g.tensors[i_in], g.tensors[i_out], _state_source(p, i_out)))
        else:
            p.copy(p.lay.views[i_out], g.tensors[i_out], dst=p.tensor_buf[i_in])
    updates = []
    for s, t_in, t_out, o in srcs:
        rq = None
        if t_in.quant != t_out.quant or t_in.dtype != t_out.dtype:
            fn = f"nsn_requantize_{_requantize_fn(t_out.dtype, t_in.dtype)}"
            if not kernel_defined(fn):
                raise NsconvError(f"state {s.name}: no kernel {fn} for its requantization at "
                                  "the end of a step in this kernel library yet", g.path)
            pr = params.requantize_params(t_out.quant.scale, t_out.quant.zero_point,
                                          t_in.quant.scale, t_in.quant.zero_point)
            rq = p.names.take(f"nsn_{identifier(s.name)}_state_requantize")
            p.structs.append(StructView("nsn_requantize_params", rq,
                                        _fields(pr, _REQUANTIZE_FIELDS)))
        updates.append((s, o, rq, t_in, _requantize_fn(t_out.dtype, t_in.dtype)))
    p.add_step(dict(kind="end", comment="end of the step", updates=tuple(updates), mask=mask,
                    mask_tensor=mask_i),
               reads={u[1].buf for u in updates} | {mask.buf},
               writes=set())


def _state_source(p: _Program, i_out: int) -> Operand:
    """A state output's value at the end of the step, never in a state buffer."""
    g = p.g
    t_out = g.tensors[i_out]
    o = p.operand(i_out)
    if p.bufs[o.buf].kind in ("state", "features", "const"):  # never write from a state
        v = p.lay.views.get(i_out) or layout.make_view(
            g, i_out, layout.root_ids(t_out).reshape(-1))
        o = Operand(p.copy(dataclasses.replace(v, kind="gather", runs=layout.runs_of(v.ids)),
                           t_out))
    return o


def _in_place(p: _Program, i_in: int, i_out: int) -> bool:
    """The state's next value (a gather of the same quantization) reads no other state and its
    runs from the state itself move bytes down in an order where none reads bytes already
    overwritten: then it is copied straight into the state (no arena copy, no write-back)."""
    g, v = p.g, p.lay.views.get(i_out)
    t_in, t_out = g.tensors[i_in], g.tensors[i_out]
    if v is None or v.kind != "gather" or t_in.dtype != t_out.dtype or t_in.quant != t_out.quant:
        return False
    if any(r.root in p.state_of_input and r.root != i_in for r in v.runs):
        return False
    own = sorted((r for r in v.runs if r.root == i_in), key=lambda r: r.dst)
    for k, r in enumerate(own):
        if r.src < r.dst or any(r.src < q.dst + q.length and q.dst < r.src + r.length
                                for q in own[:k]):
            return False
    return True


def _lifetimes(p: _Program) -> None:
    for t, (reads, writes) in enumerate(zip(p.reads, p.writes, strict=True)):
        for b in writes:
            if p.bufs[b].start < 0:
                p.bufs[b].start = t
            p.bufs[b].end = max(p.bufs[b].end, t)
        for b in reads:
            p.bufs[b].end = max(p.bufs[b].end, t)


# -- rendering ------------------------------------------------------------------------------------


def _ptr(p: _Program, o: Operand) -> str:
    b = p.bufs[o.buf]
    return b.expr if o.offset == 0 else f"({b.expr} + {o.offset})"


def _step_view(p: _Program, k: int, s: dict) -> Step | list[UpdateStep]:
    kind = s["kind"]
    out = p.bufs[s["out"]] if "out" in s else None
    debug = ()
    if "tensor" in s and out is not None:
        t = p.g.tensors[s["tensor"]]
        debug = ((t.index, _c_string(t.name[:60]), out.expr, out.nbytes),)
    if kind == "copy":
        return _copy_view(p, k, s, out)
    if kind == "load":
        return Step("load", k, s["comment"], out=out.expr, nbytes=s["nbytes"])
    if kind == "fcb":
        fcs = tuple(FcOpView(f["sym"], f["blocks"][0], f["blocks"][1], f["records"],
                             p.bufs[f["wbuf"]].name, p.bufs[f["bbuf"]].name,
                             p.bufs[f["out"]].expr) for f in s["fcs"])
        debug = tuple((f["tensor"], _c_string(p.g.tensors[f["tensor"]].name[:60]),
                       p.bufs[f["out"]].expr, p.bufs[f["out"]].nbytes) for f in s["fcs"])
        return Step(kind, k, s["comment"], ins=(_ptr(p, s["x"]),), rows=s["rows"],
                    n_in=s["n_in"], n_out=s["n_out"], debug=debug, fcs=fcs)
    if kind == "fc":
        return Step(kind, k, s["comment"], out=out.expr, ins=(_ptr(p, s["x"]),), sym=s["sym"],
                    rows=s["rows"], n_in=s["n_in"], n_out=s["n_out"],
                    weights=p.bufs[s["wbuf"]].name,
                    bias=p.bufs[s["bbuf"]].name if s["bbuf"] is not None else "NULL",
                    debug=debug, sfx=s["sfx"], table=s["blocks"][0] if s["blocks"] else "",
                    sizes=(s["blocks"][1],) if s["blocks"] else (), records=s["records"])
    if kind in ("add", "sub", "mul"):
        return Step(kind, k, s["comment"], out=out.expr,
                    ins=(_ptr(p, s["a"]), _ptr(p, s["b"])), sizes=s["sizes"], sym=s["sym"],
                    debug=debug, sfx=s["sfx"])
    if kind in ("conv", "dwconv"):
        return Step(kind, k, s["comment"], out=out.expr, ins=(_ptr(p, s["x"]),), sym=s["sym"],
                    weights=p.bufs[s["wbuf"]].name,
                    bias=p.bufs[s["bbuf"]].name if s["bbuf"] is not None else "NULL",
                    debug=debug, sfx=s["sfx"])
    if kind == "mean":
        return Step("mean", k, s["comment"], out=out.expr, ins=(_ptr(p, s["x"]),),
                    sizes=s["sizes"], sym=s["sym"], debug=debug, sfx=s["sfx"])
    if kind == "gru":
        return Step("gru", k, s["comment"], out=out.expr,
                    ins=tuple(_ptr(p, o) for o in s["gru_ins"]), sizes=s["sizes"], sym=s["sym"],
                    debug=debug)
    if kind in ("lut", "requantize", "unary16"):
        return Step(kind, k, s["comment"], out=out.expr, ins=(_ptr(p, s["x"]),),
                    sizes=s["sizes"], sym=s.get("sym", ""), table=s.get("table", ""),
                    debug=debug, sfx=s.get("sfx", "s8"), fn=s.get("fn", ""))
    raise AssertionError(kind)


def _copy_view(p: _Program, k: int, s: dict, out: Buf) -> Step:
    """A copy step: the rows that repeat one pattern as unrolled row loops (layout.row_plan),
    the other runs inline (few) or as a copy table."""
    srcs = tuple(p.bufs[b].expr for b in s["src_bufs"])
    loops, rest = layout.row_plan(s["raw_runs"], s["nbytes"], s.get("item", 1))
    runs = tuple(RunView(d, srcs[slot] if slot >= 0 else "", slot, o, n)
                 for d, slot, o, n in rest)
    table = ""
    entries = strided_runs(rest)
    if len(runs) > INLINE_RUNS:
        table = p.names.take(f"nsn_runs_{k}")
        p.run_tables.append(RunTable(table, tuple(entries)))
    views = tuple(RowLoopView(lp.dst, lp.rows, lp.row_bytes,
                              tuple((srcs[slot], first, step) for slot, first, step in lp.ptrs),
                              lp.moves) for lp in loops)
    return Step("copy", k, s["comment"], out=out.expr, runs=runs, sources=srcs,
                table=table, zero_byte=s["zero_byte"], nbytes=s["nbytes"],
                sizes=(len(entries),), moves=s.get("moves", ()), loops=views)


def _const_view(name: str, t: NdTensor, data: bytes) -> ConstView:
    arr = np.frombuffer(data, np.dtype(t.dtype).newbyteorder("<"))
    wide = t.dtype in ("int32", "int64")
    return ConstView(name=name, source=_comment_text(t.name), dtype=t.dtype,
                     ctype=_CTYPE[t.dtype], shape_text="[" + ", ".join(map(str, t.shape)) + "]",
                     quant_text=_qtext(t.quant), users="the step", dims=(int(arr.size),),
                     rows=None, lines=tuple(_wrap(arr, 7 if wide else 16, 11 if wide else 6)))


def _plan_arena(p: _Program, alignment: int) -> tuple[list[Buf], int]:
    """Arena offsets (memplan.plan_intervals); a slab (`_Program.slab`) is one interval from
    its first write to its last read, its buffers back to back."""
    arena = [b for b in p.bufs if b.kind == "arena"]
    in_slab = {b for slab in p.slabs for b in slab}
    alone = [b for b in arena if b.id not in in_slab]
    items = [(b.nbytes, b.start, b.end) for b in alone]
    for slab in p.slabs:
        bs = [p.bufs[i] for i in slab]
        items.append((sum(b.nbytes for b in bs), min(b.start for b in bs),
                      max(b.end for b in bs)))
    offsets, arena_bytes = plan_intervals(items, alignment)
    for b, off in zip(alone, offsets, strict=False):
        b.offset = off
    for slab, off in zip(p.slabs, offsets[len(alone):], strict=True):
        for i in slab:
            p.bufs[i].offset = off
            off += p.bufs[i].nbytes
    return arena, arena_bytes


def build_nd_view(p: _Program, alignment: int = 4, command_line: str = "") -> NdView:
    _lifetimes(p)
    arena, arena_bytes = _plan_arena(p, alignment)
    steps: list[Step] = []
    updates: list[UpdateStep] = []
    mask_src = ""
    for k, s in enumerate(p.steps):
        if s["kind"] == "end":
            for st, o, rq, t_in, sfx in s["updates"]:
                updates.append(UpdateStep("state_" + identifier(st.name), _ptr(p, o), t_in.size,
                                          t_in.nbytes, rq, sfx))
            mask_src = _ptr(p, s["mask"])
            continue
        steps.append(_step_view(p, k, s))
    g = p.g
    feat = p.bufs[p.tensor_buf[g.index_of(p.spec.features)]]
    mask_t = g.tensors[g.index_of(p.spec.mask, outputs=True)]
    states = []
    for s in p.spec.states:
        t = g.tensors[g.index_of(s.input)]
        states.append(StateField(s.name, "state_" + identifier(s.name), _CTYPE[t.dtype], t.size,
                                 t.nbytes, _qtext(t.quant), t.quant.zero_point,
                                 p.state_tail.get(t.index, 0)))
    consts = tuple(_const_view(p.bufs[b].name, t, d) for b, (t, d) in p.const_data.items())
    pointers = tuple(PointerLine(b.name, _CTYPE[b.dtype], b.offset,
                                 _comment_text(f"{b.tensor[:70]}: {b.nbytes} bytes, steps "
                                               f"{b.start}..{b.end}"))
                     for b in arena)
    counts: dict[str, int] = {}
    for op in p.lay.compute:
        if op.index not in p.fused:
            counts[op.kind] = counts.get(op.kind, 0) + 1
    fused_calls = sum(s["kind"] == "gru" for s in p.steps)
    if fused_calls:
        counts["GRU_GATES"] = fused_calls
    return NdView(
        version=__version__, model_title=p.spec.title,
        source_text=_comment_text(Path(g.path).name), sha256=g.sha256,
        command_text=_comment_text(command_line), command_c=_c_string(command_line),
        features_bytes=feat.nbytes, features_ctype=_CTYPE[feat.dtype],
        features_in_place=feat.kind == "features", features_ptr=feat.name,
        mask_bytes=mask_t.nbytes, mask_ctype=_CTYPE[mask_t.dtype],
        arena_bytes=arena_bytes, unshared_bytes=sum(b.nbytes for b in arena),
        state_bytes=sum(s.nbytes for s in states),
        max_fc_input=max((s["n_in"] for s in p.steps if s["kind"] in ("fc", "fcb")),
                         default=0),
        max_fc_output=max((s["n_out"] for s in p.steps if s["kind"] == "fcb"), default=0),
        conv_scratch=p.conv_scratch, conv_dims=tuple(p.conv_dims),
        uses_conv=any(s["kind"] in ("conv", "dwconv", "mean") for s in p.steps),
        uses_s16=any(b.dtype == "int16" for b in p.bufs),
        const_bytes=sum(len(d) for _, d in p.const_data.values()),
        states=tuple(states), pointers=pointers, steps=tuple(steps), updates=tuple(updates),
        mask_src=mask_src, structs=tuple(p.structs), arrays=tuple(p.arrays),
        luts=tuple(p.luts.values()), run_tables=tuple(p.run_tables), consts=consts,
        op_counts=tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        folded_counts=tuple(p.lay.folded.items()))


def _profile_kinds(steps) -> tuple[tuple[str, ...], dict[int, int]]:
    """The op kinds of -DNSN_PROFILE_OPS builds (TFLite op names; COPY for data movement) and
    each step's kind id."""
    def kind(s: Step) -> str:
        m = re.match(r"op \d+: (\w+)", s.comment)
        return "COPY" if s.kind in ("copy", "load") or m is None else m[1]

    kinds = tuple(sorted({kind(s) for s in steps}))
    return kinds, {s.id: kinds.index(kind(s)) for s in steps}


def render_nd(view: NdView) -> dict[str, str]:
    env = environment()
    ctx = view.context()
    ctx["exits"] = ()
    ctx["model_title"] = view.model_title
    ctx["separate_const_bytes"] = view.const_bytes
    ctx["max_fc_s4_input"] = 0  # the weights templates' int4 note (no int4 weights here)
    ctx["prof_kinds"], ctx["prof_ids"] = _profile_kinds(view.steps)
    files = {"nsn_model.h": "nsn_nd_model.h.j2", "nsn_model.c": "nsn_nd_model.c.j2",
             "nsn_weights.h": "nsn_weights.h.j2", "nsn_weights.c": "nsn_weights.c.j2"}
    return {name: env.get_template(tpl).render(**ctx) for name, tpl in files.items()}


@dataclass(frozen=True)
class NdResult:
    files: tuple[Path, ...]
    view: NdView

    def summary(self) -> str:
        v = self.view
        ops = ", ".join(f"{k} {n}" for k, n in v.op_counts)
        folded = ", ".join(f"{k} {n}" for k, n in v.folded_counts)
        copies = sum(1 for s in v.steps if s.kind == "copy")
        return (f"wrote {', '.join(p.name for p in self.files)} to {self.files[0].parent}\n"
                f"kernel calls: {ops}; copies {copies}\n"
                f"data movement folded: {folded}\n"
                f"memory plan: arena {v.arena_bytes:,} bytes (no reuse: {v.unshared_bytes:,}), "
                f"states {v.state_bytes:,} bytes, constants {v.const_bytes:,} bytes")


def generate_nd(tflite: Path, spec: NdSpec, dest: Path, command_line: str = "") -> NdResult:
    from nsconv.compiler.ndgraph import read_nd

    g = read_nd(tflite)
    view = build_nd_view(compile_program(g, spec), command_line=command_line)
    return NdResult(write_texts(render_nd(view), Path(dest)), view)
