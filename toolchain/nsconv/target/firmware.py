# SPDX-License-Identifier: Apache-2.0
"""`nsconv export`: a self-contained firmware project for one target (stage "export").

For a Cortex-M target the project, OUT/firmware/<target>/, holds everything `make` needs:

    Makefile            (target/templates/Makefile.j2)   make, make run, make host, make size
    README.md           (target/templates/README.md.j2)   what is where, exits, how to run
    PORTING.md          docs/porting.md
    export.json         what was exported from what (read by nsconv run / bench)
    verify/             nsn_host_main.c: the frame runner of `make verify` (nsconv verify --target)
    model/              the generated network (nsconv.codegen): nsn_model.[ch], nsn_weights.[ch]
    app/                nsn_stream.[ch] (board-independent streaming API) with nsn_app_util.h,
                        nsn_wav.[ch],
                        nsn_app_main.c (the wav-streaming firmware main)
    frontend/           the C audio front end; nsn_frontend_config.h and nsn_frontend_tables.c
                        generated for the model's front end (firmware/frontend/gen_tables.py)
    kernels/            the int8 kernel library
    boards/common/, boards/<board>/, boards/host/   start-up, port layer, linker script
    mk/                 common.mk, arm.mk, host.mk: the flags every nsconv build uses
    audio/input.wav     a real noisy recording, the default input of `make run`

Everything but model/, the two generated front-end files, Makefile, README.md and
export.json (and audio/input.wav, resampled when the model's rate is not 16 kHz) is a copy
of firmware/ in this repository, so the project builds the same bits as the tests.
`--target host` keeps what the code generator has always written: the network's C in OUT/c.

Before anything is written, the model is checked against the target board's memory (board
profile in nsconv.boards): constants that cannot fit are refused with one sentence naming the
board, the region and the sizes; the exact check runs again on the linked ELF (nsconv.qemu).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jinja2

from nsconv import __version__
from nsconv.audio.spec import DEFAULT as DEFAULT_FRONTEND
from nsconv.audio.spec import FrontendSpec
from nsconv.errors import NsconvError
from nsconv.resources import CALIB_DIR, CODEGEN_TEMPLATE_DIR, FIRMWARE_DIR, PACKAGE_DIR, PORTING_DOC
from nsconv.resources import FIRMWARE_TEMPLATE_DIR as TEMPLATE_DIR
from nsconv.target.boards import BOARDS, Board, ImageSize, board, placement

DEFAULT_INPUT = CALIB_DIR / "0015_noisy.wav"
EXPORT_FORMAT = "nsconv-firmware-1"
EXPORT_FILE = "export.json"
HOST = "host"

# Target (core) -> the QEMU board that emulates it (firmware/boards/<board>), from the board
# profiles: the one list of cores (the CLI's --target / --core choices come from here).
TARGETS: dict[str, str] = {b.core: b.name for b in BOARDS}
# The core `nsconv run` uses when OUT holds no firmware export and none is named.
DEFAULT_CORE = "cortex-m55"
APP_NAME = "nsn_app"
# nsn_stream_t holds the front end's state (about 6.5 KB by default) besides the network's
# arena and states; a bound for the RAM estimate made before anything is compiled.
FRONTEND_STATE_BYTES = 8 * 1024
# GTCRN's front end: firmware/frontend/nsn_gtcrn_frontend.c and nsn_rfft.c, plus the two
# generated tables (write_gtcrn_frontend); build them with NSN_GTCRN_FRONTEND_CFLAGS (mk/common.mk).
# An nsNet2 export copies only nsn_frontend* and nsn_rfft*; a GTCRN project also needs
# GTCRN_FRONTEND_FILES from firmware/frontend.
GTCRN_FRONTEND_SRCS = ("nsn_gtcrn_frontend.c", "nsn_rfft.c", "nsn_frontend_tables.c",
                       "nsn_gtcrn_tables.c")
GTCRN_FRONTEND_FILES = ("nsn_gtcrn_frontend.c", "nsn_gtcrn_frontend.h", "nsn_gtcrn_tables.h")


def gtcrn_frontend_state_bytes(fe) -> int:
    """sizeof(nsn_gtcrn_frontend_state) (nsn_gtcrn_frontend.h) for a GtcrnFrontendSpec: two
    32-bit counters, frame and overlap floats, spectrum and FFT scratch complex floats."""
    st = fe.stft
    return 8 + 4 * (st.n_fft + st.hop) + 8 * (st.n_bins + st.n_fft // 2)


def frontend_state_bytes(spec) -> int:
    """A bound on sizeof(nsn_frontend_state) (see nsn_frontend.h) for a front end."""
    floats = 2 * spec.win + spec.tail + spec.n_fft + 3 * spec.n_bins + spec.n_fft
    return max(FRONTEND_STATE_BYTES, 4 * floats + 1024)


def _gen_tables():
    """The generator firmware/frontend/gen_tables.py (Jinja2 templates beside it)."""
    import importlib.util

    path = FIRMWARE_DIR / "frontend" / "gen_tables.py"
    module_spec = importlib.util.spec_from_file_location("nsconv_frontend_gen_tables", path)
    gen = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(gen)
    return gen


def write_frontend(spec, directory: Path) -> list[Path]:
    """Writes nsn_frontend_config.h and nsn_frontend_tables.c for `spec` into directory."""
    return _gen_tables().write(spec, Path(directory))


def write_gtcrn_frontend(fe, directory: Path, source: str = "the model") -> list[Path]:
    """Writes GTCRN's front end tables for a GtcrnFrontendSpec (audio/gtcrn_frontend.py) into
    directory: the STFT's nsn_frontend_config.h and nsn_frontend_tables.c, and
    nsn_gtcrn_config.h and nsn_gtcrn_tables.c (ERB synthesis band matrix, synthesis window).
    The sources to compile are GTCRN_FRONTEND_SRCS (the generated ones from directory)."""
    return _gen_tables().write_gtcrn(fe, Path(directory), source)


def check_frontend_for_app(spec) -> None:
    """nsn_app's output alignment needs win = 2 hop and the first frame dropped."""
    if spec.tail != spec.hop or not spec.drop_first:
        raise NsconvError(f"the firmware app streams front ends with win = 2 hop and the first "
                          f"frame dropped; this model's is win {spec.win}, hop {spec.hop}, "
                          f"drop_first {str(spec.drop_first).lower()}")


