# SPDX-License-Identifier: Apache-2.0
"""`nsconv convert`: model -> streaming step models -> per-exit int8 TFLite + manifest."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from nsconv.audio.spec import DEFAULT as DEFAULT_FRONTEND
from nsconv.audio.spec import FrontendSpec
from nsconv.errors import NsconvError, bad_model
from nsconv.log import info, progress
from nsconv.model import assets
from nsconv.model.netspec import NetSpec
from nsconv.outdir import atomic_output_dir
from nsconv.quant.manifest import ExitEntry, Manifest
from nsconv.quant.quantize import (
    calibration_clips,
    calibration_features,
    convert_exit,
    convert_framewise,
    record_closed_loop,
    tflite_macs,
)

MODEL_FILE = "model.npz"


def load_model(name_or_path: str | Path, work: Path | None = None):
    """Built-in name or file -> (resolved path, NetSpec or FramewiseModel).

    .onnx of the nsNet2 family, Keras .keras/.h5 and nsconv .npz give a NetSpec; other ONNX
    graphs without a recurrence take the onnx2tf route (needs `work`, a directory for the
    SavedModel) and give a FramewiseModel.
    """
    path = assets.resolve_model(str(name_or_path))
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from nsconv.model.onnx_import import OutsideFamily, import_onnx

        try:
            return path, import_onnx(path)
        except OutsideFamily as why:
            if work is None:
                raise
            from nsconv.quant.onnx_fallback import convert_with_onnx2tf

            return path, convert_with_onnx2tf(path, why, work)
    if suffix == ".npz":
        return path, NetSpec.load(path)
    if suffix in (".keras", ".h5"):
        from nsconv.model.dynamic import import_keras

        return path, import_keras(path)
    raise NsconvError(f"unsupported model format {suffix or '(no suffix)'!r} "
                      "(expected .onnx, .keras, .h5 or an nsconv .npz)", path)


def convert(model: str | Path, out: Path, clips: list[Path] | None = None,
            log=info, frontend: FrontendSpec | None = None,
            default_exit: str | None = None) -> Manifest:
    """`nsconv convert`: OUT is replaced atomically by the new output."""
    with atomic_output_dir(out) as tmp:
        convert_into(model, tmp, clips, log, frontend, default_exit)
    return Manifest.load(out)


def convert_into(model: str | Path, dest: Path, clips: list[Path] | None = None,
                 log=info, frontend: FrontendSpec | None = None,
                 default_exit: str | None = None) -> Manifest:
    """Write tflite/, model file and manifest.json into the (new, empty) directory dest.

    The front end is `frontend` when given (--frontend), else the model's own (.npz spec,
    ONNX metadata_props "nsconv.frontend"), else the DNS NSNet2 default. default_exit: the
    exit `enhance`/`run` use without --exit (default: the deepest)."""
    clips = clips or calibration_clips()
    if not clips:
        raise NsconvError("no calibration audio: the bundled clips are missing (pass --calib)")
    path, spec = load_model(model, work=dest)
    fe = frontend or model_frontend(path, spec)
    bins = spec.input_size if isinstance(spec, NetSpec) else spec.bins
    fe.check_features(bins, path)
    if isinstance(spec, NetSpec):
        spec = replace(spec, frontend=fe)
    if default_exit is not None:
        names = [e.name for e in spec.exits] if isinstance(spec, NetSpec) else ["final"]
        if default_exit not in names:
            raise NsconvError(f"--default-exit {default_exit!r} is not an exit of the model "
                              f"(exits: {', '.join(names)})", path)
        if isinstance(spec, NetSpec):
            spec = replace(spec, meta={**spec.meta, "default_exit": default_exit})
    if not fe.is_default:
        log(f"{path.name}: front end {fe.describe()}")
    with bad_model("cannot convert this model", path):
        return _convert_loaded(path, spec, dest, clips, log, fe)


def _convert_loaded(path: Path, spec, dest: Path, clips: list[Path], log, fe) -> Manifest:
    feats = calibration_features(clips, fe)
    frames = sum(len(f) for f in feats)
    entries = []
    if isinstance(spec, NetSpec):
        log(f"{path.name}: {len(spec.exits)} exit(s); calibrating on {len(clips)} clips, "
            f"{frames} frames, closed loop")
        converted = [convert_exit(spec, ex, record_closed_loop(spec, ex, feats))
                     for ex in progress(spec.exits, "convert")]
        _check_shared_states(converted, path)
        for ex, q in zip(spec.exits, converted, strict=True):
            entries.append(_write_exit(dest, q, ex.after, ex.head, spec.exit_macs(ex),
                                       spec.exit_params(ex), log))
        spec.save(dest / MODEL_FILE)
        model_file = MODEL_FILE
    else:
        log(f"{path.name}: outside the nsNet2 family, converted by onnx2tf "
            f"(frame-wise, no state); calibrating on {len(clips)} clips, {frames} frames")
        q = convert_framewise(spec, feats)
        macs, params = tflite_macs(q.tflite)
        entries.append(_write_exit(dest, q, "", (), macs, params, log))
        model_file = spec.saved_model.name
    manifest = Manifest(dest, str(path), assets.sha256_file(path), model_file,
                        tuple(entries), tuple(p.name for p in clips), frames, fe,
                        spec.default_exit().name if isinstance(spec, NetSpec) else None)
    manifest.save()
    return manifest


def model_frontend(path: Path, spec) -> FrontendSpec:
    """The front end a model carries: its NetSpec's, or its ONNX file's metadata_props."""
    own = getattr(spec, "frontend", DEFAULT_FRONTEND)
    if own.is_default and path.suffix.lower() == ".onnx":
        return FrontendSpec.from_onnx(path) or own
    return own


def _write_exit(tmp: Path, q, after: str, head: tuple[str, ...], macs: int, params: int,
                log) -> ExitEntry:
    rel = f"tflite/{q.name}.tflite"
    (tmp / "tflite").mkdir(exist_ok=True)
    (tmp / rel).write_bytes(q.tflite)
    log(f"  {q.name}: {len(q.tflite):,} bytes int8 TFLite, {macs:,} MACs/frame")
    return ExitEntry(q.name, after, head, rel, len(q.tflite), macs, params, q.features, q.mask,
                     q.states)


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
