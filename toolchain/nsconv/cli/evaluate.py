# SPDX-License-Identifier: Apache-2.0
"""`nsconv evaluate`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nsconv import log
from nsconv.cli.base import json_option, main


def _table(report: dict) -> str:
    lines = []
    for eng, rows in report["by_engine"].items():
        for r in rows:
            lines.append(f"{eng:>5} {r['name']:<8} {r['macs_per_second'] / 1e6:7.1f} MMAC/s  "
                         f"PESQ-wb {r['pesq_wb']:.3f}  STOI {r['stoi']:.3f}  "
                         f"SI-SDR {r['si_sdr']:6.2f}  DNSMOS OVRL {r['dnsmos_ovrl']:.3f}")
    n = report["noisy"]
    lines.append(f"noisy input: PESQ-wb {n['pesq_wb']:.3f}  STOI {n['stoi']:.3f}  "
                 f"SI-SDR {n['si_sdr']:6.2f}  DNSMOS OVRL {n['dnsmos_ovrl']:.3f}")
    lines += [f"figure: {f}" for f in report["figures"]]
    if "vs_int8" in report:
        from nsconv.eval.formats import table

        lines += ["", table(report["vs_int8"])]
    return "\n".join(lines)


@main.command()
@click.argument("model")
@click.option("--engine", "engines", multiple=True,
              type=click.Choice(["float", "tflm", "c"]),
              help="Repeatable (default: float; tflm for an output directory).")
@click.option("--audio", type=click.Path(path_type=Path), required=True,
              help="Directory of *_clean.wav / *_noisy.wav pairs (e.g. tests/data of a checkout).")
@click.option("--figures", type=click.Path(path_type=Path), default=None,
              help="Directory for the PNG figures.")
@click.option("--no-dnsmos", is_flag=True, help="Skip DNSMOS (faster).")
@click.option("--reference", type=click.Path(path_type=Path), default=None,
              help="For an output directory MODEL: the all-int8 conversion to compare with "
                   "(default: MODEL's float model converted in int8, cached).")
@click.option("--no-compare", is_flag=True,
              help="For an output directory MODEL: no comparison with all-int8.")
@click.option("--onnx", type=click.Path(path_type=Path), default=None,
              help="For a GTCRN export MODEL: the float ONNX model it was exported from (the "
                   "reference, run by onnxruntime).")
@json_option
def evaluate(model: str, engines: tuple[str, ...], audio: Path, figures: Path | None,
             no_dnsmos: bool, reference: Path | None, no_compare: bool, onnx: Path | None,
             as_json: bool) -> None:
    """Per exit PESQ-wb, STOI, SI-SDR, DNSMOS, MACs/s and parameters on clean/noisy pairs.

    MODEL may be an `export`/`convert` output directory: its exits are evaluated with the
    weight formats it holds (int8, or the int8/int4 mix of `export --part`), and compared
    clip by clip with the all-int8 conversion of the same model (score deltas, RMS
    difference of the masks)."""
    from nsconv.eval.evaluate import evaluate as run
    from nsconv.eval.evaluate import report_json

    if _gtcrn(model, onnx, audio, no_dnsmos, as_json, engines=engines, figures=figures,
              reference=reference):
        return
    is_dir = Path(model).is_dir()
    if not is_dir and (reference is not None or no_compare):
        raise click.UsageError("--reference and --no-compare are for an output directory MODEL")
    default = ("tflm",) if is_dir else ("float",)
    report = run(model, audio, tuple(engines) or default, figures, dnsmos=not no_dnsmos,
                 progress=sys.stderr.isatty(), log=log.info,
                 compare=is_dir and not no_compare, reference=reference)
    click.echo(report_json(report).rstrip("\n") if as_json else _table(report))


def _gtcrn(model: str, onnx: Path | None, audio: Path, no_dnsmos: bool, as_json: bool,
           **nsnet2_only) -> bool:
    """Evaluate a GTCRN export (True), else leave MODEL to nsNet2's evaluate."""
    from nsconv.compiler.gtcrn_export import is_gtcrn_out

    if not is_gtcrn_out(Path(model)):
        if onnx is not None:
            raise click.UsageError("--onnx is for a GTCRN export MODEL")
        return False
    given = ["--" + k for k, v in nsnet2_only.items() if v]
    if given:
        raise click.UsageError(f"{', '.join(given)}: not for a GTCRN export")
    if onnx is None:
        raise click.UsageError("a GTCRN export needs --onnx (the float model, the reference)")
    from nsconv.cli.base import emit
    from nsconv.eval.gtcrn_eval import evaluate_gtcrn, table

    report = evaluate_gtcrn(Path(model), onnx, audio, dnsmos=not no_dnsmos, log=log.info)
    emit(as_json, report, table(report))
    return True
