# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures: the real NSNet2 baseline, converted once per test session.

`make test` runs the suite on both cores with pytest-xdist (two worker processes). The costly
session fixtures (conversions by the real TFLite converter) are built once per run, not once per
worker: the first worker to ask builds into a folder both workers see, under a file lock, and
the other waits for it and reads the same files (`built_once`, `pickled_once`). Without xdist
they are built once per session as before. Tests only read these outputs; a test that writes
copies first (shutil.copytree), as before.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from gtcrn_paths import GTCRN_SIMPLE

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

T = TypeVar("T")


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of this test run that every xdist worker sees (the parent of the workers'
    own base folders), or this session's base folder without xdist."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str,
               build: Callable[[Path], None]) -> Path:
    """shared_root/name, made by build(folder) once per run: the first process to ask builds
    it while holding a lock, the others wait and reuse it. A build that failed leaves nothing
    marked done: the next process to ask builds again (and fails in its own test)."""
    root = shared_root(tmp_path_factory)
    folder, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            build(folder)
            done.touch()
    return folder


def pickled_once(tmp_path_factory: pytest.TempPathFactory, name: str,
                 make: Callable[[], T]) -> T:
    """make()'s value, computed once per run (built_once) and read back by every process."""

    def build(folder: Path) -> None:
        (folder / "value.pickle").write_bytes(pickle.dumps(make()))

    folder = built_once(tmp_path_factory, name, build)
    return pickle.loads((folder / "value.pickle").read_bytes())

DATA = Path(__file__).parent / "data"
PAIRS = ("0072", "0398", "0523", "p232_043", "p232_052", "p257_418")


@pytest.fixture(scope="session", autouse=True)
def _shared_folder(tmp_path_factory) -> None:
    """Tells oneop.shared where this run's processes share the converted one-op models."""
    os.environ["NSCONV_TEST_SHARED"] = str(shared_root(tmp_path_factory))  # oneop.SHARED_ENV


@pytest.fixture(scope="session")
def baseline_onnx() -> Path:
    from nsconv.model.assets import baseline_path

    return baseline_path()


@pytest.fixture(scope="session")
def baseline_spec(baseline_onnx):
    from nsconv.model.onnx_import import import_onnx

    return import_onnx(baseline_onnx)


@pytest.fixture(scope="session")
def baseline_out(tmp_path_factory, baseline_onnx) -> Path:
    """`nsconv convert nsnet2-baseline` output (tflite + manifest)."""
    from nsconv.quant.convert import convert

    return built_once(tmp_path_factory, "baseline", lambda d: convert(
        baseline_onnx, d / "out", log=lambda *_: None)) / "out"


@pytest.fixture(scope="session")
def baseline_float_enhanced(baseline_out) -> dict:
    """nsnet2-baseline's final exit, float engine, on each held-out noisy clip (PAIRS): shared
    by test_quality.py and test_evaluate.py."""
    from nsconv.audio.wav import read_wav
    from nsconv.check.engine import Enhancer

    enh = Enhancer(baseline_out, "final", "float")
    return {p: enh.enhance(read_wav(DATA / f"{p}_noisy.wav")) for p in PAIRS}


@pytest.fixture(scope="session")
def dynamic_out(tmp_path_factory, baseline_spec) -> Path:
    """A 4-exit Dynamic nsNet2 (baseline backbone, random heads), converted on the first
    bundled calibration clip (10 s of real speech; the heads are random, so its tests are about
    bits, exits and states: the default clips are baseline_out's)."""
    from nsconv.model.netspec import with_random_exits
    from nsconv.quant.convert import convert
    from nsconv.quant.quantize import calibration_clips

    def build(d: Path) -> None:
        model = d / "dynamic4.npz"
        with_random_exits(baseline_spec, seed=1).save(model)
        convert(model, d / "out", calibration_clips()[:1], log=lambda *_: None)

    return built_once(tmp_path_factory, "dynamic", build) / "out"


@pytest.fixture(scope="session")
def tiny_out(tmp_path_factory) -> Path:
    """The 4-exit tiny model of irmodels.py, converted."""
    from irmodels import build_tiny

    return built_once(tmp_path_factory, "tiny", build_tiny) / "tiny_out"


