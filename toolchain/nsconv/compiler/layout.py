# SPDX-License-Identifier: Apache-2.0
"""Folding pure data movement into aliases and constant copy tables (the layout pass).

A step model converted from an ONNX graph moves data around a lot: RESHAPE, SQUEEZE,
EXPAND_DIMS, TRANSPOSE, GATHER (constant indices), SLICE, STRIDED_SLICE, PAD/PADV2 (with the
zero point), CONCATENATION, SPLIT, SPLIT_V, PACK and UNPACK. None of them computes a value when
their operands share one quantization: every output element is an element of an input, or the
zero point. The pass evaluates these ops once, at compile time, on arrays of element ids
instead of values ("provenance"): an id names a root tensor (a model input, the output of a
compute op, or a constant) and a flat element index in it, or -1 for the zero point.

Each tensor that a compute op reads, or that the model outputs, and that a data-movement op
produced, becomes a `View` of its roots:

  alias   the bytes are already in place: one root, consecutive elements (a pointer and an
          offset; no code)
  const   every element comes from constants or is the zero point: a new constant, folded now
  gather  anything else: one copy into its own buffer before the first reader, given as runs
          (destination, root, source, length) of contiguous elements; zeros are runs from root
          -1 (set to the zero point). The runs are the constant copy table of the generated C.

A data-movement op whose operands are quantized differently (TFLM would requantize, or refuse)
is not data movement and is refused, naming the op, tensor and file. Broadcasting an operand
of an element-wise op to the output shape is the same kind of view (`broadcast_view`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nsconv.compiler.ndgraph import NdGraph, NdOp, NdTensor
from nsconv.errors import NsconvError

DATA_MOVEMENT = frozenset({
    "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "GATHER", "SLICE", "STRIDED_SLICE", "PAD",
    "PADV2", "CONCATENATION", "SPLIT", "SPLIT_V", "PACK", "UNPACK"})
ZERO = -1
_SHIFT = 32  # id = root << 32 | element


@dataclass(frozen=True)
class Run:
    dst: int  # first element of the destination
    root: int  # root tensor index, ZERO for the zero point
    src: int  # first element in the root
    length: int


@dataclass(frozen=True)
class View:
    tensor: int  # the tensor it stands for
    kind: str  # "alias", "const" or "gather"
    ids: np.ndarray = field(repr=False)  # flat element ids (root << 32 | element, -1 zero)
    root: int = -1  # alias: the root
    offset: int = 0  # alias: first element in the root
    runs: tuple[Run, ...] = ()  # gather: the copy table
    data: bytes | None = field(default=None, repr=False)  # const: the contents

    @property
    def roots(self) -> tuple[int, ...]:
        return tuple(sorted({int(i) >> _SHIFT for i in np.unique(self.ids) if i >= 0}))


@dataclass(frozen=True)
class LayoutResult:
    views: dict[int, View]  # tensor -> view, for every folded tensor read by compute or output
    compute: tuple[NdOp, ...]  # the remaining ops, in model order
    folded: dict[str, int]  # data-movement ops folded, by kind

    def storage_of(self, tensor: int) -> View | None:
        return self.views.get(tensor)


def root_ids(t: NdTensor) -> np.ndarray:
    return (np.int64(t.index) << _SHIFT) + np.arange(t.size, dtype=np.int64).reshape(t.shape)


def _const_int(g: NdGraph, op: NdOp, i: int, what: str) -> np.ndarray:
    t = g.tensors[i]
    if not t.is_const or t.dtype not in ("int32", "int64"):
        raise g.fail(op, f"the {what} {t.name!r} must be a constant integer tensor")
    return t.array().astype(np.int64)


def _axis(g: NdGraph, op: NdOp, axis: int, rank: int) -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < max(rank, 1):
        raise g.fail(op, f"axis {axis} out of range for rank {rank}")
    return a


def _strided_slice(g: NdGraph, op: NdOp, x: np.ndarray) -> np.ndarray:
    begin = _const_int(g, op, op.inputs[1], "begin")
    end = _const_int(g, op, op.inputs[2], "end")
    strides = _const_int(g, op, op.inputs[3], "strides")
    if op.opt("ellipsisMask", 0) or op.opt("newAxisMask", 0):
        raise g.fail(op, "ellipsis and new-axis masks are not supported")
    bm, em, sm = op.opt("beginMask", 0), op.opt("endMask", 0), op.opt("shrinkAxisMask", 0)
    index = []
    for d, n in enumerate(x.shape):
        s = int(strides[d]) if d < len(strides) else 1
        if s == 0:
            raise g.fail(op, "stride 0")
        b, e = (int(begin[d]), int(end[d])) if d < len(begin) else (0, n)
        if sm >> d & 1:
            b = b + n if b < 0 else b
            index.append(slice(b, b + 1, 1))
            continue
        lo, hi = (0, n) if s > 0 else (-1, n - 1)
        b = (lo if s > 0 else hi) if bm >> d & 1 else min(max(b + n if b < 0 else b, lo), hi)
        e = (hi if s > 0 else lo) if em >> d & 1 else min(max(e + n if e < 0 else e, lo), hi)
        index.append(slice(b, None if e < 0 else e, s))
    return x[tuple(index)]


def _pad(g: NdGraph, op: NdOp, x: np.ndarray) -> np.ndarray:
    pads = _const_int(g, op, op.inputs[1], "paddings").reshape(-1, 2)
    if op.kind == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        c, y = g.tensors[op.inputs[2]], g.tensors[op.outputs[0]]
        if not c.is_const or int(c.array().reshape(-1)[0]) != y.quant.zero_point:
            raise g.fail(op, "padding with a value other than the zero point is not data "
                         "movement")
    if (pads < 0).any():
        raise g.fail(op, "negative padding")
    return np.pad(x, [tuple(int(v) for v in p) for p in pads], constant_values=ZERO)


def _evaluate(g: NdGraph, op: NdOp, ids: dict[int, np.ndarray]) -> list[np.ndarray]:
    """The output id arrays of one data-movement op."""
    k = op.kind

    def arg(n: int) -> np.ndarray:
        return ids[op.inputs[n]]

    ys = [g.tensors[o] for o in op.outputs]
    if k in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
        return [arg(0).reshape(ys[0].shape)]
    if k == "TRANSPOSE":
        return [arg(0).transpose(tuple(int(p) for p in _const_int(g, op, op.inputs[1], "perm")))]
    if k == "GATHER":
        idx = _const_int(g, op, op.inputs[1], "indices")
        axis = _axis(g, op, op.opt("axis", 0), arg(0).ndim)
        if op.opt("batchDims", 0):
            raise g.fail(op, "batch_dims is not supported")
        if (idx < 0).any() or (idx >= arg(0).shape[axis]).any():
            raise g.fail(op, "gather index out of range")
        return [np.take(arg(0), idx, axis=axis)]
    if k == "SLICE":
        begin = _const_int(g, op, op.inputs[1], "begin")
        size = _const_int(g, op, op.inputs[2], "size")
        x = arg(0)
        return [x[tuple(slice(int(b), x.shape[d] if s < 0 else int(b + s))
                        for d, (b, s) in enumerate(zip(begin, size, strict=True)))]]
    if k == "STRIDED_SLICE":
        return [_strided_slice(g, op, arg(0))]
    if k in ("PAD", "PADV2"):
        return [_pad(g, op, arg(0))]
    if k == "CONCATENATION":
        if op.opt("fusedActivationFunction", 0):
            raise g.fail(op, "fused activation on a concatenation is not data movement")
        axis = _axis(g, op, op.opt("axis", 0), len(ys[0].shape))
        return [np.concatenate([ids[i] for i in op.inputs], axis=axis)]
    if k == "SPLIT":
        x = ids[op.inputs[1]]
        axis = _axis(g, op, int(_const_int(g, op, op.inputs[0], "axis").reshape(-1)[0]), x.ndim)
        return np.split(x, len(op.outputs), axis=axis)
    if k == "SPLIT_V":
        x = arg(0)
        axis = _axis(g, op, int(_const_int(g, op, op.inputs[2], "axis").reshape(-1)[0]), x.ndim)
        sizes = [y.shape[axis] for y in ys]
        return np.split(x, np.cumsum(sizes)[:-1], axis=axis)
    if k == "PACK":
        axis = _axis(g, op, op.opt("axis", 0), len(ys[0].shape))
        return [np.stack([ids[i] for i in op.inputs], axis=axis)]
    if k == "UNPACK":
        axis = _axis(g, op, op.opt("axis", 0), arg(0).ndim)
        return [np.squeeze(p, axis=axis) for p in np.split(arg(0), len(op.outputs), axis=axis)]
    raise g.fail(op, "not a data-movement op")  # not reached


def _data_inputs(op: NdOp) -> tuple[int, ...]:
    """The operands whose elements move (not the shape/axis/index operands)."""
    if op.kind in ("CONCATENATION", "PACK"):
        return op.inputs
    if op.kind == "SPLIT":
        return (op.inputs[1],)
    return (op.inputs[0],)


def _check_quant(g: NdGraph, op: NdOp) -> None:
    y = g.tensors[op.outputs[0]]
    for i in list(_data_inputs(op)) + list(op.outputs):
        t = g.tensors[i]
        if not t.same_quant(y):
            raise g.fail(op, f"operand {t.name!r} ({t.dtype}, {_qtext(t)}) is quantized unlike "
                         f"{y.name!r} ({y.dtype}, {_qtext(y)}); moving bytes would change "
                         "values")


def _qtext(t: NdTensor) -> str:
    if t.quant is None:
        return "not quantized"
    if t.quant.per_channel:
        return "per-channel"
    return f"scale {t.quant.scale:.9g} zero point {t.quant.zero_point}"


def runs_of(ids: np.ndarray) -> tuple[Run, ...]:
    """Maximal runs of consecutive elements of one root (or of zeros)."""
    flat = ids.reshape(-1)
    n = flat.size
    if n == 0:
        return ()
    roots = np.where(flat >= 0, flat >> _SHIFT, ZERO)
    elems = np.where(flat >= 0, flat & ((1 << _SHIFT) - 1), 0)
    brk = np.ones(n, dtype=bool)
    brk[1:] = (roots[1:] != roots[:-1]) | ((roots[1:] >= 0) & (elems[1:] != elems[:-1] + 1))
    starts = np.flatnonzero(brk)
    ends = np.append(starts[1:], n)
    return tuple(Run(int(s), int(roots[s]), int(elems[s]), int(e - s))
                 for s, e in zip(starts, ends, strict=True))


def make_view(g: NdGraph, tensor: int, ids: np.ndarray) -> View:
    """Classify an id array standing for `tensor` as alias, const or gather."""
    flat = ids.reshape(-1).astype(np.int64)
    runs = runs_of(flat)
    roots = {r.root for r in runs}
    if len(runs) == 1 and runs[0].root != ZERO and not g.tensors[runs[0].root].is_const:
        return View(tensor, "alias", flat, root=runs[0].root, offset=runs[0].src)
    if all(r == ZERO or g.tensors[r].is_const for r in roots):
        return View(tensor, "const", flat, data=_fold_const(g, tensor, flat))
    return View(tensor, "gather", flat, runs=runs)


def _fold_const(g: NdGraph, tensor: int, flat: np.ndarray) -> bytes:
    t = g.tensors[tensor]
    out = np.full(flat.size, t.quant.zero_point if t.quant is not None else 0,
                  dtype=np.dtype(t.dtype))
    for i, v in enumerate(flat):
        if v >= 0:
            out[i] = g.tensors[int(v) >> _SHIFT].array().reshape(-1)[int(v) & 0xFFFFFFFF]
    return out.astype(np.dtype(t.dtype).newbyteorder("<")).tobytes()


def zero_border(ids: np.ndarray, axis: int) -> tuple[int, int]:
    """How many leading and trailing slices along `axis` are all zero point (a PAD's border;
    at least one slice is left)."""
    zero = np.moveaxis(ids == ZERO, axis, 0).reshape(ids.shape[axis], -1).all(axis=1)
    n = zero.size
    lead = int(np.argmin(zero)) if not zero.all() else n - 1
    trail = int(np.argmin(zero[::-1])) if not zero.all() else 0
    return lead, trail


def broadcast_view(g: NdGraph, tensor: int, shape: tuple[int, ...], source: View | None = None
                   ) -> View:
    """`tensor` (or its view) broadcast to `shape` (numpy rules) as a view of its roots."""
    t = g.tensors[tensor]
    ids = source.ids.reshape(t.shape) if source is not None else root_ids(t)
    return make_view(g, tensor, np.broadcast_to(ids, shape).copy())


def fold(g: NdGraph) -> LayoutResult:
    """Evaluate every data-movement op on element ids; keep the compute ops."""
    ids: dict[int, np.ndarray] = {}
    produced_by_dm: set[int] = set()
    compute: list[NdOp] = []
    folded: dict[str, int] = {}

    def ids_of(i: int) -> np.ndarray:
        if i not in ids:
            ids[i] = root_ids(g.tensors[i])
        return ids[i]

    for op in g.ops:
        if op.kind not in DATA_MOVEMENT:
            compute.append(op)
            continue
        _check_quant(g, op)
        for i in op.inputs:
            if i >= 0:
                ids_of(i)
        try:
            outs = _evaluate(g, op, ids)
        except ValueError as exc:  # shapes that contradict the op
            raise g.fail(op, f"cannot evaluate ({exc})") from None
        for o, arr in zip(op.outputs, outs, strict=True):
            if tuple(arr.shape) != g.tensors[o].shape and arr.size != g.tensors[o].size:
                raise g.fail(op, f"evaluates to shape {list(arr.shape)}, the model says "
                             f"{list(g.tensors[o].shape)}")
            ids[o] = arr.reshape(g.tensors[o].shape)
            produced_by_dm.add(o)
        folded[op.kind] = folded.get(op.kind, 0) + 1
    read = {i for op in compute for i in op.inputs if i >= 0} | {i for _, i in g.outputs}
    views = {t: make_view(g, t, ids[t]) for t in sorted(read & produced_by_dm)}
    return LayoutResult(views, tuple(compute), dict(sorted(folded.items())))


def apply_view(view: View, g: NdGraph, roots: dict[int, np.ndarray]) -> np.ndarray:
    """The view's contents from its roots' contents, by its copy table (numpy; for tests)."""
    t = g.tensors[view.tensor]
    zp = t.quant.zero_point if t.quant is not None else 0

    def root_data(r: int) -> np.ndarray:
        if g.tensors[r].is_const:
            return g.tensors[r].array().reshape(-1)
        return np.asarray(roots[r]).reshape(-1)

    if view.kind == "alias":
        return root_data(view.root)[view.offset : view.offset + t.size].reshape(t.shape)
    if view.kind == "const":
        return np.frombuffer(view.data, np.dtype(t.dtype).newbyteorder("<")).reshape(t.shape)
    out = np.empty(t.size, dtype=np.dtype(t.dtype))
    for r in view.runs:
        if r.root == ZERO:
            out[r.dst : r.dst + r.length] = zp
        else:
            out[r.dst : r.dst + r.length] = root_data(r.root)[r.src : r.src + r.length]
    return out.reshape(t.shape)


def refuse_unknown(g: NdGraph, supported: frozenset[str]) -> None:
    """Refuse the first op that is neither data movement nor in `supported`."""
    for op in g.ops:
        if op.kind not in DATA_MOVEMENT and op.kind not in supported:
            raise NsconvError(f"{g.where(op)} is not supported (compute ops: "
                              + ", ".join(sorted(supported)) + "; data movement: "
                              + ", ".join(sorted(DATA_MOVEMENT)) + ")", g.path)


# -- copy plans: runs as nested strided loops ------------------------------------------------------

COPY_LEVELS = 3  # loop levels of a copy entry (nsn_copy_run in nsn_nd_model.c.j2)


@dataclass(frozen=True)
class CopyEntry:
    """`bytes` contiguous bytes copied (or set to the zero point, slot -1) over nested loops:
    for each index (i0, i1, i2) below `counts`, from src + sum(i_k * src_steps[k]) of source
    `slot` to dst + sum(i_k * dst_steps[k]). Level 0 is the innermost loop."""

    dst: int
    slot: int
    src: int
    bytes: int
    counts: tuple[int, ...] = (1,) * COPY_LEVELS
    dst_steps: tuple[int, ...] = (0,) * COPY_LEVELS
    src_steps: tuple[int, ...] = (0,) * COPY_LEVELS

    @property
    def copies(self) -> int:
        return int(np.prod(self.counts))


def copy_plan(runs, levels: int = COPY_LEVELS) -> tuple[CopyEntry, ...]:
    """Byte runs (dst, slot, src, bytes) as few nested strided entries.

    Every destination byte is written once, so runs may be taken in any order. Each level
    groups the entries of one source, length and inner loops, and chains those whose
    destination and source advance by one constant step pair into one more loop (the step pair
    that leaves fewest chains first, then again on what is left). So a transpose, an
    interleave, an unfold or a row reversal (negative steps) is a handful of entries. The loops
    of an entry are then ordered longest innermost (fewest loop iterations in C)."""
    ents = [CopyEntry(d, s, o if s >= 0 else 0, n) for d, s, o, n in runs]
    for level in range(levels):
        groups: dict[tuple, list[CopyEntry]] = {}
        for e in ents:
            key = (e.slot, e.bytes, e.counts[:level], e.dst_steps[:level], e.src_steps[:level])
            groups.setdefault(key, []).append(e)
        ents = [c for g in groups.values() for c in _chain(g, level)]
    return tuple(_longest_inner(e) for e in sorted(ents, key=lambda e: (e.dst, e.slot)))


_STEP = 1 << 15
_CANDIDATES = 8  # step pairs tried per round: from the first point to its next few


def _chain(group: list[CopyEntry], level: int) -> list[CopyEntry]:
    """Entries of one source, length and inner loops as chains along loop `level`."""
    out: list[CopyEntry] = []
    rest = sorted(group, key=lambda e: (e.dst, e.src))
    while len(rest) > 1:
        at = {(e.dst, e.src): e for e in rest}
        best: list[list[CopyEntry]] | None = None
        for j in range(1, min(_CANDIDATES, len(rest) - 1) + 1):
            dd, ds = rest[j].dst - rest[0].dst, rest[j].src - rest[0].src
            if abs(dd) >= _STEP or abs(ds) >= _STEP:
                continue
            chains = _chains_of(rest, at, dd, ds)
            if best is None or len(chains) < len(best):
                best = chains
        if best is None or len(best) == len(rest):  # no two entries chain
            break
        rest = []
        for c in best:
            if len(c) == 1:
                rest.append(c[0])
            else:
                out.append(_with_level(c[0], level, len(c), c[1].dst - c[0].dst,
                                       c[1].src - c[0].src))
    return out + rest


def _chains_of(points: list[CopyEntry], at: dict, dd: int, ds: int) -> list[list[CopyEntry]]:
    chains = []
    for e in points:
        if (e.dst - dd, e.src - ds) in at:
            continue  # not the head of its chain
        c = [e]
        while (c[-1].dst + dd, c[-1].src + ds) in at and len(c) < 0xFFFF:
            c.append(at[(c[-1].dst + dd, c[-1].src + ds)])
        chains.append(c)
    return chains


def _with_level(e: CopyEntry, level: int, n: int, d_step: int, s_step: int) -> CopyEntry:
    def put(xs, v):
        return xs[:level] + (v,) + xs[level + 1:]

    return CopyEntry(e.dst, e.slot, e.src, e.bytes, put(e.counts, n), put(e.dst_steps, d_step),
                     put(e.src_steps, s_step))


def _longest_inner(e: CopyEntry) -> CopyEntry:
    order = sorted(range(len(e.counts)), key=lambda k: -e.counts[k])
    return CopyEntry(e.dst, e.slot, e.src, e.bytes, tuple(e.counts[k] for k in order),
                     tuple(e.dst_steps[k] for k in order), tuple(e.src_steps[k] for k in order))


def apply_copy_plan(entries, sources: list[np.ndarray], nbytes: int, zero_byte: int
                    ) -> np.ndarray:
    """The destination bytes a copy plan writes (numpy, the C helper's semantics; for tests).
    Bytes written twice or never are an error."""
    out = np.zeros(nbytes, np.uint8)
    seen = np.zeros(nbytes, np.int32)
    for e in entries:
        for idx in np.ndindex(*e.counts):
            d = e.dst + sum(i * s for i, s in zip(idx, e.dst_steps, strict=True))
            if e.slot < 0:
                out[d : d + e.bytes] = zero_byte & 0xFF
            else:
                s = e.src + sum(i * s for i, s in zip(idx, e.src_steps, strict=True))
                out[d : d + e.bytes] = sources[e.slot][s : s + e.bytes]
            seen[d : d + e.bytes] += 1
    if (seen != 1).any():
        raise ValueError(f"{int((seen == 0).sum())} bytes never written, "
                         f"{int((seen > 1).sum())} written more than once")
    return out


# -- row loops: a copy whose rows repeat one pattern, as unrolled C -------------------------------

ROW_MOVES = 48  # most moves (memcpy/memset of constant size) per unrolled row
ROW_BYTES = 64  # longest row tried


@dataclass(frozen=True)
class RowLoop:
    """`rows` rows of `row_bytes` destination bytes from dst on: in row r, move k copies
    `bytes` bytes from pointer `ptr` + r * its step + src to dst + r * row_bytes + at (ptr -1:
    the zero point). ptrs: (slot, first source byte, source step per row)."""

    dst: int
    rows: int
    row_bytes: int
    ptrs: tuple[tuple[int, int, int], ...]
    moves: tuple[tuple[int, int, int, int], ...]  # (at, ptr, src, bytes)


def _byte_map(runs, nbytes: int) -> tuple[np.ndarray, np.ndarray]:
    slot = np.full(nbytes, -2, np.int64)
    off = np.zeros(nbytes, np.int64)
    for d, s, o, n in runs:
        slot[d : d + n] = s
        off[d : d + n] = np.arange(o, o + n) if s >= 0 else 0
    return slot, off


def _runs_of_bytes(slot: np.ndarray, off: np.ndarray, base: int) -> list[tuple[int, ...]]:
    out: list[list[int]] = []
    for i in range(slot.size):
        s, o = int(slot[i]), int(off[i])
        if out and out[-1][1] == s and (s < 0 or out[-1][2] + out[-1][3] == o):
            out[-1][3] += 1
        else:
            out.append([base + i, s, o if s >= 0 else 0, 1])
    return [tuple(r) for r in out]


def row_loops(runs, nbytes: int, row_bytes: int, min_rows: int = 4, byte_map=None
              ) -> tuple[tuple[RowLoop, ...], list[tuple[int, ...]]]:
    """The longest stretches of rows (of row_bytes bytes from 0) that repeat one pattern, each
    source position advancing by a constant step per row, as RowLoops; the other bytes as
    runs (dst, slot, src, bytes)."""
    slot, off = byte_map if byte_map is not None else _byte_map(runs, nbytes)
    n_rows = nbytes // row_bytes
    s = slot[: n_rows * row_bytes].reshape(n_rows, row_bytes)
    o = off[: n_rows * row_bytes].reshape(n_rows, row_bytes)
    loops: list[RowLoop] = []
    rest: list[tuple[int, ...]] = []
    a = 0
    while a < n_rows:
        b = a + 1
        if b < n_rows and (s[b] == s[a]).all():
            step = o[b] - o[a]
            b += 1
            while b < n_rows and (s[b] == s[a]).all() and (o[b] - o[b - 1] == step).all():
                b += 1
        loop = _row_loop(s[a], o[a], o[a + 1] - o[a] if b > a + 1 else 0 * o[a], a, b,
                         row_bytes) if b - a >= min_rows else None
        if loop is None:
            rest += _runs_of_bytes(s[a:b].reshape(-1), o[a:b].reshape(-1), a * row_bytes)
        else:
            loops.append(loop)
        a = b
    rest += _runs_of_bytes(slot[n_rows * row_bytes :], off[n_rows * row_bytes :],
                           n_rows * row_bytes)
    return tuple(loops), rest


def _row_loop(s: np.ndarray, o: np.ndarray, step: np.ndarray, a: int, b: int,
              row_bytes: int) -> RowLoop | None:
    ptrs: dict[tuple[int, int], int] = {}
    base: dict[tuple[int, int], int] = {}
    for j in range(row_bytes):
        if s[j] >= 0:
            key = (int(s[j]), int(step[j]))
            base[key] = min(base.get(key, int(o[j])), int(o[j]))
    for key in sorted(base):
        ptrs[key] = len(ptrs)
    moves: list[list[int]] = []
    for j in range(row_bytes):
        k = ptrs[(int(s[j]), int(step[j]))] if s[j] >= 0 else -1
        src = int(o[j]) - base[(int(s[j]), int(step[j]))] if k >= 0 else 0
        m = moves[-1] if moves else None
        if m and m[1] == k and (k < 0 or m[2] + m[3] == src):
            m[3] += 1
        else:
            moves.append([j, k, src, 1])
    if len(moves) > ROW_MOVES:
        return None
    return RowLoop(a * row_bytes, b - a, row_bytes,
                   tuple((sl, base[(sl, st)], st) for sl, st in ptrs),
                   tuple(tuple(m) for m in moves))


def _move_cost(n: int) -> float:
    """M4 instructions of a memcpy/memset of n constant bytes (inline up to 16)."""
    if n > 16:
        return 25 + n / 3
    return 2 * (n // 4) + 2 * (n % 4 > 1) + 2 * (n % 2)


def table_cost(runs) -> float:
    """Rough M4 instructions of copying runs by a copy table (nsn_copy_runs; measured on
    GTCRN's copies)."""
    cost = 100.0
    for e in copy_plan(runs):
        each = (3.25 if e.bytes <= 2 else 5.0 if e.bytes <= 4 else 6.0 if e.bytes <= 8
                else 12.0 if e.bytes <= 16 else 30 + e.bytes / 3)
        cost += 40 + 30 * e.counts[1] * e.counts[2] + e.copies * each
    return cost


def row_plan(runs, nbytes: int, item: int) -> tuple[tuple[RowLoop, ...], list[tuple[int, ...]]]:
    """Row loops and the runs left for a table, for the row length (a multiple of the element
    size up to ROW_BYTES) of least estimated cost; no loops unless clearly cheaper than the
    table alone."""
    runs = list(runs)
    if len(runs) < 8:
        return (), runs
    best = (0.9 * table_cost(runs) - 30, (), runs)
    bmap = _byte_map(runs, nbytes)
    for row_bytes in range(2 * item, min(ROW_BYTES, nbytes // 4) + 1, item):
        n = nbytes // row_bytes
        s = bmap[0][: n * row_bytes].reshape(n, row_bytes)
        if not (s[1:] == s[:-1]).all(axis=1).any():
            continue  # no two neighbouring rows alike
        loops, rest = row_loops(runs, nbytes, row_bytes, byte_map=bmap)
        if not loops:
            continue
        cost = (table_cost(rest) if rest else 0.0) + sum(
            15 + lp.rows * (4 + len(lp.ptrs) + sum(_move_cost(m[3]) for m in lp.moves))
            for lp in loops)
        if cost < best[0]:
            best = (cost, loops, rest)
    return best[1], best[2]


def apply_row_loops(loops, sources: list[np.ndarray], out: np.ndarray, zero_byte: int) -> None:
    """Row loops' bytes into out (numpy, the generated C's semantics; for tests)."""
    for lp in loops:
        for r in range(lp.rows):
            d = lp.dst + r * lp.row_bytes
            for at, k, src, n in lp.moves:
                if k < 0:
                    out[d + at : d + at + n] = zero_byte & 0xFF
                else:
                    slot, first, step = lp.ptrs[k]
                    s = first + r * step + src
                    out[d + at : d + at + n] = sources[slot][s : s + n]
