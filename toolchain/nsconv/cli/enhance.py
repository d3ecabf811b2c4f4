# SPDX-License-Identifier: Apache-2.0
"""`nsconv enhance`."""

from __future__ import annotations

from pathlib import Path

import click

from nsconv.cli.base import emit, json_option, main
from nsconv.errors import NsconvError


@main.command()
@click.argument("model")
@click.argument("in_wav", type=click.Path(path_type=Path))
@click.argument("out_wav", type=click.Path(path_type=Path))
@click.option("--exit", "exit_name", default=None,
              help="Exit to run (default: the model's default exit).")
@click.option("--engine", type=click.Choice(["float", "tflm"]), default="tflm", show_default=True)
@click.option("--frontend", default=None, metavar="KEYS|FILE.json",
              help="The model's front end when MODEL does not carry it (as for convert).")
@json_option
def enhance(model: str, in_wav: Path, out_wav: Path, exit_name: str | None, engine: str,
            frontend: str | None, as_json: bool) -> None:
    """Denoise IN_WAV (mono, at the model's rate: 16 kHz by default) into OUT_WAV with one
    exit of MODEL."""
    from nsconv.audio.spec import FrontendSpec
    from nsconv.audio.wav import read_wav, read_wav_any_rate, write_wav
    from nsconv.check.engine import Enhancer

    fe = FrontendSpec.parse(frontend) if frontend is not None else None
    read_wav_any_rate(in_wav)  # a broken file is refused before the model is loaded
    if out_wav.parent and not out_wav.parent.exists():
        raise NsconvError("output directory does not exist", out_wav.parent)
    enh = Enhancer(model, exit_name, engine, fe)
    x = read_wav(in_wav, enh.frontend)  # the model's rate
    y = enh.enhance(x)
    tmp = out_wav.with_name(f".{out_wav.name}.part")
    write_wav(tmp, y, enh.frontend.rate)
    tmp.replace(out_wav)
    seconds = len(y) / enh.frontend.rate
    emit(as_json, {"out_wav": str(out_wav), "seconds": round(seconds, 3),
                   "samples": len(y), "exit": enh.exit_name, "engine": engine},
         f"{out_wav}: {seconds:.2f} s, exit {enh.exit_name}, engine {engine}")
