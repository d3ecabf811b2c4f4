# SPDX-License-Identifier: Apache-2.0
"""`nsconv verify OUT --target CORE` of a GTCRN export, the long form (`make gtcrn-target`,
NSCONV_GTCRN_ALL_CORES=1): the firmware's network on Cortex-M4, M7 and M55 in QEMU against
TFLM over >= 2,000 frames of real speech (the bundled clips and the DNS3 noisy clips of
tests/data, the states reset at each recording), every frame's mask and all 16 states; and one
weight corrupted in the ARM project only: verify --target exits 3, says the firmware's model/
is not OUT/c and names the CONV_2D that reads the weight as the first op that differs.
`make test` runs the short form (tests/test_gtcrn_target.py: Cortex-M4, 300 frames).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from gtcrn_paths import DNS3
from test_gtcrn_target import ALL_CORES, HAVE_ARM, two_recordings
from test_gtcrn_target import gtcrn_out as gtcrn_out  # the module's export fixture

pytestmark = pytest.mark.skipif(not (HAVE_ARM and ALL_CORES),
                                reason="NSCONV_GTCRN_ALL_CORES=1 (make gtcrn-target)")

MIN_FRAMES = 2000
EXPECTED_PATH = {"cortex-m4": "dsp", "cortex-m7": "dsp", "cortex-m55": "mve"}


def test_every_core_bit_exact_over_2000_frames(gtcrn_out):
    from nsconv.check.target_verify import verify_gtcrn_targets
    from nsconv.quant.quantize import calibration_clips

    audio = calibration_clips() + sorted(DNS3.glob("*_noisy.wav"))
    results = verify_gtcrn_targets(gtcrn_out, list(EXPECTED_PATH), audio=audio)
    assert [info["target"] for _, info in results] == list(EXPECTED_PATH)
    for rep, info in results:
        assert rep.frames >= MIN_FRAMES and len(info["audio"]) == len(audio)
        assert rep.bit_exact and rep.mismatched_frames == 0, (info["target"], rep.first_mismatch)
        assert len(rep.state_mismatched_frames) == 16
        assert rep.kernels_path == EXPECTED_PATH[info["target"]]
        print(f"{info['target']}: {rep.frames} frames bit-exact, kernel path {rep.kernels_path}, "
              f"{1000 * info['seconds_per_frame']:.1f} ms per frame in QEMU, "
              f"{info['qemu_seconds']} s in {info['qemu_processes']} QEMU")


def _corrupt_first_conv_weight(project: Path) -> int:
    """Flips bit 7 of the first weight of the first CONV_2D in the project's model/ (the ARM
    build only: OUT/c keeps the right one); returns that op's TFLite index."""
    import re

    model = (project / "model" / "nsn_model.c").read_text()
    head = re.search(r"/\* \d+: op (\d+): CONV_2D ", model)
    assert head is not None
    call = model[head.end():model.index(";", model.index("nsn_conv_s", head.end()))]
    name = re.findall(r"\b(nsn_\w+)\b", call.split("(", 1)[1])[-2]  # (..., weights, bias, out)
    weights = project / "model" / "nsn_weights.c"
    text = weights.read_text()
    w = re.search(rf"const int8_t {name}\[\d+\] NSN_WEIGHTS_ALIGN = \{{\s*(-?\d+),", text)
    assert w is not None
    value = int(w[1])
    weights.write_text(text[: w.start(1)] + str(value - 128 if value >= 0 else value + 128)
                       + text[w.end(1):])
    return int(head[1])


def test_m4_verify_target_finds_a_corrupted_weight(gtcrn_out, tmp_path):
    import json

    from click.testing import CliRunner
    from nsconv.cli import main
    from nsconv.target import gtcrn_target as gt

    gt.ensure_exported(gtcrn_out, "cortex-m4")  # into OUT/firmware/cortex-m4, as a user has it
    out = tmp_path / "out"
    shutil.copytree(gtcrn_out, out, symlinks=True)
    op = _corrupt_first_conv_weight(out / "firmware" / "cortex-m4")
    args = ["verify", str(out), "--target", "cortex-m4", "--frames", "20", "--json"]
    for clip in two_recordings()[:1]:
        args += ["--audio", str(clip)]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 3, r.output
    d = json.loads(r.stdout)
    (rep,) = d["reports"]
    assert d["ok"] is False and rep["bit_exact"] is False and rep["mismatched_frames"] == 20
    assert rep["c_matches_export"] is False and rep["kernels_path"] == "dsp"
    assert rep["first_mismatch"].startswith("frame 0: mask"), rep["first_mismatch"]
    assert f"first difference at op {op} (CONV_2D)" in rep["first_mismatch"], rep["first_mismatch"]