@dataclass(frozen=True)
class ExitInfo:
    index: int
    name: str
    after: str
    macs_per_frame: int  # analytic: FULLY_CONNECTED in x out of the exit's own model
    const_bytes: int  # weights and biases this exit reads


@dataclass(frozen=True)
class FirmwareProject:
    """An exported project (read back from its export.json)."""

    root: Path
    target: str  # "cortex-m4", ... or "host"
    board: Board | None  # None for host
    exits: tuple[ExitInfo, ...]
    const_bytes: int  # all network constants (shared ones once)
    arena_bytes: int
    state_bytes: int
    fingerprint: str
    source_model: str
    frontend: FrontendSpec = DEFAULT_FRONTEND  # the model's front end (export.json "frontend")

    @property
    def elf(self) -> Path:
        assert self.board is not None
        return self.root / "build" / self.board.name / f"{APP_NAME}.elf"

    @property
    def host_exe(self) -> Path:
        return self.root / "build" / "host" / APP_NAME

    @property
    def default_input(self) -> Path:
        return self.root / "audio" / "input.wav"

    def exit(self, name: str) -> ExitInfo:
        for e in self.exits:
            if e.name == name:
                return e
        raise NsconvError(f"no exit named {name!r} (exits: "
                          + ", ".join(e.name for e in self.exits) + ")", self.root)


def resolve_target(target: str) -> tuple[str, Board | None]:
    """'cortex-m4' (or its board name 'mps2-an386') -> ('cortex-m4', Board); 'host' -> None."""
    if target == HOST:
        return HOST, None
    for core, board_name in TARGETS.items():
        if target in (core, board_name):
            return core, board(board_name)
    known = ", ".join([*TARGETS, HOST])
    raise NsconvError(f"unknown target {target!r} (choose from {known})")


def project_dir(out_dir: Path, target: str) -> Path:
    core, b = resolve_target(target)
    return Path(out_dir) / "c" if b is None else Path(out_dir) / "firmware" / core


def exported_cores(out_dir: Path) -> list[str]:
    """The cores OUT holds a firmware export for (OUT/firmware/<core>/export.json)."""
    return [core for core in TARGETS
            if (Path(out_dir) / "firmware" / core / EXPORT_FILE).is_file()]


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                              undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)


