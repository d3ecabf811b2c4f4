#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Round-to-nearest vs GPTQ int4 on chosen layers of a model, as shipped (TFLM), per exit.

    scripts/int4_rounding.py [--model dynamic-nsnet2] [--layers gru1,gru2,fc3]
                             [--int8 OUT] [--no-pesq] [--json docs/int4_rounding.json]
                             [--markdown docs/int4_rounding.md]

For each rounding (rtn; gptq, the layers quantized together upstream first) the int8 models
of every exit get the int4 weights of --layers (quant/weights.int4_weights and apply_int4:
what `convert --weights L=int4 --rounding R` writes) and run in TFLM
over the clean/noisy pairs of tests/data (held out: not calibration audio) and over the
calibration clips. Reported per exit: RMS of the mask difference from the all-int8 models, and
with PESQ (default) PESQ-wb, STOI and SI-SDR per clip and their change from all-int8.
--int8 OUT: an all-int8 `nsconv convert` output of the model (converted into a temporary
directory when not given).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "toolchain"))

from nsconv.audio import frontend  # noqa: E402
from nsconv.eval.evaluate import clip_metrics, find_pairs  # noqa: E402
from nsconv.model.netspec import NetSpec  # noqa: E402
from nsconv.quant.int4 import layer_matrices  # noqa: E402
from nsconv.quant.int4_choose import cached_int4_weights, converted_exits, exit_masks  # noqa: E402
from nsconv.quant.manifest import Manifest  # noqa: E402
from nsconv.quant.quantize import calibration_clips, calibration_features  # noqa: E402
from nsconv.quant.weights import apply_int4, int4_weights, layer_weight_bytes  # noqa: E402

ROUNDINGS = ("rtn", "gptq")


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="dynamic-nsnet2")
    ap.add_argument("--layers", default="gru1,gru2,fc3")
    ap.add_argument("--int8", type=Path, default=None)
    ap.add_argument("--audio", type=Path, default=ROOT / "tests" / "data")
    ap.add_argument("--no-pesq", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args()
    layers = [s.strip() for s in args.layers.split(",") if s.strip()]
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="int4-rounding-") as tmp:
        out = args.int8 or _convert(args.model, Path(tmp) / "int8")
        report = measure(out, layers, args.audio, not args.no_pesq)
    report["seconds"] = round(time.time() - t0, 1)
    text = json.dumps(report, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(report))
    print(markdown(report))
    return 0


def _convert(model: str, dest: Path) -> Path:
    from nsconv.quant.convert import convert

    log(f"converting {model} (all int8) into {dest}")
    convert(model, dest, log=log)
    return dest


def measure(out: Path, layers: list[str], audio: Path, pesq: bool) -> dict:
    m = Manifest.load(out)
    spec = NetSpec.load(out / m.model_file)
    clips = calibration_clips()
    calib = calibration_features(clips, spec.frontend)
    pairs = find_pairs(audio)
    data = []
    for p in pairs:
        from nsconv.audio.wav import read_wav

        clean, noisy = read_wav(p.clean, spec.frontend), read_wav(p.noisy, spec.frontend)
        n = min(len(clean), len(noisy))
        stft = frontend.stft(noisy[:n], spec.frontend)
        data.append((p.name, clean[:n], noisy[:n], stft, frontend.features(stft, spec.frontend)))
    exits = converted_exits(out)

    def inputs():
        from nsconv.quant.gptq import record_layer_inputs

        return record_layer_inputs(spec, calib)

    # what `convert --weights L=int4 --rounding R` computes for these layers
    weights = {"rtn": cached_int4_weights(spec, "rtn", clips, inputs, log),
               "gptq": int4_weights(spec, layers, "gptq", inputs(), calib)}
    saved = sum(layer_weight_bytes(spec, n, "int8") - layer_weight_bytes(spec, n, "int4")
                for n in layers)
    report = {"model": m.source_path.rsplit("/", 1)[-1], "layers": layers,
              "bytes_saved": saved, "engine": "tflm (int8 models with the int4 weights)",
              "audio": str(audio.relative_to(ROOT)) if audio.is_relative_to(ROOT) else str(audio),
              "calibration_frames": sum(len(f) for f in calib), "exits": {}}
    for q in exits:
        log(f"exit {q.name}")
        variants = {"int8": q.tflite}
        for r in ROUNDINGS:
            mine = {mm.name: weights[r][mm.name] for n in layers
                    for mm in layer_matrices(spec, n)}
            variants[r], _ = apply_int4(q.tflite, spec, q.name, mine)
        report["exits"][q.name] = _exit_report(q, variants, calib, data, spec.frontend, pesq)
    return report


