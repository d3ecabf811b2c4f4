# SPDX-License-Identifier: Apache-2.0
"""Per-exit int8 TFLite with closed-loop calibration on real audio.

Calibration: each exit's float step model runs frame by frame over the calibration clips with
its float states fed back; every step's (features, states) is one representative sample, so
state ranges are those met in streaming use. The backbone's float trajectory does not depend on
the exit, so the tensors that exits share get the same ranges, hence the same quantization,
which the code generator relies on to emit them once.

State quantization policy ("requantize"): the converter picks the quantization of a state input
and of the state output that feeds it next frame independently, so they may differ. The step
loop (TFLM reference and generated C alike) stores each state in its *input* quantization and,
after a step, maps the state output to it with TFLM's int8->int8 QUANTIZE arithmetic; when both
quantizations are equal that is a copy. The initial state is the input zero point (the real 0).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nsconv.audio import frontend
from nsconv.audio.spec import DEFAULT as DEFAULT_FRONTEND
from nsconv.audio.spec import FrontendSpec
from nsconv.audio.wav import read_wav_resampled
from nsconv.model.netspec import ExitSpec, NetSpec
from nsconv.model.stepmodel import FloatStepper, build_step_model, state_input_name, state_output_name
from nsconv.quant.manifest import StateRef, TensorRef
from nsconv.resources import CALIB_DIR


@dataclass(frozen=True)
class QuantizedExit:
    name: str
    tflite: bytes
    features: TensorRef
    mask: TensorRef
    states: tuple[StateRef, ...]


def calibration_clips() -> list[Path]:
    return sorted(CALIB_DIR.glob("*.wav"))


def calibration_features(clips: list[Path], spec: FrontendSpec = DEFAULT_FRONTEND) -> list[np.ndarray]:
    """Features of the calibration clips in the model's front end. Clips at another rate (the
    bundled ones are 16 kHz) are resampled to it first (audio.wav.read_wav_resampled)."""
    return [frontend.features(frontend.stft(read_wav_resampled(p, spec.rate), spec), spec)
            for p in clips]


def record_closed_loop(spec: NetSpec, ex: ExitSpec, feats: list[np.ndarray]) -> list[dict]:
    """One representative sample per frame: float features and the fed-back float states."""
    stepper = FloatStepper(spec, ex)
    samples: list[dict] = []
    for utt in feats:
        record: list = []
        stepper.run(utt, record)
        for feat, states in record:
            sample = {"features": feat[None, :].astype(np.float32)}
            sample.update({state_input_name(g): s[None, :].astype(np.float32)
                           for g, s in states.items()})
            samples.append(sample)
    return samples


def _int8_converter(converter, samples: list[dict]) -> bytes:
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    converter.representative_dataset = lambda: iter(samples)
    with contextlib.redirect_stdout(io.StringIO()):  # Keras' "Saved artifact at ..." chatter
        return converter.convert()


def convert_exit(spec: NetSpec, ex: ExitSpec, samples: list[dict]) -> QuantizedExit:
    import tensorflow as tf

    tflite = _int8_converter(tf.lite.TFLiteConverter.from_keras_model(build_step_model(spec, ex)),
                             samples)
    grus = spec.grus(ex)
    return describe(ex.name, tflite, "features", "mask",
                    [(g.name, g.hidden, state_input_name(g.name), state_output_name(g.name))
                     for g in grus])


def convert_framewise(fw, feats: list[np.ndarray]) -> QuantizedExit:
    """A stateless SavedModel from the onnx2tf route: one exit, `final`."""
    import tensorflow as tf

    samples = [{fw.input_name: fw.reshape(f)} for utt in feats for f in utt]
    tflite = _int8_converter(tf.lite.TFLiteConverter.from_saved_model(str(fw.saved_model)),
                             samples)
    return describe("final", tflite, fw.input_name, fw.output_name, [])


def describe(name: str, tflite: bytes, features_key: str, mask_key: str,
             states: list[tuple[str, int, str, str]]) -> QuantizedExit:
    """Find the features/mask/state tensors of a converted step model by signature name.

    states: (layer, size, input signature key, output signature key) per GRU.
    """
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=tflite)
    runner = interp.get_signature_runner("serving_default")
    in_details = runner.get_input_details()
    out_details = runner.get_output_details()
    positions = {d["index"]: i for i, d in enumerate(interp.get_input_details())}
    positions.update({d["index"]: i for i, d in enumerate(interp.get_output_details())})

    def ref(details: dict) -> TensorRef:
        scale, zp = details["quantization"]
        if details["dtype"] != np.int8 or scale == 0:
            raise ValueError(f"{details['name']} is not an int8 quantized tensor")
        return TensorRef(int(details["index"]), positions[details["index"]], details["name"],
                         float(scale), int(zp))

    refs = tuple(StateRef(layer, size, ref(in_details[i]), ref(out_details[o]))
                 for layer, size, i, o in states)
    return QuantizedExit(name, tflite, ref(in_details[features_key]),
                         ref(out_details[mask_key]), refs)


def tflite_macs(tflite: bytes) -> tuple[int, int]:
    """(MACs, weight parameters) of a TFLite model's FULLY_CONNECTED ops."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=tflite)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    macs = params = 0
    for op in interp._get_ops_details():
        if op["op_name"] == "FULLY_CONNECTED":
            out_f, in_f = tensors[op["inputs"][1]]["shape"]
            macs += int(out_f * in_f)
            params += int(out_f * in_f) + (int(out_f) if len(op["inputs"]) > 2
                                            and op["inputs"][2] >= 0 else 0)
    return macs, params