def _firmware_files(b: Board) -> list[tuple[Path, str]]:
    """(source file, path in the project) of every copied firmware file."""
    pairs: list[tuple[Path, str]] = []

    def add(directory: str, patterns: tuple[str, ...], recursive: bool = False) -> None:
        src = FIRMWARE_DIR / directory
        found = set()
        for pattern in patterns:
            found.update(src.rglob(pattern) if recursive else src.glob(pattern))
        if not found:
            raise NsconvError("firmware sources missing", src)
        for p in sorted(found):
            if p.is_file():
                pairs.append((p, f"{directory}/{p.relative_to(src).as_posix()}"))

    add("mk", ("common.mk", "arm.mk", "host.mk"))
    add("boards/common", ("*.c", "*.h", "*.ld"))
    add(f"boards/{b.name}", ("*",))
    add("boards/host", ("*.c", "*.h"))
    add("frontend", ("nsn_frontend*.[ch]", "nsn_rfft.[ch]"))  # nsNet2's (not nsn_gtcrn_*)
    add("kernels/include", ("*.h",), recursive=True)
    add("kernels/src", ("*.c", "*.h"), recursive=True)
    add("app", ("*.c", "*.h"))
    pairs.append((FIRMWARE_DIR / "boards" / "README.md", "boards/README.md"))
    return pairs


def _sha256_files(paths: list[Path], h=None):
    h = h or hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0")
        h.update(p.read_bytes())
    return h


def fingerprint(out_dir: Path, target: str) -> str:
    """Identifies everything an export is made of: the converted model (manifest and TFLite
    files), the nsconv sources and templates that generate the C, and the copied firmware.
    A project with a different fingerprint is stale."""
    from nsconv.quant.manifest import Manifest

    out_dir = Path(out_dir)
    core, b = resolve_target(target)
    manifest = Manifest.load(out_dir)
    h = hashlib.sha256(f"{EXPORT_FORMAT} {__version__} {core}".encode())
    # the manifest without the source model's path: the same model anywhere is the same export
    described = manifest.to_json()
    described["source_model"]["path"] = Path(manifest.source_path).name
    h.update(json.dumps(described, sort_keys=True).encode() + b"\0")
    inputs = [out_dir / e.tflite for e in manifest.exits]
    inputs += sorted(PACKAGE_DIR.rglob("*.py"))
    inputs += sorted(TEMPLATE_DIR.rglob("*.j2")) + sorted(CODEGEN_TEMPLATE_DIR.rglob("*.j2"))
    inputs += sorted((FIRMWARE_DIR / "frontend").glob("*.j2"))  # the generated front end
    if b is not None:
        inputs += [src for src, _ in _firmware_files(b)] + [PORTING_DOC]
    return _sha256_files(inputs, h).hexdigest()


def load_project(root: Path) -> FirmwareProject:
    """The project exported into root (its export.json)."""
    root = Path(root)
    path = root / EXPORT_FILE
    if not path.is_file():
        raise NsconvError("no export.json: not a project written by nsconv export", root)
    try:
        d = json.loads(path.read_text())
        if d.get("format") != EXPORT_FORMAT:
            raise NsconvError(f"unknown export format {d.get('format')!r}", path)
        target, b = resolve_target(d["target"])
        if "board" in d and b is not None and d["board"] != b.name:
            b = board(d["board"])  # the large-memory variant chosen at export (placement)
        return FirmwareProject(
            root=root, target=target, board=b,
            exits=tuple(ExitInfo(int(e["index"]), e["name"], e["after"],
                                 int(e["macs_per_frame"]), int(e["const_bytes"]))
                        for e in d["exits"]),
            const_bytes=int(d["const_bytes"]), arena_bytes=int(d["arena_bytes"]),
            state_bytes=int(d["state_bytes"]), fingerprint=d["fingerprint"],
            source_model=d["source_model"],
            frontend=(FrontendSpec.from_json(d["frontend"], path) if "frontend" in d
                      else DEFAULT_FRONTEND))
    except NsconvError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise NsconvError(f"malformed export.json ({type(exc).__name__}: {exc})", path) from None


