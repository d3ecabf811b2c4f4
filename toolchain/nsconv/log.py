# SPDX-License-Identifier: Apache-2.0
"""What nsconv says on stderr, and what it keeps the libraries under it from saying.

The command-line conventions (README, "Command line"): results on stdout, everything else on
stderr, each line of it prefixed `nsconv: ` so a reader (or a test) can tell nsconv's own
lines apart; progress bars (tqdm) on stderr, shown only on a terminal.

TensorFlow, the TFLite converter and the TFLM interpreter write to the process's file
descriptors 1 and 2 from C++ (absl's "All log messages before absl::InitializeLog()" block,
oneDNN and "Could not find cuda drivers" notices, the converter's `fully_quantize: 0,
inference_type: 6, ...` line); no environment variable of TensorFlow 2.21 silences all of
them (TF_CPP_MIN_LOG_LEVEL no longer reaches the absl block, and TF_ENABLE_ONEDNN_OPTS=0
would change the numerics). `quiet_native_output` therefore points descriptors 1 and 2 at an
unnamed temporary file for the life of the process, keeps Python's sys.stdout / sys.stderr on
the real ones, and at exit copies what the native code wrote to stderr, minus the known
chatter (NOISE). A line not recognised as chatter is kept, so real native errors still show.
"""

from __future__ import annotations

import atexit
import io
import logging
import os
import re
import sys
import tempfile
import warnings

PREFIX = "nsconv: "

# Native lines that say nothing a user of nsconv can act on.
NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:.]+\s+\d+ \S+:\d+\] .*"  # absl/TSL log lines below FATAL
    r"|fully_quantize: \d+, inference_type: \d+, .*"  # the TFLite converter's settings
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate "
    r"compiler flags\."  # second line of absl's CPU-feature notice
    r"|\s*)$")

_installed = False


def info(message: str) -> None:
    """One log message (may span lines) on stderr, each line prefixed `nsconv: `."""
    for line in str(message).splitlines() or [""]:
        print(PREFIX + line, file=sys.stderr, flush=True)


def progress(iterable=None, desc: str = "", total: int | None = None, enabled: bool = True):
    """A tqdm bar on stderr over `iterable` (or of `total` steps); drawn only when stderr is
    a terminal (tqdm's disable=None), so logs and pipes get no bar lines."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=f"nsconv: {desc}" if desc else "nsconv",
                leave=False, disable=None if enabled else True, file=sys.stderr,
                dynamic_ncols=True)


def quiet_libraries() -> None:
    """TensorFlow's, absl's and Keras' Python-level logging and warnings off (they would
    otherwise reach stderr through Python, around the native filter)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # what TensorFlow still honours
    for name in ("tensorflow", "absl", "keras", "h5py", "onnx2tf", "tflite_micro"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def quiet_native_output() -> None:
    """Route native writes to descriptors 1 and 2 through the NOISE filter (see the module
    docstring). For the command-line entry point only: it takes over the process's stdio."""
    global _installed
    if _installed or sys.stdout is not sys.__stdout__ or sys.stderr is not sys.__stderr__:
        return  # already done, or an embedding (a test runner, click's CliRunner) owns stdio
    _installed = True
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    real_out, real_err = os.dup(1), os.dup(2)
    sink = tempfile.TemporaryFile()
    os.dup2(sink.fileno(), 1)
    os.dup2(sink.fileno(), 2)
    sys.stdout = _text(real_out, sys.stdout)
    sys.stderr = _text(real_err, sys.stderr)
    atexit.register(_release, sink, real_out, real_err)


def _text(fd: int, like) -> io.TextIOWrapper:
    return io.TextIOWrapper(open(fd, "wb", buffering=0, closefd=False),  # noqa: SIM115
                            encoding=getattr(like, "encoding", None) or "utf-8",
                            errors=getattr(like, "errors", None) or "strict",
                            line_buffering=True, write_through=True)


def _release(sink, real_out: int, real_err: int) -> None:
    """At exit: descriptors 1 and 2 back, and the native lines that are not NOISE on stderr."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os.dup2(real_out, 1)
    os.dup2(real_err, 2)
    sink.seek(0)
    kept = [ln for ln in sink.read().decode(errors="replace").splitlines()
            if not NOISE.match(ln)]
    sink.close()
    if kept:
        os.write(real_err, ("\n".join(kept) + "\n").encode())
