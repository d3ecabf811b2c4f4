# SPDX-License-Identifier: Apache-2.0
"""Instructions per 16 ms hop of GTCRN's C front end on each core in QEMU (-icount).

Builds the front-end harness (tests/frontend_harness/gtcrn_harness.c, the network replaced by a
fixed int8 mask pattern) with the tables generated from the model, streams a real clip, and
prints the per-stage cost: analyze (window, 512-point rFFT, |X|, Re, Im), quantize (the
network's int16 input, TFLite QUANTIZE), dequantize (the int8 mask), synthesize (ERB expansion,
complex product, inverse rFFT, overlap-add). An instruction count is a proxy for cycles.

    python scripts/gtcrn_frontend_cost.py [--model M.onnx] [--cores cortex-m4,...] [--json]
        [--doc docs/gtcrn-frontend.md]   (rewrites the block between the gtcrn-frontend-cost
                                          markers with the table)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "toolchain"))
SHARED = Path(os.environ.get("NSCONV_SHARED", ROOT.parent / "shared"))
RUN = "mixed"  # int16 features, int8 mask: gtcrn-graph's mixed core
MARKERS = ("<!-- gtcrn-frontend-cost:begin -->", "<!-- gtcrn-frontend-cost:end -->")


def measure(model: Path, clip: Path, cores: list[str], log) -> list[dict]:
    from frontend_harness import fwbuild, gtcrn_run
    from nsconv.audio.gtcrn_frontend import GtcrnFrontendSpec
    from nsconv.model.gtcrn import load_gtcrn
    from nsconv.target import boards

    spec = GtcrnFrontendSpec.from_model(load_gtcrn(model))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        proj = gtcrn_run.project(spec, Path(tmp), model.name)
        args, _, mask = gtcrn_run.inputs(RUN, clip, Path(tmp))
        for board in (b for b in boards.BOARDS if b.core in cores):
            log(f"nsconv: {board.core} ({board.name}): building and streaming {len(mask)} hops")
            elf = gtcrn_run.build(proj, board.name, Path(tmp) / board.name)
            run = fwbuild.run_qemu(board, elf, " ".join(args), cwd=Path(tmp))
            if run.returncode != 0:
                raise SystemExit(f"nsconv: error: {board.name}: harness failed: {run.stderr}")
            cost = gtcrn_run.costs(run.stdout)
            rows.append({"core": board.core, "board": board.name, "hops": len(mask),
                         **cost, "total": sum(cost.values())})
    return rows


def table(rows: list[dict], model: str, clip: str) -> str:
    lines = [f"Written by `scripts/gtcrn_frontend_cost.py` ({model}, {clip}, int16 network "
             "input, int8 mask, as the mixed core); do not edit by hand. Instructions per hop "
             "under QEMU `-icount`.",
             "",
             "| core | analyze | quantize | dequantize | synthesize | total | of the 1.6 M budget |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['core']} | {r['analyze']:,} | {r['quantize']:,} | "
                     f"{r['dequantize']:,} | {r['synthesize']:,} | {r['total']:,} | "
                     f"{100 * r['total'] / 1.6e6:.1f} % |")
    return "\n".join(lines)


def write_block(doc: Path, markers: tuple[str, str], text: str) -> None:
    """Replaces what lies between the two marker lines of doc with text."""
    begin, end = markers
    body = doc.read_text()
    if begin not in body or end not in body:
        raise SystemExit(f"nsconv: error: {doc}: no {begin} ... {end} block")
    head, rest = body.split(begin, 1)
    tail = rest.split(end, 1)[1]
    doc.write_text(f"{head}{begin}\n\n{text}\n\n{end}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=SHARED / "models/gtcrn/gtcrn_simple.onnx")
    parser.add_argument("--clip", type=Path, default=ROOT / "tests/data/0072_noisy.wav")
    parser.add_argument("--cores", default="cortex-m4,cortex-m7,cortex-m33,cortex-m55")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--doc", type=Path, default=None)
    args = parser.parse_args()
    for path in (args.model, args.clip):
        if not path.is_file():
            raise SystemExit(f"nsconv: error: {path}: no such file")
    rows = measure(args.model, args.clip, args.cores.split(","),
                   lambda m: print(m, file=sys.stderr))
    text = table(rows, args.model.name, args.clip.name)
    if args.doc:
        write_block(args.doc, MARKERS, text)
    print(json.dumps(rows, indent=1) if args.json else text)


if __name__ == "__main__":
    main()
