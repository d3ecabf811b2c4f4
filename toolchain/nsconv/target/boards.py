# SPDX-License-Identifier: Apache-2.0
"""Board profiles: compiler flags, QEMU machine, memory maps and where a build puts its bytes.

Each profile mirrors firmware/boards/<name>/ (board.mk: CPU flags and QEMU machine; board.ld:
placement; nsn_board.h: clock); tests/test_boards.py checks that the two agree. The four
boards are Arm's FPGA prototyping boards that QEMU 7.2 emulates; their memory maps come from
QEMU's models (hw/arm/mps2.c, hw/arm/mps2-tz.c) and the boards' application notes.

`Board.check_fit(size)` turns an image size into a one-line error such as
"constants (weights 2,831,000 bytes + 12,004 other) ... do not fit mps2-an386 ZBT SSRAM1 ...".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from nsconv.errors import NsconvError
from nsconv.resources import FIRMWARE_DIR

KiB = 1024
MiB = 1024 * KiB



@dataclass(frozen=True)
class Region:
    """One memory of a board."""

    name: str
    base: int
    size: int
    note: str = ""

    @property
    def end(self) -> int:
        return self.base + self.size

    def describe(self) -> str:
        return f"{self.name} ({self.size:,} bytes at 0x{self.base:08x})"


@dataclass(frozen=True)
class MemoryPlan:
    """Where the linker script (firmware/boards/<name>/board.ld) puts each kind of bytes."""

    code: Region  # vector table, .text
    const: Region  # .rodata (network weights), init arrays, .data load image
    ram: Region  # .data, .bss, heap (at least heap_min), stack (stack_size, at the top)
    stack_size: int
    heap_min: int


@dataclass(frozen=True)
class ImageSize:
    """Bytes of a linked image by kind (see `measure_elf`)."""

    code: int
    const: int  # includes the .data load image
    ram: int  # .data + .bss, without the heap and stack reserves
    weights: int = 0  # the part of `const` that is network weights, for messages


@dataclass(frozen=True)
class Board:
    name: str
    core: str
    description: str
    qemu_machine: str
    qemu_cpu: str
    cpu_flags: tuple[str, ...]
    cpu_hz: int  # CPU clock (SysTick with CLKSOURCE = CPU), on the board and in QEMU 7.2
    plan: MemoryPlan  # same placement on the real board and in QEMU
    real_memory: tuple[Region, ...]  # the physical board
    qemu_memory: tuple[Region, ...]  # what QEMU 7.2 maps (RAM/ROM only)
    # The variant (same board, own board.ld) that keeps the constants in the board's large
    # memory, used when they overflow `plan.const`; see `placement`.
    large: str | None = None

    @property
    def directory(self) -> Path:
        return FIRMWARE_DIR / "boards" / self.name

    @property
    def ldscript(self) -> Path:
        return self.directory / "board.ld"

    def qemu_command(self, elf: str | Path, args: str = "", icount: bool = True) -> list[str]:
        """QEMU command line with semihosting; icount: 64 ns per instruction, which makes
        nsn_port's SysTick count instructions (see firmware/boards/README.md)."""
        cmd = ["qemu-system-arm", "-M", self.qemu_machine, "-cpu", self.qemu_cpu, "-nographic",
               "-monitor", "none", "-semihosting-config", "enable=on,target=native"]
        if icount:
            cmd += ["-icount", "shift=6"]
        cmd += ["-kernel", str(elf)]
        return cmd + (["-append", args] if args else [])

    def fit_problems(self, size: ImageSize) -> tuple[str, ...]:
        """Every region that the image overflows, as one sentence each (empty if it fits)."""
        other_const = size.const - size.weights
        const_what = (f"constants (weights {size.weights:,} bytes + {other_const:,} other)"
                      if size.weights else f"constants ({size.const:,} bytes)")
        demands: dict[Region, list[tuple[str, int]]] = {}
        plan = self.plan
        for region, what, nbytes in (
            (plan.code, f"code ({size.code:,} bytes)", size.code),
            (plan.const, const_what, size.const),
            (plan.ram, f"data and bss ({size.ram:,} bytes) + heap {plan.heap_min:,} + stack "
                       f"{plan.stack_size:,}", size.ram + plan.heap_min + plan.stack_size),
        ):
            demands.setdefault(region, []).append((what, nbytes))
        problems = []
        for region, parts in demands.items():
            total = sum(n for _, n in parts)
            if total > region.size:
                what = " + ".join(w for w, _ in parts)
                problems.append(f"{what} = {total:,} bytes do not fit board {self.name} "
                                f"{region.describe()}")
        return tuple(problems)

    def check_fit(self, size: ImageSize) -> None:
        problems = self.fit_problems(size)
        if problems:
            raise NsconvError("; ".join(problems))


