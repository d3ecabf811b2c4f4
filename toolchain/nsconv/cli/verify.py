# SPDX-License-Identifier: Apache-2.0
"""`nsconv verify`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from nsconv import log
from nsconv.cli.base import EXIT_MISMATCH, json_option, main


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--frames", type=int, default=None,
              help="Frames per stream (default: all frames of the audio).")
@click.option("--audio", multiple=True, type=click.Path(path_type=Path),
              help="Real audio to stream (repeatable; default: the bundled clips).")
@click.option("--exit-schedule", "schedule", type=click.Choice(["fixed", "random"]),
              default="fixed", show_default=True)
@click.option("--sanitize", is_flag=True, help="Build the C with ASan/UBSan (host only).")
@click.option("--target", "targets", multiple=True, metavar="CORE",
              help="Verify OUT's firmware for CORE in QEMU instead of the host build "
                   "(repeatable; cortex-m4, cortex-m7, cortex-m55, ...).")
@json_option
def verify(out: Path, frames: int | None, audio: tuple[Path, ...], schedule: str,
           sanitize: bool, targets: tuple[str, ...], as_json: bool) -> None:
    """Generated C (or with --target, the firmware in QEMU) vs TFLM on every exit, every
    frame. Exit status 0 if all equal, 3 if not."""
    from nsconv.audio.wav import read_wav_any_rate

    for a in audio:
        read_wav_any_rate(a)  # the rate is checked against the model's front end later
    from nsconv.cli.gtcrn import gtcrn_verify

    if gtcrn_verify(out, frames, audio, sanitize, targets, as_json):
        return  # a GTCRN export (nsconv/cli/gtcrn.py)
    if targets:
        from nsconv.check.target_verify import verify_targets
        from nsconv.errors import NsconvError

        if sanitize:
            raise NsconvError("--sanitize is for the host build; it cannot go with --target")
        reports = verify_targets(out, list(targets), frames=frames, audio=list(audio) or None,
                                 schedule=schedule, log=log.info)
        ok = all(r.ok for r in reports)
        if as_json:
            click.echo(json.dumps({"ok": ok, "reports": [r.to_json() for r in reports]},
                                  indent=2))
        else:
            click.echo("\n\n".join(r.table() for r in reports))
    else:
        from nsconv.check.verify import verify as run

        report = run(out, frames=frames, audio=list(audio) or None, schedule=schedule,
                     sanitize=sanitize, log=log.info)
        ok = report.ok
        click.echo(report.dumps() if as_json else report.table())
    if not ok:
        if not as_json:
            log.info("verification FAILED: the C differs from TFLM (exit status 3)")
        sys.exit(EXIT_MISMATCH)
