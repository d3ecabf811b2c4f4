# SPDX-License-Identifier: Apache-2.0
"""GTCRN's core as a compact one-step TF model for microcontroller compilers.

The generic TF model (opgraph_tf.py) emits every `Assemble` of the op graph as one GATHER or as
thousands of slices. Here the recurring layout patterns of GTCRN get their own few ops, so the
TFLite model has about a thousand ops of a dozen kinds, all batch 1 with static shapes:

- NHWC throughout (H = time, W = frequency); the input keeps the graph's (1, 3, 1, 257) and the
  mask output its (1, 2, 1, 129), so the front end is unchanged.
- ERB analysis of the input bands: STRIDED_SLICE + FULLY_CONNECTED + CONCATENATION.
- The first SFE unfold (kernel 3 along frequency): PAD + three STRIDED_SLICE + CONCATENATION
  (channel order k*3+c; the following conv's weights are permuted to match).
- The SFE unfold of a GTConvBlock followed by its pointwise conv is one (1, 3) CONV_2D (SAME): the
  same sums, no layout op.
- Grouped convs: SPLIT + one CONV_2D per group + CONCATENATION.
- Depthwise conv over cached frames (dilation d, kernel 3 in time): CONCATENATION(history,
  current) + PAD (frequency) + DEPTHWISE_CONV_2D (dilation d, VALID); the new history is one
  STRIDED_SLICE of the concatenation.
- Channel shuffle: RESHAPE + CONCATENATION + RESHAPE (interleave of the two halves).
- Stride-2 ConvTranspose: zero-stuffing as RESHAPE + PAD + RESHAPE + PAD, then a VALID conv.
- PReLU (one slope): LEAKY_RELU.  Power 2: MUL.  LayerNorm: MEAN/SUB/MUL/MEAN/ADD/RSQRT/MUL/MUL/ADD.
- GRU: input-side gate matmuls once per sequence (FULLY_CONNECTED), then per step two
  FULLY_CONNECTED on the hidden state and ADD/LOGISTIC/SPLIT/MUL/ADD/TANH/SUB/MUL/ADD. Both
  directions and both groups of an intra-frame GRNN run in one block-diagonal step; the backward
  direction reads the sequence reversed (STRIDED_SLICE with stride -1).

Weights come from the imported `OpGraph` (the numeric specification); `check_compact` compares
the model with `run_numpy` and `build_compact` refuses a graph that is not GTCRN's structure.
States keep the op graph's names; their compact layouts are NHWC frame histories
(1, 2d, 33, 16), GRU states (1, 16) and (33, 8) (`to_compact` / `from_compact` convert).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nsconv.errors import NsconvError
from nsconv.model.opgraph import GRU, Assemble, Binary, Conv, MatMul, OpGraph, PRelu

LOW = 65  # bins kept as they are before the ERB bands
MAX_CONCAT = 10  # TFLM CONCATENATION takes at most 10 inputs


@dataclass(frozen=True)
class GruW:
    """One GRU step in gate-major layout: zr = sigmoid(x@wx_zr + h@wh_zr + b_zr), n =
    tanh(x@wx_n + b_xn + r*(h@wh_n + b_hn)), h' = n + z*(h - n)."""
    wx_zr: np.ndarray
    wx_n: np.ndarray
    b_zr: np.ndarray
    b_xn: np.ndarray
    wh_zr: np.ndarray
    wh_n: np.ndarray
    b_hn: np.ndarray


@dataclass(frozen=True)
class Block:
    """A GTConvBlock: SFE+pointwise (1,3) conv, depthwise conv over cached frames, pointwise,
    TRA (GRU + linear + sigmoid), shuffle."""
    w1: np.ndarray  # (1, 3, 8, 16)
    b1: np.ndarray
    a1: float
    wd: np.ndarray  # (3, 3, 16, 1)
    bd: np.ndarray
    ad: float
    dilation: int
    w2: np.ndarray  # (1, 1, 16, 8)
    b2: np.ndarray
    tra: GruW
    fc: np.ndarray  # (16, 8)
    fc_b: np.ndarray
    hist: str  # state names
    tra_state: str


