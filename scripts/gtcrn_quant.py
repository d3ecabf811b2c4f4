# SPDX-License-Identifier: Apache-2.0
"""GTCRN quantization study: the quantized core in TFLM against float, PESQ-wb on DNS3.

    python scripts/gtcrn_quant.py [--mode int8|16x8] [--shared ../shared] [--out out/gtcrn]
                                  [--json docs/gtcrn_quant.json] [--doc docs/gtcrn.md] [--reuse]

Calibration: the package's calibration clips (quant/data/calib) minus any clip of the DNS3
evaluation set, streamed closed loop in float. Evaluation: the five DNS3 pairs, each from zero
states, float (front end + TF core) and int8 (front end + TFLM core). Writes the section of --doc
between the two `gtcrn-quant` markers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- gtcrn-quant:begin -->", "<!-- gtcrn-quant:end -->"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _native_stderr():
    """What native code writes to stderr meanwhile (TFLM explains its refusals there)."""
    sys.stderr.flush()
    saved, said = os.dup(2), {"text": ""}
    with tempfile.TemporaryFile("w+") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            said["text"] = tmp.read()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "gtcrn")
    ap.add_argument("--json", type=Path, default=ROOT / "docs" / "gtcrn_quant.json")
    ap.add_argument("--doc", type=Path, default=ROOT / "docs" / "gtcrn.md")
    ap.add_argument("--mode", choices=("int8", "16x8"), default="int8")
    ap.add_argument("--layout", choices=("gather", "slices"), default="gather",
                    help="Assemble ops as GATHER, or as slices/reshapes/transposes/concats")
    ap.add_argument("--engine", choices=("tflm", "litert"), default="tflm",
                    help="interpreter running the quantized core (tflm is the reference)")
    ap.add_argument("--reuse", action="store_true",
                    help="use the model (or calibration samples) already in --out")
    args = ap.parse_args()

    from nsconv.audio import gtcrn_frontend as fe
    from nsconv.audio.wav import read_wav
    from nsconv.eval.evaluate import pesq_wb
    from nsconv.model.gtcrn import FEATURES, MASK, load_gtcrn
    from nsconv.model.opgraph_tf import TfStepper
    from nsconv.quant import gtcrn_quant as gq
    from nsconv.quant.quantize import calibration_clips

    dns3 = args.shared / "audio" / "dns3"
    names = sorted(p.name[:-len("_noisy.wav")] for p in dns3.glob("*_noisy.wav"))
    calib = [p for p in calibration_clips() if not any(p.name.startswith(n + "_") for n in names)]
    model = load_gtcrn(args.shared / "models" / "gtcrn" / "gtcrn_simple.onnx")
    saved = args.out / f"gtcrn_core_{args.mode}_{args.layout}.tflite"
    cache = args.out / "calibration.npz"
    report = json.loads(args.json.read_text()) if args.json.is_file() else {}
    if args.reuse and saved.is_file() and cache.is_file():
        tflite, n_samples = saved.read_bytes(), len(np.load(cache)["0"])
    else:
        t = time.time()
        if args.reuse and cache.is_file():
            flat = np.load(cache)
            samples = [list(row) for row in zip(*(flat[k] for k in sorted(flat.files,
                                                  key=int)), strict=True)]
        else:
            samples = gq.record_calibration(model, [read_wav(p) for p in calib])
            args.out.mkdir(parents=True, exist_ok=True)
            np.savez(cache, **{str(i): np.stack([smp[i] for smp in samples])
                               for i in range(len(samples[0]))})
        n_samples = len(samples)
        log(f"calibration: {n_samples} samples from {[p.name for p in calib]} "
            f"in {time.time() - t:.0f} s")
        t = time.time()
        tflite = gq.convert(model, samples, args.mode, args.layout)
        log(f"{args.mode} conversion: {len(tflite):,} bytes in {time.time() - t:.0f} s")
        args.out.mkdir(parents=True, exist_ok=True)
        saved.write_bytes(tflite)

    core = gq.TflmCore if args.engine == "tflm" else gq.LiteRtCore
    entry = {"calibration_clips": [p.name for p in calib], "calibration_samples": n_samples,
             "tflite_bytes": len(tflite), "tflite_ops": gq.op_counts(tflite)}
    said = {"text": ""}
    try:
        with _native_stderr() as said:
            core(model, tflite)
    except Exception as exc:  # the interpreter refuses the model (e.g. a kernel it lacks)
        entry["error"] = " ".join((said["text"] + " " + str(exc)).split())[:300]
        log(f"{args.engine}: {entry['error']}")
    if "error" not in entry:
        rows = {}
        for n in names:
            clean, noisy = read_wav(dns3 / f"{n}_clean.wav"), read_wav(dns3 / f"{n}_noisy.wav")
            fl = fe.stream(noisy, TfStepper(model.core, FEATURES, MASK), model.synthesis)
            qn = fe.stream(noisy, core(model, tflite), model.synthesis)
            rows[n] = {"noisy": pesq_wb(clean, noisy), "float": pesq_wb(clean, fl),
                       "quantized": pesq_wb(clean, qn)}
            log(n, {k: round(v, 3) for k, v in rows[n].items()})
        entry["per_clip"] = rows
        entry["mean"] = {k: float(np.mean([r[k] for r in rows.values()]))
                         for k in ("noisy", "float", "quantized")}
    report[f"{args.mode}, {args.layout} ({args.engine})"] = entry
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    lines = [BEGIN, "", "Generated by `scripts/gtcrn_quant.py`; do not edit by hand.", ""]
    for mode, rep in report.items():
        lines += [f"**{mode}** (whole model): {rep['tflite_bytes']:,} "
                  f"bytes, {sum(rep['tflite_ops'].values()):,} ops: " +
                  ", ".join(f"{k} {v}" for k, v in rep["tflite_ops"].items()) + ". "
                  f"Calibrated on {rep['calibration_samples']} closed-loop float frames of "
                  f"{', '.join(rep['calibration_clips'])}.", ""]
        if "error" in rep:
            lines += [f"The interpreter refuses it: `{rep['error']}`", ""]
            continue
        lines += [f"| clip | noisy | float | {mode} |", "|---|---|---|---|"]
        for n, r in list(rep["per_clip"].items()) + [("mean", rep["mean"])]:
            lines.append(f"| {n} | {r['noisy']:.3f} | {r['float']:.3f} | "
                         f"{r['quantized']:.3f} |")
        lines.append("")
    lines.append(END)
    text = args.doc.read_text() if args.doc.exists() else f"{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    args.doc.write_text(head + "\n".join(lines) + rest.split(END, 1)[1])
    print(json.dumps(entry.get("mean", entry.get("error"))))


if __name__ == "__main__":
    main()
