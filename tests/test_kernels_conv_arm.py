# SPDX-License-Identifier: Apache-2.0
"""The convolution kernels' optimized paths on the boards, in QEMU, against TFLM and refops.

tests/kernel_harness/conv_harness.c is built for each board with the firmware flags (DSP on
Cortex-M4, M7 and M33, Helium on Cortex-M55) and runs every check of conv_checks.py (the same
TFLM models and vectors as the host), plus shape sweeps aimed at the blocking of the optimized
loops (4-pixel blocks, 4-input words and their tails, groups, 4-channel depthwise quads) checked
against refops, which the host tests hold equal to TFLM. A micro-benchmark prints instructions
per MAC (QEMU -icount) for GTCRN's convolution shapes: `pytest -s -k bench`.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import conv_checks as cc
import numpy as np
import pytest
from conv_checks import (  # noqa: F401 -- collected again with this module's conv_harness
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
from frontend_harness import fwbuild
from kernel_checks import assert_same, assert_varied
from nsconv.quant import params, refops
from nsconv.quant.fixedpoint import INT32_MAX
from nsconv.target import boards
from s16_checks import (  # noqa: F401 -- collected again with this module's conv_harness
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

HARNESS_DIR = Path(__file__).resolve().parent / "kernel_harness"
BOARD_NAMES = [b.name for b in boards.BOARDS]
EXPECTED_PATH = {"mps2-an386": "dsp", "mps2-an500": "dsp", "mps2-an505": "dsp", "mps3-an547": "mve"}
QEMU_TIMEOUT_S = 600

pytestmark = pytest.mark.skipif(
    not (fwbuild.HAVE_ARM_GCC and fwbuild.HAVE_QEMU),
    reason="arm-none-eabi-gcc and qemu-system-arm required",
)


class QemuConvHarness(cc.ConvHarness):
    def __init__(self, board: boards.Board, elf: Path, workdir: Path) -> None:
        super().__init__(elf)
        self.board = board
        self.workdir = workdir

    def run(self, records: Sequence[bytes]) -> list[cc.Reply]:
        with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
            tmp_dir = Path(tmp)
            (tmp_dir / "in.bin").write_bytes(b"".join(records))
            result = subprocess.run(
                self.board.qemu_command(self.exe, "in.bin out.bin", icount=False),
                cwd=tmp_dir, capture_output=True, timeout=QEMU_TIMEOUT_S,
                stdin=subprocess.DEVNULL, check=False,
            )
            assert result.returncode == 0, (
                f"{self.board.name}: conv_harness exited {result.returncode}\n"
                f"{result.stdout.decode(errors='replace')}{result.stderr.decode(errors='replace')}"
            )
            return cc.parse_replies((tmp_dir / "out.bin").read_bytes(), len(records))


def _build(name: str, out: Path, prog: str, main: Path, cflags: str = "") -> Path:
    return fwbuild.build(name, out, prog, (main, *cc.SOURCES), includes=(cc.INCLUDE,),
                         extra_cflags=cflags)


# Time budget of `make test`: the Cortex-M7 and M33 (the M4's DSP source, compiled for the M7
# and for Armv8-M) run these checks only with NSCONV_ARM_FULL=1; M4 (DSP) and M55 (MVE) always.
_FULL_ONLY = ("mps2-an500", "mps2-an505")


@pytest.fixture(autouse=True)
def _boards_budget(request: pytest.FixtureRequest) -> None:
    if (any(f"[{b}" in request.node.name or f"-{b}" in request.node.name for b in _FULL_ONLY)
            and os.environ.get("NSCONV_ARM_FULL") != "1"):
        pytest.skip("M7 and M33 run with NSCONV_ARM_FULL=1 (make test time budget)")


@pytest.fixture(scope="module", params=BOARD_NAMES)
def conv_harness(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> QemuConvHarness:
    name = request.param
    if name in _FULL_ONLY and os.environ.get("NSCONV_ARM_FULL") != "1":
        # before the build: this module-scoped fixture is set up ahead of _boards_budget
        pytest.skip("M7 and M33 run with NSCONV_ARM_FULL=1 (make test time budget)")
    out = tmp_path_factory.mktemp(f"conv-{name}")
    h = QemuConvHarness(boards.board(name), _build(name, out, "conv_harness", cc.CONV_HARNESS), out)
    assert h.path() == EXPECTED_PATH[name], f"{name} built the {h.path()} path"
    return h


def _random_conv_params(rng: np.random.Generator, out_c: int, offset: int) -> params.FcParams:
    multipliers = rng.integers(1 << 30, INT32_MAX, out_c, endpoint=True)
    # shifts in [-12, 0]; every other case all negative (the DSP paths' short requantization)
    shifts = rng.integers(-12, 1 - int(rng.integers(2)), out_c)
    zo = int(rng.integers(-128, 128))
    lo, hi = [(-128, 127), (zo, 127), (max(-128, zo - 30), min(127, zo + 40))][int(rng.integers(3))]
    return params.FcParams(offset, zo, lo, hi, tuple(int(m) for m in multipliers),
                           tuple(int(s) for s in shifts))


# (input_hwc, output_c, kernel, stride, dilation, padding, groups): every residue of the DSP
# blocking (pixels % 4, patch % 4, odd groups) and of the MVE one (rows % 4, patch % 16)
CONV_SHAPES = [
    ((1, p, c), o, (1, 1), (1, 1), (1, 1), "valid", 1)
    for p in (1, 2, 3, 4, 5, 7, 9) for c, o in ((1, 1), (3, 5), (4, 4), (5, 3), (16, 8), (17, 6))
] + [
    ((1, 129, 9), 16, (1, 5), (1, 2), (1, 1), "same", 1),
    ((1, 65, 16), 16, (1, 5), (1, 2), (1, 1), "same", 2),
    ((1, 33, 24), 16, (1, 1), (1, 1), (1, 1), "valid", 1),
    ((1, 69, 16), 16, (1, 5), (1, 1), (1, 1), "valid", 2),
    ((1, 133, 16), 2, (1, 5), (1, 1), (1, 1), "valid", 1),
    ((3, 7, 5), 3, (3, 3), (2, 2), (1, 1), "same", 1),
    ((5, 6, 6), 9, (2, 3), (1, 2), (2, 1), "valid", 3),
    ((4, 9, 8), 6, (3, 2), (2, 1), (1, 2), "same", 2),
    ((2, 3, 33), 7, (2, 2), (1, 1), (1, 1), "same", 1),
    # the DSP row path (filter height 1, 4k input channels): 4 + 2 + 1 channel blocks, padding,
    # more than 16 pixels, two output rows
    ((2, 21, 8), 7, (1, 3), (1, 1), (1, 1), "same", 1),
    ((1, 40, 12), 6, (1, 5), (1, 1), (1, 1), "valid", 1),
]
DW_SHAPES = [
    ((2 * d + 1, 35, 16), 16, (3, 3), (1, 1), (d, 1), "valid", 1) for d in (1, 2, 5)
] + [
    ((2 * d + 1, 33, 16), 16, (3, 3), (1, 1), (d, 1), "same", 1) for d in (1, 2)
] + [
    ((5, 9, c), c, (3, 3), (2, 1), (1, 2), "same", 1) for c in (1, 3, 4, 5, 7, 8, 9)
] + [((4, 6, 3), 6, (2, 2), (1, 1), (1, 1), "valid", 1), ((3, 3, 2), 2, (9, 9), (1, 1), (1, 1), "same", 1)]


def _shape_cases(rng: np.random.Generator, shapes: list, depthwise: bool) -> list[tuple]:
    cases = []
    for k, (hwc, out_c, kernel, stride, dilation, padding, groups) in enumerate(shapes):
        g = params.conv_geometry(hwc, kernel, out_c, padding=padding, stride=stride,
                                 dilation=dilation, groups=groups)
        offset = [0, 128, -127, int(rng.integers(-127, 129))][k % 4]
        p = _random_conv_params(rng, out_c, offset)
        wshape = (1, *kernel, out_c) if depthwise else (out_c, *kernel, hwc[2] // groups)
        w = rng.integers(-128, 128, wshape).astype(np.int8)
        bias = None if k % 5 == 4 else rng.integers(-(1 << 16), 1 << 16, out_c).astype(np.int32)
        x = rng.integers(-128, 128, hwc).astype(np.int8)
        cases.append((p, g, x, w, bias))
    return cases


@pytest.mark.parametrize("depthwise", [False, True], ids=["conv", "depthwise"])
def test_conv_shapes_match_refops(conv_harness: QemuConvHarness, depthwise: bool) -> None:
    rng = np.random.default_rng(31 + depthwise)
    cases = _shape_cases(rng, DW_SHAPES if depthwise else CONV_SHAPES, depthwise)
    op = cc.OP_DEPTHWISE if depthwise else cc.OP_CONV
    ref = refops.depthwise_conv_s8 if depthwise else refops.conv_s8
    replies = conv_harness.run([cc.conv_record(op, *c) for c in cases])
    outputs = []
    for (p, g, x, w, b), reply in zip(cases, replies, strict=True):
        assert reply.status == cc.NSN_OK, g
        expected = ref(p, g, x, w, b)
        assert_same(expected, reply.values, f"{'dw' if depthwise else 'conv'} {g}")
        outputs.append(expected.ravel())
    assert_varied(np.concatenate(outputs), "outputs", 0.6)


def test_conv_buffer_size_matches_path(conv_harness: QemuConvHarness) -> None:
    g = params.conv_geometry((1, 65, 16), (1, 5), 16, padding="same", stride=(1, 2), groups=2)
    p = params.FcParams(0, 0, -128, 127, (), ())
    reply = conv_harness.run([cc._i32(cc.OP_CONV_BUFFER) + cc.conv_header(p, g)])[0]
    k4 = 40  # 5 * 16 / 2
    expected = {"dsp": 9 * k4, "mve": 4 * 16 + k4}[EXPECTED_PATH[conv_harness.board.name]]
    assert int(reply.values[0]) == expected


# --------------------------------------------------------------------------------------------
# Micro-benchmark
# --------------------------------------------------------------------------------------------

BENCH_LINE = re.compile(r"^bench (\w+) (.*)$", re.M)


def _run_bench(name: str, out: Path, cflags: str = "") -> list[dict[str, str]]:
    elf = _build(name, out, "conv_bench", HARNESS_DIR / "conv_bench.c", cflags)
    result = subprocess.run(boards.board(name).qemu_command(elf), capture_output=True, text=True,
                            timeout=QEMU_TIMEOUT_S, stdin=subprocess.DEVNULL, check=True)
    rows = []
    for kind, fields in BENCH_LINE.findall(result.stdout):
        row = dict(f.split("=", 1) for f in fields.split())
        row["kind"] = kind
        rows.append(row)
    return rows


@pytest.mark.parametrize("name", BOARD_NAMES)
def test_conv_bench(name: str, tmp_path: Path) -> None:
    """Instructions per MAC of GTCRN's convolution shapes, optimized path against portable."""
    with ThreadPoolExecutor(2) as pool:  # both builds and QEMU runs at once (two cores)
        fast, ref = pool.map(lambda a: _run_bench(name, *a), [
            (tmp_path / "fast",), (tmp_path / "ref", "-DNSN_KERNELS_FORCE_REFERENCE")])
    assert fast[0]["path"] == EXPECTED_PATH[name] and ref[0]["path"] == "reference"
    print(f"\n{name} ({boards.board(name).core}), instructions per MAC, QEMU -icount:")
    print(f"  {'kernel':44s} {'MACs':>7s} {'optimized':>10s} {'reference':>10s}")
    total_fast = total_macs = 0
    for f, r in zip(fast[1:], ref[1:], strict=True):
        assert f["status"] == "0" and r["status"] == "0"
        macs = int(f["macs"])
        a, b = int(f["instructions"]) / macs, int(r["instructions"]) / macs
        total_fast += int(f["instructions"])
        total_macs += macs
        print(f"  {f['kind'] + ' ' + f['shape']:44s} {macs:7d} {a:10.3f} {b:10.3f}")
    print(f"  all shapes: {total_fast / total_macs:.3f} instructions per MAC")
    limit = {"dsp": 4.5, "mve": 7.5}[EXPECTED_PATH[name]]  # regression guard, not a target
    assert total_fast / total_macs <= limit