@dataclass(frozen=True)
class Dpgrnn:
    intra: GruW  # both groups and directions: h = [fwd g1, fwd g2, bwd g1, bwd g2] (4 each)
    intra_fc: np.ndarray  # rows in that order
    intra_b: np.ndarray
    ln1: tuple  # (eps, gamma (33, 16), beta)
    inter: GruW  # both groups: h = [g1, g2] (8 each)
    inter_fc: np.ndarray
    inter_b: np.ndarray
    ln2: tuple
    inter_states: tuple[str, str]


@dataclass(frozen=True)
class CompactGtcrn:
    erb: np.ndarray  # (192, 64)
    c1: tuple  # (w (1,5,9,16) in channel order k*3+c, b, slope)
    c2: tuple  # (w per group [(1,5,8,8)] * 2, b per group, slope)
    encoder: tuple[Block, ...]
    dp: tuple[Dpgrnn, ...]
    decoder: tuple[Block, ...]
    d1: tuple  # (w per group, b per group, slope): ConvTranspose as stuffed conv
    d2: tuple  # (w (1,5,16,2), b)
    state_shapes: dict  # state name -> compact shape


def _refuse(graph: OpGraph, why: str):
    raise NsconvError(f"not GTCRN's structure, no compact model: {why}", graph.source)


def _hwio(w: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0), np.float32)


def _gru_single(op: GRU) -> GruW:
    """A forward GRU (w (1, 3H, in)) in the gate-major step layout."""
    H = op.hidden
    w, r, b = op.w[0], op.r[0], op.b[0]
    bw, br = b[:3 * H], b[3 * H:]
    return GruW(w[:2 * H].T.copy(), w[2 * H:].T.copy(), (bw[:2 * H] + br[:2 * H]).copy(),
                bw[2 * H:].copy(), r[:2 * H].T.copy(), r[2 * H:].T.copy(), br[2 * H:].copy())


def _gru_grouped(ops: list[GRU], directions: int) -> tuple[GruW, list]:
    """Groups (and directions) of GRUs as one block-diagonal step.

    Hidden unit (d, g, u) sits at d*G*H + g*H + u; the input is [x, x reversed] (directions 2) with
    group g's channels at d*C + g*Cg + i. Returns the weights and the hidden position of each
    (g, d, u) in the order ONNX concatenates the group outputs (g, d, u)."""
    G, H = len(ops), ops[0].hidden
    cg = ops[0].w.shape[2]
    C, n_h = G * cg, directions * G * H
    wx_zr = np.zeros((directions * C, 2 * n_h), np.float32)
    wx_n = np.zeros((directions * C, n_h), np.float32)
    wh_zr = np.zeros((n_h, 2 * n_h), np.float32)
    wh_n = np.zeros((n_h, n_h), np.float32)
    b_zr = np.zeros(2 * n_h, np.float32)
    b_xn = np.zeros(n_h, np.float32)
    b_hn = np.zeros(n_h, np.float32)
    order = []
    for g, op in enumerate(ops):
        for d in range(directions):
            w, r, b = op.w[d], op.r[d], op.b[d]
            hs = slice(d * G * H + g * H, d * G * H + (g + 1) * H)
            xs = slice(d * C + g * cg, d * C + (g + 1) * cg)
            for gate in range(2):
                cols = slice(gate * n_h + hs.start, gate * n_h + hs.stop)
                wx_zr[xs, cols] = w[gate * H:(gate + 1) * H].T
                wh_zr[hs, cols] = r[gate * H:(gate + 1) * H].T
                b_zr[cols] = b[gate * H:(gate + 1) * H] + b[3 * H + gate * H:3 * H + (gate + 1) * H]
            wx_n[xs, hs] = w[2 * H:].T
            wh_n[hs, hs] = r[2 * H:].T
            b_xn[hs] = b[2 * H:3 * H]
            b_hn[hs] = b[5 * H:]
            order += list(range(hs.start, hs.stop))
    return GruW(wx_zr, wx_n, b_zr, b_xn, wh_zr, wh_n, b_hn), order


def _bias_of(graph: OpGraph, tensor: str) -> np.ndarray:
    for op in graph.ops:
        if not isinstance(op, Binary) or op.kind != "Add":
            continue
        for t, const in ((op.a, op.b), (op.b, op.a)):
            if isinstance(t, str) and t == tensor and not isinstance(const, str):
                return np.asarray(const, np.float32)
    _refuse(graph, f"no bias after {tensor}")


