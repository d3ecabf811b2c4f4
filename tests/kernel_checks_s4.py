# SPDX-License-Identifier: Apache-2.0
"""nsn_fully_connected_s4 (packed 4-bit weights) against TFLM, value for value.

The oracle is TFLM's int8 FULLY_CONNECTED on a one-op model from the real converter whose filter
was rewritten onto the int4 grid by nsconv.quant.int4 (values in [-7, 7] stored as int8, int4
per-channel scales, the bias re-quantized): what an int4 layer of an nsconv export is. The C
kernel gets the same values packed two per byte (nsconv.compiler.packing.pack_s4). qmath's
refops.fc_s8 on the unpacked values is checked equal to TFLM on the same vectors, and is the
oracle of the shape and edge sweeps (every residue of the 16-weight chunks, the 2-row DSP and
4-row MVE blocking, nibble -8, input offsets, weight misalignment, the scratch contract).

Like kernel_checks.py, a helper module: tests/test_kernels.py runs these with the sanitized host
driver (the portable path), tests/test_kernels_arm.py with the driver on each board (DSP on
Cortex-M4/M7/M33, MVE on Cortex-M55).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import oneop
import pytest
from kernel_checks import (
    CTX_EXACT,
    CTX_MISALIGNED,
    CTX_NULL,
    CTX_SHORT,
    NSN_ARG_ERROR,
    NSN_OK,
    NSN_SCRATCH_ERROR,
    OP_FC_S4_BUFFER_SIZE,
    OP_FC_S4_CTX,
    OP_KERNELS_PATH,
    Harness,
    _fc_params,
    _fc_vectors,
    _i8,
    _i32,
    assert_same,
    assert_varied,
)
from nsconv.compiler.packing import pack_s4, row_bytes
from nsconv.quant import fixedpoint, params, refops
from nsconv.quant.fixedpoint import INT32_MAX
from nsconv.quant.int4 import Int4Weights, patch_fc_weights, rtn
from nsconv.quant.params import Activation


def fc_s4_record(
    p: params.FcParams,
    x: np.ndarray,
    weights: np.ndarray,
    bias: np.ndarray | None,
    ctx_mode: int = CTX_EXACT,
    misalign: int = 0,
) -> bytes:
    """OP_FC_S4_CTX: the fields of an OP_FULLY_CONNECTED record with the weights packed."""
    x = np.atleast_2d(x)
    out_f, in_f = weights.shape
    header = _i32(
        OP_FC_S4_CTX, ctx_mode, misalign, p.input_offset, p.output_offset, p.activation_min,
        p.activation_max, in_f, out_f, int(bias is not None), len(x),
    )
    body = _i32(*p.multipliers) + _i32(*p.shifts)
    if bias is not None:
        body += np.asarray(bias, dtype="<i4").tobytes()
    return header + body + _i8(pack_s4(weights)) + _i8(x)


def fold_input_offset(
    p: params.FcParams, weights: np.ndarray, bias: np.ndarray | None
) -> tuple[params.FcParams, np.ndarray]:
    """The code generator's form: bias + input_offset * row sum (int32, wrapping), offset 0."""
    b = np.zeros(weights.shape[0], np.int64) if bias is None else bias.astype(np.int64)
    folded = fixedpoint.wrap_int32(b + p.input_offset * weights.astype(np.int64).sum(axis=1))
    zero = params.FcParams(0, p.output_offset, p.activation_min, p.activation_max,
                           p.multipliers, p.shifts)
    return zero, folded.astype(np.int32)


# --------------------------------------------------------------------------------------------
# Against TFLM: int4-grid one-op models, every fused activation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S4Case:
    input_features: int
    output_features: int
    use_bias: bool
    input_range: tuple[float, float]
    bias_mean: float = 0.0


# nsNet2's input sizes (161, 400, 600) and sizes that are no multiple of 4, 8 or 16
S4_CASES = {
    "161x40": S4Case(161, 40, True, (-6.0, 2.0), 0.5),
    "400x37": S4Case(400, 37, True, (-1.0, 1.0)),
    "600x21": S4Case(600, 21, True, (0.0, 3.0), 0.3),
    "33x6": S4Case(33, 6, True, (-2.0, 3.0)),
    "7x3_no_bias": S4Case(7, 3, False, (-2.0, 3.0)),
    "1x7": S4Case(1, 7, True, (-3.0, 3.0)),
}
ACTIVATIONS = list(Activation)


