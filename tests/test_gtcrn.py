# SPDX-License-Identifier: Apache-2.0
"""GTCRN imported the nsconv way: typed op graph, explicit states, float one-step models.

The models and the speech are the copies bundled in tests/data (tests/gtcrn_paths.py)."""

from __future__ import annotations

import numpy as np
import pytest
from gtcrn_paths import DNS3, GTCRN
from nsconv.errors import NsconvError

HOPS = 100
# Errors relative to the largest magnitude of the tensor over the run (float32 rounding level).
# Measured over these 100 hops: numpy spec enh 3.8e-7, caches 3.2e-6 (the GRU states, |h| <= 1);
# TF core + front end enh 7.0e-7, caches 3.2e-6.
TOL_ENH = 1.5e-6
TOL_CACHE = 5e-6


@pytest.fixture(scope="module")
def simple():
    from nsconv.model.gtcrn import load_gtcrn

    return load_gtcrn(GTCRN / "gtcrn_simple.onnx")


@pytest.fixture(scope="module")
def reference():
    """onnxruntime stepping the original ONNX over the first HOPS hops of a DNS3 clip."""
    from nsconv.audio import gtcrn_frontend as fe
    from nsconv.audio.wav import read_wav
    from nsconv.model.gtcrn import onnxruntime_stream

    spec = fe.stft(read_wav(DNS3 / "0398_noisy.wav"))[:HOPS]
    record: list = []
    enh = onnxruntime_stream(GTCRN / "gtcrn_simple.onnx", spec, record)
    return spec, enh, record


def test_both_graphs_import_to_the_same_typed_model(simple):
    from nsconv.model import opgraph as og
    from nsconv.model.gtcrn import load_gtcrn

    full = load_gtcrn(GTCRN / "gtcrn.onnx")  # unsimplified: Shape/Gather/Where plumbing folded
    a, b = simple.core, full.core
    assert a.op_counts() == b.op_counts()
    assert [s.name for s in a.states] == [s.name for s in b.states]
    counts = a.op_counts()
    assert counts["GRU"] == 14 and counts["Conv/depthwise"] == 6
    assert counts["Unary/Tanh"] == 1 and counts["PRelu"] == 15
    # no cache plumbing left: 16 states (6 frame histories, 6 TRA and 4 inter-frame GRU states)
    assert len(a.states) == 16
    assert sum(np.prod(s.shape) for s in a.states) == 2 * 16 * 16 * 33 + 2 * 3 * 16 + 2 * 33 * 16
    hist = sorted(s.shape[3] for s in a.states if s.cache == "conv_cache")
    assert hist == [2, 2, 4, 4, 10, 10]  # (kernel 3 - 1) x dilation 1, 2, 5
    for x, y in zip(a.ops, b.ops, strict=True):
        assert type(x) is type(y)
        if isinstance(x, og.Conv):
            np.testing.assert_array_equal(x.weight, y.weight)
    np.testing.assert_array_equal(simple.synthesis, full.synthesis)
    assert simple.synthesis.shape == (64, 192)
    assert a.macs() == 427_088


def _onnx(tmp_path, nodes, inits, x_shape, y_shape, name="m.onnx"):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)])
    m.ir_version = 7
    path = tmp_path / name
    onnx.save(m, path)
    return path


def test_unsupported_op_is_refused_naming_op_and_node(tmp_path):
    from nsconv.model.opgraph import import_opgraph
    from onnx import helper

    path = _onnx(tmp_path, [helper.make_node("Softmax", ["x"], ["y"], name="attention_sm")],
                 {}, [1, 4], [1, 4])
    with pytest.raises(NsconvError) as e:
        import_opgraph(path)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg == f"{path}: unsupported op Softmax (node 'attention_sm')"


