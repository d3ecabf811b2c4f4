# SPDX-License-Identifier: Apache-2.0
"""`make fuzz`: the long fuzzing run of every reader; writes docs/FUZZ_REPORT.md."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import fuzzing  # noqa: E402 -- tests/ must be on the path first


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--inputs", type=int, default=10_000, help="mutated inputs per reader")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--report", type=Path, default=REPO / "docs" / "FUZZ_REPORT.md")
    args = ap.parse_args()
    rows, failed = [], False
    keep = REPO / "out" / "fuzz-findings"
    for reader in fuzzing.READERS:
        t0 = time.monotonic()
        stats = fuzzing.run(reader, fuzzing.seeds_for(reader, REPO), args.inputs,
                            rng_seed=args.seed, keep_dir=keep)
        row = stats.to_json() | {"seconds": round(time.monotonic() - t0, 1)}
        rows.append(row)
        print(json.dumps(row))
        for kind, msg, path in stats.findings[:10]:
            print(f"  {kind}: {msg.splitlines()[0][:200]} ({path})")
        failed |= bool(stats.findings)
    lines = ["# Fuzzing report", "",
             f"`make fuzz` (scripts/fuzz.py --inputs {args.inputs} --seed {args.seed}): mutated "
             "inputs per reader from valid seeds; each input in a worker process with a "
             "10 s bound. Findings = crashes + hangs + other exceptions + refusals whose "
             "message is not one line naming the file.", "",
             "| reader | inputs | accepted | rejected | crashes | hangs | exceptions | "
             "bad messages | slowest (s) | run (s) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['reader']} | {r['inputs']} | {r['accepted']} | {r['rejected']} | "
                     f"{r['crashes']} | {r['hangs']} | {r['exceptions']} | {r['bad_messages']} "
                     f"| {r['slowest_seconds']} | {r['seconds']} |")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.report}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
