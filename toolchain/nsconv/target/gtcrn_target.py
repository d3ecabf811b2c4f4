# SPDX-License-Identifier: Apache-2.0
"""GTCRN on the cores: its firmware project, `nsconv run` and `nsconv bench` of it.

`export_gtcrn_firmware(OUT, core)` writes OUT/firmware/<core>/ from a GTCRN export (OUT holds
gtcrn.json, the core's .tflite and the generated C in OUT/c, see compiler/gtcrn_export.py):

    Makefile            (target/templates/Makefile.gtcrn.j2) make, make run, make host, make size
    export.json         what was exported ("kind": "gtcrn"), read back by run and bench
    model/              OUT/c: the generated network nsn_model.[ch], nsn_weights.[ch]
    verify/             nsn_host_main.c: the frame runner of `make verify` (nsconv verify --target)
    app/                nsn_gtcrn_app.c (firmware/gtcrn_app: the wav-streaming main),
                        nsn_gtcrn_io.h (generated: the core's input and output quantization),
                        nsn_wav.[ch]
    frontend/           GTCRN's C front end (nsn_gtcrn_frontend.[ch], nsn_rfft.[ch]) and its
                        tables generated for the model (firmware.write_gtcrn_frontend)
    kernels/, boards/, mk/   copies of firmware/, as for nsNet2
    audio/input.wav     a real noisy recording, the default input of `make run`

The same sources build for the host (`make host`): `run` on a core and on the host must give
the same wav, byte for byte.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nsconv import __version__
from nsconv.compiler.gtcrn_export import FRONTEND_FILE
from nsconv.errors import NsconvError
from nsconv.resources import FIRMWARE_DIR
from nsconv.target import firmware as fw
from nsconv.target import qemu
from nsconv.target.boards import Board

KIND = "gtcrn"
APP = "nsn_gtcrn_app"
HOP = 256
SAMPLE_RATE = 16000
# Measured: about 0.02 s (M4) to 0.1 s (M55) of QEMU per hop; generous, only turns a hang
# into an error.
TIMEOUT_PER_HOP_S = 0.5

_HEADER = re.compile(r"^nsn_gtcrn_app: board (\S+), unit (\S+), hops (\d+)$", re.M)
_KERNELS = re.compile(r"^nsn_gtcrn_app: kernels (\S+)$", re.M)
_SUMMARY = re.compile(r"^summary hops (\d+) network mean (\d+) min (\d+) max (\d+) analyze (\d+) "
                      r"quantize (\d+) dequantize (\d+) synthesize (\d+)$", re.M)
_STACK = re.compile(r"^stack network peak (\d+)$", re.M)
_OPS = re.compile(r"^ops kind (\S+) mean (\d+)$", re.M)
_BYTES = re.compile(r"^nsn_gtcrn_app: (model|frontend) bytes (\d+)$", re.M)


@dataclass(frozen=True)
class GtcrnProject:
    """A GTCRN firmware project (read back from its export.json)."""

    root: Path
    target: str
    board: Board
    const_bytes: int
    arena_bytes: int
    state_bytes: int
    frontend_state_bytes: int
    source_model: str
    fingerprint: str

    @property
    def elf(self) -> Path:
        return self.root / "build" / self.board.name / f"{APP}.elf"

    @property
    def host_exe(self) -> Path:
        return self.root / "build" / "host" / APP


def is_gtcrn_project(root: Path) -> bool:
    try:
        return json.loads((Path(root) / fw.EXPORT_FILE).read_text()).get("kind") == KIND
    except (OSError, ValueError, AttributeError):
        return False


def load_frontend(out_dir: Path):
    from nsconv.audio.gtcrn_frontend import GtcrnFrontendSpec

    path = Path(out_dir) / FRONTEND_FILE
    try:
        return GtcrnFrontendSpec.from_json(json.loads(path.read_text()), path)
    except (OSError, ValueError) as exc:
        raise NsconvError(f"no GTCRN front end description ({exc}); export again", path) from None


def fingerprint(out_dir: Path, core: str) -> str:
    """The converted core, its C, the front end and every source the project is made of."""
    import hashlib

    from nsconv.resources import PACKAGE_DIR

    out_dir = Path(out_dir)
    _, b = fw.resolve_target(core)
    h = hashlib.sha256(f"{KIND} {__version__} {core}".encode())
    inputs = sorted((out_dir / "c").glob("*")) + [out_dir / FRONTEND_FILE]
    inputs += [p for p in sorted(out_dir.glob("*")) if p.suffix in (".tflite", ".json")
               and p.is_file()]
    inputs += sorted(PACKAGE_DIR.rglob("*.py")) + sorted(PACKAGE_DIR.rglob("*.j2"))
    inputs += [src for src, _ in _files(b)]
    return fw._sha256_files(inputs, h).hexdigest()


def _files(b: Board) -> list[tuple[Path, str]]:
    """(source, path in the project) of the copied firmware files."""
    pairs = [(src, rel) for src, rel in fw._firmware_files(b)
             if not rel.startswith(("app/", "frontend/"))]
    for name in ("nsn_wav.c", "nsn_wav.h", "nsn_app_util.h"):
        pairs.append((FIRMWARE_DIR / "app" / name, f"app/{name}"))
    pairs.append((FIRMWARE_DIR / "gtcrn_app" / f"{APP}.c", f"app/{APP}.c"))
    for name in (*fw.GTCRN_FRONTEND_FILES, "nsn_rfft.c", "nsn_rfft.h", "nsn_frontend_tables.h"):
        pairs.append((FIRMWARE_DIR / "frontend" / name, f"frontend/{name}"))
    return pairs


def _io_view(out_dir: Path) -> dict:
    """The quantization of the core's features and mask (nsn_gtcrn_io.h.j2)."""
    from nsconv.compiler.gtcrn_export import load_spec
    from nsconv.compiler.ndgraph import read_nd

    spec, tflite, _ = load_spec(out_dir)
    g = read_nd(tflite)
    feat = g.tensors[g.index_of(spec.features)]
    mask = g.tensors[g.index_of(spec.mask, outputs=True)]
    view = {"tflite": tflite.name, "version": __version__, "features_name": feat.name,
            "mask_name": mask.name}
    for key, t in (("in", feat), ("out", mask)):
        if t.dtype not in ("int8", "int16") or t.quant is None or t.quant.per_channel:
            raise NsconvError(f"{t.name}: the firmware app takes int8 or int16 per-tensor "
                              f"features and mask, not {t.dtype}", tflite)
        import numpy as np

        scale = float(np.float32(t.quant.scale))
        view |= {f"{key}_bits": 8 * np.dtype(t.dtype).itemsize, f"{key}_zp": t.quant.zero_point,
                 f"{key}_scale": f"{scale.hex()}f", f"{key}_scale_text": f"{scale!r}"}
    return view


