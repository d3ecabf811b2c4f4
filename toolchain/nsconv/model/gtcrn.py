# SPDX-License-Identifier: Apache-2.0
"""GTCRN (Rong et al., ICASSP 2024) as nsconv runs it: the imported op graph split in three.

The streaming ONNX model takes one STFT frame (`mix`) and its caches and returns the enhanced frame.
nsconv cuts it at the two named tensors the authors' export keeps:
- head: `mix` -> `feat` (|X|, Re X, Im X): the magnitude (Pow, Sqrt) runs in the front end;
- core: `feat` + states -> `m_feat` (the tanh-bounded complex mask in 129 ERB bands): the network
  that gets quantized, all of its caches as explicit states;
- tail: `m_feat`, `mix` -> `enh`: ERB synthesis band matrix and complex product, in the front end.
`load_gtcrn` checks that the front end (audio/gtcrn_frontend.py) computes what head and tail
compute in the graph, on random frames, and refuses the model otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nsconv.errors import NsconvError
from nsconv.model.opgraph import Binary, MatMul, OpGraph, Unary, import_opgraph, run_numpy

FEATURES = "feat"
MASK = "m_feat"
MIX = "mix"
ENH = "enh"


@dataclass(frozen=True, eq=False)
class Gtcrn:
    path: str
    core: OpGraph
    synthesis: np.ndarray  # (bands, bins - low): ERB synthesis band matrix of the tail
    mag_eps: float  # |X| = sqrt(Re^2 + Im^2 + mag_eps) in the head

    def initial_states(self) -> dict[str, np.ndarray]:
        return {s.name: np.zeros(s.shape, np.float32) for s in self.core.states}


def load_gtcrn(path: str | Path, check_seed: int = 0) -> Gtcrn:
    path = Path(path)
    core = import_opgraph(path, cut_inputs=(FEATURES,), outputs=(MASK,))
    if set(core.inputs) != {FEATURES}:
        raise NsconvError(f"the core graph reads {sorted(core.inputs)}, expected only "
                          f"{FEATURES!r}", path)
    tail = import_opgraph(path, cut_inputs=(MASK, MIX), outputs=(ENH,))
    mats = [op for op in tail.ops if isinstance(op, MatMul)]
    if len(mats) != 1 or tail.states:
        raise NsconvError("the mask tail is not one ERB synthesis matrix and a complex product",
                          path)
    head = import_opgraph(path, outputs=(FEATURES,))
    model = Gtcrn(str(path), core, mats[0].weight, _magnitude_epsilon(head, path))
    _check_front_end(model, head, tail, check_seed)
    return model


def _magnitude_epsilon(head: OpGraph, path: Path) -> float:
    """The constant c of the head's sqrt(... + c) (the magnitude of `mix`)."""
    producers = {op.out: op for op in head.ops}
    sqrts = [op for op in head.ops if isinstance(op, Unary) and op.kind == "Sqrt"]
    add = producers.get(sqrts[0].x) if len(sqrts) == 1 else None
    consts = [v for v in (getattr(add, "a", None), getattr(add, "b", None))
              if isinstance(v, np.ndarray) and v.size == 1]
    if not (isinstance(add, Binary) and add.kind == "Add" and len(consts) == 1):
        raise NsconvError("the features head is not one sqrt(Re^2 + Im^2 + eps)", path)
    return float(consts[0].reshape(()))


def _check_front_end(model: Gtcrn, head: OpGraph, tail: OpGraph, seed: int) -> None:
    from nsconv.audio import gtcrn_frontend as fe

    rng = np.random.default_rng(seed)
    frame = (rng.standard_normal(fe.BINS) + 1j * rng.standard_normal(fe.BINS)).astype(np.complex64)
    mix = np.stack([frame.real, frame.imag], -1).reshape(1, fe.BINS, 1, 2).astype(np.float32)
    feat = run_numpy(head, {MIX: mix})[FEATURES]
    mask_erb = rng.uniform(-1, 1, tail.inputs[MASK]).astype(np.float32)
    enh = run_numpy(tail, {MIX: mix, MASK: mask_erb})[ENH]
    ours_feat = fe.features(frame, model.mag_eps)
    ours = fe.apply_mask(frame, fe.expand_mask(mask_erb.reshape(2, -1), model.synthesis))
    ours_enh = np.stack([ours.real, ours.imag], -1).reshape(enh.shape)
    err_f = np.abs(feat.reshape(ours_feat.shape) - ours_feat).max()
    err_e = np.abs(enh - ours_enh).max()
    if err_f > 1e-5 or err_e > 1e-4:
        raise NsconvError(f"the graph's features/mask application differ from the GTCRN front "
                          f"end (max {err_f:.2g} / {err_e:.2g})", model.path)


class NumpyStepper:
    """The core graph stepped in numpy (the executable specification), states carried."""

    def __init__(self, model: Gtcrn) -> None:
        self.model = model
        self.states = model.initial_states()

    def __call__(self, feat: np.ndarray) -> np.ndarray:
        out = run_numpy(self.model.core, {FEATURES: feat.reshape(1, 3, 1, -1), **self.states})
        self.states = {s.name: out[s.name] for s in self.model.core.states}
        return out[MASK].reshape(2, -1)


def onnxruntime_stream(path: str | Path, spec: np.ndarray, record: list | None = None):
    """The original ONNX model stepped by onnxruntime over STFT frames (frames, 257): enhanced
    frames; optionally records (mix, caches in, outputs) per frame."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    caches = {i.name: np.zeros(i.shape, np.float32) for i in sess.get_inputs() if i.name != MIX}
    out = np.empty_like(spec)
    for t, frame in enumerate(spec):
        mix = np.stack([frame.real, frame.imag], -1).reshape(1, -1, 1, 2).astype(np.float32)
        res = dict(zip(names, sess.run(names, {MIX: mix, **caches}), strict=True))
        if record is not None:
            record.append((mix, caches, res))
        caches = {c: res[f"{c}_out"] for c in caches}
        out[t] = res[ENH][0, :, 0, 0] + 1j * res[ENH][0, :, 0, 1]
    return out
