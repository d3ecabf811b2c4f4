# SPDX-License-Identifier: Apache-2.0
"""Real microcontrollers that audio products are built on: the one table of their memories
and clocks (`nsconv fit --part NAME`, `nsconv export --part NAME`).

Figures are the manufacturers' datasheet maxima for the part named (the largest memory option
where a family has several); the datasheet of each row is named in its `source`. A part runs
on the emulated board of its core (firmware.TARGETS) for `run` and `bench`: the board has
more memory than the part, and fit checks the part's own budgets against what bench measures.

Flash holds code and constants. A part without internal flash executes in place from external
(Q/O/XSPI) flash; for those, `external_flash_bytes` is the address window the part maps for
it (the flash chip on the board decides the real size), and constants read from it cost
bandwidth that an instruction count does not show (see `note`).
"""

from __future__ import annotations

from dataclasses import dataclass

from nsconv.errors import NsconvError

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class Part:
    name: str  # CLI name
    title: str
    core: str  # a target of firmware.TARGETS
    max_mhz: int
    internal_flash_bytes: int  # 0: none (or nonvolatile MRAM, see note)
    sram_bytes: int
    external_flash_bytes: int = 0  # >0: code and constants may live in external memory
    source: str = ""
    note: str = ""

    @property
    def external(self) -> bool:
        """Constants may live in memory-mapped external flash."""
        return self.external_flash_bytes > 0

    @property
    def flash_bytes(self) -> int:
        """The flash budget for code + constants: internal flash, else the external window."""
        return self.internal_flash_bytes or self.external_flash_bytes

    @property
    def flash_where(self) -> str:
        return "internal flash" if self.internal_flash_bytes else "external flash (XIP)"


PARTS: tuple[Part, ...] = (
    Part("stm32f446", "STM32F446 (RE)", "cortex-m4", 180, 512 * KiB, 128 * KiB,
         source="ST DS10693 (STM32F446xC/E datasheet)"),
    Part("stm32l4r5", "STM32L4R5 (ZI)", "cortex-m4", 120, 2 * MiB, 640 * KiB,
         source="ST DS12023 (STM32L4R5xx/L4R7xx/L4S5xx/L4S7xx datasheet)"),
    Part("stm32h743", "STM32H743 (ZI)", "cortex-m7", 480, 2 * MiB, 1 * MiB,
         source="ST DS12110 (STM32H742xI/G, STM32H743xI/G datasheet)",
         note="1 MB of RAM includes 192 KB of TCM and 4 KB of backup SRAM"),
    Part("imxrt1062", "i.MX RT1062", "cortex-m7", 600, 0, 1 * MiB,
         external_flash_bytes=256 * MiB,
         source="NXP IMXRT1060CEC (i.MX RT1060 crossover processors data sheet)",
         note="no internal flash: code and constants execute in place from FlexSPI flash "
              "(256 MB window), at the bus's bandwidth; 1 MB OCRAM incl. 512 KB FlexRAM"),
    Part("nrf5340", "nRF5340 application core", "cortex-m33", 128, 1 * MiB, 512 * KiB,
         source="Nordic nRF5340 Product Specification v1.x"),
    Part("stm32u585", "STM32U585 (AI)", "cortex-m33", 160, 2 * MiB, 786 * KiB,
         source="ST DS13086 (STM32U585xx datasheet)"),
    Part("rp2350", "RP2350", "cortex-m33", 150, 0, 520 * KiB,
         external_flash_bytes=16 * MiB,
         source="Raspberry Pi RP2350 datasheet",
         note="no internal flash: code and constants execute in place from QSPI flash "
              "(16 MB window per chip select) through a 16 KB cache"),
    Part("alif-e7", "Alif Ensemble E7, high-performance core", "cortex-m55", 400,
         int(5.5 * MiB), int(13.5 * MiB),
         source="Alif Semiconductor Ensemble E7 datasheet",
         note="internal nonvolatile memory is MRAM (5.5 MB); SRAM is shared by the chip's "
              "cores (13.5 MB in all)"),
    Part("stm32n657", "STM32N657", "cortex-m55", 800, 0, int(4.2 * MiB),
         external_flash_bytes=256 * MiB,
         source="ST DS14791 (STM32N657xx datasheet)",
         note="no internal flash: code and constants execute in place from XSPI flash "
              "(256 MB window); dense int8 weights streamed from it every frame cost bandwidth"),
)


def part(name: str) -> Part:
    for p in PARTS:
        if p.name == name:
            return p
    raise NsconvError(f"unknown part {name!r} (known: {', '.join(p.name for p in PARTS)})")


def custom_part(core: str, flash_bytes: int, ram_bytes: int, mhz: int) -> Part:
    """A part given by its budgets (`fit --core --flash --ram --mhz`)."""
    for what, value in (("flash", flash_bytes), ("RAM", ram_bytes), ("clock", mhz)):
        if value <= 0:
            raise NsconvError(f"{what} must be positive, got {value}")
    return Part("custom", "custom part", core, mhz, flash_bytes, ram_bytes,
                source="given on the command line")


def parse_size(text: str) -> int:
    """'512K', '2M', '1.5M', '786432' -> bytes (K = 1024)."""
    t = text.strip().upper().removesuffix("B")
    scale = {"K": KiB, "M": MiB}.get(t[-1:], 1)
    if scale != 1:
        t = t[:-1]
    try:
        value = float(t)
    except ValueError:
        raise NsconvError(f"not a size: {text!r} (bytes, or with K or M)") from None
    return int(value * scale)


def markdown_table() -> str:
    """The parts table for the README (written by `nsconv fit --list-parts --markdown`)."""
    lines = ["| part | name | core | max clock | internal flash | SRAM | constants may live in "
             "external flash | datasheet |", "|---|---|---|---|---|---|---|---|"]
    for p in PARTS:
        ext = f"yes ({_size(p.external_flash_bytes)} window)" if p.external else "no"
        flash = _size(p.internal_flash_bytes) if p.internal_flash_bytes else "none"
        lines.append(f"| `{p.name}` | {p.title} | {p.core} | {p.max_mhz} MHz | {flash} | "
                     f"{_size(p.sram_bytes)} | {ext} | {p.source} |")
    return "\n".join(lines)


def _size(n: int) -> str:
    if n >= MiB:
        return f"{n / MiB:g} MB"
    return f"{n // KiB} KB"


def board_of(p: Part):
    """The emulated board that runs the part's core (for run and bench)."""
    from nsconv.target.boards import board
    from nsconv.target.firmware import TARGETS

    return board(TARGETS[p.core])