def export_gtcrn_firmware(out_dir: Path, target: str, command_line: str = "",
                          dest: Path | None = None) -> GtcrnProject:
    """Writes OUT/firmware/<core>/ (or dest) for a GTCRN export in out_dir; atomically."""
    from nsconv.compiler.gtcrn_export import load_spec

    out_dir = Path(out_dir)
    core, b = fw.resolve_target(target)
    if b is None:
        raise NsconvError("the host target has no firmware project (its export is OUT/c)")
    _, _, meta = load_spec(out_dir)
    fe = load_frontend(out_dir)
    dest = Path(dest) if dest is not None else fw.project_dir(out_dir, core)
    if dest.exists() and any(dest.iterdir()) and not (dest / fw.EXPORT_FILE).is_file():
        raise NsconvError("exists, is not empty and is not an nsconv firmware export; refusing "
                          "to replace it", dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".nsconv-tmp-{core}-{os.getpid()}-", dir=dest.parent))
    try:
        _write_project(out_dir, tmp, core, b, fe, meta, command_line)
        fw._replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_gtcrn_project(dest)


def _write_project(out_dir: Path, tmp: Path, core: str, b: Board, fe, meta: dict,
                   command_line: str) -> None:
    from nsconv.compiler.ndgraph import read_nd
    from nsconv.target.hostbuild import write_host_main

    (tmp / "model").mkdir()
    for p in sorted((out_dir / "c").glob("*.[ch]")):
        shutil.copyfile(p, tmp / "model" / p.name)
    (tmp / "verify").mkdir()
    write_host_main(tmp / "verify")  # the frame runner of `make verify` (verify --target)
    for src, rel in _files(b):
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, tmp / rel)
    fw.write_gtcrn_frontend(fe, tmp / "frontend", source=meta.get("source_model", "the model"))
    env = fw._environment()
    io = _io_view(out_dir)
    (tmp / "app" / "nsn_gtcrn_io.h").write_text(env.get_template("nsn_gtcrn_io.h.j2").render(**io))
    g = read_nd(out_dir / meta["tflite"])
    const_bytes = sum(t.nbytes for t in g.tensors if t.data is not None)
    view = {"version": __version__, "command_line": command_line.replace("\n", " "),
            "target": core, "board": b.name, "board_description": b.description,
            "qemu_machine": b.qemu_machine, "qemu_cpu": b.qemu_cpu,
            "source_model": meta.get("source_model", "?"), "app": APP,
            "frontend_srcs": fw.GTCRN_FRONTEND_SRCS}
    (tmp / "Makefile").write_text(env.get_template("Makefile.gtcrn.j2").render(**view))
    (tmp / "audio").mkdir()
    shutil.copyfile(fw.DEFAULT_INPUT, tmp / "audio" / "input.wav")
    header = (out_dir / "c" / "nsn_model.h").read_text()
    sizes = {k: int(re.search(rf"#define NSN_{k.upper()} (\d+)", header)[1])
             for k in ("arena_bytes", "state_bytes")}
    record = {"format": fw.EXPORT_FORMAT, "kind": KIND, "nsconv_version": __version__,
              "command_line": command_line, "target": core, "board": b.name,
              "source_model": meta.get("source_model", "?"),
              "fingerprint": fingerprint(out_dir, core), "const_bytes": const_bytes, **sizes,
              "frontend_state_bytes": fw.gtcrn_frontend_state_bytes(fe),
              "elf": f"build/{b.name}/{APP}.elf", "host_exe": f"build/host/{APP}"}
    (tmp / fw.EXPORT_FILE).write_text(json.dumps(record, indent=2) + "\n")


