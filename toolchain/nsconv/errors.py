# SPDX-License-Identifier: Apache-2.0
"""The one error type the CLI turns into a one-line message and a non-zero exit."""

from __future__ import annotations

from pathlib import Path


class NsconvError(Exception):
    """A user-facing failure: names the file (when there is one) and the problem."""

    def __init__(self, problem: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)
