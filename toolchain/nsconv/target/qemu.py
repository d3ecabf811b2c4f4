# SPDX-License-Identifier: Apache-2.0
"""Building an exported firmware project and running it under QEMU (`nsconv run`).

`build` runs the project's `make` (the ELF for its board, or with host=True the same program
for this computer) and checks the linked ELF against the board profile. `run` streams a wav
through the firmware main (app/nsn_app_main.c): QEMU with semihosting file I/O, -icount for
instruction counts and a timeout; it fetches the enhanced wav, the int8 features and masks of
every frame, and parses the per-step instruction counts from the firmware's output.

The firmware's command line travels over semihosting (at most 255 characters, program path
included), so QEMU runs in a scratch directory next to the ELF with short relative names.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nsconv.audio import frontend
from nsconv.errors import NsconvError
from nsconv.quant.manifest import Manifest
from nsconv.target.boards import measure_elf
from nsconv.target.firmware import (
    DEFAULT_CORE,
    FirmwareProject,
    ensure_exported,
    exported_cores,
    load_project,
)

BUILD_TIMEOUT_S = 900
# Measured: a frame takes 10 ms (Cortex-M4, portable kernels, 17 M instructions) to 30 ms
# (Cortex-M55, MVE kernels: QEMU emulates MVE slowly). The timeout allows far slower machines
# and only turns a hang into an error.
QEMU_BASE_TIMEOUT_S = 60
QEMU_TIMEOUT_PER_FRAME_S = 0.25
SEMIHOST_CMDLINE_MAX = 255
FAULT_EXIT_STATUS = 125  # boards/common/nsn_port.h NSN_PORT_FAULT_EXIT_STATUS

_STEP = re.compile(r"^step (\d+) exit (\S+) network (\d+) analyze (\d+) synthesize (\d+)$", re.M)
_HEADER = re.compile(r"^nsn_app: board (\S+), unit (\S+), frames (\d+), exits (.*)$", re.M)
_KERNELS = re.compile(r"^nsn_app: kernels (\S+)$", re.M)


@dataclass(frozen=True)
class StepCount:
    """The cost of one network frame, in the run's unit."""

    frame: int
    exit: str
    network: int  # nsn_model_step
    analyze: int  # front end analysis of the frame
    synthesize: int  # front end synthesis of the frame's output hop


@dataclass(frozen=True)
class ExitStats:
    exit: str
    frames: int
    mean: float
    min: int
    max: int
    frontend_mean: float  # analyze + synthesize


@dataclass(frozen=True)
class FirmwareRun:
    target: str  # "cortex-m4", ... or "host"
    board: str  # QEMU board, or "host"
    unit: str  # "instructions" (QEMU -icount), "cycles" (DWT) or "ns" (host)
    exit_names: tuple[str, ...]  # the model's exits
    steps: tuple[StepCount, ...]  # one per frame
    out_wav: Path
    masks: np.ndarray | None  # int8 (frames, 161)
    features: np.ndarray | None  # int8 (frames, 161)
    seconds: float  # wall-clock time of the QEMU (or host) run
    stdout: str
    kernels_path: str = ""  # the kernel library's path, as the firmware reports it

    @property
    def frames(self) -> int:
        return len(self.steps)

    @property
    def exits(self) -> np.ndarray:
        """Exit index of every frame."""
        index = {name: k for k, name in enumerate(self.exit_names)}
        return np.array([index[s.exit] for s in self.steps], dtype=np.int64)

    def stats(self) -> tuple[ExitStats, ...]:
        out = []
        for name in self.exit_names:
            sel = [s for s in self.steps if s.exit == name]
            if not sel:
                continue
            net = np.array([s.network for s in sel], dtype=np.float64)
            fe = np.array([s.analyze + s.synthesize for s in sel], dtype=np.float64)
            out.append(ExitStats(name, len(sel), float(net.mean()), int(net.min()),
                                 int(net.max()), float(fe.mean())))
        return tuple(out)

    def to_json(self) -> dict:
        """What `nsconv run --json` prints: where, how many frames, the counts per exit."""
        return {"target": self.target, "board": self.board, "unit": self.unit,
                "frames": self.frames, "out_wav": str(self.out_wav),
                "seconds": round(self.seconds, 2),
                "exits": [{"exit": s.exit, "frames": s.frames, "network_mean": round(s.mean, 1),
                           "network_min": s.min, "network_max": s.max,
                           "frontend_mean": round(s.frontend_mean, 1)} for s in self.stats()]}

    def table(self) -> str:
        head = (f"{'exit':<10} {'frames':>6} {'network mean':>14} {'min':>12} {'max':>12} "
                f"{'front end':>10}")
        lines = [f"{self.target} ({self.board}): {self.frames} frames, {self.unit} per frame, "
                 f"{self.seconds:.1f} s, kernel path {self.kernels_path or '?'}", head,
                 "-" * len(head)]
        for s in self.stats():
            lines.append(f"{s.exit:<10} {s.frames:>6} {s.mean:>14,.0f} {s.min:>12,} "
                         f"{s.max:>12,} {s.frontend_mean:>10,.0f}")
        return "\n".join(lines)