def test_conv_transpose_with_batchnorm_becomes_stuffing_and_conv(tmp_path):
    """ConvTranspose (stride 1x2, grouped) + BatchNormalization against onnxruntime."""
    import onnxruntime as ort
    from nsconv.model.opgraph import Assemble, Conv, import_opgraph, run_numpy
    from onnx import helper

    rng = np.random.default_rng(3)
    inits = {"w": rng.standard_normal((4, 3, 1, 5)), "b": rng.standard_normal(6),
             "s": rng.uniform(0.5, 2, 6), "o": rng.standard_normal(6),
             "m": rng.standard_normal(6), "v": rng.uniform(0.5, 2, 6)}
    nodes = [helper.make_node("ConvTranspose", ["x", "w", "b"], ["t"], name="deconv", group=2,
                              kernel_shape=[1, 5], pads=[0, 2, 0, 2], strides=[1, 2]),
             helper.make_node("BatchNormalization", ["t", "s", "o", "m", "v"], ["y"], name="bn")]
    path = _onnx(tmp_path, nodes, inits, [1, 4, 1, 9], [1, 6, 1, 17])
    g = import_opgraph(path)
    assert [type(op) for op in g.ops] == [Assemble, Conv]  # zero-stuffing, then a plain conv
    x = rng.standard_normal((1, 4, 1, 9)).astype(np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None,
                                                                                  {"x": x})[0]
    got = run_numpy(g, {"x": x})["y"]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_stft_matches_torch():
    torch = pytest.importorskip("torch")
    from nsconv.audio import gtcrn_frontend as fe

    x = np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 0.1
    win = torch.hann_window(fe.N_FFT).pow(0.5)
    ref = torch.stft(torch.from_numpy(x), fe.N_FFT, fe.HOP, fe.N_FFT, win, center=True,
                     return_complex=True).numpy().T
    spec = fe.stft(x)
    np.testing.assert_allclose(spec, ref, atol=2e-5)
    back = torch.istft(torch.from_numpy(ref.T.copy()), fe.N_FFT, fe.HOP, fe.N_FFT, win,
                       center=True, length=len(x)).numpy()
    np.testing.assert_allclose(fe.istft(spec, len(x)), back, atol=1e-5)
    np.testing.assert_allclose(fe.istft(spec, len(x)), x, atol=1e-5)


def test_numpy_step_matches_onnxruntime(reference):
    """The full typed graph (mix -> enh) with explicit states, against the original ONNX."""
    from nsconv.model.opgraph import import_opgraph, run_numpy

    _, _, record = reference
    g = import_opgraph(GTCRN / "gtcrn_simple.onnx")
    states = g.states_from_caches(record[0][1])
    worst, peak = {"enh": 0.0}, {"enh": 0.0}
    for mix, _, res in record:
        out = run_numpy(g, {"mix": mix, **states})
        states = {s.name: out[s.name] for s in g.states}
        worst["enh"] = max(worst["enh"], float(np.abs(out["enh"] - res["enh"]).max()))
        peak["enh"] = max(peak["enh"], float(np.abs(res["enh"]).max()))
        for c, v in g.caches_from_states(states).items():
            worst[c] = max(worst.get(c, 0.0), float(np.abs(v - res[f"{c}_out"]).max()))
            peak[c] = max(peak.get(c, 0.0), float(np.abs(res[f"{c}_out"]).max()))
    rel = {k: worst[k] / peak[k] for k in worst}
    print("numpy spec, relative max abs error:", rel)
    assert set(rel) == {"enh", "conv_cache", "tra_cache", "inter_cache"}
    assert rel.pop("enh") < TOL_ENH
    assert max(rel.values()) < TOL_CACHE, rel


def test_tf_step_model_with_front_end_matches_onnxruntime(simple, reference):
    """Front end (features, mask expansion and product) + the TF one-step core model, states fed
    back, against onnxruntime: every enhanced frame and every cache."""
    from nsconv.audio import gtcrn_frontend as fe
    from nsconv.model.gtcrn import FEATURES, MASK
    from nsconv.model.opgraph_tf import TfStepper

    spec, enh, record = reference
    step = TfStepper(simple.core, FEATURES, MASK)
    worst, peak = {"enh": 0.0}, {"enh": float(np.abs(enh).max())}
    for t, (_, _, res) in enumerate(record):
        mask = step(fe.features(spec[t])).reshape(2, -1)
        frame = fe.apply_mask(spec[t], fe.expand_mask(mask, simple.synthesis))
        worst["enh"] = max(worst["enh"], float(np.abs(frame - enh[t]).max()))
        for c, v in simple.core.caches_from_states(step.states).items():
            worst[c] = max(worst.get(c, 0.0), float(np.abs(v - res[f"{c}_out"]).max()))
            peak[c] = max(peak.get(c, 0.0), float(np.abs(res[f"{c}_out"]).max()))
    rel = {k: worst[k] / peak[k] for k in worst}
    print("TF core + front end, relative max abs error:", rel)
    assert len(rel) == 4
    assert rel.pop("enh") < TOL_ENH
    assert max(rel.values()) < TOL_CACHE, rel


