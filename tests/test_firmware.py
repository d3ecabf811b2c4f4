# SPDX-License-Identifier: Apache-2.0
"""The whole pipeline on emulated Cortex-M4, M7 and M55 (nsconv export / run / bench).

One QEMU run per core streams a real 5 s DNS3 recording (500 frames) through the exported
firmware of the 4-exit model (gru1, gru2, fc2, final) with the exit schedule
"gru1,gru2,fc2,final" cycled frame by frame: every exit gets 125 frames, and every frame
leaves some GRUs unrun, so the state rule for skipped GRUs is exercised on the core just as
`nsconv verify --schedule random` does on the host. Each recording starts from reset states,
as in the verifier. Per core:
  * the int8 features and masks of every frame, and the enhanced wav, are byte-identical to
    the host build of the same C (the exported project's `make host`);
  * every frame's mask equals the host emulator's (the generated C in nsconv.hostbuild's
    runner, fed the same features, exits and resets) and TFLM's (nsconv.tflm_ref);
  * the enhanced wav has an SNR of at least 40 dB against the numpy front end's resynthesis
    with the same int8 masks;
  * every network step has an instruction count, repeatable to a few instructions.
One run per core rather than one per exit keeps the QEMU time to seconds per core (MVE code
is the slowest to emulate: about 15 s for the Cortex-M55 run). `bench` measures the per-exit
cost again, on other audio, and must agree.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA
from nsconv.audio import frontend
from nsconv.audio.wav import read_wav
from nsconv.errors import NsconvError
from nsconv.quant.manifest import Manifest
from nsconv.target import bench, boards, firmware, hostbuild, qemu

CLIP = DATA / "0072_noisy.wav"  # DNS3 test clip, 5 s = 500 frames
CORES = list(firmware.TARGETS)
HAVE_TOOLS = all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm", "make", "gcc"))
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not HAVE_TOOLS, reason="arm-none-eabi-gcc, qemu-system-arm, "
                                 "make and gcc required")]


@pytest.fixture(scope="module")
def out_dir(dynamic_out, tmp_path_factory) -> Path:
    """A private copy of the converted 4-exit model (exports write into it)."""
    out = tmp_path_factory.mktemp("firmware") / "out"
    shutil.copytree(dynamic_out, out, ignore=shutil.ignore_patterns("firmware", "c"))
    return out


@pytest.fixture(scope="module")
def projects(out_dir) -> dict[str, firmware.FirmwareProject]:
    return {core: firmware.export_firmware(out_dir, core, command_line="pytest")
            for core in CORES}


@pytest.fixture(scope="module")
def schedule(projects) -> str:
    names = [e.name for e in projects[CORES[0]].exits]
    assert names == ["gru1", "gru2", "fc2", "final"]
    return ",".join(names)


@pytest.fixture(scope="module")
def host_run(projects, schedule, tmp_path_factory) -> qemu.FirmwareRun:
    """The exported firmware built for the host, on the same clip and schedule."""
    project = projects[CORES[0]]
    qemu.build(project, host=True)
    out = tmp_path_factory.mktemp("host_run") / "enhanced.wav"
    return qemu.run(project, CLIP, out, schedule=schedule, host=True)


@pytest.fixture(scope="module")
def reference(out_dir, projects, host_run, tmp_path_factory) -> dict[str, np.ndarray]:
    """Masks of the host emulator and of TFLM for the host run's features and exits."""
    from nsconv.check.tflm_ref import TflmReference

    work = tmp_path_factory.mktemp("reference")
    resets = np.zeros(host_run.frames, dtype=bool)
    resets[0] = True
    program = hostbuild.build(projects[CORES[0]].root / "model", work / "build")
    emulator = hostbuild.run(program, work, host_run.features, host_run.exits, resets)
    ref = TflmReference(out_dir)
    tflm = np.stack([ref.step(host_run.features[t], host_run.exit_names[host_run.exits[t]])
                     for t in range(host_run.frames)])
    return {"emulator": emulator.masks, "tflm": tflm}


_core_runs: dict[str, qemu.FirmwareRun] = {}


