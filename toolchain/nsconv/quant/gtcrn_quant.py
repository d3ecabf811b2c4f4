# SPDX-License-Identifier: Apache-2.0
"""Quantization study of GTCRN's one-step core: full-integer int8 TFLite, streamed in TFLM.

The core (features (|X|, Re X, Im X) + 16 states -> ERB mask + new states) is converted by the
real TFLite converter from the TF one-step model (model/opgraph_tf.py), calibrated closed loop:
every frame's float features and fed-back float states are one representative sample. TFLM runs
it frame by frame; each state output is requantized into its input's quantization (TFLM QUANTIZE
arithmetic, as for nsNet2's GRU states) and fed back. The front end stays float (numpy).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np

from nsconv.model.gtcrn import FEATURES, MASK, Gtcrn
from nsconv.model.opgraph_tf import _safe, build_tf_step

ARENA_BYTES = 8 << 20  # the unrolled GRUs make thousands of nodes


def record_calibration(model: Gtcrn, clips: list[np.ndarray], every: int = 1) -> list[list]:
    """Representative samples (inputs in signature order) from float closed-loop streaming."""
    from nsconv.audio import gtcrn_frontend as fe
    from nsconv.model.opgraph_tf import TfStepper

    samples = []
    for x in clips:
        step = TfStepper(model.core, FEATURES, MASK)
        for t, frame in enumerate(fe.stft(x)):
            feat = fe.features(frame)
            if t % every == 0:
                feeds = {FEATURES: feat.reshape(model.core.inputs[FEATURES]), **step.states}
                samples.append([feeds[n].astype(np.float32) for n in step.names])
            step(feat)
    return samples


def convert(model: Gtcrn, samples: list[list], mode: str = "int8",
            layout: str = "gather") -> bytes:
    """mode "int8": every tensor int8; "16x8": int16 activations, int8 weights (whole model).
    layout: how `Assemble` ops are emitted (see opgraph_tf.build_tf_step)."""
    import tensorflow as tf

    fn, _ = build_tf_step(model.core, layout)
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "16x8":
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int16
    else:
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int8
    conv.representative_dataset = lambda: iter(samples)
    with contextlib.redirect_stdout(io.StringIO()):
        return conv.convert()


@dataclass(frozen=True)
class _Q:
    position: int
    scale: float
    zero_point: int
    shape: tuple[int, ...]
    dtype: type = np.int8


def _io(tflite: bytes, model: Gtcrn):
    """Signature name -> (position, scale, zero point, shape) of inputs and outputs.

    Inputs carry their TensorSpec names; outputs are `Identity`, `Identity_1`, ... in the order of
    the sorted output keys (how TF flattens the returned dict)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=tflite)
    keys = sorted([_safe(k) for k in model.core.outputs]
                  + [_safe(s.name) for s in model.core.states])

    def q(d, pos):
        scale, zp = d["quantization"]
        return _Q(pos, float(scale), int(zp), tuple(int(s) for s in d["shape"]), d["dtype"])

    ins = {d["name"]: q(d, i) for i, d in enumerate(interp.get_input_details())}
    outs = {}
    for i, d in enumerate(interp.get_output_details()):
        k = 0 if d["name"] == "Identity" else int(d["name"].rsplit("_", 1)[1])
        outs[keys[k]] = q(d, i)
    return ins, outs


def op_counts(tflite: bytes) -> dict[str, int]:
    from ai_edge_litert.interpreter import Interpreter

    counts: dict[str, int] = {}
    for op in Interpreter(model_content=tflite)._get_ops_details():
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


class TflmCore:
    """The int8 core stepped in the TFLM interpreter, int8 states carried and requantized."""

    def __init__(self, model: Gtcrn, tflite: bytes) -> None:
        from tflite_micro.python.tflite_micro import runtime

        self.model = model
        self.ins, self.outs = _io(tflite, model)
        self.interp = runtime.Interpreter.from_bytes(tflite, arena_size=ARENA_BYTES)
        self.states = {}
        for s in model.core.states:
            q = self.ins[_safe(s.name)]
            self.states[s.name] = np.full(q.shape, q.zero_point, q.dtype)

    def __call__(self, feat: np.ndarray) -> np.ndarray:
        from nsconv.quant import params as qparams
        from nsconv.quant import refops

        qi = self.ins[_safe(FEATURES)]
        info = np.iinfo(qi.dtype)
        xq = np.clip(np.round(feat.reshape(qi.shape) / qi.scale) + qi.zero_point, info.min,
                     info.max)
        self.interp.set_input(xq.astype(qi.dtype), qi.position)
        for s in self.model.core.states:
            self.interp.set_input(self.states[s.name], self.ins[_safe(s.name)].position)
        self.interp.invoke()
        for s in self.model.core.states:
            src, dst = self.outs[_safe(s.name)], self.ins[_safe(s.name)]
            q = np.asarray(self.interp.get_output(src.position)).reshape(dst.shape)
            if (src.scale, src.zero_point) != (dst.scale, dst.zero_point) and q.dtype == np.int8:
                rq = qparams.requantize_params(src.scale, src.zero_point, dst.scale,
                                               dst.zero_point)
                q = refops.requantize_s8(rq, q)
            elif (src.scale, src.zero_point) != (dst.scale, dst.zero_point):  # int16: float
                q = np.round((q.astype(np.float64) - src.zero_point) * src.scale / dst.scale
                             + dst.zero_point).clip(-32768, 32767)
            self.states[s.name] = q.astype(dst.dtype).copy()
        mo = self.outs[_safe(MASK)]
        mq = np.asarray(self.interp.get_output(mo.position)).astype(np.float32)
        return ((mq - mo.zero_point) * mo.scale).reshape(2, -1)


class LiteRtCore(TflmCore):
    """The same stepping in the TFLite (LiteRT) interpreter, reference kernels, no delegate: for
    measuring a quantization whose kernels TFLM lacks (e.g. int16 GATHER). Not the reference."""

    def __init__(self, model: Gtcrn, tflite: bytes) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.model = model
        self.ins, self.outs = _io(tflite, model)
        self._it = Interpreter(
            model_content=tflite,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        self._it.allocate_tensors()
        self._in_idx = [d["index"] for d in self._it.get_input_details()]
        self._out_idx = [d["index"] for d in self._it.get_output_details()]
        self.interp = self
        self.states = {}
        for s in model.core.states:
            q = self.ins[_safe(s.name)]
            self.states[s.name] = np.full(q.shape, q.zero_point, q.dtype)

    # the three interpreter calls TflmCore.__call__ makes
    def set_input(self, value: np.ndarray, position: int) -> None:
        self._it.set_tensor(self._in_idx[position], value)

    def invoke(self) -> None:
        self._it.invoke()

    def get_output(self, position: int) -> np.ndarray:
        return self._it.get_tensor(self._out_idx[position])