def _state_of(graph: OpGraph, assemble: str, asm: dict) -> str:
    names = {s.name for s in graph.states}
    src = [s for s in asm[assemble].sources if s in names] if assemble in asm else []
    if len(src) != 1:
        _refuse(graph, f"{assemble} does not read exactly one state")
    return src[0]


@dataclass(frozen=True)
class _Parts:
    """The op graph's typed ops by kind, in execution order."""
    graph: OpGraph
    convs: list
    slopes: list
    grus: list
    mms: list
    asm: dict
    lns: list


def _parts(graph: OpGraph) -> _Parts:
    ops = graph.ops
    convs = [o for o in ops if isinstance(o, Conv)]
    prelus = [o for o in ops if isinstance(o, PRelu)]
    grus = [o for o in ops if isinstance(o, GRU)]
    mms = [o for o in ops if isinstance(o, MatMul)]
    if (len(convs), len(prelus), len(grus), len(mms)) != (22, 15, 14, 11):
        _refuse(graph, "expected 22 convs, 15 PReLUs, 14 GRUs and 11 matmuls")
    if any(p.slope.size != 1 for p in prelus):
        _refuse(graph, "a PReLU with more than one slope")
    return _Parts(graph, convs, [float(p.slope.reshape(-1)[0]) for p in prelus], grus, mms,
                  {o.out: o for o in ops if isinstance(o, Assemble)}, _layer_norms(graph))


def _layer_norms(graph: OpGraph) -> list[tuple]:
    """(eps, gamma, beta) of the four LayerNorms over (33, 16), in order."""
    def consts(kind, test):
        return [o for o in graph.ops if isinstance(o, Binary) and o.kind == kind
                and not isinstance(o.b, str) and test(o.b)]

    mul = consts("Mul", lambda b: np.shape(b) == (33, 16))
    add = consts("Add", lambda b: np.shape(b) == (33, 16))
    eps = consts("Add", lambda b: np.size(b) == 1)
    if not len(mul) == len(add) == len(eps) == 4:
        _refuse(graph, "expected four layer norms over (33, 16)")
    return [(float(np.asarray(e.b).reshape(-1)[0]), np.asarray(m.b, np.float32),
             np.asarray(a.b, np.float32)) for e, m, a in zip(eps, mul, add, strict=True)]


def _grouped(op: Conv) -> tuple[list, list]:
    og = op.weight.shape[0] // op.groups
    return ([_hwio(op.weight[g * og:(g + 1) * og]) for g in range(op.groups)],
            [op.bias[g * og:(g + 1) * og].astype(np.float32) for g in range(op.groups)])


def _extract_block(p: _Parts, i: int) -> Block:
    """GTConvBlock i (0-2 encoder, 3-5 decoder)."""
    pw1, dw, pw2 = p.convs[2 + 3 * i: 5 + 3 * i]
    if (pw1.weight.shape != (16, 24, 1, 1) or dw.kind != "depthwise"
            or pw2.weight.shape != (8, 16, 1, 1)):
        _refuse(p.graph, f"GTConvBlock {i}")
    wsfe = pw1.weight[:, :, 0, 0].reshape(16, 8, 3)  # o, c, k -> (1, k, c, o)
    wsfe = np.ascontiguousarray(wsfe.transpose(2, 1, 0)[None], np.float32)
    tra = p.grus[(0, 1, 2, 11, 12, 13)[i]]
    fc = p.mms[(1, 2, 3, 8, 9, 10)[i]]
    return Block(wsfe, pw1.bias.astype(np.float32), p.slopes[2 + 2 * i],
                 np.ascontiguousarray(dw.weight.transpose(2, 3, 0, 1), np.float32),
                 dw.bias.astype(np.float32), p.slopes[3 + 2 * i], int(dw.dilations[0]),
                 _hwio(pw2.weight), pw2.bias.astype(np.float32), _gru_single(tra),
                 fc.weight.astype(np.float32), _bias_of(p.graph, fc.out),
                 _state_of(p.graph, dw.x, p.asm), _state_of(p.graph, tra.h0, p.asm))


