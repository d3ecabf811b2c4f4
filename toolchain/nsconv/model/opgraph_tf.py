# SPDX-License-Identifier: Apache-2.0
"""A TensorFlow one-step model of an `OpGraph`: explicit state inputs and outputs, batch 1,
static shapes, no loops (GRUs unrolled into their gate matmuls), ready for the TFLite converter.

Inputs are the graph's inputs and states (sorted by name, as the converter orders them); outputs
the graph's outputs and `<state>` -> new state. Tensors are NCHW as in the ONNX graph; a Conv
transposes to NHWC around tf.nn convolutions. An `Assemble` that is a reshape of one source is a
RESHAPE; any other is one GATHER from the flattened, concatenated sources.
"""

from __future__ import annotations

import itertools

import numpy as np

from nsconv.model.opgraph import GRU, Assemble, Binary, Conv, MatMul, OpGraph, Power, PRelu, ReduceMean, Unary


def input_names(graph: OpGraph) -> list[str]:
    return sorted(list(graph.inputs) + [s.name for s in graph.states])


def _is_reshape(op: Assemble, sizes: dict) -> bool:
    return (len(op.sources) == 1 and op.index.size == sizes[op.sources[0]]
            and np.array_equal(op.index.reshape(-1), np.arange(op.index.size)))


def build_tf_step(graph: OpGraph, layout: str = "gather"):
    """(tf.function with a fixed input signature, list of input names).

    layout "gather": an `Assemble` that is not a plain reshape is one GATHER; "slices": it is
    lowered to STRIDED_SLICE/RESHAPE/TRANSPOSE/CONCATENATION and zero constants (`lower_assemble`),
    which TFLM implements for int16 activations too."""
    import tensorflow as tf

    names = input_names(graph)
    shapes = dict(graph.inputs)
    shapes.update({s.name: s.shape for s in graph.states})
    sig = [tf.TensorSpec(shapes[n], tf.float32, name=_safe(n)) for n in names]
    consts = {k: tf.constant(v, tf.float32) for k, v in graph.constants.items()}
    consts["zero"] = tf.zeros([1], tf.float32)
    all_shapes = graph.shapes()

    def step(*args):
        v = dict(consts)
        v.update(dict(zip(names, args, strict=True)))
        for op in graph.ops:
            if isinstance(op, Assemble) and layout == "slices":
                v[op.out] = _emit_lowered(tf, op, v)
            else:
                _emit(tf, op, v, all_shapes)
        out = {_safe(k): v[t] for k, t in graph.outputs.items()}
        out.update({_safe(s.name): v[s.update] for s in graph.states})
        return out

    return tf.function(step, input_signature=sig, autograph=False), names


def _safe(name: str) -> str:
    """TF tensor names: letters, digits, underscores."""
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def _emit(tf, op, v: dict, shapes: dict) -> None:
    if isinstance(op, Assemble):
        sizes = {s: int(np.prod(v[s].shape)) for s in op.sources}
        if _is_reshape(op, sizes):
            v[op.out] = tf.reshape(v[op.sources[0]], op.index.shape)
        else:
            flat = [tf.reshape(v[s], [-1]) for s in op.sources]
            flat = flat[0] if len(flat) == 1 else tf.concat(flat, 0)
            v[op.out] = tf.gather(flat, tf.constant(op.index.astype(np.int32)))
    elif isinstance(op, Conv):
        v[op.out] = _conv(tf, v[op.x], op)
    elif isinstance(op, PRelu):
        x = v[op.x]
        pos = tf.nn.relu(x)  # no zero constants: they quantize to scale 0 in int16
        v[op.out] = pos + tf.constant(op.slope) * (x - pos)
    elif isinstance(op, MatMul):
        x = v[op.x]
        k, n = op.weight.shape
        flat = tf.reshape(x, [-1, k]) @ tf.constant(op.weight)
        v[op.out] = tf.reshape(flat, list(x.shape[:-1]) + [n])
    elif isinstance(op, Binary):
        a = v[op.a] if isinstance(op.a, str) else tf.constant(op.a, tf.float32)
        b = v[op.b] if isinstance(op.b, str) else tf.constant(op.b, tf.float32)
        f = {"Add": tf.add, "Sub": tf.subtract, "Mul": tf.multiply, "Div": tf.divide}[op.kind]
        v[op.out] = f(a, b)
    elif isinstance(op, Unary):
        f = {"Sigmoid": tf.sigmoid, "Tanh": tf.tanh, "Sqrt": tf.sqrt}[op.kind]
        v[op.out] = f(v[op.x])
    elif isinstance(op, Power):
        x = v[op.x]
        v[op.out] = x * x if op.exponent == 2.0 else tf.pow(x, op.exponent)
    elif isinstance(op, ReduceMean):
        v[op.out] = tf.reduce_mean(v[op.x], axis=list(op.axes), keepdims=op.keepdims)
    elif isinstance(op, GRU):
        v[op.outs[0]], v[op.outs[1]] = _gru(tf, op, v[op.x], v[op.h0] if op.h0 else None)
    else:  # pragma: no cover
        raise TypeError(type(op).__name__)


