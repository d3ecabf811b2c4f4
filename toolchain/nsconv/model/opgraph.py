# SPDX-License-Identifier: Apache-2.0
"""A typed one-step op graph read from a streaming ONNX model with explicit caches.

Import (`import_opgraph`) works in four passes over the ONNX graph:
1. Shapes and constants: the graph is run once by onnxruntime on zero inputs with every
   intermediate exposed. A tensor that does not depend on a graph input (Shape counts as
   independent: every shape is static) is a constant; this folds the Shape/Gather/Range/Where
   plumbing of unsimplified exports.
2. Rewrites: BatchNormalization folds into the Conv or ConvTranspose before it; a ConvTranspose
   becomes what it computes, a zero-stuffing/padding layout step followed by a Conv with the
   flipped, regrouped kernel.
3. Provenance: data-movement ops (Gather/Slice/Reshape/Transpose/Concat/ScatterND/Squeeze/
   Unsqueeze/Pad/Expand/Identity) are evaluated on arrays of element ids instead of values. Every
   compute op's input becomes an `Assemble` (a constant gather) from "roots": graph inputs, compute
   outputs, constants and zero. ScatterND into caches disappears this way.
4. States: the cache inputs are cut into the boxes that compute ops read (one `State` per box, e.g.
   one depthwise conv's frame history, one GRU's hidden state); the new value of each state is the
   part of the cache output at the same box, again an `Assemble` (for a frame history: the old
   history shifted by one frame plus the new frame).

The result is a list of typed compute ops (`Conv`, `PRelu`, `MatMul`, `Binary`, `Unary`, `Power`,
`ReduceMean`, `GRU`, `Assemble`) in execution order. Anything else is refused with `NsconvError`
naming the op and the node. `run_numpy` is the executable specification of one step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nsconv.errors import NsconvError

MOVE_OPS = {"Gather", "Slice", "Reshape", "Transpose", "Concat", "ScatterND", "Squeeze",
            "Unsqueeze", "Pad", "Expand", "Identity", "_Upsample"}
COMPUTE_OPS = {"Conv", "ConvTranspose", "BatchNormalization", "PRelu", "MatMul", "Add", "Sub",
               "Mul", "Div", "Pow", "Sqrt", "Sigmoid", "Tanh", "ReduceMean", "GRU"}
ZERO = "zero"  # the root holding the single element 0.0 (padding, zero-stuffing)


# ---------------------------------------------------------------------------------------------
# The typed description
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Assemble:
    """out = concat(flatten(s) for s in sources)[index]: any data movement, constant indices."""
    node: str
    out: str
    sources: tuple[str, ...]
    index: np.ndarray  # int64, shape of `out`

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.sources


@dataclass(frozen=True, eq=False)
class Conv:
    """2-D convolution NCHW (H = time, W = frequency), BatchNormalization already folded in.

    groups == 1: full/pointwise; groups == C_in == C_out: depthwise; otherwise grouped.
    A time kernel > 1 reads frames from its input's time axis, which holds cached frames."""
    node: str
    out: str
    x: str
    weight: np.ndarray  # (C_out, C_in / groups, kT, kF)
    bias: np.ndarray  # (C_out,)
    strides: tuple[int, int]
    dilations: tuple[int, int]
    pads: tuple[int, int, int, int]  # t_begin, f_begin, t_end, f_end
    groups: int

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.x,)

    @property
    def kind(self) -> str:
        cout, cin_g, kt, kf = self.weight.shape
        if self.groups == 1:
            return "pointwise" if kt == kf == 1 else "full"
        return "depthwise" if cin_g == 1 and self.groups == cout else "grouped"


@dataclass(frozen=True, eq=False)
class PRelu:
    node: str
    out: str
    x: str
    slope: np.ndarray

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.x,)


@dataclass(frozen=True, eq=False)
class MatMul:
    """out = x @ weight (a constant matrix, e.g. an ERB band matrix or a linear layer)."""
    node: str
    out: str
    x: str
    weight: np.ndarray

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.x,)


@dataclass(frozen=True, eq=False)
class Binary:
    """Elementwise kind in {Add, Sub, Mul, Div}; an operand is a tensor name or a constant."""
    node: str
    out: str
    kind: str
    a: str | np.ndarray
    b: str | np.ndarray

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(v for v in (self.a, self.b) if isinstance(v, str))


@dataclass(frozen=True, eq=False)
class Unary:
    """kind in {Sigmoid, Tanh, Sqrt}."""
    node: str
    out: str
    kind: str
    x: str

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.x,)


@dataclass(frozen=True, eq=False)
class Power:
    node: str
    out: str
    x: str
    exponent: float

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.x,)


