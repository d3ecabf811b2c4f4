# SPDX-License-Identifier: Apache-2.0
"""`nsconv run`, `nsconv bench`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nsconv.cli.base import main

CORES = ("cortex-m4", "cortex-m7", "cortex-m55")


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.argument("in_wav", type=click.Path(path_type=Path))
@click.argument("out_wav", type=click.Path(path_type=Path))
@click.option("--exit", "exit_name", default=None,
              help="Exit to run (default: the model's default exit).")
@click.option("--schedule", default=None, help="Cyclic exit schedule instead: name[:n],...")
@click.option("--target", type=click.Choice(CORES), default=None,
              help="Core (default: the one exported, else cortex-m55).")
@click.option("--frames", type=int, default=None, help="Only the first N frames.")
def run(out: Path, in_wav: Path, out_wav: Path, exit_name: str | None, schedule: str | None,
        target: str | None, frames: int | None) -> None:
    """Build OUT's firmware, stream IN_WAV through it under QEMU, fetch OUT_WAV."""
    from nsconv.audio.wav import read_wav_any_rate
    from nsconv.target.qemu import run_on_target

    read_wav_any_rate(in_wav)  # the rate is checked against the model's front end later
    r = run_on_target(out, in_wav, out_wav, exit_name, target, schedule=schedule, frames=frames,
                      command_line=" ".join(["nsconv"] + sys.argv[1:]), log=click.echo)
    click.echo(r.table())


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--core", "cores", multiple=True, type=click.Choice(CORES),
              help="Core to measure (repeatable; default: all three).")
@click.option("--exit", "exits", multiple=True, help="Exit to measure (repeatable; default: all).")
@click.option("--frames", type=int, default=100, show_default=True, help="Frames per exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON only.")
def bench(out: Path, cores: tuple[str, ...], exits: tuple[str, ...], frames: int,
          as_json: bool) -> None:
    """Instructions per frame per exit per core in QEMU (-icount), and ELF section sizes."""
    import json

    from nsconv.target import bench as b

    report = b.bench(out, list(cores) or None, list(exits) or None, frames,
                     log=None if as_json else click.echo)
    click.echo(json.dumps(report, indent=2) if as_json else b.table(report))
