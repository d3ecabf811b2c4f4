# SPDX-License-Identifier: Apache-2.0
"""`nsconv evaluate` of a GTCRN export: the quantized build against the float ONNX model.

quantized: the firmware's own program built for the host (target/gtcrn_target.py: the C front
end and the generated network, the same bits as on every core in QEMU, and the same as TFLM:
`nsconv verify`), streaming each noisy clip hop by hop.
float: the original ONNX model stepped frame by frame by onnxruntime over the batch centred
STFT (model/gtcrn.py onnxruntime_stream), as the issue's reference figure.
Scores per clip: PESQ-wb, STOI, SI-SDR, DNSMOS (eval/evaluate.py clip_metrics). Checks (issue
14): mean PESQ-wb of the quantized build >= 1.50, every clip within 0.15 of float, DNSMOS
OVRL mean within 0.1 of float.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from nsconv.errors import NsconvError

MIN_MEAN_PESQ = 1.50
MAX_CLIP_PESQ_DROP = 0.15
MAX_OVRL_DROP = 0.1
CORE = "cortex-m4"  # the project whose host build is run (the host program is core-independent)


def _float_enhance(onnx_path: Path, x: np.ndarray) -> np.ndarray:
    from nsconv.audio import gtcrn_frontend as fe
    from nsconv.model.gtcrn import onnxruntime_stream

    return fe.istft(onnxruntime_stream(onnx_path, fe.stft(x)), len(x))


def _check_source(out_dir: Path, onnx_path: Path) -> None:
    from nsconv.compiler.gtcrn_export import load_spec
    from nsconv.model.assets import sha256_file

    _, _, meta = load_spec(out_dir)
    if meta.get("source_sha256") and sha256_file(onnx_path) != meta["source_sha256"]:
        raise NsconvError(f"not the model {out_dir} was exported from ({meta['source_model']})",
                          onnx_path)


def evaluate_gtcrn(out_dir: Path, onnx_path: Path, audio: Path, dnsmos: bool = True,
                   log=None) -> dict:
    from nsconv.audio.wav import read_wav
    from nsconv.eval.evaluate import Dnsmos, find_pairs
    from nsconv.target import gtcrn_target as gt

    say = log or (lambda msg: None)
    out_dir, onnx_path = Path(out_dir), Path(onnx_path)
    if not onnx_path.is_file():
        raise NsconvError("no such ONNX model", onnx_path)
    _check_source(out_dir, onnx_path)
    pairs = find_pairs(audio)
    scorer = Dnsmos() if dnsmos else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="nsconv-eval-") as tmp:
        project = gt.ensure_exported(out_dir, CORE, Path(tmp), say)
        say("building the quantized build for the host")
        gt.build(project, host=True)
        for p in pairs:
            say(f"evaluate: {p.name}")
            clean, noisy = read_wav(p.clean), read_wav(p.noisy)
            gt.run(project, p.noisy, Path(tmp) / "q.wav", host=True)
            y_q = read_wav(Path(tmp) / "q.wav")
            y_f = _float_enhance(onnx_path, noisy)
            rows.append({"clip": p.name, **{k: _metrics(clean, y, scorer) for k, y in
                                            (("noisy", noisy), ("quantized", y_q),
                                             ("float", y_f))}})
    return _report(rows, out_dir, onnx_path, dnsmos)


def _metrics(clean: np.ndarray, y: np.ndarray, scorer) -> dict[str, float]:
    from nsconv.eval.evaluate import clip_metrics

    m = clip_metrics(clean, y, scorer)
    return {k: v for k, v in m.items() if scorer is not None or not k.startswith("dnsmos")}


def _report(rows: list[dict], out_dir: Path, onnx_path: Path, dnsmos: bool) -> dict:
    def mean(engine: str, key: str) -> float:
        return float(np.mean([r[engine][key] for r in rows]))

    keys = ("pesq_wb", "stoi", "si_sdr") + (("dnsmos_ovrl",) if dnsmos else ())
    means = {e: {k: mean(e, k) for k in keys} for e in ("noisy", "quantized", "float")}
    drops = [r["float"]["pesq_wb"] - r["quantized"]["pesq_wb"] for r in rows]
    checks = {
        "mean_pesq_wb_at_least_1.50": means["quantized"]["pesq_wb"] >= MIN_MEAN_PESQ,
        "every_clip_pesq_within_0.15_of_float": max(drops) <= MAX_CLIP_PESQ_DROP,
    }
    if dnsmos:
        checks["dnsmos_ovrl_mean_within_0.1_of_float"] = \
            means["float"]["dnsmos_ovrl"] - means["quantized"]["dnsmos_ovrl"] <= MAX_OVRL_DROP
    return {"kind": "gtcrn", "out": str(out_dir), "float_model": onnx_path.name,
            "quantized": "host build of the firmware (C front end + generated network; "
                         "bit-exact with TFLM and with the cores)",
            "float": "ONNX model stepped by onnxruntime over the batch centred STFT",
            "clips": rows, "mean": means, "max_clip_pesq_drop": max(drops),
            "checks": checks, "ok": all(checks.values())}


def table(report: dict) -> str:
    nan = float("nan")
    lines = ["| clip | noisy PESQ-wb | quantized | float | diff | quantized OVRL | float OVRL |",
             "|---|---|---|---|---|---|---|"]
    for r in report["clips"]:
        q, f = r["quantized"], r["float"]
        lines.append(f"| {r['clip']} | {r['noisy']['pesq_wb']:.3f} | {q['pesq_wb']:.3f} | "
                     f"{f['pesq_wb']:.3f} | {q['pesq_wb'] - f['pesq_wb']:+.3f} | "
                     f"{q.get('dnsmos_ovrl', nan):.3f} | {f.get('dnsmos_ovrl', nan):.3f} |")
    m = report["mean"]
    lines.append(f"| mean | {m['noisy']['pesq_wb']:.3f} | {m['quantized']['pesq_wb']:.3f} | "
                 f"{m['float']['pesq_wb']:.3f} | "
                 f"{m['quantized']['pesq_wb'] - m['float']['pesq_wb']:+.3f} | "
                 f"{m['quantized'].get('dnsmos_ovrl', nan):.3f} | "
                 f"{m['float'].get('dnsmos_ovrl', nan):.3f} |")
    lines += [f"check {k}: {'ok' if v else 'FAILED'}" for k, v in report["checks"].items()]
    return "\n".join(lines)
