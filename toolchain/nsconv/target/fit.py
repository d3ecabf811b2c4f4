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

Weight formats. When the all-int8 export of exits 1..k does not fit the part's flash (and
`weights="auto"`), the exit is tried with 4-bit layers: the flash left for the weights is the
part's flash minus what bench measured besides the weights (code, front end, op parameters),
int4-quant's `choose_formats` picks the layers to hold in int4 under that budget (the cheapest
quality cost per byte saved first), the model is converted with those formats and the export
is measured by bench again; if bench finds it still too large (the int4 kernel's code, say)
the budget shrinks by the excess and the choice is made again. The exit is reported in the
format it fits in (`weight_formats`: layer -> int8/int4 for every layer the export holds). An
exit that misses the part's RAM or clock in int8 is not tried in int4 (INT4_COST), except for
the exits `export --part P --exits ...` names (fit_kept).

Each export and its bench report are kept in OUT/<core>/<exits>[@<formats>]/, and each
conversion with int4 layers in OUT/formats/<key>/, and reused while unchanged, so a second fit
of the same model is fast; `nsconv bench OUT/<core>/<dir> --core <core> --exit <exit> --frames
N` measures the same figures again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nsconv.errors import NsconvError
from nsconv.target.parts import Part

DEFAULT_FRAMES = 20
BENCH_FILE = "bench.json"
RECORD_VERSION = "r2"  # bench records with frontend_state_bytes
WEIGHTS = ("int8", "auto")  # fit's weight formats: all int8, or int4 layers where needed
INT4_ATTEMPTS = 3  # choices of int4 layers tried per exit, each measured by bench
BUDGET_MARGIN = 1024  # bytes taken off the weights budget on top of a measured excess
# Why an exit that misses the RAM or the clock in int8 is not tried in int4 (by `fit`; `export
# --part --exits` tries it): the packed kernel costs more instructions per MAC than the int8
# one on every core (kernels/README.md, measured by make bench) and int4 leaves RAM as it is.
INT4_COST = "the s4 kernel takes more instructions per MAC than s8, RAM is unchanged"


@dataclass(frozen=True)
class ExitFit:
    exit: str
    kept_exits: tuple[str, ...]  # the exits of the export measured for this exit
    export_dir: str
    converted_dir: str  # the conversion the export keeps exits of (int8, or with int4 layers)
    flash_bytes: int
    code_bytes: int
    constants_bytes: int
    weights_bytes: int
    ram_bytes: int  # network (arena, states, scratch, step stack) + front end state
    network_ram_bytes: int
    frontend_state_bytes: int
    instructions_per_frame: float  # network + front end
    mhz_needed: float
    fits_flash: bool
    fits_ram: bool
    fits_mhz: bool
    # layer -> "int8"/"int4" for every layer the export holds
    weight_formats: dict = field(default_factory=dict)
    int8_flash_bytes: int | None = None  # the all-int8 export's, when int4 layers were tried
    note: str = ""  # why no int4 choice was tried or found

    @property
    def fits(self) -> bool:
        return self.fits_flash and self.fits_ram and self.fits_mhz

    @property
    def int4_layers(self) -> tuple[str, ...]:
        return tuple(k for k, v in self.weight_formats.items() if v == "int4")

    @property
    def format(self) -> str:
        return "int8 + int4 " + ",".join(self.int4_layers) if self.int4_layers else "int8"

    def to_json(self) -> dict:
        return {"exit": self.exit, "kept_exits": list(self.kept_exits), "fits": self.fits,
                "flash_bytes": self.flash_bytes, "ram_bytes": self.ram_bytes,
                "mhz_needed": self.mhz_needed, "weight_formats": dict(self.weight_formats),
                "int4_layers": list(self.int4_layers), "format": self.format,
                "fits_flash": self.fits_flash, "fits_ram": self.fits_ram,
                "fits_mhz": self.fits_mhz, "code_bytes": self.code_bytes,
                "constants_bytes": self.constants_bytes, "weights_bytes": self.weights_bytes,
                "network_ram_bytes": self.network_ram_bytes,
                "frontend_state_bytes": self.frontend_state_bytes,
                "instructions_per_frame": self.instructions_per_frame,
                "int8_flash_bytes": self.int8_flash_bytes, "note": self.note,
                "export_dir": self.export_dir, "converted_dir": self.converted_dir}


@dataclass(frozen=True)
class FitReport:
    model: str
    part: Part
    frames: int
    exits: tuple[ExitFit, ...]
    weights: str = "auto"

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
            "weights": self.weights,
            "method": "each exit measured by nsconv bench on an export keeping exits up to it, "
                      "all int8, or with int4 layers chosen under the flash left by the rest "
                      "when all int8 does not fit; mhz_needed is an estimate at one "
                      "instruction per cycle",
            "exits": [e.to_json() for e in self.exits],
            "deepest_fitting_exit": best.exit if best else None,
        }

    def table(self) -> str:
        p = self.part
        lines = [f"{p.title} ({p.name}): {p.core}, {p.max_mhz} MHz, "
                 f"{_kb(p.flash_bytes)} {p.flash_where}, {_kb(p.sram_bytes)} SRAM"]
        head = (f"{'exit':<6} {'kept exits':<20} {'weights':<26} {'flash':>10} {'RAM':>7} "
                f"{'instr/frame':>11} {'MHz':>6}  fits")
        lines += [head, "-" * len(head)]
        for e in self.exits:
            lines.append(f"{e.exit:<6} {','.join(e.kept_exits):<20} {e.format:<26} "
                         f"{e.flash_bytes:>10,} {e.ram_bytes:>7,} "
                         f"{e.instructions_per_frame:>11,.0f} {e.mhz_needed:>6.1f}  "
                         f"{_verdict(e)}")
            if e.int8_flash_bytes is not None or e.note:
                lines.append(f"{'':<6} " + (f"all int8: {e.int8_flash_bytes:,} B flash"
                                             if e.int8_flash_bytes is not None else "")
                             + ("; " if e.int8_flash_bytes is not None and e.note else "")
                             + e.note)
        best = self.deepest_fitting
        lines.append(f"deepest exit that fits: {best.exit} ({best.format})" if best else
                     "no exit fits this part")
        lines.append("flash = code + constants of network and front end as linked; RAM = "
                     "arena + states + scratch + peak stack of a step + front-end state; "
                     "MHz = instructions per frame x frames/s (an estimate at 1 "
                     f"instruction/cycle); measured by nsconv bench, {self.frames} frames per "
                     "exit")
        if p.note:
            lines.append(f"note: {p.note}")
        return "\n".join(lines)


