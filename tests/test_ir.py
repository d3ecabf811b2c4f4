# SPDX-License-Identifier: Apache-2.0
"""The .tflite reader (nsconv.tflite_ir) on the small test models of irmodels.py (fixtures
`tiny_out` and `special_out` in conftest.py) and on flatbuffers edited to be malformed."""

from __future__ import annotations

import copy
import os
from collections import Counter

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from irmodels import pack_model, tensor_named, unpack_model  # noqa: E402
from nsconv.compiler.tflite_ir import (  # noqa: E402
    Activation,
    DType,
    OpKind,
    c_identifier,
    parse_tflite,
    read_tflite,
)
from nsconv.errors import NsconvError  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Tests


def test_tiny_exits_read_as_the_step_formulation(tiny_out):
    from nsconv.quant.manifest import Manifest

    m = Manifest.load(tiny_out)
    per_gru = Counter({OpKind.FULLY_CONNECTED: 6, OpKind.ADD: 4, OpKind.MUL: 2, OpKind.SUB: 1,
                       OpKind.LOGISTIC: 2, OpKind.TANH: 1})
    for e, n_gru in zip(m.exits, (1, 2, 2, 2), strict=True):
        g = read_tflite(tiny_out / e.tflite)
        kinds = Counter(op.kind for op in g.ops)
        head_fc = {"gru1": 2, "gru2": 2, "fc2": 3, "final": 4}[e.name]
        want = Counter({k: v * n_gru for k, v in per_gru.items()})
        want[OpKind.FULLY_CONNECTED] += head_fc
        want[OpKind.LOGISTIC] += 1
        assert kinds == want, e.name
        # inputs by signature name, whatever the converter's order
        assert g.input("features").index == e.features.index
        assert {k for k, _ in g.inputs} == {"features"} | {f"state_{s.layer}" for s in e.states}
        assert g.output("mask").index == e.mask.index
        assert g.macs == e.macs_per_frame
        for op in g.ops:
            if op.kind is OpKind.FULLY_CONNECTED:
                w = g.tensors[op.inputs[1]]
                assert w.dtype is DType.INT8 and w.is_const and len(w.shape) == 2
                assert w.quant.per_channel and w.quant.axis == 0
                assert len(w.quant.scales) == w.shape[0]
                assert set(w.quant.zero_points) == {0}
                # the step model puts the r/z biases on the x side: hr and hz have none
                if "_hr_" in w.name or "_hz_" in w.name:
                    assert op.inputs[2] == -1, w.name
                    continue
                b = g.tensors[op.inputs[2]]
                assert b.dtype is DType.INT32 and b.shape == (w.shape[0],)
                assert b.array().any()
        relu = [op for op in g.ops if op.activation is Activation.RELU]
        assert relu and all(op.kind is OpKind.FULLY_CONNECTED for op in relu)


def test_special_ops_are_read(special_out):
    g = read_tflite(special_out / "tflite" / "final.tflite")
    kinds = Counter(op.kind for op in g.ops)
    for k in (OpKind.SPLIT, OpKind.CONCATENATION, OpKind.RESHAPE, OpKind.QUANTIZE, OpKind.SUB,
              OpKind.MUL, OpKind.TANH, OpKind.LOGISTIC, OpKind.ADD):
        assert kinds[k] >= 1, k
    split = next(op for op in g.ops if op.kind is OpKind.SPLIT)
    assert split.options.num_splits == 2 and split.options.axis == 1
    assert len(split.inputs) == 1  # the constant axis is folded into the options
    reshape = next(op for op in g.ops if op.kind is OpKind.RESHAPE)
    assert len(reshape.inputs) == 1
    sub = next(op for op in g.ops if op.kind is OpKind.SUB)
    consts = [g.tensors[i] for i in sub.inputs if g.tensors[i].is_const]
    assert len(consts) == 1 and consts[0].size == 1  # the 1 of 1 - z, broadcast
    s_in, s_out = g.input("state_g"), g.output("state_g_out")
    assert (s_in.scale, s_in.zero_point) != (s_out.scale, s_out.zero_point)