@dataclass(frozen=True, eq=False)
class ReduceMean:
    node: str
    out: str
    x: str
    axes: tuple[int, ...]
    keepdims: bool

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.x,)


@dataclass(frozen=True, eq=False)
class GRU:
    """ONNX GRU (gates z, r, h; linear_before_reset=1), forward or bidirectional.

    x (seq, batch, in); h0 (dirs, batch, hidden) or None for zeros; outputs y (seq, dirs, batch,
    hidden) and y_h (dirs, batch, hidden). Executed as its gate matmuls."""
    node: str
    outs: tuple[str, str]
    x: str
    h0: str | None
    w: np.ndarray  # (dirs, 3H, in)
    r: np.ndarray  # (dirs, 3H, H)
    b: np.ndarray  # (dirs, 6H)
    hidden: int
    direction: str

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.x,) + ((self.h0,) if self.h0 else ())

    @property
    def out(self) -> str:
        return self.outs[0]


@dataclass(frozen=True)
class State:
    """One box of a cache input: read by the step, written back from `update`."""
    name: str
    cache: str
    box: tuple[tuple[int, int], ...]  # (start, stop) per axis of the cache
    update: str  # tensor holding the new value (shape = box shape)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in self.box)


@dataclass(frozen=True)
class OpGraph:
    source: str
    inputs: dict  # name -> shape (non-state inputs)
    states: tuple[State, ...]
    caches: dict  # cache input name -> (shape, cache output name)
    ops: tuple
    outputs: dict  # output name -> tensor name
    constants: dict = field(default_factory=dict)  # root name -> array (constant roots)

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.ops:
            key = type(op).__name__ + (f"/{op.kind}" if isinstance(op, (Conv, Binary, Unary))
                                       else "")
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    def macs(self) -> int:
        """Multiply-accumulates of one step (convs, matmuls, GRU gates)."""
        shapes = self.shapes()
        total = 0
        for op in self.ops:
            if isinstance(op, Conv):
                cout, cin_g, kt, kf = op.weight.shape
                total += int(np.prod(shapes[op.out])) * cin_g * kt * kf
            elif isinstance(op, MatMul):
                total += int(np.prod(shapes[op.out])) * op.weight.shape[0]
            elif isinstance(op, GRU):
                seq, batch = shapes[op.x][:2]
                dirs = op.w.shape[0]
                total += seq * batch * dirs * 3 * op.hidden * (op.w.shape[2] + op.hidden)
        return total

    def shapes(self) -> dict[str, tuple[int, ...]]:
        feeds = {k: np.zeros(s, np.float32) for k, s in self.inputs.items()}
        feeds.update({s.name: np.zeros(s.shape, np.float32) for s in self.states})
        values = run_numpy(self, feeds, keep=True)
        return {k: v.shape for k, v in values.items()}

    # caches <-> states ------------------------------------------------------------------------
    def states_from_caches(self, caches: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {s.name: np.asarray(caches[s.cache][tuple(slice(a, b) for a, b in s.box)],
                                   np.float32) for s in self.states}

    def caches_from_states(self, states: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {name: np.zeros(shape, np.float32) for name, (shape, _) in self.caches.items()}
        for s in self.states:
            out[s.cache][tuple(slice(a, b) for a, b in s.box)] = states[s.name]
        return out


# ---------------------------------------------------------------------------------------------
# Executable specification (numpy, float32)
# ---------------------------------------------------------------------------------------------

def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)


def conv2d(x: np.ndarray, op: Conv) -> np.ndarray:
    """NCHW convolution by explicit patches (small tensors: one frame and its history)."""
    n, c, h, w = x.shape
    pt0, pf0, pt1, pf1 = op.pads
    x = np.pad(x, ((0, 0), (0, 0), (pt0, pt1), (pf0, pf1)))
    cout, cin_g, kt, kf = op.weight.shape
    st, sf = op.strides
    dt, df = op.dilations
    ho = (x.shape[2] - dt * (kt - 1) - 1) // st + 1
    wo = (x.shape[3] - df * (kf - 1) - 1) // sf + 1
    out = np.empty((n, cout, ho, wo), np.float32)
    og = cout // op.groups
    for g in range(op.groups):
        xg = x[:, g * cin_g:(g + 1) * cin_g]
        patches = np.empty((n, cin_g, kt, kf, ho, wo), np.float32)
        for i in range(kt):
            for j in range(kf):
                patches[:, :, i, j] = xg[:, :, i * dt: i * dt + st * (ho - 1) + 1: st,
                                          j * df: j * df + sf * (wo - 1) + 1: sf]
        wg = op.weight[g * og:(g + 1) * og]
        out[:, g * og:(g + 1) * og] = np.einsum("ncijhw,ocij->nohw", patches, wg)
    return out + op.bias.reshape(1, -1, 1, 1)


def gru(op: GRU, x: np.ndarray, h0: np.ndarray | None):
    seq, batch, _ = x.shape
    dirs, H = op.w.shape[0], op.hidden
    h_all = np.zeros((dirs, batch, H), np.float32) if h0 is None else h0.astype(np.float32)
    y = np.zeros((seq, dirs, batch, H), np.float32)
    for d in range(dirs):
        w, r, b = op.w[d], op.r[d], op.b[d]
        wb, rb = b[:3 * H], b[3 * H:]
        xg = x @ w.T + wb  # all input-side gate matmuls at once: (seq, batch, 3H)
        h = h_all[d]
        steps = range(seq) if d == 0 else range(seq - 1, -1, -1)
        for t in steps:
            hg = h @ r.T + rb
            z = _sigmoid(xg[t, :, :H] + hg[:, :H])
            rr = _sigmoid(xg[t, :, H:2 * H] + hg[:, H:2 * H])
            n = np.tanh(xg[t, :, 2 * H:] + rr * hg[:, 2 * H:])
            h = (1.0 - z) * n + z * h
            y[t, d] = h
        h_all = h_all.copy()
        h_all[d] = h
    return y, h_all


def run_numpy(graph: OpGraph, feeds: dict[str, np.ndarray], keep: bool = False):
    """One step: feeds = inputs and states; returns outputs and `<state>` new values
    (or every tensor with keep=True)."""
    v: dict[str, np.ndarray] = {ZERO: np.zeros(1, np.float32)}
    v.update(graph.constants)
    v.update({k: np.asarray(a, np.float32) for k, a in feeds.items()})

    def arg(a):
        return v[a] if isinstance(a, str) else a

    for op in graph.ops:
        if isinstance(op, Assemble):
            flat = np.concatenate([v[s].reshape(-1) for s in op.sources])
            v[op.out] = flat[op.index]
        elif isinstance(op, Conv):
            v[op.out] = conv2d(v[op.x], op)
        elif isinstance(op, PRelu):
            x = v[op.x]
            v[op.out] = np.where(x >= 0, x, x * op.slope).astype(np.float32)
        elif isinstance(op, MatMul):
            v[op.out] = v[op.x] @ op.weight
        elif isinstance(op, Binary):
            a, b = arg(op.a), arg(op.b)
            f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}
            v[op.out] = f[op.kind](a, b).astype(np.float32)
        elif isinstance(op, Unary):
            f = {"Sigmoid": _sigmoid, "Tanh": np.tanh, "Sqrt": np.sqrt}[op.kind]
            v[op.out] = f(v[op.x]).astype(np.float32)
        elif isinstance(op, Power):
            v[op.out] = (v[op.x] * v[op.x] if op.exponent == 2.0
                         else np.power(v[op.x], op.exponent)).astype(np.float32)
        elif isinstance(op, ReduceMean):
            v[op.out] = np.mean(v[op.x], axis=op.axes, keepdims=op.keepdims, dtype=np.float32)
        elif isinstance(op, GRU):
            y, yh = gru(op, v[op.x], v[op.h0] if op.h0 else None)
            v[op.outs[0]], v[op.outs[1]] = y, yh
        else:  # pragma: no cover - the importer builds only the ops above
            raise TypeError(type(op).__name__)
    if keep:
        return v
    out = {name: v[t] for name, t in graph.outputs.items()}
    out.update({s.name: v[s.update] for s in graph.states})
    return out


