# SPDX-License-Identifier: Apache-2.0
"""The `nsconv` command line."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .errors import NsconvError


class _Group(click.Group):
    """Turns NsconvError into `nsconv: error: FILE: problem` and exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NsconvError as exc:
            click.echo(f"nsconv: error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(package_name="nsconv")
def main() -> None:
    """Dynamic nsNet2 noise suppression, from trained model to bit-exact Cortex-M C."""


@main.command()
@click.argument("model")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path),
              help="Output directory (replaced atomically).")
@click.option("--calib", multiple=True, type=click.Path(path_type=Path),
              help="Calibration wav (repeatable; default: the bundled real noisy clips).")
def convert(model: str, out: Path, calib: tuple[Path, ...]) -> None:
    """Per-exit int8 TFLite models of MODEL (ONNX, nsconv .npz, or a built-in name)."""
    from .audio import read_wav
    from .convert import convert as run

    for c in calib:
        read_wav(c)  # refuse bad calibration audio before any work
    m = run(model, out, list(calib) or None)
    click.echo(f"wrote {out}/manifest.json and {len(m.exits)} int8 model(s)")


@main.command()
@click.argument("model")
@click.argument("in_wav", type=click.Path(path_type=Path))
@click.argument("out_wav", type=click.Path(path_type=Path))
@click.option("--exit", "exit_name", default=None, help="Exit to run (default: the last).")
@click.option("--engine", type=click.Choice(["float", "tflm"]), default="tflm", show_default=True)
def enhance(model: str, in_wav: Path, out_wav: Path, exit_name: str | None, engine: str) -> None:
    """Denoise IN_WAV (16 kHz mono) into OUT_WAV with one exit of MODEL."""
    from .audio import read_wav, write_wav
    from .engine import Enhancer

    x = read_wav(in_wav)
    if out_wav.parent and not out_wav.parent.exists():
        raise NsconvError("output directory does not exist", out_wav.parent)
    enh = Enhancer(model, exit_name, engine)
    y = enh.enhance(x)
    tmp = out_wav.with_name(f".{out_wav.name}.part")
    write_wav(tmp, y)
    tmp.replace(out_wav)
    click.echo(f"{out_wav}: {len(y) / 16000:.2f} s, exit {enh.exit_name}, engine {engine}")


if __name__ == "__main__":
    main()