def test_reader_rejects_what_the_kernels_cannot_do(tiny_out, tmp_path):
    buf = (tiny_out / "tflite" / "gru1.tflite").read_bytes()

    def expect(mutate, *words):
        m = unpack_model(buf)
        mutate(m)
        with pytest.raises(NsconvError) as exc:
            parse_tflite(pack_model(m), "bad.tflite")
        for w in words:
            assert w in str(exc.value), str(exc.value)
        assert exc.value.path == "bad.tflite"

    def weights_zero_point(m):
        t = m.subgraphs[0].tensors[tensor_named(m, "gru1_xz_1/MatMul")]
        zp = np.array(t.quantization.zeroPoint)
        zp[0] = 3
        t.quantization.zeroPoint = zp

    expect(weights_zero_point, "gru1_xz", "zero point")

    def per_channel_activation(m):
        t = m.subgraphs[0].tensors[tensor_named(m, "gru1_z_sum_1/Add")]
        t.quantization.scale = np.array([0.1, 0.2], np.float32)
        t.quantization.zeroPoint = np.array([0, 0], np.int64)

    expect(per_channel_activation, "gru1_z_sum", "per-channel")

    def logistic_output_scale(m):
        t = m.subgraphs[0].tensors[tensor_named(m, "gru1_z_1/Sigmoid")]
        t.quantization.scale = np.array([0.01], np.float32)

    expect(logistic_output_scale, "LOGISTIC", "gru1_z")

    def float_tensor(m):
        from tensorflow.lite.python import schema_py_generated as schema

        t = m.subgraphs[0].tensors[tensor_named(m, "gru1_r_sum_1/Add")]
        t.type = schema.TensorType.FLOAT32

    expect(float_tensor, "FLOAT32", "gru1_r_sum")

    def int16_tensor(m):
        from tensorflow.lite.python import schema_py_generated as schema

        t = m.subgraphs[0].tensors[tensor_named(m, "gru1_n_1/Tanh")]
        t.type = schema.TensorType.INT16

    expect(int16_tensor, "INT16", "gru1_n")

    def other_op(m):
        from tensorflow.lite.python import schema_py_generated as schema

        code = m.operatorCodes[m.subgraphs[0].operators[7].opcodeIndex]
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.HARD_SWISH

    expect(other_op, "op 7", "HARD_SWISH", "not supported")

    def two_subgraphs(m):
        m.subgraphs.append(copy.deepcopy(m.subgraphs[0]))

    expect(two_subgraphs, "subgraph")

    def batch_two(m):
        t = m.subgraphs[0].tensors[tensor_named(m, "serving_default_features")]
        t.shape = np.array([2, 161], np.int32)

    expect(batch_two, "batch 1")

    with pytest.raises(NsconvError, match="not a TFLite flatbuffer"):
        parse_tflite(b"\x00" * 64, "junk.tflite")
    with pytest.raises(NsconvError, match="cannot read"):
        read_tflite(tmp_path / "missing.tflite")


def test_reader_rejects_float_and_int16_models():
    import keras
    import tensorflow as tf
    from keras import layers

    inp = keras.Input((8,), name="features")
    model = keras.Model(inp, layers.Dense(4, name="d")(inp))
    flt = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    with pytest.raises(NsconvError, match="FLOAT32"):
        parse_tflite(flt, "float.tflite")

    rng = np.random.default_rng(0)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    conv.inference_input_type = tf.int16
    conv.inference_output_type = tf.int16
    conv.representative_dataset = lambda: ([rng.normal(size=(1, 8)).astype(np.float32)]
                                           for _ in range(10))
    with pytest.raises(NsconvError, match="INT16"):
        parse_tflite(conv.convert(), "int16.tflite")


def test_c_identifier():
    assert c_identifier("step_gru1_1/gru1_xz_1/MatMul") == "step_gru1_gru1_xz_matmul"
    assert c_identifier("a/fc1_1/MatMul;a/fc1_1/Relu;a/fc1_1/BiasAdd") == "a_fc1_biasadd"
    assert c_identifier("StatefulPartitionedCall_1:0") == "statefulpartitionedcall_1_0"
    assert c_identifier("9lives") == "t_9lives"
    assert c_identifier("") == "t"
