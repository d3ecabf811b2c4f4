# SPDX-License-Identifier: Apache-2.0
"""int16-activation kernels against TFLM on the host: the checks of s16_checks.py with the
portable path built into tests/kernel_harness/conv_harness.c under ASan/UBSan."""

from __future__ import annotations

import subprocess

import pytest
from conv_checks import CONV_HARNESS, INCLUDE, SOURCES, ConvHarness
from kernel_checks import WARNINGS
from s16_checks import (  # noqa: F401 -- collected and resolved in this module
    s16_models,
    test_binary16_match_tflm,
    test_conv16_bounds_match_refops,
    test_conv16_match_tflm,
    test_fc16_match_tflm,
    test_leaky16_extremes_match_refops,
    test_leaky_relu_match_tflm,
    test_mean16_match_tflm,
    test_quantize_match_tflm,
    test_requantize16_extremes_match_refops,
    test_rsqrt_match_tflm,
    test_sigmoid_tanh16_match_tflm,
)


@pytest.fixture(scope="session")
def conv_harness(tmp_path_factory: pytest.TempPathFactory) -> ConvHarness:
    exe = tmp_path_factory.mktemp("conv_harness_s16") / "conv_harness"
    subprocess.run(
        ["gcc", *WARNINGS, "-O1", "-g", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all", "-I", str(INCLUDE), str(CONV_HARNESS),
         *map(str, SOURCES), "-o", str(exe)],
        check=True,
    )
    return ConvHarness(exe)
