# SPDX-License-Identifier: Apache-2.0
"""`nsconv bench` memory, code size, per-op split and TFLM reference ratio (issue #6), on the
NSNet2 baseline (one exit, 2,681,000 MACs/frame) on emulated Cortex-M4, a few frames."""

from __future__ import annotations

import json
import shutil

import pytest
from nsconv.target import bench

HAVE_TOOLS = all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm", "make"))
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not HAVE_TOOLS, reason="arm-none-eabi-gcc, qemu-system-arm "
                                 "and make required")]


@pytest.fixture(scope="module")
def report(baseline_out, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "out"
    shutil.copytree(baseline_out, out, ignore=shutil.ignore_patterns("firmware", "c"))
    return bench.bench(out, cores=["cortex-m4"], frames=4)


def test_bench_memory_code_and_op_split(report):
    json.loads(json.dumps(report))
    (r,) = report["results"]
    assert (r["core"], r["exit"], r["frames"]) == ("cortex-m4", "final", 4)
    for key in ("ram_bytes", "model_bytes", "stack_peak_bytes", "code_bytes", "params_bytes",
                "instructions_by_op", "stack_peak_method"):
        assert key in r, key
    assert r["ram_bytes"] == r["model_bytes"] + r["stack_peak_bytes"]
    assert 0 < r["stack_peak_bytes"] < r["ram_bytes"] <= 16384
    assert r["model_bytes"] >= 4 * (400 + 400)  # at least the two GRU states (int8)
    assert 0 < r["code_bytes"] <= 15360
    assert r["params_bytes"] > 0
    assert r["params_bytes"] < r["weights_bytes"]  # the weights are not counted
    ops = r["instructions_by_op"]
    assert set(bench.OP_KINDS) | {"OTHER"} == set(ops)
    for kind in ("FULLY_CONNECTED", "ADD", "SUB", "MUL", "LOGISTIC", "TANH", "QUANTIZE"):
        assert ops[kind] > 0, kind
    network = r["instructions_per_frame"]
    assert abs(sum(ops.values()) - network) <= 0.02 * network
    assert abs(sum(v for k, v in ops.items() if k != "OTHER") - network) <= 0.02 * network
    assert ops["FULLY_CONNECTED"] > 0.5 * network


def test_bench_tflm_reference_ratio(report):
    (r,) = report["results"]
    assert r["macs_per_frame"] == 2_681_000
    ref = r["tflm_cmsis_nn_reference"]
    assert ref["instructions_per_frame"] == 6_744_292
    assert ref["arena_bytes"] == 62_140
    assert "quoted from issue" in ref["source"] and "NOT measured" in ref["source"]
    assert r["ratio_to_tflm_cmsis_nn"] == pytest.approx(r["instructions_per_frame"] / 6_744_292,
                                                        rel=1e-3)
    text = bench.table(report)
    assert "RAM B" in text and "code B" in text and "vs TFLM" in text
    print("\n" + text)
