# SPDX-License-Identifier: Apache-2.0
"""Hostile audio and interrupted runs: handled or refused clearly, never half-written."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import fuzzing
import numpy as np
import pytest
import soundfile as sf
from conftest import DATA
from nsconv.audio.wav import read_wav, write_wav
from nsconv.errors import NsconvError
from nsconv.outdir import KILL_ENV
from nsconv.quant.manifest import Manifest


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_any_pcm_width_or_float_is_converted(tmp_path, subtype):
    x = read_wav(DATA / "p232_043_noisy.wav")
    sf.write(tmp_path / "a.wav", x, 16000, subtype=subtype)
    y = read_wav(tmp_path / "a.wav")
    tol = {"PCM_U8": 1 / 64, "PCM_16": 1e-4}.get(subtype, 1e-6)
    assert y.dtype == np.float64 and np.abs(y - x).max() < tol


def test_nan_samples_refused(tmp_path):
    x = np.zeros(1600, np.float32)
    x[100] = np.nan
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(NsconvError, match="NaN"):
        read_wav(tmp_path / "nan.wav")


@pytest.mark.parametrize("kind", ["silence", "clipping"])
def test_silence_and_clipping_are_enhanced(baseline_out, tmp_path, kind):
    from nsconv.check.engine import Enhancer

    rng = np.random.default_rng(0)
    x = np.zeros(16000) if kind == "silence" else np.clip(rng.normal(0, 2, 16000), -1, 1)
    y = Enhancer(baseline_out, "final", "tflm").enhance(x)
    assert len(y) == len(x) and np.all(np.isfinite(y))
    assert np.abs(y).max() <= (1e-9 if kind == "silence" else 2.0)


def _convert_cmd(model, out, calib):
    return [sys.executable, "-m", "nsconv.cli", "convert", str(model), "-o", str(out),
            "--calib", str(calib)]


def _complete(out) -> bool:
    m = Manifest.load(out)
    return all((out / e.tflite).stat().st_size == e.tflite_bytes for e in m.exits)


@pytest.fixture(scope="module")
def two_converts(tmp_path_factory):
    """Two `nsconv convert` runs of the tiny model at the same time, into o0 and o1 (one
    second of real speech as calibration: what is tested is the output directory)."""
    d = tmp_path_factory.mktemp("two_converts")
    model, calib = d / "tiny.npz", d / "calib.wav"
    model.write_bytes(fuzzing.tiny_netspec())
    write_wav(calib, read_wav(DATA / "p232_043_noisy.wav")[:16000], 16000)
    procs = [subprocess.Popen(_convert_cmd(model, d / f"o{i}", calib), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for i in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    return model, calib, d


def _killed_at(stage: str, model, out, calib) -> None:
    """Run convert with the test hook that makes it SIGKILL itself at `stage` (nsconv.outdir)."""
    env = {**os.environ, KILL_ENV: stage}
    p = subprocess.run(_convert_cmd(model, out, calib), env=env, capture_output=True)
    assert p.returncode == -signal.SIGKILL, (stage, p.returncode, p.stderr[-2000:])


def test_killed_convert_leaves_previous_or_nothing(two_converts, tmp_path):
    model, calib, d = two_converts
    out = tmp_path / "out"
    shutil.copytree(d / "o0", out)  # a complete output of the same command
    assert _complete(out)
    previous = (out / "manifest.json").read_text()

    _killed_at("written", model, out, calib)  # the new output complete, not yet in place
    assert _complete(out) and (out / "manifest.json").read_text() == previous
    assert list(tmp_path.glob(".nsconv-tmp-out-*"))  # the killed run's work was there

    _killed_at("swapped", model, out, calib)  # between the two renames: OUT moved aside
    assert not out.exists() and list(tmp_path.glob(".nsconv-old-out-*"))
    _killed_at("work", model, out, calib)  # the next run puts the previous OUT back first
    assert _complete(out) and (out / "manifest.json").read_text() == previous

    # a finished run after the kills gives a complete output and removes stale work dirs
    subprocess.run(_convert_cmd(model, out, calib), check=True, capture_output=True)
    assert _complete(out)
    assert not list(tmp_path.glob(".nsconv-*"))


def test_two_converts_in_parallel(two_converts):
    _, _, d = two_converts
    a, b = (Manifest.load(d / f"o{i}") for i in range(2))
    assert [(d / "o0" / e.tflite).read_bytes() for e in a.exits] == \
        [(d / "o1" / e.tflite).read_bytes() for e in b.exits]
    assert not list(d.glob(".nsconv-*"))
