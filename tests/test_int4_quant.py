# SPDX-License-Identifier: Apache-2.0
"""4-bit weights, quantization side: the int4 grid written into int8 .tflite models (TFLM
computes what a packed int4 kernel must), error-compensating rounding, the format choice under
a flash budget, and convert/export with --weights."""

from __future__ import annotations

import numpy as np
import pytest
from nsconv.compiler.tflite_ir import OpKind, parse_tflite
from nsconv.model.netspec import NetSpec
from nsconv.quant import int4, refops
from nsconv.quant.params import fc_params


def _tflm(model: bytes):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(
        model, arena_size=1 << 20,
        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)


def _run_tflm(model: bytes, frames: int, seed: int = 0):
    """Invoke TFLM on random int8 inputs; yields the interpreter after each invoke."""
    interp = _tflm(model)
    rng = np.random.default_rng(seed)
    for _ in range(frames):
        for pos in range(len(parse_tflite(model).inputs)):
            shape = tuple(int(d) for d in interp.get_input_details(pos)["shape"])
            interp.set_input(rng.integers(-128, 128, shape, dtype=np.int8), pos)
        interp.invoke()
        yield interp


def _fc_ops(graph):
    return [op for op in graph.ops if op.kind is OpKind.FULLY_CONNECTED]


def _layer_of(graph, op) -> str:
    return int4._keras_layer(graph.tensors[op.inputs[1]].name)


@pytest.fixture(scope="module")
def tiny_spec(tiny_out) -> NetSpec:
    return NetSpec.load(tiny_out / "model.npz")


@pytest.fixture(scope="module")
def tiny_rtn(tiny_spec) -> dict[str, int4.Int4Weights]:
    """Round-to-nearest int4 of gru1 (six matrices, with and without bias) and fc3."""
    return {**int4.rtn_layer(tiny_spec, "gru1"), **int4.rtn_layer(tiny_spec, "fc3")}


def test_rtn_grid():
    rng = np.random.default_rng(3)
    w = rng.normal(0, 1, (9, 13)).astype(np.float32)
    w[4] = 0.0
    q, s = int4.rtn(w)
    assert q.dtype == np.int8 and q.min() >= -7 and q.max() <= 7
    peak = np.abs(w).max(axis=1)
    np.testing.assert_array_equal(s[peak > 0], (peak[peak > 0] / np.float32(7)).astype(np.float32))
    assert np.all(np.abs(q[peak > 0]).max(axis=1) == 7) and not q[4].any()
    # round to nearest: the error of each weight is at most half a step
    err = np.abs(w - q * s[:, None])
    assert np.all(err <= s[:, None] / 2 * (1 + 1e-6))


def test_patched_model_carries_the_int4_grid(tiny_out, tiny_spec, tiny_rtn):
    before = (tiny_out / "tflite/final.tflite").read_bytes()
    after = int4.patch_fc_weights(before, tiny_rtn)
    assert len(after) == len(before)
    g0, g1 = parse_tflite(before), parse_tflite(after)
    patched = set()
    for op in _fc_ops(g1):
        name = _layer_of(g1, op)
        w = g1.tensors[op.inputs[1]]
        if name not in tiny_rtn:
            continue
        w4 = tiny_rtn[name]
        patched.update(i for i in op.inputs[1:] if i >= 0)
        arr = w.array()
        assert arr.min() >= -7 and arr.max() <= 7 and np.abs(arr).max() == 7
        np.testing.assert_array_equal(arr, w4.values)
        assert w.quant.scales == tuple(float(v) for v in w4.scales)
        if op.inputs[2] >= 0:
            b = g1.tensors[op.inputs[2]]
            x = g1.tensors[op.inputs[0]]
            np.testing.assert_array_equal(b.array(), int4.quantize_bias(w4.bias, x.scale, w4.scales))
            assert b.quant.scales == tuple(float(np.float32(x.scale) * v) for v in w4.scales)
    assert len(patched) == 6 + 4 + 2  # gru1: 6 filters, 4 biases; fc3: filter and bias
    for t0, t1 in zip(g0.tensors, g1.tensors, strict=True):  # nothing else moved
        if t0.index not in patched:
            assert (t0.name, t0.shape, t0.quant, t0.data) == (t1.name, t1.shape, t1.quant, t1.data)
    assert g0.ops == g1.ops and g0.inputs == g1.inputs and g0.outputs == g1.outputs


