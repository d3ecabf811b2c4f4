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


def float_stepper(model: Gtcrn, layout: str = "compact"):
    """The float TF one-step model of the core, stepped with its states fed back."""
    if layout == "compact":
        from nsconv.model.gtcrn_compact import CompactStepper

        return CompactStepper(model.core, FEATURES, MASK)
    from nsconv.model.opgraph_tf import TfStepper

    return TfStepper(model.core, FEATURES, MASK, layout)


def build_step(model: Gtcrn, layout: str = "compact"):
    """(tf.function, input names) of the core in the given layout."""
    if layout == "compact":
        from nsconv.model.gtcrn_compact import build_compact

        return build_compact(model.core, FEATURES, MASK)[:2]
    return build_tf_step(model.core, layout)


def record_calibration(model: Gtcrn, clips: list[np.ndarray], every: int = 1,
                       layout: str = "compact") -> list[list]:
    """Representative samples (inputs in signature order) from float closed-loop streaming."""
    from nsconv.audio import gtcrn_frontend as fe

    samples = []
    for x in clips:
        step = float_stepper(model, layout)
        for t, frame in enumerate(fe.stft(x)):
            feat = fe.features(frame)
            if t % every == 0:
                feeds = {FEATURES: feat.reshape(model.core.inputs[FEATURES]), **step.states}
                samples.append([feeds[n].astype(np.float32) for n in step.names])
            step(feat)
    return samples


def convert(model: Gtcrn, samples: list[list], mode: str = "int8",
            layout: str = "compact") -> bytes:
    """mode "int8": every tensor int8; "16x8": int16 activations, int8 weights (whole model).
    layout: how `Assemble` ops are emitted (see opgraph_tf.build_tf_step)."""
    import tensorflow as tf

    fn, _ = build_step(model, layout)
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


# ---------------------------------------------------------------------------------------------
# The deployable core: compact model, per-stage int8 / 16x8 mix, TFLM streaming reference
# ---------------------------------------------------------------------------------------------

MODES = ("int8", "16x8", "mixed")
# Stages (gtcrn_compact.stages) that "mixed" runs with int16 activations (docs/gtcrn.md): the
# input stage (raw |X|, Re X, Im X, ERB bands, SFE, the two stride-2 convs). Measured: every
# stage int8 gives a mask SNR of 6.2 dB against float on the calibration clips, int16 here alone
# 12.7 dB, every stage int16 but this one 7.0 dB; on DNS3 it keeps PESQ-wb at float's level.
MIXED_INT16: tuple[str, ...] = ("input",)


def int16_stages(mode: str) -> frozenset[str]:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (one of {', '.join(MODES)})")
    if mode == "int8":
        return frozenset()
    if mode == "16x8":
        return frozenset({"*"})
    return frozenset(MIXED_INT16)


@dataclass(frozen=True)
class CoreTensor:
    """A model input or output: place among the subgraph's inputs/outputs (how TFLM addresses
    it), subgraph tensor index, name, dtype ("int8"/"int16"), shape and quantization."""
    position: int
    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    scale: float
    zero_point: int

    @property
    def np_dtype(self):
        return np.dtype(self.dtype)

    def to_json(self) -> dict:
        return {"position": self.position, "index": self.index, "name": self.name,
                "dtype": self.dtype, "shape": list(self.shape), "scale": self.scale,
                "zero_point": self.zero_point}

    @staticmethod
    def from_json(d: dict) -> CoreTensor:
        return CoreTensor(int(d["position"]), int(d["index"]), str(d["name"]), str(d["dtype"]),
                          tuple(int(x) for x in d["shape"]), float(d["scale"]),
                          int(d["zero_point"]))


@dataclass(frozen=True)
class CoreState:
    """One state: stored in its input's quantization; after a step the output is mapped to it
    with TFLM's QUANTIZE arithmetic (`requantize`), a copy when both quantizations are equal."""
    name: str  # the op graph's state name (model/opgraph.py State.name)
    input: CoreTensor
    output: CoreTensor

    def to_json(self) -> dict:
        return {"name": self.name, "input": self.input.to_json(),
                "output": self.output.to_json()}

    @staticmethod
    def from_json(d: dict) -> CoreState:
        return CoreState(str(d["name"]), CoreTensor.from_json(d["input"]),
                         CoreTensor.from_json(d["output"]))