def _verdict(e: ExitFit) -> str:
    why = [w for w, ok in (("flash", e.fits_flash), ("RAM", e.fits_ram),
                           ("clock", e.fits_mhz)) if not ok]
    return "yes" if e.fits else "no (" + ", ".join(why) + ")"


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


def source_file(manifest) -> Path:
    """The model file a conversion was made from: a built-in model or the recorded source
    file while its sha256 matches (so conversions share converted_dir's cache), else the
    conversion's own float model file (OUT/model.npz)."""
    from nsconv.model import assets

    candidates = [Path(manifest.source_path)]
    for name, where in assets.BUILTIN_MODELS.items():
        try:
            candidates.append(where(fetch=False) if name == assets.BASELINE_NAME else where())
        except NsconvError:
            continue
    for c in candidates:
        if c.is_file() and assets.sha256_file(c) == manifest.source_sha256:
            return c
    own = manifest.root / manifest.model_file
    if own.suffix != ".npz" or not own.is_file():
        raise NsconvError("the source model is not at hand and the output holds no nsconv "
                          "float model", manifest.root)
    return own


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


def formats_conversion(converted: Path, formats: dict[str, str], work: Path,
                       calib: Sequence[Path] | None = None, log=None,
                       rounding: str = "gptq") -> Path:
    """The conversion of `converted`'s source model, front end and calibration with the
    weight formats `formats` (int4 layers rounded by `rounding`), in work/formats/<key> (made
    once per choice)."""
    from nsconv.outdir import atomic_output_dir
    from nsconv.quant.convert import convert_into
    from nsconv.quant.manifest import Manifest
    from nsconv.quant.quantize import calibration_clips
    from nsconv.quant.weights import WeightsRequest

    m = Manifest.load(converted)
    clips = list(calib) if calib else calibration_clips()
    if tuple(p.name for p in clips) != tuple(m.calibration):
        raise NsconvError("converted with other calibration clips than fit was given ("
                          + ", ".join(m.calibration) + ")", converted)
    key = {"source_sha256": m.source_sha256, "frontend": m.frontend.to_json(),
           "calibration": list(m.calibration), "default_exit": m.default.name,
           "weight_formats": dict(sorted(formats.items())), "rounding": rounding,
           "code": _conversion_code_digest()}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    dest = Path(work) / "formats" / digest
    if (dest / "manifest.json").is_file() and (dest / "key.json").is_file() and \
            json.loads((dest / "key.json").read_text()) == key:
        return dest
    if log:
        log("fit: converting with int4 layers "
            + ",".join(k for k, v in sorted(formats.items()) if v == "int4"))
    with atomic_output_dir(dest) as tmp:
        convert_into(source_file(m), tmp, clips, log=log or (lambda *_: None),
                     frontend=m.frontend, default_exit=m.default.name,
                     weights=WeightsRequest("layers", tuple(sorted(formats.items())),
                                            rounding=rounding))
        (tmp / "key.json").write_text(json.dumps(key, indent=2) + "\n")
    return dest