# MPS2+ FPGA boards (hw/arm/mps2.c). The board copies the image from its SD card into ZBT
# SSRAM1 before reset, so SSRAM1 plays the role of flash.
_SSRAM1 = Region("ZBT SSRAM1", 0x0000_0000, 4 * MiB, "code memory, loaded from the SD card")
_SSRAM23 = Region("ZBT SSRAM2/3", 0x2000_0000, 4 * MiB, "data memory")
_MPS2_PLAN = MemoryPlan(code=_SSRAM1, const=_SSRAM1, ram=_SSRAM23, stack_size=64 * KiB,
                        heap_min=256 * KiB)


def _psram(base: int) -> Region:
    return Region("PSRAM", base, 16 * MiB, "constants that overflow SSRAM1 (like a part's "
                  "external flash), else unused")


def _mps2_memory(psram_base: int, mirrors: bool) -> tuple[Region, ...]:
    regions = (_SSRAM1, _SSRAM23, _psram(psram_base))
    if mirrors:  # QEMU also maps the upper 4 MB of each SSRAM window as a mirror
        regions += (Region("ZBT SSRAM1 mirror", 0x0040_0000, 4 * MiB, "alias"),
                    Region("ZBT SSRAM2/3 mirror", 0x2040_0000, 4 * MiB, "alias"))
    return regions


# MPS2+ AN505 (hw/arm/mps2-tz.c an505_raminfo; IoTKit in hw/arm/armsse.c). The IDAU makes
# addresses with bit 28 set Secure, and INITSVTOR is 0x10000000, so the image is linked at
# the Secure aliases of ZBT SSRAM1 (code memory, loaded from the SD card: this board's flash)
# and of SSRAM2/3 (two 2 MB SRAMs behind MPCs 1 and 2, contiguous).
_AN505_SSRAM1 = Region("ZBT SSRAM1 (Secure alias)", 0x1000_0000, 4 * MiB,
                       "code memory, loaded from the SD card")
_AN505_SSRAM23 = Region("ZBT SSRAM2/3 (Secure alias)", 0x3800_0000, 4 * MiB, "data memory")
_AN505_MEMORY = (
    _AN505_SSRAM1,
    _AN505_SSRAM23,
    Region("PSRAM", 0x8000_0000, 16 * MiB, "unused"),
)

# MPS3 AN547 (hw/arm/mps2-tz.c an547_raminfo; SSE-300 TCMs in hw/arm/armsse.c).
_ITCM = Region("ITCM", 0x0000_0000, 512 * KiB, "vector table (INITSVTOR 0) and code")
_ISRAM = Region("SSE-300 internal SRAM", 0x2100_0000, 4 * MiB, "data, heap, stack")
_QSPI = Region("QSPI flash", 0x2800_0000, 8 * MiB, "constants; a ROM in QEMU")
_AN547_COMMON = (
    _ITCM,
    Region("FPGA SRAM", 0x0100_0000, 2 * MiB, "unused; behind MPC 0"),
    Region("DTCM", 0x2000_0000, 512 * KiB, "unused"),
    _ISRAM,
    _QSPI,
)