@pytest.fixture(scope="module")
def core_run(projects, schedule, tmp_path_factory):
    def get(core: str) -> qemu.FirmwareRun:
        if core not in _core_runs:
            qemu.build(projects[core])
            out = tmp_path_factory.mktemp(core) / "enhanced.wav"
            _core_runs[core] = qemu.run(projects[core], CLIP, out, schedule=schedule)
            print(f"\n{_core_runs[core].table()}")
        return _core_runs[core]
    return get


# --------------------------------------------------------------------------- export


def test_export_writes_a_self_contained_project(projects):
    p = projects["cortex-m4"]
    assert p.root == p.root.parent.parent / "firmware" / "cortex-m4"
    for rel in ("Makefile", "README.md", "PORTING.md", "export.json", "model/nsn_model.c",
                "model/nsn_weights.c", "app/nsn_stream.h", "app/nsn_app_main.c",
                "frontend/nsn_frontend.c", "kernels/include/nsn_nnfunctions.h",
                "boards/mps2-an386/board.ld", "boards/common/nsn_startup.c",
                "boards/host/nsn_port_host.c", "mk/arm.mk", "audio/input.wav"):
        assert (p.root / rel).is_file(), rel
    assert not (p.root / "boards" / "mps3-an547").exists()  # only the target's board
    assert firmware.load_project(p.root) == p
    # the same network C for every core
    for core in CORES[1:]:
        for f in ("nsn_model.c", "nsn_model.h", "nsn_weights.c"):
            assert (projects[core].root / "model" / f).read_bytes() == \
                (p.root / "model" / f).read_bytes()
    text = (p.root / "Makefile").read_text()
    assert text.startswith("# SPDX-License-Identifier: Apache-2.0")
    assert "{{" not in text and "{%" not in text


def test_exported_c_builds_with_warnings_as_errors(projects):
    flags = subprocess.run(["make", "-s", "-C", str(projects["cortex-m55"].root),
                            "print-NSN_ARM_CFLAGS"], check=True, capture_output=True,
                           text=True).stdout.split()
    assert {"-Wall", "-Wextra", "-Werror", "-mcpu=cortex-m55", "-ffp-contract=off"} <= set(flags)


def test_ensure_exported_reuses_a_fresh_project(out_dir, projects):
    p = projects["cortex-m7"]
    before = (p.root / "Makefile").stat().st_mtime_ns
    again = firmware.ensure_exported(out_dir, "cortex-m7")
    assert again == p and (p.root / "Makefile").stat().st_mtime_ns == before


def test_targets_and_host_export(dynamic_out, tmp_path):
    assert firmware.resolve_target("mps3-an547")[0] == "cortex-m55"
    with pytest.raises(NsconvError, match="unknown target 'cortex-m3'"):
        firmware.resolve_target("cortex-m3")
    out = tmp_path / "out"
    shutil.copytree(dynamic_out, out, ignore=shutil.ignore_patterns("firmware", "c"))
    host = firmware.export_firmware(out, "host")
    assert host.root == out / "c" and (out / "c" / "nsn_model.c").is_file()
    assert not (out / "firmware").exists()


def test_export_refuses_a_model_that_cannot_fit(dynamic_out, tmp_path):
    """A board profile with 1 MB of flash: refused before anything is written, in one
    sentence naming the board, the region and the sizes."""
    out = tmp_path / "out"
    shutil.copytree(dynamic_out, out, ignore=shutil.ignore_patterns("firmware", "c"))
    m4 = boards.board("mps2-an386")
    flash = boards.Region("flash", 0x0800_0000, 1024 * 1024)
    small = replace(m4, plan=replace(m4.plan, code=flash, const=flash))
    with pytest.raises(NsconvError) as err:
        firmware.export_firmware(out, "cortex-m4", board_profile=small)
    msg = str(err.value)
    assert "does not fit" in msg and "mps2-an386 flash (1,048,576 bytes at 0x08000000)" in msg
    assert re.search(r"weights [\d,]+ bytes", msg)
    assert not (out / "firmware" / "cortex-m4").exists()
    assert not list((out / "firmware").glob(".nsconv-tmp-*"))


