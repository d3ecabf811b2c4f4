# SPDX-License-Identifier: Apache-2.0
"""GTCRN's C front end around the float core: PESQ-wb on the DNS3 pairs against onnxruntime.

Per clip: the host build of the front-end harness (tests/frontend_harness/gtcrn_harness.c)
streams the noisy clip and writes its float features; the float core (`NumpyStepper`, the
imported graph in numpy) turns them into masks, frame by frame with its states; the harness
streams the clip again with those masks (int16, scale 2^-15) and synthesises. The features do
not depend on the masks, so two passes are the closed loop. The reference is the authors'
model stepped by onnxruntime over the batch centred STFT (`onnxruntime_stream`), whose frame 0
reflects the clip's start where the stream has zeros.

    python scripts/gtcrn_frontend_quality.py [--model M.onnx] [--audio DIR] [--json]
        [--doc docs/gtcrn-frontend.md]   (rewrites the gtcrn-frontend-quality block)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "toolchain"))
SHARED = Path(os.environ.get("NSCONV_SHARED", ROOT.parent / "shared"))
MASK_SCALE = 2.0**-15
EDGE = 512  # samples at each end where the batch STFT's reflect padding reaches the output
MARKERS = ("<!-- gtcrn-frontend-quality:begin -->", "<!-- gtcrn-frontend-quality:end -->")


def _stream(exe: Path, d: Path, mask: np.ndarray) -> None:
    from frontend_harness import fwbuild, gtcrn_run

    mask.tofile(d / "mask.bin")
    args = ["stream", "in.s16", "mask.bin", "16", gtcrn_run.float_bits(2.0**-9), "0",
            gtcrn_run.float_bits(MASK_SCALE), "0"]
    run = fwbuild.run_host(exe, args, d)
    if run.returncode != 0:
        raise SystemExit(f"nsconv: error: harness failed: {run.stderr.strip()}")


def enhance_c(model, exe: Path, x: np.ndarray, d: Path) -> np.ndarray:
    """The clip through the C front end and the float core, streamed as `stream_hops` does;
    len(x) samples aligned with x."""
    from frontend_harness import gtcrn_run
    from nsconv.audio import gtcrn_frontend as fe
    from nsconv.model.gtcrn import NumpyStepper

    hops = -(-len(x) // fe.HOP) + 1  # as fe.stream_hops: the clip's hops and one of zeros
    pcm = np.zeros(hops * fe.HOP, np.int16)
    pcm[:len(x)] = np.round(x * 32768)
    pcm.tofile(d / "in.s16")
    _stream(exe, d, np.zeros((hops, 2 * 129), np.int16))
    feat = np.fromfile(d / "feat.f32", np.float32).reshape(hops, 3, fe.BINS)
    step = NumpyStepper(model)
    masks = np.stack([step(f) for f in feat]).reshape(hops, -1)
    _stream(exe, d, gtcrn_run.quantize(masks, MASK_SCALE, 0, 16))
    return np.fromfile(d / "out.f32", np.float32)[fe.HOP:fe.HOP + len(x)]


def measure(model_path: Path, audio: Path, log) -> list[dict]:
    from frontend_harness import gtcrn_run
    from nsconv.audio import gtcrn_frontend as fe
    from nsconv.audio.wav import read_wav
    from nsconv.model.gtcrn import load_gtcrn, onnxruntime_stream
    from pesq import pesq

    model = load_gtcrn(model_path)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        proj = gtcrn_run.project(fe.GtcrnFrontendSpec.from_model(model), d, model_path.name)
        exe = gtcrn_run.build(proj, "host", d / "host")
        for noisy in sorted(audio.glob("*_noisy.wav")):
            clip = noisy.name.removesuffix("_noisy.wav")
            log(f"nsconv: {clip}")
            x, clean = read_wav(noisy), read_wav(audio / f"{clip}_clean.wav")
            y_c = enhance_c(model, exe, x, d)
            y_ref = fe.istft(onnxruntime_stream(model_path, fe.stft(x)), len(x))
            rows.append({"clip": clip, "pesq_c": pesq(16000, clean, y_c, "wb"),
                         "pesq_onnxruntime": pesq(16000, clean, y_ref, "wb"),
                         "max_abs_diff": float(np.abs(y_c - y_ref).max()),
                         "max_abs_diff_inside": float(np.abs(y_c - y_ref)[EDGE:-EDGE].max())})
    return rows


def table(rows: list[dict], model: str) -> str:
    lines = [f"Written by `scripts/gtcrn_frontend_quality.py` ({model}); do not edit by hand.", "",
             "| clip | C front end + float core | onnxruntime float | max abs wav diff | "
             f"without the first and last {EDGE} samples |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['clip']} | {r['pesq_c']:.3f} | {r['pesq_onnxruntime']:.3f} | "
                     f"{r['max_abs_diff']:.2e} | {r['max_abs_diff_inside']:.2e} |")
    mean = {k: np.mean([r[k] for r in rows]) for k in ("pesq_c", "pesq_onnxruntime")}
    lines.append(f"| mean | {mean['pesq_c']:.3f} | {mean['pesq_onnxruntime']:.3f} | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=SHARED / "models/gtcrn/gtcrn_simple.onnx")
    parser.add_argument("--audio", type=Path, default=SHARED / "audio/dns3")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--doc", type=Path, default=None)
    args = parser.parse_args()
    if not args.model.is_file() or not args.audio.is_dir():
        raise SystemExit(f"nsconv: error: {args.model} or {args.audio}: not found")
    rows = measure(args.model, args.audio, lambda m: print(m, file=sys.stderr))
    text = table(rows, args.model.name)
    if args.doc:
        from gtcrn_frontend_cost import write_block

        write_block(args.doc, MARKERS, text)
    print(json.dumps(rows, indent=1) if args.json else text)


if __name__ == "__main__":
    main()
