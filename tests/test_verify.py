# SPDX-License-Identifier: Apache-2.0
"""`nsconv verify`: generated C vs TFLM on real audio, MAC counts, mismatch localization."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from nsconv.check.verify import verify, verify_code
from nsconv.compiler.codegen import generate
from nsconv.errors import NsconvError
from nsconv.quant.quantize import calibration_clips


def _check_report(rep, n_exits: int) -> dict:
    d = json.loads(rep.dumps())
    for key in ("bit_exact", "exits", "arena_bytes", "state_bytes", "scratch_bytes",
                "weight_bytes", "macs_agree", "first_mismatch"):
        assert key in d, key
    assert len(d["exits"]) == n_exits
    for e in d["exits"]:
        for key in ("name", "frames", "mismatches", "macs_per_frame", "macs_counted",
                    "weight_bytes", "weight_bytes_own", "weight_bytes_shared"):
            assert key in e, key
        assert e["macs_counted"] == e["macs_per_frame"] == e["manifest_macs"]
    assert "bit-exact" in rep.table()
    exits = d["exits"]
    # the exits' constants, counted in the merged graph, are those of their separate models
    assert sum(e["weight_bytes"] for e in exits) == d["weight_bytes_separate"]
    # every shared constant is on the backbone, which the last exit reads whole: the emitted
    # constants are each exit's own plus the last exit's shared ones, each once
    own = sum(e["weight_bytes_own"] for e in exits)
    assert d["weight_bytes"] == own + exits[-1]["weight_bytes_shared"]
    assert all(e["weight_bytes_shared"] <= exits[-1]["weight_bytes_shared"] for e in exits)
    return d


def test_verify_tiny_fixed_and_random(tiny_out):
    clips = calibration_clips()[1:3]  # not the calibration clip of the tiny model
    rep = verify(tiny_out, frames=250, audio=clips, schedule="fixed", sanitize=True)
    d = _check_report(rep, 4)
    assert rep.ok and d["bit_exact"] and d["macs_agree"] and d["first_mismatch"] is None
    assert [e["frames"] for e in d["exits"]] == [250] * 4
    assert all(e["mismatches"] == 0 for e in d["exits"])
    assert d["audio"] == [clips[0].name]  # 250 frames fit in the first clip
    assert d["state_bytes"] == 32 and 0 < d["arena_bytes"] < 1000
    assert d["ops_merged"] == 43 and d["ops_separate"] == 127
    assert d["c_matches_export"] is None

    rep = verify(tiny_out, frames=None, audio=clips, schedule="random", sanitize=True, seed=3)
    d = _check_report(rep, 4)
    assert rep.bit_exact and rep.macs_agree
    assert sum(e["frames"] for e in d["exits"]) == d["frames"] > 700  # both clips, all frames
    assert min(e["frames"] for e in d["exits"]) > 100
    assert len(d["audio"]) == 2


def test_verify_names_the_first_differing_op(tiny_out, tmp_path):
    """A wrong output zero point in gru2's hz FC: named, with the exit model's op index."""
    c_dir = tmp_path / "c"
    gen = generate(tiny_out, c_dir)
    src = (c_dir / "nsn_model.c").read_text()
    pattern = (r"(static const nsn_fc_params nsn_gru2_hz_params = \{\n    \.input_offset = -?\d+,"
               r"\n    \.output_offset = )(-?\d+)")
    bad = re.sub(pattern, lambda m: m.group(1) + str(int(m.group(2)) + 1), src)
    assert bad != src
    (c_dir / "nsn_model.c").write_text(bad)
    rep = verify_code(tiny_out, gen, c_dir, frames=60, audio=calibration_clips()[1:2],
                      schedule="fixed")
    assert not rep.bit_exact and not rep.ok
    assert rep.exits[0].mismatches == 0  # exit gru1 never runs gru2
    assert all(e.mismatches > 0 for e in rep.exits[1:])
    m = rep.first_mismatch
    assert m is not None and m.exit == "gru2" and m.kind == "intermediate"
    assert m.op_type == "FULLY_CONNECTED" and "gru2_hz" in m.tensor
    # in the gru2 stream (frames 60..119); at its first frame the wrong offset may not yet
    # reach the mask or the states, which are what every frame is checked on
    assert rep.frames <= m.frame < rep.frames + 5
    assert m.c_value == m.tflm_value + 1
    assert "gru2.tflite op" in m.describe() and "gru2_hz" in rep.table()


def test_verify_checks_the_exported_code(tiny_out, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(tiny_out, out)
    generate(out, out / "c", command_line="nsconv export out")
    rep = verify(out, frames=20, audio=calibration_clips()[1:2])
    assert rep.c_matches_export is True and rep.ok
    model_c = out / "c" / "nsn_model.c"
    model_c.write_text(model_c.read_text().replace("return NSN_ARG_ERROR; /* not reached",
                                                   "return NSN_OK; /* not reached"))
    rep = verify(out, frames=20, audio=calibration_clips()[1:2])
    assert rep.c_matches_export is False and rep.bit_exact and not rep.ok


def test_verify_arguments(tiny_out):
    with pytest.raises(NsconvError, match="schedule"):
        verify(tiny_out, frames=10, schedule="sometimes")
    with pytest.raises(NsconvError, match="at least 1"):
        verify(tiny_out, frames=0)
    with pytest.raises(NsconvError, match="no such audio file"):
        verify(tiny_out, frames=10, audio=[Path("/nonexistent.wav")])
    with pytest.raises(NsconvError, match="manifest"):
        verify(Path("/nonexistent-dir"), frames=10)


@pytest.mark.slow
def test_verify_dynamic_nsnet2(dynamic_out):
    """The real 4-exit Dynamic nsNet2 (baseline backbone, random heads) under ASan/UBSan."""
    rep = verify(dynamic_out, frames=300, schedule="random", sanitize=True, seed=1)
    d = _check_report(rep, 4)
    assert rep.ok, rep.table()
    assert [e["macs_per_frame"] for e in d["exits"]][-1] == 2_681_000
    assert d["ops_merged"] == 43 and d["ops_separate"] == 127
    assert d["weight_bytes"] < 0.4 * d["weight_bytes_separate"]
    assert d["state_bytes"] == 800
    assert np.all([e["mismatches"] == 0 for e in d["exits"]])
