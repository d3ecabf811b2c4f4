# SPDX-License-Identifier: Apache-2.0
"""nsn_gru_gates_s8 against TFLM on the host, sanitized (tests/gru_checks.py; the same checks
run on every board in tests/test_kernels_arm.py)."""

from __future__ import annotations

from gru_checks import (  # noqa: F401 -- collected and resolved in this module
    gru_models,
    test_gru_gates_match_tflm,
    test_gru_gates_reject_bad_arguments,
)
from test_kernels import harness  # noqa: F401 -- the sanitized host driver
