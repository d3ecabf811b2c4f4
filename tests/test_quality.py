# SPDX-License-Identifier: Apache-2.0
"""PESQ-wb on real noisy clips: the int8 TFLM engine helps on every clip, close to float."""

from __future__ import annotations

import pytest
from conftest import DATA, PAIRS
from nsconv.audio.wav import read_wav
from nsconv.check.engine import Enhancer
from nsconv.eval.demo import pesq_wb


@pytest.fixture(scope="module")
def scores(baseline_out, baseline_float_enhanced):
    tflm = Enhancer(baseline_out, "final", "tflm")
    rows = {}
    for pair in PAIRS:
        clean = read_wav(DATA / f"{pair}_clean.wav")
        noisy = read_wav(DATA / f"{pair}_noisy.wav")
        rows[pair] = {"noisy": pesq_wb(clean, noisy),
                      "float": pesq_wb(clean, baseline_float_enhanced[pair]),
                      "tflm": pesq_wb(clean, tflm.enhance(noisy))}
    return rows


def test_int8_improves_every_clip(scores):
    for pair, s in scores.items():
        assert s["tflm"] > s["noisy"], (pair, s)


def test_int8_within_0_1_of_float_on_average(scores):
    diff = sum(s["float"] - s["tflm"] for s in scores.values()) / len(scores)
    print({p: {k: round(v, 3) for k, v in s.items()} for p, s in scores.items()})
    assert abs(diff) <= 0.1, diff
