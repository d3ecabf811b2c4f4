# SPDX-License-Identifier: Apache-2.0
"""The `nsconv` command line: one module per command (or pair of related commands), each
registering itself on the group in base.py."""

from nsconv.cli import convert, enhance, evaluate, fit, run, train, verify  # noqa: F401  (registers)
from nsconv.cli.base import main

__all__ = ["main"]
