# SPDX-License-Identifier: Apache-2.0
"""Board support: profiles agree with the firmware files; each board boots, faults visibly,
counts instructions repeatably, does semihosting file I/O and holds ~2.8 MB of weights."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from frontend_harness import fwbuild
from nsconv.errors import NsconvError
from nsconv.target import boards

BOARD_NAMES = [b.name for b in boards.BOARDS]
PROFILE_NAMES = BOARD_NAMES + [b.name for b in boards.LARGE_VARIANTS]
WEIGHTS_BYTES = 2_831_000  # about the int8 nsNet2 weights
needs_arm = pytest.mark.skipif(not (fwbuild.HAVE_ARM_GCC and fwbuild.HAVE_QEMU),
                               reason="arm-none-eabi-gcc and qemu-system-arm required")


def _ld_memory(ldscript: Path) -> dict[str, tuple[int, int]]:
    """MEMORY regions of a board.ld: name -> (origin, length)."""
    units = {"K": 1024, "M": 1024 * 1024, "": 1}
    regions = {}
    for m in re.finditer(r"^\s*(\w+)\s*\([rwx]+\)\s*:\s*ORIGIN\s*=\s*(0x[0-9a-fA-F]+),\s*"
                         r"LENGTH\s*=\s*(\d+)([KM]?)", ldscript.read_text(), re.M):
        regions[m[1]] = (int(m[2], 16), int(m[3]) * units[m[4]])
    return regions


def _ld_alias(ldscript: Path, alias: str) -> str:
    return re.search(rf'REGION_ALIAS\("{alias}",\s*(\w+)\)', ldscript.read_text())[1]


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_profile_matches_firmware_files(name):
    b = boards.board(name)
    assert fwbuild.make_variable("NSN_BOARD_CPU_FLAGS", name) == " ".join(b.cpu_flags)
    assert fwbuild.make_variable("NSN_QEMU_MACHINE", name) == b.qemu_machine
    assert fwbuild.make_variable("NSN_QEMU_CPU", name) == b.qemu_cpu
    assert fwbuild.make_variable("NSN_BOARD_CORE", name) == b.core
    assert f"NSN_BOARD_CPU_HZ {b.cpu_hz}u" in (b.directory / "nsn_board.h").read_text()
    memory = _ld_memory(b.ldscript)
    for alias, region in (("NSN_CODE", b.plan.code), ("NSN_CONST", b.plan.const),
                          ("NSN_RAM", b.plan.ram)):
        assert memory[_ld_alias(b.ldscript, alias)] == (region.base, region.size), alias
        assert region in b.real_memory and region in b.qemu_memory
    text = b.ldscript.read_text()
    assert f"NSN_STACK_SIZE = {b.plan.stack_size // 1024}K;" in text
    assert f"NSN_HEAP_MIN = {b.plan.heap_min // 1024}K;" in text


def test_fit_check_names_board_and_region():
    for b in boards.BOARDS:
        b.check_fit(boards.ImageSize(code=200_000, const=WEIGHTS_BYTES + 20_000, ram=50_000,
                                     weights=WEIGHTS_BYTES))
    b = boards.board("mps2-an386")
    with pytest.raises(NsconvError) as err:
        b.check_fit(boards.ImageSize(code=300_000, const=4_000_000, ram=10_000,
                                     weights=3_990_000))
    msg = str(err.value)
    assert "weights 3,990,000 bytes" in msg and "mps2-an386" in msg
    assert "ZBT SSRAM1 (4,194,304 bytes at 0x00000000)" in msg
    # AN547 keeps code (ITCM) and constants (QSPI) apart: 600 KB of code is the problem there
    problems = boards.board("mps3-an547").fit_problems(
        boards.ImageSize(code=600_000, const=WEIGHTS_BYTES, ram=10_000))
    assert len(problems) == 1 and "ITCM (524,288 bytes" in problems[0]
    with pytest.raises(NsconvError, match="unknown board 'stm32'"):
        boards.board("stm32")


@pytest.fixture(scope="module")
def smoke_elfs(tmp_path_factory) -> dict[str, Path]:
    if not (fwbuild.HAVE_ARM_GCC and fwbuild.HAVE_QEMU):
        pytest.skip("arm-none-eabi-gcc and qemu-system-arm required")
    out = tmp_path_factory.mktemp("smoke")
    return {name: fwbuild.build(name, out / name, "smoke",
                                (fwbuild.FIRMWARE / "boards" / "smoke" / "nsn_smoke.c",))
            for name in BOARD_NAMES}


@needs_arm
@pytest.mark.parametrize("name", BOARD_NAMES)
def test_hello_and_exit_status(smoke_elfs, name):
    b = boards.board(name)
    run = fwbuild.run_qemu(b, smoke_elfs[name], "hello")
    assert run.returncode == 0, run.stderr
    assert f"hello from {name}" in run.stdout
    stack_top = b.plan.ram.end
    assert f"stack top 0x{stack_top:x}" in run.stdout
    assert fwbuild.run_qemu(b, smoke_elfs[name], "exit 7").returncode == 7


@needs_arm
@pytest.mark.parametrize("name", BOARD_NAMES)
@pytest.mark.parametrize("fault, kind", [("fault-bus", "BusFault"), ("fault-udf", "UsageFault"),
                                         ("fault-div0", "UsageFault")])
def test_fault_exits_with_failure(smoke_elfs, name, fault, kind):
    run = fwbuild.run_qemu(boards.board(name), smoke_elfs[name], fault)
    assert run.returncode == 125, (run.stdout, run.stderr)  # NSN_PORT_FAULT_EXIT_STATUS
    assert f"*** {kind}" in run.stderr and "PC=0x" in run.stderr


@needs_arm
@pytest.mark.parametrize("name", BOARD_NAMES)
def test_semihosting_reads_host_file(smoke_elfs, name, tmp_path):
    data = np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    (tmp_path / "blob.bin").write_bytes(data)
    run = fwbuild.run_qemu(boards.board(name), smoke_elfs[name], "file blob.bin", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    checksum = 0
    for byte in data:
        checksum = (checksum * 31 + byte) & 0xFFFFFFFF
    assert f"5000 bytes, checksum {checksum:08x}" in run.stdout


def _counts(run: fwbuild.Run) -> list[int]:
    return [int(m[1]) for m in re.finditer(r"^count (\d+) instructions", run.stdout, re.M)]


@needs_arm
@pytest.mark.parametrize("name", BOARD_NAMES)
def test_instruction_count_of_known_loop(smoke_elfs, name):
    """The loop runs exactly 2N instructions: the count must be 2N plus a small constant
    (call and loop set-up), the same every time, and grow by exactly 2 per iteration --
    which also checks the ticks-to-instructions constant of the board's clock."""
    b = boards.board(name)
    small, large = 100_000, 1_000_000
    run_small = fwbuild.run_qemu(b, smoke_elfs[name], f"count {small}")
    run_large = fwbuild.run_qemu(b, smoke_elfs[name], f"count {large}")
    again = fwbuild.run_qemu(b, smoke_elfs[name], f"count {small}")
    c_small, c_large = _counts(run_small), _counts(run_large)
    assert len(c_small) == 2 and len(c_large) == 2, run_small.stdout + run_small.stderr
    assert c_small[0] == c_small[1] == _counts(again)[0]  # repeatable within and across runs
    assert c_large[0] == c_large[1]
    assert 0 <= c_small[0] - 2 * small <= 16
    assert abs((c_large[0] - c_small[0]) - 2 * (large - small)) <= 1