def int4_grid(model: oneop.OneOp) -> oneop.OneOp:
    """The model with its filter rounded to the int4 grid (nsconv.quant.int4)."""
    w = model.inputs[1]
    real = w.data.astype(np.float32) * np.asarray(w.scales, np.float32)[:, None]
    q, s = rtn(real)
    return oneop.parse(patch_fc_weights(model.flatbuffer, {w.index: Int4Weights(q, s)}))


@pytest.fixture(scope="module")
def s4_models() -> dict[str, oneop.OneOp]:
    return dict(_s4_models())


@oneop.shared  # converted once per session, for the host and every board
def _s4_models() -> dict[str, oneop.OneOp]:
    rng = np.random.default_rng(404)
    return {
        name: int4_grid(oneop.fully_connected(
            rng, c.input_features, c.output_features, activation=None, use_bias=c.use_bias,
            input_range=c.input_range, bias_mean=c.bias_mean,
        ))
        for name, c in S4_CASES.items()
    }


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=[a.name for a in ACTIVATIONS])
def test_fc_s4_matches_tflm(
    harness: Harness, s4_models: dict[str, oneop.OneOp], activation: Activation
) -> None:
    """Every case under this fused activation: TFLM == refops.fc_s8 == the s4 kernel, with the
    model's input offset, and folded into the bias (the generated code's form) with the packed
    weights misaligned."""
    records, expected, saturated = [], [], set()
    for name, base in s4_models.items():
        model = oneop.with_activation(base, activation)
        x, w = model.inputs[0], model.inputs[1]
        b = model.inputs[2] if len(model.inputs) > 2 else None
        bias = None if b is None else b.data
        assert w.data.min() >= -7 and w.data.max() <= 7 and w.data.min() < -3 and w.data.max() > 3
        p = _fc_params(model)
        rng = np.random.default_rng(len(name) * 17 + int(activation))
        vectors = _fc_vectors(rng, w.data)
        tflm = oneop.Tflm(model)
        out = np.stack([tflm({x.index: v}) for v in vectors])
        assert_same(out, refops.fc_s8(p, vectors, w.data, bias), f"refops.fc_s8 {name}")
        folded_p, folded_b = fold_input_offset(p, w.data, bias)
        records += [fc_s4_record(p, vectors, w.data, bias),
                    fc_s4_record(folded_p, vectors, w.data, folded_b, misalign=1)]
        expected += [(name, out), (f"{name} folded", out)]
        saturated |= {int(v) for v in out.ravel()} & {p.activation_min, p.activation_max}
    for (what, out), reply in zip(expected, harness.run(records), strict=True):
        assert reply.status == NSN_OK, what
        assert_same(out, reply.int8(), f"nsn_fully_connected_s4 {what} {activation.name}")
    assert_varied(np.concatenate([o.ravel() for _, o in expected]), "outputs", 0.6)
    assert len(saturated) >= 2, f"{activation.name}: outputs reach only {saturated}"


# --------------------------------------------------------------------------------------------
# Shapes, offsets, nibble -8, misalignment: against qmath
# --------------------------------------------------------------------------------------------

S4_SHAPES = [
    (i, o) for i in (1, 2, 3, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 47, 48, 63, 65, 161)
    for o in (1, 2, 3, 5)
] + [(i, o) for i in (16, 17, 400) for o in (4, 7, 31, 32, 33, 65)] + [(600, 37), (400, 100)]


def _random_params(rng: np.random.Generator, out_f: int, offset: int, k: int) -> params.FcParams:
    multipliers = rng.integers(1 << 30, INT32_MAX, out_f, endpoint=True)
    shifts = rng.integers(-14, 2, out_f, endpoint=True)
    zo = int(rng.integers(-128, 128))
    lo, hi = [(-128, 127), (zo, 127), (max(-128, zo - 20), min(127, zo + 30))][k % 3]
    return params.FcParams(offset, zo, lo, hi, tuple(int(m) for m in multipliers),
                           tuple(int(s) for s in shifts))


