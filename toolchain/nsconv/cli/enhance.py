# SPDX-License-Identifier: Apache-2.0
"""`nsconv enhance`."""

from __future__ import annotations

from pathlib import Path

import click

from nsconv.cli.base import main
from nsconv.errors import NsconvError


@main.command()
@click.argument("model")
@click.argument("in_wav", type=click.Path(path_type=Path))
@click.argument("out_wav", type=click.Path(path_type=Path))
@click.option("--exit", "exit_name", default=None,
              help="Exit to run (default: the model's default exit).")
@click.option("--engine", type=click.Choice(["float", "tflm"]), default="tflm", show_default=True)
def enhance(model: str, in_wav: Path, out_wav: Path, exit_name: str | None, engine: str) -> None:
    """Denoise IN_WAV (16 kHz mono) into OUT_WAV with one exit of MODEL."""
    from nsconv.audio.wav import read_wav, write_wav
    from nsconv.check.engine import Enhancer

    x = read_wav(in_wav)
    if out_wav.parent and not out_wav.parent.exists():
        raise NsconvError("output directory does not exist", out_wav.parent)
    enh = Enhancer(model, exit_name, engine)
    y = enh.enhance(x)
    tmp = out_wav.with_name(f".{out_wav.name}.part")
    write_wav(tmp, y)
    tmp.replace(out_wav)
    click.echo(f"{out_wav}: {len(y) / 16000:.2f} s, exit {enh.exit_name}, engine {engine}")