# ---------------------------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------------------------

def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


@dataclass
class _Node:
    """A node after rewrites: op type, inputs/outputs, attributes, name for messages."""
    op: str
    name: str
    inputs: list
    outputs: list
    attrs: dict


def _run_all(model, path):
    """Every intermediate of the graph on zero inputs (onnxruntime): shapes and constants."""
    import onnx
    import onnxruntime as ort

    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type
             for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for node in m.graph.node:
        for o in node.output:
            if o and o not in have and node.op_type != "Constant":
                m.graph.output.append(onnx.helper.make_tensor_value_info(
                    o, types.get(o) or onnx.TensorProto.FLOAT, None))
                have.add(o)
    feeds = {}
    for i in m.graph.input:
        dims = [d.dim_value for d in i.type.tensor_type.shape.dim]
        if any(d <= 0 for d in dims):
            raise NsconvError(f"input {i.name!r} has a dynamic shape {dims}; a one-step model "
                              "needs static shapes", path)
        feeds[i.name] = np.zeros(dims, np.float32)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        vals = sess.run(names, feeds)
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0][:200]
        raise NsconvError(f"onnxruntime cannot run the graph on zero inputs ({msg})",
                          path) from None
    return dict(zip(names, vals, strict=True))


def _const_value(node, values):
    import onnx

    a = _attrs(node)
    if "value" in a:
        return onnx.numpy_helper.to_array(a["value"])
    return values[node.output[0]]