@pytest.mark.parametrize("depthwise", [False, True], ids=["conv16", "depthwise16"])
def test_conv16_shapes_match_refops(conv_harness: QemuConvHarness, depthwise: bool) -> None:
    """The 16x8 kernels on the blocking residues of CONV_SHAPES / DW_SHAPES (int16 inputs at
    the ends included, int64 biases beyond int32), against refops."""
    import s16_checks as sc

    rng = np.random.default_rng(61 + depthwise)
    shapes = DW_SHAPES if depthwise else CONV_SHAPES
    cases = []
    for k, (hwc, out_c, kernel, stride, dilation, padding, groups) in enumerate(shapes):
        g = params.conv_geometry(hwc, kernel, out_c, padding=padding, stride=stride,
                                 dilation=dilation, groups=groups)
        p = _random_conv_params(rng, out_c, 0)
        lo, hi = [(-32768, 32767), (0, 32767), (-300, 2000)][k % 3]
        p = params.FcParams(0, 0, lo, hi, p.multipliers, tuple(min(s, 7) for s in p.shifts))
        wshape = (1, *kernel, out_c) if depthwise else (out_c, *kernel, hwc[2] // groups)
        w = rng.integers(-128, 128, wshape).astype(np.int8)
        bias = None if k % 5 == 4 else rng.integers(-(1 << 40), 1 << 40, out_c).astype(np.int64)
        x = rng.integers(-32768, 32768, hwc).astype(np.int16)
        if k % 7 == 0:
            x[...] = -32768
        cases.append((p, g, x, w, bias))
    op = sc.OP_DEPTHWISE16 if depthwise else sc.OP_CONV16
    ref = refops.depthwise_conv_s16 if depthwise else refops.conv_s16
    replies = conv_harness.run([sc.conv16_record(op, *c) for c in cases])
    for (p, g, x, w, b), reply in zip(cases, replies, strict=True):
        assert reply.status == cc.NSN_OK, g
        assert_same(ref(p, g, x, w, b), reply.values, f"16x8 {'dw' if depthwise else 'conv'} {g}")


def test_fc16_shapes_match_refops(conv_harness: QemuConvHarness) -> None:
    import s16_checks as sc

    rng = np.random.default_rng(77)
    records, expected = [], []
    for n_in in (1, 2, 3, 4, 5, 7, 8, 16, 17, 33, 48, 511, 512, 600):
        for n_out in (1, 2, 3, 48):
            p = _random_conv_params(rng, n_out, 0)
            p = params.FcParams(0, 0, -32768, 32767, p.multipliers, tuple(min(s, 7) for s in p.shifts))
            w = rng.integers(-128, 128, (n_out, n_in)).astype(np.int8)
            b = rng.integers(-(1 << 40), 1 << 40, n_out).astype(np.int64)
            x = rng.integers(-32768, 32768, (2, n_in)).astype(np.int16)
            x[0] = np.where(w[0] > 0, 32767, -32768)  # the largest sum of row 0
            records.append(sc.fc16_record(p, x, w, b))
            expected.append(refops.fc_s16(p, x, w, b))
    for exp, reply in zip(expected, conv_harness.run(records), strict=True):
        assert reply.status == cc.NSN_OK
        assert_same(exp, reply.values, "fc16 shapes")
