# SPDX-License-Identifier: Apache-2.0
"""Build and run firmware test programs for tests/test_boards.py and tests/test_frontend_c.py.

Builds go through firmware/mk/program.mk, so the tests use the same flags as everyone else;
QEMU runs use the board profile's command line and always have a timeout.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from nsconv.resources import FIRMWARE_DIR as FIRMWARE
from nsconv.target.boards import Board

HARNESS_DIR = Path(__file__).resolve().parent
FRONTEND_SRCS = tuple(FIRMWARE / "frontend" / f
                      for f in ("nsn_frontend.c", "nsn_rfft.c", "nsn_frontend_tables.c"))
QEMU_TIMEOUT_S = 60

HAVE_ARM_GCC = shutil.which("arm-none-eabi-gcc") is not None
HAVE_QEMU = shutil.which("qemu-system-arm") is not None


class BuildError(Exception):
    """make failed; the message holds the compiler or linker output."""


def make_variable(name: str, target: str = "host") -> str:
    """Value of a make variable as firmware/mk/program.mk sees it for this target."""
    out = subprocess.run(["make", "-s", "-f", str(FIRMWARE / "mk" / "program.mk"),
                          f"NSN_TARGET={target}", f"print-{name}"],
                         check=True, capture_output=True, text=True, cwd=FIRMWARE)
    return out.stdout.strip()


def build(target: str, out: Path, prog: str, srcs: tuple[Path, ...], includes: tuple[Path, ...] = (),
          extra_cflags: str = "", sanitize: bool = False) -> Path:
    """Builds prog for "host" or a board name; returns the executable or ELF path."""
    cmd = ["make", "-s", "-f", str(FIRMWARE / "mk" / "program.mk"), f"NSN_TARGET={target}",
           f"OUT={out}", f"PROG={prog}", "SRCS=" + " ".join(str(s) for s in srcs),
           "INCLUDES=" + " ".join(f"-I{i}" for i in includes), f"EXTRA_CFLAGS={extra_cflags}"]
    if sanitize:
        cmd.append("SANITIZE=1")
    result = subprocess.run(cmd, cwd=FIRMWARE, capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"building {prog} for {target} failed:\n{result.stderr}")
    return out / (prog if target == "host" else f"{prog}.elf")


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


def run_qemu(board: Board, elf: Path, args: str = "", cwd: Path | None = None) -> Run:
    """Runs an ELF on the board's QEMU machine; paths in args are relative to cwd."""
    result = subprocess.run(board.qemu_command(elf, args), capture_output=True, text=True,
                            cwd=cwd, timeout=QEMU_TIMEOUT_S, stdin=subprocess.DEVNULL)
    return Run(result.returncode, result.stdout, result.stderr)


def run_host(exe: Path, args: list[str], cwd: Path) -> Run:
    result = subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd,
                            timeout=QEMU_TIMEOUT_S)
    return Run(result.returncode, result.stdout, result.stderr)
