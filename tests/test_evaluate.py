# SPDX-License-Identifier: Apache-2.0
"""`evaluate`: metrics, pairs, JSON and figures; and what the committed Dynamic nsNet2 must show
on the held-out real pairs (tests/data), with the float and the int8 TFLM engines."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import DATA, PAIRS
from nsconv.audio.wav import read_wav
from nsconv.errors import NsconvError
from nsconv.eval import evaluate as ev

METRIC_KEYS = ("pesq_wb", "stoi", "si_sdr", "dnsmos_ovrl")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The committed model, float and TFLM engines, all held-out pairs (DNSMOS tested apart)."""
    figs = tmp_path_factory.mktemp("figures")
    r = ev.evaluate("dynamic-nsnet2", DATA, engines=("float", "tflm"), figures=figs, dnsmos=False,
                    progress=False, log=lambda *_: None)
    path = figs / "report.json"
    ev.write_json(r, path)
    return r, json.loads(path.read_text())


@pytest.fixture(scope="module")
def baseline_final_pesq(baseline_float_enhanced):
    scores = [ev.pesq_wb(read_wav(DATA / f"{p}_clean.wav"), baseline_float_enhanced[p])
              for p in PAIRS]
    return float(np.mean(scores))


# ------------------------------------------------------------------------------ metrics


def test_metrics_on_identical_and_degraded_signals():
    clean = read_wav(DATA / "p232_043_clean.wav")
    noisy = read_wav(DATA / "p232_043_noisy.wav")
    assert ev.pesq_wb(clean, clean) > 4.5
    assert ev.stoi(clean, clean) > 0.99
    assert ev.si_sdr(clean, clean) > 60
    assert ev.si_sdr(clean, 0.5 * clean) > 60  # scale invariant
    assert ev.pesq_wb(clean, noisy) < 2.5
    assert ev.stoi(clean, noisy) < ev.stoi(clean, clean)
    noise = noisy - clean
    expected = 10 * np.log10(np.sum(clean**2) / np.sum(noise**2))
    assert abs(ev.si_sdr(clean, noisy) - expected) < 1.0
    assert np.isnan(ev.pesq_wb(clean[:200], clean[:200]))  # too short: no score, no crash


def test_dnsmos_scores_clean_above_noisy():
    scorer = ev.Dnsmos()
    clean = scorer(read_wav(DATA / "p232_043_clean.wav"))
    noisy = scorer(read_wav(DATA / "p232_043_noisy.wav"))
    for d in (clean, noisy):
        assert set(d) == {"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"}
        assert all(1.0 <= v <= 5.0 for v in d.values())
    assert clean["dnsmos_bak"] > noisy["dnsmos_bak"]
    assert clean["dnsmos_ovrl"] > noisy["dnsmos_ovrl"]


def test_pairs_are_found_by_name(tmp_path):
    for name in ("a_clean.wav", "a_noisy.wav", "b_clean.wav", "b_noisy_0dB.wav",
                 "b_noisy_5dB.wav", "c_clean.wav"):
        shutil.copy(DATA / "p232_043_clean.wav", tmp_path / name)
    pairs = ev.find_pairs(tmp_path)
    assert [p.name for p in pairs] == ["a", "b_0dB", "b_5dB"]
    assert {p.name for p in ev.find_pairs(DATA)} == set(PAIRS)
    with pytest.raises(NsconvError, match="not an audio folder"):
        ev.find_pairs(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NsconvError, match="pairs"):
        ev.find_pairs(tmp_path / "empty")


def test_bad_engine_is_refused():
    with pytest.raises(NsconvError, match="engine"):
        ev.evaluate("dynamic-nsnet2", DATA, engines=("gpu",), progress=False)


# ------------------------------------------------------------------------------ report


def test_report_json(report):
    r, j = report
    assert j["engines"] == ["float", "tflm"]
    assert sorted(j["pairs"]) == sorted(PAIRS)
    for k in METRIC_KEYS:
        assert k in j["noisy"]
    assert j["noisy"]["dnsmos_ovrl"] is None  # DNSMOS off in this run: null, not NaN
    names = [e["name"] for e in j["exits"]]
    assert names == ["gru1", "gru2", "fc2", "final"]
    for e in j["exits"]:
        for k in ("name", "pesq_wb", "stoi", "si_sdr", "dnsmos_ovrl", "macs_per_second",
                  "params"):
            assert k in e
        assert set(e["per_pair"]) == set(PAIRS)
    assert [e["macs_per_second"] for e in j["exits"]] == \
        [108_880_000, 204_880_000, 232_100_000, 268_100_000]
    assert [e["name"] for e in j["by_engine"]["tflm"]] == names


def test_figures_are_written(report):
    r, _ = report
    names = sorted(p.rsplit("/", 1)[-1] for p in r["figures"])
    assert names == ["boxplots.png", "masks_0072.png", "quality_vs_mmacs.png"]
    for p in r["figures"]:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------ must show


def test_quality_rises_monotonically_from_first_to_final_exit(report):
    r, _ = report
    pesq = [e["pesq_wb"] for e in r["by_engine"]["float"]]
    print("float PESQ-wb per exit:", [round(p, 3) for p in pesq])
    assert all(b > a for a, b in zip(pesq, pesq[1:], strict=False)), pesq


def test_every_exit_improves_over_the_noisy_input(report):
    r, _ = report
    noisy = r["noisy"]["pesq_wb"]
    for eng, rows in r["by_engine"].items():
        for e in rows:
            assert e["pesq_wb"] > noisy, (eng, e["name"], e["pesq_wb"], noisy)


def test_int8_tflm_within_0_05_pesq_of_float_on_every_exit(report):
    r, _ = report
    fl = {e["name"]: e["pesq_wb"] for e in r["by_engine"]["float"]}
    for e in r["by_engine"]["tflm"]:
        assert abs(e["pesq_wb"] - fl[e["name"]]) <= 0.05, (e["name"], e["pesq_wb"],
                                                           fl[e["name"]])


def test_final_exit_within_0_05_pesq_of_the_pretrained_baseline(report, baseline_final_pesq):
    r, _ = report
    final = r["by_engine"]["float"][-1]["pesq_wb"]
    assert abs(final - baseline_final_pesq) <= 0.05, (final, baseline_final_pesq)


def test_c_engine_scores_equal_tflm(tmp_path):
    """The generated C, built for the host, gives the TFLM engine's scores (bit-exact masks)."""
    if shutil.which("gcc") is None:
        pytest.skip("no host C compiler")
    for kind in ("clean", "noisy"):
        shutil.copy(DATA / f"p232_043_{kind}.wav", tmp_path / f"p232_043_{kind}.wav")
    r = ev.evaluate("dynamic-nsnet2", audio=tmp_path, engines=("tflm", "c"), dnsmos=False,
                    progress=False, log=lambda *_: None)
    for t, c in zip(r["by_engine"]["tflm"], r["by_engine"]["c"], strict=True):
        assert t["name"] == c["name"]
        for k in ("pesq_wb", "stoi", "si_sdr"):  # DNSMOS is off: NaN on both sides
            assert c["per_pair"]["p232_043"][k] == t["per_pair"]["p232_043"][k], (c["name"], k)
