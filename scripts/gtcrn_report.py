# SPDX-License-Identifier: Apache-2.0
"""GTCRN figures for docs/gtcrn.md, measured: import, float equivalence, PESQ-wb.

    python scripts/gtcrn_report.py [--shared ../shared] [--json docs/gtcrn_report.json]
                                   [--doc docs/gtcrn.md]

1. Both ONNX graphs imported into the typed op graph: ops, states, MACs per hop.
2. Equivalence with onnxruntime stepping the original ONNX over the five DNS3 noisy clips played
   back to back (one stream, states carried across clips): the full numpy graph (mix -> enh) and
   the TF one-step core with the numpy front end; max abs error of the enhanced frames and of every
   cache, also relative to the tensor's peak magnitude.
3. PESQ-wb on the five DNS3 pairs (each clip from zero states): noisy, onnxruntime streamed, nsconv
   float (front end + TF core).
The generated section of --doc lies between the two `gtcrn-report` markers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- gtcrn-report:begin -->", "<!-- gtcrn-report:end -->"
HOPS_PER_S = 16000 / 256


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def import_figures(gdir: Path) -> dict:
    from nsconv.model.gtcrn import load_gtcrn
    from nsconv.model.opgraph import import_opgraph

    out = {}
    for name in ("gtcrn_simple.onnx", "gtcrn.onnx"):
        t = time.time()
        m = load_gtcrn(gdir / name)
        full = import_opgraph(gdir / name)
        params = sum(int(np.prod(v.shape)) for op in m.core.ops for v in vars(op).values()
                     if isinstance(v, np.ndarray) and v.dtype == np.float32)
        out[name] = {
            "import_s": round(time.time() - t, 2),
            "core_ops": m.core.op_counts(),
            "core_macs_per_hop": m.core.macs(),
            "full_macs_per_hop": full.macs(),
            "core_mmac_per_s": round(m.core.macs() * HOPS_PER_S / 1e6, 2),
            "states": {s.name: list(s.shape) for s in m.core.states},
            "state_floats": int(sum(np.prod(s.shape) for s in m.core.states)),
            "core_weights_floats": params,
        }
    return out


def _errs(worst, peak):
    return {k: {"max_abs": float(worst[k]), "relative": float(worst[k] / peak[k])} for k in worst}


def equivalence(gdir: Path, noisy: list[np.ndarray]) -> dict:
    from nsconv.audio import gtcrn_frontend as fe
    from nsconv.model.gtcrn import FEATURES, MASK, load_gtcrn, onnxruntime_stream
    from nsconv.model.opgraph import import_opgraph, run_numpy
    from nsconv.model.opgraph_tf import TfStepper

    path = gdir / "gtcrn_simple.onnx"
    spec = np.concatenate([fe.stft(x) for x in noisy])
    record: list = []
    t = time.time()
    enh = onnxruntime_stream(path, spec, record)
    log(f"onnxruntime: {len(spec)} hops in {time.time() - t:.1f} s")
    peak = {"enh": float(np.abs(enh).max())}
    for _, _, res in record:
        for c in ("conv_cache", "tra_cache", "inter_cache"):
            peak[c] = max(peak.get(c, 0.0), float(np.abs(res[f"{c}_out"]).max()))

    g = import_opgraph(path)
    states = g.states_from_caches(record[0][1])
    worst = dict.fromkeys(peak, 0.0)
    t = time.time()
    for mix, _, res in record:
        out = run_numpy(g, {"mix": mix, **states})
        states = {s.name: out[s.name] for s in g.states}
        worst["enh"] = max(worst["enh"], float(np.abs(out["enh"] - res["enh"]).max()))
        for c, v in g.caches_from_states(states).items():
            worst[c] = max(worst[c], float(np.abs(v - res[f"{c}_out"]).max()))
    log(f"numpy spec: {time.time() - t:.1f} s")
    numpy_errs = _errs(worst, peak)

    m = load_gtcrn(path)
    step = TfStepper(m.core, FEATURES, MASK)
    worst = dict.fromkeys(peak, 0.0)
    t = time.time()
    for k, (_, _, res) in enumerate(record):
        mask = step(fe.features(spec[k])).reshape(2, -1)
        frame = fe.apply_mask(spec[k], fe.expand_mask(mask, m.synthesis))
        worst["enh"] = max(worst["enh"], float(np.abs(frame - enh[k]).max()))
        for c, v in m.core.caches_from_states(step.states).items():
            worst[c] = max(worst[c], float(np.abs(v - res[f"{c}_out"]).max()))
    log(f"TF core: {time.time() - t:.1f} s")
    return {"hops": len(spec), "numpy_full_graph": numpy_errs, "tf_core_front_end": _errs(worst, peak)}


def quality(gdir: Path, pairs) -> dict:
    from nsconv.audio import gtcrn_frontend as fe
    from nsconv.eval.evaluate import pesq_wb
    from nsconv.model.gtcrn import FEATURES, MASK, load_gtcrn, onnxruntime_stream
    from nsconv.model.opgraph_tf import TfStepper

    path = gdir / "gtcrn_simple.onnx"
    m = load_gtcrn(path)
    rows = {}
    for name, clean, noisy in pairs:
        ref = fe.istft(onnxruntime_stream(path, fe.stft(noisy)), len(noisy))
        ours = fe.stream(noisy, TfStepper(m.core, FEATURES, MASK), m.synthesis)
        rows[name] = {"noisy": pesq_wb(clean, noisy), "onnxruntime_float": pesq_wb(clean, ref),
                      "nsconv_float": pesq_wb(clean, ours),
                      "max_abs_wav_diff": float(np.abs(ours - ref).max())}
        log(name, {k: round(v, 4) for k, v in rows[name].items()})
    mean = {k: float(np.mean([r[k] for r in rows.values()])) for k in next(iter(rows.values()))}
    return {"per_clip": rows, "mean": mean}


def markdown(rep: dict) -> str:
    imp = rep["import"]
    a = imp["gtcrn_simple.onnx"]
    lines = [BEGIN, "", "Generated by `scripts/gtcrn_report.py`; do not edit by hand.", "",
             "### Import", "",
             "| graph | import (s) | core MACs/hop | core MMAC/s | states (floats) | weights |",
             "|---|---|---|---|---|---|"]
    for name, r in imp.items():
        lines.append(f"| {name} | {r['import_s']} | {r['core_macs_per_hop']:,} | "
                     f"{r['core_mmac_per_s']} | {len(r['states'])} ({r['state_floats']:,}) | "
                     f"{r['core_weights_floats']:,} |")
    lines += ["", "Typed ops of the core (`feat` -> `m_feat`), both graphs: " +
              ", ".join(f"{k} {v}" for k, v in a["core_ops"].items()) + ".", "",
              "States of the core (cut from the three ONNX caches):", ""]
    lines += [f"- `{k}` {v}" for k, v in a["states"].items()]
    eq = rep["equivalence"]
    lines += ["", f"### Float equivalence with onnxruntime ({eq['hops']} hops, five DNS3 noisy "
              "clips back to back)", "",
              "| model | tensor | max abs error | relative to peak |", "|---|---|---|---|"]
    for model, errs in (("numpy, full graph", eq["numpy_full_graph"]),
                        ("TF core + numpy front end", eq["tf_core_front_end"])):
        for k, e in errs.items():
            lines.append(f"| {model} | {k} | {e['max_abs']:.2e} | {e['relative']:.2e} |")
    q = rep["quality"]
    lines += ["", "### PESQ-wb, five DNS3 pairs", "",
              "| clip | noisy | onnxruntime float | nsconv float | max abs wav diff |",
              "|---|---|---|---|---|"]
    for name, r in list(q["per_clip"].items()) + [("mean", q["mean"])]:
        lines.append(f"| {name} | {r['noisy']:.3f} | {r['onnxruntime_float']:.3f} | "
                     f"{r['nsconv_float']:.3f} | {r['max_abs_wav_diff']:.2e} |")
    lines += ["", END]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--json", type=Path, default=ROOT / "docs" / "gtcrn_report.json")
    ap.add_argument("--doc", type=Path, default=ROOT / "docs" / "gtcrn.md")
    args = ap.parse_args()
    from nsconv.audio.wav import read_wav

    gdir, dns3 = args.shared / "models" / "gtcrn", args.shared / "audio" / "dns3"
    names = sorted(p.name[:-len("_noisy.wav")] for p in dns3.glob("*_noisy.wav"))
    pairs = [(n, read_wav(dns3 / f"{n}_clean.wav"), read_wav(dns3 / f"{n}_noisy.wav"))
             for n in names]
    rep = {"import": import_figures(gdir),
           "equivalence": equivalence(gdir, [p[2] for p in pairs]),
           "quality": quality(gdir, pairs)}
    args.json.write_text(json.dumps(rep, indent=1) + "\n")
    text = args.doc.read_text() if args.doc.exists() else f"{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    args.doc.write_text(head + markdown(rep) + tail)
    print(json.dumps(rep["quality"]["mean"]))


if __name__ == "__main__":
    main()
