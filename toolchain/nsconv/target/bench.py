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

Memory of the network (per record; see MEMORY_NOTE): ram_bytes = sizeof(nsn_model_t) (arena +
GRU states + kernel scratch, printed by the firmware) + stack_peak_bytes, the deepest stack use
of one nsn_model_step at that exit, measured at run time (stack painted below the stack
pointer before every step, scanned after). code_bytes = .text of the kernel objects and of
nsn_model.o as linked (from the link map, so without unused functions, the weights or the C
library); params_bytes = .rodata of nsn_model.o (per-channel multipliers and shifts, op
parameters, LUTs: const, in flash). Per-op split (instructions_by_op): per-frame mean
instructions of the kernel calls of each op kind, counted by hooks around every call
(-DNSN_PROFILE_OPS) in a second, profiled build and run, so that the main counts stay
unperturbed; "OTHER" is the rest of the step (the hooks' own cost included).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nsconv import __version__
from nsconv.audio import frontend
from nsconv.errors import NsconvError
from nsconv.log import progress
from nsconv.target import qemu
from nsconv.target.boards import elf_sections
from nsconv.target.firmware import (
    TARGETS,
    ExitInfo,
    FirmwareProject,
    ensure_exported,
    exported_cores,
    resolve_target,
)

FRAMES_PER_SECOND = 100  # 10 ms hops at 16 kHz: the default front end's (project.frontend)
DEFAULT_FRAMES = 100
ESTIMATE_NOTE = ("mhz_for_real_time_estimate is an ESTIMATE, not a measurement: (network + "
                 "front end instructions per frame) x 100 frames/s / 1e6, i.e. the clock that "
                 "real time would need at one instruction per cycle. Real cores differ (memory "
                 "wait states, caches, dual issue on Cortex-M7, MVE beats on Cortex-M55).")
COUNTER_NOTE = ("instructions counted by SysTick under QEMU 7.2 -icount shift=6 (exact to about "
                "one instruction; an instruction count is a proxy for cycles)")
MEMORY_NOTE = ("ram_bytes = model_bytes (sizeof nsn_model_t: arena + states + scratch) + "
               "stack_peak_bytes; ram_with_frontend_bytes = ram_bytes + frontend_state_bytes "
               "(sizeof nsn_frontend_state, printed by the profiled firmware: the front end's "
               "window, spectrum, overlap and FFT scratch); stack_peak_bytes measured at run "
               "time: the stack below the "
               "stack pointer is painted before every nsn_model_step and scanned after, max over "
               "the exit's frames, in the profiled build (its op hooks are leaf calls at the "
               "kernels' call depth). flash_bytes = linked code (.text) + constants (.rodata) of "
               "the network (model, kernels, weights) and the front end (link map; without "
               "this firmware's app, board start-up and C library); code_bytes = linked .text "
               "of the kernels and nsn_model.o "
               "(link map; no weights, no C library); params_bytes = linked .rodata of "
               "nsn_model.o (multipliers, shifts, op parameters, LUTs)")
OP_KINDS = ("FULLY_CONNECTED", "ADD", "SUB", "MUL", "LOGISTIC", "TANH", "QUANTIZE", "COPY")
PROFILE_CFLAGS = ("-DNSN_PROFILE_OPS", "-DNSN_STACK_PROBE")
# Issue #6: TFLM + CMSIS-NN on the NSNet2 baseline (final exit), quoted, not measured here.
TFLM_CMSIS_NN_REFERENCE = {
    "source": "figures quoted from issue #6 (TFLM + CMSIS-NN, NSNet2 baseline, final exit); "
              "NOT measured by this bench",
    "macs_per_frame": 2_681_000,
    "instructions_per_frame": {"cortex-m4": 6_744_292, "cortex-m7": 6_973_939,
                               "cortex-m55": 2_485_267},
    "arena_bytes": {"cortex-m4": 62_140, "cortex-m7": 62_140, "cortex-m55": 88_396},
}
SECTIONS = {
    "text_bytes": (".vectors", ".text", ".ARM.extab", ".ARM.exidx"),
    "rodata_bytes": (".rodata", ".init_array_all"),
    "data_bytes": (".data",),
    "bss_bytes": (".bss",),
}


_MAP_ENTRY = re.compile(r"^ (\.[^\s*]+)\s+0x[0-9a-fA-F]+\s+0x([0-9a-fA-F]+) (\S+)$", re.M)
_STACK = re.compile(r"^stack exit (\S+) network peak (\d+)$", re.M)
_OPS = re.compile(r"^ops exit (\S+) kind (\S+) mean (\d+)$", re.M)
_MODEL_BYTES = re.compile(r"^nsn_app: model bytes (\d+)$", re.M)
_FRONTEND_BYTES = re.compile(r"^nsn_app: frontend bytes (\d+)$", re.M)


def code_sizes(map_file: Path) -> dict[str, int]:
    """Linked sizes from a GNU ld map file: .text of the kernel objects and of nsn_model.o,
    .rodata of nsn_model.o (and of the kernels)."""
    text = map_file.read_text()
    start = text.find("Linker script and memory map")
    if start < 0:
        raise NsconvError("not a GNU ld map file", map_file)
    out = {"kernels_text_bytes": 0, "model_text_bytes": 0, "model_rodata_bytes": 0,
           "kernels_rodata_bytes": 0}
    for name, size, obj in _MAP_ENTRY.findall(text, start):
        obj = obj.replace("\\", "/")
        if obj.endswith("model/nsn_model.o"):
            who = "model"
        elif "kernels/" in obj and obj.endswith(".o"):
            who = "kernels"
        else:
            continue
        if name == ".text" or name.startswith(".text."):
            out[f"{who}_text_bytes"] += int(size, 16)
        elif name == ".rodata" or name.startswith(".rodata."):
            out[f"{who}_rodata_bytes"] += int(size, 16)
    if not out["model_text_bytes"] or not out["kernels_text_bytes"]:
        raise NsconvError("no model or kernel code in the link map", map_file)
    return out


# Objects of the linked firmware that a product deploys (network and front end), by path
# suffix in the link map; the rest (the wav-streaming app main, semihosting, board start-up,
# C library) belongs to this test firmware, not to the model.
_DEPLOYED = (("network", ("model/nsn_model.o", "model/nsn_weights.o")),
             ("network", ("kernels/",)),
             ("frontend", ("frontend/", "app/nsn_stream.o")))


def flash_sizes(map_file: Path) -> dict[str, int]:
    """Flash by kind from a GNU ld map file: code (.text) and constants (.rodata) of the
    network (model + kernels; weights counted apart) and of the front end (with the
    streaming glue), and the rest of the image (app, board, C library)."""
    text = map_file.read_text()
    start = text.find("Linker script and memory map")
    if start < 0:
        raise NsconvError("not a GNU ld map file", map_file)
    out = {"network_code_bytes": 0, "network_constants_bytes": 0, "weights_bytes": 0,
           "frontend_code_bytes": 0, "frontend_constants_bytes": 0,
           "other_code_bytes": 0, "other_constants_bytes": 0}
    for name, size, obj in _MAP_ENTRY.findall(text, start):
        obj = obj.replace("\\", "/")
        kind = ("code" if name == ".text" or name.startswith(".text.") else
                "constants" if name == ".rodata" or name.startswith(".rodata.") else None)
        if kind is None:
            continue
        who = next((w for w, suffixes in _DEPLOYED
                    if any(obj.endswith(x) or (x.endswith("/") and f"/{x}" in obj)
                           for x in suffixes)), "other")
        out[f"{who}_{kind}_bytes"] += int(size, 16)
        if obj.endswith("model/nsn_weights.o") and kind == "constants":
            out["weights_bytes"] += int(size, 16)
    if not out["network_code_bytes"] or not out["weights_bytes"]:
        raise NsconvError("no model code or weights in the link map", map_file)
    return out


def flash_regions(map_file: Path, board) -> dict:
    """What a product flashes for the network and front end: code + constants (the `fit`
    figure), by kind, and the board regions they live in (boards.py memory plan)."""
    f = flash_sizes(map_file)
    code = f["network_code_bytes"] + f["frontend_code_bytes"]
    constants = f["network_constants_bytes"] + f["frontend_constants_bytes"]
    return {"flash_bytes": code + constants, "code_bytes": code, "constants_bytes": constants,
            "code_region": board.plan.code.describe(),
            "constants_region": board.plan.const.describe(), **f}


def _profile(stdout: str) -> tuple[int, int, dict[str, int], dict[str, dict[str, int]]]:
    """(sizeof nsn_model_t, sizeof nsn_frontend_state, stack peak per exit, per-op mean per
    exit) of a profiled run."""
    model, fe = _MODEL_BYTES.search(stdout), _FRONTEND_BYTES.search(stdout)
    if model is None or fe is None:
        raise NsconvError("the profiled firmware printed no model or front-end size")
    stack = {m[1]: int(m[2]) for m in _STACK.finditer(stdout)}
    ops: dict[str, dict[str, int]] = {}
    for m in _OPS.finditer(stdout):
        ops.setdefault(m[1], {})[m[2]] = int(m[3])
    return int(model[1]), int(fe[1]), stack, ops


def _bench_audio(dest: Path, frames: int, fe=frontend.DEFAULT) -> Path:
    """Real noisy speech of at least `frames` frames: the bundled clips, concatenated (and
    repeated) as needed, resampled to the model's rate when it is not theirs."""
    from nsconv.audio.wav import read_wav_resampled, write_wav
    from nsconv.quant.quantize import calibration_clips

    clips = calibration_clips()
    if not clips:
        raise NsconvError("no bundled audio clips found")
    parts, total, i = [], 0, 0
    while frontend.num_frames(total, fe) < frames:
        x = read_wav_resampled(clips[i % len(clips)], fe.rate)
        parts.append(x)
        total += len(x)
        i += 1
    write_wav(dest, np.concatenate(parts), fe.rate)
    return dest


def bench(out_dir: Path, cores: Sequence[str] | None = None, exits: Sequence[str] | None = None,
          frames: int = DEFAULT_FRAMES, audio: Path | None = None, log=None) -> dict:
    """Measure instructions per frame of each exit on each core, `frames` frames per exit.
    Default exits: all; default cores: those OUT was exported for, else every core in
    TARGETS. A core OUT holds no firmware for is exported and built in a temporary directory,
    never in OUT. Returns the JSON-ready report: {"results": [one record per core and exit],
    ...}; see the module docstring."""
    say = log or (lambda msg: None)
    if frames < 1:
        raise NsconvError(f"frames must be at least 1, got {frames}")
    resolved = _resolve_cores(out_dir, cores)
    results: list[dict] = []
    runs: list[dict] = []
    schedule: _Schedule | None = None
    with tempfile.TemporaryDirectory(prefix="nsconv-bench-") as tmp:
        tmp_path = Path(tmp)
        for core in progress(resolved, "bench"):
            project = ensure_exported(out_dir, core, log=say, scratch=tmp_path / "firmware")
            if schedule is None:  # the first core's exits and front end decide for all
                schedule = _schedule(project, exits, frames, audio, tmp_path)
            run_record, records = _bench_core(project, core, schedule, tmp_path, say)
            runs.append(run_record)
            results.extend(records)
    audio_name = Path(audio).name if audio is not None else \
        "bundled noisy speech (nsconv/quant/data/calib)"
    return {
        "tool": "nsconv",
        "version": __version__,
        "unit": "instructions",
        "counter": COUNTER_NOTE,
        "estimate_note": ESTIMATE_NOTE,
        "memory_note": MEMORY_NOTE,
        "tflm_cmsis_nn_reference": TFLM_CMSIS_NN_REFERENCE,
        "frames_per_exit": frames,
        "schedule": "exits cycled frame by frame: "
                    + ",".join(schedule.exits if schedule is not None else []),
        "audio": audio_name,
        "runs": runs,
        "results": results,
    }


def _resolve_cores(out_dir: Path, cores: Sequence[str] | None) -> list[str]:
    """The cores to bench (default: those OUT was exported for, else all), as core names."""
    cores = list(cores) if cores else (exported_cores(out_dir) or list(TARGETS))
    resolved = []
    for c in cores:
        core, b = resolve_target(c)
        if b is None:
            raise NsconvError("bench measures Cortex-M cores under QEMU; host is not one "
                              f"(choose from {', '.join(TARGETS)})")
        resolved.append(core)
    return resolved


@dataclass(frozen=True)
class _Schedule:
    """What every core runs: the exits cycled frame by frame, the frames in all, the audio."""

    exits: tuple[str, ...]
    frames: int
    source: Path


def _schedule(project: FirmwareProject, exits: Sequence[str] | None, frames: int,
              audio: Path | None, tmp_path: Path) -> _Schedule:
    """The exits to bench (default all, checked against the project) and audio for `frames`
    frames of each (default: the bundled clips)."""
    chosen = list(exits) if exits else [e.name for e in project.exits]
    for name in chosen:
        project.exit(name)  # refuses unknown names, listing the exits
    if len(set(chosen)) != len(chosen):
        raise NsconvError("an exit is named twice")
    total = frames * len(chosen)
    source = Path(audio) if audio is not None else \
        _bench_audio(tmp_path / "bench.wav", total, project.frontend)
    available = frontend.num_frames(len(_samples(source, project.frontend)), project.frontend)
    if available < total:
        raise NsconvError(f"{available} frames of audio, the bench needs {total} "
                          f"({frames} per exit)", source)
    return _Schedule(tuple(chosen), total, source)


@dataclass(frozen=True)
class _Profiled:
    """The profiled run (-DNSN_PROFILE_OPS): sizeof nsn_model_t, and per exit the stack peak,
    the per-op split and the step statistics; the linked code sizes."""

    elf: Path
    model_bytes: int
    frontend_state_bytes: int
    stack: dict[str, int]
    ops: dict[str, dict[str, int]]
    stats: dict[str, qemu.ExitStats]
    code: dict[str, int]


def _bench_core(project: FirmwareProject, core: str, schedule: _Schedule, tmp_path: Path,
                say) -> tuple[dict, list[dict]]:
    """Build the firmware and its profiled build for one core, run both under QEMU; the run's
    record and one record per exit."""
    say(f"bench: building {core}")
    qemu.build(project)
    prof_elf = qemu.build(project, variant="prof", cflags=PROFILE_CFLAGS)
    order = ",".join(schedule.exits)
    say(f"bench: {core}, {schedule.frames} frames, schedule {order}")
    run = qemu.run(project, schedule.source, tmp_path / f"{core}.wav", schedule=order,
                   frames=schedule.frames)
    if run.unit != "instructions":
        raise NsconvError(f"the firmware counted {run.unit}, not instructions "
                          "(built with NSN_PORT_COUNTER_DWT?)", project.elf)
    say(f"bench: {core}, profiled run (op split, stack)")
    prof = qemu.run(project, schedule.source, tmp_path / f"{core}-prof.wav", schedule=order,
                    frames=schedule.frames, program=prof_elf)
    model_bytes, fe_bytes, stack, ops = _profile(prof.stdout)
    profiled = _Profiled(prof_elf, model_bytes, fe_bytes, stack, ops,
                         {s.exit: s for s in prof.stats()},
                         code_sizes(project.elf.with_suffix(".map")))
    flash = flash_regions(project.elf.with_suffix(".map"), project.board)
    sections = elf_sections(project.elf)
    sizes = {key: sum(sections.get(s, 0) for s in names) for key, names in SECTIONS.items()}
    run_record = {"core": core, "board": project.board.name, "frames": run.frames,
                  "kernels_path": run.kernels_path,
                  "qemu_seconds": round(run.seconds, 2),
                  "constants_in": project.board.plan.const.describe(), **sizes, "flash": flash}
    stats = {s.exit: s for s in run.stats()}
    records = []
    for name in schedule.exits:
        info = project.exit(name)
        s = stats[name]
        records.append({**_exit_record(core, project, run, s, info, sizes, flash),
                        **_profile_fields(name, profiled),
                        **_reference_fields(core, info, s)})
    return run_record, records


def _exit_record(core: str, project: FirmwareProject, run: qemu.FirmwareRun,
                 s: qemu.ExitStats, info: ExitInfo, sizes: dict[str, int], flash: dict) -> dict:
    """The measured counts of one exit, and the firmware's sizes."""
    per_frame = s.mean + s.frontend_mean
    return {
        "core": core,
        "board": project.board.name,
        "kernels_path": run.kernels_path,
        "exit": info.name,
        "frames": s.frames,
        "instructions_per_frame": round(s.mean, 1),
        "instructions_per_frame_min": s.min,
        "instructions_per_frame_max": s.max,
        "macs_per_frame": info.macs_per_frame,
        "instructions_per_mac": round(s.mean / info.macs_per_frame, 3)
        if info.macs_per_frame else None,
        "frontend_instructions_per_frame": round(s.frontend_mean, 1),
        "mhz_for_real_time_estimate": round(
            per_frame * project.frontend.rate / project.frontend.hop / 1e6, 2),
        "weights_bytes": info.const_bytes,
        **sizes,
        "flash_bytes": flash["flash_bytes"],
        "flash": flash,
    }


def _profile_fields(name: str, prof: _Profiled) -> dict:
    """Memory, code size and the per-op split of one exit, from the profiled run."""
    if name not in prof.stack or name not in prof.ops:
        raise NsconvError(f"the profiled firmware printed no stack or op counts for "
                          f"exit {name}", prof.elf)
    by_op = {k: prof.ops[name].get(k, 0) for k in OP_KINDS}
    by_op["OTHER"] = max(0, round(prof.stats[name].mean) - sum(by_op.values()))
    code = prof.code
    return {
        "ram_bytes": prof.model_bytes + prof.stack[name],
        "model_bytes": prof.model_bytes,
        "frontend_state_bytes": prof.frontend_state_bytes,
        "ram_with_frontend_bytes": prof.model_bytes + prof.frontend_state_bytes
        + prof.stack[name],
        "stack_peak_bytes": prof.stack[name],
        "stack_peak_method": "run-time stack painting (profiled build)",
        "code_bytes": code["kernels_text_bytes"] + code["model_text_bytes"],
        "params_bytes": code["model_rodata_bytes"],
        "code_breakdown": code,
        "instructions_by_op": by_op,
        "instructions_per_frame_profiled": round(prof.stats[name].mean, 1),
    }


def _reference_fields(core: str, info: ExitInfo, s: qemu.ExitStats) -> dict:
    """The ratio to the quoted TFLM + CMSIS-NN figures, for the model they were quoted for."""
    ref = TFLM_CMSIS_NN_REFERENCE
    if info.macs_per_frame != ref["macs_per_frame"] or core not in ref["instructions_per_frame"]:
        return {}
    return {
        "ratio_to_tflm_cmsis_nn": round(s.mean / ref["instructions_per_frame"][core], 4),
        "tflm_cmsis_nn_reference": {
            "source": ref["source"],
            "instructions_per_frame": ref["instructions_per_frame"][core],
            "arena_bytes": ref["arena_bytes"][core],
        },
    }


def _samples(path: Path, fe=frontend.DEFAULT) -> np.ndarray:
    from nsconv.audio.wav import read_wav

    return read_wav(path, fe)


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
    lines.append("")
    head = (f"{'core':<11} {'exit':<8} {'RAM B':>7} {'stack B':>7} {'code B':>7} "
            f"{'params B':>8} {'vs TFLM':>7}  instructions/frame by op")
    lines += [head, "-" * len(head)]
    for r in report["results"]:
        if "ram_bytes" not in r:
            continue
        ratio = f"{r['ratio_to_tflm_cmsis_nn']:.3f}" if "ratio_to_tflm_cmsis_nn" in r else "-"
        split = ", ".join(f"{k} {v:,}" for k, v in r["instructions_by_op"].items() if v)
        lines.append(f"{r['core']:<11} {r['exit']:<8} {r['ram_bytes']:>7,} "
                     f"{r['stack_peak_bytes']:>7,} {r['code_bytes']:>7,} {r['params_bytes']:>8,} "
                     f"{ratio:>7}  {split}")
    for run in report["runs"]:
        lines.append(f"{run['core']} ({run['board']}, kernel path {run['kernels_path']}): "
                     f"text {run['text_bytes']:,} B, rodata "
                     f"{run['rodata_bytes']:,} B, data {run['data_bytes']:,} B, bss "
                     f"{run['bss_bytes']:,} B; QEMU {run['qemu_seconds']} s for "
                     f"{run['frames']} frames")
        f = run.get("flash")
        if f:
            lines.append(f"  flash for network + front end {f['flash_bytes']:,} B: code "
                         f"{f['code_bytes']:,} B in {f['code_region']}; constants "
                         f"{f['constants_bytes']:,} B (weights {f['weights_bytes']:,} B) in "
                         f"{f['constants_region']}; rest of this firmware (app, board, C "
                         f"library) code {f['other_code_bytes']:,} B, constants "
                         f"{f['other_constants_bytes']:,} B")
    lines.append(report["estimate_note"])
    if "memory_note" in report:
        lines.append(report["memory_note"])
    if any("ratio_to_tflm_cmsis_nn" in r for r in report["results"]):
        lines.append("vs TFLM = instructions/frame / " + report["tflm_cmsis_nn_reference"]["source"])
    return "\n".join(lines)
