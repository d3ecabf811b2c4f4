# SPDX-License-Identifier: Apache-2.0
"""`nsconv run`, `nsconv bench`."""

from __future__ import annotations

from pathlib import Path

import click

from nsconv import log
from nsconv.cli.base import emit, json_option, main
from nsconv.target.firmware import DEFAULT_CORE, TARGETS


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.argument("in_wav", type=click.Path(path_type=Path))
@click.argument("out_wav", type=click.Path(path_type=Path))
@click.option("--exit", "exit_name", default=None,
              help="Exit to run (default: the model's default exit).")
@click.option("--schedule", default=None, help="Cyclic exit schedule instead: name[:n],...")
@click.option("--target", type=click.Choice(list(TARGETS)), default=None,
              help=f"Core (default: the one OUT was exported for, else {DEFAULT_CORE}, built "
                   "in a temporary directory).")
@click.option("--frames", type=int, default=None, help="Only the first N frames.")
@json_option
def run(out: Path, in_wav: Path, out_wav: Path, exit_name: str | None, schedule: str | None,
        target: str | None, frames: int | None, as_json: bool) -> None:
    """Build OUT's firmware, stream IN_WAV through it under QEMU, fetch OUT_WAV."""
    from nsconv.audio.wav import read_wav_any_rate
    from nsconv.target.qemu import run_on_target

    read_wav_any_rate(in_wav)  # the rate is checked against the model's front end later
    if _gtcrn(out, exit=exit_name, schedule=schedule):
        from nsconv.target.gtcrn_target import run_on_target as run_gtcrn

        g = run_gtcrn(out, in_wav, out_wav, target, frames, log=log.info)
        emit(as_json, g.to_json(), g.table())
        return
    r = run_on_target(out, in_wav, out_wav, exit_name, target, schedule=schedule, frames=frames,
                      log=log.info)
    emit(as_json, r.to_json(), r.table())


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--core", "cores", multiple=True, type=click.Choice(list(TARGETS)),
              help="Core to measure (repeatable; default: the cores OUT was exported for, "
                   "else all, built in a temporary directory).")
@click.option("--exit", "exits", multiple=True, help="Exit to measure (repeatable; default: all).")
@click.option("--frames", type=int, default=100, show_default=True, help="Frames per exit.")
@json_option
def bench(out: Path, cores: tuple[str, ...], exits: tuple[str, ...], frames: int,
          as_json: bool) -> None:
    """Instructions per frame per exit per core in QEMU (-icount), and ELF section sizes."""
    from nsconv.target import bench as b

    if _gtcrn(out, exit=exits):
        from nsconv.target import gtcrn_target as g

        report = g.bench(out, list(cores) or None, frames, log=log.info)
        emit(as_json, report, g.bench_table(report))
        return
    report = b.bench(out, list(cores) or None, list(exits) or None, frames, log=log.info)
    emit(as_json, report, b.table(report))


def _gtcrn(out: Path, **nsnet2_only) -> bool:
    """OUT is a GTCRN export (one network, no exits: the nsNet2-only options are refused)."""
    from nsconv.compiler.gtcrn_export import is_gtcrn_out
    from nsconv.errors import NsconvError

    if not is_gtcrn_out(out):
        return False
    given = [f"--{k}" for k, v in nsnet2_only.items() if v]
    if given:
        raise NsconvError(f"{', '.join(given)}: GTCRN has no exits", out)
    return True