@pytest.fixture(scope="session")
def tiny_int4_out(tiny_out, tmp_path_factory) -> Path:
    """The tiny model converted as tiny_out (same clip) with gru1 and fc3 in int4 (GPTQ)."""
    from nsconv.quant.convert import convert
    from nsconv.quant.quantize import calibration_clips
    from nsconv.quant.weights import WeightsRequest

    return built_once(tmp_path_factory, "tiny_int4", lambda d: convert(
        tiny_out / "model.npz", d / "out", calibration_clips()[:1], log=lambda *_: None,
        weights=WeightsRequest.parse("gru1=int4,fc3=int4"))) / "out"


@pytest.fixture(scope="session")
def special_out(tmp_path_factory) -> Path:
    """The one-exit model of irmodels.py with the other ops the reader accepts."""
    from irmodels import build_special

    return built_once(tmp_path_factory, "special", build_special) / "special_out"


GTCRN_ONNX = GTCRN_SIMPLE  # bundled in tests/data/gtcrn


@pytest.fixture(scope="session")
def gtcrn_converted(tmp_path_factory):
    """GTCRN's compact core as export converts it (mixed: the input stage int16, the rest
    int8) by the real converter, calibrated on the first 48 frames of one package clip (enough
    for bit-exactness checks, not for quality): (QuantizedCore, calibration record)."""
    from nsconv.audio.wav import read_wav
    from nsconv.compiler.gtcrn_export import MODE
    from nsconv.model.gtcrn import load_gtcrn
    from nsconv.quant import gtcrn_quant as gq
    from nsconv.quant.quantize import calibration_clips

    if not GTCRN_ONNX.is_file():
        pytest.fail(f"{GTCRN_ONNX} missing")

    def make():
        model = load_gtcrn(GTCRN_ONNX)
        clip = calibration_clips()[-1]
        records = gq.record_values(model, [read_wav(clip)[: 48 * 256]])
        core = gq.convert_core(GTCRN_ONNX, mode=MODE, records=records, model=model)
        return core, {"clips": [clip.name], "frames": len(records), "mode": MODE}

    return pickled_once(tmp_path_factory, "gtcrn_converted", make)


@pytest.fixture(scope="session")
def host_conv_harness(tmp_path_factory):
    """tests/kernel_harness/conv_harness.c on the host, portable path, ASan/UBSan and the
    strict warnings: built once for tests/test_kernels_conv.py and tests/test_kernels_s16.py."""
    import subprocess

    from conv_checks import CONV_HARNESS, INCLUDE, SOURCES, ConvHarness
    from kernel_checks import WARNINGS

    exe = tmp_path_factory.mktemp("conv_harness") / "conv_harness"
    subprocess.run(
        ["gcc", *WARNINGS, "-O1", "-g", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all", "-I", str(INCLUDE), str(CONV_HARNESS),
         *map(str, SOURCES), "-o", str(exe)],
        check=True,
    )
    return ConvHarness(exe)


# --------------------------------------------------------------------------------------------
# Work units for pytest-xdist (`make test`: -n auto --dist loadscope --no-loadscope-reorder)
# --------------------------------------------------------------------------------------------

BOARD = re.compile(r"mps\d-an\d+")
# Modules of a minute or more, started first so that no long one is left for the end when
# the other worker is idle (the rest follow in collection order).
LONG_FIRST = ("test_cli_conventions.py", "test_evaluate.py", "test_firmware.py",
              "test_byom.py", "test_gtcrn_target.py", "test_robustness.py", "test_verify_target.py",
              "test_fit.py", "test_train.py", "test_gtcrn.py", "test_codegen_int4.py")


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1]


def work_unit(nodeid: str) -> str:
    """The unit a worker takes whole: the test's module (its module-scoped fixtures, exports
    and QEMU runs are made once), or for the board modules the module and the board (each
    board's harness is built by the worker running that board's tests)."""
    module, _, rest = nodeid.partition("::")
    board = BOARD.search(rest)
    return f"{module}:{board[0]}" if board else module


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """xdist's module-scope scheduling, with work_unit as the scope."""
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return WorkUnitScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long modules first (LONG_FIRST), each module's tests in their own order."""
    rank = {m: k for k, m in enumerate(LONG_FIRST)}
    items.sort(key=lambda i: rank.get(_module(i.nodeid), len(rank)))
