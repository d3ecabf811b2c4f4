# SPDX-License-Identifier: Apache-2.0
"""`nsconv bench` memory, code size, per-op split and TFLM reference ratio (issue #6), on the
NSNet2 baseline (one exit, 2,681,000 MACs/frame) on emulated Cortex-M4, a few frames."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from nsconv.target import bench

HAVE_TOOLS = all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm", "make"))
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not HAVE_TOOLS, reason="arm-none-eabi-gcc, qemu-system-arm "
                                 "and make required")]


@pytest.fixture(scope="module")
def bench_out(baseline_out, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "out"
    shutil.copytree(baseline_out, out, ignore=shutil.ignore_patterns("firmware", "c"))
    return out


@pytest.fixture(scope="module")
def report(bench_out) -> dict:
    return bench.bench(bench_out, cores=["cortex-m4"], frames=4)


def _sizeof_model_t(out, tmp_path) -> int:
    """sizeof(nsn_model_t) for the Cortex-M4, from the generated header alone: the size of a
    variable of that type in an object file compiled with the board's flags."""
    from nsconv.compiler.codegen import generate
    from nsconv.resources import KERNEL_DIR

    generate(out, tmp_path / "c", command_line="pytest")
    probe = tmp_path / "probe.c"
    probe.write_text('#include "nsn_model.h"\nnsn_model_t nsn_probe;\n')
    obj = tmp_path / "probe.o"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                    "-mfpu=fpv4-sp-d16", "-c", f"-I{tmp_path / 'c'}",
                    f"-I{KERNEL_DIR / 'include'}", str(probe), "-o", str(obj)],
                   check=True)
    nm = subprocess.run(["arm-none-eabi-nm", "-S", str(obj)], check=True, capture_output=True,
                        text=True).stdout
    m = re.search(r"^[0-9a-f]+ ([0-9a-f]+) [BC] nsn_probe$", nm, re.M)
    assert m, nm
    return int(m[1], 16)


def test_bench_memory_code_and_op_split(report, bench_out, tmp_path):
    json.loads(json.dumps(report))
    (r,) = report["results"]
    assert (r["core"], r["exit"], r["frames"]) == ("cortex-m4", "final", 4)
    for key in ("ram_bytes", "model_bytes", "stack_peak_bytes", "code_bytes", "params_bytes",
                "instructions_by_op", "stack_peak_method"):
        assert key in r, key
    # the size the firmware printed at run time is the compiler's sizeof of the exported struct
    assert r["model_bytes"] == _sizeof_model_t(bench_out, tmp_path)
    assert 0 < r["stack_peak_bytes"] < r["ram_bytes"] <= 16384
    assert r["model_bytes"] >= 4 * (400 + 400)  # at least the two GRU states (int8)
    # the front end's static state (window, spectrum, overlap, FFT scratch: ~6.4 KB)
    assert 6000 < r["frontend_state_bytes"] < 7000
    assert r["ram_with_frontend_bytes"] == r["ram_bytes"] + r["frontend_state_bytes"]
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
    assert "quoted from issue" in ref["source"] and "NOT measured" in ref["source"]
    # against the Cortex-M4 figure nsconv takes ~0.54 of the instructions (the M55 one: ~1.5)
    assert 0.4 < r["ratio_to_tflm_cmsis_nn"] < 0.7
    assert ref["arena_bytes"] > 10 * r["model_bytes"]
    text = bench.table(report)
    assert "RAM B" in text and "code B" in text and "vs TFLM" in text
    print("\n" + text)


def test_published_performance_figures_are_generated():
    """The README's performance block is what scripts/perf_table.py makes of the committed
    docs/performance.json (written by `make bench`), and its TFLM column is the quoted table."""
    import importlib.util
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("perf_table", repo / "scripts" / "perf_table.py")
    perf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(perf)
    report = json.loads((repo / "docs" / "performance.json").read_text())
    readme = (repo / "README.md").read_text()
    block = readme[readme.index(perf.BEGIN) + len(perf.BEGIN):readme.index(perf.END)]
    assert block.strip() == perf.readme_block(report).strip()
    assert report["tflm_cmsis_nn_reference"] == bench.TFLM_CMSIS_NN_REFERENCE
    quoted = bench.TFLM_CMSIS_NN_REFERENCE["instructions_per_frame"]
    for r in report["results"]:
        if r["core"] in quoted:  # issue #6 quotes no figure for some cores (e.g. Cortex-M33)
            assert f"| {quoted[r['core']]:,} |" in block
        else:
            assert "ratio_to_tflm_cmsis_nn" not in r
