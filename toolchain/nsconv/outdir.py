# SPDX-License-Identifier: Apache-2.0
"""Atomic output directories: OUT is either the previous complete output, or the new one.

Work happens in a hidden sibling directory; on success the old OUT is moved aside and the new
one renamed into place (two renames on one file system), then the old one is deleted. On any
failure, or if the process is killed, the sibling is left behind under a `.nsconv-tmp-` name
(removed on failure when possible) and OUT is untouched. A run killed between the two renames
leaves the previous OUT under a `.nsconv-old-` name: the next run for OUT puts it back first.

Test hook: with $NSCONV_TEST_KILL_AT set to a stage ("work": the work directory exists, empty;
"written": the new output is complete in it; "swapped": the old OUT has been moved aside), the
process kills itself with SIGKILL at that point, so a test can kill at each point for certain.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from pathlib import Path

from nsconv.errors import NsconvError

MARKER = "manifest.json"
MARKERS = (MARKER, "gtcrn.json")  # an nsNet2-family output, a GTCRN export
KILL_ENV = "NSCONV_TEST_KILL_AT"


def _test_kill(stage: str) -> None:
    if os.environ.get(KILL_ENV) == stage:
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def atomic_output_dir(out: Path):
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise NsconvError("exists and is not a directory", out)
    if out.exists() and any(out.iterdir()) and not any((out / m).exists() for m in MARKERS):
        raise NsconvError("exists, is not empty and is not an nsconv output; refusing to "
                          "replace it", out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".nsconv-tmp-{out.name}-{os.getpid()}-", dir=out.parent))
    try:
        _test_kill("work")
        yield tmp
        _test_kill("written")
        old = None
        if out.exists():
            old = out.parent / f".nsconv-old-{out.name}-{os.getpid()}"
            os.replace(out, old)
            _test_kill("swapped")
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _remove_stale(out: Path) -> None:
    """Work directories left by killed runs for this OUT (their process is gone); a previous
    OUT moved aside by a run killed before it put the new one in place is restored."""
    for kind in ("old", "tmp"):
        for d in sorted(out.parent.glob(f".nsconv-{kind}-{out.name}-*")):
            pid = d.name[len(f".nsconv-{kind}-{out.name}-"):].split("-")[0]
            if pid.isdigit() and not _alive(int(pid)):
                if kind == "old" and not out.exists() and any((d / m).exists() for m in MARKERS):
                    os.replace(d, out)
                else:
                    shutil.rmtree(d, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
