# SPDX-License-Identifier: Apache-2.0
"""`make bench`: instructions per MAC of the FULLY_CONNECTED kernels, int8 (nsn_fully_connected_s8)
next to packed int4 (nsn_fully_connected_s4), on every core in QEMU -icount.

Builds the kernel micro-benchmark (tests/kernel_harness/kernel_bench.c, with the firmware flags
of firmware/mk/program.mk, -O2) for each board, runs it once and writes the FULLY_CONNECTED rows
as JSON: per core, per kernel and shape, instructions per call and per MAC. The same program
and rows are what `pytest -s tests/test_kernels_arm.py -k bench` prints.

    python scripts/kernel_bench.py out/kernel_bench.json
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from frontend_harness import fwbuild  # noqa: E402
from nsconv.resources import KERNEL_DIR  # noqa: E402
from nsconv.target import boards  # noqa: E402

BENCH_C = REPO / "tests" / "kernel_harness" / "kernel_bench.c"
LINE = re.compile(r"^bench (\w+) (.*)$", re.M)
KERNELS = {"fc": "nsn_fully_connected_s8", "fc_s4": "nsn_fully_connected_s4"}


def measure(board: boards.Board, work: Path) -> dict:
    """The FULLY_CONNECTED rows of one board's micro-benchmark run."""
    elf = fwbuild.build(board.name, work / board.name, "bench",
                        (BENCH_C, *sorted((KERNEL_DIR / "src").glob("*.c"))),
                        includes=(KERNEL_DIR / "include",))
    out = subprocess.run(board.qemu_command(elf), capture_output=True, text=True, timeout=600,
                         stdin=subprocess.DEVNULL, check=True).stdout
    rows, path = [], None
    for kind, fields in LINE.findall(out):
        f = dict(kv.split("=", 1) for kv in fields.split())
        if kind == "info":
            path = f["path"]
        if kind not in KERNELS or f["misalign"] != "0" or f["input_offset"] != "0":
            continue
        if f["status"] != "0":
            raise SystemExit(f"kernel_bench: {board.name}: {kind} returned {f['status']}")
        macs = int(f["in"]) * int(f["out"])
        rows.append({"kernel": KERNELS[kind], "in": int(f["in"]), "out": int(f["out"]),
                     "instructions": int(f["instructions"]),
                     "instructions_per_mac": round(int(f["instructions"]) / macs, 4)})
    return {"core": board.core, "board": board.name, "kernels_path": path, "rows": rows}


def table(report: dict) -> str:
    """Markdown: one row per shape, s8 and s4 per core."""
    cores = [r["core"] for r in report["cores"]]
    lines = ["| shape (in x out) | " + " | ".join(f"{c} s8 | {c} s4" for c in cores) + " |",
             "|---|" + "---|---|" * len(cores)]
    shapes = sorted({(row["in"], row["out"]) for r in report["cores"] for row in r["rows"]},
                    key=lambda s: (-s[0] * s[1], s))
    for shape in shapes:
        cells = []
        for r in report["cores"]:
            per = {row["kernel"]: row["instructions_per_mac"] for row in r["rows"]
                   if (row["in"], row["out"]) == shape}
            cells += [f"{per[k]:.3f}" if k in per else "-" for k in KERNELS.values()]
        lines.append(f"| {shape[0]} x {shape[1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="JSON file to write")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cores = [measure(b, Path(tmp)) for b in boards.BOARDS]
    report = {"counter": "instructions, QEMU -icount (kernel_bench.c, one call after a warm-up "
                         "call, random data, aligned weights, input offset 0)",
              "cores": cores}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
