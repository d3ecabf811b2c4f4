# SPDX-License-Identifier: Apache-2.0
"""`nsconv convert`: model -> streaming step models -> per-exit int8 TFLite + manifest."""

from __future__ import annotations

from pathlib import Path

from . import assets
from .errors import NsconvError
from .manifest import ExitEntry, Manifest
from .netspec import NetSpec
from .outdir import atomic_output_dir
from .quantize import calibration_clips, calibration_features, convert_exit, record_closed_loop

MODEL_FILE = "model.npz"


def load_model(name_or_path: str | Path) -> tuple[Path, NetSpec]:
    """Built-in name or file (.onnx, .npz NetSpec) -> (resolved path, NetSpec)."""
    path = assets.resolve_model(str(name_or_path))
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from .onnx_import import import_onnx

        return path, import_onnx(path)
    if suffix == ".npz":
        return path, NetSpec.load(path)
    raise NsconvError(f"unsupported model format {suffix or '(no suffix)'!r} "
                      "(expected .onnx or an nsconv .npz)", path)


def convert(model: str | Path, out: Path, clips: list[Path] | None = None,
            log=print) -> Manifest:
    path, spec = load_model(model)
    clips = clips or calibration_clips()
    feats = calibration_features(clips)
    frames = sum(len(f) for f in feats)
    log(f"{path.name}: {len(spec.exits)} exit(s); calibrating on {len(clips)} clips, "
        f"{frames} frames, closed loop")
    entries = []
    converted = []
    for ex in spec.exits:
        samples = record_closed_loop(spec, ex, feats)
        q = convert_exit(spec, ex, samples)
        converted.append(q)
        log(f"  {ex.name}: {len(q.tflite):,} bytes int8 TFLite, "
            f"{spec.exit_macs(ex):,} MACs/frame")
    _check_shared_states(converted, path)
    with atomic_output_dir(out) as tmp:
        (tmp / "tflite").mkdir()
        for ex, q in zip(spec.exits, converted):
            rel = f"tflite/{ex.name}.tflite"
            (tmp / rel).write_bytes(q.tflite)
            entries.append(ExitEntry(ex.name, ex.after, ex.head, rel, len(q.tflite),
                                     spec.exit_macs(ex), spec.exit_params(ex), q.features,
                                     q.mask, q.states))
        spec.save(tmp / MODEL_FILE)
        manifest = Manifest(tmp, str(path), assets.sha256_file(path), MODEL_FILE,
                            tuple(entries), tuple(p.name for p in clips), frames)
        manifest.save()
    return Manifest.load(out)


def _check_shared_states(converted, path: Path) -> None:
    """A state that several exits carry must have one quantization: there is one buffer."""
    seen: dict[str, tuple] = {}
    feats = {(q.features.scale, q.features.zero_point) for q in converted}
    if len(feats) != 1:
        raise NsconvError(f"exits quantize the features differently: {sorted(feats)}", path)
    for q in converted:
        for s in q.states:
            key = (s.input.scale, s.input.zero_point)
            if seen.setdefault(s.layer, key) != key:
                raise NsconvError(f"state of {s.layer} is quantized differently by exit "
                                  f"{q.name}: {key} vs {seen[s.layer]}", path)
