# SPDX-License-Identifier: Apache-2.0
"""The .tflite reader (nsconv.tflite_ir), and the small test models shared by the codegen and
verify tests.

Models (built once per session, in seconds):
  * `tiny_out`: a 4-exit Dynamic-nsNet2-shaped network (161 bins, fc 24, GRU 16, GRU 16, fc 20,
    fc 20) converted by the real pipeline (nsconv.convert, closed-loop calibration on one
    bundled clip), with the manifest that the code generator reads;
  * `special_out`: one exit using the other ops the reader accepts (SPLIT, CONCATENATION,
    RESHAPE, int8 QUANTIZE, a constant broadcast operand of SUB) and a state whose output is
    quantized unlike its input, with a hand-written manifest.
Malformed models are made by editing converted flatbuffers with the schema's object API.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

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
# Test models (imported by test_codegen.py and test_verify.py)

TINY = {"features": 161, "fc1": 24, "gru": 16, "fc2": 20}


def tiny_spec(seed: int = 0):
    """NetSpec: fc1 relu, gru1, gru2, fc2 relu, fc3 relu, fc4 sigmoid; exits after gru1, gru2,
    fc2 (random heads) and final. Biases are non-zero so that every FC has one."""
    from nsconv.model.netspec import GRU, Dense, ExitSpec, NetSpec, with_random_exits

    rng = np.random.default_rng(seed)
    F, A, H, D = TINY["features"], TINY["fc1"], TINY["gru"], TINY["fc2"]

    def dense(name, i, o, act):
        lim = np.sqrt(6 / (i + o))
        return Dense(name, rng.uniform(-lim, lim, (i, o)).astype(np.float32),
                     rng.normal(0, 0.1, o).astype(np.float32), act)

    def gru(name, i, h):
        lim = np.sqrt(3 / h)
        return GRU(name, rng.uniform(-lim, lim, (3 * h, i)).astype(np.float32),
                   rng.uniform(-lim, lim, (3 * h, h)).astype(np.float32),
                   rng.normal(0, 0.1, 3 * h).astype(np.float32),
                   rng.normal(0, 0.1, 3 * h).astype(np.float32))

    layers = {"fc1": dense("fc1", F, A, "relu"), "gru1": gru("gru1", A, H),
              "gru2": gru("gru2", H, H), "fc2": dense("fc2", H, D, "relu"),
              "fc3": dense("fc3", D, D, "relu"), "fc4": dense("fc4", D, F, "sigmoid")}
    base = NetSpec(F, layers, ("fc1", "gru1", "gru2", "fc2", "fc3"),
                   (ExitSpec("final", "fc3", ("fc4",)),))
    return with_random_exits(base, seed=seed)


def build_tiny(root: Path) -> Path:
    """Convert the tiny model into root/out (cached: built once per session root)."""
    out = root / "tiny_out"
    if (out / "manifest.json").exists():
        return out
    from nsconv.quant.convert import convert
    from nsconv.quant.quantize import calibration_clips

    root.mkdir(parents=True, exist_ok=True)
    model = root / "tiny.npz"
    tiny_spec().save(model)
    convert(model, out, calibration_clips()[:1], log=lambda *_: None)
    return out


def special_keras_model():
    import keras
    from keras import layers, ops

    F, H = 20, 24
    init = keras.initializers.RandomNormal(stddev=0.2, seed=3)
    feat = keras.Input((F,), batch_size=1, name="features")
    h = keras.Input((H,), batch_size=1, name="state_g")
    x = layers.Dense(H, activation="relu", bias_initializer=init, name="fc1")(feat)
    a, b = layers.Lambda(lambda t: ops.split(t, 2, axis=-1), name="split")(x)
    c = layers.Concatenate(name="cat")([b, a])
    c = layers.Reshape((4, 6), name="r1")(c)
    c = layers.Reshape((H,), name="r2")(c)
    z = layers.Dense(H, activation="sigmoid", bias_initializer=init, name="zg")(feat)
    omz = layers.Lambda(lambda t: 1.0 - t, name="one_minus")(z)
    t = layers.Activation("tanh", name="t")(
        layers.Add(name="pre")([layers.Dense(H, name="hh")(h), c]))
    mix = layers.Concatenate(name="mix")([t, z])  # tanh and sigmoid scales: QUANTIZE ops
    y = layers.Dense(F, bias_initializer=init, name="head")(mix)
    y = layers.Multiply(name="gate")(
        [y, layers.Dense(F, activation="sigmoid", name="g2")(omz)])
    mask = layers.Activation("sigmoid", name="mask_act")(y)
    return keras.Model({"features": feat, "state_g": h},
                       {"mask": layers.Identity(name="mask")(mask),
                        "state_g_out": layers.Identity(name="state_g_out")(t)})


def convert_keras(model, samples) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    conv.representative_dataset = lambda: iter(samples)
    return conv.convert()


def _ref(graph, name: str, position_in, which: str):
    from nsconv.quant.manifest import TensorRef

    table = graph.inputs if which == "in" else graph.outputs
    idx = dict(table)[name]
    t = graph.tensors[idx]
    return TensorRef(idx, position_in(idx), t.name, t.scale, t.zero_point)


def write_single_exit_dir(root: Path, tflite: bytes, name: str = "final",
                          states: tuple[str, ...] = ()) -> Path:
    """An nsconv output directory holding one exit: manifest + tflite."""
    from nsconv.quant.manifest import ExitEntry, Manifest, StateRef

    root.mkdir(parents=True, exist_ok=True)
    (root / "tflite").mkdir(exist_ok=True)
    rel = f"tflite/{name}.tflite"
    (root / rel).write_bytes(tflite)
    g = parse_tflite(tflite, root / rel)
    from tensorflow.lite.python import schema_py_generated as schema

    sg = schema.ModelT.InitFromPackedBuf(tflite, 0).subgraphs[0]
    ins = [int(i) for i in sg.inputs]
    outs = [int(i) for i in sg.outputs]
    feat = _ref(g, "features", ins.index, "in")
    mask = _ref(g, "mask", outs.index, "out")
    refs = tuple(StateRef(s, g.input(f"state_{s}").size, _ref(g, f"state_{s}", ins.index, "in"),
                          _ref(g, f"state_{s}_out", outs.index, "out")) for s in states)
    entry = ExitEntry(name, "fc1", ("head",), rel, len(tflite), g.macs, 0, feat, mask, refs)
    Manifest(root, "special.keras", hashlib.sha256(tflite).hexdigest(), "none", (entry,),
             (), 0).save()
    return root


def build_special(root: Path) -> Path:
    out = root / "special_out"
    if (out / "manifest.json").exists():
        return out
    rng = np.random.default_rng(1)
    samples = [{"features": rng.normal(size=(1, 20)).astype(np.float32),
                "state_g": rng.uniform(-0.5, 0.5, (1, 24)).astype(np.float32)}
               for _ in range(100)]
    tflite = convert_keras(special_keras_model(), samples)
    return write_single_exit_dir(out, tflite, "final", ("g",))


@pytest.fixture(scope="session")
def tiny_out(tmp_path_factory) -> Path:
    return build_tiny(tmp_path_factory.getbasetemp() / "nsconv_models")


@pytest.fixture(scope="session")
def special_out(tmp_path_factory) -> Path:
    return build_special(tmp_path_factory.getbasetemp() / "nsconv_models")


# ---------------------------------------------------------------------------------------------
# Flatbuffer surgery


def _model(buf: bytes):
    from tensorflow.lite.python import schema_py_generated as schema

    return schema.ModelT.InitFromPackedBuf(buf, 0)


def _pack(model) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _tensor_named(model, needle: str) -> int:
    for i, t in enumerate(model.subgraphs[0].tensors):
        if needle in t.name.decode():
            return i
    raise KeyError(needle)


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
        m = _model(buf)
        mutate(m)
        with pytest.raises(NsconvError) as exc:
            parse_tflite(_pack(m), "bad.tflite")
        for w in words:
            assert w in str(exc.value), str(exc.value)
        assert exc.value.path == "bad.tflite"

    def weights_zero_point(m):
        t = m.subgraphs[0].tensors[_tensor_named(m, "gru1_xz_1/MatMul")]
        zp = np.array(t.quantization.zeroPoint)
        zp[0] = 3
        t.quantization.zeroPoint = zp

    expect(weights_zero_point, "gru1_xz", "zero point")

    def per_channel_activation(m):
        t = m.subgraphs[0].tensors[_tensor_named(m, "gru1_z_sum_1/Add")]
        t.quantization.scale = np.array([0.1, 0.2], np.float32)
        t.quantization.zeroPoint = np.array([0, 0], np.int64)

    expect(per_channel_activation, "gru1_z_sum", "per-channel")

    def logistic_output_scale(m):
        t = m.subgraphs[0].tensors[_tensor_named(m, "gru1_z_1/Sigmoid")]
        t.quantization.scale = np.array([0.01], np.float32)

    expect(logistic_output_scale, "LOGISTIC", "gru1_z")

    def float_tensor(m):
        from tensorflow.lite.python import schema_py_generated as schema

        t = m.subgraphs[0].tensors[_tensor_named(m, "gru1_r_sum_1/Add")]
        t.type = schema.TensorType.FLOAT32

    expect(float_tensor, "FLOAT32", "gru1_r_sum")

    def int16_tensor(m):
        from tensorflow.lite.python import schema_py_generated as schema

        t = m.subgraphs[0].tensors[_tensor_named(m, "gru1_n_1/Tanh")]
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
        t = m.subgraphs[0].tensors[_tensor_named(m, "serving_default_features")]
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
