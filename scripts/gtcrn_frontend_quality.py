# SPDX-License-Identifier: Apache-2.0
"""GTCRN's C front end around the float core: PESQ-wb on the DNS3 pairs against onnxruntime.

Per clip: the host build of the front-end harness (tests/frontend_harness/gtcrn_harness.c)
streams the noisy clip and writes its float features; the float core (`NumpyStepper`, the
imported graph in numpy) turns them into masks, frame by frame with its states; the harness
streams the clip again with those masks (int16, scale 2^-15) and synthesises. The features do
not depend on the masks, so two passes are the closed loop. The reference is the authors'
model stepped by onnxruntime over the batch centred STFT (`onnxruntime_stream`), whose frame 0
reflects the clip's start where the stream has zeros.

    python scripts/gtcrn_frontend_quality.py [--model M.onnx] [--audio DIR] [--core CORE.tflite]
        [--json] [--doc docs/gtcrn-frontend.md]   (rewrites the gtcrn-frontend-quality block,
                                                    or -quality-core with --core)
With --core, a quantized core (gtcrn_quant.convert_core) replaces the float core: TFLM steps it
on the C's quantized features (nsn_gtcrn_quantize_*) and the C dequantizes its mask.
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
MARKERS_CORE = ("<!-- gtcrn-frontend-quality-core:begin -->",
                "<!-- gtcrn-frontend-quality-core:end -->")


def _stream(exe: Path, d: Path, mask: np.ndarray, quant: tuple) -> None:
    from frontend_harness import fwbuild, gtcrn_run

    mask.tofile(d / "mask.bin")
    run = fwbuild.run_host(exe, gtcrn_run.stream_args(*quant), d)
    if run.returncode != 0:
        raise SystemExit(f"nsconv: error: harness failed: {run.stderr.strip()}")


def enhance_c(core, exe: Path, x: np.ndarray, d: Path) -> np.ndarray:
    """The clip through the C front end and a core, streamed as `stream_hops` does; len(x)
    samples aligned with x. The features do not depend on the masks: the first pass gives
    them (float and quantized by the C), the core maps them to quantized masks, the second
    pass dequantizes and synthesises."""
    from nsconv.audio import gtcrn_frontend as fe

    hops = -(-len(x) // fe.HOP) + 1  # as fe.stream_hops: the clip's hops and one of zeros
    pcm = np.zeros(hops * fe.HOP, np.int16)
    pcm[:len(x)] = np.round(x * 32768)
    pcm.tofile(d / "in.s16")
    in_bits, _, out_bits, _ = core.quant
    _stream(exe, d, np.zeros((hops, 2 * 129), np.int8 if out_bits == 8 else np.int16),
            core.quant)
    feat = np.fromfile(d / "feat.f32", np.float32).reshape(hops, 3, fe.BINS)
    featq = np.fromfile(d / "featq.bin", np.int8 if in_bits == 8 else np.int16)
    _stream(exe, d, core.masks(feat, featq.reshape(hops, -1)), core.quant)
    return np.fromfile(d / "out.f32", np.float32)[fe.HOP:fe.HOP + len(x)]


class FloatCore:
    """The imported graph in numpy; its masks pass as int16 (scale 2^-15)."""

    name = "float core"
    quant = (16, (2.0**-9, 0), 16, (MASK_SCALE, 0))

    def __init__(self, model) -> None:
        self.model = model

    def masks(self, feat: np.ndarray, featq: np.ndarray) -> np.ndarray:
        from frontend_harness import gtcrn_run
        from nsconv.model.gtcrn import NumpyStepper

        step = NumpyStepper(self.model)
        masks = np.stack([step(f) for f in feat]).reshape(len(feat), -1)
        return gtcrn_run.quantize(masks, MASK_SCALE, 0, 16)


class TflmCore:
    """A quantized core (gtcrn_quant.convert_core) run by TFLM on the C's quantized features."""

    def __init__(self, path: Path) -> None:
        from nsconv.quant.gtcrn_quant import load_core

        self.core = load_core(path)
        f, m = self.core.features, self.core.mask
        bits = {"int8": 8, "int16": 16}
        self.quant = (bits[f.dtype], (f.scale, f.zero_point), bits[m.dtype], (m.scale, m.zero_point))
        self.name = f"{path.stem} (TFLM)"

    def masks(self, feat: np.ndarray, featq: np.ndarray) -> np.ndarray:
        from nsconv.quant.gtcrn_quant import TflmCore as Tflm

        tflm = Tflm(self.core)
        return np.stack([np.asarray(tflm.step(q.reshape(self.core.features.shape))[0]).reshape(-1)
                         for q in featq])


def measure(model_path: Path, audio: Path, core_path: Path | None, log) -> tuple[str, list]:
    from frontend_harness import gtcrn_run
    from nsconv.audio import gtcrn_frontend as fe
    from nsconv.audio.wav import read_wav
    from nsconv.model.gtcrn import load_gtcrn, onnxruntime_stream
    from pesq import pesq

    model = load_gtcrn(model_path)
    core = TflmCore(core_path) if core_path else FloatCore(model)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        proj = gtcrn_run.project(fe.GtcrnFrontendSpec.from_model(model), d, model_path.name)
        exe = gtcrn_run.build(proj, "host", d / "host")
        for noisy in sorted(audio.glob("*_noisy.wav")):
            clip = noisy.name.removesuffix("_noisy.wav")
            log(f"nsconv: {clip}")
            x, clean = read_wav(noisy), read_wav(audio / f"{clip}_clean.wav")
            y_c = enhance_c(core, exe, x, d)
            y_ref = fe.istft(onnxruntime_stream(model_path, fe.stft(x)), len(x))
            rows.append({"clip": clip, "pesq_c": pesq(16000, clean, y_c, "wb"),
                         "pesq_onnxruntime": pesq(16000, clean, y_ref, "wb"),
                         "max_abs_diff": float(np.abs(y_c - y_ref).max()),
                         "max_abs_diff_inside": float(np.abs(y_c - y_ref)[EDGE:-EDGE].max())})
    return core.name, rows


def table(rows: list[dict], model: str, core: str, command: str) -> str:
    lines = [f"Written by `{command}` ({model}); do not edit by hand.", "",
             f"| clip | C front end + {core} | onnxruntime float | max abs wav diff | "
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
    parser.add_argument("--core", type=Path, default=None,
                        help="a quantized core (.tflite with its .json, gtcrn_quant.convert_core) "
                             "run by TFLM instead of the float core")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--doc", type=Path, default=None)
    args = parser.parse_args()
    if not args.model.is_file() or not args.audio.is_dir():
        raise SystemExit(f"nsconv: error: {args.model} or {args.audio}: not found")
    core, rows = measure(args.model, args.audio, args.core, lambda m: print(m, file=sys.stderr))
    command = "scripts/gtcrn_frontend_quality.py" + (f" --core {args.core.name}" if args.core else "")
    text = table(rows, args.model.name, core, command)
    if args.doc:
        from gtcrn_frontend_cost import write_block

        write_block(args.doc, MARKERS_CORE if args.core else MARKERS, text)
    print(json.dumps(rows, indent=1) if args.json else text)


if __name__ == "__main__":
    main()