def _fold(model, path):
    """Constants (initializers, Constant nodes, anything independent of the inputs), shapes."""
    import onnx

    g = model.graph
    values = _run_all(model, path)
    consts = {i.name: onnx.numpy_helper.to_array(i) for i in g.initializer}
    live = {i.name for i in g.input if i.name not in consts}
    nodes = []
    for node in g.node:
        ins = [i for i in node.input if i]
        if node.op_type == "Constant":
            consts[node.output[0]] = _const_value(node, values)
        elif node.op_type == "Shape" or not any(i in live for i in ins):
            for o in node.output:
                if o:
                    consts[o] = values[o]
        else:
            live.update(o for o in node.output if o)
            nodes.append(node)
    shapes = {k: np.shape(v) for k, v in values.items()}
    for i in g.input:
        shapes[i.name] = tuple(d.dim_value for d in i.type.tensor_type.shape.dim)
    return nodes, consts, shapes


def _refuse(node, path, why=""):
    detail = f": {why}" if why else ""
    raise NsconvError(f"unsupported op {node.op_type} (node {node.name!r}){detail}", path)


def _fold_bn(weight, bias, bn, consts, out_axis):
    scale, b, mean, var = (consts[n] for n in bn.input[1:5])
    eps = _attrs(bn).get("epsilon", 1e-5)
    k = scale / np.sqrt(var + eps)
    shape = [1] * weight.ndim
    shape[out_axis] = -1
    return weight * k.reshape(shape), (bias - mean) * k + b


def _rewrite(nodes, consts, shapes, path):
    """BatchNormalization into the conv before it; ConvTranspose into zero-stuffing + Conv."""
    consumers: dict[str, int] = {}
    for n in nodes:
        for i in n.input:
            consumers[i] = consumers.get(i, 0) + 1
    by_output = {n.output[0]: n for n in nodes}
    folded = {}  # conv output -> BN node
    for n in nodes:
        if n.op_type == "BatchNormalization":
            prev = by_output.get(n.input[0])
            if prev is None or prev.op_type not in ("Conv", "ConvTranspose") \
                    or consumers[n.input[0]] != 1 \
                    or any(i not in consts for i in n.input[1:5]):
                _refuse(n, path, "only a BatchNormalization right after a Conv/ConvTranspose "
                        "folds")
            folded[prev.output[0]] = n
    out = []
    for n in nodes:
        if n.op_type not in COMPUTE_OPS | MOVE_OPS:
            _refuse(n, path)
        if n.op_type == "BatchNormalization":
            continue
        a = _attrs(n)
        if n.op_type in ("Conv", "ConvTranspose"):
            out.extend(_conv_nodes(n, a, folded.get(n.output[0]), consts, shapes, path))
        else:
            out.append(_Node(n.op_type, n.name, list(n.input), list(n.output), a))
    return out


def _conv_nodes(n, a, bn, consts, shapes, path):
    if len(shapes[n.input[0]]) != 4 or n.input[1] not in consts:
        _refuse(n, path, "only 2-D convolutions with constant weights")
    w = consts[n.input[1]].astype(np.float32)
    groups = int(a.get("group", 1))
    bias = (consts[n.input[2]] if len(n.input) > 2 and n.input[2]
            else np.zeros(w.shape[1] * groups if n.op_type == "ConvTranspose" else w.shape[0]))
    strides = tuple(a.get("strides", (1, 1)))
    dil = tuple(a.get("dilations", (1, 1)))
    pads = tuple(a.get("pads", (0, 0, 0, 0)))
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        _refuse(n, path, "auto_pad")
    out = bn.output[0] if bn is not None else n.output[0]
    if n.op_type == "Conv":
        if bn is not None:
            w, bias = _fold_bn(w, bias, bn, consts, 0)
        return [_Node("Conv", n.name, [n.input[0]], [out],
                      dict(weight=w, bias=bias.astype(np.float32), strides=strides,
                           dilations=dil, pads=pads, groups=groups))]
    if a.get("output_padding", (0, 0)) != (0, 0) and list(a.get("output_padding")) != [0, 0]:
        _refuse(n, path, "output_padding")
    # ConvTranspose = zero-stuff by the stride, pad by d*(k-1)-p, conv with the flipped kernel.
    cin, cout_g, kt, kf = w.shape
    cin_g = cin // groups
    wc = w.reshape(groups, cin_g, cout_g, kt, kf).transpose(0, 2, 1, 3, 4)
    wc = wc.reshape(groups * cout_g, cin_g, kt, kf)[:, :, ::-1, ::-1].copy()
    epad = [dil[0] * (kt - 1) - pads[0], dil[1] * (kf - 1) - pads[1],
            dil[0] * (kt - 1) - pads[2], dil[1] * (kf - 1) - pads[3]]
    if min(epad) < 0:
        _refuse(n, path, "padding larger than the kernel reach")
    if bn is not None:
        wc, bias = _fold_bn(wc, bias, bn, consts, 0)
    mid = f"{n.name}/stuffed"
    return [_Node("_Upsample", f"{n.name}/upsample", [n.input[0]], [mid],
                  dict(strides=strides, pads=epad)),
            _Node("Conv", n.name, [mid], [out],
                  dict(weight=wc.astype(np.float32), bias=bias.astype(np.float32),
                       strides=(1, 1), dilations=dil, pads=(0, 0, 0, 0), groups=groups))]


