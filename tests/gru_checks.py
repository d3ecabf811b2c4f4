# SPDX-License-Identifier: Apache-2.0
"""nsn_gru_gates_s8 (the fused gate arithmetic of a GRU step) against TFLM, value for value.

A small TF graph computing one GRU step's gates after its matmuls (z, r = split(sigmoid(x_zr +
h_zr)); n = tanh(x_n + r * h_n); h' = n + z * (h - n), as nsconv.model.gtcrn_compact writes
it) is converted by the real TFLite converter to full int8: ADD, LOGISTIC, SPLIT, MUL, ADD,
TANH, SUB, MUL, ADD. The code generator's own pass (compiler/ndcodegen.py `gru_chains`) must
find that chain; its parameters (`gru_gates_params`, `gru_dsp_constants`) and the two tables go
to the kernel in the test driver (tests/kernel_harness/harness.c, OP_GRU_GATES), and h' must
equal what TFLM computes op by op. Every case runs twice, with the DSP constants and without
them (the portable loop on every core), and the chain's quantization is swept by rewriting the
model's scales and zero points (TFLM recomputes its parameters): extreme zero points,
saturating scales. tests/test_kernels.py runs these on the host (ASan/UBSan), and
tests/test_kernels_arm.py on every board in QEMU (DSP on M4/M7/M33, MVE on M55).
"""

from __future__ import annotations

import functools
import os
import tempfile
import warnings
from dataclasses import astuple, dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import oneop  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from nsconv.compiler import layout, ndcodegen  # noqa: E402
from nsconv.compiler.ndgraph import read_nd  # noqa: E402
from nsconv.compiler.tflm_tables import lut_s8  # noqa: E402
from tensorflow.lite.python import schema_py_generated as schema  # noqa: E402
from tflite_micro.python.tflite_micro import runtime  # noqa: E402

OP_GRU_GATES = 15  # tests/kernel_harness/harness.c
NSN_OK, NSN_ARG_ERROR = 0, -1
_INPUTS = ("x_zr", "h_zr", "h_n", "x_n", "h")


def _gru_graph(rows: int, hidden: int, z_first: bool):
    def step(x_zr, h_zr, h_n, x_n, h):
        a, b = tf.split(tf.sigmoid(x_zr + h_zr), 2, axis=-1)
        z, r = (a, b) if z_first else (b, a)
        n = tf.tanh(x_n + r * h_n)
        return n + z * (h - n)

    return step


def convert_fn(fn, rows: int, hidden: int, rng: np.random.Generator) -> bytes:
    """fn(x_zr, h_zr, h_n, x_n, h) as full-int8 TFLite from the real converter, calibrated on
    uniform inputs ([rows, 2H] x_zr and h_zr, [rows, H] the others)."""
    step = tf.function(fn, input_signature=[
        tf.TensorSpec((rows, w * hidden), tf.float32, name=n)
        for n, w in zip(_INPUTS, (2, 2, 1, 1, 1), strict=True)])

    def representative():
        for _ in range(16):
            yield [rng.uniform(-lim, lim, (rows, w * hidden)).astype(np.float32)
                   for w, lim in zip((2, 2, 1, 1, 1), (3.0, 2.0, 1.5, 2.0, 1.0), strict=True)]

    conv = tf.lite.TFLiteConverter.from_concrete_functions([step.get_concrete_function()], step)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    conv.representative_dataset = representative
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return conv.convert()


@functools.cache  # shared by the host and the board modules of one session
def convert_chain(rows: int, hidden: int, z_first: bool, seed: int) -> bytes:
    """The chain as full-int8 TFLite from the real converter."""
    return convert_fn(_gru_graph(rows, hidden, z_first), rows, hidden,
                      np.random.default_rng(seed))


def requantized(flatbuffer: bytes, rng: np.random.Generator, extreme: bool) -> bytes:
    """The same chain with random (scale, zero point) on every tensor whose quantization TFLM
    takes as given (not LOGISTIC's, TANH's or SPLIT's outputs, which TFLM fixes)."""
    m = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    sg = m.subgraphs[0]
    fixed = set()
    for op in sg.operators:
        code = m.operatorCodes[op.opcodeIndex]
        kind = max(code.builtinCode, code.deprecatedBuiltinCode)
        if kind in (schema.BuiltinOperator.LOGISTIC, schema.BuiltinOperator.TANH,
                    schema.BuiltinOperator.SPLIT):
            fixed.update(int(o) for o in op.outputs)
    for i, t in enumerate(sg.tensors):
        if i in fixed or t.type != schema.TensorType.INT8 or t.quantization is None:
            continue
        zp = int(rng.choice([-128, 127])) if extreme and rng.random() < 0.5 else int(
            rng.integers(-128, 128))
        t.quantization.scale = [float(np.float32(np.exp(rng.uniform(np.log(1e-3),
                                                                     np.log(0.2)))))]
        t.quantization.zeroPoint = [zp]
    b = __import__("flatbuffers").Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


@dataclass(frozen=True)
class Case:
    records: tuple[bytes, ...]  # one per input set, without the DSP constants
    records_dsp: tuple[bytes, ...]  # with them (empty: the generator would emit NULL)
    expected: np.ndarray  # TFLM's h', all input sets back to back
    what: str