def check_model_fits(b: Board, const_bytes: int, ram_bytes: int) -> None:
    """Refuses a model whose constants (or arena and states) alone overflow the board's
    memory, before anything is compiled; the linked ELF is checked exactly later."""
    problems = b.fit_problems(ImageSize(code=0, const=const_bytes, ram=ram_bytes,
                                        weights=const_bytes))
    if problems:
        raise NsconvError("the model does not fit: " + "; ".join(problems)
                          + f" (board profile {b.name}: {b.description})")


def export_firmware(out_dir: Path, target: str, command_line: str = "",
                    board_profile: Board | None = None, dest: Path | None = None
                    ) -> FirmwareProject:
    """Export the converted model in out_dir for `target` ("cortex-m4", "cortex-m7",
    "cortex-m55", or "host"). Cortex-M: writes OUT/firmware/<target>/ (or `dest`; replaced as
    a whole, atomically) and returns it; host: generates OUT/c as the code generator always
    has. command_line: what the generated files record as their origin; it must hold no
    paths (see nsconv.compiler.codegen.generate), so exports are the same in any folder.

    board_profile overrides the memory profile used for the fit check (e.g. a smaller real
    board); the project is still built for the target's QEMU board."""
    from nsconv.compiler.codegen import generate
    from nsconv.quant.manifest import Manifest
    from nsconv.target.hostbuild import write_host_main

    out_dir = Path(out_dir)
    core, b = resolve_target(target)
    manifest = Manifest.load(out_dir)
    if b is None:
        gen = generate(out_dir, command_line=command_line)
        return _project_from(out_dir / "c", HOST, None, gen, "", manifest.source_path)

    dest = Path(dest) if dest is not None else project_dir(out_dir, core)
    if dest.exists() and any(dest.iterdir()) and not (dest / EXPORT_FILE).is_file():
        raise NsconvError("exists, is not empty and is not an nsconv firmware export; refusing "
                          "to replace it", dest)
    fe = manifest.frontend
    check_frontend_for_app(fe)
    fp = fingerprint(out_dir, core)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".nsconv-tmp-{core}-{os.getpid()}-", dir=dest.parent))
    try:
        gen = generate(out_dir, tmp / "model", command_line=command_line)
        (tmp / "verify").mkdir()
        write_host_main(tmp / "verify")  # the frame runner of `make verify`
        ram = gen.plan.arena_bytes + gen.plan.state_bytes + frontend_state_bytes(fe)
        if board_profile is None:  # constants too large for code memory: the large memory
            b = placement(b, ImageSize(code=0, const=gen.merged.const_bytes, ram=ram,
                                       weights=gen.merged.const_bytes))
        check_model_fits(board_profile or b, gen.merged.const_bytes, ram)
        for src, rel in _firmware_files(b):
            target_path = tmp / rel
            target_path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target_path)
        write_frontend(fe, tmp / "frontend")
        (tmp / "audio").mkdir()
        _write_input(fe, tmp / "audio" / "input.wav")
        shutil.copyfile(PORTING_DOC, tmp / "PORTING.md")
        project = _project_from(tmp, core, b, gen, fp, manifest.source_path, fe)
        view = _view(project, gen, command_line)
        env = _environment()
        for name in ("Makefile", "README.md"):
            (tmp / name).write_text(env.get_template(f"{name}.j2").render(**view))
        (tmp / EXPORT_FILE).write_text(json.dumps(_export_json(project, command_line),
                                                  indent=2) + "\n")
        _replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_project(dest)


def _write_input(spec, dest: Path) -> None:
    """The default input recording, resampled to the model's rate when it is not 16 kHz."""
    if spec.rate == 16000:
        shutil.copyfile(DEFAULT_INPUT, dest)
        return
    from nsconv.audio.wav import read_wav_resampled, write_wav

    write_wav(dest, read_wav_resampled(DEFAULT_INPUT, spec.rate), spec.rate)


def _project_from(root: Path, target: str, b: Board | None, gen, fp: str,
                  source: str, fe: FrontendSpec = DEFAULT_FRONTEND) -> FirmwareProject:
    merged = gen.merged
    exits = tuple(ExitInfo(e.index, e.name, e.after, e.macs, sum(merged.exit_const_bytes(e.index)))
                  for e in merged.exits)
    return FirmwareProject(root=root, target=target, board=b, exits=exits,
                           const_bytes=merged.const_bytes, arena_bytes=gen.plan.arena_bytes,
                           state_bytes=gen.plan.state_bytes, fingerprint=fp,
                           source_model=Path(source).name, frontend=fe)


