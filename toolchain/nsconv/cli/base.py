# SPDX-License-Identifier: Apache-2.0
"""The `nsconv` command group: error handling and the options every command shares."""

from __future__ import annotations

import sys

import click

from nsconv.errors import NsconvError


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
    import warnings

    # TensorFlow's deprecation and converter warnings are not the user's to act on.
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
