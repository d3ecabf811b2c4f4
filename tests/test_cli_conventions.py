# SPDX-License-Identifier: Apache-2.0
"""The command-line conventions on the real baseline: results on stdout (--json: one JSON
object, nothing else), only nsconv's own `nsconv: ` lines on stderr (no TensorFlow chatter),
exit statuses 0 / 1 / 2 / 3, reproducible exports, and `bench` / `run` that leave OUT's
firmware as the user exported it.

The slow commands run as concurrent subprocesses (convert with export; verify, enhance and
bench together) to keep the added wall time low."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import DATA

HAVE_TOOLS = all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm", "make"))
CORE = "cortex-m4"
CLIP = DATA / "0072_noisy.wav"


def _start(*args, cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user has it
    return subprocess.Popen([sys.executable, "-m", "nsconv.cli", *map(str, args)], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(p: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = p.communicate(timeout=900)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def _only_nsconv_lines(r: subprocess.CompletedProcess) -> None:
    other = [ln for ln in r.stderr.splitlines() if not ln.startswith("nsconv: ")]
    assert not other, "\n".join(other)
    assert "Traceback" not in r.stderr


def _json_only(r: subprocess.CompletedProcess) -> dict:
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)  # the whole of stdout is one JSON object
    assert isinstance(d, dict)
    return d


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("conventions")
    x, _ = sf.read(CLIP, dtype="float32")
    sf.write(d / "short.wav", x[:16000], 16000, subtype="PCM_16")  # 1 s: quick calibration
    (d / "cwd").mkdir()
    return d


@pytest.fixture(scope="module")
def exported(work):
    """`export --target cortex-m4 --json` and `convert --json`, run at the same time, both
    calibrated on the same 1 s clip (the calibration is not what is tested here; the default
    clips are conftest.baseline_out's and wheel-check's)."""
    exp = _start("export", "nsnet2-baseline", "-o", work / "a" / "out", "--target", CORE,
                 "--calib", "../short.wav", "--json", cwd=work / "cwd")
    conv = _start("convert", "nsnet2-baseline", "-o", work / "conv", "--calib", "../short.wav",
                  "--json", cwd=work / "cwd")
    return work / "a" / "out", _finish(exp), _finish(conv)


def test_export_and_convert_follow_the_conventions(exported, work):
    out, exp, conv = exported
    for r in (exp, conv):
        _only_nsconv_lines(r)
        assert "calibrating" in r.stderr  # the log is on stderr, not lost
    d = _json_only(exp)
    assert d["target"] == CORE and Path(d["firmware"]) == out / "firmware" / CORE
    assert d["exits"][0]["macs_per_frame"] == 2_681_000
    assert d["c_files"] == ["nsn_model.h", "nsn_model.c", "nsn_weights.h", "nsn_weights.c",
                            "nsn_provenance.h"]
    c = _json_only(conv)
    assert c["calibration"]["clips"] == ["short.wav"] and c["calibration"]["frames"] > 0


def test_two_exports_in_different_folders_are_identical(exported, work, tmp_path):
    """OUT/c and OUT/firmware of the CLI's export equal those of the same export written
    elsewhere (from `convert`'s conversion of the same model and clip, deeper in another
    folder)."""
    from nsconv.cli.base import provenance_command
    from nsconv.compiler.codegen import generate
    from nsconv.target.firmware import export_firmware

    out = exported[0]
    other = tmp_path / "somewhere" / "else" / "entirely"
    shutil.copytree(work / "conv", other, ignore=shutil.ignore_patterns("c", "firmware"))
    command = provenance_command("export", "nsnet2-baseline", "--target", CORE,
                                 calib=(work / "short.wav",))
    generate(other, command_line=command)
    export_firmware(other, CORE, command_line=command)
    for sub in ("c", f"firmware/{CORE}"):
        names = _files(out / sub)
        assert names == _files(other / sub), sub
        match, mismatch, errors = filecmp.cmpfiles(out / sub, other / sub, names, shallow=False)
        assert not mismatch and not errors, (sub, mismatch, errors)
        assert len(match) == len(names)
    prov = (out / "c" / "nsn_provenance.h").read_text()
    assert str(out) not in prov and str(out.parent) not in prov
    assert f"nsconv export nsnet2-baseline --target {CORE} --calib short.wav@sha256:" in prov


@pytest.fixture(scope="module")
def after(exported, work):
    """verify (plain and on tampered C), enhance and bench on the export, at the same time."""
    out = exported[0]
    bad = work / "tampered"
    shutil.copytree(out, bad, ignore=shutil.ignore_patterns("firmware"))
    model_c = bad / "c" / "nsn_model.c"
    model_c.write_text(model_c.read_text().replace("return NSN_ARG_ERROR; /* not reached",
                                                   "return NSN_OK; /* not reached"))
    procs = {
        "verify": _start("verify", out, "--frames", 20, "--audio", CLIP, "--json", cwd=work),
        "tampered": _start("verify", bad, "--frames", 5, "--audio", CLIP, cwd=work),
        "enhance": _start("enhance", out, "short.wav", "e.wav", "--json", cwd=work),
    }
    if HAVE_TOOLS:
        procs["bench"] = _start("bench", out, "--frames", 1, "--json", cwd=work)
    return {k: _finish(p) for k, p in procs.items()}


def test_verify_and_enhance_follow_the_conventions(after, work):
    for name in ("verify", "enhance", "tampered"):
        _only_nsconv_lines(after[name])
    v = _json_only(after["verify"])
    assert v["ok"] and v["bit_exact"] and v["exits"][0]["frames"] == 20
    e = _json_only(after["enhance"])
    assert e["exit"] == "final" and e["samples"] == 16000 and (work / "e.wav").is_file()
    t = after["tampered"]
    assert t.returncode == 3, t.stderr  # a verification mismatch, not bad input
    assert "nsconv: error" not in t.stderr and "FAILED" in t.stderr


@pytest.mark.skipif(not HAVE_TOOLS, reason="arm-none-eabi-gcc, qemu-system-arm, make required")
def test_bench_then_run_without_a_target(exported, after, work):
    """export --target cortex-m4 -> bench -> run OUT in.wav out.wav: bench measured the
    exported core only and added no firmware; run finds that core by itself."""
    out = exported[0]
    b = after["bench"]
    _only_nsconv_lines(b)
    report = _json_only(b)
    assert [r["core"] for r in report["results"]] == [CORE]
    assert sorted(p.name for p in (out / "firmware").iterdir()) == [CORE]
    r = subprocess.run([sys.executable, "-m", "nsconv.cli", "run", out, "short.wav", "r.wav",
                        "--json"], cwd=work, capture_output=True, text=True, timeout=600)
    d = _json_only(r)
    assert d["target"] == CORE and d["frames"] == 100
    y, sr = sf.read(work / "r.wav")
    assert sr == 16000 and len(y) == 16000 and np.std(y) > 0
    assert sorted(p.name for p in (out / "firmware").iterdir()) == [CORE]


def test_default_core_of_a_host_export(baseline_out, tmp_path):
    """No firmware in OUT: run uses the documented default core (built in a temporary
    directory, see test_bench), and OUT gets no firmware folder from asking."""
    from nsconv.target.qemu import default_target

    out = tmp_path / "out"
    shutil.copytree(baseline_out, out, ignore=shutil.ignore_patterns("c", "firmware"))
    assert default_target(out) == "cortex-m55"
    assert not (out / "firmware").exists()


def test_usage_error_is_status_2_and_bad_input_status_1(tmp_path):
    r = subprocess.run([sys.executable, "-m", "nsconv.cli", "export", "nsnet2-baseline"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Missing option" in r.stderr and r.stdout == ""
    r = subprocess.run([sys.executable, "-m", "nsconv.cli", "bench", tmp_path, "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("nsconv: error: ") and len(r.stderr.splitlines()) == 1


def test_every_command_has_json():
    from nsconv.cli import main

    for name, cmd in main.commands.items():
        assert "--json" in [o for p in cmd.params for o in getattr(p, "opts", [])], name


def test_native_output_is_filtered_not_lost():
    """What C++ code writes to descriptors 1 and 2 ends on stderr, minus TensorFlow's chatter;
    Python's stdout stays the result's alone."""
    code = ("import os\nfrom nsconv import log\nlog.quiet_native_output()\n"
            "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are "
            "written to STDERR\\n')\n"
            "os.write(2, b'I0000 00:00:1796012251.747375   29000 port.cc:153] oneDNN\\n')\n"
            "os.write(2, b'fully_quantize: 0, inference_type: 6, input_inference_type: INT8\\n')\n"
            "os.write(1, b'a native line\\n')\n"
            "print('the result')\nlog.info('a log line')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "the result\n"
    assert r.stderr == "nsconv: a log line\na native line\n"
