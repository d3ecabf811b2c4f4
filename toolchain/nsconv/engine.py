# SPDX-License-Identifier: Apache-2.0
"""Denoising a recording with one exit: float step model, or int8 models in TFLM."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from . import assets, frontend
from .errors import NsconvError
from .manifest import Manifest

ENGINES = ("float", "tflm")


def converted_dir(model: str | Path) -> Path:
    """An nsconv output directory for MODEL: MODEL itself, or a cached conversion of it."""
    p = Path(model)
    if p.is_dir():
        Manifest.load(p)  # clear error when it is not an output directory
        return p
    path = assets.resolve_model(str(model))
    key = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    out = assets.cache_dir() / "converted" / key
    if not (out / "manifest.json").exists():
        from .convert import convert

        convert(path, out)
    return out


class Enhancer:
    """Masks for whole utterances, one exit, one engine; the step loop is streaming."""

    def __init__(self, model: str | Path, exit_name: str | None = None,
                 engine: str = "tflm") -> None:
        if engine not in ENGINES:
            raise NsconvError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
        self.engine = engine
        if engine == "float":
            from .convert import MODEL_FILE, load_model
            from .netspec import NetSpec

            p = Path(model)
            spec = (NetSpec.load(p / MODEL_FILE) if p.is_dir() and (p / "manifest.json").exists()
                    else load_model(model)[1])
            ex = spec.exit(exit_name) if exit_name else spec.exits[-1]
            from .stepmodel import FloatStepper

            self.exit_name = ex.name
            self._stepper = FloatStepper(spec, ex)
        else:
            from .tflm_ref import TflmReference

            self._ref = TflmReference(converted_dir(model))
            entry = (self._ref.manifest.exit(exit_name) if exit_name
                     else self._ref.manifest.exits[-1])
            self.exit_name = entry.name
            self._entry = entry

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
        """Enhanced signal, trimmed to the input length."""
        return frontend.enhance_offline(x, self.masks)[: len(x)]
