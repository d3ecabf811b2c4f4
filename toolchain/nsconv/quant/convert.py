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
from nsconv.quant.weights import WeightsRequest, int4_weights

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
            default_exit: str | None = None, weights: WeightsRequest | None = None) -> Manifest:
    """`nsconv convert`: OUT is replaced atomically by the new output."""
    with atomic_output_dir(out) as tmp:
        convert_into(model, tmp, clips, log, frontend, default_exit, weights)
    return Manifest.load(out)


def convert_into(model: str | Path, dest: Path, clips: list[Path] | None = None,
                 log=info, frontend: FrontendSpec | None = None,
                 default_exit: str | None = None, weights: WeightsRequest | None = None,
                 budget_exits: tuple[str, ...] | None = None) -> Manifest:
    """Write tflite/, model file and manifest.json into the (new, empty) directory dest.

    The front end is `frontend` when given (--frontend), else the model's own (.npz spec,
    ONNX metadata_props "nsconv.frontend"), else the DNS NSNet2 default. default_exit: the
    exit `enhance`/`run` use without --exit (default: the deepest). weights: the weight
    format per layer (quant/weights.py; default all int8); budget_exits: the exits whose
    layers --weights auto must fit in its budget (default: all)."""
    weights = weights or WeightsRequest()
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
    if not weights.is_default:
        if not isinstance(spec, NetSpec):
            raise NsconvError("--weights: int4 layers need a model of the nsNet2 family (this "
                              "one was converted frame-wise by onnx2tf)", path)
        if weights.mode == "layers":
            weights.formats(spec, path)  # refuse unknown layer names before any work
        if weights.mode == "auto":
            from nsconv.quant.int4_choose import check_budget

            check_budget(spec, weights.budget_bytes, budget_exits, path)
    if not fe.is_default:
        log(f"{path.name}: front end {fe.describe()}")
    with bad_model("cannot convert this model", path):
        return _convert_loaded(path, spec, dest, clips, log, fe, weights, budget_exits)


def _convert_loaded(path: Path, spec, dest: Path, clips: list[Path], log, fe,
                    weights: WeightsRequest, budget_exits) -> Manifest:
    feats = calibration_features(clips, fe)
    frames = sum(len(f) for f in feats)
    entries = []
    formats: dict[str, str] = {}
    if isinstance(spec, NetSpec):
        log(f"{path.name}: {len(spec.exits)} exit(s); calibrating on {len(clips)} clips, "
            f"{frames} frames, closed loop")
        samples = {}
        converted = []
        for ex in progress(spec.exits, "convert"):
            samples[ex.name] = record_closed_loop(spec, ex, feats)
            converted.append(convert_exit(spec, ex, samples[ex.name]))
        _check_shared_states(converted, path)
        int4_names: list[tuple[str, ...]] = [()] * len(converted)
        if not weights.is_default:
            formats, converted, int4_names = _with_formats(spec, converted, weights, clips,
                                                          feats, samples, budget_exits, log)
        for ex, q, names in zip(spec.exits, converted, int4_names, strict=True):
            entries.append(_write_exit(dest, q, ex.after, ex.head, spec.exit_macs(ex),
                                       spec.exit_params(ex), log, names))
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
                        spec.default_exit().name if isinstance(spec, NetSpec) else None,
                        formats, weights.rounding if formats else None)
    manifest.save()
    return manifest


def _with_formats(spec: NetSpec, converted: list, weights: WeightsRequest, clips, feats,
                  samples, budget_exits, log):
    """(formats, exits with their int4 layers patched in, int4 filter names per exit)."""
    from nsconv.quant.weights import apply_formats

    recorded: list = []

    def inputs():
        from nsconv.quant.gptq import record_layer_inputs

        if not recorded:
            recorded.append(record_layer_inputs(spec, feats, samples))
        return recorded[0]

    int4w = None
    if weights.mode == "auto":
        from nsconv.quant.int4_choose import cached_int4_weights, choose_formats

        layer_inputs = inputs() if weights.rounding == "gptq" else None
        choice = choose_formats(spec, weights.budget_bytes, budget_exits, weights.rounding,
                                converted, clips, layer_inputs, log)
        if choice.ranking is not None:
            log(choice.ranking.table())
        log(f"  weights of exits {', '.join(choice.exits)}: {choice.int8_bytes:,} bytes int8, "
            f"{choice.weight_bytes:,} with the chosen formats (budget {choice.budget_bytes:,})")
        formats = choice.formats
        if weights.rounding == "rtn":
            int4w = cached_int4_weights(spec, "rtn", clips, lambda: None, log)
    else:
        formats = weights.formats(spec)
    int4 = [name for name, fmt in formats.items() if fmt == "int4"]
    log(f"  weights: int4 ({weights.rounding}) for {', '.join(int4) or 'no layer'}; "
        "int8 for the rest")
    if int4w is None and int4:
        int4w = int4_weights(spec, int4, weights.rounding,
                             inputs() if weights.rounding == "gptq" else None, feats)
    patched = apply_formats(spec, converted, formats, int4w or {})
    if not int4:
        formats = {}
    return formats, [q for q, _ in patched], [names for _, names in patched]


def model_frontend(path: Path, spec) -> FrontendSpec:
    """The front end a model carries: its NetSpec's, or its ONNX file's metadata_props."""
    own = getattr(spec, "frontend", DEFAULT_FRONTEND)
    if own.is_default and path.suffix.lower() == ".onnx":
        return FrontendSpec.from_onnx(path) or own
    return own


def _write_exit(tmp: Path, q, after: str, head: tuple[str, ...], macs: int, params: int,
                log, int4_weights: tuple[str, ...] = ()) -> ExitEntry:
    rel = f"tflite/{q.name}.tflite"
    (tmp / "tflite").mkdir(exist_ok=True)
    (tmp / rel).write_bytes(q.tflite)
    int4 = f" ({len(int4_weights)} int4 filters)" if int4_weights else ""
    log(f"  {q.name}: {len(q.tflite):,} bytes int8 TFLite{int4}, {macs:,} MACs/frame")
    return ExitEntry(q.name, after, head, rel, len(q.tflite), macs, params, q.features, q.mask,
                     q.states, int4_weights)


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
