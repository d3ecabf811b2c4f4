# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures: the real NSNet2 baseline, converted once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gtcrn_paths import GTCRN_SIMPLE

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DATA = Path(__file__).parent / "data"
PAIRS = ("0072", "0398", "0523", "p232_043", "p232_052", "p257_418")


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

    out = tmp_path_factory.mktemp("baseline") / "out"
    convert(baseline_onnx, out, log=lambda *_: None)
    return out


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
    """A 4-exit Dynamic nsNet2 (baseline backbone, random heads), converted."""
    from nsconv.model.netspec import with_random_exits
    from nsconv.quant.convert import convert

    d = tmp_path_factory.mktemp("dynamic")
    model = d / "dynamic4.npz"
    with_random_exits(baseline_spec, seed=1).save(model)
    convert(model, d / "out", log=lambda *_: None)
    return d / "out"


@pytest.fixture(scope="session")
def tiny_out(tmp_path_factory) -> Path:
    """The 4-exit tiny model of irmodels.py, converted."""
    from irmodels import build_tiny

    return build_tiny(tmp_path_factory.getbasetemp() / "nsconv_models")


@pytest.fixture(scope="session")
def tiny_int4_out(tiny_out, tmp_path_factory) -> Path:
    """The tiny model converted as tiny_out (same clip) with gru1 and fc3 in int4 (GPTQ)."""
    from nsconv.quant.convert import convert
    from nsconv.quant.quantize import calibration_clips
    from nsconv.quant.weights import WeightsRequest

    out = tmp_path_factory.mktemp("tiny_int4") / "out"
    convert(tiny_out / "model.npz", out, calibration_clips()[:1], log=lambda *_: None,
            weights=WeightsRequest.parse("gru1=int4,fc3=int4"))
    return out


@pytest.fixture(scope="session")
def special_out(tmp_path_factory) -> Path:
    """The one-exit model of irmodels.py with the other ops the reader accepts."""
    from irmodels import build_special

    return build_special(tmp_path_factory.getbasetemp() / "nsconv_models")


GTCRN_ONNX = GTCRN_SIMPLE  # bundled in tests/data/gtcrn


@pytest.fixture(scope="session")
def gtcrn_converted():
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
    model = load_gtcrn(GTCRN_ONNX)
    clip = calibration_clips()[-1]
    records = gq.record_values(model, [read_wav(clip)[: 48 * 256]])
    core = gq.convert_core(GTCRN_ONNX, mode=MODE, records=records, model=model)
    return core, {"clips": [clip.name], "frames": len(records), "mode": MODE}


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