def parse_output(stdout: str) -> tuple[str, tuple[str, ...], tuple[StepCount, ...]]:
    """(unit, exit names, steps) from the firmware main's standard output."""
    header = _HEADER.search(stdout)
    if header is None:
        raise NsconvError("the firmware printed no nsn_app header line")
    steps = tuple(StepCount(int(m[1]), m[2], int(m[3]), int(m[4]), int(m[5]))
                  for m in _STEP.finditer(stdout))
    if [s.frame for s in steps] != list(range(len(steps))):
        raise NsconvError("the firmware's step lines are not frames 0, 1, 2, ...")
    return header[2], tuple(header[4].split()), steps


def schedule_exits(exit_names: Sequence[str], frames: int, exit_name: str | None = None,
                   schedule: str | None = None) -> list[str]:
    """The exit of every frame, as the firmware main chooses it (app/nsn_app_main.c): one exit
    (default the last), or a cyclic schedule "name[:n],name[:n],...". For references."""
    if schedule is None:
        name = exit_name if exit_name is not None else exit_names[-1]
        return [name] * frames
    cycle: list[str] = []
    for item in schedule.split(","):
        name, _, count = item.partition(":")
        cycle += [name] * (int(count) if count else 1)
    return [cycle[k % len(cycle)] for k in range(frames)]


def _check_schedule(project: FirmwareProject, exit_name: str | None,
                    schedule: str | None) -> None:
    names = [e.name for e in project.exits]
    if exit_name is not None and schedule is not None:
        raise NsconvError("give an exit or a schedule, not both")
    if exit_name is not None and exit_name not in names:
        raise NsconvError(f"no exit named {exit_name!r} (exits: {', '.join(names)})")
    if schedule is not None:
        items = schedule.split(",")
        for item in items:
            name, _, count = item.partition(":")
            if name not in names:
                raise NsconvError(f"schedule {schedule!r}: no exit named {name!r} "
                                  f"(exits: {', '.join(names)})")
            if count and (not count.isdigit() or int(count) < 1):
                raise NsconvError(f"schedule {schedule!r}: {count!r} is not a frame count")
        if len(items) > 32:
            raise NsconvError(f"schedule {schedule!r}: more than 32 entries")


def _make(project: FirmwareProject, goal: str, jobs: int | None, timeout: float,
          variables: Sequence[str] = ()) -> None:
    if shutil.which("make") is None:
        raise NsconvError("make not found")
    cmd = ["make", "-C", str(project.root), f"-j{jobs or os.cpu_count() or 1}", *variables, goal]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise NsconvError(f"make {goal} did not finish within {timeout:.0f} s",
                          project.root) from None
    if result.returncode == 0:
        return
    text = (result.stdout + result.stderr).strip()
    overflow = re.findall(r"region `(\w+)' overflowed by (\d+) bytes", text)
    if overflow and project.board is not None:
        what = "; ".join(f"region {r} overflowed by {int(n):,} bytes" for r, n in overflow)
        plan = project.board.plan
        raise NsconvError(f"the firmware does not fit board {project.board.name}: {what} "
                          f"(code: {plan.code.describe()}, constants: {plan.const.describe()}, "
                          f"RAM: {plan.ram.describe()})", project.root)
    raise NsconvError(f"make {goal} failed:\n" + text[-4000:], project.root)


def variant_elf(project: FirmwareProject, variant: str) -> Path:
    """The ELF of a build variant (see build)."""
    assert project.board is not None
    return project.elf.parent.with_name(f"{project.board.name}-{variant}") / project.elf.name


