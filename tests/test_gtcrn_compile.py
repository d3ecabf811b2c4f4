# SPDX-License-Identifier: Apache-2.0
"""The N-D step-model compiler (compiler/ndcodegen.py) against TFLM, bit for bit.

A small stateful int8 step model from the real TFLite converter (batched FULLY_CONNECTED rows,
broadcast ADD, LEAKY_RELU/RELU/LOGISTIC/TANH, a GRU-like state update whose output is
requantized into the state input's quantization, strided slice + pad + concatenation folded
into copies) is compiled to C, built for the host under ASan/UBSan and streamed against the TFLM
interpreter: every mask and state after every frame equal. Unsupported ops are refused at
generation time, naming the op, the tensor and the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from gtcrn_paths import GTCRN_SIMPLE

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _small_step(seed: int = 0):
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    w1 = tf.constant(rng.normal(0, .4, (6, 5)).astype(np.float32))
    w2 = tf.constant(rng.normal(0, .4, (3, 5)).astype(np.float32))
    w3 = tf.constant(rng.normal(0, .4, (5, 3)).astype(np.float32))
    bias = tf.constant(rng.normal(0, .2, (1, 1, 5)).astype(np.float32))

    def step(feat, h):
        a = tf.matmul(feat, w1) + tf.matmul(h, w2) + bias  # [1, 4, 5]: 4 rows per FC
        a = tf.nn.leaky_relu(a, 0.2)
        z = tf.sigmoid(tf.matmul(a, w3))
        n = tf.tanh(tf.matmul(tf.nn.relu(a), w3))
        h_new = n + z * (h - n)
        side = tf.pad(feat[:, :, ::2], [[0, 0], [0, 0], [1, 0]])  # [1, 4, 4]
        return {"mask": tf.sigmoid(tf.concat([h_new, side], 2)), "h_out": h_new}

    return step


def _convert_small(step) -> bytes:
    import tensorflow as tf

    spec = [tf.TensorSpec((1, 4, 6), tf.float32, name="feat"),
            tf.TensorSpec((1, 4, 3), tf.float32, name="h")]
    f = tf.function(step, input_signature=spec)
    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    rng = np.random.default_rng(1)
    conv.representative_dataset = lambda: (
        [rng.uniform(-1, 1, (1, 4, 6)).astype(np.float32),
         rng.uniform(-1, 1, (1, 4, 3)).astype(np.float32)] for _ in range(32))
    return conv.convert()


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("nd") / "small.tflite"
    path.write_bytes(_convert_small(_small_step()))
    return path


def _spec():
    from nsconv.compiler.ndcodegen import NdSpec, StatePair

    # outputs are Identity, Identity_1, ... in the order of the sorted output keys
    return NdSpec("feat", "Identity_1", (StatePair("h", "h", "Identity"),), "small step")


def test_small_step_bit_exact(small_model, tmp_path):
    from nsconv.check.nd_verify import verify_frames
    from nsconv.compiler.ndcodegen import generate_nd
    from nsconv.compiler.ndgraph import read_nd

    g = read_nd(small_model)
    res = generate_nd(small_model, _spec(), tmp_path / "c")
    counts = dict(res.view.op_counts)
    assert counts["FULLY_CONNECTED"] == 4 and counts["LEAKY_RELU"] == 1
    assert any(s.kind == "copy" for s in res.view.steps)  # slice + pad + concat
    h_in = g.tensors[g.index_of("h")]
    h_out = g.tensors[g.index_of("Identity", outputs=True)]
    assert h_in.quant != h_out.quant  # the state is requantized at the end of each step
    assert res.view.updates[0].params is not None
    rng = np.random.default_rng(2)
    frames = rng.integers(-128, 128, (60, 24)).astype(np.int8)
    resets = np.zeros(60, bool)
    resets[30] = True
    rep = verify_frames(g, _spec(), tmp_path / "c", tmp_path / "build", frames, sanitize=True,
                        resets=resets)
    assert rep.bit_exact, rep.first_mismatch
    assert rep.frames == 60 and rep.mismatched_frames == 0


def test_corrupted_weight_is_caught(small_model, tmp_path):
    """The comparison can fail: one weight byte changed in the generated C gives mismatches."""
    from nsconv.check.nd_verify import verify_frames
    from nsconv.compiler.ndcodegen import generate_nd
    from nsconv.compiler.ndgraph import read_nd

    generate_nd(small_model, _spec(), tmp_path / "c")
    w = tmp_path / "c" / "nsn_weights.c"
    lines = w.read_text().splitlines()
    k = next(i for i, line in enumerate(lines) if line.startswith("const int8_t")) + 1
    first = lines[k].split(",")[0]
    lines[k] = lines[k].replace(first, " " + str(-1 - int(first)), 1)
    w.write_text("\n".join(lines) + "\n")
    frames = np.random.default_rng(3).integers(-128, 128, (8, 24)).astype(np.int8)
    rep = verify_frames(read_nd(small_model), _spec(), tmp_path / "c", tmp_path / "build",
                        frames)
    assert not rep.bit_exact and rep.mismatched_frames > 0
    # the first differing op is named: a FULLY_CONNECTED (the corrupted weight's)
    assert "(FULLY_CONNECTED), tensor" in rep.first_mismatch, rep.first_mismatch


def test_unsupported_op_refused(small_model, tmp_path):
    import dataclasses

    from nsconv.compiler.ndcodegen import compile_program
    from nsconv.compiler.ndgraph import read_nd
    from nsconv.errors import NsconvError

    g = read_nd(small_model)
    ops = list(g.ops)
    k = next(i for i, op in enumerate(ops) if op.kind == "TANH")
    ops[k] = dataclasses.replace(ops[k], kind="SOFTMAX")
    with pytest.raises(NsconvError) as info:
        compile_program(dataclasses.replace(g, ops=tuple(ops)), _spec())
    text = str(info.value)
    assert text.startswith(f"{small_model}: op {k} (SOFTMAX, output ")
    assert "no nsn_ kernel for SOFTMAX" in text


GTCRN_ONNX = GTCRN_SIMPLE


@pytest.fixture(scope="module")
def gtcrn_core(tmp_path_factory, gtcrn_converted):
    """The session's GTCRN core (conftest.gtcrn_converted) as a .tflite file and its spec."""
    from nsconv.compiler.gtcrn_export import core_spec

    core = gtcrn_converted[0]
    path = tmp_path_factory.mktemp("gtcrn") / "core.tflite"
    path.write_bytes(core.tflite)
    return path, core_spec(core)


