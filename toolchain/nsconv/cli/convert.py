# SPDX-License-Identifier: Apache-2.0
"""`nsconv convert`, `nsconv export`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nsconv.cli.base import main

TARGETS = ("host", "cortex-m4", "cortex-m7", "cortex-m55")


@main.command()
@click.argument("model")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path),
              help="Output directory (replaced atomically).")
@click.option("--calib", multiple=True, type=click.Path(path_type=Path),
              help="Calibration wav (repeatable; default: the bundled real noisy clips).")
@click.option("--default-exit", "default_exit", default=None,
              help="Exit that enhance/run use without --exit (default: the deepest, most MACs).")
@click.option("--frontend", "frontend", default=None, metavar="KEYS|FILE.json",
              help="The model's STFT front end, e.g. rate=16000,win=512,hop=256,n_fft=512,"
                   "window=sqrt-hann-periodic (any subset; the rest default to the DNS NSNet2 "
                   "front end), or a JSON file of the same keys. Default: the model's own.")
def convert(model: str, out: Path, calib: tuple[Path, ...], frontend: str | None,
            default_exit: str | None) -> None:
    """Per-exit int8 TFLite models of MODEL (ONNX, nsconv .npz, or a built-in name)."""
    from nsconv.audio.spec import FrontendSpec
    from nsconv.audio.wav import read_wav_any_rate
    from nsconv.quant.convert import convert as run

    fe = FrontendSpec.parse(frontend) if frontend is not None else None
    for c in calib:
        read_wav_any_rate(c)  # refuse bad calibration audio before any work
    m = run(model, out, list(calib) or None, frontend=fe,
             default_exit=default_exit)
    click.echo(f"wrote {out}/manifest.json and {len(m.exits)} int8 model(s)")


@main.command()
@click.argument("model")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path),
              help="Output directory (replaced atomically).")
@click.option("--target", type=click.Choice(TARGETS), default="host", show_default=True,
              help="host: OUT/c only; a core: also a firmware project in OUT/firmware/<core>.")
@click.option("--calib", multiple=True, type=click.Path(path_type=Path),
              help="Calibration wav (repeatable; default: the bundled real noisy clips).")
@click.option("--default-exit", "default_exit", default=None,
              help="Exit that enhance/run use without --exit (default: the deepest, most MACs).")
@click.option("--frontend", "frontend", default=None, metavar="KEYS|FILE.json",
              help="The model's STFT front end, e.g. rate=16000,win=512,hop=256,n_fft=512,"
                   "window=sqrt-hann-periodic (any subset; the rest default to the DNS NSNet2 "
                   "front end), or a JSON file of the same keys. Default: the model's own.")
def export(model: str, out: Path, target: str, calib: tuple[Path, ...],
           frontend: str | None, default_exit: str | None) -> None:
    """Convert MODEL and generate its early-exit C (OUT/tflite, OUT/c, manifest.json)."""
    from nsconv.audio.spec import FrontendSpec
    from nsconv.audio.wav import read_wav_any_rate
    from nsconv.compiler.codegen import generate
    from nsconv.outdir import atomic_output_dir
    from nsconv.quant.convert import convert_into

    fe = FrontendSpec.parse(frontend) if frontend is not None else None
    for c in calib:
        read_wav_any_rate(c)
    command = " ".join(["nsconv"] + sys.argv[1:])
    with atomic_output_dir(out) as tmp:
        convert_into(model, tmp, list(calib) or None, frontend=fe,
                     default_exit=default_exit)
        gen = generate(tmp, command_line=command)
        if target != "host":
            from nsconv.target.firmware import export_firmware

            export_firmware(tmp, target, command_line=command)
    click.echo(gen.summary().replace(str(tmp), str(out)))
    click.echo(f"wrote {out}/c" + (f" and {out}/firmware/{target}" if target != "host" else ""))
