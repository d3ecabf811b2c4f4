# SPDX-License-Identifier: Apache-2.0
"""GTCRN on the cores (target/gtcrn_target.py): `export --target` writes a firmware project
(the generated network, the kernels, GTCRN's C front end, the wav-streaming app); `run` on a
core in QEMU gives the host build's wav byte for byte, and the counts the bench reads.

Cortex-M4 always (a short clip); M7 and M55 with NSCONV_GTCRN_ALL_CORES=1 (`make gtcrn-target`).
`nsconv verify OUT --target cortex-m4` (check/target_verify.py): the firmware's network in
QEMU against TFLM on two short recordings (the long form, every core over >= 2,000 frames, and
the corrupted-weight check are tests/test_gtcrn_verify_target.py).
The export is calibrated on 48 frames only: enough for bits, not for quality (`make
gtcrn-bench` / `nsconv evaluate` use the full export).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import conftest
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

GTCRN_ONNX = conftest.GTCRN_ONNX
HAVE_ARM = shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")
ALL_CORES = os.environ.get("NSCONV_GTCRN_ALL_CORES") == "1"
HOPS = 40
VERIFY_FRAMES = 300  # p232_010 (174 frames) then p232_032: a reset, two QEMU processes


@pytest.fixture(scope="module")
def gtcrn_out(tmp_path_factory, gtcrn_converted) -> Path:
    """A GTCRN export of the session's core (conftest.gtcrn_converted) and a short clip."""
    from nsconv.audio.wav import read_wav, write_wav
    from nsconv.compiler.gtcrn_export import export_gtcrn
    from nsconv.quant.quantize import calibration_clips

    d = tmp_path_factory.mktemp("gtcrn-target")
    (d / "out").mkdir()
    export_gtcrn(GTCRN_ONNX, d / "out", None, log=lambda m: None, converted=gtcrn_converted)
    write_wav(d / "clip.wav", read_wav(calibration_clips()[0])[: HOPS * 256 - 100], 16000)
    return d / "out"


def _core_equals_host(out: Path, core: str, tmp: Path):
    from nsconv.audio.wav import read_wav
    from nsconv.target import gtcrn_target as gt

    project = gt.export_gtcrn_firmware(out, core)
    assert project.root == out / "firmware" / core and gt.is_gtcrn_project(project.root)
    for rel in ("Makefile", "app/nsn_gtcrn_app.c", "app/nsn_gtcrn_io.h", "model/nsn_model.c",
                "frontend/nsn_gtcrn_frontend.c", "frontend/nsn_gtcrn_tables.c",
                "audio/input.wav"):
        assert (project.root / rel).is_file(), rel
    clip = out.parent / "clip.wav"
    gt.build(project)
    gt.build(project, host=True)
    arm = gt.run(project, clip, tmp / f"{core}.wav", quiet=False)
    host = gt.run(project, clip, tmp / "host.wav", host=True)
    a, h = (tmp / f"{core}.wav").read_bytes(), (tmp / "host.wav").read_bytes()
    assert a == h, f"{core} wav differs from the host build's"
    y, x = read_wav(tmp / "host.wav"), read_wav(clip)
    assert len(y) == len(x) and np.abs(y).max() > 1e-3  # aligned, not silence
    assert arm.unit == "instructions" and arm.hops == host.hops == HOPS + 1
    assert len([ln for ln in arm.stdout.splitlines() if ln.startswith("hop ")]) == HOPS + 1
    assert 0 < arm.network[1] <= arm.network[0] <= arm.network[2]
    assert all(v > 0 for v in arm.frontend.values())
    return arm


@pytest.mark.skipif(not HAVE_ARM, reason="arm-none-eabi-gcc and qemu-system-arm required")
def test_m4_wav_equals_host(gtcrn_out, tmp_path):
    arm = _core_equals_host(gtcrn_out, "cortex-m4", tmp_path)
    print(f"cortex-m4: network {arm.network[0]:,} front end {sum(arm.frontend.values()):,} "
          "instructions per hop")


@pytest.mark.skipif(not (HAVE_ARM and ALL_CORES), reason="NSCONV_GTCRN_ALL_CORES=1")
@pytest.mark.parametrize("core", ["cortex-m7", "cortex-m55"])
def test_other_cores_wav_equals_host(gtcrn_out, core, tmp_path):
    arm = _core_equals_host(gtcrn_out, core, tmp_path)
    print(f"{core}: network {arm.network[0]:,} front end {sum(arm.frontend.values()):,} "
          f"instructions per hop, kernels {arm.kernels_path}")


def test_cli_refusals(gtcrn_out, tmp_path):
    from click.testing import CliRunner
    from nsconv.cli import main

    clip = gtcrn_out.parent / "clip.wav"
    r = CliRunner().invoke(main, ["run", str(gtcrn_out), str(clip), str(tmp_path / "o.wav"),
                                  "--exit", "final"])
    assert r.exit_code == 1 and "GTCRN has no exits" in r.output
    r = CliRunner().invoke(main, ["evaluate", str(gtcrn_out), "--audio", str(tmp_path)])
    assert r.exit_code == 2 and "--onnx" in r.output


def two_recordings() -> list[Path]:
    from nsconv.quant.quantize import calibration_clips

    return [c for c in calibration_clips() if c.name.startswith("p232_")][:2]


@pytest.mark.skipif(not HAVE_ARM, reason="arm-none-eabi-gcc and qemu-system-arm required")
def test_m4_verify_target_bit_exact(gtcrn_out):
    from nsconv.check.target_verify import verify_gtcrn_targets

    clips = two_recordings()
    ((rep, info),) = verify_gtcrn_targets(gtcrn_out, ["cortex-m4"], frames=VERIFY_FRAMES,
                                          audio=clips, jobs=2)
    assert rep.bit_exact, rep.first_mismatch
    assert rep.frames == VERIFY_FRAMES and rep.mismatched_frames == 0
    assert rep.mask_mismatched_frames == 0 and len(rep.state_mismatched_frames) == 16
    assert not any(rep.state_mismatched_frames.values())
    assert rep.kernels_path == "dsp"  # as the running binary reports it
    assert info["target"] == "cortex-m4" and info["board"] == "mps2-an386"
    assert info["audio"] == [c.name for c in clips] and info["qemu_processes"] == 2
    assert info["seconds_per_frame"] > 0 and info["c_matches_export"] is True
    print(f"cortex-m4: {rep.frames} frames bit-exact, {1000 * info['seconds_per_frame']:.1f} "
          "ms per frame in QEMU")
