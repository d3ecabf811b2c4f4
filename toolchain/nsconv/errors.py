# SPDX-License-Identifier: Apache-2.0
"""The one error type the CLI turns into a one-line message and exit status 1."""

from __future__ import annotations

import contextlib
from pathlib import Path


class NsconvError(Exception):
    """A user-facing failure: names the file (when there is one) and the problem."""

    def __init__(self, problem: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


@contextlib.contextmanager
def bad_model(what: str, path: str | Path, also: tuple[type[BaseException], ...] = ()):
    """Around a stage that reads a model file: the ValueError, KeyError or IndexError (or an
    exception type in `also`) a lower stage (quantization arithmetic, TFLite reader, TFLM...)
    raises on a model it cannot handle reaches the user as one NsconvError line naming the
    file, not as a traceback."""
    try:
        yield
    except NsconvError:
        raise
    except (ValueError, KeyError, IndexError, *also) as exc:
        detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise NsconvError(f"{what}: {' '.join(str(detail).split())}", path) from exc