def _conv(tf, x, op: Conv):
    pt0, pf0, pt1, pf1 = op.pads
    y = tf.transpose(x, [0, 2, 3, 1])
    if any(op.pads):
        y = tf.pad(y, [[0, 0], [pt0, pt1], [pf0, pf1], [0, 0]])
    cout, cin_g, kt, kf = op.weight.shape
    strides = [1, op.strides[0], op.strides[1], 1]
    dil = list(op.dilations)
    if op.kind == "depthwise":
        w = op.weight.transpose(2, 3, 0, 1)  # kt, kf, C, 1
        y = tf.nn.depthwise_conv2d(y, tf.constant(w), strides, "VALID", dilations=dil)
    else:
        og = cout // op.groups
        outs = []
        for g in range(op.groups):
            xg = y if op.groups == 1 else y[..., g * cin_g:(g + 1) * cin_g]
            w = op.weight[g * og:(g + 1) * og].transpose(2, 3, 1, 0)  # kt, kf, cin_g, og
            outs.append(tf.nn.conv2d(xg, tf.constant(w), strides, "VALID", dilations=dil))
        y = outs[0] if len(outs) == 1 else tf.concat(outs, -1)
    y = y + tf.constant(op.bias)
    return tf.transpose(y, [0, 3, 1, 2])


def _gru(tf, op: GRU, x, h0):
    """Unrolled: the input-side gate matmul once for the whole sequence, then per step one
    matmul on the hidden state (a bidirectional GRU runs both directions in one block-diagonal
    step)."""
    seq, batch, _ = x.shape
    H, dirs = op.hidden, op.w.shape[0]
    xs = []  # per direction, per gate: the sequence of input-side gate values
    for d in range(dirs):
        w, b = op.w[d], op.b[d]
        xg = tf.reshape(tf.reshape(x, [-1, w.shape[1]]) @ tf.constant(w.T.copy())
                        + tf.constant(b[:3 * H]), [seq, batch, 3 * H])
        gates = [tf.unstack(g, axis=0) for g in tf.split(xg, 3, axis=-1)]
        xs.append(gates if d == 0 else [g[::-1] for g in gates])
    # hidden-side weights of all directions, block-diagonal, gate-major: [z_d.. | r_d.. | n_d..]
    r_blk = np.zeros((dirs * H, 3 * dirs * H), np.float32)
    rb = np.zeros(3 * dirs * H, np.float32)
    for d in range(dirs):
        for gate in range(3):
            cols = slice((gate * dirs + d) * H, (gate * dirs + d + 1) * H)
            r_blk[d * H:(d + 1) * H, cols] = op.r[d][gate * H:(gate + 1) * H].T
            rb[cols] = op.b[d][3 * H + gate * H:3 * H + (gate + 1) * H]
    r_blk, rb = tf.constant(r_blk), tf.constant(rb)
    # a zero initial state is not materialised (an all-zero tensor quantizes to scale 0 in int16):
    # the first step's hidden-side gates are then the biases alone
    h = None if h0 is None else tf.concat(tf.unstack(h0, axis=0), -1)
    outs = []
    for t in range(seq):
        xz, xr, xn = ([xs[d][gate][t] for d in range(dirs)] for gate in range(3))
        if dirs > 1:
            xz, xr, xn = tf.concat(xz, -1), tf.concat(xr, -1), tf.concat(xn, -1)
        else:
            xz, xr, xn = xz[0], xr[0], xn[0]
        hz, hr, hn = tf.split(rb if h is None else h @ r_blk + rb, 3, axis=-1)
        z = tf.sigmoid(xz + hz)
        n = tf.tanh(xn + tf.sigmoid(xr + hr) * hn)
        h = n - z * n if h is None else n + z * (h - n)
        outs.append(h)
    if dirs == 1:
        return tf.expand_dims(tf.stack(outs, 0), 1), tf.expand_dims(h, 0)
    per_dir = [tf.split(o, dirs, axis=-1) for o in outs]
    ys = [tf.stack([p[d] for p in (per_dir if d == 0 else per_dir[::-1])], 0)
          for d in range(dirs)]
    return tf.stack(ys, 1), tf.stack(tf.split(h, dirs, axis=-1), 0)


