# SPDX-License-Identifier: Apache-2.0
"""Figures of docs/gtcrn-target.md from measured JSON (`make gtcrn-bench` writes both):

    python scripts/gtcrn_target_report.py docs/gtcrn_bench.json docs/gtcrn_eval.json \
        [--nsnet2 docs/gtcrn_nsnet2_dns3.json] [--doc docs/gtcrn-target.md] \
        [--svg docs/gtcrn_quality_vs_macs.svg] [--readme README.md]

Rewrites the section of --doc between the two `gtcrn-target` markers (cost per core, by op,
memory, quality per clip) and writes the quality-vs-MMAC/s plot as a plain SVG (no plotting
package needed): GTCRN (float and the quantized build) next to the nsNet2 exits on the same
five DNS3 pairs (`nsconv evaluate dynamic-nsnet2 --engine tflm --audio ../shared/audio/dns3
--no-dnsmos --json`, the int8 exits in TFLM). Also rewrites README.md's summary between the two
`gtcrn` markers: GTCRN's quality and cost next to the nsNet2 exits, and the plot.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

BEGIN, END = "<!-- gtcrn-target:begin -->", "<!-- gtcrn-target:end -->"
README_BEGIN, README_END = "<!-- gtcrn:begin -->", "<!-- gtcrn:end -->"
# analytic MACs of GTCRN's quantized core per hop (docs/gtcrn.md inventory), 62.5 hops/s
GTCRN_MACS_PER_HOP = 590_288
HOPS_PER_SECOND = 62.5


def cost_lines(bench: dict) -> list[str]:
    out = ["| core | kernels | network | front end (share) | total per 16 ms hop | MHz for "
           "real time (estimate) | RAM bytes | flash bytes (code + constants) |",
           "|---|---|---|---|---|---|---|---|"]
    for r in bench["results"]:
        f = r["flash"]
        out.append(f"| {r['core']} | {r['kernels_path']} | {r['network_mean']:,} | "
                   f"{r['frontend_mean']:,} ({100 * r['frontend_share']:.1f} %) | "
                   f"{r['total_mean']:,} | {r['mhz_for_real_time_estimate']} | "
                   f"{r['ram_bytes']:,} | {f['flash_bytes']:,} ({f['code_bytes']:,} + "
                   f"{f['constants_bytes']:,}) |")
    return out


def target_lines(bench: dict) -> list[str]:
    out = []
    for r in bench["results"]:
        if r["core"] == "cortex-m4":
            met = r["total_mean"] <= bench["target_m4_instructions_per_hop"]
            out.append(f"Issue 14's target, <= {bench['target_m4_instructions_per_hop']:,} "
                       f"instructions per hop on Cortex-M4 (real time at 100 MHz): "
                       f"{'met' if met else 'NOT met'}, {r['total_mean']:,} measured "
                       f"({r['total_mean'] / bench['target_m4_instructions_per_hop']:.2f} x).")
    return out


def op_lines(bench: dict) -> list[str]:
    res = bench["results"]
    cores = [r["core"] for r in res]
    steps = res[0].get("steps_by_op", {})
    out = ["| op kind | steps | " + " | ".join(cores) + " | per step on " + cores[0] + " |",
           "|---" * (len(cores) + 3) + "|"]
    for k, v in res[0]["instructions_by_op"].items():
        n = steps.get(k, 0)
        per_step = f"{round(v / n):,}" if n else "?"
        out.append(f"| {k} | {n or '?'} | "
                   + " | ".join(f"{r['instructions_by_op'].get(k, 0):,}" for r in res)
                   + f" | {per_step} |")
    return out


def memory_lines(bench: dict) -> list[str]:
    r = bench["results"][0]
    return [f"RAM on {r['core']}: {r['ram_bytes']:,} bytes = nsn_model_t {r['model_bytes']:,} "
            f"(arena {r['arena_bytes']:,}, states {r['state_bytes']:,}, kernel scratch and "
            f"padding {r['model_bytes'] - r['arena_bytes'] - r['state_bytes']:,}) + network "
            f"stack peak {r['stack_peak_bytes']:,} + front end state "
            f"{r['frontend_state_bytes']:,}. Flash: network code "
            f"{r['flash']['network_code_bytes']:,}, network constants "
            f"{r['flash']['network_constants_bytes']:,} (weights {r['flash']['weights_bytes']:,}; "
            f"the rest: op parameters and copy tables), front end code "
            f"{r['flash']['frontend_code_bytes']:,} and constants "
            f"{r['flash']['frontend_constants_bytes']:,}."]


def quality_lines(ev: dict) -> list[str]:
    out = ["| clip | noisy PESQ-wb | quantized (C) | float (onnxruntime) | difference | "
           "DNSMOS OVRL quantized | float |", "|---|---|---|---|---|---|---|"]
    for r in ev["clips"]:
        q, f = r["quantized"], r["float"]
        out.append(f"| {r['clip']} | {r['noisy']['pesq_wb']:.3f} | {q['pesq_wb']:.3f} | "
                   f"{f['pesq_wb']:.3f} | {q['pesq_wb'] - f['pesq_wb']:+.3f} | "
                   f"{q.get('dnsmos_ovrl', float('nan')):.3f} | "
                   f"{f.get('dnsmos_ovrl', float('nan')):.3f} |")
    m = ev["mean"]
    out.append(f"| mean | {m['noisy']['pesq_wb']:.3f} | {m['quantized']['pesq_wb']:.3f} | "
               f"{m['float']['pesq_wb']:.3f} | "
               f"{m['quantized']['pesq_wb'] - m['float']['pesq_wb']:+.3f} | "
               f"{m['quantized'].get('dnsmos_ovrl', float('nan')):.3f} | "
               f"{m['float'].get('dnsmos_ovrl', float('nan')):.3f} |")
    out += ["", "Checks (issue 14): " + ", ".join(f"{k} {'ok' if v else 'FAILED'}"
                                                  for k, v in ev["checks"].items()) + "."]
    return out


def render(bench: dict, ev: dict, svg_name: str) -> list[str]:
    return [BEGIN, "", "Generated by `scripts/gtcrn_target_report.py` from "
            "docs/gtcrn_bench.json and docs/gtcrn_eval.json (`make gtcrn-bench`); do not edit "
            "by hand.", "", "Instructions per 16 ms hop (QEMU -icount):", "",
            *cost_lines(bench), "", *target_lines(bench), "",
            "Network instructions per hop by op kind (profiled build: hooks around every "
            "step, so the sum is a little above the plain count):",
            "", *op_lines(bench), "", *memory_lines(bench), "",
            "Quality on the five DNS3 pairs:", "", *quality_lines(ev), "",
            f"![quality against compute]({svg_name})", "", END]


def svg(points: list[tuple[str, float, float, str]]) -> str:
    """A scatter plot of PESQ-wb against MMAC/s, as plain SVG."""
    w, h, left, bottom, top, right = 640, 400, 70, 50, 30, 250
    x_max, y_min, y_max = 300.0, 1.0, 1.7

    def px(x: float) -> float:
        return left + (w - left - right) * x / x_max

    def py(y: float) -> float:
        return top + (h - top - bottom) * (y_max - y) / (y_max - y_min)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<line x1="{left}" y1="{py(y_min)}" x2="{px(x_max)}" y2="{py(y_min)}" stroke="black"/>',
           f'<line x1="{left}" y1="{py(y_min)}" x2="{left}" y2="{py(y_max)}" stroke="black"/>',
           f'<text x="{(left + px(x_max)) / 2}" y="{h - 12}" text-anchor="middle">MMAC/s</text>',
           f'<text x="16" y="{(top + py(y_min)) / 2}" transform="rotate(-90 16 '
           f'{(top + py(y_min)) / 2})" text-anchor="middle">PESQ-wb (5 DNS3 pairs, mean)</text>']
    for x in range(0, int(x_max) + 1, 50):
        out.append(f'<text x="{px(x)}" y="{py(y_min) + 16}" text-anchor="middle">{x}</text>')
    for i in range(8):
        y = y_min + 0.1 * i
        out.append(f'<text x="{left - 6}" y="{py(y) + 4}" text-anchor="end">{y:.1f}</text>')
    for k, (label, x, y, colour) in enumerate(points):
        out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="5" fill="{colour}"/>')
        ly = top + 18 * k
        out.append(f'<circle cx="{w - right + 20}" cy="{ly}" r="5" fill="{colour}"/>')
        out.append(f'<text x="{w - right + 30}" y="{ly + 4}">{label}: {y:.3f}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def readme_lines(bench: dict, points: list, svg_path: str) -> list[str]:
    """README's summary: mean PESQ-wb against MMAC/s on the five DNS3 pairs, GTCRN's cost."""
    out = [README_BEGIN, "", "Generated by `scripts/gtcrn_target_report.py` (`make gtcrn-bench`)"
           "; mean PESQ-wb over the five DNS3 pairs of ../shared/audio/dns3:", "",
           "| model | MMAC/s | PESQ-wb |", "|---|---|---|"]
    out += [f"| {name} | {mmacs:.0f} | {pesq:.3f} |" if mmacs else f"| {name} | - | {pesq:.3f} |"
            for name, mmacs, pesq, _ in points]
    out += ["", "| GTCRN, nsconv C, per 16 ms hop | instructions | front end | RAM bytes | "
            "flash bytes |", "|---|---|---|---|---|"]
    out += [f"| {r['core']} ({r['kernels_path']}) | {r['total_mean']:,} | "
            f"{r['frontend_mean']:,} | {r['ram_bytes']:,} | {r['flash']['flash_bytes']:,} |"
            for r in bench["results"]]
    return out + ["", *target_lines(bench), "", f"![quality against compute]({svg_path})", "",
                  README_END]


def replace_between(path: Path, begin: str, end: str, lines: list[str]) -> None:
    text = path.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"{path}: no {begin} ... {end} section")
    head, rest = text.split(begin, 1)
    path.write_text(head + "\n".join(lines) + rest.split(end, 1)[1])


def nsnet2_points(ev: dict) -> list[tuple[str, float, float, str]]:
    """The int8 exits of `nsconv evaluate dynamic-nsnet2 --engine tflm` (its JSON report)."""
    colours = ("lightblue", "cornflowerblue", "royalblue", "navy")
    rows = ev["by_engine"]["tflm"]
    return [(f"nsNet2 {r['name']} exit, int8", r["macs_per_second"] / 1e6, r["pesq_wb"],
             colours[k % len(colours)]) for k, r in enumerate(rows)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench", type=Path)
    ap.add_argument("eval", type=Path)
    ap.add_argument("--nsnet2", type=Path, default=Path("docs/gtcrn_nsnet2_dns3.json"))
    ap.add_argument("--doc", type=Path, default=Path("docs/gtcrn-target.md"))
    ap.add_argument("--svg", type=Path, default=Path("docs/gtcrn_quality_vs_macs.svg"))
    ap.add_argument("--readme", type=Path, default=Path("README.md"))
    a = ap.parse_args()
    bench, ev = json.loads(a.bench.read_text()), json.loads(a.eval.read_text())
    mmacs = GTCRN_MACS_PER_HOP * HOPS_PER_SECOND / 1e6
    m = ev["mean"]
    points = [("noisy", 0.0, m["noisy"]["pesq_wb"], "gray"),
              *nsnet2_points(json.loads(a.nsnet2.read_text())),
              ("GTCRN float (onnxruntime)", mmacs, m["float"]["pesq_wb"], "orange"),
              ("GTCRN int8/16x8, nsconv C", mmacs, m["quantized"]["pesq_wb"], "red")]
    a.svg.write_text(svg(points))
    replace_between(a.doc, BEGIN, END, render(bench, ev, a.svg.name))
    replace_between(a.readme, README_BEGIN, README_END,
                    readme_lines(bench, points, a.svg.as_posix()))
    print(f"wrote {a.doc}, {a.svg} and the GTCRN summary of {a.readme}")


if __name__ == "__main__":
    main()
