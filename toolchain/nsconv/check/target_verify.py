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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nsconv.check import nd_verify as nd
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


@dataclass(frozen=True)
class QemuStream:
    """A stream's masks and states from the frame runner on a core, in one or more QEMUs."""

    masks: np.ndarray
    states: np.ndarray
    kernels_path: str  # as the running binary reports it
    seconds_per_frame: float  # one QEMU's wall-clock time per frame
    wall: float  # seconds for the whole stream
    processes: int


def _stream(project, runner: Path, features: np.ndarray, exits: np.ndarray,
            resets: np.ndarray, jobs: int, timeout: float | None,
            per_frame_s: float | None = None) -> QemuStream:
    """features through the frame runner in up to `jobs` QEMUs at once, each streaming a
    part that starts at a reset (_chunks); bounded by `timeout` seconds per QEMU, or the
    base bound plus per_frame_s per frame (default: qemu's bounds)."""
    chunks = _chunks(resets, jobs)

    def one(c: slice) -> qemu.FrameRun:
        limit = timeout
        if limit is None and per_frame_s is not None:
            limit = qemu.QEMU_BASE_TIMEOUT_S + per_frame_s * (c.stop - c.start)
        return qemu.run_frames(project, runner, features[c], exits[c], resets[c],
                               timeout=limit)

    wall = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
        runs = list(pool.map(one, chunks))
    wall = time.monotonic() - wall
    paths = {r.kernels_path for r in runs}
    if len(paths) != 1:
        raise NsconvError(f"the runs of one binary report different kernel paths: {paths}")
    return QemuStream(np.concatenate([r.masks for r in runs]),
                      np.concatenate([r.states for r in runs]), paths.pop(),
                      sum(r.seconds for r in runs) / len(features), wall, len(chunks))


def _verify_core(out_dir: Path, core: str, gen, stream, ref, *, frames: int, used: list[str],
                 schedule: str, command_line: str, timeout: float | None, jobs: int,
                 scratch: Path, say) -> host.VerifyReport:
    t0 = time.monotonic()
    project = ensure_exported(out_dir, core, command_line=command_line, log=say,
                              scratch=scratch)
    assert project.board is not None
    say(f"verify: building the frame runner for {core} ({project.board.name})")
    runner = qemu.build_runner(project)
    say(f"verify: {len(stream.features)} frames on {core} in QEMU")
    q = _stream(project, runner, stream.features, stream.exits, stream.resets, jobs, timeout)
    say(f"verify: {core}: {q.wall:.1f} s ({q.processes} QEMU), {q.seconds_per_frame * 1000:.2f} "
        f"ms per frame in QEMU, kernel path {q.kernels_path}")

    def dump(sub, frame: int) -> dict[int, np.ndarray]:
        debug = qemu.build_runner(project, debug=True)
        return qemu.run_frames(project, debug, sub.features, sub.exits, sub.resets,
                               dump_frame=frame, timeout=timeout).tensors

    code_run = host.CodeRun(q.masks, q.states, None, dump)
    return host.compare(out_dir, gen, stream, code_run, ref, frames=frames, used=used,
                        schedule=schedule, sanitize=False, t0=t0,
                        c_matches_export=_matches_export(project, gen), log=say,
                        target=core, board=project.board.name, kernels_path=q.kernels_path,
                        seconds_per_frame=round(q.seconds_per_frame, 5))


def _chosen_cores(targets: list[str]) -> list[str]:
    chosen = []
    for t in targets:
        core, board = resolve_target(t)
        if board is None:
            raise NsconvError(f"--target {t}: the host is what `nsconv verify` without --target "
                              f"checks (cores: {', '.join(cores())})")
        if core not in chosen:
            chosen.append(core)
    return chosen


def _jobs(jobs: int | None) -> int:
    return jobs or min(os.cpu_count() or 1, MAX_JOBS)


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
    chosen = _chosen_cores(targets)
    with tempfile.TemporaryDirectory(prefix="nsconv-verify-") as tmp:
        gen = generate(out_dir, Path(tmp) / "c", command_line="nsconv verify (temporary copy)")
        stream, n_frames, used = host.make_stream(out_dir, gen.merged, frames, audio, schedule, seed)
        say(f"verify: {len(gen.merged.exits)} exits, {n_frames} frames per stream from "
            f"{len(used)} recording(s), schedule {schedule}; TFLM first")
        ref = host.reference(out_dir, gen.merged, stream)
        return [_verify_core(out_dir, core, gen, stream, ref, frames=n_frames, used=used,
                             schedule=schedule, command_line=command_line, timeout=timeout,
                             jobs=_jobs(jobs),
                             scratch=Path(tmp) / "firmware", say=say)
                for core in chosen]


def _model_matches_export(project, out_dir: Path) -> bool:
    """A GTCRN project's model/ equals OUT/c (its copy at export)."""
    c = Path(out_dir) / "c"
    files = sorted(c.glob("*.[ch]"))
    return bool(files) and all((project.root / "model" / f.name).is_file()
                               and (project.root / "model" / f.name).read_bytes()
                               == f.read_bytes() for f in files)