def test_assemble_lowering_to_slices_is_exact(simple):
    """Every Assemble of the core, lowered to chunks/transposes/concats/zeros (what the TF model
    emits with layout="slices", no GATHER), selects exactly the elements of its gather."""
    from nsconv.model.opgraph import Assemble
    from nsconv.model.opgraph_tf import lower_assemble

    shapes = simple.core.shapes()
    rng = np.random.default_rng(1)

    def build(node, flat, offsets):
        if node[0] == "zeros":
            return np.zeros(node[1])
        if node[0] == "chunk":
            _, src, lo, n, shape, perm = node
            piece = flat[offsets[src] + lo: offsets[src] + lo + n].reshape(shape)
            return piece if perm is None else piece.transpose(perm)
        return np.concatenate([build(p, flat, offsets) for p in node[2]], node[1])

    lowered = 0
    for op in simple.core.ops:
        if not isinstance(op, Assemble):
            continue
        sizes = {s: int(np.prod(shapes[s])) for s in op.sources}
        flat = rng.standard_normal(sum(sizes.values()))
        offsets = dict(zip(sizes, np.cumsum([0] + list(sizes.values()))[:-1], strict=True))
        if "zero" in offsets:
            flat[offsets["zero"]] = 0.0
        np.testing.assert_array_equal(build(lower_assemble(op, sizes), flat, offsets),
                                      flat[op.index])
        lowered += 1
    assert lowered == 94


@pytest.fixture(scope="module")
def compact(simple):
    from nsconv.model.gtcrn_compact import CompactStepper

    return CompactStepper(simple.core)


def test_compact_core_with_front_end_matches_onnxruntime(simple, reference, compact):
    """The compact core (model/gtcrn_compact.py: NHWC, layout patterns as few ops) + front end,
    states fed back in their compact layouts, against onnxruntime: every frame and cache."""
    from nsconv.audio import gtcrn_frontend as fe
    from nsconv.model.gtcrn_compact import from_compact

    spec, enh, record = reference
    step = compact
    step.states = {k: np.zeros_like(v) for k, v in step.states.items()}
    worst, peak = {"enh": 0.0}, {"enh": float(np.abs(enh).max())}
    for t, (_, _, res) in enumerate(record):
        mask = step(fe.features(spec[t])).reshape(2, -1)
        frame = fe.apply_mask(spec[t], fe.expand_mask(mask, simple.synthesis))
        worst["enh"] = max(worst["enh"], float(np.abs(frame - enh[t]).max()))
        states = from_compact(simple.core, step.states)
        for c, v in simple.core.caches_from_states(states).items():
            worst[c] = max(worst.get(c, 0.0), float(np.abs(v - res[f"{c}_out"]).max()))
            peak[c] = max(peak.get(c, 0.0), float(np.abs(res[f"{c}_out"]).max()))
    rel = {k: worst[k] / peak[k] for k in worst}
    print("compact core + front end, relative max abs error:", rel)
    assert len(rel) == 4
    assert rel.pop("enh") < TOL_ENH
    assert max(rel.values()) < TOL_CACHE, rel


# what the compact core may contain: TFLM kernels with int8 and int16 variants
COMPACT_OPS = {"ADD", "SUB", "MUL", "FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "SPLIT",
               "LOGISTIC", "TANH", "CONCATENATION", "RESHAPE", "STRIDED_SLICE", "LEAKY_RELU",
               "MEAN", "PAD", "RSQRT", "TRANSPOSE", "QUANTIZE"}


def test_compact_core_converts_to_about_a_thousand_tflm_ops(simple, compact):
    import contextlib
    import io

    import tensorflow as tf
    from nsconv.quant.gtcrn_quant import op_counts, op_inventory, tflite_macs

    fn = compact.fn
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    with contextlib.redirect_stdout(io.StringIO()):
        blob = conv.convert()
    counts = op_counts(blob)
    print("compact float core:", sum(counts.values()), counts)
    assert set(counts) <= COMPACT_OPS, set(counts) - COMPACT_OPS
    # 66 intra-frame GRU steps of 11 ops each are most of it
    assert 1000 <= sum(counts.values()) <= 1100
    assert counts["CONV_2D"] == 18 and counts["DEPTHWISE_CONV_2D"] == 6
    for row in op_inventory(blob):  # static shapes, batch 1
        assert all("-" not in s for s in row["outputs"]), row
    # convs cost what the op graph counts; the GRUs of both groups (and directions) run as one
    # block-diagonal FULLY_CONNECTED, which multiplies the zero blocks too
    macs = tflite_macs(blob)
    print(f"MACs per hop: TFLite {macs:,}, op graph {simple.core.macs():,}")
    assert simple.core.macs() < macs < 1.4 * simple.core.macs()