@dataclass(frozen=True)
class QuantizedCore:
    mode: str
    int16_stages: tuple[str, ...]
    tflite: bytes
    features: CoreTensor  # (1, 3, 1, 257): |X|, Re X, Im X of one frame
    mask: CoreTensor  # (1, 2, 1, 129): tanh-bounded complex mask in ERB bands
    states: tuple[CoreState, ...]  # sorted by name; initial value: the input zero point

    def to_json(self) -> dict:
        return {"mode": self.mode, "int16_stages": list(self.int16_stages),
                "tflite_bytes": len(self.tflite), "features": self.features.to_json(),
                "mask": self.mask.to_json(), "states": [s.to_json() for s in self.states]}

    @staticmethod
    def from_json(d: dict, tflite: bytes) -> QuantizedCore:
        return QuantizedCore(str(d["mode"]), tuple(d["int16_stages"]), tflite,
                             CoreTensor.from_json(d["features"]), CoreTensor.from_json(d["mask"]),
                             tuple(CoreState.from_json(s) for s in d["states"]))


def load_core(path) -> QuantizedCore:
    """A core written by `convert_core(..., dest=path)`: path.tflite and its .json beside it."""
    import json
    from pathlib import Path

    from nsconv.errors import NsconvError

    path = Path(path)
    try:
        blob = path.read_bytes()
        desc = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError) as exc:
        raise NsconvError(f"cannot read the GTCRN core ({exc})", path) from None
    core = QuantizedCore.from_json(desc, blob)
    if desc.get("tflite_bytes") != len(blob):
        raise NsconvError("the .json describes another .tflite (size differs)", path)
    return core


def record_values(model: Gtcrn, clips: list[np.ndarray], every: int = 1) -> list[dict]:
    """Float closed-loop streaming of the compact core over clips: per frame, the input, the
    states read and every stage output (one representative sample for every segment)."""
    from nsconv.audio import gtcrn_frontend as fe
    from nsconv.model import gtcrn_compact as gc

    m = gc.extract(model.core)
    sts = gc.stages(m, FEATURES, MASK)
    shapes = {FEATURES: model.core.inputs[FEATURES], **m.state_shapes}
    writes = sorted({w for st in sts for w in st.writes})
    fn, names = gc.build_segment(m, sts, shapes, writes)
    out: list[dict] = []
    for x in clips:
        states = {k: np.zeros(s, np.float32) for k, s in m.state_shapes.items()}
        for t, frame in enumerate(fe.stft(x)):
            feeds = {FEATURES: fe.features(frame).reshape(shapes[FEATURES]), **states}
            got = fn(*[np.asarray(feeds[n], np.float32) for n in names])
            got = {k: got[_safe(k)].numpy() for k in writes}
            if t % every == 0:
                rec = {k: v for k, v in got.items() if k not in states}
                rec.update(feeds)
                out.append(rec)
            states = {k: got[k] for k in states}
    return out


def _converter(fn, samples, int16: bool):
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if int16:
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int16
    else:
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int8
    conv.representative_dataset = lambda: iter(samples)
    with contextlib.redirect_stdout(io.StringIO()):
        return conv.convert()


