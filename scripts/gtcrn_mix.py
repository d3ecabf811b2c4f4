# SPDX-License-Identifier: Apache-2.0
"""Which stages of GTCRN's compact core need int16 activations: per-stage sensitivity.

    python scripts/gtcrn_mix.py [--out out/gtcrn] [--json out/gtcrn/mix.json]

For every stage (model/gtcrn_compact.stages) two conversions are streamed in TFLM over the
calibration clips (never the DNS3 evaluation clips): all int8 but this stage int16, and all int16
but this stage int8. The score is the mask SNR against the float core (closed loop each), in dB.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def mask_snr(model, core, clips, gq, fe) -> float:
    from nsconv.model.gtcrn_compact import CompactStepper

    num = den = 0.0
    for x in clips:
        ref, fl = gq.TflmCore(core), CompactStepper(model.core)
        for frame in fe.stft(x):
            f = fe.features(frame)
            a, b = fl(f).reshape(2, -1), ref(f)
            num += float(np.sum(a.astype(np.float64) ** 2))
            den += float(np.sum((a.astype(np.float64) - b) ** 2))
    return 10 * np.log10(num / max(den, 1e-30))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "gtcrn")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--configs", default="", help="only these int16 sets, ';'-separated, "
                    "stages ','-separated ('' = int8, '*' = all)")
    args = ap.parse_args()
    from nsconv.audio import gtcrn_frontend as fe
    from nsconv.audio.wav import read_wav
    from nsconv.model.gtcrn import load_gtcrn
    from nsconv.model.gtcrn_compact import extract, stages
    from nsconv.quant import gtcrn_quant as gq
    from nsconv.quant.quantize import calibration_clips

    dns3 = args.shared / "audio" / "dns3"
    names = sorted(p.name[:-len("_noisy.wav")] for p in dns3.glob("*_noisy.wav"))
    model = load_gtcrn(args.shared / "models" / "gtcrn" / "gtcrn_simple.onnx")
    t = time.time()
    records, used = gq.calibration_records(model, tuple(n + "_" for n in names))
    clips = [read_wav(p) for p in calibration_clips() if p.name in used]
    log(f"{len(records)} records from {used} in {time.time() - t:.0f} s")
    all_st = [st.name for st in stages(extract(model.core))]
    if args.configs:
        configs = [frozenset(c.split(",")) - {""} for c in args.configs.split(";")]
    else:
        configs = [frozenset(), frozenset({"*"})]
        configs += [frozenset({s}) for s in all_st]
        configs += [frozenset(all_st) - {s} for s in all_st]
    results = []
    for int16 in configs:
        t = time.time()
        blob = gq.convert_stages(model, records, int16)
        core = gq.describe(blob, model, "mixed", int16)
        snr = mask_snr(model, core, clips, gq, fe)
        label = ("all int16" if "*" in int16 else "int8" if not int16 else
                 f"int8 except {sorted(int16)}" if len(int16) <= len(all_st) // 2 else
                 f"int16 except {sorted(set(all_st) - int16)}")
        row = {"int16": sorted(int16), "label": label, "mask_snr_db": round(snr, 2),
               "ops": sum(gq.op_counts(blob).values()), "bytes": len(blob)}
        results.append(row)
        log(f"{label}: {snr:.2f} dB, {row['ops']} ops ({time.time() - t:.0f} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