def test_compact_extract_refuses_another_graph(tmp_path):
    from nsconv.model.gtcrn_compact import extract
    from nsconv.model.opgraph import import_opgraph
    from onnx import helper

    path = _onnx(tmp_path, [helper.make_node("Sigmoid", ["x"], ["y"], name="s")], {}, [1, 4],
                 [1, 4])
    with pytest.raises(NsconvError) as e:
        extract(import_opgraph(path))
    assert "not GTCRN's structure" in str(e.value) and "\n" not in str(e.value)


def _segment(tf, w, name_in, name_out, samples, int16):
    from nsconv.quant.gtcrn_quant import _converter
    from nsconv.quant.tflite_join import rename_outputs

    @tf.function(input_signature=[tf.TensorSpec([1, w.shape[0]], tf.float32, name=name_in)],
                 autograph=False)
    def f(x):
        return {name_out: tf.tanh(tf.matmul(x, tf.constant(w)))}

    blob = _converter(f, [[s] for s in samples], int16)
    return rename_outputs(blob, [name_out])


def test_joined_segments_run_in_tflm_as_the_segments_apart():
    """Three segments (int16, int16 calibrated on another range, int8) joined into one model run
    in TFLM bit-exactly as the segments run one by one with `requantize` (TFLM QUANTIZE
    arithmetic, int16->int16 and int16->int8) between them."""
    import tensorflow as tf
    from nsconv.quant.gtcrn_quant import CoreTensor, requantize
    from nsconv.quant.tflite_join import join
    from tflite_micro.python.tflite_micro import runtime

    rng = np.random.default_rng(7)
    ws = [rng.standard_normal((8, 8)).astype(np.float32) * 0.6 for _ in range(3)]
    xs = [rng.standard_normal((1, 8)).astype(np.float32) for _ in range(64)]
    ys = [np.tanh(x @ ws[0]) for x in xs]
    zs = [np.tanh(y @ ws[1]) for y in ys]
    segs = [_segment(tf, ws[0], "x", "y", xs, True),
            _segment(tf, ws[1], "y", "z", [3 * y for y in ys], True),  # another scale for y
            _segment(tf, ws[2], "z", "out", zs, False)]
    joined = join(segs, ["x"], ["out"])

    def io(blob):
        from tensorflow.lite.python import schema_py_generated as schema

        sg = schema.ModelT.InitFromPackedBuf(blob, 0).subgraphs[0]
        ref = []
        for i in (sg.inputs[0], sg.outputs[0]):
            t = sg.tensors[i]
            dt = "int16" if t.type == schema.TensorType.INT16 else "int8"
            ref.append(CoreTensor(0, int(i), t.name.decode(), dt, tuple(t.shape),
                                  float(t.quantization.scale[0]),
                                  int(t.quantization.zeroPoint[0])))
        return ref

    refs = [io(s) for s in segs]
    assert [r[0].dtype for r in refs] == ["int16", "int16", "int8"]
    assert refs[0][1].scale != refs[1][0].scale  # a real int16 -> int16 requantization
    interps = [runtime.Interpreter.from_bytes(s, arena_size=1 << 16) for s in segs + [joined]]
    info = np.iinfo(np.int16)
    for x in xs[:16]:
        q = np.clip(np.round(x / refs[0][0].scale), info.min, info.max).astype(np.int16)
        interps[3].set_input(q, 0)
        interps[3].invoke()
        want = q
        for k in range(3):
            interps[k].set_input(want, 0)
            interps[k].invoke()
            want = np.asarray(interps[k].get_output(0))
            if k < 2:
                want = requantize(refs[k][1], refs[k + 1][0], want)
        np.testing.assert_array_equal(np.asarray(interps[3].get_output(0)), want)


def test_core_description_round_trips_and_bad_files_are_one_line(tmp_path):
    import json

    from nsconv.quant.gtcrn_quant import CoreState, CoreTensor, QuantizedCore, load_core

    t = CoreTensor(3, 7, "feat", "int16", (1, 3, 1, 257), 0.001, 0)
    s = CoreState("tra_cache[0:1,0:1,0:1,0:1,0:16]", CoreTensor(0, 0, "tra", "int8", (1, 16),
                                                                 0.0078, -3),
                  CoreTensor(0, 9, "tra", "int8", (1, 16), 0.0079, 2))
    core = QuantizedCore("mixed", ("input",), b"TFL3" * 4, t, t, (s,))
    path = tmp_path / "core_mixed.tflite"
    path.write_bytes(core.tflite)
    path.with_suffix(".json").write_text(json.dumps(core.to_json()))
    assert load_core(path) == core
    path.write_bytes(b"x")
    with pytest.raises(NsconvError, match="describes another"):
        load_core(path)
    path.with_suffix(".json").unlink()
    with pytest.raises(NsconvError) as e:
        load_core(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)