def _i32(*v: int) -> bytes:
    return np.asarray(v, dtype="<i4").tobytes()


def make_case(flatbuffer: bytes, rng: np.random.Generator, vectors: int, what: str) -> Case:
    """TFLM's h' for `vectors` random input sets, and the kernel records for the chain the code
    generator finds in the model."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chain.tflite"
        path.write_bytes(flatbuffer)
        g = read_nd(path)
    chains = ndcodegen.gru_chains(g, layout.fold(g))
    assert len(chains) == 1, f"{what}: the pass found {len(chains)} chains"
    c = chains[0]
    prs = ndcodegen.gru_gates_params(g, c)
    dsp = ndcodegen.gru_dsp_constants(prs)
    head = (_i32(OP_GRU_GATES) + b"".join(_i32(*astuple(pr)) for pr in prs.values())
            + _i32(c.hidden, c.z_offset))
    tables = b"".join(lut_s8(g, c.ops[k]).astype(np.int8).tobytes() for k in (1, 4))
    interp = runtime.Interpreter.from_bytes(
        flatbuffer, arena_size=1 << 16,
        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    order = list(g.sg_inputs)
    bodies, expected = [], []
    for _ in range(vectors):
        feeds = {i: rng.integers(-128, 128, g.tensors[i].shape, dtype=np.int8) for i in order}
        for pos, i in enumerate(order):
            interp.set_input(feeds[i], pos)
        interp.invoke()
        expected.append(np.asarray(interp.get_output(0), np.int8).reshape(-1))
        bodies.append(_i32(c.rows) + b"".join(feeds[i].tobytes()
                                              for i in (c.x_zr, c.h_zr, c.h_n, c.x_n, c.h)))
    plain = tuple(head + _i32(0) + tables + body for body in bodies)
    fast = () if dsp is None else tuple(head + _i32(1, *dsp) + tables + body
                                        for body in bodies)
    return Case(plain, fast, np.concatenate(expected), what)


def check(harness, cases: list[Case]) -> int:
    """Every case's records (with and without the DSP constants) in one run of the driver,
    against TFLM; returns how many cases had DSP constants to test."""
    batches = [(case, records, how) for case in cases for records, how in (
        (case.records, ""), (case.records_dsp, " (DSP constants)")) if records]
    replies = iter(harness.run([r for _, records, _ in batches for r in records]))
    for case, records, how in batches:
        mine = [next(replies) for _ in records]
        assert all(r.status == NSN_OK for r in mine), case.what + how
        got = np.concatenate([r.int8() for r in mine])
        bad = np.flatnonzero(got != case.expected)
        assert bad.size == 0, (f"{case.what}{how}: {bad.size} of {got.size} differ, first at "
                               f"{bad[0]}: kernel {got[bad[0]]}, TFLM {case.expected[bad[0]]}")
    return sum(bool(case.records_dsp) for case in cases)


# --------------------------------------------------------------------------------------------
# checks (collected by tests/test_kernels.py and tests/test_kernels_arm.py)
# --------------------------------------------------------------------------------------------

SHAPES = ((1, 16, True), (33, 16, True), (3, 5, False), (1, 1, True), (1, 65, True))


@pytest.fixture(scope="session")
def gru_models() -> dict[tuple[int, int, bool], bytes]:
    return dict(_gru_models())


@oneop.shared  # once per test run for the host and the boards (each module's own fixture)
def _gru_models() -> dict[tuple[int, int, bool], bytes]:
    return {s: convert_chain(*s, seed=k) for k, s in enumerate(SHAPES)}


def test_gru_gates_match_tflm(harness, gru_models) -> None:
    """The converted chains (GTCRN's [1, 16] and [33, 16] shapes, r before z, odd H and a
    tail, H = 1) and random quantizations of them, extreme zero points included."""
    rng = np.random.default_rng(14)
    cases = []
    for shape, fb in gru_models.items():
        cases.append(make_case(fb, rng, 8, f"converted {shape}"))
        for k in range(6 if shape[0] == 1 else 2):
            q = requantized(fb, rng, extreme=k % 2 == 1)
            cases.append(make_case(q, rng, 6, f"{shape} quantization {k}"))
    assert check(harness, cases) >= 8, "too few cases inside the DSP path's bounds to test it"


def test_gru_gates_reject_bad_arguments(harness, gru_models) -> None:
    """hidden 0 and a z_offset that is neither 0 nor H are refused (NSN_ARG_ERROR)."""
    case = make_case(gru_models[(1, 16, True)], np.random.default_rng(1), 1, "bad arguments")
    at = 4 * (1 + 12 * 4 + 7 * 2)  # the hidden field
    rec = case.records[0]
    zero_hidden = rec[:at] + _i32(0) + rec[at + 4:at + 12 + 512] + _i32(1)  # rows 1, no units
    bad_offset = rec[:at + 4] + _i32(3) + rec[at + 8:]
    for bad in (zero_hidden, bad_offset):
        assert harness.run_one(bad).status == NSN_ARG_ERROR
