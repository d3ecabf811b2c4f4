# SPDX-License-Identifier: Apache-2.0
"""`nsconv evaluate`."""

from __future__ import annotations

from pathlib import Path

import click

from nsconv.cli.base import main


@main.command()
@click.argument("model")
@click.option("--engine", "engines", multiple=True,
              type=click.Choice(["float", "tflm", "c"]), help="Repeatable (default: float).")
@click.option("--audio", type=click.Path(path_type=Path), required=True,
              help="Directory of *_clean.wav / *_noisy.wav pairs (e.g. tests/data of a checkout).")
@click.option("--figures", type=click.Path(path_type=Path), default=None,
              help="Directory for the PNG figures.")
@click.option("--no-dnsmos", is_flag=True, help="Skip DNSMOS (faster).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON only.")
def evaluate(model: str, engines: tuple[str, ...], audio: Path, figures: Path | None,
             no_dnsmos: bool, as_json: bool) -> None:
    """Per exit PESQ-wb, STOI, SI-SDR, DNSMOS, MACs/s and parameters on clean/noisy pairs."""
    from nsconv.eval.evaluate import evaluate as run
    from nsconv.eval.evaluate import report_json

    report = run(model, audio, tuple(engines) or ("float",), figures, dnsmos=not no_dnsmos,
                 progress=not as_json, log=(lambda *_: None) if as_json else click.echo)
    click.echo(report_json(report))
