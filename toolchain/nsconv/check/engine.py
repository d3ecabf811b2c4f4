# SPDX-License-Identifier: Apache-2.0
"""Denoising a recording with one exit: float step model, or int8 models in TFLM."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from nsconv.audio import frontend
from nsconv.audio.spec import FrontendSpec
from nsconv.errors import NsconvError
from nsconv.model import assets
from nsconv.quant.manifest import Manifest

ENGINES = ("float", "tflm")


def converted_dir(model: str | Path, fe: FrontendSpec | None = None) -> Path:
    """An nsconv output directory for MODEL: MODEL itself, or a cached conversion of it (with
    the front end `fe` instead of the model's own when given)."""
    p = Path(model)
    if p.is_dir():
        m = Manifest.load(p)  # clear error when it is not an output directory
        if fe is not None and fe != m.frontend:
            raise NsconvError(f"converted with the front end {m.frontend.describe()}; "
                              "convert again to use another", p)
        return p
    path = assets.resolve_model(str(model))
    h = hashlib.sha256(path.read_bytes())
    if fe is not None:
        h.update(json.dumps(fe.to_json(), sort_keys=True).encode())
    out = assets.cache_dir() / "converted" / h.hexdigest()[:16]
    if not (out / "manifest.json").exists():
        from nsconv.quant.convert import convert

        convert(path, out, frontend=fe)
    return out


class Enhancer:
    """Masks for whole utterances, one exit, one engine; the step loop is streaming."""

    def __init__(self, model: str | Path, exit_name: str | None = None,
                 engine: str = "tflm", fe: FrontendSpec | None = None) -> None:
        if engine not in ENGINES:
            raise NsconvError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
        self.engine = engine
        if engine == "float":
            from nsconv.model.stepmodel import FloatStepper

            spec = _float_spec(model, fe)
            if spec is not None:  # no conversion needed to run the float step model
                spec.frontend.check_features(spec.input_size, model)
                ex = spec.exit(exit_name) if exit_name else spec.default_exit()
                self._stepper = FloatStepper(spec, ex)
                self.exit_name = ex.name
                self.frontend = spec.frontend
            else:  # onnx2tf route: its SavedModel lives in the converted output
                m = Manifest.load(converted_dir(model, fe))
                self._stepper = _SavedModelStepper(m.root / m.model_file,
                                                   m.exit(exit_name) if exit_name else m.default)
                self.exit_name = exit_name or m.default.name
                self.frontend = m.frontend
        else:
            from nsconv.check.tflm_ref import TflmReference

            self._ref = TflmReference(converted_dir(model, fe))
            entry = (self._ref.manifest.exit(exit_name) if exit_name
                     else self._ref.manifest.default)
            self.exit_name = entry.name
            self._entry = entry
            self.frontend = self._ref.manifest.frontend

    def masks(self, feats: np.ndarray) -> np.ndarray:
        """Float masks (frames, bins) for float features, streaming from zero states."""
        if self.engine == "float":
            return self._stepper.run(feats)
        e = self._entry
        self._ref.reset()
        fq = frontend.quantize(feats, e.features.scale, e.features.zero_point)
        out = np.empty(feats.shape, np.float32)
        for t in range(len(fq)):
            mq = self._ref.step(fq[t], e.name)
            out[t] = frontend.dequantize(mq, e.mask.scale, e.mask.zero_point)
        return out

    def enhance(self, x: np.ndarray) -> np.ndarray:
        """Enhanced signal (at the model's rate, self.frontend), trimmed to the input length."""
        return frontend.enhance_offline(x, self.masks, self.frontend)[: len(x)]


def _float_spec(model: str | Path, fe: FrontendSpec | None = None):
    """The NetSpec of MODEL (output directory, built-in name, .onnx or .npz) with its front
    end (`fe` when given), or None for a model that only exists as the SavedModel of
    the onnx2tf route."""
    from nsconv.model.netspec import NetSpec
    from nsconv.model.onnx_import import OutsideFamily
    from nsconv.quant.convert import load_model, model_frontend

    p = Path(model)
    if p.is_dir():
        m = Manifest.load(p)
        if not m.model_file.endswith(".npz"):
            return None
        return replace(NetSpec.load(m.root / m.model_file), frontend=fe or m.frontend)
    try:
        path, spec = load_model(model)
    except OutsideFamily:
        return None
    return replace(spec, frontend=fe or model_frontend(path, spec))


class _SavedModelStepper:
    """Float engine of a stateless model from the onnx2tf route: its SavedModel, per frame."""

    def __init__(self, saved_model: Path, entry) -> None:
        import tensorflow as tf

        self._fn = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
        self._in = entry.features.name.removeprefix("serving_default_").split(":")[0]

    def run(self, feats: np.ndarray) -> np.ndarray:
        (arg,) = self._fn.structured_input_signature[1].values()
        shape = [1 if d is None else d for d in arg.shape]
        out = np.empty(feats.shape, np.float32)
        for t, f in enumerate(feats):
            res = self._fn(**{self._in: f.reshape(shape).astype(np.float32)})
            out[t] = np.asarray(next(iter(res.values()))).reshape(-1)
        return out
