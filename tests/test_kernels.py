# SPDX-License-Identifier: Apache-2.0
"""The C kernels (firmware/kernels) and the reference ops against TFLM, value for value, on
the host: the checks of kernel_checks.py (see its docstring) with the kernels built into a test
driver under AddressSanitizer and UndefinedBehaviorSanitizer (tests/kernel_harness/harness.c).
"""

from __future__ import annotations

import subprocess

import pytest
from kernel_checks import (  # noqa: F401 -- collected and resolved in this module
    HARNESS,
    INCLUDE,
    SOURCES,
    WARNINGS,
    Harness,
    binary_models,
    fc_models,
    fcb_models,
    grid_models,
    requantize_base,
    test_elementwise_exhaustive_under_random_quantizations,
    test_elementwise_matches_tflm,
    test_fc_batch_arguments_and_scratch,
    test_fc_batch_matches_tflm,
    test_fc_batch_multi_arguments,
    test_fc_batch_multi_matches_tflm,
    test_fc_batch_quantization_sweep,
    test_fc_short_or_misaligned_scratch_is_an_error,
    test_fixed_point_primitives,
    test_fully_connected_matches_tflm,
    test_fully_connected_quantization_sweep,
    test_kernels_compile_without_warnings,
    test_kernels_reject_bad_arguments,
    test_lut_matches_tflm,
    test_lut_tables_under_random_quantizations,
    test_one_minus_z_matches_tflm,
    test_per_tensor_fc_scale_product_is_double,
    test_quantize_multiplier_edges,
    test_requantize_helper_matches_qmath,
    test_requantize_matches_tflm,
    test_round_half_away_from_zero,
    test_scale_ratios_are_double,
    unary_models,
)
from kernel_checks_s4 import (  # noqa: F401 -- the s4 kernel's checks, this module's harness
    s4_models,
    test_fc_s4_extreme_accumulators,
    test_fc_s4_matches_tflm,
    test_fc_s4_scratch_and_arguments,
    test_fc_s4_shapes_match_qmath,
)

_BUILT: list[Harness] = []  # one build per session, also for modules importing this fixture


@pytest.fixture(scope="session")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Harness:
    if not _BUILT:
        exe = tmp_path_factory.mktemp("kernel_harness") / "harness"
        subprocess.run(
            [
                "gcc",
                *WARNINGS,
                "-O1",
                "-g",
                "-fsanitize=address,undefined",
                "-fno-sanitize-recover=all",
                "-I",
                str(INCLUDE),
                str(HARNESS),
                *map(str, SOURCES),
                "-o",
                str(exe),
            ],
            check=True,
        )
        _BUILT.append(Harness(exe))
    return _BUILT[0]