def test_link_overflow_is_reported_in_one_sentence(core_run, projects, tmp_path):
    """A board whose code memory is 2 MB: make's link fails and names the region; nsconv says
    the firmware does not fit the board."""
    core_run("cortex-m4")  # built
    copy = tmp_path / "m4"
    shutil.copytree(projects["cortex-m4"].root, copy, symlinks=True)
    ld = copy / "boards" / "mps2-an386" / "board.ld"
    ld.write_text(ld.read_text().replace("SSRAM1 (rx) : ORIGIN = 0x00000000, LENGTH = 4M",
                                         "SSRAM1 (rx) : ORIGIN = 0x00000000, LENGTH = 2M"))
    with pytest.raises(NsconvError, match=r"does not fit board mps2-an386: region SSRAM1 "
                                          r"overflowed by [\d,]+ bytes"):
        qemu.build(firmware.load_project(copy))


# --------------------------------------------------------------------------- on the cores


@pytest.mark.parametrize("core", CORES)
def test_core_is_bit_exact_with_host_emulator_and_tflm(core, core_run, host_run, reference,
                                                      schedule):
    run = core_run(core)
    assert run.frames == 500 and run.unit == "instructions"
    expected = qemu.schedule_exits(run.exit_names, run.frames, schedule=schedule)
    assert [s.exit for s in run.steps] == expected
    for name in run.exit_names:
        assert expected.count(name) >= 125
    # the same C on the host: every byte the same
    assert np.array_equal(run.features, host_run.features)
    assert np.array_equal(run.masks, host_run.masks)
    assert run.out_wav.read_bytes() == host_run.out_wav.read_bytes()
    # the network against the host emulator and TFLM, every frame of every exit
    for what in ("emulator", "tflm"):
        bad = np.any(run.masks != reference[what], axis=1)
        assert not bad.any(), (f"{core}: {bad.sum()} frames differ from the {what}, first "
                               f"frame {np.flatnonzero(bad)[0]}")
    # masks are not trivial (random heads, but real speech features)
    assert len(np.unique(run.masks)) > 20


@pytest.mark.parametrize("core", CORES)
def test_core_output_matches_numpy_front_end(core, core_run, out_dir):
    """The enhanced wav from the core against featurelib (numpy float64 STFT/iSTFT) with the
    core's own int8 masks; and the core's int8 features against numpy's."""
    run = core_run(core)
    mf = Manifest.load(out_dir)
    mq, fq = mf.exits[0].mask, mf.exits[0].features
    x = read_wav(CLIP)
    spec = frontend.stft(x)
    y = frontend.istft(frontend.apply_mask(spec, frontend.dequantize(run.masks, mq.scale,
                                                                     mq.zero_point)))[: len(x)]
    c = read_wav(run.out_wav)
    assert len(c) == len(x)
    snr = 10 * np.log10(np.sum(y**2) / np.sum((c - y) ** 2))
    print(f"\n{core}: enhanced wav SNR against numpy with the same masks {snr:.1f} dB")
    assert snr >= 40
    q = frontend.quantize(frontend.features(spec), fq.scale, fq.zero_point)
    assert np.sum(q != run.features) <= 1e-3 * q.size  # rounding-boundary cases only


@pytest.mark.parametrize("core", CORES)
def test_core_instruction_counts(core, core_run, projects):
    run = core_run(core)
    stats = {s.exit: s for s in run.stats()}
    means = [stats[e.name].mean for e in projects[core].exits]
    assert means == sorted(means)  # deeper exits cost more
    for e in projects[core].exits:
        s = stats[e.name]
        assert s.min > 0 and s.frontend_mean > 10_000
        assert (s.max - s.min) < 1e-4 * s.mean  # data-dependent branches only
        # portable C: ~6 instructions per MAC; DSP/MVE kernel paths go far below 1
        assert 0.02 < s.mean / e.macs_per_frame < 20
    board = projects[core].board
    board.check_fit(boards.measure_elf(projects[core].elf))