def build(project: FirmwareProject | Path, host: bool = False, jobs: int | None = None,
          timeout: float = BUILD_TIMEOUT_S, *, variant: str | None = None,
          cflags: Sequence[str] = ()) -> Path:
    """Build the project's ELF (or with host=True its host program); returns its path. The
    ELF is checked against the board profile (boards.Board.check_fit). A `variant` (ELF
    only) builds with the extra `cflags` into build/BOARD-VARIANT/, beside the default build
    (e.g. the bench's profiled build); run it with run(..., program=variant_elf(...))."""
    if isinstance(project, (str, Path)):
        project = load_project(project)
    if host:
        if shutil.which("gcc") is None:
            raise NsconvError("host compiler gcc not found")
        _make(project, "host", jobs, timeout)
        return project.host_exe
    if shutil.which("arm-none-eabi-gcc") is None:
        raise NsconvError("arm-none-eabi-gcc not found (Debian: apt-get install gcc-arm-none-eabi "
                          "libnewlib-arm-none-eabi)")
    if variant is None:
        if cflags:
            raise NsconvError("extra C flags need a build variant")
        _make(project, "all", jobs, timeout)
        elf = project.elf
    else:
        if not re.fullmatch(r"[A-Za-z0-9_]+", variant):
            raise NsconvError(f"bad build variant name {variant!r}")
        elf = variant_elf(project, variant)
        _make(project, "all", jobs, timeout,
              [f"ARM_BUILD=build/{elf.parent.name}", "EXTRA_CFLAGS=" + " ".join(cflags)])
    assert project.board is not None
    project.board.check_fit(measure_elf(elf, weights=project.const_bytes))
    return elf


def _stage_input(in_wav: Path, dest: Path, fe=frontend.DEFAULT) -> int:
    """Copies in_wav to dest as mono 16-bit PCM at the front end's rate (converted if needed,
    with the checks of nsconv.audio); returns its number of samples."""
    import soundfile as sf

    from nsconv.audio.wav import read_wav, write_wav

    x = read_wav(in_wav, fe)  # refuses other rates, channels, broken files with one line
    info = sf.info(str(in_wav))
    if info.format == "WAV" and info.subtype == "PCM_16":
        shutil.copyfile(in_wav, dest)
    else:
        write_wav(dest, x, fe.rate)
    return len(x)


def run(project: FirmwareProject | Path, in_wav: Path, out_wav: Path, *,
        exit_name: str | None = None, schedule: str | None = None, frames: int | None = None,
        host: bool = False, timeout: float | None = None,
        program: Path | None = None) -> FirmwareRun:
    """Stream in_wav through the built firmware (QEMU, or the host build with host=True) at
    one exit (default the last) or a cyclic schedule "name[:n],...", for all frames of the
    input or the first `frames`; writes out_wav (aligned with the input) and returns the
    per-frame counts, features and masks. `program`: another ELF of the project (a build
    variant, see build) instead of the default one."""
    if not isinstance(project, FirmwareProject):
        project = load_project(project)
    _check_schedule(project, exit_name, schedule)
    if frames is not None and frames < 1:
        raise NsconvError(f"frames must be at least 1, got {frames}")
    if program is None:
        program = project.host_exe if host else project.elf
    if not program.is_file():
        raise NsconvError("not built (run make, or nsconv.qemu.build)", program)
    out_wav = Path(out_wav)
    if not out_wav.parent.is_dir():
        raise NsconvError("output directory does not exist", out_wav.parent)

    with work_dir(program) as work:
        fe = project.frontend
        samples = _stage_input(Path(in_wav), work / "in.wav", fe)
        n_frames = frontend.num_frames(samples, fe) if frames is None else \
            min(frames, frontend.num_frames(samples, fe))
        args = ["in.wav", "out.wav"]
        args += ["--schedule", schedule] if schedule is not None else \
            ["--exit", exit_name if exit_name is not None else project.exits[-1].name]
        if frames is not None:
            args += ["--frames", str(frames)]
        args += ["--masks", "masks.s8", "--features", "feat.s8"]
        limit = timeout or QEMU_BASE_TIMEOUT_S + QEMU_TIMEOUT_PER_FRAME_S * n_frames
        result, seconds = run_program(project, program, work, args, host=host, limit=limit,
                                      frames=n_frames)
        unit, names, steps = parse_output(result.stdout)
        if len(steps) != n_frames:
            raise NsconvError(f"the firmware reported {len(steps)} frames, expected {n_frames}",
                              program)
        bins = fe.n_bins
        masks = np.fromfile(work / "masks.s8", dtype=np.int8).reshape(-1, bins)
        feats = np.fromfile(work / "feat.s8", dtype=np.int8).reshape(-1, bins)
        deliver(work / "out.wav", out_wav)
        return FirmwareRun(target="host" if host else project.target,
                           board="host" if host else project.board.name, unit=unit,
                           exit_names=names, steps=steps, out_wav=out_wav, masks=masks,
                           features=feats, seconds=seconds, stdout=result.stdout,
                           kernels_path=kernels[1] if (kernels := _KERNELS.search(result.stdout))
                           else "")