def _move(n: _Node, ids: list, consts, path):
    """Evaluate one data-movement op on id arrays (ints in the place of values)."""
    x = ids[0]
    a = n.attrs
    op = n.op
    if op == "Identity":
        return x
    if op == "Gather":
        return np.take(x, consts[n.inputs[1]].astype(np.int64), axis=a.get("axis", 0))
    if op == "Slice":
        starts, ends = consts[n.inputs[1]], consts[n.inputs[2]]
        axes = consts[n.inputs[3]] if len(n.inputs) > 3 and n.inputs[3] else range(len(starts))
        steps = consts[n.inputs[4]] if len(n.inputs) > 4 and n.inputs[4] else [1] * len(starts)
        sl = [slice(None)] * x.ndim
        for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
            sl[int(ax)] = slice(int(s), int(e), int(st))
        return x[tuple(sl)]
    if op == "Reshape":
        shape = [int(d) for d in consts[n.inputs[1]]]
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
        return x.reshape(shape)
    if op == "Transpose":
        return x.transpose(a.get("perm", tuple(range(x.ndim))[::-1]))
    if op == "Concat":
        return np.concatenate(ids, axis=a["axis"])
    if op == "Squeeze":
        axes = a.get("axes") or tuple(i for i, d in enumerate(x.shape) if d == 1)
        return x.reshape([d for i, d in enumerate(x.shape)
                          if i not in {ax % x.ndim for ax in axes}])
    if op == "Unsqueeze":
        out = x
        for ax in sorted(ax % (x.ndim + len(a["axes"])) for ax in a["axes"]):
            out = np.expand_dims(out, ax)
        return out
    if op == "Expand":
        return np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(consts[n.inputs[1]]))).copy()
    if op == "ScatterND":
        out = x.copy()
        idx = consts[n.inputs[1]].astype(np.int64)
        upd = ids[1]
        for pos in np.ndindex(idx.shape[:-1]):
            out[tuple(idx[pos])] = upd[pos]
        return out
    if op == "Pad":
        pads = [int(p) for p in (consts[n.inputs[1]] if len(n.inputs) > 1 else a["pads"])]
        mode = a.get("mode", b"constant")
        value = consts[n.inputs[2]] if len(n.inputs) > 2 and n.inputs[2] else 0.0
        if mode not in (b"constant", "constant") or float(value) != 0.0 or min(pads) < 0:
            raise NsconvError(f"unsupported op Pad (node {n.name!r}): only zero padding", path)
        r = x.ndim
        return np.pad(x, list(zip(pads[:r], pads[r:], strict=True)), constant_values=ZERO_ID)
    if op == "_Upsample":
        (st, sf), p = a["strides"], a["pads"]
        nb, c, h, w = x.shape
        out = np.full((nb, c, (h - 1) * st + 1, (w - 1) * sf + 1), ZERO_ID, np.int64)
        out[:, :, ::st, ::sf] = x
        return np.pad(out, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])),
                      constant_values=ZERO_ID)
    raise AssertionError(op)  # pragma: no cover


ZERO_ID = 0


class _Roots:
    """Global element ids: root tensors laid end to end (id 0 is the zero root)."""

    def __init__(self) -> None:
        self.names = [ZERO]
        self.shapes = [(1,)]
        self.offsets = [0]
        self.size = 1

    def add(self, name: str, shape) -> np.ndarray:
        shape = tuple(int(d) for d in shape)
        start = self.size
        self.names.append(name)
        self.shapes.append(shape)
        self.offsets.append(start)
        self.size += int(np.prod(shape, dtype=np.int64))
        return np.arange(start, self.size, dtype=np.int64).reshape(shape)

    def owner(self, ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.offsets), ids, side="right") - 1