def _export_json(p: FirmwareProject, command_line: str) -> dict:
    assert p.board is not None
    return {
        "format": EXPORT_FORMAT,
        "nsconv_version": __version__,
        "command_line": command_line,
        "target": p.target,
        "board": p.board.name,
        "source_model": p.source_model,
        "frontend": p.frontend.to_json(),
        "fingerprint": p.fingerprint,
        "elf": p.elf.relative_to(p.root).as_posix(),
        "host_exe": p.host_exe.relative_to(p.root).as_posix(),
        "const_bytes": p.const_bytes,
        "arena_bytes": p.arena_bytes,
        "state_bytes": p.state_bytes,
        "exits": [{"index": e.index, "name": e.name, "after": e.after,
                   "macs_per_frame": e.macs_per_frame, "const_bytes": e.const_bytes}
                  for e in p.exits],
    }


def _view(p: FirmwareProject, gen, command_line: str) -> dict:
    b = p.board
    assert b is not None
    plan = b.plan
    return {
        "version": __version__,
        "command_line": command_line.replace("\n", " "),
        "target": p.target,
        "board": b.name,
        "board_description": b.description,
        "qemu_machine": b.qemu_machine,
        "qemu_cpu": b.qemu_cpu,
        "cpu_mhz": b.cpu_hz // 1_000_000,
        "source_model": p.source_model,
        "app": APP_NAME,
        "exits": [{"name": e.name, "index": e.index, "after": e.after,
                   "macs": f"{e.macs_per_frame:,}", "const_bytes": f"{e.const_bytes:,}"}
                  for e in p.exits],
        "exit_names": " ".join(e.name for e in p.exits),
        "default_exit": p.exits[-1].name,
        "schedule_example": ",".join(e.name for e in p.exits),
        "const_bytes": f"{p.const_bytes:,}",
        "arena_bytes": f"{p.arena_bytes:,}",
        "state_bytes": f"{p.state_bytes:,}",
        "code_region": plan.code.describe(),
        "const_region": plan.const.describe(),
        "ram_region": plan.ram.describe(),
        "input_name": DEFAULT_INPUT.name,
        "sample_rate": p.frontend.rate,
    }


def _replace_dir(new: Path, dest: Path) -> None:
    """dest becomes new in two renames; the old export is removed afterwards."""
    old = None
    if dest.exists():
        old = dest.parent / f".nsconv-old-{dest.name}-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
    os.replace(new, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def ensure_exported(out_dir: Path, target: str, command_line: str = "",
                    log=None, scratch: Path | None = None) -> FirmwareProject:
    """The project for target, exported again only if missing or stale (see fingerprint).
    With `scratch` (a directory the caller owns and removes), a core OUT holds no export for
    is exported into scratch/<core> instead of OUT: `nsconv run` and `bench` never add
    firmware to OUT that the user did not export."""
    core, b = resolve_target(target)
    if b is None:
        raise NsconvError("the host target has no firmware project (its export is OUT/c)")
    dest = project_dir(out_dir, core)
    if scratch is not None and not (dest / EXPORT_FILE).is_file():
        from nsconv.quant.manifest import Manifest

        Manifest.load(out_dir)  # refuses a folder that is no nsconv output before any log
        if log:
            log(f"{core}: no firmware exported in {out_dir}; building it in a temporary "
                "directory")
        return export_firmware(out_dir, core, command_line=command_line,
                               dest=Path(scratch) / core)
    if (dest / EXPORT_FILE).is_file():
        try:
            project = load_project(dest)
        except NsconvError:
            project = None
        if project is not None and project.fingerprint == fingerprint(out_dir, core):
            return project
        command_line = command_line or _recorded_command_line(dest)
    if log:
        log(f"exporting {core} firmware to {dest}")
    return export_firmware(out_dir, core, command_line=command_line)


def _recorded_command_line(project_root: Path) -> str:
    """The command line a (stale) export recorded, kept when it is exported again."""
    try:
        return str(json.loads((project_root / EXPORT_FILE).read_text()).get("command_line", ""))
    except (OSError, ValueError, AttributeError):
        return ""
