# SPDX-License-Identifier: Apache-2.0
"""int16-activation kernels against TFLM on the host: the checks of s16_checks.py with the
portable path built into tests/kernel_harness/conv_harness.c under ASan/UBSan."""

from __future__ import annotations

import pytest
from conv_checks import ConvHarness
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
def conv_harness(host_conv_harness: ConvHarness) -> ConvHarness:
    return host_conv_harness  # the ASan/UBSan build of tests/test_kernels_conv.py