def _conversion_code_digest() -> str:
    """sha256 of the sources a conversion depends on (nsconv.quant, nsconv.model, nsconv.audio),
    so a cached conversion is made again when they change."""
    from nsconv.resources import PACKAGE_DIR

    h = hashlib.sha256()
    for sub in ("quant", "model", "audio"):
        for f in sorted((PACKAGE_DIR / sub).glob("*.py")):
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def fit(converted: Path, part: Part, work: Path, frames: int = DEFAULT_FRAMES,
        exits: Sequence[str] | None = None, model_name: str = "", log=None,
        weights: str = "auto", calib: Sequence[Path] | None = None,
        rounding: str = "gptq") -> FitReport:
    """Measure every exit (or the named ones) of the converted model against the part; with
    weights="auto", an exit whose all-int8 export is too large for the part's flash is
    measured again with int4 layers chosen to fit."""
    from nsconv.quant.manifest import Manifest

    if frames < 1:
        raise NsconvError(f"frames must be at least 1, got {frames}")
    if weights not in WEIGHTS:
        raise NsconvError(f"fit weights {weights!r}: choose from {', '.join(WEIGHTS)}")
    manifest = Manifest.load(converted)
    names = [e.name for e in manifest.exits]
    for n in exits or ():
        manifest.exit(n)
    Path(work).mkdir(parents=True, exist_ok=True)
    plan = _Plan(Path(converted), part, Path(work), frames, weights, calib, log, rounding)
    with open(Path(work) / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one fit at a time per work directory
        results = [plan.exit_fit(tuple(names[: k + 1])) for k, name in enumerate(names)
                   if not exits or name in exits]
    return FitReport(model_name or manifest.source_path, part, frames, tuple(results), weights)


def fit_kept(converted: Path, part: Part, work: Path, kept: Sequence[str],
             frames: int = DEFAULT_FRAMES, log=None, weights: str = "auto",
             calib: Sequence[Path] | None = None, rounding: str = "gptq") -> ExitFit:
    """The exits `kept` (any subset, in backbone order) measured together against the part,
    as fit measures a prefix (`export --part P --exits a,b`)."""
    from nsconv.quant.manifest import Manifest

    names = [e.name for e in Manifest.load(converted).exits]
    for n in kept:
        if n not in names:
            Manifest.load(converted).exit(n)  # refuses it, listing the exits
    ordered = tuple(n for n in names if n in kept)
    Path(work).mkdir(parents=True, exist_ok=True)
    plan = _Plan(Path(converted), part, Path(work), frames, weights, calib, log, rounding,
                 always_int4=True)
    with open(Path(work) / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return plan.exit_fit(ordered)


@dataclass(frozen=True)
class _Plan:
    """What measuring one set of kept exits against the part needs."""

    converted: Path
    part: Part
    work: Path
    frames: int
    weights: str
    calib: Sequence[Path] | None
    log: object
    rounding: str = "gptq"
    always_int4: bool = False  # also when the int8 export misses the RAM or the clock

    def exit_fit(self, kept: tuple[str, ...]) -> ExitFit:
        """The deepest of `kept` measured on an export of `kept`: all int8, or when that is
        too large for the part's flash, with int4 layers chosen to fit."""
        e8 = self.measured(self.converted, kept, "+".join(kept), {})
        if e8.fits_flash or self.weights == "int8":
            return e8
        if not self.always_int4 and not (e8.fits_ram and e8.fits_mhz):
            return _with_note(e8, "int4 not tried: " + ", ".join(
                f"misses the {w} in int8" for w, ok in (("RAM", e8.fits_ram),
                                                       ("clock", e8.fits_mhz)) if not ok)
                + " (int4 layers lower neither: " + INT4_COST + ")")
        return self.with_int4(kept, e8)

    def measured(self, converted: Path, kept: tuple[str, ...], tag: str,
                 formats: dict[str, str], int8_flash: int | None = None) -> ExitFit:
        export = prefix_export(converted, self.work / self.part.core / tag, kept)
        if self.log:
            self.log(f"fit: {self.part.core}, exits {','.join(kept)}"
                     + (f", int4 {','.join(k for k, v in formats.items() if v == 'int4')}"
                        if formats else ""))
        r = measure(export, self.part.core, kept[-1], self.frames, self.log)
        return _exit_fit(r, kept, export, converted, self.part,
                         _held_formats(export, formats), int8_flash)

    def with_int4(self, kept: tuple[str, ...], e8: ExitFit) -> ExitFit:
        """int4 layers chosen under the flash that bench leaves for the weights; the budget
        shrinks by what bench measures beyond the part's flash, up to INT4_ATTEMPTS times."""
        from nsconv.model.netspec import NetSpec
        from nsconv.quant.int4_choose import choose_formats
        from nsconv.quant.manifest import Manifest
        from nsconv.quant.quantize import calibration_clips

        m = Manifest.load(self.converted)
        spec = NetSpec.load(self.converted / m.model_file)
        clips = list(self.calib) if self.calib else calibration_clips()
        budget = self.part.flash_bytes - (e8.flash_bytes - e8.weights_bytes)
        best = e8
        for _ in range(INT4_ATTEMPTS):
            try:
                choice = choose_formats(spec, budget, exits=list(kept), rounding=self.rounding,
                                        clips=clips, log=self.log)
            except NsconvError as exc:
                return _with_note(best, f"no int4 choice fits: {exc.problem}")
            formats = choice.formats
            if "int4" not in formats.values():
                return _with_note(best, "the format choice kept every layer int8")
            conv = formats_conversion(self.converted, formats, self.work, self.calib,
                                      self.log, self.rounding)
            best = self.measured(conv, kept, f"{'+'.join(kept)}@{conv.name}", formats,
                                 e8.flash_bytes)
            if best.fits_flash:
                return best
            budget -= best.flash_bytes - self.part.flash_bytes + BUDGET_MARGIN
        return _with_note(best, f"still over the flash after {INT4_ATTEMPTS} choices")


def _with_note(e: ExitFit, note: str) -> ExitFit:
    from dataclasses import replace

    return replace(e, note=note)


def _held_formats(export: Path, formats: dict[str, str]) -> dict[str, str]:
    """layer -> format for every layer the export's exits hold (all int8 unless `formats`
    says int4)."""
    from nsconv.model.netspec import NetSpec
    from nsconv.quant.manifest import Manifest

    m = Manifest.load(export)
    spec = NetSpec.load(export / m.model_file) if m.model_file.endswith(".npz") else None
    if spec is None:
        return {}
    held: list[str] = []
    for e in m.exits:
        for layer in spec.exit_layers(spec.exit(e.name)):
            if layer.name not in held:
                held.append(layer.name)
    return {n: formats.get(n, "int8") for n in held}


def _exit_fit(r: dict, kept: tuple[str, ...], export: Path, converted: Path, part: Part,
              formats: dict[str, str], int8_flash: int | None) -> ExitFit:
    """An ExitFit from bench's record of the deepest kept exit."""
    ram, flash, mhz = r["ram_with_frontend_bytes"], r["flash_bytes"], \
        r["mhz_for_real_time_estimate"]
    return ExitFit(
        exit=kept[-1], kept_exits=kept, export_dir=str(export),
        converted_dir=str(converted), flash_bytes=flash,
        code_bytes=r["flash"]["code_bytes"], constants_bytes=r["flash"]["constants_bytes"],
        weights_bytes=r["flash"]["weights_bytes"], ram_bytes=ram,
        network_ram_bytes=r["ram_bytes"], frontend_state_bytes=r["frontend_state_bytes"],
        instructions_per_frame=round(r["instructions_per_frame"]
                                     + r["frontend_instructions_per_frame"], 1),
        mhz_needed=mhz, fits_flash=flash <= part.flash_bytes, fits_ram=ram <= part.sram_bytes,
        fits_mhz=mhz <= part.max_mhz, weight_formats=formats, int8_flash_bytes=int8_flash)


def deepest_fitting_exits(report: FitReport) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(kept, dropped) exit names for `export --part`: the exits up to the deepest that fits."""
    best = report.deepest_fitting
    all_names = [e.exit for e in report.exits]
    if best is None:
        raise NsconvError(f"no exit of {report.model} fits {report.part.name}: "
                          + "; ".join(f"{e.exit} needs {e.flash_bytes:,} B flash"
                                      f"{' (' + e.format + ')' if e.int4_layers else ''}, "
                                      f"{e.ram_bytes:,} B RAM, {e.mhz_needed:.0f} MHz"
                                      for e in report.exits[:1])
                          + f" (part: {report.part.flash_bytes:,} B {report.part.flash_where}, "
                          f"{report.part.sram_bytes:,} B SRAM, {report.part.max_mhz} MHz)")
    kept = best.kept_exits
    return kept, tuple(n for n in all_names if n not in kept)
