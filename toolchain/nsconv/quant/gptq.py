# SPDX-License-Identifier: Apache-2.0
"""Error-compensating int4 rounding from calibration audio alone: GPTQ (Frantar et al., 2022).

Why GPTQ and not AdaRound: both need only calibration inputs, but AdaRound learns a rounding
mask per weight by gradient descent on each layer (thousands of iterations, a training loop and
its hyper-parameters), while GPTQ is closed-form: one Hessian per input, one Cholesky factor, one
pass over the columns. For dynamic-nsnet2 (1.5 M weights) it takes seconds on 2 CPU cores and
is deterministic, so every run (and every exit) gets the same int4 values.

Method, per FULLY_CONNECTED W (out, in) that reads input x:
  * H = X^T X over the float inputs X (frames, in) recorded closed loop on the calibration
    clips: the float step models run frame by frame with their float states fed back
    (quantize.record_closed_loop), and each layer's input is computed from the recorded
    features and states. A GRU's x-side matrices (xz, xr, xn) see the layer input, its h-side
    ones (hz, hr, hn) the recorded state h. When several layers go int4 (`sequential_gptq`,
    what convert uses), they are quantized upstream first and each later layer's inputs are
    recorded with the earlier ones holding their int4 weights, so its rounding also
    compensates what they changed (docs/int4_rounding.md, `make int4-rounding`, measures
    it on dynamic-nsnet2 per exit and clip). The sensitivity
    ranking makes one layer int4 at a time, which is the same computation for that layer.
  * Scales, per output row, symmetric: s = c * max|w_row| / 7 with the clip ratio c from a
    small grid (CLIP_RATIOS) minimising the H-weighted round-to-nearest error of that row,
    (w - q s) H (w - q s)^T; c = 1 is plain max scaling.
  * Columns are quantized in order of decreasing H_ii (act order); each column's rounding error
    is fed forward into the columns not yet quantized through the upper Cholesky factor U of
    (H + damp I)^-1 (damp = DAMP x mean diag H): err = (w_i - q_i s) / U_ii,
    W[:, j>i] -= err U_i,j. Inputs never active in calibration (H_ii = 0) get H_ii = 1 (they
    are then plain round-to-nearest).
Its figure of merit is the layer's output error on calibration inputs, ||(W - Q s) X||^2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from nsconv.model.netspec import GRU, Dense, NetSpec
from nsconv.model.stepmodel import state_input_name
from nsconv.quant.int4 import INT4_MAX, Int4Weights, layer_matrices, rtn, rtn_scales

DAMP = 0.01
CLIP_RATIOS = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7)
BLOCK = 128


@dataclass(frozen=True, eq=False)
class LayerInputs:
    """Second moments of a layer's float inputs on the calibration audio: 'x' (the layer
    input) and, for a GRU, 'h' (its state); each (in, in) float64, summed over frames."""

    hessians: dict[str, np.ndarray]
    frames: int


def hessian(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x.T @ x


def clip_scales(weight: np.ndarray, h: np.ndarray, ratios=CLIP_RATIOS) -> np.ndarray:
    """Per-row scales c * max|w_row| / 7, c from `ratios` minimising the H-weighted error."""
    w = np.asarray(weight, np.float64)
    base = rtn_scales(weight).astype(np.float64)
    best = np.full(w.shape[0], np.inf)
    scales = base.astype(np.float32)
    for c in ratios:
        s = (c * base).astype(np.float32)
        q, _ = rtn(weight, s)
        e = w - q * s.astype(np.float64)[:, None]
        cost = np.einsum("ij,jk,ik->i", e, h, e)
        better = cost < best
        best = np.where(better, cost, best)
        scales = np.where(better, s, scales)
    return scales.astype(np.float32)


def gptq(weight: np.ndarray, h: np.ndarray, damp: float = DAMP, clip: bool = True,
         act_order: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """GPTQ int4 of W (out, in) for inputs with second moment H (in, in): (values, scales)."""
    w = np.array(weight, np.float64)
    h = np.array(h, np.float64)
    dead = np.diag(h) <= 0
    h[dead, dead] = 1.0
    scales = clip_scales(weight, h) if clip else rtn_scales(weight)
    s = scales.astype(np.float64)[:, None]
    perm = np.argsort(-np.diag(h), kind="stable") if act_order else np.arange(len(h))
    w, h = w[:, perm], h[np.ix_(perm, perm)]
    h[np.diag_indices_from(h)] += damp * np.mean(np.diag(h))
    u = np.linalg.cholesky(np.linalg.inv(h)).T  # upper: (H^-1) = U^T U
    q = np.zeros(w.shape, np.int8)
    n = w.shape[1]
    for a in range(0, n, BLOCK):
        b = min(a + BLOCK, n)
        err = np.zeros((w.shape[0], b - a))
        for i in range(a, b):
            col = w[:, i]
            qi = np.clip(np.round(col / s[:, 0]), -INT4_MAX, INT4_MAX)
            q[:, i] = qi
            e = (col - qi * s[:, 0]) / u[i, i]
            w[:, i + 1:b] -= np.outer(e, u[i, i + 1:b])
            err[:, i - a] = e
        w[:, b:] -= err @ u[a:b, b:]
    out = np.empty_like(q)
    out[:, perm] = q
    return out, scales


def output_error(weight: np.ndarray, values: np.ndarray, scales: np.ndarray,
                 h: np.ndarray) -> float:
    """||(W - Q s) X||^2 = trace(E H E^T) with H = X^T X."""
    e = np.asarray(weight, np.float64) - values * np.asarray(scales, np.float64)[:, None]
    return float(np.einsum("ij,jk,ik->", e, h, e))


def gptq_layer(spec: NetSpec, layer: str, inputs: LayerInputs, **kw) -> dict[str, Int4Weights]:
    """GPTQ int4 of every FULLY_CONNECTED of a layer, keyed by Keras name."""
    out = {}
    for m in layer_matrices(spec, layer):
        q, s = gptq(m.weight, inputs.hessians[m.operand], **kw)
        out[m.name] = Int4Weights(q, s, m.bias)
    return out


def sequential_gptq(spec: NetSpec, layers, feats: list[np.ndarray],
                    first: Mapping[str, LayerInputs] | None = None) -> dict[str, Int4Weights]:
    """GPTQ int4 of several layers, upstream first: each layer's inputs are recorded with the
    layers already quantized holding their int4 weights (dequantized, in the float model), so
    its rounding also compensates what those layers changed in its inputs. first: the inputs
    of the float model (record_layer_inputs), used for the first layer."""
    order = [n for n in path_order(spec) if n in set(layers)]
    out: dict[str, Int4Weights] = {}
    current = spec
    for k, name in enumerate(order):
        inputs = first if (k == 0 and first is not None) else record_layer_inputs(current, feats)
        mine = gptq_layer(current, name, inputs[name])
        out.update(mine)
        current = with_int4(current, name, mine)
    return out


def path_order(spec: NetSpec) -> list[str]:
    """Layers in an order where every layer comes after those that feed it."""
    order: list[str] = []
    for ex in spec.exits:
        for layer in spec.exit_layers(ex):
            if layer.name not in order:
                order.append(layer.name)
    return order + [n for n in spec.layers if n not in order]


def with_int4(spec: NetSpec, layer: str, weights: Mapping[str, Int4Weights]) -> NetSpec:
    """The spec with a layer's weights replaced by its dequantized int4 weights (biases kept)."""
    L = spec.layers[layer]
    layers = dict(spec.layers)
    if isinstance(L, Dense):
        layers[layer] = Dense(L.name, weights[L.name].dequantized().T.copy(), L.bias,
                              L.activation)
    else:
        def rows(side: str) -> np.ndarray:
            return np.concatenate([weights[f"{L.name}_{side}{g}"].dequantized()
                                   for g in ("z", "r", "n")])
        layers[layer] = GRU(L.name, rows("x"), rows("h"), L.wb, L.rb)
    return replace(spec, layers=layers)


