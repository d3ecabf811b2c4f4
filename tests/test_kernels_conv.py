# SPDX-License-Identifier: Apache-2.0
"""The convolution kernels (CONV_2D, DEPTHWISE_CONV_2D, MEAN) against TFLM on the host: the
checks of conv_checks.py with the portable path built into tests/kernel_harness/conv_harness.c
under AddressSanitizer and UndefinedBehaviorSanitizer, with the strict warnings (built once
per session for this module and tests/test_kernels_s16.py: conftest.host_conv_harness)."""

from __future__ import annotations

import pytest
from conv_checks import (  # noqa: F401 -- collected and resolved in this module
    CONV_HARNESS,
    INCLUDE,
    SOURCES,
    ConvHarness,
    conv_models,
    mean_models,
    test_conv_activation_matches_tflm,
    test_conv_bad_arguments,
    test_conv_matches_tflm,
    test_conv_quantization_sweep,
    test_conv_scratch_errors,
    test_conv_stuffed_matches_tflm,
    test_mean_matches_tflm,
    test_mean_quantization_sweep,
    test_mean_shapes_and_extremes_match_refops,
)


@pytest.fixture(scope="session")
def conv_harness(host_conv_harness: ConvHarness) -> ConvHarness:
    assert host_conv_harness.path() == "reference"
    return host_conv_harness
