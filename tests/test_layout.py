# SPDX-License-Identifier: Apache-2.0
"""The layout pass (compiler/layout.py) against TFLM: data-movement-only int8 models from the
real TFLite converter, run in the TFLM interpreter; the pass's views (aliases, folded constants,
copy tables) applied to the same input must give TFLM's output bytes."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _convert(fn, shape, seed=0) -> bytes:
    import tensorflow as tf

    spec = tf.TensorSpec(shape, tf.float32, name="x")
    f = tf.function(fn, input_signature=[spec])
    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    rng = np.random.default_rng(seed)
    conv.representative_dataset = lambda: ([rng.uniform(-1, 1, shape).astype(np.float32)]
                                           for _ in range(8))
    return conv.convert()


def _moves(x):
    """Every data-movement op kind the pass folds, on one [1, 4, 6, 3] input."""
    import tensorflow as tf

    t = tf.transpose(x, [0, 3, 1, 2])  # [1, 3, 4, 6]
    g = tf.gather(t, [5, 0, 2, 2, 1], axis=3)  # [1, 3, 4, 5]
    s = tf.slice(t, [0, 1, 0, 2], [1, 2, 4, 3])  # [1, 2, 4, 3]
    ss = t[:, ::2, 1:, ::-2]  # strided slice, negative stride
    p = tf.pad(s, [[0, 0], [0, 0], [2, 1], [0, 1]])  # zero-point padding
    a, b = tf.split(x, 2, axis=2)  # [1, 4, 3, 3] each
    u = tf.unstack(x, axis=1)  # 4 x [1, 6, 3]
    pk = tf.stack([u[3], u[0]], axis=2)  # [1, 6, 2, 3]
    sq = tf.squeeze(x[:, 1:2], axis=1)  # [1, 6, 3]
    parts = [t, g, s, ss, p, b, a, pk, sq, tf.expand_dims(u[2], 0)]
    return tf.concat([tf.reshape(q, [-1]) for q in parts], axis=0)


def _tflm(model: bytes, x: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    interp.set_input(x, 0)
    interp.invoke()
    return np.asarray(interp.get_output(0)).copy()


@pytest.fixture(scope="module")
def moves_model() -> bytes:
    return _convert(_moves, (1, 4, 6, 3))


def test_layout_matches_tflm(moves_model):
    from nsconv.compiler import layout
    from nsconv.compiler.ndgraph import parse_nd

    g = parse_nd(moves_model, "moves.tflite")
    result = layout.fold(g)
    assert result.compute == ()  # nothing but data movement
    for kind in ("TRANSPOSE", "GATHER", "SLICE", "STRIDED_SLICE", "PAD", "SPLIT", "UNPACK",
                 "PACK", "CONCATENATION", "RESHAPE"):
        assert result.folded.get(kind, 0) >= 1, (kind, result.folded)
    (out_name, out_idx), = g.outputs
    (_, in_idx), = g.inputs
    view = result.views[out_idx]
    assert view.kind == "gather" and view.roots == (in_idx,)
    assert any(r.root == layout.ZERO for r in view.runs)  # the padding
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.integers(-128, 128, g.tensors[in_idx].shape).astype(np.int8)
        got = layout.apply_view(view, g, {in_idx: x})
        assert np.array_equal(got.reshape(-1), _tflm(moves_model, x).reshape(-1))


def test_alias_and_runs(moves_model):
    """A reshape is an alias, a slice of whole rows one run; the runs cover every element."""
    from nsconv.compiler import layout
    from nsconv.compiler.ndgraph import parse_nd

    g = parse_nd(moves_model, "moves.tflite")
    (_, in_idx), = g.inputs
    t = g.tensors[in_idx]
    ids = layout.root_ids(t)
    assert layout.make_view(g, in_idx, ids.reshape(-1)).kind == "alias"
    v = layout.make_view(g, in_idx, np.concatenate([ids.reshape(-1)[6:], ids.reshape(-1)[:6]]))
    assert v.kind == "gather" and [(r.dst, r.src, r.length) for r in v.runs] == [
        (0, 6, t.size - 6), (t.size - 6, 0, 6)]
    b = layout.broadcast_view(g, in_idx, (2,) + t.shape)
    assert b.kind == "gather" and len(b.runs) == 2


def test_refuses_requantizing_move(moves_model):
    """A concatenation whose operands are quantized unlike its output is not data movement:
    refused naming the op, the tensor and the file."""
    from nsconv.compiler import layout
    from nsconv.compiler.ndgraph import NdQuant, parse_nd
    from nsconv.errors import NsconvError

    g = parse_nd(moves_model, "moves.tflite")
    concat = next(op for op in g.ops if op.kind == "CONCATENATION")
    victim = concat.inputs[1]
    tensors = list(g.tensors)
    q = tensors[victim].quant
    tensors[victim] = dataclasses.replace(tensors[victim],
                                          quant=NdQuant((q.scale * 2,), q.zero_points))
    bad = dataclasses.replace(g, tensors=tuple(tensors))
    with pytest.raises(NsconvError) as info:
        layout.fold(bad)
    text = str(info.value)
    # the first op that meets the changed tensor (its producer) is named
    assert text.startswith("moves.tflite: op ") and "quantized unlike" in text
    assert tensors[victim].name in text
