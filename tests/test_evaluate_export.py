# SPDX-License-Identifier: Apache-2.0
"""`nsconv evaluate OUT`: an export's exits (in the weight formats it holds) against the
all-int8 conversion of the same model, clip by clip, with the masks' RMS difference."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA
from nsconv.check.engine import Enhancer
from nsconv.cli import main
from nsconv.compiler.graph_merge import keep_exits
from nsconv.errors import NsconvError
from nsconv.eval import evaluate as ev
from nsconv.eval import formats

CLIP = "p232_043"  # 2 s: the shortest pair


@pytest.fixture(scope="module")
def audio(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("audio")
    for kind in ("clean", "noisy"):
        shutil.copy(DATA / f"{CLIP}_{kind}.wav", d / f"{CLIP}_{kind}.wav")
    return d


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("firmware", "c"))
    return dest


def test_an_int8_subset_equals_its_reference(dynamic_out, audio, tmp_path):
    """The gru1-only export holds the full conversion's gru1 model byte for byte: every delta
    and the mask difference are exactly zero, and the reported masks are the TFLM engine's."""
    sub = _copy(dynamic_out, tmp_path / "sub")
    keep_exits(sub, ["gru1"])
    r = ev.evaluate(sub, audio, engines=("tflm",), dnsmos=False, progress=False,
                    log=lambda *_: None, reference=dynamic_out)
    vs = r["vs_int8"]
    assert vs["reference"] == str(dynamic_out) and vs["engine"] == "tflm"
    (e,) = vs["exits"]
    assert e["name"] == "gru1" and e["int4_weights"] == []
    assert r["weight_formats"]["all_int8"]
    for k in ("delta_pesq_wb", "delta_si_sdr", "delta_stoi"):
        assert e[k] == 0.0 and e["per_pair"][CLIP][k] == 0.0
    assert e["mask_rms"] == e["mask_max_abs"] == 0.0
    assert e["pesq_wb"] == e["int8"]["pesq_wb"] > 1.0
    assert vs["checks"]["pesq_wb_within_tolerance_every_clip"]
    assert vs["checks"]["si_sdr_within_tolerance_every_clip"]
    text = formats.table(vs)
    assert "gru1: int4 layers none" in text and "PESQ-wb within 0.05" in text


def test_mask_difference_is_the_masks_rms(dynamic_out, audio):
    """mask_stats against masks computed here with the TFLM engine of two exits."""
    feats = ev._load_pairs(ev.find_pairs(audio), Enhancer(dynamic_out, "gru1").frontend)[0][4]
    a = Enhancer(dynamic_out, "gru1", "tflm").masks(feats)
    b = Enhancer(dynamic_out, "gru2", "tflm").masks(feats)
    s = formats.mask_stats([a], [b])
    d = a.astype(np.float64) - b
    assert s["mask_rms"] == pytest.approx(float(np.sqrt(np.mean(d**2))), rel=1e-12)
    assert s["mask_rms"] > 0.01 and s["mask_mean_diff"] == pytest.approx(float(d.mean()))
    assert s["mask_max_abs"] == float(np.abs(d).max())


def test_a_reference_of_another_model_is_refused(dynamic_out, tmp_path):
    other = _copy(dynamic_out, tmp_path / "other")
    m = json.loads((other / "manifest.json").read_text())
    m["source_model"]["sha256"] = "0" * 64
    (other / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(NsconvError, match="not a conversion of the same model"):
        formats.int8_reference(dynamic_out, other)


def test_other_calibration_needs_a_reference(dynamic_out, tmp_path):
    out = _copy(dynamic_out, tmp_path / "out")
    m = json.loads((out / "manifest.json").read_text())
    m["calibration"]["clips"] = ["mine.wav"]
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(NsconvError, match="give --reference DIR"):
        formats.int8_reference(out)


def test_evaluate_cli_options_need_a_directory(tmp_path):
    out = CliRunner().invoke(main, ["evaluate", "dynamic-nsnet2", "--audio", str(DATA),
                                    "--reference", str(tmp_path)])
    assert out.exit_code == 2 and "for an output directory MODEL" in out.output
