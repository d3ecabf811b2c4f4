# SPDX-License-Identifier: Apache-2.0
"""The convolution kernels (CONV_2D, DEPTHWISE_CONV_2D, MEAN) against TFLM on the host: the
checks of conv_checks.py with the portable path built into tests/kernel_harness/conv_harness.c
under AddressSanitizer and UndefinedBehaviorSanitizer, with the strict warnings."""

from __future__ import annotations

import subprocess

import pytest
from conv_checks import (  # noqa: F401 -- collected and resolved in this module
    CONV_HARNESS,
    INCLUDE,
    SOURCES,
    ConvHarness,
    conv_models,
    mean_models,
    test_conv_bad_arguments,
    test_conv_matches_tflm,
    test_conv_quantization_sweep,
    test_conv_scratch_errors,
    test_mean_matches_tflm,
    test_mean_quantization_sweep,
    test_mean_shapes_and_extremes_match_refops,
)
from kernel_checks import WARNINGS


@pytest.fixture(scope="session")
def conv_harness(tmp_path_factory: pytest.TempPathFactory) -> ConvHarness:
    exe = tmp_path_factory.mktemp("conv_harness") / "conv_harness"
    subprocess.run(
        ["gcc", *WARNINGS, "-O1", "-g", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all", "-I", str(INCLUDE), str(CONV_HARNESS),
         *map(str, SOURCES), "-o", str(exe)],
        check=True,
    )
    h = ConvHarness(exe)
    assert h.path() == "reference"
    return h