@contextmanager
def work_dir(program: Path, prefix: str = "run") -> Iterator[Path]:
    """A fresh scratch directory next to the program (QEMU runs there: the semihosting
    command line takes short relative names), removed afterwards."""
    work = program.parent / f"{prefix}-{os.getpid()}-{time.monotonic_ns()}"
    work.mkdir(parents=True)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def deliver(produced: Path, dest: Path) -> None:
    """Moves a file the firmware wrote to dest, atomically (no half-written output)."""
    tmp = dest.with_name(f".{dest.name}.part")
    shutil.move(produced, tmp)
    tmp.replace(dest)


def run_program(project, program: Path, work: Path, args: list[str], *, host: bool,
                limit: float, frames: int, icount: bool = True
                ) -> tuple[subprocess.CompletedProcess, float]:
    """Runs a project's program (nsNet2's or GTCRN's) in `work` with args: the host build
    directly, an ELF in QEMU on the project's board (with -icount unless icount=False; the
    semihosting command line at most SEMIHOST_CMDLINE_MAX characters), bounded by
    run_bounded."""
    if host:
        return run_bounded([str(program), *args], work, limit, "host build", program, frames)
    assert project.board is not None
    kernel = os.path.relpath(program, work)
    cmdline = " ".join([kernel, *args])
    if len(cmdline) > SEMIHOST_CMDLINE_MAX:
        raise NsconvError(f"firmware command line longer than {SEMIHOST_CMDLINE_MAX} "
                          f"characters: {cmdline}")
    cmd = project.board.qemu_command(kernel, " ".join(args), icount=icount)
    if shutil.which(cmd[0]) is None:
        raise NsconvError(f"{cmd[0]} not found (Debian: apt-get install qemu-system-arm)")
    where = f"{project.target} ({project.board.name})"
    return run_bounded(cmd, work, limit, where, program, frames)


def run_bounded(cmd: list[str], cwd: Path, limit: float, where: str, program: Path,
                frames: int) -> tuple[subprocess.CompletedProcess, float]:
    """Runs the firmware (QEMU or a host build) for at most `limit` seconds: a hang is an
    error naming the limit, a fault (boards/common/nsn_fault.c: exit status
    FAULT_EXIT_STATUS) an error quoting the fault registers it printed, any other non-zero
    status an error quoting the output. Returns the finished process and its wall time."""
    t0 = time.monotonic()
    try:
        result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=limit,
                                stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise NsconvError(f"the firmware did not finish within {limit:.0f} s ({frames} frames) "
                          f"on {where}: it hangs or is far too slow; the QEMU process was "
                          "killed", program) from None
    seconds = time.monotonic() - t0
    text = (result.stdout + result.stderr).strip()
    if result.returncode == FAULT_EXIT_STATUS and "***" in text:
        fault = text[text.rindex("***"):]
        raise NsconvError(f"the firmware crashed on {where}:\n{fault[-2000:]}", program)
    if result.returncode != 0:
        raise NsconvError(f"the firmware failed on {where} (status {result.returncode}):\n"
                          + (text[-2000:] or "(no message)"), program)
    return result, seconds