def convert_stages(model: Gtcrn, records: list[dict], int16: frozenset[str]) -> bytes:
    """The compact core quantized per run of stages: runs in `int16` get int16 activations
    (16x8), the others int8; the runs are converted separately and joined (tflite_join), with
    QUANTIZE where a tensor crosses from one quantization to another. "*" = every stage."""
    from nsconv.model import gtcrn_compact as gc
    from nsconv.quant.tflite_join import join, rename_outputs

    m = gc.extract(model.core)
    sts = gc.stages(m, FEATURES, MASK)
    wide = [("*" in int16) or st.name in int16 for st in sts]
    runs: list[list] = []
    for st, w in zip(sts, wide, strict=True):
        if runs and runs[-1][0] == w:
            runs[-1][1].append(st)
        else:
            runs.append([w, [st]])
    final = sorted([MASK] + list(m.state_shapes), key=_safe)
    shapes = {k: v.shape for k, v in records[0].items()}
    blobs = []
    for k, (w, run) in enumerate(runs):
        later = {r for _, rest in runs[k + 1:] for r in gc.stage_reads(rest)}
        made = [x for st in run for x in st.writes]
        outs = [x for x in dict.fromkeys(made) if x in later or x in final]
        fn, names = gc.build_segment(m, run, shapes, outs)
        samples = [[np.asarray(r[n], np.float32) for n in names] for r in records]
        blob = _converter(fn, samples, w)
        blobs.append(rename_outputs(blob, [_safe(x) for x in outs]))
    inputs = [_safe(n) for n in gc.input_names(model.core)]
    return join(blobs, inputs, [_safe(x) for x in final])


def describe(tflite: bytes, model: Gtcrn, mode: str = "", int16=()) -> QuantizedCore:
    """The I/O of a core converted by `convert_stages`: features, mask, states."""
    from tensorflow.lite.python import schema_py_generated as schema


    sg = schema.ModelT.InitFromPackedBuf(tflite, 0).subgraphs[0]
    types = {schema.TensorType.INT8: "int8", schema.TensorType.INT16: "int16"}

    def refs(ids):
        out = {}
        for pos, i in enumerate(ids):
            t = sg.tensors[int(i)]
            q = t.quantization
            out[t.name.decode()] = CoreTensor(pos, int(i), t.name.decode(), types[t.type],
                                              tuple(int(d) for d in t.shape), float(q.scale[0]),
                                              int(q.zeroPoint[0]))
        return out

    ins, outs = refs(sg.inputs), refs(sg.outputs)
    states = tuple(CoreState(s.name, ins[_safe(s.name)], outs[_safe(s.name)])
                   for s in sorted(model.core.states, key=lambda s: s.name))
    return QuantizedCore(mode, tuple(sorted(int16)), tflite, ins[_safe(FEATURES)],
                         outs[_safe(MASK)], states)


def calibration_records(model: Gtcrn, exclude: tuple[str, ...] = (),
                        cache=None) -> tuple[list, list[str]]:
    """Closed-loop float records over the package's calibration clips (minus names starting
    with any of `exclude`, e.g. evaluation clips); `cache` (.npz) keeps them between runs."""
    from pathlib import Path

    from nsconv.audio.wav import read_wav
    from nsconv.quant.quantize import calibration_clips

    clips = [p for p in calibration_clips() if not any(p.name.startswith(e) for e in exclude)]
    names = [p.name for p in clips]
    if cache is not None and Path(cache).is_file():
        with np.load(cache) as flat:  # each flat[k] reads the whole array: once per key
            arrays = {k: flat[k] for k in flat.files}
        if list(arrays.pop("_clips")) == names:
            n = len(arrays[FEATURES])
            return [{k: a[i] for k, a in arrays.items()} for i in range(n)], names
    records = record_values(model, [read_wav(p) for p in clips])
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, _clips=np.array(names),
                 **{k: np.stack([r[k] for r in records]) for k in records[0]})
    return records, names


def convert_core(onnx_path, dest=None, mode: str = "mixed", records: list | None = None,
                 model: Gtcrn | None = None) -> QuantizedCore:
    """GTCRN's ONNX streaming model -> its quantized compact core (TFLite) and the description
    of its features input, mask output and states. Writes the .tflite and a .json description
    beside it when `dest` is given. Calibration: the package's clips, float closed loop."""
    from pathlib import Path

    from nsconv.model.gtcrn import load_gtcrn

    model = model or load_gtcrn(onnx_path)
    int16 = int16_stages(mode)
    if records is None:
        records, _ = calibration_records(model)
    core = describe(convert_stages(model, records, int16), model, mode,
                    [st for st in int16 if st != "*"] or (["*"] if int16 else []))
    if dest is not None:
        import json

        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".tflite.tmp")
        tmp.write_bytes(core.tflite)
        tmp.replace(dest)
        dest.with_suffix(".json").write_text(json.dumps(core.to_json(), indent=1) + "\n")
    return core


