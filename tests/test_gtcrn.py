# SPDX-License-Identifier: Apache-2.0
"""GTCRN imported the nsconv way: typed op graph, explicit states, float one-step models.

The models are read from ../shared/models/gtcrn beside the checkout (NSCONV_SHARED overrides the
shared folder); the tests skip, saying so, when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from nsconv.errors import NsconvError

SHARED = Path(os.environ.get("NSCONV_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
GTCRN = SHARED / "models" / "gtcrn"
DNS3 = SHARED / "audio" / "dns3"
HOPS = 100
# Errors relative to the largest magnitude of the tensor over the run (float32 rounding level).
# Measured over these 100 hops: numpy spec enh 3.8e-7, caches 3.2e-6 (the GRU states, |h| <= 1);
# TF core + front end enh 7.0e-7, caches 3.2e-6.
TOL_ENH = 1.5e-6
TOL_CACHE = 5e-6

needs_shared = pytest.mark.skipif(not (GTCRN / "gtcrn_simple.onnx").is_file()
                                  or not DNS3.is_dir(),
                                  reason=f"GTCRN models / DNS3 audio not found under {SHARED}")


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


@needs_shared
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


@needs_shared
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


@needs_shared
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


@needs_shared
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
