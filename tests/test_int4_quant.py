# SPDX-License-Identifier: Apache-2.0
"""4-bit weights, quantization side: the int4 grid written into int8 .tflite models (TFLM
computes what a packed int4 kernel must), error-compensating rounding, the format choice under
a flash budget, and convert/export with --weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from nsconv.compiler.tflite_ir import OpKind, parse_tflite
from nsconv.model.netspec import NetSpec
from nsconv.quant import int4, refops
from nsconv.quant.manifest import Manifest
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


def test_int4_bytes(tiny_spec):
    """Packed int4 rows are padded to 16 weights (8 bytes per 16)."""
    from nsconv.compiler.packing import row_bytes
    from nsconv.quant.weights import int4_row_bytes, layer_weight_bytes

    assert [int4_row_bytes(n) for n in (1, 16, 17, 161, 400, 600)] == [8, 8, 16, 88, 200, 304]
    assert all(int4_row_bytes(n) == row_bytes(n) for n in range(1, 1300))  # the kernel's layout
    # fc1 161 -> 24 with a bias; gru1 (24 -> 16): six filters, four biases of 16
    assert layer_weight_bytes(tiny_spec, "fc1", "int8") == 24 * 161 + 4 * 24
    assert layer_weight_bytes(tiny_spec, "fc1", "int4") == 24 * 88 + 4 * 24
    assert layer_weight_bytes(tiny_spec, "gru1", "int4") == 3 * 16 * 16 + 3 * 16 * 8 + 4 * 4 * 16


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


# ---------------------------------------------------------------------------------------------
# Error-compensating rounding (GPTQ)


def test_gptq_beats_round_to_nearest_on_correlated_inputs():
    """Inputs with strongly correlated features (as audio features are): GPTQ's output error
    on fresh inputs of the same distribution is well below round-to-nearest's."""
    from nsconv.quant import gptq

    rng = np.random.default_rng(5)
    mix = rng.normal(0, 1, (12, 48))
    fit_x = rng.normal(0, 1, (2000, 12)) @ mix + 0.05 * rng.normal(0, 1, (2000, 48))
    new_x = rng.normal(0, 1, (2000, 12)) @ mix + 0.05 * rng.normal(0, 1, (2000, 48))
    w = rng.normal(0, 1, (30, 48)).astype(np.float32)
    q, s = gptq.gptq(w, gptq.hessian(fit_x))
    assert q.dtype == np.int8 and q.min() >= -7 and q.max() <= 7 and s.dtype == np.float32
    qr, sr = int4.rtn(w)
    h_new = gptq.hessian(new_x)
    assert gptq.output_error(w, q, s, h_new) < 0.5 * gptq.output_error(w, qr, sr, h_new)
    # and no worse than the plain rounding with H = I (white inputs): the damped solution
    q_i, s_i = gptq.gptq(w, np.eye(48) * 2000)
    eye = np.eye(48)
    assert gptq.output_error(w, q_i, s_i, eye) <= gptq.output_error(w, qr, sr, eye) * 1.0001