def _exit_report(q, variants: dict, calib, data, fe, pesq: bool) -> dict:
    test_feats = [d[4] for d in data]
    masks = {k: exit_masks(q, test_feats, t) for k, t in variants.items()}
    cal = {k: exit_masks(q, calib, t) for k, t in variants.items()}
    row: dict = {"mask_rms_test": {}, "mask_rms_calib": {}, "mask_mean_shift_test": {}}
    for r in ROUNDINGS:
        row["mask_rms_test"][r] = _rms(masks[r] - masks["int8"])
        row["mask_rms_calib"][r] = _rms(cal[r] - cal["int8"])
        row["mask_mean_shift_test"][r] = float(np.mean(masks[r] - masks["int8"]))
    if pesq:
        row["per_clip"] = _scores(masks, data, fe)
    return row


def _scores(masks: dict, data, fe) -> dict:
    per_clip = {}
    start = 0
    for name, clean, noisy, stft, feats in data:
        n = len(feats)
        per_clip[name] = {}
        for k, mk in masks.items():
            y = frontend.istft(frontend.apply_mask(stft, mk[start:start + n], fe), fe)
            per_clip[name][k] = clip_metrics(clean, y[: len(noisy)], None, fe.rate)
            per_clip[name][k].pop("dnsmos_sig"), per_clip[name][k].pop("dnsmos_bak")
            per_clip[name][k].pop("dnsmos_ovrl")
        start += n
    return per_clip


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def markdown(report: dict) -> str:
    lines = [f"# int4 rounding: {report['model']}, layers {', '.join(report['layers'])} in int4",
             "",
             f"Written by `scripts/int4_rounding.py`. {report['bytes_saved']:,} bytes of weights "
             f"saved. Engine: {report['engine']}. Mask RMS difference from the all-int8 models "
             f"on {report['audio']} (held out) and on the calibration clips "
             f"({report['calibration_frames']} frames).", "",
             "| exit | RMS rtn (test) | RMS gptq (test) | RMS rtn (calib) | RMS gptq (calib) "
             "| worst dPESQ rtn | worst dPESQ gptq | worst dSI-SDR rtn | worst dSI-SDR gptq |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, row in report["exits"].items():
        cells = [name] + [f"{row['mask_rms_test'][r]:.4f}" for r in ROUNDINGS] + \
            [f"{row['mask_rms_calib'][r]:.4f}" for r in ROUNDINGS]
        if "per_clip" in row:
            for metric in ("pesq_wb", "si_sdr"):
                for r in ROUNDINGS:
                    d = [c[r][metric] - c["int8"][metric] for c in row["per_clip"].values()]
                    cells.append(f"{max(d, key=abs):+.3f}")
        else:
            cells += ["-"] * 4
        lines.append("| " + " | ".join(cells) + " |")
    if any("per_clip" in r for r in report["exits"].values()):
        lines += ["", "PESQ-wb per clip (int8 / rtn / gptq):", "",
                  "| exit | clip | int8 | rtn | gptq |", "|---|---|---|---|---|"]
        for name, row in report["exits"].items():
            for clip, s in row.get("per_clip", {}).items():
                lines.append(f"| {name} | {clip} | {s['int8']['pesq_wb']:.3f} | "
                             f"{s['rtn']['pesq_wb']:.3f} | {s['gptq']['pesq_wb']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