def _extract_dpgrnn(p: _Parts, k: int) -> Dpgrnn:
    intra, order = _gru_grouped(p.grus[3 + 4 * k: 5 + 4 * k], 2)
    inter, _ = _gru_grouped(p.grus[5 + 4 * k: 7 + 4 * k], 1)
    fi, fo = p.mms[4 + 2 * k], p.mms[5 + 2 * k]
    fc_in = np.zeros_like(fi.weight)
    fc_in[order] = fi.weight  # ONNX row j (g, d, u) is our hidden position order[j]
    states = tuple(_state_of(p.graph, g.h0, p.asm) for g in p.grus[5 + 4 * k: 7 + 4 * k])
    return Dpgrnn(intra, fc_in.astype(np.float32), _bias_of(p.graph, fi.out), p.lns[2 * k],
                  inter, fo.weight.astype(np.float32), _bias_of(p.graph, fo.out),
                  p.lns[2 * k + 1], states)


def extract(graph: OpGraph) -> CompactGtcrn:
    """The weights of GTCRN's core in the compact layout, from the imported op graph."""
    p = _parts(graph)
    c1, d1, d2 = p.convs[0], p.convs[20], p.convs[21]
    if c1.weight.shape != (16, 9, 1, 5) or c1.strides != (1, 2) or c1.pads != (0, 2, 0, 2):
        _refuse(graph, "first conv")
    if d1.groups != 2 or d2.weight.shape != (2, 16, 1, 5):
        _refuse(graph, "ConvTranspose layers")
    w = c1.weight.reshape(16, 3, 3, 5)  # o, c, k, j -> (1, j, k*3+c, o)
    w1 = np.ascontiguousarray(w.transpose(3, 2, 1, 0).reshape(1, 5, 9, 16), np.float32)
    encoder = tuple(_extract_block(p, i) for i in range(3))
    decoder = tuple(_extract_block(p, i) for i in range(3, 6))
    dp = (_extract_dpgrnn(p, 0), _extract_dpgrnn(p, 1))
    shapes = {}
    for b in encoder + decoder:
        shapes[b.hist] = (1, 2 * b.dilation, 33, 16)
        shapes[b.tra_state] = (1, 16)
    for s in dp[0].inter_states + dp[1].inter_states:
        shapes[s] = (33, 8)
    if set(shapes) != {s.name for s in graph.states}:
        _refuse(graph, "states")
    return CompactGtcrn(
        erb=p.mms[0].weight.astype(np.float32),
        c1=(w1, c1.bias.astype(np.float32), p.slopes[0]),
        c2=(*_grouped(p.convs[1]), p.slopes[1]),
        encoder=encoder, dp=dp, decoder=decoder,
        d1=(*_grouped(d1), p.slopes[14]), d2=(_hwio(d2.weight), d2.bias.astype(np.float32)),
        state_shapes=shapes)


# ---------------------------------------------------------------------------------------------
# State layouts
# ---------------------------------------------------------------------------------------------

