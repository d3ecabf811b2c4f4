# SPDX-License-Identifier: Apache-2.0
"""The C kernels (firmware/kernels) and qmath's reference ops against TFLM, value for value.

Each op is converted by the real TFLite converter into a one-op int8 model (tests/oneop.py) and run
in TFLM, the oracle. The parameters for the C kernel come from nsconv.quant.params, computed from the
model's tensor scales and zero points; the kernel runs in a test driver built with
AddressSanitizer and UndefinedBehaviorSanitizer (tests/kernel_harness/harness.c). The three results
must be equal, with zero tolerance.

The checks live here, in a helper module that pytest does not collect: tests/test_kernels.py
runs them with the sanitized host driver, tests/test_kernels_arm.py with the driver on each
board (each module provides its own `harness` fixture).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from pathlib import Path

import numpy as np
import oneop
import pytest
from nsconv.quant import fixedpoint, params, refops
from nsconv.quant.fixedpoint import INT32_MAX, INT32_MIN
from nsconv.quant.params import Activation
from nsconv.resources import KERNEL_DIR

INCLUDE = KERNEL_DIR / "include"
SOURCES = sorted((KERNEL_DIR / "src").glob("*.c"))
HARNESS = Path(__file__).resolve().parent / "kernel_harness" / "harness.c"
WARNINGS = [
    "-std=c99",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
    "-Wconversion",
    "-Wsign-conversion",
]
CORTEX_M4 = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]

# harness.c record types
OP_FULLY_CONNECTED, OP_ADD, OP_SUB, OP_MUL, OP_LUT, OP_REQUANTIZE = 1, 2, 3, 4, 5, 6
OP_REQUANTIZE_SCALAR, OP_FC_BUFFER_SIZE, OP_FC_CTX, OP_KERNELS_PATH = 7, 8, 9, 10
OP_FC_S4_CTX, OP_FC_S4_BUFFER_SIZE = 11, 12
OP_FC_BATCH, OP_FC_BATCH_PREPARE, OP_FC_BATCH_MULTI = 13, 14, 16
RECORDS_NULL, RECORDS_PREPARED, RECORDS_GIVEN = 0, 1, 2
# records whose replies are int32 values
INT32_REPLIES = tuple(
    op.to_bytes(4, "little")
    for op in (OP_REQUANTIZE_SCALAR, OP_FC_BUFFER_SIZE, OP_FC_S4_BUFFER_SIZE, OP_FC_BATCH_PREPARE)
)
# Scratch given to OP_FC_CTX (tests/kernel_harness/harness.c)
CTX_EXACT, CTX_NULL, CTX_SHORT, CTX_MISALIGNED = 0, 1, 2, 3
NSN_OK, NSN_ARG_ERROR, NSN_SCRATCH_ERROR = 0, -1, -2

ALL_INT8 = np.arange(256, dtype=np.uint8).view(np.int8)  # table order: index = unsigned byte
GRID1, GRID2 = (g.ravel().astype(np.int8) for g in np.meshgrid(ALL_INT8, ALL_INT8, indexing="ij"))


# --------------------------------------------------------------------------------------------
# Test driver
# --------------------------------------------------------------------------------------------


def _i32(*values: int) -> bytes:
    return np.asarray(values, dtype="<i4").tobytes()


def _i8(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype=np.int8).tobytes()


@dataclass(frozen=True)
class Reply:
    status: int
    data: bytes

    def int8(self) -> np.ndarray:
        return np.frombuffer(self.data, dtype=np.int8)

    def int32(self) -> np.ndarray:
        return np.frombuffer(self.data, dtype="<i4")


class Harness:
    """The sanitized kernel driver; one process per batch of records."""

    def __init__(self, exe: Path) -> None:
        self.exe = exe

    def run(self, records: Sequence[bytes]) -> list[Reply]:
        result = subprocess.run(
            [str(self.exe)], input=b"".join(records), capture_output=True, check=True
        )
        out, replies, pos = result.stdout, [], 0
        for record in records:
            status, count = np.frombuffer(out, dtype="<i4", count=2, offset=pos)
            width = 4 if record[:4] in INT32_REPLIES else 1
            end = pos + 8 + int(count) * width
            replies.append(Reply(int(status), out[pos + 8 : end]))
            pos = end
        assert pos == len(out), "harness wrote more than the records asked for"
        return replies

    def run_one(self, record: bytes) -> Reply:
        return self.run([record])[0]


def fc_record(
    p: params.FcParams, x: np.ndarray, weights: np.ndarray, bias: np.ndarray | None
) -> bytes:
    x = np.atleast_2d(x)
    out_f, in_f = weights.shape
    header = _i32(
        OP_FULLY_CONNECTED,
        p.input_offset,
        p.output_offset,
        p.activation_min,
        p.activation_max,
        in_f,
        out_f,
        int(bias is not None),
        len(x),
    )
    body = _i32(*p.multipliers) + _i32(*p.shifts)
    if bias is not None:
        body += np.asarray(bias, dtype="<i4").tobytes()
    return header + body + _i8(weights) + _i8(x)


def binary_record(
    op: int, p: params.AddParams | params.MulParams, x1: np.ndarray, x2: np.ndarray
) -> bytes:
    return _i32(op, *astuple(p), x1.size, x2.size) + _i8(x1) + _i8(x2)


def lut_record(table: np.ndarray, x: np.ndarray) -> bytes:
    return _i32(OP_LUT) + _i8(table) + _i32(x.size) + _i8(x)


def requantize_record(p: params.RequantizeParams, x: np.ndarray) -> bytes:
    return _i32(OP_REQUANTIZE, *astuple(p), x.size) + _i8(x)


# --------------------------------------------------------------------------------------------
# Assertions
# --------------------------------------------------------------------------------------------


def assert_varied(values: np.ndarray, what: str, max_fraction: float = 0.5) -> None:
    """Rejects test vectors that are mostly one value: they would hide arithmetic errors."""
    _, counts = np.unique(np.asarray(values).ravel(), return_counts=True)
    fraction = counts.max() / counts.sum()
    assert fraction <= max_fraction, f"{what}: {fraction:.0%} of the values are the same"


def assert_same(expected: np.ndarray, actual: np.ndarray, what: str) -> None:
    expected, actual = np.asarray(expected).ravel(), np.asarray(actual).ravel()
    assert expected.shape == actual.shape, (
        f"{what}: {actual.shape} values, expected {expected.shape}"
    )
    bad = np.flatnonzero(expected != actual)
    assert bad.size == 0, (
        f"{what}: {bad.size} of {expected.size} differ; first at {bad[0]}: "
        f"{actual[bad[0]]} instead of {expected[bad[0]]}"
    )


def random_scales(rng: np.random.Generator, lo: float, hi: float, n: int) -> list[float]:
    """Float32 scales, log-uniform in [lo, hi)."""
    return [float(np.float32(s)) for s in 10.0 ** rng.uniform(np.log10(lo), np.log10(hi), n)]


# --------------------------------------------------------------------------------------------
# Build hygiene
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "compiler, flags",
    [("gcc", []), ("arm-none-eabi-gcc", CORTEX_M4)],
    ids=["host", "cortex-m4"],
)
def test_kernels_compile_without_warnings(tmp_path: Path, compiler: str, flags: list[str]) -> None:
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} not installed")
    for source in SOURCES:
        subprocess.run(
            [
                compiler,
                *flags,
                *WARNINGS,
                "-O2",
                "-I",
                str(INCLUDE),
                "-c",
                str(source),
                "-o",
                str(tmp_path / f"{source.stem}.o"),
            ],
            check=True,
        )


# --------------------------------------------------------------------------------------------
# qmath primitives
# --------------------------------------------------------------------------------------------


def test_round_half_away_from_zero() -> None:
    cases = {0.5: 1, -0.5: -1, 2.5: 3, -2.5: -3, 1.4999999999999998: 1, 0.49999999999999994: 0}
    for x, expected in cases.items():
        assert params.round_half_away(x) == expected, x


def test_quantize_multiplier_edges() -> None:
    assert params.quantize_multiplier(0.0) == (0, 0)
    assert params.quantize_multiplier(0.5) == (1 << 30, 0)
    assert params.quantize_multiplier(1.0) == (1 << 30, 1)
    assert params.quantize_multiplier(3.0) == (3 << 29, 2)
    # frac * 2**31 = 2**30 + 0.5 exactly: the tie goes away from zero (round() would give 2**30)
    assert params.quantize_multiplier(0.5 + 2.0**-32) == ((1 << 30) + 1, 0)
    # rounds up to 2**31: halved, shift incremented
    assert params.quantize_multiplier(1.0 - 2.0**-33) == (1 << 30, 1)
    # 2**-32 is the smallest multiplier kept; below it the shift would be < -31: flushed to zero
    assert params.quantize_multiplier(2.0**-32) == (1 << 30, -31)
    assert params.quantize_multiplier(2.0**-33) == (0, 0)


def test_fixed_point_primitives() -> None:
    srdhm = fixedpoint.saturating_rounding_doubling_high_mul
    assert srdhm(INT32_MIN, INT32_MIN) == INT32_MAX
    assert srdhm(INT32_MIN, INT32_MAX) == -INT32_MAX
    assert srdhm(1 << 30, 3) == 2  # 1.5 -> 2
    assert srdhm(-(1 << 30), 3) == -1  # -1.5 -> -1: ties go toward +infinity
    assert srdhm(-(1 << 30), 1) == 0  # -0.5 -> 0
    assert srdhm(-(1 << 30), 5) == -2 and srdhm(-(3 << 29), 1) == -1  # -2.5 -> -2, -0.75 -> -1
    rdpot = fixedpoint.rounding_divide_by_pot
    assert [int(rdpot(x, 1)) for x in (3, -3, 1, -1, 2)] == [2, -2, 1, -1, 1]
    assert int(rdpot(-5, 2)) == -1 and int(rdpot(-6, 2)) == -2 and int(rdpot(6, 2)) == 2
    assert int(rdpot(INT32_MIN, 31)) == -1 and int(rdpot(INT32_MAX, 31)) == 1
    mbqm = fixedpoint.multiply_by_quantized_multiplier
    assert int(mbqm(1000, 1 << 30, 1)) == 1000  # x1.0
    assert int(mbqm(3, 1 << 30, -1)) == 1  # 3 * 0.25 = 0.75 -> 1
    assert int(mbqm(5, 1 << 30, -1)) == 2  # 1.25, but double rounding: 2.5 -> 3, then 1.5 -> 2
    assert int(mbqm(-5, 1 << 30, -1)) == -1  # -2.5 -> -2, then -1


def test_requantize_helper_matches_qmath(harness: Harness) -> None:
    """nsn_requantize (the inline helper every kernel uses) against qmath on random and edge
    operands; UBSan checks the edges (INT32_MIN, wrapping left shifts, 31-bit right shifts)."""
    rng = np.random.default_rng(11)
    n = 100_000
    acc = rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True)
    acc[: n // 4] = rng.integers(-(1 << 20), 1 << 20, n // 4)
    multiplier = rng.integers(1 << 30, INT32_MAX, n, endpoint=True)
    shift = rng.integers(-31, 31, n, endpoint=True)
    edges_acc = [INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX]
    edges_mult = [0, 1 << 30, INT32_MAX]
    edges_shift = [-31, -30, -1, 0, 1, 30, 31]
    edges = np.array(np.meshgrid(edges_acc, edges_mult, edges_shift)).reshape(3, -1)
    acc, multiplier, shift = (
        np.concatenate([a, e]) for a, e in zip((acc, multiplier, shift), edges, strict=True)
    )
    triples = np.stack([acc, multiplier, shift], axis=1).astype("<i4")
    reply = harness.run_one(_i32(OP_REQUANTIZE_SCALAR, len(triples)) + triples.tobytes())
    expected = fixedpoint.multiply_by_quantized_multiplier(acc, multiplier, shift)
    assert_same(expected, reply.int32(), "nsn_requantize")
    assert_varied(expected, "requantized values")


# --------------------------------------------------------------------------------------------
# FULLY_CONNECTED
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FcCase:
    input_features: int
    output_features: int
    activation: str | None
    use_bias: bool
    input_range: tuple[float, float]
    bias_mean: float = 0.0
    # With one input the int8 input range is the calibrated range, so no output can leave the
    # calibrated output range: saturation is unreachable.
    saturates: bool = True


FC_CASES = {
    "fc1_161x400_relu": FcCase(161, 400, "relu", True, (-6.0, 2.0), 0.5),
    "fc_600x600_relu": FcCase(600, 600, "relu", True, (0.0, 3.0), 0.3),
    "out_400x161": FcCase(400, 161, None, True, (-1.0, 1.0)),
    "odd_7x3_no_bias": FcCase(7, 3, None, False, (-2.0, 3.0)),
    "per_tensor_3x1_relu_no_bias": FcCase(3, 1, "relu", False, (-1.0, 2.0)),
    "per_tensor_5x1": FcCase(5, 1, None, True, (-1.0, 1.0)),
    "single_input_1x7": FcCase(1, 7, None, True, (-3.0, 3.0), saturates=False),
    "zp_in_-128_out_127": FcCase(161, 7, None, True, (0.0, 4.0), -8.0),
    "zp_in_127": FcCase(7, 5, None, True, (-4.0, 0.0)),
}


@pytest.fixture(scope="module")
def fc_models() -> dict[str, oneop.OneOp]:
    return dict(_fc_models())


@oneop.shared  # converted once per session, for the host and every board
def _fc_models() -> dict[str, oneop.OneOp]:
    rng = np.random.default_rng(2024)
    return {
        name: oneop.fully_connected(
            rng,
            c.input_features,
            c.output_features,
            activation=c.activation,
            use_bias=c.use_bias,
            input_range=c.input_range,
            bias_mean=c.bias_mean,
        )
        for name, c in FC_CASES.items()
    }


def _fc_params(model: oneop.OneOp) -> params.FcParams:
    x, w = model.inputs[0], model.inputs[1]
    return params.fc_params(
        x.scale,
        x.zero_point,
        w.scales,
        model.output.scale,
        model.output.zero_point,
        w.shape[0],
        model.activation,
    )


def _fc_vectors(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """Random inputs plus, for a few channels, the inputs that push that channel hardest up and
    down (each x at the int8 end on the side of its weight's sign): saturation at both ends."""
    out_f, in_f = weights.shape
    vectors = [rng.integers(-128, 128, in_f) for _ in range(24)]
    for c in rng.choice(out_f, min(out_f, 4), replace=False):
        vectors += [np.where(weights[c] > 0, 127, -128), np.where(weights[c] > 0, -128, 127)]
    return np.asarray(vectors, dtype=np.int8)


def _check_fc(harness: Harness, model: oneop.OneOp, vectors: np.ndarray) -> np.ndarray:
    x, w, b = model.inputs[0], model.inputs[1], model.inputs[2] if len(model.inputs) > 2 else None
    bias = None if b is None else b.data
    p = _fc_params(model)
    tflm = oneop.Tflm(model)
    expected = np.stack([tflm({x.index: v}) for v in vectors])
    assert_same(expected, refops.fc_s8(p, vectors, w.data, bias), "refops.fc_s8")
    reply = harness.run_one(fc_record(p, vectors, w.data, bias))
    assert reply.status == NSN_OK
    assert_same(expected, reply.int8(), "nsn_fully_connected_s8")
    return expected


@pytest.mark.parametrize("name", FC_CASES)
def test_fully_connected_matches_tflm(
    harness: Harness, fc_models: dict[str, oneop.OneOp], name: str
) -> None:
    model = fc_models[name]
    case = FC_CASES[name]
    x, w = model.inputs[0], model.inputs[1]
    assert model.opcode == "FULLY_CONNECTED"
    assert (len(model.inputs) > 2 and model.inputs[2] is not None) == case.use_bias
    assert model.activation == (Activation.RELU if case.activation == "relu" else Activation.NONE)
    if case.output_features > 1:
        assert len(w.scales) == case.output_features and len(set(w.scales)) > 1, (
            "per-channel weights"
        )
    if name == "zp_in_-128_out_127":
        assert x.zero_point == -128 and model.output.zero_point >= 120
    if name == "zp_in_127":
        assert x.zero_point == 127
    rng = np.random.default_rng(case.input_features * 1000 + case.output_features)
    vectors = _fc_vectors(rng, w.data)
    assert_varied(vectors, "FC inputs")
    out = _check_fc(harness, model, vectors)
    p = _fc_params(model)
    assert_varied(out, "FC outputs", max_fraction=0.6)
    if case.saturates:
        assert (out == p.activation_max).any(), "no output saturates high"
        assert (out == p.activation_min).any(), "no output reaches the low end"


@pytest.mark.parametrize(
    "name", ["fc1_161x400_relu", "per_tensor_3x1_relu_no_bias", "odd_7x3_no_bias"]
)
def test_fully_connected_quantization_sweep(
    harness: Harness, fc_models: dict[str, oneop.OneOp], name: str
) -> None:
    """The same weights under random input, weight and output quantizations, so that many
    multipliers meet TFLM's own Prepare; the first has every channel's multiplier above 1."""
    base = fc_models[name]
    x, w = base.inputs[0], base.inputs[1]
    rng = np.random.default_rng(len(name))
    shifts = set()
    for i in range(10):
        (xs,), (ys,) = random_scales(rng, 1e-3, 0.1, 1), random_scales(rng, 1e-3, 1.0, 1)
        ws = random_scales(rng, 1e-4, 0.05, len(w.scales))
        if i == 0:
            ys = float(np.float32(xs * min(ws) / 3.0))
        zps = rng.integers(-128, 128, 2)
        model = oneop.with_quantization(
            base,
            {x.index: (xs, int(zps[0])), base.output.index: (ys, int(zps[1]))},
            weight_scales=ws,
        )
        shifts.update(_fc_params(model).shifts)
        _check_fc(harness, model, rng.integers(-128, 128, (8, x.shape[-1])).astype(np.int8))
    assert min(shifts) < -5 and max(shifts) > 0


def test_per_tensor_fc_scale_product_is_double(
    harness: Harness, fc_models: dict[str, oneop.OneOp]
) -> None:
    """With one weight scale (a 1-unit Dense layer) TFLM takes its per-tensor path. Older TFLM
    sources round input_scale * weight_scale to float32 there; the pinned build multiplies in
    double. On this quantization the two products give multipliers 3 LSB apart, and for this bias
    (found by search with qmath) outputs one apart: a float32 product would be caught here."""
    base = fc_models["per_tensor_5x1"]
    x, w, b = base.inputs
    xs, ws, ys = 0.0014835367910563946, 0.0002975918469019234, 0.6328116655349731
    zx, zo, bias = 5, 73, -142619269
    bias_scale = float(np.float32(xs) * np.float32(ws))
    model = oneop.with_quantization(
        base,
        {x.index: (xs, zx), b.index: (bias_scale, 0), base.output.index: (ys, zo)},
        weight_scales=[ws],
        constants={b.index: np.array([bias])},
    )
    # the first vector is all zero point, so the accumulator is the bias alone
    vectors = np.stack([np.full(5, zx), zx + np.arange(-2, 3)]).astype(np.int8)
    expected = _check_fc(harness, model, vectors)
    float32_route = params.quantize_multiplier(float(np.float32(xs) * np.float32(ws)) / ys)
    alternative = int(fixedpoint.multiply_by_quantized_multiplier(bias, *float32_route)) + zo
    assert expected[0, 0] != alternative, "this case no longer tells the two products apart"


# --------------------------------------------------------------------------------------------
# ADD, SUB, MUL
# --------------------------------------------------------------------------------------------

_OP_CODES = {"add": OP_ADD, "sub": OP_SUB, "mul": OP_MUL}
_TFLITE_NAMES = {"add": "ADD", "sub": "SUB", "mul": "MUL"}


@dataclass(frozen=True)
class BinaryCase:
    size1: int
    size2: int
    range1: tuple[float, float]
    range2: tuple[float, float]
    anti_correlated: bool = False


BINARY_CASES = {
    "1": BinaryCase(1, 1, (-1.0, 1.0), (-2.0, 2.0)),
    "3": BinaryCase(3, 3, (-1.0, 2.0), (-0.5, 0.5)),
    "7_zp_-128": BinaryCase(7, 7, (0.0, 3.0), (0.0, 1.0)),
    "161_zp_127": BinaryCase(161, 161, (-3.0, 0.0), (-1.0, 0.0)),
    "400_saturating": BinaryCase(400, 400, (-1.0, 1.0), (-1.0, 1.0), anti_correlated=True),
    "broadcast_1x161": BinaryCase(1, 161, (0.0, 1.0), (-2.0, 2.0)),
    "broadcast_161x1": BinaryCase(161, 1, (-2.0, 2.0), (0.0, 1.0)),
}


def _binary_params(op: str, model: oneop.OneOp) -> params.AddParams | params.MulParams:
    a, b = model.inputs
    build = {"add": params.add_params, "sub": params.sub_params, "mul": params.mul_params}[op]
    return build(
        a.scale,
        a.zero_point,
        b.scale,
        b.zero_point,
        model.output.scale,
        model.output.zero_point,
        model.activation,
    )


def _reference(
    op: str, p: params.AddParams | params.MulParams, x1: np.ndarray, x2: np.ndarray
) -> np.ndarray:
    return {"add": refops.add_s8, "sub": refops.sub_s8, "mul": refops.mul_s8}[op](p, x1, x2)


def _check_binary(
    harness: Harness,
    op: str,
    model: oneop.OneOp,
    runs: Sequence[tuple[np.ndarray | None, np.ndarray | None]],
) -> np.ndarray:
    """TFLM, qmath and the C kernel on each (input1, input2) pair; constant operands are passed
    as None in `runs` and taken from the model."""
    a, b = model.inputs
    p = _binary_params(op, model)
    tflm = oneop.Tflm(model)
    records, expected = [], []
    for x1, x2 in runs:
        x1 = a.data.ravel() if a.data is not None else x1
        x2 = b.data.ravel() if b.data is not None else x2
        feeds = {t.index: v for t, v in ((a, x1), (b, x2)) if t.data is None}
        out = tflm(feeds)
        assert_same(out, _reference(op, p, x1, x2), f"qmath.{op}_s8")
        records.append(binary_record(_OP_CODES[op], p, x1, x2))
        expected.append(out)
    for reply, out in zip(harness.run(records), expected, strict=True):
        assert reply.status == NSN_OK
        assert_same(out, reply.int8(), f"nsn_elementwise_{op}_s8")
    return np.concatenate(expected)


@pytest.fixture(scope="module")
def binary_models() -> dict[tuple[str, str], oneop.OneOp]:
    return dict(_binary_models())


@oneop.shared  # converted once per session, for the host and every board
def _binary_models() -> dict[tuple[str, str], oneop.OneOp]:
    rng = np.random.default_rng(77)
    models = {
        (op, name): oneop.binary(
            rng, op, c.size1, c.size2, c.range1, c.range2, anti_correlated=c.anti_correlated
        )
        for op in _OP_CODES
        for name, c in BINARY_CASES.items()
    }
    for size in (1, 400):
        models[("sub", f"one_minus_{size}")] = oneop.one_minus(rng, size, (0.0, 1.0))
    return models


@pytest.mark.parametrize("op", _OP_CODES)
@pytest.mark.parametrize("name", BINARY_CASES)
def test_elementwise_matches_tflm(
    harness: Harness, binary_models: dict[tuple[str, str], oneop.OneOp], op: str, name: str
) -> None:
    case = BINARY_CASES[name]
    model = binary_models[(op, name)]
    assert model.opcode == _TFLITE_NAMES[op]
    a, b = model.inputs
    assert (a.shape[-1], b.shape[-1]) == (case.size1, case.size2)
    if name.endswith("zp_-128"):
        assert a.zero_point == -128 and b.zero_point == -128
    if name.endswith("zp_127"):
        assert a.zero_point == 127 and b.zero_point == 127
    rng = np.random.default_rng(case.size1 * 7 + case.size2)
    runs = [
        (
            rng.integers(-128, 128, case.size1).astype(np.int8),
            rng.integers(-128, 128, case.size2).astype(np.int8),
        )
        for _ in range(max(8, 2048 // max(case.size1, case.size2)))
    ]
    assert_varied(np.concatenate([np.concatenate(r) for r in runs]), "inputs")
    out = _check_binary(harness, op, model, runs)
    assert_varied(out, "outputs", max_fraction=0.6)
    if case.anti_correlated:
        saturated = {-128, 127} & set(out.tolist())
        # a product calibrated as -a*a has a one-sided range: MUL can only saturate at one end
        assert len(saturated) >= (1 if op == "mul" else 2), f"saturates only at {saturated}"


@pytest.mark.parametrize("size", [1, 400])
def test_one_minus_z_matches_tflm(
    harness: Harness, binary_models: dict[tuple[str, str], oneop.OneOp], size: int
) -> None:
    """`1 - z` as the converter emits it: SUB with a one-element int8 constant first operand."""
    model = binary_models[("sub", f"one_minus_{size}")]
    const, z = model.inputs
    assert model.opcode == "SUB" and z.data is None
    assert const.data is not None and const.data.size == 1
    rng = np.random.default_rng(size)
    runs = [
        (None, rng.integers(-128, 128, size).astype(np.int8)) for _ in range(max(8, 2048 // size))
    ]
    out = _check_binary(harness, "sub", model, runs)
    assert_varied(out, "outputs")


@pytest.fixture(scope="module")
def grid_models() -> dict[str, oneop.OneOp]:
    return dict(_grid_models())


@oneop.shared  # converted once per session, for the host and every board
def _grid_models() -> dict[str, oneop.OneOp]:
    """One model per op over 65536 elements: every int8 pair in one invocation."""
    rng = np.random.default_rng(5)
    return {
        op: oneop.binary(rng, op, GRID1.size, GRID1.size, (-1.0, 1.0), (-1.0, 1.0))
        for op in _OP_CODES
    }


def _requantized(
    model: oneop.OneOp, scales: Sequence[float], zero_points: Sequence[int]
) -> oneop.OneOp:
    a, b = model.inputs
    indices = (a.index, b.index, model.output.index)
    return oneop.with_quantization(
        model, {i: (s, int(z)) for i, s, z in zip(indices, scales, zero_points, strict=True)}
    )


@pytest.mark.parametrize("op", _OP_CODES)
def test_elementwise_exhaustive_under_random_quantizations(
    harness: Harness, grid_models: dict[str, oneop.OneOp], op: str
) -> None:
    """All 65536 input pairs under 30 random quantizations."""
    rng = np.random.default_rng(sum(map(ord, op)))
    outputs = []
    for _ in range(30):
        model = _requantized(
            grid_models[op], random_scales(rng, 1e-3, 1.0, 3), rng.integers(-128, 128, 3)
        )
        outputs.append(_check_binary(harness, op, model, [(GRID1, GRID2)]))
    assert_varied(np.concatenate(outputs), "outputs")


def _float32_ratio_params(
    s1: float, z1: int, s2: float, z2: int, so: float, zo: int
) -> params.AddParams:
    """The SUB parameters of the sub_common.cc versions in TFLM's public history: twice_max and the
    ratios as float32 expressions. The alternative that test_scale_ratios_are_double rules out."""
    f1, f2, fo = np.float32(s1), np.float32(s2), np.float32(so)
    twice_max = np.float32(2) * max(f1, f2)
    pairs = [
        params.quantize_multiplier(float(r))
        for r in (f1 / twice_max, f2 / twice_max, twice_max / (np.float32(1 << 20) * fo))
    ]
    return params.AddParams(-z1, *pairs[0], -z2, *pairs[1], 20, zo, *pairs[2], -128, 127)


# Quantizations on which the float32 and double routes give different multipliers AND a different
# output for one input pair (found by search with qmath's reference ops).
_DISTINGUISHING = {
    "sub": (0.14992767572402954, 98, 0.09153728932142258, 94, 0.019664378836750984, -48),
    "add": (0.1185799092054367, 0, 0.0034333306830376387, -127, 0.015444309450685978, 34),
}


@pytest.mark.parametrize("op", ["sub", "add"])
def test_scale_ratios_are_double(
    harness: Harness, grid_models: dict[str, oneop.OneOp], op: str
) -> None:
    """ADD computes its scale ratios in double. SUB's sources in TFLM's history compute them in
    float32, but the pinned TFLM build matches the double route: this pins which one it is."""
    s1, z1, s2, z2, so, zo = _DISTINGUISHING[op]
    model = _requantized(grid_models[op], (s1, s2, so), (z1, z2, zo))
    out = _check_binary(harness, op, model, [(GRID1, GRID2)])
    alternative = _reference(op, _float32_ratio_params(s1, z1, s2, z2, so, zo), GRID1, GRID2)
    assert (alternative != out).any(), "this quantization no longer tells the two routes apart"


# --------------------------------------------------------------------------------------------
# LOGISTIC, TANH
# --------------------------------------------------------------------------------------------

_TABLES = {"sigmoid": params.logistic_table_s8, "tanh": params.tanh_table_s8}
LUT_RANGES = {
    "typical": (-8.0, 8.0),
    "zp_-128": (0.0, 6.0),
    "zp_127": (-6.0, 0.0),
    "narrow": (-0.3, 0.3),
    "wide_saturating": (-60.0, 60.0),
}


@pytest.fixture(scope="module")
def unary_models() -> dict[tuple[str, str], oneop.OneOp]:
    return dict(_unary_models())


@oneop.shared  # converted once per session, for the host and every board
def _unary_models() -> dict[tuple[str, str], oneop.OneOp]:
    rng = np.random.default_rng(99)
    return {(op, name): oneop.unary(rng, op, r) for op in _TABLES for name, r in LUT_RANGES.items()}


@pytest.mark.parametrize("op", _TABLES)
@pytest.mark.parametrize("name", LUT_RANGES)
def test_lut_matches_tflm(
    harness: Harness, unary_models: dict[tuple[str, str], oneop.OneOp], op: str, name: str
) -> None:
    """The qmath table equals TFLM on all 256 inputs; nsn_lut_s8 with it equals TFLM on random
    vectors of odd sizes."""
    model = unary_models[(op, name)]
    x = model.inputs[0]
    assert model.opcode == {"sigmoid": "LOGISTIC", "tanh": "TANH"}[op]
    expected_out = (1 / 256, -128) if op == "sigmoid" else (1 / 128, 0)
    assert (model.output.scale, model.output.zero_point) == expected_out
    if name.startswith("zp_"):
        assert x.zero_point == int(name[3:])
    tflm = oneop.Tflm(model)
    table = _TABLES[op](x.scale, x.zero_point)
    swept = tflm({x.index: ALL_INT8})
    assert_same(swept, table, f"qmath {op} table")
    assert_varied(swept, "table", max_fraction=0.6)
    rng = np.random.default_rng(len(name))
    vector = rng.integers(-128, 128, 256).astype(np.int8)
    expected = tflm({x.index: vector})
    sizes = (1, 3, 7, 161, 256)
    replies = harness.run([lut_record(table, vector[:n]) for n in sizes])
    for n, reply in zip(sizes, replies, strict=True):
        assert reply.status == NSN_OK
        assert_same(expected[:n], reply.int8(), f"nsn_lut_s8 size {n}")


@pytest.mark.parametrize("op", _TABLES)
def test_lut_tables_under_random_quantizations(
    unary_models: dict[tuple[str, str], oneop.OneOp], op: str
) -> None:
    """300 random input quantizations (scales 10**-3.5 .. 3, any zero point), 256-value sweeps."""
    base = unary_models[(op, "typical")]
    x = base.inputs[0]
    rng = np.random.default_rng(3 + len(op))
    for scale, zp in zip(
        random_scales(rng, 10**-3.5, 3.0, 300), rng.integers(-128, 128, 300), strict=True
    ):
        model = oneop.with_quantization(base, {x.index: (scale, int(zp))})
        swept = oneop.Tflm(model)({x.index: ALL_INT8})
        assert_same(swept, _TABLES[op](scale, int(zp)), f"{op} table, scale {scale!r} zp {zp}")


# --------------------------------------------------------------------------------------------
# int8 -> int8 QUANTIZE
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def requantize_base(unary_models: dict[tuple[str, str], oneop.OneOp]) -> oneop.OneOp:
    return unary_models[("sigmoid", "typical")]


def test_requantize_matches_tflm(harness: Harness, requantize_base: oneop.OneOp) -> None:
    """All 256 inputs under scale ratios from 1/20 to 20 (and exactly 1, and powers of two)."""
    rng = np.random.default_rng(8)
    cases = []
    for in_scale, log_ratio in zip(
        random_scales(rng, 1e-3, 0.5, 60), rng.uniform(-1.3, 1.3, 60), strict=True
    ):
        cases.append((in_scale, float(np.float32(in_scale / 10**log_ratio))))
    cases += [(0.02, 0.02), (0.02, 0.04), (0.02, 0.005), (0.0123, 0.0123 * 3)]
    records, expected_all = [], []
    ratios = []
    for in_scale, out_scale in cases:
        zi, zo = (int(z) for z in rng.integers(-128, 128, 2))
        model = oneop.requantize_model(requantize_base, (in_scale, zi), (out_scale, zo))
        assert model.opcode == "QUANTIZE"
        x, y = model.inputs[0], model.output
        p = params.requantize_params(x.scale, x.zero_point, y.scale, y.zero_point)
        expected = oneop.Tflm(model)({x.index: ALL_INT8})
        assert_same(expected, refops.requantize_s8(p, ALL_INT8), "refops.requantize_s8")
        records += [requantize_record(p, ALL_INT8)] + [
            requantize_record(p, ALL_INT8[:n]) for n in (1, 3, 7)
        ]
        expected_all += [expected] + [expected[:n] for n in (1, 3, 7)]
        ratios.append(x.scale / y.scale)
    for reply, expected in zip(harness.run(records), expected_all, strict=True):
        assert reply.status == NSN_OK
        assert_same(expected, reply.int8(), "nsn_requantize_s8")
    assert min(ratios) < 0.1 and max(ratios) > 10
    assert_varied(np.concatenate(expected_all), "outputs")


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------


def test_kernels_reject_bad_arguments(harness: Harness) -> None:
    add = params.add_params(0.1, 0, 0.1, 0, 0.2, 0)
    mul = params.mul_params(0.1, 0, 0.1, 0, 0.2, 0)
    fc = params.FcParams(0, 0, -128, 127, (1 << 30,), (0,))
    x3, x5 = np.zeros(3, np.int8), np.arange(5, dtype=np.int8)
    replies = harness.run(
        [
            binary_record(OP_ADD, add, x3, x5),
            binary_record(OP_SUB, add, x5, x3),
            binary_record(OP_MUL, mul, x3, x5),
            binary_record(OP_ADD, add, x3[:0], x3[:1]),
            fc_record(fc, np.zeros((1, 0), np.int8), np.zeros((1, 0), np.int8), None),
            _i32(OP_FC_BUFFER_SIZE, 161, 400),
        ]
    )
    assert [r.status for r in replies[:5]] == [NSN_ARG_ERROR] * 5
    assert all(r.data == b"" for r in replies[:5])
    assert replies[5].int32().tolist() == [0]


def test_fc_short_or_misaligned_scratch_is_an_error(harness: Harness) -> None:
    """A scratch one byte short of what the path asks for (a size of -1 where it asks for
    none), or at a misaligned address: NSN_SCRATCH_ERROR and no output, on every path (this
    module: the portable path on the host; test_kernels_arm.py: DSP and MVE in QEMU). No
    scratch at all is an error only where the path needs some; the exact one gives the bits."""
    rng = np.random.default_rng(11)
    path = harness.run_one(_i32(OP_KERNELS_PATH)).data.decode()
    cases = []
    for in_f, out_f in ((400, 9), (161, 5), (33, 3), (3, 2)):
        mults = tuple(int(m) for m in rng.integers(1 << 30, 1 << 31, out_f))
        p = params.FcParams(0, 3, -128, 127, mults, (-9,) * out_f)
        w = rng.integers(-128, 128, (out_f, in_f)).astype(np.int8)
        b = rng.integers(-(1 << 16), 1 << 16, out_f).astype(np.int32)
        x = rng.integers(-128, 128, (2, in_f)).astype(np.int8)
        for mode in (CTX_EXACT, CTX_NULL, CTX_SHORT, CTX_MISALIGNED):
            cases.append((mode, p, x, w, b))
    records = [_i32(OP_FC_CTX, mode, 0) + fc_record(p, x, w, b)[4:] for mode, p, x, w, b in cases]
    for (mode, p, x, w, b), reply in zip(cases, harness.run(records), strict=True):
        error = mode in (CTX_SHORT, CTX_MISALIGNED) or (mode == CTX_NULL and path == "dsp")
        if error:
            assert reply.status == NSN_SCRATCH_ERROR and reply.data == b"", (path, mode)
        else:
            assert reply.status == NSN_OK, (path, mode)
            assert_same(refops.fc_s8(p, x, w, b), reply.int8(), f"{path} ctx mode {mode}")


# --------------------------------------------------------------------------------------------
# FULLY_CONNECTED, batched and block-sparse (nsn_fully_connected_batch_s8)
# --------------------------------------------------------------------------------------------

# the GRU gate shapes of GTCRN (16 and 32 wide), plus column counts off the DSP word loops
FCB_CASES = {
    "gate_32x32": FcCase(32, 32, None, True, (-1.0, 1.0)),
    "gate_16x48": FcCase(16, 48, None, True, (-2.0, 2.0)),
    "odd_24x20_relu": FcCase(24, 20, "relu", True, (-1.0, 3.0), 0.5),
}


@pytest.fixture(scope="module")
def fcb_models() -> dict[str, oneop.OneOp]:
    return dict(_fcb_models())


@oneop.shared  # converted once per session, for the host and every board
def _fcb_models() -> dict[str, oneop.OneOp]:
    rng = np.random.default_rng(2026)
    return {
        name: oneop.fully_connected(
            rng, c.input_features, c.output_features, activation=c.activation,
            use_bias=c.use_bias, input_range=c.input_range, bias_mean=c.bias_mean)
        for name, c in FCB_CASES.items()
    }


def _fc_batch_fields(p: params.FcParams, blocks, bias: np.ndarray | None, n_in: int,
                     batches: int | None) -> bytes:
    n_out = len(p.multipliers)
    fields = _i32(len(blocks), *(v for b in blocks for v in b), p.input_offset, p.output_offset,
                  p.activation_min, p.activation_max, n_in, n_out, int(bias is not None))
    if batches is not None:
        fields += _i32(batches)
    fields += _i32(*p.multipliers) + _i32(*p.shifts)
    if bias is not None:
        fields += np.asarray(bias, dtype="<i4").tobytes()
    return fields


def fc_batch_record(p: params.FcParams, x: np.ndarray, blocks, packed: np.ndarray,
                    bias: np.ndarray | None, n_in: int, ctx_mode: int = CTX_EXACT,
                    misalign: int = 0, records_mode: int = RECORDS_NULL,
                    records: np.ndarray | None = None) -> bytes:
    """OP_FC_BATCH: every row of x in one nsn_fully_connected_batch_s8 call."""
    x = np.atleast_2d(x)
    head = _i32(OP_FC_BATCH, ctx_mode, misalign, records_mode, len(packed))
    given = b"" if records is None else np.asarray(records, dtype="<i4").tobytes()
    return head + _fc_batch_fields(p, blocks, bias, n_in, len(x)) + given + _i8(packed) + _i8(x)


def fc_batch_prepare_record(p: params.FcParams, blocks, bias: np.ndarray | None,
                            n_in: int) -> bytes:
    return _i32(OP_FC_BATCH_PREPARE) + _fc_batch_fields(p, blocks, bias, n_in, None)


def grouped(weights: np.ndarray, groups: int, interleave: int) -> np.ndarray:
    """The weights of a grouped matmul: output channel c reads only the columns of group
    (c // interleave) % groups (as GTCRN's grouped GRU gates: 75 % or 50 % structural zeros)."""
    out_f, in_f = weights.shape
    w = np.zeros_like(weights)
    edges = np.linspace(0, in_f, groups + 1).astype(int)
    for c in range(out_f):
        g = (c // interleave) % groups
        w[c, edges[g]:edges[g + 1]] = weights[c, edges[g]:edges[g + 1]]
    return w


def _fc_batch_plan(model: oneop.OneOp, vectors: np.ndarray, misalign: int = 0):
    """The records checking one model: TFLM row by row against batched calls with the
    compiler's packing of the weights (and the dense layout, one block), the records NULL (set
    up per call, or the per-row form for one or two rows), prepared by the C function, and the
    compiler's (equal to the C function's, or both refuse). Returns the records (the first
    asks the C prepare) and the check of their replies."""
    from nsconv.compiler import packing

    x, w, b = model.inputs[0], model.inputs[1], model.inputs[2] if len(model.inputs) > 2 else None
    bias = None if b is None else b.data
    p = _fc_params(model)
    tflm = oneop.Tflm(model)
    expected = np.stack([tflm({x.index: v}) for v in vectors])
    n_out, n_in = w.data.shape
    blocks, packed = packing.pack_fc_blocks(w.data)
    assert_same(w.data, packing.unpack_fc_blocks(blocks, packed, n_in), "pack_fc_blocks")
    dense = ([(n_out, 0, n_in)], w.data.reshape(-1))
    records = packing.fc_records(blocks, bias, p.multipliers, p.shifts, p.input_offset,
                                 p.output_offset)
    runs = [(bl, pk, rows, RECORDS_NULL, None) for bl, pk in ((blocks, packed), dense)
            for rows in (None, 1, 2)]
    if records is not None:
        runs += [(blocks, packed, rows, mode, records if mode == RECORDS_GIVEN else None)
                 for rows in (None, 1) for mode in (RECORDS_PREPARED, RECORDS_GIVEN)]
    out = [fc_batch_prepare_record(p, blocks, bias, n_in)]
    out += [fc_batch_record(p, vectors[:rows], bl, pk, bias, n_in, misalign=misalign,
                            records_mode=mode, records=rec) for bl, pk, rows, mode, rec in runs]

    def check(replies: list[Reply]) -> np.ndarray:
        prepared = replies[0]
        if records is None:
            assert prepared.status == NSN_ARG_ERROR and prepared.data == b""
        else:
            assert prepared.status == NSN_OK
            assert_same(records.reshape(-1), prepared.int32(), "fc_records vs the C prepare")
        for reply, (bl, _, rows, mode, _) in zip(replies[1:], runs, strict=True):
            assert reply.status == NSN_OK
            assert_same(expected[:rows].reshape(-1), reply.int8(),
                        f"nsn_fully_connected_batch_s8 ({len(bl)} blocks, rows {rows}, "
                        f"records {mode})")
        return expected

    return out, check


def _run_fc_batch_plans(harness: Harness, plans) -> list[np.ndarray]:
    """Every plan's records in one run of the harness (one QEMU start on a board)."""
    replies = harness.run([r for records, _ in plans for r in records])
    results, pos = [], 0
    for records, check in plans:
        results.append(check(replies[pos : pos + len(records)]))
        pos += len(records)
    return results


FCB_GROUPINGS = ((1, 1), (2, 8), (4, 4), (8, 2), (3, 1))


def test_fc_batch_matches_tflm(harness: Harness, fc_models: dict[str, oneop.OneOp],
                               fcb_models: dict[str, oneop.OneOp]) -> None:
    """Grouped (block-diagonal) weights in the TFLM model, the compiler's block packing, all
    rows in one call: every block width the DSP path specializes (4, 8, 16 columns), others,
    ranges off multiples of 4 (161, 3 groups), empty channels, misaligned weights, the input
    offset of -128 and 127, RELU, and saturation at both ends (the vectors of _fc_vectors)."""
    plans = []
    for name in (*FCB_CASES, "fc1_161x400_relu", "zp_in_-128_out_127", "zp_in_127"):
        base = fcb_models[name] if name in FCB_CASES else fc_models[name]
        w = base.inputs[1]
        for groups, interleave in FCB_GROUPINGS:
            if name == "fc1_161x400_relu" and groups not in (1, 4):
                continue  # the large case: dense and 4 groups only (time)
            model = oneop.with_quantization(
                base, {}, constants={w.index: grouped(w.data, groups, interleave)})
            rng = np.random.default_rng(groups * 100 + interleave)
            vectors = _fc_vectors(rng, model.inputs[1].data)
            plans.append(_fc_batch_plan(model, vectors, misalign=groups % 4))
    for out in _run_fc_batch_plans(harness, plans):
        assert_varied(out, "FC batch outputs", max_fraction=0.7)


def test_fc_batch_quantization_sweep(harness: Harness, fcb_models: dict[str, oneop.OneOp]) -> None:
    """Random quantizations of the grouped 32x32 gate, among them multipliers above 1 (shift
    >= 0) and extreme output zero points: the channels the DSP path hands to the portable
    loop; then biases near the int32 ends (sums beyond its 2^30 bound)."""
    from nsconv.compiler import packing

    base = fcb_models["gate_32x32"]
    x, w, b = base.inputs
    rng = np.random.default_rng(77)
    shifts, prepared, plans = set(), set(), []
    for i in range(8):
        (xs,), (ys,) = random_scales(rng, 1e-3, 0.1, 1), random_scales(rng, 1e-3, 1.0, 1)
        ws = random_scales(rng, 1e-4, 0.05, len(w.scales))
        if i < 2:
            ys = float(np.float32(xs * min(ws) / 3.0))
        zps = rng.integers(-128, 128, 2) if i % 3 else np.array([-128, 127])
        constants = {w.index: grouped(w.data, 4, 4)}
        if i >= 6:
            big = rng.integers(1 << 29, (1 << 31) - (1 << 20), len(w.scales))
            constants[b.index] = big * rng.choice([-1, 1], len(w.scales))
        model = oneop.with_quantization(
            base, {x.index: (xs, int(zps[0])), base.output.index: (ys, int(zps[1]))},
            weight_scales=ws, constants=constants)
        p = _fc_params(model)
        shifts.update(p.shifts)
        blocks, _ = packing.pack_fc_blocks(model.inputs[1].data)
        prepared.add(packing.fc_records(blocks, model.inputs[2].data, p.multipliers, p.shifts,
                                        p.input_offset, p.output_offset) is not None)
        plans.append(_fc_batch_plan(model, rng.integers(-128, 128, (9, 32)).astype(np.int8)))
    _run_fc_batch_plans(harness, plans)
    assert min(shifts) < -5 and max(shifts) > 0
    assert prepared == {True, False}, "both prepared records and refused ones"


def test_fc_batch_arguments_and_scratch(harness: Harness) -> None:
    """Blocks that miss a channel, cover one twice, are empty or read past the row:
    NSN_ARG_ERROR; the scratch contract of nsn_fully_connected_s8 (short or misaligned:
    NSN_SCRATCH_ERROR; none: an error only where the path needs some), no output."""
    rng = np.random.default_rng(5)
    path = harness.run_one(_i32(OP_KERNELS_PATH)).data.decode()
    n_in, n_out = 12, 6
    p = params.FcParams(0, 3, -128, 127, tuple(int(m) for m in rng.integers(1 << 30, 1 << 31,
                                                                            n_out)), (-9,) * n_out)
    x = rng.integers(-128, 128, (3, n_in)).astype(np.int8)
    bias = rng.integers(-999, 999, n_out).astype(np.int32)
    good = [(2, 0, 4), (4, 4, 8)]
    packed = rng.integers(-128, 128, 2 * 4 + 4 * 8).astype(np.int8)
    bad = [[(2, 0, 4), (3, 4, 8)], [(2, 0, 4), (5, 4, 8)], [(2, 0, 4), (0, 0, 0), (4, 4, 8)],
           [(2, 0, 4), (4, 8, 8)], []]
    records = [fc_batch_record(p, x, bl, packed, bias, n_in) for bl in bad]
    modes = (CTX_EXACT, CTX_NULL, CTX_SHORT, CTX_MISALIGNED)
    records += [fc_batch_record(p, x, good, packed, bias, n_in, ctx_mode=m) for m in modes]
    replies = harness.run(records)
    for reply in replies[: len(bad)]:
        assert reply.status == NSN_ARG_ERROR and reply.data == b""
    dense = np.zeros((n_out, n_in), np.int8)
    dense[:2, 0:4] = packed[:8].reshape(2, 4)
    dense[2:, 4:12] = packed[8:].reshape(4, 8)
    for mode, reply in zip(modes, replies[len(bad):], strict=True):
        if mode in (CTX_SHORT, CTX_MISALIGNED) or (mode == CTX_NULL and path != "reference"):
            assert reply.status == NSN_SCRATCH_ERROR and reply.data == b"", (path, mode)
        else:
            assert reply.status == NSN_OK, (path, mode)
            assert_same(refops.fc_s8(p, x, dense, bias), reply.int8(), f"{path} mode {mode}")


# --------------------------------------------------------------------------------------------
# Several FULLY_CONNECTEDs on one input in one call (nsn_fully_connected_batch_multi_s8)
# --------------------------------------------------------------------------------------------


def fc_multi_record(ops, x: np.ndarray, ctx_mode: int = CTX_EXACT) -> bytes:
    """OP_FC_BATCH_MULTI; ops: (params, blocks, packed, bias, n_in, records or None)."""
    x = np.atleast_2d(x)
    out = _i32(OP_FC_BATCH_MULTI, ctx_mode, len(ops), len(x))
    for p, blocks, packed, bias, n_in, rec in ops:
        out += _i32(RECORDS_NULL if rec is None else RECORDS_GIVEN, len(packed))
        out += _fc_batch_fields(p, blocks, bias, n_in, None)
        out += b"" if rec is None else np.asarray(rec, dtype="<i4").tobytes()
        out += _i8(packed)
    return out + _i8(x)


def _multi_op(model: oneop.OneOp, with_records: bool = True):
    """A model's op for fc_multi_record (records by the compiler's fc_records) and its TFLM."""
    from nsconv.compiler import packing

    w, b = model.inputs[1], model.inputs[2] if len(model.inputs) > 2 else None
    bias = None if b is None else b.data
    p = _fc_params(model)
    blocks, packed = packing.pack_fc_blocks(w.data)
    rec = packing.fc_records(blocks, bias, p.multipliers, p.shifts, p.input_offset,
                             p.output_offset) if with_records else None
    assert rec is not None or not with_records
    return (p, blocks, packed, bias, w.shape[1], rec), oneop.Tflm(model)


def _multi_variants(base: oneop.OneOp, rng: np.random.Generator, groups: int, interleave: int,
                    zps) -> list[oneop.OneOp]:
    """base with grouped weights and its output at the scales and zero points zps (and the
    input zero point when a pair is given)."""
    x, w = base.inputs[0], base.inputs[1]
    out = []
    for zp in zps:
        y_zp, x_zp = (zp, x.zero_point) if np.isscalar(zp) else zp
        scale = float(base.output.scale * rng.uniform(0.5, 2.0))
        out.append(oneop.with_quantization(
            base, {base.output.index: (scale, int(y_zp)), x.index: (x.scale, int(x_zp))},
            constants={w.index: grouped(w.data, groups, interleave)}))
    return out


def test_fc_batch_multi_matches_tflm(harness: Harness, fcb_models: dict[str, oneop.OneOp]) -> None:
    """Several ops on one input in one call, each equal to TFLM with its own output zero point,
    scale and bias: a GRU step's case (one row, 4-column blocks, records: the DSP path expands
    the row once), several rows, an op without records, 8-column and dense blocks among 4-column
    ones, 16-column blocks at 0 and 16, 8-column ranges at 4, rows in fours, twos and one (the
    DSP path's multi-row loops), ops with different input zero
    points (the expanded row is not shared) and RELU ops (the narrower range); saturation at
    both ends (_fc_vectors)."""
    rng = np.random.default_rng(31)
    gate, relu = fcb_models["gate_16x48"], fcb_models["odd_24x20_relu"]
    a, b = _multi_variants(gate, rng, 4, 4, (-128, 127))
    c, d = _multi_variants(gate, rng, 2, 8, (5,)) + _multi_variants(gate, rng, 1, 1, (-7,))
    e, f = _multi_variants(gate, rng, 4, 4, ((3, -128), (-3, 127)))
    r1, r2 = _multi_variants(relu, rng, 6, 4, (-100, 20))
    g1, g2 = _multi_variants(fcb_models["gate_32x32"], rng, 2, 16, (-20, 90))
    (t,) = _multi_variants(gate, rng, 3, 1, (11,))  # column ranges 8 wide at 0, 4, 8
    cases = [((a, True), (b, True)), ((a, True), (b, False)), ((a, True), (c, True), (d, True)),
             ((e, True), (f, True)), ((r1, True), (r2, True)), ((b, True),),
             ((g1, True), (g2, True)), ((t, True), (a, True))]
    records, checks = [], []
    for case in cases:
        ops = [_multi_op(m, given) for m, given in case]
        vectors = _fc_vectors(rng, case[0][0].inputs[1].data)
        for rows in (1, 3, 7):
            x = vectors[:rows]
            expected = np.concatenate([np.stack([t({case[0][0].inputs[0].index: v}) for v in x])
                                       .reshape(-1) for _, t in ops])
            records.append(fc_multi_record([o for o, _ in ops], x))
            checks.append((expected, f"{len(ops)} ops, rows {rows}, "
                           f"records {[given for _, given in case]}"))
        one = fc_multi_record([o for o, _ in ops], vectors)
        records.append(one)
        checks.append((np.concatenate([np.stack([t({case[0][0].inputs[0].index: v})
                                                 for v in vectors]).reshape(-1)
                                       for _, t in ops]), f"{len(ops)} ops, every vector"))
    for reply, (expected, what) in zip(harness.run(records), checks, strict=True):
        assert reply.status == NSN_OK, what
        assert_same(expected, reply.int8(), f"nsn_fully_connected_batch_multi_s8: {what}")


def test_fc_batch_multi_arguments(harness: Harness, fcb_models: dict[str, oneop.OneOp]) -> None:
    """Ops of different input widths, blocks that miss a channel (an op without records), the
    scratch contract (the largest op's size): an error and no output."""
    path = harness.run_one(_i32(OP_KERNELS_PATH)).data.decode()
    (a, _), (r, _) = (_multi_op(fcb_models[n]) for n in ("gate_16x48", "odd_24x20_relu"))
    x = np.zeros((1, 16), np.int8)
    bad_blocks = (*a[:1], [(47, 0, 16)], a[2][: 47 * 16], *a[3:5], None)
    records = [fc_multi_record([a, r], x), fc_multi_record([a, bad_blocks], x)]
    modes = (CTX_NULL, CTX_SHORT, CTX_MISALIGNED)
    records += [fc_multi_record([a, a], x, ctx_mode=m) for m in modes]
    replies = harness.run(records)
    for reply in replies[:2]:
        assert reply.status == NSN_ARG_ERROR and reply.data == b""
    for mode, reply in zip(modes, replies[2:], strict=True):
        if mode == CTX_NULL and path == "reference":
            assert reply.status == NSN_OK
        else:
            assert reply.status == NSN_SCRATCH_ERROR and reply.data == b"", (path, mode)