def load_gtcrn_project(root: Path) -> GtcrnProject:
    path = Path(root) / fw.EXPORT_FILE
    try:
        d = json.loads(path.read_text())
        core, b = fw.resolve_target(d["target"])
        return GtcrnProject(Path(root), core, b, int(d["const_bytes"]), int(d["arena_bytes"]),
                            int(d["state_bytes"]), int(d["frontend_state_bytes"]),
                            d["source_model"], d["fingerprint"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NsconvError(f"not a GTCRN firmware export ({type(exc).__name__}: {exc})",
                          path) from None


def ensure_exported(out_dir: Path, core: str, scratch: Path | None = None,
                    log=None) -> GtcrnProject:
    """OUT's project for core, exported again when stale; into scratch/<core> when OUT
    holds none (nothing is added to OUT that the user did not export)."""
    say = log or (lambda msg: None)
    dest = fw.project_dir(out_dir, core)
    if (dest / fw.EXPORT_FILE).is_file():
        project = load_gtcrn_project(dest)
        if project.fingerprint == fingerprint(out_dir, core):
            return project
        say(f"exporting {core} firmware to {dest} (stale)")
        return export_gtcrn_firmware(out_dir, core)
    if scratch is None:
        return export_gtcrn_firmware(out_dir, core)
    say(f"{core}: no firmware exported in {out_dir}; building it in a temporary directory")
    return export_gtcrn_firmware(out_dir, core, dest=Path(scratch) / core)


def build(project: GtcrnProject, host: bool = False, variant: str | None = None,
          cflags: tuple[str, ...] = ()) -> Path:
    """make (the ELF, checked against the board), make host, or a variant with extra cflags
    into build/BOARD-VARIANT/ (qemu.build: the same Makefile goals as nsNet2's)."""
    return qemu.build(project, host=host, variant=variant, cflags=cflags)


@dataclass(frozen=True)
class GtcrnRun:
    target: str
    board: str
    unit: str
    hops: int
    kernels_path: str
    network: tuple[int, int, int]  # mean, min, max per hop
    frontend: dict[str, int]  # analyze, quantize, dequantize, synthesize: mean per hop
    stack_peak: int | None
    ops: dict[str, int]
    sizes: dict[str, int]  # model, frontend (sizeof), profiled builds only
    out_wav: Path
    seconds: float
    stdout: str

    def to_json(self) -> dict:
        return {"kind": KIND, "target": self.target, "board": self.board, "unit": self.unit,
                "hops": self.hops, "hop_ms": 1000 * HOP / SAMPLE_RATE,
                "kernels_path": self.kernels_path, "network_mean": self.network[0],
                "network_min": self.network[1], "network_max": self.network[2],
                "frontend": self.frontend, "frontend_mean": sum(self.frontend.values()),
                "out_wav": str(self.out_wav), "seconds": round(self.seconds, 2)}

    def table(self) -> str:
        fe = sum(self.frontend.values())
        return (f"{self.target} ({self.board}): GTCRN, {self.hops} hops of {HOP} samples, "
                f"{self.unit} per hop, {self.seconds:.1f} s, kernel path {self.kernels_path}\n"
                f"  network mean {self.network[0]:,} (min {self.network[1]:,}, max "
                f"{self.network[2]:,}), front end {fe:,} ("
                + ", ".join(f"{k} {v:,}" for k, v in self.frontend.items())
                + f")\n  wrote {self.out_wav}")


def parse(stdout: str, program: Path) -> dict:
    head, summ = _HEADER.search(stdout), _SUMMARY.search(stdout)
    if head is None or summ is None:
        raise NsconvError("the firmware printed no nsn_gtcrn_app header or summary", program)
    v = [int(x) for x in summ.groups()]
    kern = _KERNELS.search(stdout)
    stack = _STACK.search(stdout)
    return {"board": head[1], "unit": head[2], "hops": v[0], "network": (v[1], v[2], v[3]),
            "frontend": dict(zip(("analyze", "quantize", "dequantize", "synthesize"), v[4:], strict=True)),
            "kernels_path": kern[1] if kern else "", "stack_peak": int(stack[1]) if stack else None,
            "ops": {m[1]: int(m[2]) for m in _OPS.finditer(stdout)},
            "sizes": {m[1]: int(m[2]) for m in _BYTES.finditer(stdout)}}


def run(project: GtcrnProject, in_wav: Path, out_wav: Path, *, frames: int | None = None,
        host: bool = False, program: Path | None = None, quiet: bool = True) -> GtcrnRun:
    """Streams in_wav through the built firmware (QEMU, or the host build) into out_wav."""
    from nsconv.audio.gtcrn_frontend import STFT

    if frames is not None and frames < 1:
        raise NsconvError(f"frames must be at least 1, got {frames}")
    program = Path(program or (project.host_exe if host else project.elf)).resolve()
    if not program.is_file():
        raise NsconvError("not built", program)
    out_wav = Path(out_wav)
    if not out_wav.parent.is_dir():
        raise NsconvError("output directory does not exist", out_wav.parent)
    with qemu.work_dir(program) as work:
        samples = qemu._stage_input(Path(in_wav), work / "in.wav", STFT)
        hops = -(-samples // HOP) if frames is None else min(frames, -(-samples // HOP))
        args = ["in.wav", "out.wav"] + (["--frames", str(frames)] if frames else []) \
            + (["--quiet"] if quiet else [])
        limit = qemu.QEMU_BASE_TIMEOUT_S + TIMEOUT_PER_HOP_S * hops
        result, seconds = qemu.run_program(project, program, work, args, host=host,
                                           limit=limit, frames=hops)
        p = parse(result.stdout, program)
        qemu.deliver(work / "out.wav", out_wav)
        return GtcrnRun("host" if host else project.target, "host" if host else project.board.name,
                        p["unit"], p["hops"], p["kernels_path"], p["network"], p["frontend"],
                        p["stack_peak"], p["ops"], p["sizes"], out_wav, seconds, result.stdout)


def run_on_target(out_dir: Path, in_wav: Path, out_wav: Path, target: str | None = None,
                  frames: int | None = None, log=None) -> GtcrnRun:
    """`nsconv run` of a GTCRN export: build the core's firmware, stream in_wav in QEMU."""
    say = log or (lambda msg: None)
    target = target or qemu.default_target(out_dir)
    with tempfile.TemporaryDirectory(prefix="nsconv-run-") as scratch:
        project = ensure_exported(out_dir, target, Path(scratch), say)
        say(f"building {project.elf}")
        build(project)
        say(f"running on {project.target} ({project.board.name}) in QEMU")
        return run(project, in_wav, out_wav, frames=frames)


HOPS_PER_SECOND = SAMPLE_RATE / HOP  # 62.5
TARGET_M4_INSTRUCTIONS = 1_600_000  # issue 14: real time at 100 MHz, one instruction a cycle
BENCH_NOTE = ("instructions per 16 ms hop counted by SysTick under QEMU -icount (nsconv.bench's "
              "counter); network = nsn_model_step; front end = analyze + quantize + dequantize "
              "+ synthesize; instructions_by_op from a second build with -DNSN_PROFILE_OPS "
              "(hooks around every step; COPY = data movement; the hooks' own cost is in "
              "network_profiled minus the sum); ram_bytes = sizeof nsn_model_t (arena + states "
              "+ kernel scratch) + network stack peak + sizeof nsn_gtcrn_frontend_state; "
              "flash from the link map (bench.flash_regions): code + constants of network and "
              "front end; mhz_for_real_time_estimate = instructions per hop x 62.5 / 1e6 "
              "(an ESTIMATE at one instruction per cycle)")


def _bench_audio(dest: Path, hops: int) -> Path:
    """Real noisy speech (the bundled clips, concatenated) of at least `hops` hops."""
    import numpy as np

    from nsconv.audio.wav import read_wav, write_wav
    from nsconv.quant.quantize import calibration_clips

    parts, total = [], 0
    for clip in calibration_clips() * (1 + hops):
        if total >= hops * HOP:
            break
        x = read_wav(clip)
        parts.append(x)
        total += len(x)
    write_wav(dest, np.concatenate(parts)[: hops * HOP], SAMPLE_RATE)
    return dest


def steps_by_op(model_c: Path) -> dict[str, int]:
    """Generated steps per op kind, from the profiling hooks of nsn_model.c (one
    NSN_OP_BEGIN(kind id) per step; ids index nsn_op_kind_names)."""
    text = model_c.read_text()
    names = re.search(r"nsn_op_kind_names\[NSN_NUM_OP_KINDS\] = \{([^}]*)\}", text)
    if names is None:
        raise NsconvError("no op kind names (not a GTCRN nsn_model.c?)", model_c)
    kinds = re.findall(r'"(\w+)"', names[1])
    ids = [int(i) for i in re.findall(r"NSN_OP_BEGIN\((\d+)\);", text)]
    return {k: ids.count(i) for i, k in enumerate(kinds)}


def bench_core(out_dir: Path, core: str, hops: int, work: Path, say) -> dict:
    """One core: the firmware and its profiled build, run on `hops` hops of speech."""
    from nsconv.target.bench import PROFILE_CFLAGS, code_sizes, flash_regions

    project = ensure_exported(out_dir, core, work / "firmware", say)
    say(f"bench: building {core}")
    build(project)
    prof_elf = build(project, variant="prof", cflags=PROFILE_CFLAGS)
    audio = work / "bench.wav"
    if not audio.is_file():
        _bench_audio(audio, hops)
    say(f"bench: {core}, {hops} hops")
    r = run(project, audio, work / f"{core}.wav")
    if r.unit != "instructions":
        raise NsconvError(f"the firmware counted {r.unit}, not instructions", project.elf)
    say(f"bench: {core}, profiled run (op split, stack)")
    prof = run(project, audio, work / f"{core}-prof.wav", program=prof_elf)
    fe = sum(r.frontend.values())
    total = r.network[0] + fe
    ram = prof.sizes["model"] + (prof.stack_peak or 0) + prof.sizes["frontend"]
    return {"core": core, "board": project.board.name, "hops": r.hops,
            "kernels_path": r.kernels_path, "network_mean": r.network[0],
            "network_min": r.network[1], "network_max": r.network[2],
            "frontend": r.frontend, "frontend_mean": fe, "total_mean": total,
            "frontend_share": round(fe / total, 4),
            "mhz_for_real_time_estimate": round(total * HOPS_PER_SECOND / 1e6, 1),
            "meets_m4_target": total <= TARGET_M4_INSTRUCTIONS if core == "cortex-m4" else None,
            "network_profiled": prof.network[0],
            "instructions_by_op": dict(sorted(prof.ops.items(), key=lambda kv: -kv[1])),
            "steps_by_op": steps_by_op(project.root / "model" / "nsn_model.c"),
            "model_bytes": prof.sizes["model"], "arena_bytes": project.arena_bytes,
            "state_bytes": project.state_bytes, "stack_peak_bytes": prof.stack_peak,
            "frontend_state_bytes": prof.sizes["frontend"], "ram_bytes": ram,
            "flash": flash_regions(project.elf.with_suffix(".map"), project.board),
            "code": code_sizes(project.elf.with_suffix(".map")),
            "qemu_seconds": round(r.seconds, 2)}


def bench(out_dir: Path, cores: list[str] | None, hops: int = 100, log=None) -> dict:
    """`nsconv bench` of a GTCRN export: instructions per hop, RAM, flash per core."""
    say = log or (lambda msg: None)
    if hops < 1:
        raise NsconvError(f"frames must be at least 1, got {hops}")
    from nsconv.target.bench import _resolve_cores

    results = []
    with tempfile.TemporaryDirectory(prefix="nsconv-bench-") as tmp:
        for core in _resolve_cores(out_dir, cores):
            results.append(bench_core(out_dir, core, hops, Path(tmp), say))
    return {"tool": "nsconv", "version": __version__, "kind": KIND, "unit": "instructions",
            "hop_samples": HOP, "hop_ms": 1000 * HOP / SAMPLE_RATE,
            "target_m4_instructions_per_hop": TARGET_M4_INSTRUCTIONS, "note": BENCH_NOTE,
            "audio": "bundled noisy speech (nsconv/quant/data/calib)", "results": results}


def bench_table(report: dict) -> str:
    lines = [f"GTCRN: {report['unit']} per {report['hop_ms']:g} ms hop (QEMU -icount)"]
    for r in report["results"]:
        f = r["flash"]
        lines.append(
            f"{r['core']:<11} network {r['network_mean']:>10,} front end {r['frontend_mean']:>8,} "
            f"({100 * r['frontend_share']:.1f} %) total {r['total_mean']:>10,} "
            f"(~{r['mhz_for_real_time_estimate']} MHz est.), kernels {r['kernels_path']}")
        lines.append(f"{'':<11} RAM {r['ram_bytes']:,} B (model {r['model_bytes']:,} + stack "
                     f"{r['stack_peak_bytes']} + front end {r['frontend_state_bytes']:,}); "
                     f"flash {f['flash_bytes']:,} B (code {f['code_bytes']:,}, constants "
                     f"{f['constants_bytes']:,})")
        top = ", ".join(f"{k} {v:,}" for k, v in list(r["instructions_by_op"].items())[:6])
        lines.append(f"{'':<11} by op: {top}")
    return "\n".join(lines)
