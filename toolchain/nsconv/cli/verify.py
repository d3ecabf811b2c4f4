# SPDX-License-Identifier: Apache-2.0
"""`nsconv verify`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nsconv.cli.base import main


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--frames", type=int, default=None,
              help="Frames per stream (default: all frames of the audio).")
@click.option("--audio", multiple=True, type=click.Path(path_type=Path),
              help="Real audio to stream (repeatable; default: the bundled clips).")
@click.option("--exit-schedule", "schedule", type=click.Choice(["fixed", "random"]),
              default="fixed", show_default=True)
@click.option("--sanitize", is_flag=True, help="Build the C with ASan/UBSan.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(out: Path, frames: int | None, audio: tuple[Path, ...], schedule: str,
           sanitize: bool, as_json: bool) -> None:
    """Generated C vs TFLM on every exit, every frame; exit status 0 only if all equal."""
    from nsconv.audio.wav import read_wav_any_rate
    from nsconv.check.verify import verify as run

    for a in audio:
        read_wav_any_rate(a)  # the rate is checked against the model's front end later
    report = run(out, frames=frames, audio=list(audio) or None, schedule=schedule,
                 sanitize=sanitize, log=None if as_json else click.echo)
    click.echo(report.dumps() if as_json else report.table())
    if not report.ok:
        sys.exit(1)
