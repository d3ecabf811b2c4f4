# SPDX-License-Identifier: Apache-2.0
"""`nsconv verify OUT --target CORE`: the firmware that ships, against TFLM, frame by frame.

For each core, OUT's firmware project (exported again if stale; built in a temporary
directory if OUT holds none, as `nsconv run` does) is built with `make verify`: the model and
kernel objects of the shipped ELF, compiled by the project's own Makefile with the same flags,
linked with the frame runner
(compiler/templates/nsn_host_main.c.j2, the host verify's runner) as main. The runner streams
the same quantized real-audio frames and exit schedule as the host verify through the board in
QEMU (semihosting file I/O: measured under 0.1 ms per frame on Cortex-M4, against 10-30 ms
of computing, so a memory-mapped buffer could not be noticeably faster), and returns every
frame's mask and states. They are compared with TFLM by the host verify's own code
(nsconv.check.verify.compare); on a mismatch a debug build of the runner (-DNSN_DEBUG_TENSORS)
replays the stream up to the first bad frame and the report names the first op and tensor that
differ. The kernel path in the report is the one the running binary reports
(nsn_kernels_path()). QEMU runs are bounded: a hang or a fault is an error (with the fault
registers), never a stuck process.
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from nsconv.check import verify as host
from nsconv.compiler.codegen import generate
from nsconv.errors import NsconvError
from nsconv.target import qemu
from nsconv.target.firmware import TARGETS, FirmwareProject, ensure_exported, resolve_target

MAX_JOBS = 4


def cores() -> tuple[str, ...]:
    """Every core `verify --target` takes (the firmware targets)."""
    return tuple(TARGETS)


def _matches_export(project: FirmwareProject, gen) -> bool:
    """The project's model/ equals the code generated now (apart from the command line)."""
    model = project.root / "model"
    return all((model / f.name).is_file() and host.same_code(model / f.name, f)
               for f in gen.files)


def _chunks(resets: np.ndarray, jobs: int) -> list[slice]:
    """Up to `jobs` consecutive parts of the stream of about equal length, each starting at
    a reset (a recording's first frame, or an exit's stream in the fixed schedule), so that
    they can run in separate QEMU processes with the same results."""
    n = len(resets)
    starts = [int(i) for i in np.flatnonzero(resets)] or [0]
    cuts = [0]
    for k in range(1, max(1, jobs)):
        target = k * n // jobs
        best = min(starts, key=lambda i: abs(i - target))
        if best > cuts[-1]:
            cuts.append(best)
    cuts.append(n)
    return [slice(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def _verify_core(out_dir: Path, core: str, gen, stream, ref, *, frames: int, used: list[str],
                 schedule: str, command_line: str, timeout: float | None, jobs: int,
                 scratch: Path, say) -> host.VerifyReport:
    t0 = time.monotonic()
    project = ensure_exported(out_dir, core, command_line=command_line, log=say,
                              scratch=scratch)
    assert project.board is not None
    say(f"verify: building the frame runner for {core} ({project.board.name})")
    runner = qemu.build_runner(project)
    chunks = _chunks(stream.resets, jobs)
    say(f"verify: {len(stream.features)} frames on {core} in QEMU ({len(chunks)} "
        f"process{'es' if len(chunks) > 1 else ''})")
    wall = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
        runs = list(pool.map(lambda c: qemu.run_frames(
            project, runner, stream.features[c], stream.exits[c], stream.resets[c],
            timeout=timeout), chunks))
    wall = time.monotonic() - wall
    paths = {r.kernels_path for r in runs}
    if len(paths) != 1:
        raise NsconvError(f"the runs of one binary report different kernel paths: {paths}")
    kernels_path = paths.pop()
    masks = np.concatenate([r.masks for r in runs])
    states = np.concatenate([r.states for r in runs])
    # one QEMU's time per frame (the runs' own wall-clock times summed), whatever ran at once
    per_frame = sum(r.seconds for r in runs) / len(stream.features)
    say(f"verify: {core}: {wall:.1f} s, {per_frame * 1000:.2f} ms per frame in QEMU, kernel path "
        f"{kernels_path}")

    def dump(sub, frame: int) -> dict[int, np.ndarray]:
        debug = qemu.build_runner(project, debug=True)
        return qemu.run_frames(project, debug, sub.features, sub.exits, sub.resets,
                               dump_frame=frame, timeout=timeout).tensors

    code_run = host.CodeRun(masks, states, None, dump)
    return host.compare(out_dir, gen, stream, code_run, ref, frames=frames, used=used,
                        schedule=schedule, sanitize=False, t0=t0,
                        c_matches_export=_matches_export(project, gen), log=say,
                        target=core, board=project.board.name, kernels_path=kernels_path,
                        seconds_per_frame=round(per_frame, 5))


def verify_targets(out_dir: Path, targets: list[str], frames: int | None = host.DEFAULT_FRAMES,
                   audio: list[Path] | None = None, schedule: str = "fixed", seed: int = 0,
                   command_line: str = "", timeout: float | None = None,
                   jobs: int | None = None, log=None) -> list[host.VerifyReport]:
    """One report per core (see the module docstring); frames, audio, schedule and seed as
    for the host verify (nsconv.check.verify.verify). timeout: seconds per QEMU run (default:
    qemu's per-frame bound); jobs: QEMU processes at once (default: the CPU count, at most
    4), each streaming a part of the stream that starts at a reset."""
    out_dir = Path(out_dir)
    say = log or (lambda msg: None)
    host.check_arguments(frames, schedule)
    chosen = []
    for t in targets:
        core, board = resolve_target(t)
        if board is None:
            raise NsconvError(f"--target {t}: the host is what `nsconv verify` without --target "
                              f"checks (cores: {', '.join(cores())})")
        if core not in chosen:
            chosen.append(core)
    with tempfile.TemporaryDirectory(prefix="nsconv-verify-") as tmp:
        gen = generate(out_dir, Path(tmp) / "c", command_line="nsconv verify (temporary copy)")
        stream, n_frames, used = host.make_stream(out_dir, gen.merged, frames, audio, schedule, seed)
        say(f"verify: {len(gen.merged.exits)} exits, {n_frames} frames per stream from "
            f"{len(used)} recording(s), schedule {schedule}; TFLM first")
        ref = host.reference(out_dir, gen.merged, stream)
        return [_verify_core(out_dir, core, gen, stream, ref, frames=n_frames, used=used,
                             schedule=schedule, command_line=command_line, timeout=timeout,
                             jobs=jobs or min(os.cpu_count() or 1, MAX_JOBS),
                             scratch=Path(tmp) / "firmware", say=say)
                for core in chosen]