def test_tflm_on_patched_model_is_the_int4_reference(tiny_out, tiny_rtn):
    """Each int4 FULLY_CONNECTED in TFLM equals the numpy integer FC (refops, TFLM's Eval)
    with the int4 values, their scales and the re-quantized bias."""
    model = int4.patch_fc_weights((tiny_out / "tflite/final.tflite").read_bytes(), tiny_rtn)
    graph = parse_tflite(model)
    ops = [op for op in _fc_ops(graph) if _layer_of(graph, op) in tiny_rtn]
    assert len(ops) == 7
    compared = 0
    for interp in _run_tflm(model, frames=4):
        for op in ops:
            w4 = tiny_rtn[_layer_of(graph, op)]
            x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
            xq = np.asarray(interp.GetTensor(x.index, 0)["tensor_data"]).reshape(-1)
            yq = np.asarray(interp.GetTensor(y.index, 0)["tensor_data"]).reshape(-1)
            p = fc_params(x.scale, x.zero_point, [float(s) for s in w4.scales], y.scale,
                          y.zero_point, len(w4.scales), op.activation)
            bias = (None if op.inputs[2] < 0 else
                    int4.quantize_bias(w4.bias, x.scale, w4.scales))
            ref = refops.fc_s8(p, xq, w4.values, bias)
            assert len(np.unique(yq)) > 4  # a varied output, not a saturated one
            np.testing.assert_array_equal(yq, ref)
            compared += 1
    assert compared == 4 * 7


def test_patched_model_loads_in_litert(tiny_out, tiny_rtn):
    from ai_edge_litert.interpreter import Interpreter

    model = int4.patch_fc_weights((tiny_out / "tflite/final.tflite").read_bytes(), tiny_rtn)
    interp = Interpreter(model_content=model)
    interp.allocate_tensors()
    interp.invoke()


def test_patch_rejects_unknown_layers_and_shapes(tiny_out, tiny_rtn):
    model = (tiny_out / "tflite/gru1.tflite").read_bytes()
    with pytest.raises(ValueError, match="fc3"):
        int4.patch_fc_weights(model, tiny_rtn)  # the gru1 exit has no fc3
    w4 = tiny_rtn["gru1_xz"]
    with pytest.raises(ValueError, match="int4 values"):
        int4.patch_fc_weights(model, {"gru1_xz": int4.Int4Weights(w4.values[:, :-1],
                                                                   w4.scales, w4.bias)})
    with pytest.raises(ValueError, match=r"\[-7, 7\]"):
        int4.Int4Weights(np.full((2, 2), 8, np.int8), np.ones(2, np.float32))


def test_patch_by_tensor_index_and_own_bias(tiny_out, tiny_rtn):
    """Keys may be weight tensor indices; bias None re-quantizes the model's own int32 bias
    (dequantized with the int8 scales), within one step of quantizing the float bias."""
    model = (tiny_out / "tflite/gru1.tflite").read_bytes()
    index = int4.fc_weight_tensors(model)["gru1_xn"]
    w4 = tiny_rtn["gru1_xn"]
    by_index = int4.patch_fc_weights(model, {index: int4.Int4Weights(w4.values, w4.scales)})
    by_name = int4.patch_fc_weights(model, {"gru1_xn": w4})
    g1, g2 = parse_tflite(by_index), parse_tflite(by_name)
    op = next(op for op in _fc_ops(g1) if op.inputs[1] == index)
    assert g1.tensors[index].data == g2.tensors[index].data
    diff = g1.tensors[op.inputs[2]].array().astype(int) - g2.tensors[op.inputs[2]].array()
    assert np.abs(diff).max() <= 1