BOARDS: tuple[Board, ...] = (
    Board(
        name="mps2-an386",
        core="cortex-m4",
        description="Arm MPS2+ with FPGA image AN386: Cortex-M4, FPv4-SP FPU, DSP extension",
        qemu_machine="mps2-an386",
        qemu_cpu="cortex-m4",
        cpu_flags=("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
        cpu_hz=25_000_000,
        plan=_MPS2_PLAN,
        real_memory=_mps2_memory(0x2100_0000, mirrors=False),
        qemu_memory=_mps2_memory(0x2100_0000, mirrors=True),
        large="mps2-an386-psram",
    ),
    Board(
        name="mps2-an500",
        core="cortex-m7",
        description="Arm MPS2+ with FPGA image AN500: Cortex-M7, FPv5 double-precision FPU",
        qemu_machine="mps2-an500",
        qemu_cpu="cortex-m7",
        cpu_flags=("-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"),
        cpu_hz=25_000_000,
        plan=_MPS2_PLAN,
        real_memory=_mps2_memory(0x6000_0000, mirrors=False),
        qemu_memory=_mps2_memory(0x6000_0000, mirrors=True),
        large="mps2-an500-psram",
    ),
    Board(
        name="mps2-an505",
        core="cortex-m33",
        description="Arm MPS2+ with FPGA image AN505: Cortex-M33 (Armv8-M Mainline), FPv5-SP "
                    "FPU, DSP extension, IoTKit (TrustZone; runs Secure)",
        qemu_machine="mps2-an505",
        qemu_cpu="cortex-m33",
        cpu_flags=("-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"),
        cpu_hz=20_000_000,
        plan=MemoryPlan(code=_AN505_SSRAM1, const=_AN505_SSRAM1, ram=_AN505_SSRAM23,
                        stack_size=64 * KiB, heap_min=256 * KiB),
        real_memory=_AN505_MEMORY,
        qemu_memory=_AN505_MEMORY,
    ),
    Board(
        name="mps3-an547",
        core="cortex-m55",
        description="Arm MPS3 with FPGA image AN547: Cortex-M55 (Helium MVE, FPU), SSE-300",
        qemu_machine="mps3-an547",
        qemu_cpu="cortex-m55",
        cpu_flags=("-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"),
        cpu_hz=32_000_000,
        plan=MemoryPlan(code=_ITCM, const=_QSPI, ram=_ISRAM, stack_size=64 * KiB,
                        heap_min=256 * KiB),
        # The board's DDR4 is not used by nsconv and not listed.
        real_memory=_AN547_COMMON,
        qemu_memory=_AN547_COMMON + (
            Region("DDR", 0x6000_0000, 2048 * MiB, "unused; behind MPC 2"),),
    ),
)


def _large_variant(b: Board, name: str, psram_base: int) -> Board:
    """b with its constants (.rodata, .data image) in PSRAM: boards/<name>/board.ld."""
    plan = MemoryPlan(code=b.plan.code, const=_psram(psram_base), ram=b.plan.ram,
                      stack_size=b.plan.stack_size, heap_min=b.plan.heap_min)
    return Board(name=name, core=b.core, description=b.description + "; constants in PSRAM",
                 qemu_machine=b.qemu_machine, qemu_cpu=b.qemu_cpu, cpu_flags=b.cpu_flags,
                 cpu_hz=b.cpu_hz, plan=plan, real_memory=b.real_memory,
                 qemu_memory=b.qemu_memory)


# Variants of the boards above for models whose constants overflow the code memory (the 48 kHz
# nsNet2 layout has ~6 MB of int8 weights; MPS2's SSRAM1 holds 4 MB). Not targets of their own:
# `placement` picks one at export.
LARGE_VARIANTS: tuple[Board, ...] = (
    _large_variant(BOARDS[0], "mps2-an386-psram", 0x2100_0000),
    _large_variant(BOARDS[1], "mps2-an500-psram", 0x6000_0000),
)


def placement(b: Board, size: ImageSize) -> Board:
    """b, or its large-memory variant when only that one holds the image's constants."""
    if b.large and b.fit_problems(size):
        variant = board(b.large)
        if not variant.fit_problems(size):
            return variant
    return b


def board(name: str) -> Board:
    for b in BOARDS + LARGE_VARIANTS:
        if b.name == name:
            return b
    known = ", ".join(b.name for b in BOARDS)
    raise NsconvError(f"unknown board {name!r} (known: {known})")


_CODE_SECTIONS = (".vectors", ".text", ".ARM.extab", ".ARM.exidx")
_CONST_SECTIONS = (".rodata", ".init_array_all")


def measure_elf(path: str | Path, weights: int = 0) -> ImageSize:
    """Section sizes of an ELF linked with firmware/boards/common/nsn_sections.ld."""
    sections = elf_sections(path)
    data = sections.get(".data", 0)
    return ImageSize(
        code=sum(sections.get(s, 0) for s in _CODE_SECTIONS),
        const=sum(sections.get(s, 0) for s in _CONST_SECTIONS) + data,
        ram=data + sections.get(".bss", 0),
        weights=weights,
    )


def elf_sections(path: str | Path) -> dict[str, int]:
    """Name -> size of the sections of a little-endian 32-bit ELF file."""
    path = Path(path)
    blob = path.read_bytes()
    if blob[:4] != b"\x7fELF" or blob[4] != 1 or blob[5] != 1:
        raise NsconvError("not a little-endian 32-bit ELF file", path)
    shoff, = struct.unpack_from("<I", blob, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", blob, 0x2E)
    headers = [struct.unpack_from("<IIIIIIIIII", blob, shoff + i * shentsize)
               for i in range(shnum)]
    names_offset = headers[shstrndx][4]

    def name(offset: int) -> str:
        start = names_offset + offset
        return blob[start : blob.index(b"\0", start)].decode()

    return {name(h[0]): h[5] for h in headers if h[0]}