def _locate_on_core(out_dir: Path, g, spec, st, ref, dump: dict[int, np.ndarray],
                    raw: np.ndarray, sub: slice, build_dir: Path) -> str:
    """The first op whose output on the core differs: the core's tensor dump of frame
    sub.stop - 1 against the host build of OUT/c replaying the same frames (the portable
    kernels; named as the reference when its mask and states equal TFLM's on that frame),
    else against the TFLite interpreter's intermediates."""
    k = sub.stop - 1
    h = nd.host_dump(Path(out_dir) / "c", build_dir, raw, st.resets[sub])
    host_ok = np.array_equal(h.masks[-1], ref.masks[k]) and \
        np.array_equal(h.states[-1], ref.states[k])
    if host_ok:
        where = nd.dump_difference(g, dump, h.tensors, "against the host build of OUT/c, "
                                   "which equals TFLM on this frame")
        if where:
            return where
    return nd.first_difference(g, spec, dump, st.frames[k],
                               nd.states_before(g, spec, ref, st.resets, k))


def _verify_gtcrn_core(out_dir: Path, core: str, g, spec, st, ref, *, timeout: float | None,
                       jobs: int, scratch: Path, say) -> tuple[nd.NdVerifyReport, dict]:
    from nsconv.target import gtcrn_target as gt

    t0 = time.monotonic()
    project = gt.ensure_exported(out_dir, core, scratch, say)
    say(f"verify: building the frame runner for {core} ({project.board.name})")
    runner = qemu.build_runner(project)
    feat = g.tensors[g.index_of(spec.features)]
    raw = nd.raw_frames(st.frames, feat)
    exits = np.zeros(len(raw), np.uint8)
    say(f"verify: {len(raw)} frames on {core} in QEMU")
    q = _stream(project, runner, raw, exits, st.resets, jobs, timeout, gt.TIMEOUT_PER_HOP_S)
    say(f"verify: {core}: {q.wall:.1f} s ({q.processes} QEMU), {q.seconds_per_frame * 1000:.2f} "
        f"ms per frame in QEMU, kernel path {q.kernels_path}")
    cmp = nd.compare(spec, ref, q.masks, q.states)
    first = cmp.first_mismatch
    if cmp.first_bad_frame is not None:
        k = cmp.first_bad_frame
        say(f"verify: {core}: frame {k} differs; dumping its tensors from a debug build")
        debug = qemu.build_runner(project, debug=True)
        start = int(np.flatnonzero(st.resets[: k + 1])[-1]) if st.resets[: k + 1].any() else 0
        sub = slice(start, k + 1)
        dump = qemu.run_frames(project, debug, raw[sub], exits[sub], st.resets[sub],
                               dump_frame=k - start, timeout=timeout).tensors
        where = _locate_on_core(out_dir, g, spec, st, ref, dump, raw[sub], sub,
                                scratch / f"{core}-host")
        first += f"; {where}" if where else ""
    rep = nd.NdVerifyReport(cmp.bit_exact, len(raw), cmp.mismatched_frames,
                            cmp.mask_mismatched_frames, cmp.state_mismatched_frames, first,
                            False, q.kernels_path, project.arena_bytes, project.state_bytes)
    info = {"target": core, "board": project.board.name,
            "seconds_per_frame": round(q.seconds_per_frame, 5),
            "qemu_seconds": round(q.wall, 1), "qemu_processes": q.processes,
            "c_matches_export": _model_matches_export(project, out_dir),
            "seconds": round(time.monotonic() - t0, 1)}
    return rep, info


def verify_gtcrn_targets(out_dir: Path, targets: list[str], frames: int | None = None,
                         audio: list[Path] | None = None, timeout: float | None = None,
                         jobs: int | None = None, log=None) -> list[tuple[nd.NdVerifyReport,
                                                                           dict]]:
    """`nsconv verify OUT --target CORE` of a GTCRN export: per core, the firmware project's
    network and kernel objects (`make verify`, the shipped flags) linked with the frame
    runner stream the quantized real-speech feature frames the host verify streams
    (nd_verify.gtcrn_stream: the states reset at each recording's first frame) in QEMU; every
    frame's mask and all states are compared with TFLM (nd_verify.compare), and on a
    mismatch a debug build dumps that frame's tensors to name the first op that differs.
    One (report, info) per core, as nd_verify.verify_gtcrn's, info adding the core, board,
    QEMU time per frame and whether the project's model/ is OUT/c."""
    out_dir = Path(out_dir)
    say = log or (lambda msg: None)
    chosen = _chosen_cores(targets)
    g, spec, meta, st = nd.load_gtcrn(out_dir, frames, audio)
    say(f"verify: {len(st.frames)} frames of {len(st.used)} clip(s); TFLM first")
    ref = nd.reference(g, spec, st.frames, st.resets)
    common = {"audio": [p.name for p in st.used], "source_model": meta.get("source_model")}
    out = []
    with tempfile.TemporaryDirectory(prefix="nsconv-verify-") as tmp:
        for core in chosen:
            rep, info = _verify_gtcrn_core(out_dir, core, g, spec, st, ref, timeout=timeout,
                                           jobs=_jobs(jobs), scratch=Path(tmp) / "firmware",
                                           say=say)
            out.append((rep, {**common, **info}))
    return out