def test_recorded_layer_inputs_follow_the_float_model(tiny_spec):
    """The batched numpy forward over recorded states gives the float step model's masks,
    and each layer's Hessian is the second moment of its recorded inputs (x and GRU h)."""
    from nsconv.model.stepmodel import FloatStepper
    from nsconv.quant import gptq
    from nsconv.quant.quantize import calibration_clips, calibration_features

    feats = [f[:60] for f in calibration_features(calibration_clips()[:1], tiny_spec.frontend)]
    inputs = gptq.record_layer_inputs(tiny_spec, feats)
    assert set(inputs) == set(tiny_spec.layers)
    assert set(inputs["gru2"].hessians) == {"x", "h"} and set(inputs["fc3"].hessians) == {"x"}
    ex = tiny_spec.exit("final")
    record: list = []
    masks = FloatStepper(tiny_spec, ex).run(feats[0], record)
    states = {g: np.stack([r[1][g] for r in record]) for g in ("gru1", "gru2")}
    layer_in = gptq._forward_inputs(tiny_spec, ex, np.stack([r[0] for r in record]), states)
    fc4 = tiny_spec.layers["fc4"]
    mine = 1 / (1 + np.exp(-(layer_in["fc4"]["x"] @ fc4.weight + fc4.bias)))
    np.testing.assert_allclose(mine, masks, atol=2e-5)
    np.testing.assert_allclose(inputs["gru2"].hessians["h"], gptq.hessian(states["gru2"]),
                               rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# convert / export with weight formats


@pytest.fixture(scope="module")
def tiny_int4(tiny_int4_out) -> Path:
    """The tiny model with gru1 and fc3 in int4 (GPTQ): conftest.py's tiny_int4_out."""
    return tiny_int4_out


def _by_layer(root: Path, entry) -> tuple[dict, dict]:
    """{Keras FC name: (filter tensor, bias tensor | None)} of an exit, and its graph."""
    graph = parse_tflite((root / entry.tflite).read_bytes())
    fcs = {}
    for op in _fc_ops(graph):
        fcs[_layer_of(graph, op)] = (graph.tensors[op.inputs[1]],
                                     graph.tensors[op.inputs[2]] if op.inputs[2] >= 0 else None)
    return fcs, graph


def test_convert_with_int4_layers(tiny_out, tiny_int4):
    m, m8 = Manifest.load(tiny_int4), Manifest.load(tiny_out)
    assert m.weight_formats == {"fc1": "int8", "gru1": "int4", "gru2": "int8", "fc2": "int8",
                                "fc3": "int4", "fc4": "int8", "exit_gru1_mask": "int8",
                                "exit_gru2_mask": "int8", "exit_fc2_mask": "int8"}
    assert m.int4_rounding == "gptq"
    seen: dict[str, tuple] = {}
    for e, e8 in zip(m.exits, m8.exits, strict=True):
        fcs, graph = _by_layer(tiny_int4, e)
        fcs8, graph8 = _by_layer(tiny_out, e8)
        int4_fcs = {k for k in fcs if k.split("_")[0] in ("gru1", "fc3")}
        assert len(int4_fcs) == (7 if e.name == "final" else 6)
        assert sorted(e.int4_weights) == sorted(fcs[k][0].name for k in int4_fcs)
        for k, (w, b) in fcs.items():
            if k in int4_fcs:
                arr = w.array()
                assert arr.min() >= -7 and arr.max() <= 7 and np.abs(arr).max() == 7
                # the same int4 values, scales and bias in every exit that holds the layer
                key = (w.data, w.quant, None if b is None else (b.data, b.quant))
                assert seen.setdefault(k, key) == key
            else:  # int8 layers are the converter's, byte for byte
                w8, b8 = fcs8[k]
                assert (w.data, w.quant) == (w8.data, w8.quant)
                assert (b is None) or (b.data, b.quant) == (b8.data, b8.quant)
        assert len(graph.tensors) == len(graph8.tensors) and graph.ops == graph8.ops
    assert set(seen) == {"fc3", *(f"gru1_{k}" for k in int4.GRU_MATRICES)}


# Bytes over the all-int4 size: only fc3 (20 x 20: int4 rows of 16 bytes save 80 bytes; every
# other layer of the tiny model 160 or more) can stay int8 within the budget, and the clean-up
# pass returns it to int8.
INT4_FLOOR_SLACK = 90


@pytest.fixture(scope="module")
def int4_cache(tmp_path_factory):
    """A private nsconv cache directory for the int4 ranking and weights."""
    import os

    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield Path(os.environ["XDG_CACHE_HOME"])
    if old is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = old


def test_auto_formats_fit_the_budget(tiny_out, tiny_spec, int4_cache):
    """--weights auto as convert runs it (on tiny_out's int8 exits): the ranking is measured
    once and cached, the formats fit the budget, and the patched exits hold the int4 layers."""
    from nsconv.quant.convert import _with_formats
    from nsconv.quant.int4_choose import choose_formats, converted_exits
    from nsconv.quant.quantize import calibration_clips, calibration_features
    from nsconv.quant.weights import WeightsRequest, layer_weight_bytes

    clips = calibration_clips()[:1]
    feats = calibration_features(clips, tiny_spec.frontend)
    budget = sum(layer_weight_bytes(tiny_spec, n, "int4") for n in tiny_spec.layers)
    request = WeightsRequest.parse("auto", budget + INT4_FLOOR_SLACK)
    converted = converted_exits(tiny_out)
    formats, patched, names = _with_formats(tiny_spec, converted, request, clips, feats, {},
                                            None, lambda *_: None)
    assert set(tiny_spec.layers) - {k for k, v in formats.items() if v == "int4"} == {"fc3"}
    assert sum(layer_weight_bytes(tiny_spec, n, f) for n, f in formats.items()) <= budget + 90
    assert names[0] and all("/MatMul" in n for n in names[0])
    assert len(names[3]) == 6 * 2 + 3  # final: fc1, gru1, gru2, fc2, fc4 (fc3 stays int8)
    rankings = list((int4_cache / "nsconv" / "int4").glob("ranking-*.json"))
    assert len(rankings) == 1
    # a cached ranking keeps its measurements; its byte counts are always recomputed
    import json

    cached = json.loads(rankings[0].read_text())
    for c in cached["layers"]:
        c["int8_bytes"], c["int4_bytes"] = 2, 1
    rankings[0].write_text(json.dumps(cached))
    again = choose_formats(tiny_spec, budget + INT4_FLOOR_SLACK, converted=converted, clips=clips)
    assert again.formats == formats and again.ranking.measured_with == "tflm"
    assert all(c.int8_bytes == layer_weight_bytes(tiny_spec, c.layer, "int8")
               for c in again.ranking.layers)
    assert all(c.cost > 0 for c in again.ranking.layers)
    for q, q8 in zip(patched, converted, strict=True):
        assert q.tflite != q8.tflite and len(q.tflite) == len(q8.tflite)


def test_int4_exits_merge_with_shared_weights(tiny_out, tiny_int4, tiny_spec):
    from nsconv.compiler.graph_merge import merge_dir
    from nsconv.quant.weights import layer_weight_bytes

    _, merged = merge_dir(tiny_int4)
    _, merged8 = merge_dir(tiny_out)
    assert not merged.unshared
    # int4 filters are emitted packed (compiler/packing.py): the constants shrink by that
    saved = sum(len(c.data) - c.nbytes for c in merged.consts if c.int4)
    assert len(merged.ops) == len(merged8.ops) and saved > 0
    assert merged.const_bytes == merged8.const_bytes - saved
    # what the format choice counts is what the compiler emits
    assert saved == sum(layer_weight_bytes(tiny_spec, n, "int8")
                        - layer_weight_bytes(tiny_spec, n, "int4") for n in ("gru1", "fc3"))


def test_default_conversion_is_the_converters_output(tiny_out, tiny_spec):
    """The all-int8 default writes the converter's models untouched (the deepest exit, which
    holds every backbone layer, re-converted here with the quantize primitives alone) and a
    manifest without weight formats."""
    import json

    from nsconv.quant.quantize import (
        calibration_clips,
        calibration_features,
        convert_exit,
        record_closed_loop,
    )

    feats = calibration_features(calibration_clips()[:1], tiny_spec.frontend)
    m = Manifest.load(tiny_out)
    assert all(e.int4_weights == () for e in m.exits)
    ex = tiny_spec.exit("final")
    direct = convert_exit(tiny_spec, ex, record_closed_loop(tiny_spec, ex, feats)).tflite
    assert (tiny_out / m.exit("final").tflite).read_bytes() == direct
    raw = json.loads((tiny_out / "manifest.json").read_text())
    assert "weight_formats" not in raw and not any("int4_weights" in e for e in raw["exits"])


# ---------------------------------------------------------------------------------------------
# The format choice


def test_greedy_choice_by_cost_per_byte(tiny_spec):
    """Cheapest cost per byte saved first until the kept exits' weights fit; then layers whose
    return to int8 still fits go back, most costly first."""
    from nsconv.quant.int4_choose import LayerCost, greedy_formats

    costs = {n: LayerCost(n, {"final": 1.0}, 1000, 500) for n in tiny_spec.layers}
    costs["fc1"] = LayerCost("fc1", {"final": 0.1}, 4000, 2000)
    costs["gru1"] = LayerCost("gru1", {"gru1": 0.2, "final": 0.3}, 3000, 1500)
    costs["fc3"] = LayerCost("fc3", {"final": 0.9}, 1000, 100)
    costs["fc4"] = LayerCost("fc4", {"final": 0.01}, 200, 100)
    # cost per KiB saved: fc1 0.05, fc4 0.10, gru1 0.20, fc3 1.02, gru2 and fc2 2.05
    final = ("final",)  # exit final holds fc1 gru1 gru2 fc2 fc3 fc4
    total = 4000 + 3000 + 1000 + 1000 + 1000 + 200
    c = greedy_formats(tiny_spec, costs, total, final)
    assert c.int4_layers == [] and c.weight_bytes == c.int8_bytes == total and c.fits
    c = greedy_formats(tiny_spec, costs, total - 2000, final)
    assert c.int4_layers == ["fc1"] and c.weight_bytes == total - 2000
    # fc1, fc4, gru1 save 3,600; fc4 then goes back (3,500 still fit)
    c = greedy_formats(tiny_spec, costs, total - 3400, final)
    assert c.int4_layers == ["fc1", "gru1"] and c.weight_bytes == total - 3500
    # fc1, fc4, gru1, fc3 save 4,500; only fc4 can go back
    c = greedy_formats(tiny_spec, costs, total - 4400, final)
    assert c.int4_layers == ["fc1", "gru1", "fc3"] and c.weight_bytes == total - 4400
    # the heads of other exits count only when those exits are kept
    c = greedy_formats(tiny_spec, costs, 0, final)
    assert "exit_gru1_mask" not in c.int4_layers and not c.fits
    c = greedy_formats(tiny_spec, costs, 0, ("gru1", "final"))
    assert "exit_gru1_mask" in c.int4_layers and "exit_fc2_mask" not in c.int4_layers


def test_exit_masks_are_the_tflm_reference(tiny_out):
    """The ranking's TFLM streaming loop is the reference loop of check/tflm_ref."""
    from nsconv.audio import frontend
    from nsconv.check.tflm_ref import TflmReference
    from nsconv.quant.int4_choose import converted_exits, exit_masks
    from nsconv.quant.quantize import calibration_clips, calibration_features

    m = Manifest.load(tiny_out)
    feats = [f[:40] for f in calibration_features(calibration_clips()[:2], m.frontend)]
    for q in converted_exits(tiny_out)[1:3]:
        ref = TflmReference(tiny_out)
        want = []
        for utt in feats:
            ref.reset()
            fq = frontend.quantize(utt, q.features.scale, q.features.zero_point)
            want += [frontend.dequantize(ref.step(f, q.name), q.mask.scale, q.mask.zero_point)
                     for f in fq]
        got = exit_masks(q, feats)
        np.testing.assert_array_equal(got, np.stack(want))
        assert got.std() > 0.01


def test_weights_option_errors():
    from nsconv.errors import NsconvError
    from nsconv.quant.weights import WeightsRequest

    assert WeightsRequest.parse(None).is_default
    assert WeightsRequest.parse(None, 1000).mode == "auto"  # a budget alone means auto
    assert WeightsRequest.parse("gru1=int4, fc3=int4").layers == (("gru1", "int4"),
                                                                   ("fc3", "int4"))
    for text, budget, needle in [("gru1=int3", None, "unknown format 'int3'"),
                                 ("gru1", None, "is not LAYER=FORMAT"),
                                 ("gru1=int4,gru1=int8", None, "named twice"),
                                 ("auto", None, "needs a budget"),
                                 ("int8", 1000, "applies to --weights auto"),
                                 ("auto", 0, "positive")]:
        with pytest.raises(NsconvError, match=needle) as info:
            WeightsRequest.parse(text, budget)
        assert str(info.value).startswith(("--weights", "--flash-budget"))


def test_cli_weights_errors(tiny_out, tmp_path):
    """One line naming the option and the cause, exit 1, before any conversion; a bad
    --rounding is a usage error (2)."""
    import subprocess
    import sys

    model = tiny_out / "model.npz"

    def run(*args):
        return subprocess.run([sys.executable, "-m", "nsconv.cli", "convert", str(model), "-o",
                               str(tmp_path / "out"), *args], capture_output=True, text=True,
                              timeout=300)

    for args, needle in [(("--weights", "gru1=int3"), "--weights 'gru1=int3': unknown format"),
                         (("--weights", "nosuch=int4"), "--weights: no layer named 'nosuch'"),
                         (("--flash-budget", "12Q"), "--flash-budget: not a size"),
                         (("--flash-budget", "1K"), "budget of 1,024 bytes is too small")]:
        r = run(*args)
        assert r.returncode == 1 and r.stdout == "", r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("nsconv: error:") and needle in lines[0]
    assert run("--rounding", "nearest").returncode == 2
    assert not (tmp_path / "out").exists()


def test_sequential_gptq_quantizes_upstream_first(tiny_spec):
    """The first layer is plain GPTQ on the float inputs; a later layer's inputs are recorded
    with the earlier layer holding its int4 weights, so its rounding differs from its own."""
    from nsconv.quant import gptq
    from nsconv.quant.quantize import calibration_clips, calibration_features

    feats = [f[:80] for f in calibration_features(calibration_clips()[:1], tiny_spec.frontend)]
    float_inputs = gptq.record_layer_inputs(tiny_spec, feats)
    seq = gptq.sequential_gptq(tiny_spec, ["fc3", "gru1"], feats, float_inputs)
    alone = {**gptq.gptq_layer(tiny_spec, "gru1", float_inputs["gru1"]),
             **gptq.gptq_layer(tiny_spec, "fc3", float_inputs["fc3"])}
    assert set(seq) == set(alone)
    for k in int4.GRU_MATRICES:
        np.testing.assert_array_equal(seq[f"gru1_{k}"].values, alone[f"gru1_{k}"].values)
    assert not np.array_equal(seq["fc3"].values, alone["fc3"].values)
    np.testing.assert_array_equal(seq["fc3"].bias, tiny_spec.layers["fc3"].bias)
    q = gptq.with_int4(tiny_spec, "gru1", seq)
    np.testing.assert_array_equal(q.layers["gru1"].r[16:32], seq["gru1_hr"].dequantized())
    np.testing.assert_array_equal(q.layers["gru1"].wb, tiny_spec.layers["gru1"].wb)