# ---------------------------------------------------------------------------------------------
# Recording the float inputs of every layer on the calibration audio


def record_layer_inputs(spec: NetSpec, feats: list[np.ndarray],
                        samples: Mapping[str, list[dict]] | None = None) -> dict[str, LayerInputs]:
    """Every layer's input Hessians, from closed-loop float runs on the calibration features.

    The backbone's float trajectory does not depend on the exit, so one recording of an exit
    that holds every backbone GRU serves all; an exit with a GRU of its own head is recorded
    too. samples: the recordings (quantize.record_closed_loop) `convert` already made, by exit
    name; exits missing from it are recorded here."""
    from nsconv.quant.quantize import record_closed_loop

    samples = samples or {}

    recordings: list[tuple[set[str], np.ndarray, dict[str, np.ndarray]]] = []
    result: dict[str, LayerInputs] = {}
    for ex in sorted(spec.exits, key=lambda e: -len(spec.exit_layers(e))):
        grus = {g.name for g in spec.grus(ex)}
        rec = next((r for r in recordings if grus <= r[0]), None)
        if rec is None:
            got = samples.get(ex.name) or record_closed_loop(spec, ex, feats)
            states = {g: np.concatenate([s[state_input_name(g)] for s in got]) for g in grus}
            rec = (grus, np.concatenate([s["features"] for s in got]), states)
            recordings.append(rec)
        for name, arrays in _forward_inputs(spec, ex, rec[1], rec[2]).items():
            if name not in result:
                result[name] = LayerInputs({k: hessian(v) for k, v in arrays.items()},
                                           len(rec[1]))
    return result


def _forward_inputs(spec: NetSpec, ex, feats: np.ndarray,
                    states: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Each layer's float inputs along the exit's path, all frames at once (batched: the GRU
    states are the recorded ones, so no frame waits for the previous)."""
    x = np.asarray(feats, np.float32)
    out = {}
    for layer in spec.exit_layers(ex):
        if isinstance(layer, Dense):
            out[layer.name] = {"x": x}
            x = _activate(x @ layer.weight + layer.bias, layer.activation)
        else:
            h = states[layer.name]
            out[layer.name] = {"x": x, "h": h}
            x = gru_step(layer, x, h)
    return out


def _activate(y: np.ndarray, activation: str) -> np.ndarray:
    if activation == "relu":
        return np.maximum(y, 0)
    if activation == "sigmoid":
        return 1 / (1 + np.exp(-y))
    return y


def gru_step(g: GRU, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """One float GRU step (linear_before_reset=1, gates z, r, n) as stepmodel._gru_step."""
    H = g.hidden
    gx = x @ g.w.T + g.wb
    gh = h @ g.r.T + g.rb
    z = _activate(gx[:, :H] + gh[:, :H], "sigmoid")
    r = _activate(gx[:, H:2 * H] + gh[:, H:2 * H], "sigmoid")
    n = np.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
    return n + z * (h - n)