def import_opgraph(path: str | Path, cut_inputs: tuple[str, ...] = (),
                   outputs: tuple[str, ...] | None = None) -> OpGraph:
    """Typed one-step graph of a streaming ONNX model.

    Inputs named `<x>` with a graph output `<x>_out` of the same shape are caches. `cut_inputs`
    names tensors that become inputs (the ops computing them are dropped); `outputs` names the
    tensors to output (default: the graph's non-cache outputs)."""
    import onnx

    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise NsconvError(f"not a valid ONNX model ({str(exc).strip()[:200]})", path) from None
    nodes, consts, shapes = _fold(model, path)
    nodes = _rewrite(nodes, consts, shapes, path)
    g = model.graph
    out_names = [o.name for o in g.output]
    caches = {i.name: (shapes[i.name], f"{i.name}_out") for i in g.input
              if f"{i.name}_out" in out_names}
    if outputs is None:
        outputs = tuple(o for o in out_names if not any(o == c[1] for c in caches.values()))
    for t in tuple(cut_inputs) + tuple(outputs):
        if t not in shapes:
            raise NsconvError(f"no tensor named {t!r} in the graph", path)
    nodes, read = _needed(nodes, set(outputs), set(cut_inputs), caches)
    caches = {c: v for c, v in caches.items() if c in read}
    return _Importer(path, nodes, consts, shapes).build(
        [i.name for i in g.input if i.name not in caches and i.name not in consts],
        caches, tuple(cut_inputs), tuple(outputs))


def _needed(nodes, targets: set, cut: set, caches: dict):
    """Nodes the outputs need, with the caches they read (whose outputs are then needed too)."""
    producer = {o: k for k, n in enumerate(nodes) for o in n.outputs if o}
    while True:
        live, seen, stack = set(), set(), list(targets)
        while stack:
            t = stack.pop()
            if t in seen or t in cut:
                continue
            seen.add(t)
            if t in producer:
                live.add(producer[t])
                stack.extend(i for i in nodes[producer[t]].inputs if i)
        read = {c for c in caches if c in seen}
        grown = targets | {caches[c][1] for c in read}
        if grown == targets:
            return [n for k, n in enumerate(nodes) if k in live], read
        targets = grown


