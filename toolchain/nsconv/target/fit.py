# SPDX-License-Identifier: Apache-2.0
"""`nsconv fit`: will a model's exits fit a real part (target/parts.py)? Measured, not guessed.

An early exit is a smaller model: exit k needs the backbone up to it and its head. For each
exit k, fit exports the model with exits 1..k kept (compiler/graph_merge.keep_exits: the
constants and ops only deeper exits use are dropped) for the part's core, and measures that
export with `nsconv bench` (target/bench.py: build, QEMU -icount run, link map):

    flash_bytes  code + constants of the network and the front end as linked (bench
                 flash_bytes), against the part's internal flash, or its external flash
                 window for parts that execute in place from external flash
    ram_bytes    arena + GRU states + kernel scratch + peak stack of a step + the front
                 end's static state (bench ram_with_frontend_bytes = ram_bytes +
                 frontend_state_bytes), against the part's SRAM
    mhz_needed   (network + front end instructions per frame) x frames per second / 1e6 at
                 one instruction per cycle (bench mhz_for_real_time_estimate: an ESTIMATE),
                 against the part's maximum clock

Each prefix export and its bench report are kept in OUT/<core>/upto-<exit>/ and reused while
the export's fingerprint is unchanged, so a second fit of the same model is fast;
`nsconv bench OUT/<core>/upto-<exit> --core <core> --exit <exit> --frames N` measures the
same figures again.
"""

from __future__ import annotations

import fcntl
import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from nsconv.errors import NsconvError
from nsconv.target.parts import Part

DEFAULT_FRAMES = 20
BENCH_FILE = "bench.json"
RECORD_VERSION = "r2"  # bench records with frontend_state_bytes


@dataclass(frozen=True)
class ExitFit:
    exit: str
    kept_exits: tuple[str, ...]  # the exits of the export measured for this exit
    export_dir: str
    flash_bytes: int
    code_bytes: int
    constants_bytes: int
    ram_bytes: int  # network (arena, states, scratch, step stack) + front end state
    network_ram_bytes: int
    frontend_state_bytes: int
    instructions_per_frame: float  # network + front end
    mhz_needed: float
    fits_flash: bool
    fits_ram: bool
    fits_mhz: bool

    @property
    def fits(self) -> bool:
        return self.fits_flash and self.fits_ram and self.fits_mhz

    def to_json(self) -> dict:
        return {**asdict(self), "kept_exits": list(self.kept_exits), "fits": self.fits}


@dataclass(frozen=True)
class FitReport:
    model: str
    part: Part
    frames: int
    exits: tuple[ExitFit, ...]

    @property
    def deepest_fitting(self) -> ExitFit | None:
        fitting = [e for e in self.exits if e.fits]
        return fitting[-1] if fitting else None

    def to_json(self) -> dict:
        p = self.part
        best = self.deepest_fitting
        return {
            "tool": "nsconv", "model": self.model,
            "part": {"name": p.name, "title": p.title, "core": p.core, "max_mhz": p.max_mhz,
                     "flash_bytes": p.flash_bytes, "flash_where": p.flash_where,
                     "internal_flash_bytes": p.internal_flash_bytes,
                     "external_flash_bytes": p.external_flash_bytes,
                     "sram_bytes": p.sram_bytes, "source": p.source, "note": p.note},
            "frames_measured_per_exit": self.frames,
            "method": "each exit measured by nsconv bench on an export keeping exits up to it; "
                      "mhz_needed is an estimate at one instruction per cycle",
            "exits": [e.to_json() for e in self.exits],
            "deepest_fitting_exit": best.exit if best else None,
        }

    def table(self) -> str:
        p = self.part
        lines = [f"{p.title} ({p.name}): {p.core}, {p.max_mhz} MHz, "
                 f"{_kb(p.flash_bytes)} {p.flash_where}, {_kb(p.sram_bytes)} SRAM"]
        head = (f"{'exit':<8} {'kept exits':<22} {'flash':>12} {'RAM':>10} {'instr/frame':>12} "
                f"{'MHz needed':>10}  fits")
        lines += [head, "-" * len(head)]
        for e in self.exits:
            why = [w for w, ok in (("flash", e.fits_flash), ("RAM", e.fits_ram),
                                   ("clock", e.fits_mhz)) if not ok]
            verdict = "yes" if e.fits else "no (" + ", ".join(why) + ")"
            lines.append(f"{e.exit:<8} {','.join(e.kept_exits):<22} {e.flash_bytes:>12,} "
                         f"{e.ram_bytes:>10,} {e.instructions_per_frame:>12,.0f} "
                         f"{e.mhz_needed:>10.1f}  {verdict}")
        best = self.deepest_fitting
        lines.append(f"deepest exit that fits: {best.exit}" if best else
                     "no exit fits this part")
        lines.append("flash = code + constants of network and front end as linked; RAM = "
                     "arena + states + scratch + peak stack of a step + front-end state; "
                     "MHz = instructions per frame x "
                     f"frames/s (an estimate at 1 instruction/cycle); measured by nsconv bench, "
                     f"{self.frames} frames per exit")
        if p.note:
            lines.append(f"note: {p.note}")
        return "\n".join(lines)


def default_work_dir(model: str) -> Path:
    """Where `nsconv fit MODEL` and `nsconv export MODEL --part` keep their measurements."""
    import re

    return Path("out") / "fit" / re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(model)).name)


def _kb(n: int) -> str:
    return f"{n / 1024:,.0f} KB" if n < 1024 * 1024 else f"{n / (1024 * 1024):g} MB"


