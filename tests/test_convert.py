# SPDX-License-Identifier: Apache-2.0
"""Per-exit int8 TFLite of the real baseline and of a 4-exit model; the state policy."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from conftest import DATA
from nsconv.audio import frontend
from nsconv.audio.wav import read_wav
from nsconv.check.tflm_ref import TflmReference, requantize_state
from nsconv.errors import NsconvError
from nsconv.quant.manifest import Manifest, TensorRef


def _ops(path):
    from ai_edge_litert.interpreter import Interpreter

    return Counter(o["op_name"] for o in Interpreter(model_path=str(path))._get_ops_details())


def test_baseline_manifest_and_ops(baseline_out, baseline_onnx):
    d = json.loads((baseline_out / "manifest.json").read_text())
    assert [e["name"] for e in d["exits"]] == ["final"]
    e = d["exits"][0]
    assert e["macs_per_frame"] == 2_681_000
    assert (baseline_out / e["tflite"]).stat().st_size == e["tflite_bytes"] > 2_600_000
    assert d["source_model"]["sha256"] == \
        "88429b6253600be840ab816f46f466811d20078142fb12bff8cafe2b27bd4ca9"
    assert _ops(baseline_out / e["tflite"]) == Counter(
        {"FULLY_CONNECTED": 16, "ADD": 8, "LOGISTIC": 5, "MUL": 4, "TANH": 2, "SUB": 2})
    m = Manifest.load(baseline_out)
    assert [s.layer for s in m.exits[0].states] == ["gru1", "gru2"]


def test_dynamic_exits_share_quantization(dynamic_out):
    m = Manifest.load(dynamic_out)
    assert [e.name for e in m.exits] == ["gru1", "gru2", "fc2", "final"]
    assert [len(e.states) for e in m.exits] == [1, 2, 2, 2]
    assert len({(e.features.scale, e.features.zero_point) for e in m.exits}) == 1
    gru1 = {(e.states[0].input, e.states[0].output) for e in m.exits}
    assert len({(a.scale, a.zero_point, b.scale, b.zero_point) for a, b in gru1}) == 1
    macs = [e.macs_per_frame for e in m.exits]
    assert macs == sorted(macs) and macs[-1] == 2_681_000


def test_requantize_state_rule():
    """Equal quantization: a copy. Different: TFLM QUANTIZE arithmetic.

    For a scale ratio of exactly 1/2 TFLM's multiplier is 2^30 with shift 0, and gemmlowp's
    SaturatingRoundingDoublingHighMul rounds halves toward +inf (-0.5 -> 0, 0.5 -> 1).
    """
    q = np.arange(-128, 128, dtype=np.int8)
    a = TensorRef(0, 0, "a", 0.0078125, 0)
    assert np.array_equal(requantize_state(q, a, a), q)
    b = TensorRef(0, 0, "b", 0.015625, 3)  # twice the scale: x/2 rounded half away, + 3
    expect = np.clip(np.floor(q.astype(float) / 2 + 0.5) + 3, -128, 127)
    assert np.array_equal(requantize_state(q, a, b), expect.astype(np.int8))


def test_state_mismatch_between_exits_is_refused(dynamic_out):
    from nsconv.quant.convert import _check_shared_states
    from nsconv.quant.manifest import StateRef
    from nsconv.quant.quantize import QuantizedExit

    m = Manifest.load(dynamic_out)
    qs = [QuantizedExit(e.name, b"", e.features, e.mask, e.states) for e in m.exits]
    s = qs[1].states[0]
    bad = StateRef(s.layer, s.size, TensorRef(s.input.index, s.input.position, s.input.name,
                                               s.input.scale * 1.01, s.input.zero_point), s.output)
    qs[1] = QuantizedExit(qs[1].name, b"", qs[1].features, qs[1].mask, (bad,) + qs[1].states[1:])
    with pytest.raises(NsconvError, match="gru1"):
        _check_shared_states(qs, dynamic_out)


def test_int8_tracks_float_mask(baseline_out, baseline_spec):
    """The TFLM int8 step loop, states requantized, stays close to the float step model."""
    from nsconv.model.stepmodel import FloatStepper

    x = read_wav(DATA / "0523_noisy.wav")
    feats = frontend.features(frontend.stft(x))
    ref = FloatStepper(baseline_spec, baseline_spec.exits[0]).run(feats)
    tflm = TflmReference(baseline_out)
    e = tflm.manifest.exits[0]
    fq = frontend.quantize(feats, e.features.scale, e.features.zero_point)
    got = np.stack([frontend.dequantize(tflm.step(f, "final"), e.mask.scale, e.mask.zero_point)
                    for f in fq])
    err = got - ref
    snr = 10 * np.log10(np.sum(ref ** 2) / np.sum(err ** 2))
    assert snr > 15, snr
    assert np.abs(err).mean() < 0.05