def test_fc_s4_shapes_match_qmath(harness: Harness) -> None:
    """Every residue of the chunking and row blocking; input offsets 0, 128, -127 and random
    (DSP: in the expansion; MVE: the portable loop unless 0); the full nibble range [-8, 7];
    with and without bias; the packed weights at each misalignment."""
    rng = np.random.default_rng(44)
    records, expected = [], []
    for k, (in_f, out_f) in enumerate(S4_SHAPES):
        offset = [0, 0, 128, -127, int(rng.integers(-127, 129))][k % 5]
        p = _random_params(rng, out_f, offset, k)
        w = rng.integers(-8, 8, (out_f, in_f)).astype(np.int8)
        bias = None if k % 4 == 3 else rng.integers(-(1 << 18), 1 << 18, out_f).astype(np.int32)
        x = rng.integers(-128, 128, (2, in_f)).astype(np.int8)
        records.append(fc_s4_record(p, x, w, bias, misalign=k % 4))
        expected.append((f"s4 {in_f}x{out_f} offset {offset} misalign {k % 4}",
                         refops.fc_s8(p, x, w, bias)))
    for (what, out), reply in zip(expected, harness.run(records), strict=True):
        assert reply.status == NSN_OK, what
        assert_same(out, reply.int8(), what)
    assert_varied(np.concatenate([o.ravel() for _, o in expected]), "outputs", 0.6)


def test_fc_s4_extreme_accumulators(harness: Harness) -> None:
    """NSN_FC_S4_MAX_INPUT_FEATURES (32768) inputs at the int8 ends, weights -8 and 7, input
    offsets 128 and -128: the largest dot products the kernel takes (16 x them stays inside
    int32 on the DSP path)."""
    n = 32768
    w = np.stack([np.full(n, -8), np.full(n, 7), np.where(np.arange(n) % 2, 7, -8)]).astype(np.int8)
    x = np.stack([np.full(n, -128), np.full(n, 127), np.where(np.arange(n) % 3, 127, -128)])
    x = x.astype(np.int8)
    records, expected = [], []
    for offset in (128, -128, 0):
        p = params.FcParams(offset, -5, -128, 127, (1 << 30,) * 3, (-21,) * 3)
        records.append(fc_s4_record(p, x, w, None))
        expected.append(refops.fc_s8(p, x, w, None))
    for out, reply in zip(expected, harness.run(records), strict=True):
        assert reply.status == NSN_OK
        assert_same(out, reply.int8(), "s4 extreme accumulators")
    assert_varied(np.concatenate([o.ravel() for o in expected]), "outputs", 0.6)


def test_fc_s4_scratch_and_arguments(harness: Harness) -> None:
    """The scratch contract of nsn_fully_connected_s8 (a short or misaligned scratch is an
    error on every path, none at all where the path needs some) and the size limits."""
    path = harness.run_one(_i32(OP_KERNELS_PATH)).data.decode()
    need = {"dsp": lambda n: 32 * -(-n // 16), "mve": lambda n: 32 * -(-n // 32),
            "reference": lambda n: 0}[path]
    sizes = harness.run([_i32(OP_FC_S4_BUFFER_SIZE, n, 3) for n in (1, 16, 17, 161, 400, 600)])
    assert [int(r.int32()[0]) for r in sizes] == [need(n) for n in (1, 16, 17, 161, 400, 600)]
    rng = np.random.default_rng(12)
    cases = []
    for in_f, out_f in ((400, 9), (161, 5), (33, 3)):
        p = _random_params(rng, out_f, 0, 0)
        w = rng.integers(-8, 8, (out_f, in_f)).astype(np.int8)
        b = rng.integers(-(1 << 16), 1 << 16, out_f).astype(np.int32)
        x = rng.integers(-128, 128, (2, in_f)).astype(np.int8)
        cases += [(mode, p, x, w, b) for mode in (CTX_EXACT, CTX_NULL, CTX_SHORT, CTX_MISALIGNED)]
    records = [fc_s4_record(p, x, w, b, ctx_mode=mode) for mode, p, x, w, b in cases]
    for (mode, p, x, w, b), reply in zip(cases, harness.run(records), strict=True):
        if mode in (CTX_SHORT, CTX_MISALIGNED) or (mode == CTX_NULL and path != "reference"):
            assert reply.status == NSN_SCRATCH_ERROR and reply.data == b"", (path, mode)
        else:
            assert reply.status == NSN_OK, (path, mode)
            assert_same(refops.fc_s8(p, x, w, b), reply.int8(), f"{path} ctx mode {mode}")
    p = params.FcParams(0, 0, -128, 127, (1 << 30,), (0,))
    bad = [np.zeros((1, 0), np.int8), np.zeros((1, 32769), np.int8)]
    replies = harness.run([fc_s4_record(p, np.zeros((1, w.shape[1]), np.int8), w, None)
                           for w in bad])
    assert [r.status for r in replies] == [NSN_ARG_ERROR] * 2
    assert all(r.data == b"" for r in replies)
    assert row_bytes(32769) == 8 * 2049