def test_gtcrn_core_bit_exact(gtcrn_core, tmp_path):
    """The whole GTCRN core: generated C (host, ASan/UBSan) equals TFLM on the mask and all 16
    states, frame by frame, over real speech."""
    from nsconv.audio.wav import read_wav
    from nsconv.check.nd_verify import gtcrn_frames, verify_frames
    from nsconv.compiler.ndcodegen import generate_nd
    from nsconv.compiler.ndgraph import read_nd
    from nsconv.quant.quantize import calibration_clips

    path, spec = gtcrn_core
    res = generate_nd(path, spec, tmp_path / "c")
    counts = dict(res.view.op_counts)
    for kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED", "QUANTIZE"):
        assert counts.get(kind, 0) > 0, counts
    kernels = {(s.kind, s.sfx) for s in res.view.steps}
    # both widths in one step: the 16x8 convs (and the ERB FC as a 1x1 16x8 conv), int8 FCs
    assert ("conv", "s16") in kernels and ("fcb", "s8") in kernels
    assert ("requantize", "s16_s8") in kernels
    assert len(spec.states) == 16 and res.view.state_bytes == 18048
    g = read_nd(path)
    _check_conv_activations(g, res)
    clip = calibration_clips()[0]
    assert read_wav(clip).size > 40 * 256
    x, _ = gtcrn_frames(g, spec, [clip], 40)
    rep = verify_frames(g, spec, tmp_path / "c", tmp_path / "build", x, sanitize=True)
    assert rep.bit_exact, rep.first_mismatch
    assert rep.frames == 40 and len(rep.state_mismatched_frames) == 16


