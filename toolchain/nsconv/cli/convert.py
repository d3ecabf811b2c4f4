# SPDX-License-Identifier: Apache-2.0
"""`nsconv convert`, `nsconv export`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nsconv.cli.base import main
from nsconv.target.firmware import HOST
from nsconv.target.firmware import TARGETS as CORES
from nsconv.target.parts import PARTS

TARGETS = (HOST, *CORES)


@main.command()
@click.argument("model")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path),
              help="Output directory (replaced atomically).")
@click.option("--calib", multiple=True, type=click.Path(path_type=Path),
              help="Calibration wav (repeatable; default: the bundled real noisy clips).")
def convert(model: str, out: Path, calib: tuple[Path, ...]) -> None:
    """Per-exit int8 TFLite models of MODEL (ONNX, nsconv .npz, or a built-in name)."""
    from nsconv.audio.wav import read_wav
    from nsconv.quant.convert import convert as run

    for c in calib:
        read_wav(c)  # refuse bad calibration audio before any work
    m = run(model, out, list(calib) or None)
    click.echo(f"wrote {out}/manifest.json and {len(m.exits)} int8 model(s)")


@main.command()
@click.argument("model")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path),
              help="Output directory (replaced atomically).")
@click.option("--target", type=click.Choice(TARGETS), default=None,
              help="host: OUT/c only; a core: also a firmware project in OUT/firmware/<core> "
                   "(default: host, or the core of --part).")
@click.option("--calib", multiple=True, type=click.Path(path_type=Path),
              help="Calibration wav (repeatable; default: the bundled real noisy clips).")
@click.option("--exits", "exit_list", default=None,
              help="Keep only these exits (comma-separated, e.g. gru1,gru2): the constants and "
                   "ops only other exits use are not emitted.")
@click.option("--part", "part_name", type=click.Choice([p.name for p in PARTS]), default=None,
              help="Keep the exits up to the deepest that fits this part (measured as by "
                   "`nsconv fit`), unless --exits is given; the target defaults to its core.")
def export(model: str, out: Path, target: str | None, calib: tuple[Path, ...],
           exit_list: str | None, part_name: str | None) -> None:
    """Convert MODEL and generate its early-exit C (OUT/tflite, OUT/c, manifest.json)."""
    from nsconv.audio.wav import read_wav
    from nsconv.compiler.codegen import generate
    from nsconv.compiler.graph_merge import keep_exits, parse_exit_names
    from nsconv.outdir import atomic_output_dir
    from nsconv.quant.convert import convert_into

    for c in calib:
        read_wav(c)
    names = parse_exit_names(exit_list) if exit_list is not None else None
    part = None
    if part_name is not None:
        from nsconv.target.parts import part as find_part

        part = find_part(part_name)
        target = target or part.core
    target = target or HOST
    command = " ".join(["nsconv"] + sys.argv[1:])
    dropped: tuple[str, ...] = ()
    with atomic_output_dir(out) as tmp:
        convert_into(model, tmp, list(calib) or None)
        if names is None and part is not None:
            names, dropped = _fitting_exits(tmp, part, model)
        if names is not None:
            dropped = keep_exits(tmp, names)
        gen = generate(tmp, command_line=command)
        if target != HOST:
            from nsconv.target.firmware import export_firmware

            export_firmware(tmp, target, command_line=command)
    click.echo(gen.summary().replace(str(tmp), str(out)))
    if dropped:
        click.echo(f"dropped exits {', '.join(dropped)}" +
                   (f" (they do not fit {part.name})" if part is not None and exit_list is None
                    else ""))
    click.echo(f"wrote {out}/c" + (f" and {out}/firmware/{target}" if target != HOST else ""))


def _fitting_exits(converted: Path, part, model: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The exits up to the deepest that fits the part, measured as `nsconv fit MODEL` does
    and in its work directory (out/fit/<model>), so either reuses the other's measurements."""
    from nsconv.target.fit import deepest_fitting_exits, default_work_dir, fit

    report = fit(converted, part, default_work_dir(model),
                 log=lambda msg: click.echo(msg, err=True))
    click.echo(report.table(), err=True)
    return deepest_fitting_exits(report)
