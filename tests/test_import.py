# SPDX-License-Identifier: Apache-2.0
"""ONNX import and the one-step float model against onnxruntime on the original graph."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import DATA
from nsconv.audio import frontend
from nsconv.audio.wav import read_wav
from nsconv.errors import NsconvError
from nsconv.model.netspec import GRU, Dense, NetSpec, with_random_exits
from nsconv.model.onnx_import import OutsideFamily, import_onnx
from nsconv.model.stepmodel import FloatStepper
from onnx import TensorProto, helper


def test_baseline_structure(baseline_spec):
    s = baseline_spec
    assert s.backbone == ("fc1", "gru1", "gru2", "fc2", "fc3")
    assert [(e.name, e.after, e.head) for e in s.exits] == [("final", "fc3", ("fc4",))]
    kinds = [(type(s.layers[n]).__name__, s.layers[n].in_size, s.layers[n].out_size)
             for n in ("fc1", "gru1", "gru2", "fc2", "fc3", "fc4")]
    assert kinds == [("Dense", 161, 400), ("GRU", 400, 400), ("GRU", 400, 400),
                     ("Dense", 400, 600), ("Dense", 600, 600), ("Dense", 600, 161)]
    assert [s.layers[n].activation for n in ("fc1", "fc2", "fc3", "fc4")] == \
        ["relu", "relu", "relu", "sigmoid"]
    assert s.exit_macs(s.exits[0]) == 2_681_000


def test_step_model_equals_onnxruntime(baseline_onnx, baseline_spec):
    """Stepped frame by frame with states fed back over a real 5 s clip: <= 1e-5 off."""
    import onnxruntime as ort

    x = read_wav(DATA / "0398_noisy.wav")
    assert len(x) == 5 * 16000
    feats = frontend.features(frontend.stft(x))
    ref = ort.InferenceSession(str(baseline_onnx)).run(None, {"input": feats[None]})[0][0]
    masks = FloatStepper(baseline_spec, baseline_spec.exits[0]).run(feats)
    assert np.abs(masks - ref).max() <= 1e-5
    assert ref.std() > 0.05  # a real mask, not a constant


def _write(tmp_path, nodes, inits, name="m.onnx", outputs=("output",)):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, None, 4])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, [1, None, 4]) for o in outputs],
        [onnx.numpy_helper.from_array(v, k) for k, v in inits.items()])
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), path)
    return path


def test_unsupported_op_is_named(tmp_path):
    w = np.eye(4, dtype=np.float32)
    path = _write(tmp_path, [helper.make_node("MatMul", ["input", "w"], ["a"]),
                             helper.make_node("Softmax", ["a"], ["output"], name="sm")], {"w": w})
    with pytest.raises(OutsideFamily) as err:
        import_onnx(path)
    assert "Softmax" in str(err.value) and str(path) in str(err.value)


def test_multi_output_graph_gives_exits(tmp_path):
    rng = np.random.default_rng(0)
    inits = {k: rng.normal(size=(4, 4)).astype(np.float32) for k in ("w1", "w2", "w3", "we")}
    nodes = [helper.make_node("MatMul", ["input", "w1"], ["a"]),
             helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("MatMul", ["ar", "we"], ["e"]),
             helper.make_node("Sigmoid", ["e"], ["mask_early"]),
             helper.make_node("MatMul", ["ar", "w2"], ["b"]),
             helper.make_node("Relu", ["b"], ["br"]),
             helper.make_node("MatMul", ["br", "w3"], ["c"]),
             helper.make_node("Sigmoid", ["c"], ["output"])]
    spec = import_onnx(_write(tmp_path, nodes, inits, outputs=("mask_early", "output")))
    assert spec.backbone == ("fc1", "fc3")
    assert [(e.name, e.after, e.head) for e in spec.exits] == \
        [("early", "fc1", ("fc2",)), ("exit_1", "fc3", ("fc4",))]  # `output`: unnamed


def test_corrupt_onnx(tmp_path):
    p = tmp_path / "bad.onnx"
    p.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(NsconvError) as err:
        import_onnx(p)
    assert str(p) in str(err.value)


def test_netspec_roundtrip_and_random_exits(tmp_path, baseline_spec):
    dyn = with_random_exits(baseline_spec, seed=3)
    assert [e.name for e in dyn.exits] == ["gru1", "gru2", "fc2", "final"]
    assert [dyn.exit_macs(e) for e in dyn.exits] == [
        64_400 + 960_000 + 400 * 161,
        64_400 + 2 * 960_000 + 400 * 161,
        64_400 + 2 * 960_000 + 240_000 + 600 * 161,
        2_681_000]
    p = tmp_path / "d.npz"
    dyn.save(p)
    back = NetSpec.load(p)
    assert [e for e in back.exits] == [e for e in dyn.exits]
    for name, layer in dyn.layers.items():
        other = back.layers[name]
        assert type(other) is type(layer)
        if isinstance(layer, Dense):
            np.testing.assert_array_equal(other.weight, layer.weight)
        else:
            assert isinstance(layer, GRU)
            np.testing.assert_array_equal(other.r, layer.r)


def test_netspec_rejects_bad_description(baseline_spec):
    layers = dict(baseline_spec.layers)
    bad = Dense("fc4", layers["fc4"].weight, layers["fc4"].bias, "relu")
    layers["fc4"] = bad
    with pytest.raises(NsconvError, match="sigmoid"):
        NetSpec(161, layers, baseline_spec.backbone, baseline_spec.exits)
    layers["fc4"] = Dense("fc4", np.full((600, 161), np.nan, np.float32),
                          baseline_spec.layers["fc4"].bias, "sigmoid")
    with pytest.raises(NsconvError, match="NaN"):
        NetSpec(161, layers, baseline_spec.backbone, baseline_spec.exits)


def _framewise(tmp_path, op="Tanh", name="mlp.onnx", domain=""):
    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.1, (161, 64)).astype(np.float32)
    w2 = rng.normal(0, 0.1, (64, 161)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["input", "w1"], ["a"]),
             helper.make_node(op, ["a"], ["b"], name="act", domain=domain),
             helper.make_node("MatMul", ["b", "w2"], ["c"]),
             helper.make_node("Sigmoid", ["c"], ["output"])]
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 161])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 161])],
        [onnx.numpy_helper.from_array(w1, "w1"), onnx.numpy_helper.from_array(w2, "w2")])
    opsets = [helper.make_opsetid("", 13)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    path = tmp_path / name
    onnx.save(helper.make_model(g, opset_imports=opsets), path)
    return path


def test_outside_family_goes_through_onnx2tf(tmp_path):
    """A frame-wise graph with Tanh (not nsNet2 family) converts via onnx2tf to int8."""
    from collections import Counter

    from ai_edge_litert.interpreter import Interpreter
    from nsconv.check.engine import Enhancer
    from nsconv.quant.convert import convert
    from nsconv.quant.quantize import calibration_clips

    # one calibration clip: the route and the int8 ops are the point, not the ranges
    m = convert(_framewise(tmp_path), tmp_path / "out", calibration_clips()[:1],
                log=lambda *_: None)
    (e,) = m.exits
    assert e.name == "final" and e.states == () and e.macs_per_frame == 2 * 161 * 64
    ops = Counter(o["op_name"] for o in
                  Interpreter(model_path=str(m.root / e.tflite))._get_ops_details())
    assert ops == Counter({"FULLY_CONNECTED": 2, "TANH": 1, "LOGISTIC": 1})
    x = read_wav(DATA / "p232_043_noisy.wav")
    feats = frontend.features(frontend.stft(x))[:50]
    f = Enhancer(m.root, None, "float").masks(feats)
    q = Enhancer(m.root, None, "tflm").masks(feats)
    print(f"float vs int8 masks, max abs difference {np.abs(f - q).max():.4f}")
    assert np.abs(f - q).max() < 0.05 and f.std() > 0.01


def test_unconvertible_op_is_named(tmp_path):
    from nsconv.quant.convert import convert

    with pytest.raises(NsconvError) as err:
        convert(_framewise(tmp_path, "FancyOp", domain="com.example"), tmp_path / "out",
                log=lambda *_: None)
    assert "FancyOp" in str(err.value)
    assert not (tmp_path / "out").exists()
