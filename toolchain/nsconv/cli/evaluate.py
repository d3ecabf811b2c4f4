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
    return "\n".join(lines)


@main.command()
@click.argument("model")
@click.option("--engine", "engines", multiple=True,
              type=click.Choice(["float", "tflm", "c"]), help="Repeatable (default: float).")
@click.option("--audio", type=click.Path(path_type=Path), required=True,
              help="Directory of *_clean.wav / *_noisy.wav pairs (e.g. tests/data of a checkout).")
@click.option("--figures", type=click.Path(path_type=Path), default=None,
              help="Directory for the PNG figures.")
@click.option("--no-dnsmos", is_flag=True, help="Skip DNSMOS (faster).")
@json_option
def evaluate(model: str, engines: tuple[str, ...], audio: Path, figures: Path | None,
             no_dnsmos: bool, as_json: bool) -> None:
    """Per exit PESQ-wb, STOI, SI-SDR, DNSMOS, MACs/s and parameters on clean/noisy pairs."""
    from nsconv.eval.evaluate import evaluate as run
    from nsconv.eval.evaluate import report_json

    report = run(model, audio, tuple(engines) or ("float",), figures, dnsmos=not no_dnsmos,
                 progress=sys.stderr.isatty(), log=log.info)
    click.echo(report_json(report).rstrip("\n") if as_json else _table(report))