class _Importer:
    def __init__(self, path, nodes, consts, shapes) -> None:
        self.path, self.nodes, self.consts, self.shapes = path, nodes, consts, shapes
        self.roots = _Roots()
        self.ids: dict[str, np.ndarray] = {}
        self.ops: list = []
        self.constants: dict[str, np.ndarray] = {}

    def _ids_of(self, name: str) -> np.ndarray:
        if name not in self.ids:
            if name not in self.consts:  # pragma: no cover - every live tensor is produced
                raise NsconvError(f"tensor {name!r} is used before it is produced", self.path)
            root = f"const:{name}"
            self.constants[root] = np.asarray(self.consts[name], np.float32)
            self.ids[name] = self.roots.add(root, np.shape(self.consts[name]))
        return self.ids[name]

    def build(self, inputs, caches, cut_inputs, outputs) -> OpGraph:
        cache_ids = {}
        graph_inputs = {}
        for name in list(inputs) + list(cut_inputs):
            self.ids[name] = self.roots.add(name, self.shapes[name])
            graph_inputs[name] = tuple(self.shapes[name])
        for name, (shape, _) in caches.items():
            cache_ids[name] = self.ids[name] = self.roots.add(f"cache:{name}", shape)
        compute = []  # (node, [input ids or const]) in order
        for n in self.nodes:
            if any(o in self.ids for o in n.outputs):
                continue  # a cut input: its producer is dropped
            if n.op in MOVE_OPS:
                if n.inputs[0] not in self.ids and n.inputs[0] not in self.consts:
                    continue  # upstream of a cut input
                pos = (range(len(n.inputs)) if n.op == "Concat"
                       else (0, 2) if n.op == "ScatterND" else (0,))
                data = [self._ids_of(n.inputs[k]) for k in pos]
                self.ids[n.outputs[0]] = _move(n, data, self.consts, self.path)
                continue
            if not any(i in self.ids for i in n.inputs if i):
                continue  # only reachable from dropped producers
            for o in n.outputs:
                if o:
                    self.ids[o] = self.roots.add(o, self.shapes[o])
            compute.append(n)
        states = self._states(compute, caches, cache_ids, outputs)
        return self._emit(compute, states, caches, graph_inputs, outputs)

    # states -------------------------------------------------------------------------------------
    def _cache_of(self, ids: np.ndarray):
        owner = self.roots.owner(ids.reshape(-1))
        return {self.roots.names[o] for o in np.unique(owner)
                if self.roots.names[o].startswith("cache:")}

    def _states(self, compute, caches, cache_ids, outputs):
        """One state per box of a cache read as a unit by a compute input."""
        reads = []
        for n in compute:
            for i in n.inputs:
                if i and i in self.ids:
                    reads.append((n, self.ids[i]))
        for o in outputs:
            reads.append((None, self.ids[o]))
        boxes = []  # (cache, box, node)
        for n, ids in reads:
            for root in self._cache_of(ids):
                cache = root[len("cache:"):]
                cid = cache_ids[cache]
                mask = np.isin(cid, ids)
                where = np.argwhere(mask)
                box = tuple((int(lo), int(hi) + 1) for lo, hi in zip(where.min(0), where.max(0), strict=True))
                if not mask[tuple(slice(a, b) for a, b in box)].all():
                    raise NsconvError(f"node {n.name if n else '?'!r} reads a non-box part of "
                                      f"cache {cache!r}", self.path)
                boxes.append((cache, box, n))
        uniq = []
        for cache, box, n in boxes:
            if (cache, box) in [(c, b) for c, b, _ in uniq]:
                continue
            for c, b, m in uniq:
                if c == cache and all(lo < hi2 and lo2 < hi for (lo, hi), (lo2, hi2)
                                      in zip(box, b, strict=True)):
                    raise NsconvError(f"nodes {n.name!r} and {m.name!r} read overlapping parts "
                                      f"of cache {cache!r}", self.path)
            uniq.append((cache, box, n))
        uniq.sort(key=lambda t: (list(caches).index(t[0]), t[1]))
        return [(f"{cache}[{','.join(f'{a}:{b}' for a, b in box)}]", cache, box)
                for cache, box, _ in uniq]

    # emission -----------------------------------------------------------------------------------
    def _emit(self, compute, states, caches, graph_inputs, outputs) -> OpGraph:
        # Cache ids -> state ids: state roots replace the cache roots.
        remap = np.arange(self.roots.size + sum(
            int(np.prod([b - a for a, b in box])) for _, _, box in states), dtype=np.int64)
        covered = {c: np.zeros(caches[c][0], bool) for c in caches}
        state_objs = []
        for sname, cache, box in states:
            sl = tuple(slice(a, b) for a, b in box)
            sid = self.roots.add(sname, [b - a for a, b in box])
            remap[self.ids[cache][sl].reshape(-1)] = sid.reshape(-1)
            covered[cache][sl] = True
        for c, cov in covered.items():
            if cov.any() and not cov.all():
                raise NsconvError(f"part of cache {c!r} is never read by the step", self.path)
        unresolved = set(self.roots.names[o] for o in range(len(self.roots.names))
                         if self.roots.names[o].startswith("cache:"))

        def assemble(node_name: str, out: str, ids: np.ndarray) -> str:
            ids = remap[ids]
            owners = np.unique(self.roots.owner(ids.reshape(-1)))
            names = [self.roots.names[o] for o in owners]
            if any(nm in unresolved for nm in names):
                raise NsconvError(f"{node_name!r} reads a cache element no state holds",
                                  self.path)
            if len(owners) == 1:
                o = owners[0]
                start = self.roots.offsets[o]
                if ids.size == np.prod(self.roots.shapes[o]) and np.array_equal(
                        ids.reshape(-1), np.arange(start, start + ids.size)):
                    if tuple(ids.shape) == self.roots.shapes[o]:
                        return names[0]
            base, index = 0, np.empty_like(ids)
            for o in owners:
                sel = self.roots.owner(ids) == o
                index[sel] = ids[sel] - self.roots.offsets[o] + base
                base += int(np.prod(self.roots.shapes[o]))
            self.ops.append(Assemble(node_name, out, tuple(names), index))
            return out

        for n in compute:
            args = []
            for k, i in enumerate(n.inputs):
                if not i:
                    args.append(None)
                elif i in self.ids and i not in self.consts:
                    args.append(assemble(f"{n.name}/in{k}", f"{n.name}/in{k}", self.ids[i]))
                else:
                    args.append(np.asarray(self.consts[i], np.float32))
            self.ops.append(self._typed(n, args))
        out_map = {o: assemble(f"output/{o}", f"output:{o}", self.ids[o]) for o in outputs}
        for sname, cache, box in states:
            out_cache = caches[cache][1]
            if out_cache not in self.ids:
                raise NsconvError(f"cache output {out_cache!r} is not computed", self.path)
            sl = tuple(slice(a, b) for a, b in box)
            upd = assemble(f"state/{sname}", f"state:{sname}",
                           self.ids[out_cache][sl])
            state_objs.append(State(sname, cache, box, upd))
        ops = _live(self.ops, set(out_map.values()) | {s.update for s in state_objs})
        used = {s for op in ops for s in op.inputs} | set(out_map.values())
        graph_inputs = {k: v for k, v in graph_inputs.items() if k in used}
        used_caches = {s.cache for s in state_objs}
        return OpGraph(str(self.path), graph_inputs, tuple(state_objs),
                       {c: (tuple(s), o) for c, (s, o) in caches.items() if c in used_caches},
                       tuple(ops),
                       out_map, {k: v for k, v in self.constants.items() if k in used})

    def _typed(self, n: _Node, args):
        a = n.attrs
        op, name, out = n.op, n.name, n.outputs[0]
        x = args[0]

        def need_tensor(v):
            if not isinstance(v, str):
                raise NsconvError(f"unsupported op {op} (node {name!r}): constant data input",
                                  self.path)
            return v

        if op == "Conv":
            return Conv(name, out, need_tensor(x), a["weight"], a["bias"], tuple(a["strides"]),
                        tuple(a["dilations"]), tuple(a["pads"]), a["groups"])
        if op == "PRelu":
            return PRelu(name, out, need_tensor(x), np.asarray(args[1], np.float32).reshape(-1)
                         if np.size(args[1]) == 1 else _prelu_slope(args[1], self.shapes[out]))
        if op == "MatMul":
            if isinstance(args[1], str):
                raise NsconvError(f"unsupported op MatMul (node {name!r}): the second operand "
                                  "must be a constant", self.path)
            return MatMul(name, out, need_tensor(x), np.asarray(args[1], np.float32))
        if op in ("Add", "Sub", "Mul", "Div"):
            return Binary(name, out, op, x, args[1])
        if op in ("Sigmoid", "Tanh", "Sqrt"):
            return Unary(name, out, op, need_tensor(x))
        if op == "Pow":
            if isinstance(args[1], str) or np.size(args[1]) != 1:
                raise NsconvError(f"unsupported op Pow (node {name!r}): the exponent must be a "
                                  "scalar constant", self.path)
            return Power(name, out, need_tensor(x), float(np.asarray(args[1]).reshape(())))
        if op == "ReduceMean":
            rank = len(self.shapes[n.inputs[0]])
            axes = a.get("axes", tuple(range(rank)))
            return ReduceMean(name, out, need_tensor(x), tuple(int(ax) % rank for ax in axes),
                              bool(a.get("keepdims", 1)))
        if op == "GRU":
            return self._gru(n, args)
        raise NsconvError(f"unsupported op {op} (node {name!r})", self.path)  # pragma: no cover

    def _gru(self, n: _Node, args):
        a = n.attrs
        direction = a.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else direction
        why = None
        if a.get("linear_before_reset", 0) != 1:
            why = "linear_before_reset=0"
        elif direction not in ("forward", "bidirectional"):
            why = f"direction {direction}"
        elif "activations" in a or "clip" in a:
            why = "non-default activations or clip"
        elif len(args) > 4 and args[4] is not None:
            why = "sequence_lens"
        elif any(isinstance(v, str) for v in args[1:4]):
            why = "weights must be constants"
        if why:
            raise NsconvError(f"unsupported op GRU (node {n.name!r}): {why}", self.path)
        h0 = args[5] if len(args) > 5 else None
        if h0 is not None and not isinstance(h0, str):
            if np.any(np.asarray(h0) != 0):
                raise NsconvError(f"unsupported op GRU (node {n.name!r}): constant non-zero "
                                  "initial state", self.path)
            h0 = None
        w = np.asarray(args[1], np.float32)
        b = (np.asarray(args[3], np.float32) if args[3] is not None
             else np.zeros((w.shape[0], 6 * a["hidden_size"]), np.float32))
        outs = (n.outputs[0] if len(n.outputs) > 0 and n.outputs[0] else f"{n.name}/y",
                n.outputs[1] if len(n.outputs) > 1 and n.outputs[1] else f"{n.name}/y_h")
        return GRU(n.name, outs, args[0], h0, w, np.asarray(args[2], np.float32), b,
                   int(a["hidden_size"]), direction)


def _prelu_slope(slope, out_shape):
    return np.broadcast_to(np.asarray(slope, np.float32), out_shape).copy()


def _live(ops, needed: set) -> list:
    keep = []
    for op in reversed(ops):
        outs = op.outs if isinstance(op, GRU) else (op.out,)
        if any(o in needed for o in outs):
            keep.append(op)
            needed.update(op.inputs)
    return keep[::-1]
