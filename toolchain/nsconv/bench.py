# SPDX-License-Identifier: Apache-2.0
"""`nsconv bench`: measured cost of every exit on every core (stage "bench").

For each core the exported firmware (nsconv.firmware, re-exported only when stale) is built
and run under QEMU with an exit schedule that cycles through the chosen exits frame by frame,
on real speech, so every exit runs `frames` frames with realistic GRU states. The firmware
counts the instructions of each network step and of the front end with the board's SysTick
under QEMU -icount (firmware/boards/README.md): these are measurements, exact to about one
instruction. Only `mhz_for_real_time_estimate` is an estimate, and is labelled so.

ELF section sizes: text = .vectors + .text + .ARM.extab + .ARM.exidx; rodata = .rodata
(the weights) + init arrays; data = .data (RAM, with its load image in flash); bss = .bss.
They describe the whole firmware, which holds all exits, so they repeat across a core's exits.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import __version__, frontend, qemu
from .boards import elf_sections
from .errors import NsconvError
from .firmware import TARGETS, ensure_exported, resolve_target

FRAMES_PER_SECOND = 100  # 10 ms hops at 16 kHz
DEFAULT_FRAMES = 100
ESTIMATE_NOTE = ("mhz_for_real_time_estimate is an ESTIMATE, not a measurement: (network + "
                 "front end instructions per frame) x 100 frames/s / 1e6, i.e. the clock that "
                 "real time would need at one instruction per cycle. Real cores differ (memory "
                 "wait states, caches, dual issue on Cortex-M7, MVE beats on Cortex-M55).")
COUNTER_NOTE = ("instructions counted by SysTick under QEMU 7.2 -icount shift=6 (exact to about "
                "one instruction; an instruction count is a proxy for cycles)")
SECTIONS = {
    "text_bytes": (".vectors", ".text", ".ARM.extab", ".ARM.exidx"),
    "rodata_bytes": (".rodata", ".init_array_all"),
    "data_bytes": (".data",),
    "bss_bytes": (".bss",),
}


def _bench_audio(dest: Path, frames: int) -> Path:
    """Real noisy speech of at least `frames` frames: the bundled clips, concatenated (and
    repeated) as needed."""
    from .audio import read_wav, write_wav
    from .quantize import calibration_clips

    clips = calibration_clips()
    if not clips:
        raise NsconvError("no bundled audio clips found")
    parts, total, i = [], 0, 0
    while frontend.num_frames(total) < frames:
        x = read_wav(clips[i % len(clips)])
        parts.append(x)
        total += len(x)
        i += 1
    write_wav(dest, np.concatenate(parts))
    return dest


def bench(out_dir: Path, cores: Sequence[str] | None = None, exits: Sequence[str] | None = None,
          frames: int = DEFAULT_FRAMES, audio: Path | None = None, log=None) -> dict:
    """Measure instructions per frame of each exit on each core (default: all exits on
    cortex-m4, cortex-m7 and cortex-m55), `frames` frames per exit. Returns the JSON-ready
    report: {"results": [one record per core and exit], ...}; see the module docstring."""
    say = log or (lambda msg: None)
    if frames < 1:
        raise NsconvError(f"frames must be at least 1, got {frames}")
    cores = list(cores) if cores else list(TARGETS)
    resolved = []
    for c in cores:
        core, b = resolve_target(c)
        if b is None:
            raise NsconvError("bench measures Cortex-M cores under QEMU; host is not one "
                              f"(choose from {', '.join(TARGETS)})")
        resolved.append(core)
    results: list[dict] = []
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="nsconv-bench-") as tmp:
        tmp_path = Path(tmp)
        chosen: list[str] | None = None
        total = 0
        source = None
        for core in resolved:
            project = ensure_exported(out_dir, core, command_line="nsconv bench", log=say)
            names = [e.name for e in project.exits]
            if chosen is None:
                chosen = list(exits) if exits else names
                for name in chosen:
                    project.exit(name)  # refuses unknown names, listing the exits
                if len(set(chosen)) != len(chosen):
                    raise NsconvError("an exit is named twice")
                total = frames * len(chosen)
                source = Path(audio) if audio is not None else \
                    _bench_audio(tmp_path / "bench.wav", total)
                available = frontend.num_frames(len(_samples(source)))
                if available < total:
                    raise NsconvError(f"{available} frames of audio, the bench needs {total} "
                                      f"({frames} per exit)", source)
            say(f"bench: building {core}")
            qemu.build(project)
            schedule = ",".join(chosen)
            say(f"bench: {core}, {total} frames, schedule {schedule}")
            run = qemu.run(project, source, tmp_path / f"{core}.wav", schedule=schedule,
                           frames=total)
            if run.unit != "instructions":
                raise NsconvError(f"the firmware counted {run.unit}, not instructions "
                                  "(built with NSN_PORT_COUNTER_DWT?)", project.elf)
            sections = elf_sections(project.elf)
            sizes = {key: sum(sections.get(s, 0) for s in names_)
                     for key, names_ in SECTIONS.items()}
            runs.append({"core": core, "board": project.board.name, "frames": run.frames,
                         "qemu_seconds": round(run.seconds, 2), **sizes})
            stats = {s.exit: s for s in run.stats()}
            for name in chosen:
                info = project.exit(name)
                s = stats[name]
                per_frame = s.mean + s.frontend_mean
                results.append({
                    "core": core,
                    "board": project.board.name,
                    "exit": name,
                    "frames": s.frames,
                    "instructions_per_frame": round(s.mean, 1),
                    "instructions_per_frame_min": s.min,
                    "instructions_per_frame_max": s.max,
                    "macs_per_frame": info.macs_per_frame,
                    "instructions_per_mac": round(s.mean / info.macs_per_frame, 3)
                    if info.macs_per_frame else None,
                    "frontend_instructions_per_frame": round(s.frontend_mean, 1),
                    "mhz_for_real_time_estimate": round(per_frame * FRAMES_PER_SECOND / 1e6, 2),
                    "weights_bytes": info.const_bytes,
                    **sizes,
                })
        audio_name = Path(audio).name if audio is not None else \
            "bundled noisy speech (toolchain/nsconv/data/calib)"
    return {
        "tool": "nsconv",
        "version": __version__,
        "unit": "instructions",
        "counter": COUNTER_NOTE,
        "estimate_note": ESTIMATE_NOTE,
        "frames_per_exit": frames,
        "schedule": "exits cycled frame by frame: " + ",".join(chosen or []),
        "audio": audio_name,
        "runs": runs,
        "results": results,
    }


def _samples(path: Path) -> np.ndarray:
    from .audio import read_wav

    return read_wav(path)


def table(report: dict) -> str:
    """A human-readable view of a bench report."""
    head = (f"{'core':<11} {'exit':<8} {'instr/frame':>13} {'min':>12} {'max':>12} "
            f"{'MACs':>10} {'instr/MAC':>9} {'MHz est.':>8}")
    lines = [head, "-" * len(head)]
    for r in report["results"]:
        lines.append(f"{r['core']:<11} {r['exit']:<8} {r['instructions_per_frame']:>13,.0f} "
                     f"{r['instructions_per_frame_min']:>12,} {r['instructions_per_frame_max']:>12,} "
                     f"{r['macs_per_frame']:>10,} {r['instructions_per_mac']:>9.2f} "
                     f"{r['mhz_for_real_time_estimate']:>8.1f}")
    for run in report["runs"]:
        lines.append(f"{run['core']} ({run['board']}): text {run['text_bytes']:,} B, rodata "
                     f"{run['rodata_bytes']:,} B, data {run['data_bytes']:,} B, bss "
                     f"{run['bss_bytes']:,} B; QEMU {run['qemu_seconds']} s for "
                     f"{run['frames']} frames")
    lines.append(report["estimate_note"])
    return "\n".join(lines)