def prefix_export(converted: Path, dest: Path, names: Sequence[str]) -> Path:
    """dest: a copy of the converted output directory reduced to the exits `names`; made
    again only if the kept exits' files changed."""
    from nsconv.compiler.graph_merge import keep_exits
    from nsconv.quant.manifest import Manifest

    src = Manifest.load(converted)
    wanted = [src.exit(n) for n in names]
    if (dest / "manifest.json").is_file():
        have = Manifest.load(dest)
        if [e.to_json() for e in have.exits] == [e.to_json() for e in wanted] and all(
                (dest / e.tflite).read_bytes() == (converted / e.tflite).read_bytes()
                for e in wanted if (dest / e.tflite).is_file()):
            return dest
        shutil.rmtree(dest)
    tmp = dest.with_name(f".{dest.name}.part")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(converted, tmp, ignore=shutil.ignore_patterns("firmware", "c", "fit"))
    keep_exits(tmp, list(names))
    tmp.rename(dest)
    return dest


def measure(export: Path, core: str, exit_name: str, frames: int, log=None) -> dict:
    """bench's record of exit_name on core for the export (cached in export/bench.json,
    reused while the firmware fingerprint and the frame count are unchanged)."""
    from nsconv.target import bench
    from nsconv.target.firmware import fingerprint

    cache = export / BENCH_FILE
    fp = fingerprint(export, core)
    key = f"{core} {exit_name} {frames} {RECORD_VERSION}"
    cached = json.loads(cache.read_text()) if cache.is_file() else {}
    if cached.get("fingerprint") == fp and key in cached.get("records", {}):
        return cached["records"][key]
    report = bench.bench(export, [core], [exit_name], frames, log=log)
    record = next(r for r in report["results"] if r["exit"] == exit_name)
    if cached.get("fingerprint") != fp:
        cached = {"fingerprint": fp, "records": {}}
    cached["records"][key] = record
    cache.write_text(json.dumps(cached, indent=2) + "\n")
    return record


def converted_model(model: str, work: Path, log=None) -> Path:
    """MODEL converted with the bundled calibration audio into work/converted (reused while
    the model file is unchanged); a directory holding a manifest.json is used as it is."""
    from nsconv.model import assets
    from nsconv.quant.convert import convert
    from nsconv.quant.manifest import Manifest

    if Path(model).is_dir():
        Manifest.load(Path(model))
        return Path(model)
    path = assets.resolve_model(model)
    dest = Path(work) / "converted"
    if (dest / "manifest.json").is_file():
        try:
            if Manifest.load(dest).source_sha256 == assets.sha256_file(path):
                return dest
        except NsconvError:
            pass
    convert(model, dest, log=log or (lambda *_: None))
    return dest


def fit(converted: Path, part: Part, work: Path, frames: int = DEFAULT_FRAMES,
        exits: Sequence[str] | None = None, model_name: str = "", log=None) -> FitReport:
    """Measure every exit (or the named ones) of the converted model against the part."""
    from nsconv.quant.manifest import Manifest

    if frames < 1:
        raise NsconvError(f"frames must be at least 1, got {frames}")
    manifest = Manifest.load(converted)
    names = [e.name for e in manifest.exits]
    for n in exits or ():
        manifest.exit(n)
    Path(work).mkdir(parents=True, exist_ok=True)
    with open(Path(work) / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one fit at a time per work directory
        results = _measure_exits(Path(converted), names, part, Path(work), frames, exits, log)
    return FitReport(model_name or manifest.source_path, part, frames, tuple(results))


def _measure_exits(converted: Path, names: list[str], part: Part, work: Path, frames: int,
                   exits: Sequence[str] | None, log) -> list[ExitFit]:
    results = []
    for k, name in enumerate(names):
        if exits and name not in exits:
            continue
        kept = tuple(names[: k + 1])
        export = prefix_export(Path(converted), Path(work) / part.core / f"upto-{name}", kept)
        if log:
            log(f"fit: {part.core}, exits {','.join(kept)}")
        r = measure(export, part.core, name, frames, log)
        instr = r["instructions_per_frame"] + r["frontend_instructions_per_frame"]
        mhz = r["mhz_for_real_time_estimate"]
        flash = r["flash_bytes"]
        results.append(ExitFit(
            exit=name, kept_exits=kept, export_dir=str(export), flash_bytes=flash,
            code_bytes=r["flash"]["code_bytes"], constants_bytes=r["flash"]["constants_bytes"],
            ram_bytes=r["ram_with_frontend_bytes"], network_ram_bytes=r["ram_bytes"],
            frontend_state_bytes=r["frontend_state_bytes"],
            instructions_per_frame=round(instr, 1), mhz_needed=mhz,
            fits_flash=flash <= part.flash_bytes,
            fits_ram=r["ram_with_frontend_bytes"] <= part.sram_bytes,
            fits_mhz=mhz <= part.max_mhz))
    return results


def deepest_fitting_exits(report: FitReport) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(kept, dropped) exit names for `export --part`: the exits up to the deepest that fits."""
    best = report.deepest_fitting
    all_names = [e.exit for e in report.exits]
    if best is None:
        raise NsconvError(f"no exit of {report.model} fits {report.part.name}: "
                          + "; ".join(f"{e.exit} needs {e.flash_bytes:,} B flash, "
                                      f"{e.ram_bytes:,} B RAM, {e.mhz_needed:.0f} MHz"
                                      for e in report.exits[:1])
                          + f" (part: {report.part.flash_bytes:,} B {report.part.flash_where}, "
                          f"{report.part.sram_bytes:,} B SRAM, {report.part.max_mhz} MHz)")
    kept = best.kept_exits
    return kept, tuple(n for n in all_names if n not in kept)