def requantize(src: CoreTensor, dst: CoreTensor, q: np.ndarray) -> np.ndarray:
    """TFLM's QUANTIZE from src's to dst's quantization (int8/int16 -> int8/int16):
    reference_ops::Requantize with QuantizeMultiplier(double(in_s) / double(out_s)); a copy when
    the quantizations are equal."""
    from nsconv.quant import params as qparams
    from nsconv.quant.fixedpoint import as_int64, clamp, multiply_by_quantized_multiplier, wrap_int32

    out_t = dst.np_dtype
    if (src.dtype, src.scale, src.zero_point) == (dst.dtype, dst.scale, dst.zero_point):
        return np.asarray(q, out_t).copy()
    rq = qparams.requantize_params(src.scale, src.zero_point, dst.scale, dst.zero_point)
    out = multiply_by_quantized_multiplier(as_int64(q) + rq.input_offset, rq.multiplier, rq.shift)
    info = np.iinfo(out_t)
    return clamp(wrap_int32(out + rq.output_offset), int(info.min), int(info.max)).astype(out_t)


class TflmCore:
    """The TFLM streaming reference of a quantized core: integer features in, integer mask and
    states out; states stored in their input quantization (requantized after every step).

    `step(feat_q)` -> (mask_q, {state name: stored state}) is what a C build is compared with;
    calling the object with float features returns the float mask (2, 129) for streaming."""

    def __init__(self, core: QuantizedCore) -> None:
        from tflite_micro.python.tflite_micro import runtime

        self.core = core
        self.interp = runtime.Interpreter.from_bytes(core.tflite, arena_size=ARENA_BYTES)
        self.reset()

    def reset(self) -> None:
        self.states = {s.name: np.full(s.input.shape, s.input.zero_point, s.input.np_dtype)
                       for s in self.core.states}

    def quantize_features(self, feat: np.ndarray) -> np.ndarray:
        q = self.core.features
        info = np.iinfo(q.np_dtype)
        x = np.round(np.asarray(feat, np.float32).reshape(q.shape) / np.float32(q.scale))
        return np.clip(x + q.zero_point, info.min, info.max).astype(q.np_dtype)

    def step(self, feat_q: np.ndarray):
        c = self.core
        self.interp.set_input(np.asarray(feat_q, c.features.np_dtype).reshape(c.features.shape),
                              c.features.position)
        for s in c.states:
            self.interp.set_input(self.states[s.name], s.input.position)
        self.interp.invoke()
        for s in c.states:
            out = np.asarray(self.interp.get_output(s.output.position)).reshape(s.input.shape)
            self.states[s.name] = requantize(s.output, s.input, out)
        mask = np.asarray(self.interp.get_output(c.mask.position)).copy()
        return mask, dict(self.states)

    def __call__(self, feat: np.ndarray) -> np.ndarray:
        mq, _ = self.step(self.quantize_features(feat))
        m = self.core.mask
        return ((mq.astype(np.float32) - m.zero_point) * np.float32(m.scale)).reshape(2, -1)


def tflm_stream(core: QuantizedCore, feats_q: np.ndarray):
    """The TFLM reference over frames of quantized features (frames, 1, 3, 1, 257): per frame the
    mask and the stored states after the step (what `verify` compares a C build with)."""
    ref = TflmCore(core)
    for f in feats_q:
        yield ref.step(f)