def to_compact(graph: OpGraph, states: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Op-graph state values -> the compact model's layouts."""
    out = {}
    for s in graph.states:
        v = np.asarray(states[s.name], np.float32)
        if s.cache == "conv_cache":  # (1, 1, C, T, F) -> (1, T, F, C)
            out[s.name] = np.ascontiguousarray(v[0].transpose(0, 2, 3, 1))
        elif s.cache == "tra_cache":
            out[s.name] = v.reshape(1, -1)
        else:
            out[s.name] = v.reshape(v.shape[-2], v.shape[-1])
    return out


def from_compact(graph: OpGraph, states: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for s in graph.states:
        v = np.asarray(states[s.name], np.float32)
        if s.cache == "conv_cache":
            out[s.name] = np.ascontiguousarray(v.transpose(0, 3, 1, 2)[None])
        else:
            out[s.name] = v.reshape(s.shape)
    return out


# ---------------------------------------------------------------------------------------------
# The TF model
# ---------------------------------------------------------------------------------------------

def input_names(graph: OpGraph) -> list[str]:
    return sorted(list(graph.inputs) + [s.name for s in graph.states])


def build_compact(graph: OpGraph, input_name: str = "feat", output_name: str = "m_feat"):
    """(tf.function with a fixed signature, input names in signature order, CompactGtcrn)."""
    import tensorflow as tf

    from nsconv.model.opgraph_tf import _safe

    m = extract(graph)
    names = input_names(graph)
    shapes = {input_name: graph.inputs[input_name], **m.state_shapes}
    sig = [tf.TensorSpec(shapes[n], tf.float32, name=_safe(n)) for n in names]
    ops = _Ops(tf)

    outs = [output_name] + sorted(m.state_shapes)

    def step(*args):
        got = _forward(ops, m, dict(zip(names, args, strict=True)), input_name, output_name)
        return {_safe(k): got[k] for k in outs}

    return tf.function(step, input_signature=sig, autograph=False), names, m


class _Ops:
    """The few TF building blocks the compact model is made of."""

    def __init__(self, tf) -> None:
        self.tf = tf

    def c(self, a):
        return self.tf.constant(np.asarray(a, np.float32))

    def conv(self, x, w, b, stride=(1, 1), padding="VALID"):
        tf = self.tf
        y = tf.nn.conv2d(x, self.c(w), [1, stride[0], stride[1], 1], padding)
        return tf.nn.bias_add(y, self.c(b))

    def grouped(self, x, ws, bs, stride=(1, 1), padding="VALID"):
        xs = self.tf.split(x, len(ws), axis=-1)
        return self.tf.concat([self.conv(xi, w, b, stride, padding)
                               for xi, w, b in zip(xs, ws, bs, strict=True)], -1)

    def prelu(self, x, a):
        return self.tf.nn.leaky_relu(x, alpha=float(a))

    def fc(self, x, w, b=None):
        y = self.tf.matmul(x, self.c(w))
        return y if b is None else y + self.c(b)

    def concat(self, parts, axis):
        tf = self.tf
        while len(parts) > MAX_CONCAT:
            parts = [parts[i:i + MAX_CONCAT] for i in range(0, len(parts), MAX_CONCAT)]
            parts = [p[0] if len(p) == 1 else tf.concat(p, axis) for p in parts]
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis)

    def gru_gates(self, g: GruW, x_zr, x_n, h):
        """One step given the input-side gates (biases included); h None = zero state."""
        tf = self.tf
        if h is None:
            z, r = tf.split(tf.sigmoid(x_zr), 2, axis=-1)
            n = tf.tanh(x_n + r * self.c(g.b_hn))
            return n - z * n
        z, r = tf.split(tf.sigmoid(x_zr + self.fc(h, g.wh_zr)), 2, axis=-1)
        n = tf.tanh(x_n + r * self.fc(h, g.wh_n, g.b_hn))
        return n + z * (h - n)

    def gru_step(self, g: GruW, x, h):
        return self.gru_gates(g, self.fc(x, g.wx_zr, g.b_zr), self.fc(x, g.wx_n, g.b_xn), h)

    def layer_norm(self, x, ln):
        tf = self.tf
        eps, gamma, beta = ln
        d = x - tf.reduce_mean(x, axis=[0, 1], keepdims=True)
        var = tf.reduce_mean(d * d, axis=[0, 1], keepdims=True)
        return d * tf.math.rsqrt(var + eps) * self.c(gamma) + self.c(beta)

    def stuff2(self, x, before: int, after: int):
        """(1, 1, W, C) -> zero-stuffed by 2 and padded: (1, 1, before + 2W - 1 + after, C)."""
        tf = self.tf
        _, _, w, c = x.shape
        y = tf.reshape(x, [1, w, 1, c])
        y = tf.pad(y, [[0, 0], [0, 0], [0, 1], [0, 0]])
        y = tf.reshape(y, [1, 1, 2 * w, c])
        return tf.pad(y, [[0, 0], [0, 0], [before, after - 1], [0, 0]])


def _block(ops: _Ops, b: Block, x, v: dict, out_name: str) -> dict:
    tf = ops.tf
    new: dict = {}
    x1, x2 = tf.split(x, 2, axis=-1)
    h = ops.prelu(ops.conv(x1, b.w1, b.b1, padding="SAME"), b.a1)
    frames = tf.concat([v[b.hist], h], axis=1)  # (1, 2d + 1, 33, 16): oldest first
    new[b.hist] = frames[:, 1:]
    frames = tf.pad(frames, [[0, 0], [0, 0], [1, 1], [0, 0]])
    h = tf.nn.depthwise_conv2d(frames, ops.c(b.wd), [1, 1, 1, 1], "VALID",
                               dilations=[b.dilation, 1])
    h = ops.prelu(tf.nn.bias_add(h, ops.c(b.bd)), b.ad)
    h = ops.conv(h, b.w2, b.b2)  # (1, 1, 33, 8)
    energy = tf.reshape(tf.reduce_mean(h * h, axis=2, keepdims=True), [1, 8])
    hn = ops.gru_step(b.tra, energy, v[b.tra_state])
    new[b.tra_state] = hn
    att = tf.reshape(tf.sigmoid(ops.fc(hn, b.fc, b.fc_b)), [1, 1, 1, 8])
    h = h * att
    # shuffle: channel 2c <- h[c], 2c + 1 <- x2[c]
    pair = tf.concat([tf.reshape(h, [1, 33, 8, 1]), tf.reshape(x2, [1, 33, 8, 1])], axis=-1)
    new[out_name] = tf.reshape(pair, [1, 1, 33, 16])
    return new


def _intra(ops: _Ops, d: Dpgrnn, x):
    """Intra-frame GRNN + linear + LayerNorm + residual: (1, 1, 33, 16) -> (33, 16)."""
    tf = ops.tf
    X = tf.reshape(x, [33, 16])
    # intra-frame: bidirectional over the 33 bands, both groups, one step per band
    XX = tf.concat([X, X[::-1]], axis=1)
    rows_zr = tf.split(ops.fc(XX, d.intra.wx_zr, d.intra.b_zr), 33, axis=0)
    rows_n = tf.split(ops.fc(XX, d.intra.wx_n, d.intra.b_xn), 33, axis=0)
    h, hs = None, []
    for t in range(33):
        h = ops.gru_gates(d.intra, rows_zr[t], rows_n[t], h)
        hs.append(h)
    H = ops.concat(hs, 0)  # (33, 16): forward at position t, backward at position 32 - t
    Y = tf.concat([H[:, :8], H[::-1, 8:]], axis=1)
    return X + ops.layer_norm(ops.fc(Y, d.intra_fc, d.intra_b), d.ln1)


def _inter(ops: _Ops, d: Dpgrnn, X, v: dict, out_name: str) -> dict:
    """Inter-frame GRNN (one step per band, states carried) + linear + LayerNorm + residual."""
    tf = ops.tf
    new: dict = {}
    s1, s2 = d.inter_states
    hn = ops.gru_step(d.inter, X, tf.concat([v[s1], v[s2]], axis=1))
    new[s1], new[s2] = tf.split(hn, 2, axis=1)
    new[out_name] = tf.reshape(X + ops.layer_norm(ops.fc(hn, d.inter_fc, d.inter_b), d.ln2),
                               [1, 1, 33, 16])
    return new


@dataclass(frozen=True)
class Stage:
    """A run of the core with named inputs and outputs (activations, states, the mask).

    The model is these stages chained; a quantization mix converts runs of stages separately."""
    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    fn: object  # (ops, CompactGtcrn, values: dict) -> dict of written tensors


def stages(m: CompactGtcrn, input_name: str = "feat", output_name: str = "m_feat") -> list[Stage]:
    out = [Stage("input", (input_name,), ("e0", "e1"),
                 lambda ops, m, a: _input_stage(ops, m, a[input_name]))]
    for i, b in enumerate(m.encoder):
        out.append(Stage(f"encoder{i}", (f"e{i + 1}", b.hist, b.tra_state),
                         (f"e{i + 2}", b.hist, b.tra_state),
                         lambda ops, m, a, i=i, b=b: _block(ops, b, a[f"e{i + 1}"], a,
                                                            f"e{i + 2}")))
    x = "e4"
    for k, d in enumerate(m.dp):
        out.append(Stage(f"intra{k}", (x,), (f"p{k}",),
                         lambda ops, m, a, d=d, x=x, k=k: {f"p{k}": _intra(ops, d, a[x])}))
        out.append(Stage(f"inter{k}", (f"p{k}",) + d.inter_states,
                         (f"q{k}",) + d.inter_states,
                         lambda ops, m, a, d=d, k=k: _inter(ops, d, a[f"p{k}"], a, f"q{k}")))
        x = f"q{k}"
    for i, b in enumerate(m.decoder):
        skip = f"e{4 - i}"
        out.append(Stage(f"decoder{i}", (x, skip, b.hist, b.tra_state),
                         (f"d{i}", b.hist, b.tra_state),
                         lambda ops, m, a, b=b, x=x, skip=skip, i=i:
                         _block(ops, b, a[x] + a[skip], a, f"d{i}")))
        x = f"d{i}"
    out.append(Stage("output", (x, "e1", "e0"), (output_name,),
                     lambda ops, m, a, x=x: {output_name: _output_stage(ops, m, a[x] + a["e1"],
                                                                        a["e0"])}))
    return out


def _input_stage(ops: _Ops, m: CompactGtcrn, feat) -> dict:
    tf = ops.tf
    f = tf.reshape(feat, [3, 257])
    bands = tf.concat([f[:, :LOW], ops.fc(f[:, LOW:], m.erb)], axis=1)  # (3, 129)
    x = tf.reshape(tf.transpose(bands), [1, 1, 129, 3])
    xp = tf.pad(x, [[0, 0], [0, 0], [1, 1], [0, 0]])
    x = tf.concat([xp[:, :, k:k + 129] for k in range(3)], axis=-1)  # SFE, channel k*3+c
    e0 = ops.prelu(ops.conv(x, m.c1[0], m.c1[1], (1, 2), "SAME"), m.c1[2])  # (1, 1, 65, 16)
    e1 = ops.prelu(ops.grouped(e0, m.c2[0], m.c2[1], (1, 2), "SAME"), m.c2[2])  # (1,1,33,16)
    return {"e0": e0, "e1": e1}


def _output_stage(ops: _Ops, m: CompactGtcrn, x, e0):
    tf = ops.tf
    x = ops.stuff2(x, 2, 2)  # (1, 1, 69, 16)
    x = ops.prelu(ops.grouped(x, m.d1[0], m.d1[1]), m.d1[2]) + e0  # (1, 1, 65, 16)
    x = ops.conv(ops.stuff2(x, 2, 2), m.d2[0], m.d2[1])  # (1, 1, 129, 2)
    return tf.transpose(tf.tanh(x), [0, 3, 1, 2])  # (1, 2, 1, 129)


def _forward(ops: _Ops, m: CompactGtcrn, values: dict, input_name: str = "feat",
             output_name: str = "m_feat") -> dict:
    """All stages chained; values holds the input and states; returns what the stages write."""
    values = dict(values)
    new = {}
    for st in stages(m, input_name, output_name):
        got = st.fn(ops, m, values)
        values.update(got)
        new.update(got)
    return new


def stage_reads(sts: list[Stage]) -> list[str]:
    """What a run of stages reads from outside itself, in first-read order."""
    made: set = set()
    reads: list[str] = []
    for st in sts:
        reads += [r for r in st.reads if r not in made and r not in reads]
        made |= set(st.writes)
    return reads


def build_segment(m: CompactGtcrn, sts: list[Stage], shapes: dict, outputs: list[str]):
    """A run of stages as its own tf.function: (function, input names in signature order).

    Inputs are what the run reads from outside (sorted), outputs the named writes (a state's
    name gives its new value)."""
    import tensorflow as tf

    from nsconv.model.opgraph_tf import _safe

    names = sorted(stage_reads(sts))
    sig = [tf.TensorSpec(shapes[n], tf.float32, name=_safe(n)) for n in names]
    ops = _Ops(tf)

    def step(*args):
        a = dict(zip(names, args, strict=True))
        for st in sts:
            a.update(st.fn(ops, m, a))
        return {_safe(k): a[k] for k in outputs}

    return tf.function(step, input_signature=sig, autograph=False), names


class CompactStepper:
    """The compact TF model stepped over frames, states fed back (float)."""

    def __init__(self, graph: OpGraph, input_name: str = "feat",
                 output_name: str = "m_feat") -> None:
        from nsconv.model.opgraph_tf import _safe

        self.graph = graph
        self.fn, self.names, self.weights = build_compact(graph, input_name, output_name)
        self.input_name, self.output_name, self._safe = input_name, output_name, _safe
        self.states = {k: np.zeros(s, np.float32) for k, s in self.weights.state_shapes.items()}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        feeds = {self.input_name: x.reshape(self.graph.inputs[self.input_name]), **self.states}
        out = self.fn(*[np.asarray(feeds[n], np.float32) for n in self.names])
        self.states = {k: out[self._safe(k)].numpy() for k in self.states}
        return out[self._safe(self.output_name)].numpy()
