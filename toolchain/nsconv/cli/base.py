# SPDX-License-Identifier: Apache-2.0
"""The `nsconv` command group: conventions every command follows.

Results on stdout (with `--json`: one JSON object and nothing else); logs, progress bars and
errors on stderr, each line prefixed `nsconv: ` (nsconv.log). Exit status: 0 ok, 1 bad input
(an NsconvError, reported in one line), 2 usage (click's own), 3 verification mismatch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from nsconv import log
from nsconv.errors import NsconvError
from nsconv.model.assets import sha256_file

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_USAGE = 2  # click.UsageError.exit_code
EXIT_MISMATCH = 3


class _Group(click.Group):
    """Turns NsconvError into `nsconv: error: FILE: problem` and exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NsconvError as exc:
            click.echo(f"nsconv: error: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)


@click.group(cls=_Group)
@click.version_option(package_name="nsconv")
def main() -> None:
    """Dynamic nsNet2 noise suppression, from trained model to bit-exact Cortex-M C.

    Results go to stdout (--json: one JSON object), logs and progress to stderr. Exit status:
    0 ok, 1 bad input, 2 usage error, 3 verification mismatch."""
    log.quiet_libraries()
    log.quiet_native_output()


def json_option(f):
    return click.option("--json", "as_json", is_flag=True,
                        help="Print the result as one JSON object on stdout, nothing else.")(f)


def emit(as_json: bool, data: dict, text: str) -> None:
    """The command's result on stdout: `data` as JSON, or `text` for a reader."""
    click.echo(json.dumps(data, indent=2, allow_nan=False) if as_json else text)


def provenance_command(command: str, model: str, *options: str,
                       calib: tuple[Path, ...] = ()) -> str:
    """The command line recorded in generated files: no paths, so the same model and options
    give the same bytes in any folder. A model file is named by its file name (its sha256 is
    recorded beside), a calibration clip by name and sha256; the output folder is left out."""
    model_word = Path(model).name if Path(model).exists() else model
    words = ["nsconv", command, model_word, *options]
    for c in calib:
        words += ["--calib", f"{Path(c).name}@sha256:{sha256_file(Path(c))}"]
    return " ".join(words)
