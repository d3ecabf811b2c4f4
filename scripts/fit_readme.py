# SPDX-License-Identifier: Apache-2.0
"""Writes the figures of README.md's "Will it fit?" section from commands:

    python scripts/fit_readme.py [--model dynamic-nsnet2] [--work out/fit/dynamic-nsnet2]

the parts table (`nsconv fit --list-parts --markdown`) between <!-- parts:begin/end --> and,
between <!-- fit:begin/end -->, one row per part and exit from `nsconv fit MODEL --part P
--json` (measured by bench on the part's core; cached in the work directory, so a second run
only reads the cache)."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NSCONV = [sys.executable, "-m", "nsconv.cli"]


def _run(args: list[str]) -> str:
    return subprocess.run(NSCONV + args, check=True, capture_output=True, text=True).stdout


def fit_rows(model: str, work: str) -> str:
    from nsconv.target.parts import PARTS

    lines = ["| part | core | exit (kept exits) | flash B | RAM B | MHz needed | fits |",
             "|---|---|---|---|---|---|---|"]
    for p in PARTS:
        report = json.loads(_run(["fit", model, "--part", p.name, "-o", work, "--json"]))
        for e in report["exits"]:
            why = [w for w, k in (("flash", "fits_flash"), ("RAM", "fits_ram"),
                                  ("clock", "fits_mhz")) if not e[k]]
            verdict = "yes" if e["fits"] else "no: " + ", ".join(why)
            lines.append(f"| `{p.name}` | {p.core} | {e['exit']} ({','.join(e['kept_exits'])}) "
                         f"| {e['flash_bytes']:,} | {e['ram_bytes']:,} | {e['mhz_needed']:.1f} "
                         f"| {verdict} |")
    return "\n".join(lines)


def replace_block(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no <!-- {name}:begin --> ... <!-- {name}:end --> block")
    return pattern.sub(lambda m: m[1] + body.strip() + "\n" + m[2], text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="dynamic-nsnet2")
    ap.add_argument("--work", default="out/fit/dynamic-nsnet2")
    ap.add_argument("--parts-only", action="store_true", help="Only the parts table.")
    args = ap.parse_args()
    readme = ROOT / "README.md"
    text = replace_block(readme.read_text(), "parts", _run(["fit", "--list-parts", "--markdown"]))
    if not args.parts_only:
        text = replace_block(text, "fit", fit_rows(args.model, args.work))
    readme.write_text(text)


if __name__ == "__main__":
    main()