def lower_assemble(op: Assemble, sizes: dict) -> tuple:
    """An Assemble as a tree of layout pieces over its flattened sources:
    ("zeros", shape) | ("chunk", source, start, size, shape, perm) | ("concat", axis, parts)."""
    offsets, base = {}, 0
    for s in op.sources:
        offsets[s] = base
        base += sizes[s]
    starts = np.array([offsets[s] for s in op.sources])
    ends = starts + np.array([sizes[s] for s in op.sources])
    zero = op.sources.index("zero") if "zero" in op.sources else -1

    def owner(idx):
        return np.searchsorted(ends, idx, side="right")

    def leaf(idx):
        own = np.unique(owner(idx))
        if len(own) != 1:
            return None
        k = int(own[0])
        if k == zero:
            return ("zeros", idx.shape)
        flat = idx.reshape(-1) - starts[k]
        lo, n = int(flat.min()), flat.size
        if flat.max() - lo + 1 != n:
            return None
        if np.array_equal(flat, np.arange(lo, lo + n)):
            return ("chunk", op.sources[k], lo, n, idx.shape, None)
        dims = list(idx.shape)
        for perm in itertools.permutations(range(len(dims))):
            src_shape = [dims[i] for i in perm]
            cand = np.arange(lo, lo + n).reshape(src_shape).transpose(np.argsort(perm))
            if np.array_equal(cand, idx - starts[k]):
                return ("chunk", op.sources[k], lo, n, tuple(src_shape), tuple(np.argsort(perm)))
        return None

    def runs(idx, axis):
        own = [owner(np.take(idx, i, axis=axis)) for i in range(idx.shape[axis])]
        keys = [tuple(np.unique(o)) for o in own]
        out, begin = [], 0
        for i in range(1, len(keys) + 1):
            if i == len(keys) or keys[i] != keys[begin] or len(keys[i]) != 1:
                out.append((begin, i))
                begin = i
        return out

    def lower(idx):
        got = leaf(idx)
        if got is not None:
            return got
        best = None
        for axis in range(idx.ndim):
            if idx.shape[axis] > 1:
                r = runs(idx, axis)
                if len(r) > 1 and (best is None or len(r) < len(best[1])):
                    best = (axis, r)
        if best is None:  # one owner everywhere but not a chunk: split the first long axis
            axis = next(a for a in range(idx.ndim) if idx.shape[a] > 1)
            best = (axis, [(i, i + 1) for i in range(idx.shape[axis])])
        axis, r = best
        parts = [lower(np.take(idx, range(a, b), axis=axis)) for a, b in r]
        return ("concat", axis, tuple(parts))

    return lower(op.index)


def _emit_lowered(tf, op: Assemble, v: dict):
    sizes = {s: int(np.prod(v[s].shape)) for s in op.sources}
    flats = {}

    def build(node):
        if node[0] == "zeros":
            return tf.zeros(node[1], tf.float32)
        if node[0] == "chunk":
            _, src, lo, n, shape, perm = node
            if src not in flats:
                flats[src] = tf.reshape(v[src], [-1])
            piece = flats[src] if (lo, n) == (0, sizes[src]) else flats[src][lo:lo + n]
            piece = tf.reshape(piece, shape)
            return piece if perm is None else tf.transpose(piece, perm)
        return _concat_padded(tf, node[2], node[1], build)

    return build(lower_assemble(op, sizes))


def _concat_padded(tf, parts, axis: int, build):
    """Concatenate pieces along `axis`; zero pieces become PAD of a neighbour, never constants
    (an all-zero constant gets scale 0 in int16 quantization, which TFLM cannot requantize)."""
    built, pending = [], 0
    for p in parts:
        if p[0] == "zeros":
            if built:
                built[-1][2] += p[1][axis]
            else:
                pending += p[1][axis]
        else:
            built.append([build(p), pending, 0])
            pending = 0
    if not built:
        shape = list(parts[0][1])
        shape[axis] = sum(p[1][axis] for p in parts)
        return tf.zeros(shape, tf.float32)
    pieces = []
    for t, before, after in built:
        if before or after:
            pads = [[0, 0]] * len(t.shape)
            pads[axis] = [before, after]
            t = tf.pad(t, pads)
        pieces.append(t)
    return _concat(tf, pieces, axis)


def _concat(tf, parts: list, axis: int, max_inputs: int = 10):
    """CONCATENATION with at most `max_inputs` inputs per op (TFLM's kMaxInputNum)."""
    while len(parts) > max_inputs:
        parts = [parts[i:i + max_inputs] for i in range(0, len(parts), max_inputs)]
        parts = [p[0] if len(p) == 1 else tf.concat(p, axis) for p in parts]
    return parts[0] if len(parts) == 1 else tf.concat(parts, axis)


class TfStepper:
    """The TF one-step model stepped over frames with its states fed back."""

    def __init__(self, graph: OpGraph, input_name: str, output_name: str,
                 layout: str = "gather") -> None:
        self.graph = graph
        self.fn, self.names = build_tf_step(graph, layout)
        self.input_name, self.output_name = input_name, output_name
        self.states = {s.name: np.zeros(s.shape, np.float32) for s in graph.states}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        feeds = {self.input_name: x.reshape(self.graph.inputs[self.input_name]), **self.states}
        out = self.fn(*[feeds[n].astype(np.float32) for n in self.names])
        self.states = {s.name: out[_safe(s.name)].numpy() for s in self.graph.states}
        return out[_safe(self.output_name)].numpy()
