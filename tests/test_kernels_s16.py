# SPDX-License-Identifier: Apache-2.0
"""int16-activation kernels against TFLM on the host (checks in s16_checks.py)."""

from __future__ import annotations

from s16_checks import (  # noqa: F401 -- collected and resolved in this module
    s16_models,
    test_refops_binary16_match_tflm,
    test_refops_conv16_match_tflm,
    test_refops_fc16_match_tflm,
    test_refops_leaky_relu_match_tflm,
    test_refops_mean16_match_tflm,
    test_refops_quantize_match_tflm,
    test_refops_rsqrt_match_tflm,
    test_refops_sigmoid_tanh16_match_tflm,
)