def tflite_macs(tflite: bytes) -> int:
    """Multiply-accumulates of one invoke: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(tflite, 0)
    sg = model.subgraphs[0]
    B = schema.BuiltinOperator
    total = 0
    for op in sg.operators:
        code = model.operatorCodes[op.opcodeIndex]
        kind = max(code.builtinCode, code.deprecatedBuiltinCode)
        out = int(np.prod(_shape(sg.tensors[op.outputs[0]])))
        w = _shape(sg.tensors[op.inputs[1]]) if len(op.inputs) > 1 else []
        if kind == B.CONV_2D:
            total += out * int(np.prod(w[1:]))
        elif kind == B.DEPTHWISE_CONV_2D:
            total += out * w[1] * w[2]
        elif kind == B.FULLY_CONNECTED:
            total += out * w[1]
    return total


def op_counts(tflite: bytes) -> dict[str, int]:
    from ai_edge_litert.interpreter import Interpreter

    counts: dict[str, int] = {}
    for op in Interpreter(model_content=tflite)._get_ops_details():
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


# ---------------------------------------------------------------------------------------------
# Op inventory (what a microcontroller compiler and its kernels must implement)
# ---------------------------------------------------------------------------------------------

_OPTION_FIELDS = ("padding", "strideH", "strideW", "dilationHFactor", "dilationWFactor",
                  "depthMultiplier", "fusedActivationFunction", "keepNumDims", "axis",
                  "numSplits", "keepDims", "alpha", "beginMask", "endMask", "shrinkAxisMask",
                  "newAxisMask", "ellipsisMask", "offset")


def _shape(t) -> list[int]:
    return [] if t.shape is None else [int(d) for d in t.shape]


def op_inventory(tflite: bytes) -> list[dict]:
    """One row per distinct (op kind, dtypes, shapes, options, constant operands), with its count.

    Constant operands that configure the op (PAD paddings, STRIDED_SLICE begin/end/strides, MEAN
    axes, SPLIT axis, TRANSPOSE perm, RESHAPE shape) are listed by value; weights by shape and
    dtype."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(tflite, 0)
    sg = model.subgraphs[0]
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    tnames = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    acts = {v: k for k, v in vars(schema.ActivationFunctionType).items() if not k.startswith("_")}
    pads = {v: k for k, v in vars(schema.Padding).items() if not k.startswith("_")}
    config_ops = {"PAD", "STRIDED_SLICE", "MEAN", "SPLIT", "TRANSPOSE", "RESHAPE", "SPLIT_V"}
    rows: dict[str, dict] = {}
    for op in sg.operators:
        code = model.operatorCodes[op.opcodeIndex]
        kind = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")
        ins, consts = [], []
        for i in op.inputs:
            if i < 0:
                ins.append("-")
                continue
            t = sg.tensors[i]
            buf = model.buffers[t.buffer].data if t.buffer else None
            desc = f"{tnames[t.type].lower()}{_shape(t)}"
            if buf is not None and len(buf):
                if kind in config_ops and t.type == schema.TensorType.INT32:
                    val = np.frombuffer(np.asarray(buf, np.uint8).tobytes(), np.int32)
                    desc = f"const {val.tolist()}"
                else:
                    q = t.quantization
                    per_ch = q is not None and q.scale is not None and len(q.scale) > 1
                    desc = f"const {desc}" + (" per-channel" if per_ch else "")
                consts.append(desc)
            ins.append(desc)
        outs = [f"{tnames[sg.tensors[o].type].lower()}{_shape(sg.tensors[o])}"
                for o in op.outputs]
        opts = {}
        if op.builtinOptions is not None:
            for f in _OPTION_FIELDS:
                if hasattr(op.builtinOptions, f):
                    v = getattr(op.builtinOptions, f)
                    if f == "fusedActivationFunction":
                        v = acts.get(v, v)
                    elif f == "padding":
                        v = pads.get(v, v)
                    elif isinstance(v, float):
                        v = round(v, 6)
                    if f.endswith("Mask") and not v:
                        continue
                    opts[f] = v
        key = f"{kind}|{ins}|{outs}|{opts}"
        row = rows.setdefault(key, {"op": kind, "inputs": ins, "outputs": outs,
                                    "options": opts, "count": 0})
        row["count"] += 1
    return sorted(rows.values(), key=lambda r: (r["op"], -r["count"]))


def inventory_markdown(rows: list[dict]) -> str:
    lines = ["| op | count | inputs | outputs | options |", "|---|---|---|---|---|"]
    for r in rows:
        opts = ", ".join(f"{k}={v}" for k, v in r["options"].items())
        lines.append(f"| {r['op']} | {r['count']} | {'; '.join(r['inputs'])} | "
                     f"{'; '.join(r['outputs'])} | {opts} |")
    return "\n".join(lines)
