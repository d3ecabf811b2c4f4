# SPDX-License-Identifier: Apache-2.0
"""Write GTCRN's deployable quantized core: out/gtcrn/core_<mode>.tflite + .json + op inventory.

    python scripts/gtcrn_core.py [--mode mixed|int8|16x8|float] [--shared ../shared]
                                 [--out out/gtcrn] [--inventory FILE.md]

The core is the compact one-step model (model/gtcrn_compact.py) converted by the real TFLite
converter (quant/gtcrn_quant.convert_core): calibration is float closed loop over the package's
calibration clips minus the DNS3 evaluation clips. The .json describes the features input, the
mask output and the 16 states with their quantizations; --inventory writes the op inventory
(op kind, dtypes, shapes, options, counts) as markdown.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def float_core(model) -> bytes:
    import tensorflow as tf
    from nsconv.model.gtcrn_compact import build_compact

    fn = build_compact(model.core)[0]
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    with contextlib.redirect_stdout(io.StringIO()):
        return conv.convert()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "gtcrn")
    ap.add_argument("--mode", choices=("mixed", "int8", "16x8", "float"), default="mixed")
    ap.add_argument("--inventory", type=Path, default=None)
    args = ap.parse_args()
    from nsconv.model.gtcrn import load_gtcrn
    from nsconv.quant import gtcrn_quant as gq

    model = load_gtcrn(args.shared / "models" / "gtcrn" / "gtcrn_simple.onnx")
    dest = args.out / f"core_{args.mode}.tflite"
    t = time.time()
    if args.mode == "float":
        blob = float_core(model)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(blob)
        desc = {"mode": "float", "tflite_bytes": len(blob)}
    else:
        names = sorted(p.name[:-len("_noisy.wav")]
                       for p in (args.shared / "audio" / "dns3").glob("*_noisy.wav"))
        recs, _ = gq.calibration_records(model, tuple(n + "_" for n in names),
                                         args.out / "calibration_records.npz")
        core = gq.convert_core(None, dest, args.mode, recs, model)
        blob, desc = core.tflite, core.to_json()
    counts = gq.op_counts(blob)
    log(f"{dest}: {len(blob):,} bytes, {sum(counts.values())} ops in {time.time() - t:.0f} s")
    if args.inventory:
        rows = gq.op_inventory(blob)
        args.inventory.write_text(
            f"Op inventory of `{dest.name}` ({sum(counts.values())} ops, "
            f"written by `scripts/gtcrn_core.py --mode {args.mode}`):\n\n"
            + ", ".join(f"{k} {v}" for k, v in counts.items()) + "\n\n"
            + gq.inventory_markdown(rows) + "\n")
    print(json.dumps({"tflite": str(dest), "ops": counts, **{k: v for k, v in desc.items()
                                                           if k in ("mode", "int16_stages")}}))


if __name__ == "__main__":
    main()
