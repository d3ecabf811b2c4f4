# SPDX-License-Identifier: Apache-2.0
"""Building and running the generated C on the host (gcc), for verification.

The runner (templates/nsn_host_main.c.j2) streams frames through nsn_model_step: it reads int8
feature frames with an exit id and a reset flag per frame, writes the int8 mask and the MACs
counted per frame, and in a debug build dumps every tensor written during one chosen frame.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nsconv import __version__
from nsconv.errors import NsconvError
from nsconv.resources import KERNEL_DIR

WARNINGS = ("-Wall", "-Wextra", "-Werror")
SANITIZE = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer")
HOST_VERSION = 1
FLAG_RESET = 1


@dataclass(frozen=True)
class HostProgram:
    exe: Path
    count_macs: bool
    debug_tensors: bool
    sanitize: bool


def kernel_sources() -> list[Path]:
    src = sorted((KERNEL_DIR / "src").glob("*.c"))
    if not src or not (KERNEL_DIR / "include" / "nsn_nnfunctions.h").is_file():
        raise NsconvError("kernel library not found (firmware/kernels)", KERNEL_DIR)
    return src


def write_host_main(dest: Path) -> Path:
    from nsconv.compiler.codegen import environment

    text = environment().get_template("nsn_host_main.c.j2").render(version=__version__)
    path = dest / "nsn_host_main.c"
    path.write_text(text)
    return path


def _run_cc(cmd: list[str], where: Path) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise NsconvError("host build failed:\n" + " ".join(cmd) + "\n"
                          + result.stderr.strip()[-4000:], where)


def build(c_dir: Path, build_dir: Path, *, sanitize: bool = False, count_macs: bool = False,
          debug_tensors: bool = False, opt: str = "-O2", cc: str = "gcc") -> HostProgram:
    """Compile the generated C in c_dir, the kernels and the host runner into build_dir.

    nsn_weights.c (data only, large for the full model) is compiled once per content and flag
    set and reused by the other variants built in the same directory."""
    if shutil.which(cc) is None:
        raise NsconvError(f"host compiler {cc!r} not found")
    c_dir = Path(c_dir)
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    main = write_host_main(build_dir)
    for p in (c_dir / "nsn_model.c", c_dir / "nsn_weights.c"):
        if not p.is_file():
            raise NsconvError("generated source missing (run the code generator first)", p)
    base = [cc, "-std=c99", opt, *WARNINGS, f"-I{c_dir}", f"-I{KERNEL_DIR / 'include'}"]
    if sanitize:
        base += list(SANITIZE)
    weights_src = c_dir / "nsn_weights.c"
    key = hashlib.sha256(weights_src.read_bytes() + " ".join(base).encode()).hexdigest()[:16]
    weights_obj = build_dir / f"nsn_weights_{key}.o"
    if not weights_obj.exists():
        tmp = weights_obj.with_suffix(".o.part")
        _run_cc(base + ["-c", str(weights_src), "-o", str(tmp)], c_dir)
        tmp.replace(weights_obj)
    name = "nsn_host" + ("_macs" if count_macs else "") + ("_debug" if debug_tensors else "") \
        + ("_asan" if sanitize else "")
    exe = build_dir / name
    cmd = list(base)
    if count_macs:
        cmd.append("-DNSN_COUNT_MACS")
    if debug_tensors:
        cmd.append("-DNSN_DEBUG_TENSORS")
    cmd += [str(p) for p in [c_dir / "nsn_model.c", *kernel_sources(), main]]
    cmd += [str(weights_obj), "-o", str(exe)]
    _run_cc(cmd, c_dir)
    return HostProgram(exe, count_macs, debug_tensors, sanitize)


@dataclass(frozen=True)
class HostRun:
    masks: np.ndarray  # int8 (frames, bins)
    states: np.ndarray  # int8 (frames, state bytes): all states after each frame
    macs: np.ndarray  # uint64 (frames,)
    tensors: dict[int, np.ndarray]  # value id -> int8 data, for the dumped frame
    kernels_path: str = ""  # the kernel path the program reports (nsn_kernels_path())


def write_frames(path: Path, features: np.ndarray, exits: np.ndarray,
                 resets: np.ndarray) -> None:
    features = np.ascontiguousarray(features, dtype=np.int8)
    n, f = features.shape
    rec = np.zeros((n, f + 2), dtype=np.uint8)
    rec[:, 0] = np.asarray(exits, dtype=np.uint8)
    rec[:, 1] = np.where(np.asarray(resets, dtype=bool), FLAG_RESET, 0)
    rec[:, 2:] = features.view(np.uint8)
    with open(path, "wb") as fh:
        fh.write(b"NSNI" + struct.pack("<III", HOST_VERSION, n, f))
        fh.write(rec.tobytes())


def read_output(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(masks, states, macs) of a runner output file."""
    data = Path(path).read_bytes()
    if data[:4] != b"NSNO":
        raise NsconvError("not an NSNO file", path)
    _, n, bins, sbytes = struct.unpack_from("<IIII", data, 4)
    rec = np.frombuffer(data, dtype=np.uint8, offset=20).reshape(n, bins + sbytes + 8)
    masks = rec[:, :bins].copy().view(np.int8)
    states = rec[:, bins : bins + sbytes].copy().view(np.int8)
    macs = rec[:, bins + sbytes :].copy().view("<u8").reshape(n)
    return masks, states, macs


def read_dump(path: Path) -> dict[int, np.ndarray]:
    data = Path(path).read_bytes()
    out: dict[int, np.ndarray] = {}
    pos = 0
    while pos < len(data):
        vid, size = struct.unpack_from("<iI", data, pos)
        pos += 8
        out[vid] = np.frombuffer(data, dtype=np.int8, count=size, offset=pos).copy()
        pos += size
    return out


def run(program: HostProgram, work_dir: Path, features: np.ndarray, exits: np.ndarray,
        resets: np.ndarray | None = None, dump_frame: int | None = None,
        tag: str = "run") -> HostRun:
    """Stream frames through the host program; optionally dump one frame's tensors."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    if resets is None:
        resets = np.zeros(len(features), dtype=bool)
    fin = work_dir / f"{tag}.in"
    fout = work_dir / f"{tag}.out"
    fdump = work_dir / f"{tag}.dump"
    write_frames(fin, features, exits, resets)
    cmd = [str(program.exe), str(fin), str(fout)]
    if dump_frame is not None:
        if not program.debug_tensors:
            raise ValueError("dumps need a program built with debug_tensors=True")
        cmd += [str(dump_frame), str(fdump)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise NsconvError(f"host program failed (status {result.returncode}):\n"
                          + (result.stderr.strip()[-4000:] or "(no message)"), program.exe)
    masks, states, macs = read_output(fout)
    tensors = read_dump(fdump) if dump_frame is not None else {}
    return HostRun(masks, states, macs, tensors, kernels_path(result.stdout))


def kernels_path(stdout: str) -> str:
    """The kernel path the runner printed ("nsn_runner: kernels PATH")."""
    m = re.search(r"^nsn_runner: kernels (\S+)$", stdout, re.M)
    if m is None:
        raise NsconvError("the frame runner did not report its kernel path")
    return m[1]