@needs_arm
def test_dwt_cycle_counter_configuration_builds_and_runs(tmp_path):
    """The real-board counter (DWT->CYCCNT) path: builds and runs; QEMU 7.2 does not count
    cycles (CYCCNT reads 0), so only the unit is checked."""
    b = boards.board("mps2-an500")
    elf = fwbuild.build(b.name, tmp_path, "smoke_dwt",
                        (fwbuild.FIRMWARE / "boards" / "smoke" / "nsn_smoke.c",),
                        extra_cflags="-DNSN_PORT_COUNTER_DWT")
    run = fwbuild.run_qemu(b, elf, "count 1000")
    assert run.returncode == 0, run.stderr
    assert re.search(r"^count \d+ cycles for 2000$", run.stdout, re.M)


@needs_arm
@pytest.mark.parametrize("name", BOARD_NAMES)
def test_weights_sized_rodata_fits_and_reads_back(name, tmp_path):
    b = boards.board(name)
    blob = np.random.default_rng(7).integers(0, 256, WEIGHTS_BYTES, dtype=np.uint8).tobytes()
    (tmp_path / "w.bin").write_bytes(blob)
    elf = fwbuild.build(name, tmp_path, "weights",
                        (fwbuild.HARNESS_DIR / "board_weights.c",),
                        extra_cflags=f"-DNSN_WEIGHTS_BIN='\"{tmp_path / 'w.bin'}\"'")
    size = boards.measure_elf(elf, weights=WEIGHTS_BYTES)
    assert WEIGHTS_BYTES <= size.const < WEIGHTS_BYTES + 64 * 1024
    b.check_fit(size)
    run = fwbuild.run_qemu(b, elf)
    assert run.returncode == 0, run.stderr
    m = re.search(r"weights at (0x[0-9a-f]+), (\d+) bytes, fnv1a ([0-9a-f]{8})", run.stdout)
    address = int(m[1], 16)
    assert b.plan.const.base <= address < b.plan.const.end - WEIGHTS_BYTES
    assert int(m[2]) == WEIGHTS_BYTES
    fnv = 2166136261
    for byte in blob:
        fnv = ((fnv ^ byte) * 16777619) & 0xFFFFFFFF
    assert int(m[3], 16) == fnv


@needs_arm
@pytest.mark.parametrize("name", BOARD_NAMES)
def test_oversized_weights_fail_to_link(name, tmp_path):
    b = boards.board(name)
    too_big = b.plan.const.size + 1024
    (tmp_path / "w.bin").write_bytes(bytes(too_big))
    with pytest.raises(fwbuild.BuildError, match="overflowed"):
        fwbuild.build(name, tmp_path, "weights", (fwbuild.HARNESS_DIR / "board_weights.c",),
                      extra_cflags=f"-DNSN_WEIGHTS_BIN='\"{tmp_path / 'w.bin'}\"'")
    assert b.fit_problems(boards.ImageSize(code=50_000, const=too_big, ram=10_000))
