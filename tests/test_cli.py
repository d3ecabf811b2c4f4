# SPDX-License-Identifier: Apache-2.0
"""The CLI: bad input gets one line naming the file and the problem, and exit status 1."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import DATA


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "nsconv.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


def _one_line_error(r, *needles):
    assert r.returncode == 1, r.stderr  # bad input (2 is usage, 3 a verification mismatch)
    assert r.stdout == ""
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.startswith("nsconv: error:")]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])


@pytest.fixture(scope="module")
def bad_wavs(tmp_path_factory):
    d = tmp_path_factory.mktemp("wav")
    x = np.random.default_rng(0).normal(0, 0.1, 16000)
    sf.write(d / "8k.wav", x[:8000], 8000)
    sf.write(d / "stereo.wav", np.stack([x, x], 1), 16000)
    sf.write(d / "short.wav", x[:100], 16000)
    (d / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (d / "model.onnx").write_bytes(b"not an onnx model at all")
    (d / "model.xyz").write_bytes(b"?")
    return d


@pytest.mark.parametrize("name,needle", [
    ("8k.wav", "8000 Hz"), ("stereo.wav", "mono"), ("short.wav", "shorter than one"),
    ("corrupt.wav", "not a readable wav"), ("missing.wav", "no such audio file")])
def test_enhance_bad_audio(bad_wavs, baseline_out, name, needle, tmp_path):
    r = run("enhance", baseline_out, bad_wavs / name, tmp_path / "o.wav")
    _one_line_error(r, bad_wavs / name, needle)
    assert not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize("name,needle", [("model.onnx", "not a valid ONNX model"),
                                         ("model.xyz", "unsupported model format"),
                                         ("nope.onnx", "no such model file")])
def test_convert_bad_model(bad_wavs, name, needle, tmp_path):
    r = run("convert", bad_wavs / name, "-o", tmp_path / "out")
    _one_line_error(r, bad_wavs / name, needle)
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".nsconv-tmp-*"))


def test_enhance_unknown_exit(baseline_out, tmp_path):
    r = run("enhance", baseline_out, DATA / "0072_noisy.wav", tmp_path / "o.wav", "--exit", "gru9")
    _one_line_error(r, "gru9")


def test_enhance_writes_wav(baseline_out, tmp_path):
    r = run("enhance", baseline_out, DATA / "p232_043_noisy.wav", tmp_path / "o.wav",
            "--engine", "float")
    assert r.returncode == 0, r.stderr
    y, sr = sf.read(tmp_path / "o.wav")
    x, _ = sf.read(DATA / "p232_043_noisy.wav")
    assert sr == 16000 and len(y) == len(x)
    assert 0 < np.std(y) < np.std(x)  # noise removed, something left


def test_enhance_corrupt_converted_model(baseline_out, tmp_path):
    """A converted OUT whose TFLite file is cut short: one line naming that file."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(baseline_out, out, ignore=shutil.ignore_patterns("c", "firmware"))
    tfl = out / "tflite" / "final.tflite"
    tfl.write_bytes(tfl.read_bytes()[:5000])
    r = run("enhance", out, DATA / "0072_noisy.wav", tmp_path / "o.wav")
    _one_line_error(r, tfl, "TFLM cannot load")
    assert not (tmp_path / "o.wav").exists()