def test_make_run_in_the_exported_project(core_run, projects):
    core_run("cortex-m55")  # built
    root = projects["cortex-m55"].root
    result = subprocess.run(["make", "-s", "run", "EXIT=gru1", "FRAMES=12", "OUT=m.wav"],
                            cwd=root, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    steps = re.findall(r"^step \d+ exit gru1 network (\d+) ", result.stdout, re.M)
    assert len(steps) == 12 and all(int(n) > 0 for n in steps)
    assert "summary exit gru1 frames 12" in result.stdout
    assert len(read_wav(root / "m.wav")) == 12 * frontend.HOP
    (root / "m.wav").unlink()


def test_run_on_target(out_dir, projects, tmp_path):
    """`nsconv run`: a fresh export is reused, built and run; bad exit names are refused
    before QEMU starts."""
    out = tmp_path / "enhanced.wav"
    run = qemu.run_on_target(out_dir, CLIP, out, "fc2", "cortex-m7", frames=20)
    assert run.frames == 20 and {s.exit for s in run.steps} == {"fc2"}
    assert len(read_wav(out)) == 20 * frontend.HOP
    with pytest.raises(NsconvError, match="no exit named 'fc9'.*gru1, gru2, fc2, final"):
        qemu.run_on_target(out_dir, CLIP, out, "fc9", "cortex-m7")
    with pytest.raises(NsconvError, match=", ".join(CORES) + " exported: choose"):
        qemu.run_on_target(out_dir, CLIP, out)  # no target, every core exported


def test_stream_api_contract(core_run, host_run, projects, tmp_path):
    """app/nsn_stream.h promises (bad arguments, priming, flush, reset), on the host build's
    objects."""
    root = projects["cortex-m4"].root
    objs = [p for p in (root / "build" / "host").rglob("*.o") if p.name != "nsn_app_main.o"]
    cflags = subprocess.run(["make", "-s", "-C", str(root), "print-NSN_HOST_CFLAGS"],
                            check=True, capture_output=True, text=True).stdout.split()
    exe = tmp_path / "stream_api_test"
    harness = Path(__file__).parent / "firmware_harness" / "nsn_stream_api_test.c"
    subprocess.run(["gcc", *cflags, f"-I{root / 'app'}", f"-I{root / 'model'}",
                    f"-I{root / 'kernels' / 'include'}", f"-I{root / 'frontend'}",
                    f"-I{root / 'boards' / 'common'}", str(harness), *map(str, objs),
                    "-o", str(exe)], check=True)
    result = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "stream api ok" in result.stdout, result.stderr


# --------------------------------------------------------------------------- bench


def test_bench_json(out_dir, core_run):
    """`nsconv bench --json`: a record per core and exit, measured in QEMU; the counts agree
    with the 500-frame runs above."""
    for core in CORES:
        core_run(core)
    report = bench.bench(out_dir, cores=CORES, frames=8)
    json.loads(json.dumps(report))
    results = report["results"]
    assert [(r["core"], r["exit"]) for r in results] == \
        [(c, e) for c in CORES for e in ("gru1", "gru2", "fc2", "final")]
    for r in results:
        for key in ("instructions_per_frame", "macs_per_frame", "text_bytes", "rodata_bytes",
                    "bss_bytes", "data_bytes", "instructions_per_mac",
                    "mhz_for_real_time_estimate", "instructions_per_frame_min",
                    "instructions_per_frame_max"):
            assert r[key] > 0, key
        assert r["frames"] == 8
        assert r["instructions_per_frame_min"] <= r["instructions_per_frame"] <= \
            r["instructions_per_frame_max"]
        assert r["rodata_bytes"] > r["weights_bytes"]
        long_run = {s.exit: s for s in _core_runs[r["core"]].stats()}[r["exit"]]
        assert abs(r["instructions_per_frame"] - long_run.mean) < 1e-3 * long_run.mean
    assert "ESTIMATE" in report["estimate_note"]
    print("\n" + bench.table(report))
    with pytest.raises(NsconvError, match="host is not one"):
        bench.bench(out_dir, cores=["host"])
