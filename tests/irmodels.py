# SPDX-License-Identifier: Apache-2.0
"""The small test models shared by the reader, codegen and verify tests (not a test module).

Models (built once per session by the conftest fixtures, in seconds):
  * tiny: a 4-exit Dynamic-nsNet2-shaped network (161 bins, fc 24, GRU 16, GRU 16, fc 20,
    fc 20) converted by the real pipeline (nsconv.convert, closed-loop calibration on one
    bundled clip), with the manifest that the code generator reads;
  * special: one exit using the other ops the reader accepts (SPLIT, CONCATENATION,
    RESHAPE, int8 QUANTIZE, a constant broadcast operand of SUB) and a state whose output is
    quantized unlike its input, with a hand-written manifest.
Malformed models are made by editing converted flatbuffers with the schema's object API
(unpack_model, pack_model, tensor_named).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from nsconv.compiler.tflite_ir import parse_tflite  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Test models (the fixtures tiny_out and special_out in conftest.py build them)

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


# ---------------------------------------------------------------------------------------------
# Flatbuffer surgery


def unpack_model(buf: bytes):
    from tensorflow.lite.python import schema_py_generated as schema

    return schema.ModelT.InitFromPackedBuf(buf, 0)


def pack_model(model) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def tensor_named(model, needle: str) -> int:
    for i, t in enumerate(model.subgraphs[0].tensors):
        if needle in t.name.decode():
            return i
    raise KeyError(needle)