def _check_conv_activations(g, res) -> None:
    """The int8 LEAKY_RELUs read only by themselves after an int8 conv are applied by the conv
    (its output tensor never stored); one whose conv output is also read elsewhere (here: made
    a model output) stays a step of its own."""
    import dataclasses

    from nsconv.compiler import layout
    from nsconv.compiler.ndcodegen import _roots, conv_activations

    lay = layout.fold(g)
    acts = conv_activations(g, lay)
    leaky = [op for op in g.ops if op.kind == "LEAKY_RELU"]
    fused = {a.index for a in acts.values()}
    assert len(leaky) == 15 and len(fused) == 13 and len(acts) == 14  # one after 2 convs
    assert dict(res.view.op_counts)["LEAKY_RELU"] == len(leaky) - len(fused)
    convs = {op.index: op for op in g.ops}
    for k, a in acts.items():
        if a.inputs[0] != convs[k].outputs[0]:  # a gather (channel interleave) of two convs
            assert lay.views[a.inputs[0]].kind == "gather" and len(_roots(lay, a.inputs[0])) == 2
            continue
        assert g.tensors[a.inputs[0]].dtype == "int8"
        name = g.tensors[a.inputs[0]].name[:70] + ":"
        assert not any(pl.comment.startswith(name) for pl in res.view.pointers), name
    k, a = next(iter(acts.items()))
    seen = dataclasses.replace(g, outputs=(*g.outputs, ("seen", a.inputs[0])))
    assert k not in conv_activations(seen, lay) and len(conv_activations(seen, lay)) == 13


def test_missing_kernel_refused(small_model, monkeypatch):
    """An op whose kernel the library does not define (declared or not) refuses the model at
    generation time, naming the op, its output tensor, the kernel and the file."""
    from nsconv.compiler import ndcodegen
    from nsconv.compiler.ndgraph import read_nd
    from nsconv.errors import NsconvError

    ndcodegen.kernel_defined("")  # fill the table of defined kernels
    monkeypatch.setattr(ndcodegen, "_DEFINED", ndcodegen._DEFINED - {"nsn_fully_connected_s8"})
    g = read_nd(small_model)
    with pytest.raises(NsconvError) as info:
        ndcodegen.compile_program(g, _spec())
    first = next(op for op in g.ops if op.kind == "FULLY_CONNECTED")
    text = str(info.value)
    assert text.startswith(f"{small_model}: op {first.index} (FULLY_CONNECTED, output ")
    assert "no kernel nsn_fully_connected_s8" in text


def test_gtcrn_cli_refusals(tmp_path):
    """GTCRN's export refuses what it does not do yet in one line (status 1, nothing written);
    verify refuses a broken GTCRN export the same way."""
    import subprocess
    import sys

    from nsconv.compiler.gtcrn_export import is_gtcrn
    from nsconv.model.assets import baseline_path

    assert is_gtcrn(GTCRN_ONNX) and is_gtcrn(GTCRN_ONNX.with_name("gtcrn.onnx"))
    assert not is_gtcrn(baseline_path()) and not is_gtcrn("nsnet2-baseline")  # nsNet2's route

    def run(*args):
        return subprocess.run([sys.executable, "-m", "nsconv.cli", *map(str, args)],
                              capture_output=True, text=True, cwd=tmp_path)

    out = tmp_path / "out"
    for extra, words in ((("--exits", "gru1"), "--exits: not available for GTCRN"),):
        r = run("export", GTCRN_ONNX, "-o", out, *extra)
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr.strip().splitlines() == [
            line for line in r.stderr.strip().splitlines() if line.startswith("nsconv: ")]
        assert r.stderr.strip().splitlines()[-1].startswith(f"nsconv: error: {GTCRN_ONNX}: ")
        assert words in r.stderr and "Traceback" not in r.stderr
        assert not out.exists()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "gtcrn.json").write_text("{")
    r = run("verify", bad)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"{bad / 'gtcrn.json'}: not a GTCRN export" in r.stderr