def build_runner(project: FirmwareProject, debug: bool = False, jobs: int | None = None,
                 timeout: float = BUILD_TIMEOUT_S) -> Path:
    """The project's frame runner for `nsconv verify --target` (`make verify`): the model and
    kernel objects of the shipped ELF, with the same flags, and the runner as main. debug:
    the same with -DNSN_DEBUG_TENSORS (every tensor of one frame dumped), in its own build
    directory."""
    if shutil.which("arm-none-eabi-gcc") is None:
        raise NsconvError("arm-none-eabi-gcc not found (Debian: apt-get install gcc-arm-none-eabi "
                          "libnewlib-arm-none-eabi)")
    if not debug:
        _make(project, "verify", jobs, timeout)
        return project.elf.with_name("nsn_verify.elf")
    elf = variant_elf(project, "debug").with_name("nsn_verify.elf")
    _make(project, "verify", jobs, timeout,
          [f"ARM_BUILD=build/{elf.parent.name}", "EXTRA_CFLAGS=-DNSN_DEBUG_TENSORS"])
    return elf


@dataclass(frozen=True)
class FrameRun:
    masks: np.ndarray  # int8 (frames, bins)
    states: np.ndarray  # int8 (frames, state bytes)
    tensors: dict[int, np.ndarray]  # the dumped frame's tensors (debug runner)
    kernels_path: str  # as the running binary reports it
    seconds: float  # wall-clock time in QEMU


def run_frames(project: FirmwareProject, runner: Path, features: np.ndarray,
               exits: np.ndarray, resets: np.ndarray, dump_frame: int | None = None,
               timeout: float | None = None) -> FrameRun:
    """Streams int8 feature frames (exit id and reset flag per frame) through the frame
    runner in QEMU (no -icount: faster; file I/O over semihosting, NSNI in, NSNO out, see
    compiler/templates/nsn_host_main.c.j2), bounded (run_bounded)."""
    from nsconv.target import hostbuild

    assert project.board is not None
    if not runner.is_file():
        raise NsconvError("frame runner not built", runner)
    with work_dir(runner, "verify") as work:
        hostbuild.write_frames(work / "in.bin", features, exits, resets)
        args = ["in.bin", "out.bin"] + ([str(dump_frame), "dump.bin"] if dump_frame is not None
                                        else [])
        limit = timeout or QEMU_BASE_TIMEOUT_S + QEMU_TIMEOUT_PER_FRAME_S * len(features)
        result, seconds = run_program(project, runner, work, args, host=False, limit=limit,
                                      frames=len(features), icount=False)
        masks, states, _ = hostbuild.read_output(work / "out.bin")
        if len(masks) != len(features):
            raise NsconvError(f"the frame runner wrote {len(masks)} frames, expected "
                              f"{len(features)}", runner)
        tensors = hostbuild.read_dump(work / "dump.bin") if dump_frame is not None else {}
        return FrameRun(masks, states, tensors, hostbuild.kernels_path(result.stdout), seconds)


def default_target(out_dir: Path) -> str:
    """The core whose firmware OUT holds, if it holds exactly one; DEFAULT_CORE if none."""
    exported = exported_cores(out_dir)
    if len(exported) > 1:
        raise NsconvError(f"firmware for {', '.join(exported)} exported: choose a target",
                          out_dir)
    return exported[0] if exported else DEFAULT_CORE


def run_on_target(out_dir: Path, in_wav: Path, out_wav: Path, exit_name: str | None = None,
                  target: str | None = None, *, schedule: str | None = None,
                  frames: int | None = None, command_line: str = "", log=None) -> FirmwareRun:
    """`nsconv run`: the firmware for target (default: see default_target) from OUT, exported
    again if stale, or, if OUT holds none for that core, exported into a temporary directory
    (never into OUT); build it, stream in_wav through it under QEMU at exit_name (default the
    manifest's default exit, the deepest) or a cyclic schedule "name[:n],...", for all frames
    or the first `frames`, and write out_wav. The returned run has the per-frame counts
    (`steps`, `table()`) and the firmware's own output (`stdout`: a line per network step)."""
    say = log or (lambda msg: None)
    if target is None:
        target = default_target(out_dir)
    with tempfile.TemporaryDirectory(prefix="nsconv-run-") as scratch:
        project = ensure_exported(out_dir, target, command_line=command_line, log=say,
                                  scratch=Path(scratch))
        _check_schedule(project, exit_name, schedule)
        if exit_name is None and schedule is None:  # the manifest's default exit (deepest)
            exit_name = Manifest.load(out_dir).default.name
        say(f"building {project.elf}")
        build(project)
        say(f"running on {project.target} ({project.board.name}) in QEMU")
        return run(project, in_wav, out_wav, exit_name=exit_name, schedule=schedule,
                   frames=frames)
