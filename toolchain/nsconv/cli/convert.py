# SPDX-License-Identifier: Apache-2.0
"""`nsconv convert`, `nsconv export`."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from nsconv import log
from nsconv.cli import gtcrn
from nsconv.cli.base import emit, json_option, main, provenance_command
from nsconv.errors import NsconvError
from nsconv.target.firmware import HOST, TARGETS
from nsconv.target.parts import PARTS


def _manifest_json(out: Path, m) -> dict:
    return {"out": str(out), "manifest": str(out / "manifest.json"),
            "source_model": Path(m.source_path).name, "source_sha256": m.source_sha256,
            "calibration": {"clips": list(m.calibration), "frames": m.calibration_frames},
            "weight_formats": dict(m.weight_formats), "int4_rounding": m.int4_rounding,
            "exits": [{"name": e.name, "tflite": str(out / e.tflite),
                       "tflite_bytes": e.tflite_bytes, "macs_per_frame": e.macs_per_frame,
                       "params": e.params, "int4_weights": list(e.int4_weights)}
                      for e in m.exits]}


def _weights_request(weights: str | None, flash_budget: str | None, rounding: str):
    """--weights/--flash-budget/--rounding -> quant.weights.WeightsRequest (NsconvError)."""
    from nsconv.quant.weights import WeightsRequest
    from nsconv.target.parts import parse_size

    budget = None
    if flash_budget is not None:
        try:
            budget = parse_size(flash_budget)
        except NsconvError as exc:
            raise NsconvError(f"--flash-budget: {exc.problem}") from None
    return WeightsRequest.parse(weights, budget, rounding)


def _weights_words(weights: str | None, flash_budget: str | None, rounding: str) -> tuple:
    """The provenance words of the weight options (none for the default)."""
    words: tuple[str, ...] = ()
    if weights is not None:
        words += ("--weights", weights)
    if flash_budget is not None:
        words += ("--flash-budget", flash_budget)
    if rounding != "gptq":
        words += ("--rounding", rounding)
    return words


def _conversion_options(f):
    """The options convert and export share: calibration audio, default exit, front end,
    weight formats."""
    f = click.option("--rounding", type=click.Choice(["gptq", "rtn"]), default="gptq",
                     show_default=True,
                     help="Rounding of int4 weights: gptq (error-compensating, from the "
                          "calibration audio) or rtn (round to nearest).")(f)
    f = click.option("--flash-budget", "flash_budget", default=None, metavar="SIZE",
                     help="Budget for the weights (filters and biases) of the kept exits' "
                          "layers, e.g. 1.8M or 900K (K = 1024); implies --weights auto.")(f)
    f = click.option("--weights", "weights", default=None,
                     metavar="int8|int4|auto|LAYER=FMT,...",
                     help="Weight format per layer: int8 (default), int4, auto (int4 for the "
                          "layers that cost least quality per byte saved, until the weights fit "
                          "--flash-budget), or e.g. gru1=int4,gru2=int4,fc3=int4.")(f)
    f = click.option("--frontend", "frontend", default=None, metavar="KEYS|FILE.json",
                     help="The model's STFT front end, e.g. rate=16000,win=512,hop=256,"
                          "n_fft=512,window=sqrt-hann-periodic (any subset; the rest default to "
                          "the DNS NSNet2 front end), or a JSON file of the same keys. Default: "
                          "the model's own.")(f)
    f = click.option("--default-exit", "default_exit", default=None,
                     help="Exit that enhance/run use without --exit (default: the deepest, "
                          "most MACs).")(f)
    return click.option("--calib", multiple=True, type=click.Path(path_type=Path),
                        help="Calibration wav (repeatable; default: the bundled real noisy "
                             "clips).")(f)


@main.command()
@click.argument("model")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path),
              help="Output directory (replaced atomically).")
@_conversion_options
@json_option
def convert(model: str, out: Path, calib: tuple[Path, ...], frontend: str | None,
            default_exit: str | None, weights: str | None, flash_budget: str | None,
            rounding: str, as_json: bool) -> None:
    """Per-exit int8 TFLite models of MODEL (ONNX, nsconv .npz, or a built-in name)."""
    from nsconv.audio.spec import FrontendSpec
    from nsconv.audio.wav import read_wav_any_rate
    from nsconv.quant.convert import convert as run

    request = _weights_request(weights, flash_budget, rounding)
    fe = FrontendSpec.parse(frontend) if frontend is not None else None
    for c in calib:
        read_wav_any_rate(c)  # refuse bad calibration audio before any work
    m = run(model, out, list(calib) or None, log=log.info, frontend=fe,
            default_exit=default_exit, weights=request)
    int4 = [k for k, v in m.weight_formats.items() if v == "int4"]
    emit(as_json, _manifest_json(out, m),
         f"wrote {out}/manifest.json and {len(m.exits)} int8 model(s)"
         + (f" (int4 weights: {', '.join(int4)})" if int4 else ""))


@main.command()
@click.argument("model")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path),
              help="Output directory (replaced atomically).")
@click.option("--target", type=click.Choice([HOST, *TARGETS]), default=None,
              help="host: OUT/c only; a core: also a firmware project in OUT/firmware/<core> "
                   "(default: host, or the core of --part).")
@_conversion_options
@click.option("--exits", "exit_list", default=None,
              help="Keep only these exits (comma-separated, e.g. gru1,gru2): the constants and "
                   "ops only other exits use are not emitted.")
@click.option("--part", "part_name", type=click.Choice([p.name for p in PARTS]), default=None,
              help="Keep the exits up to the deepest that fits this part (measured as by "
                   "`nsconv fit`), unless --exits is given; the target defaults to its core.")
@json_option
def export(model: str, out: Path, target: str | None, calib: tuple[Path, ...],
           default_exit: str | None, frontend: str | None, weights: str | None,
           flash_budget: str | None, rounding: str, exit_list: str | None,
           part_name: str | None, as_json: bool) -> None:
    """Convert MODEL and generate its early-exit C (OUT/tflite, OUT/c, manifest.json)."""
    if gtcrn.gtcrn_export(model, out, target, calib, as_json, frontend=frontend,
                          exits=exit_list, part=part_name, default_exit=default_exit):
        return  # GTCRN's ONNX streaming model (nsconv/cli/gtcrn.py)
    from nsconv.audio.spec import FrontendSpec
    from nsconv.audio.wav import read_wav_any_rate
    from nsconv.compiler.codegen import generate
    from nsconv.compiler.graph_merge import keep_exits, parse_exit_names
    from nsconv.outdir import atomic_output_dir
    from nsconv.quant.convert import convert_into
    from nsconv.quant.manifest import Manifest

    fit_weights = _part_weights(weights, flash_budget) if part_name is not None else None
    request = _weights_request(None if fit_weights else weights, flash_budget, rounding)
    fe = FrontendSpec.parse(frontend) if frontend is not None else None
    for c in calib:
        read_wav_any_rate(c)
    names = parse_exit_names(exit_list) if exit_list is not None else None
    _check_default_exit(default_exit, names)
    part = None
    if part_name is not None:
        from nsconv.target.parts import part as find_part

        part = find_part(part_name)
        target = target or part.core
    target = target or HOST
    fe_words = ("--frontend", Path(frontend).name) if frontend else ()
    sub_words = (("--exits", exit_list) if exit_list else ()) + \
        (("--part", part_name) if part_name else ())
    command = provenance_command("export", model, "--target", target, *fe_words, *sub_words,
                                 *_weights_words(weights, flash_budget, rounding), calib=calib)
    dropped: tuple[str, ...] = ()
    chosen = None
    with atomic_output_dir(out) as tmp:
        m = convert_into(model, tmp, list(calib) or None, log=log.info, frontend=fe,
                         default_exit=default_exit, weights=request, budget_exits=names)
        if part is not None:
            chosen = _part_choice(tmp, part, model, names, list(calib) or None, fit_weights,
                                  rounding)
            names = chosen.kept_exits
            _check_default_exit(default_exit, names, None if exit_list else part_name)
            if chosen.int4_layers:  # the conversion fit measured, with its int4 layers
                shutil.rmtree(tmp)
                shutil.copytree(chosen.converted_dir, tmp,
                                ignore=shutil.ignore_patterns("key.json"))
        if names is not None:
            dropped = keep_exits(tmp, names)
            m = Manifest.load(tmp)
        gen = generate(tmp, command_line=command)
        if target != HOST:
            from nsconv.target.firmware import export_firmware

            export_firmware(tmp, target, command_line=command)
    _report_export(out, tmp, m, gen, target, dropped, chosen, part, exit_list is None, as_json)


def _report_export(out: Path, tmp: Path, m, gen, target: str, dropped, chosen, part,
                   by_part: bool, as_json: bool) -> None:
    """export's result: JSON, or the generator's summary (written in the temporary directory
    tmp, renamed to out) with what --exits or --part (by_part) dropped and what fit chose."""
    firmware = out / "firmware" / target if target != HOST else None
    data = {**_manifest_json(out, m), "target": target, "c": str(out / "c"),
            "c_files": [p.name for p in gen.files],
            "firmware": None if firmware is None else str(firmware),
            "const_bytes": gen.merged.const_bytes, "arena_bytes": gen.plan.arena_bytes,
            "state_bytes": gen.plan.state_bytes, "scratch_bytes": gen.plan.scratch_bytes,
            "dropped_exits": list(dropped),
            "fit": None if chosen is None else {"part": part.name, **chosen.to_json()}}
    note = ""
    if dropped:
        note = (f"dropped exits {', '.join(dropped)}"
                + (f" (they do not fit {part.name})" if part is not None and by_part else "") + "\n")
    if chosen is not None:
        note += _fit_note(chosen, part) + "\n"
    emit(as_json, data, gen.summary().replace(str(tmp), str(out)) + "\n" + note
         + f"wrote {out}/c" + (f" and {firmware}" if firmware else ""))


def _fit_note(chosen, part) -> str:
    """What `export --part` chose, in the figures fit measured (bench) for this export."""
    fmt = ("int4 layers " + ", ".join(chosen.int4_layers) + ", the rest int8"
           if chosen.int4_layers else "every layer int8")
    text = (f"{part.name}: weights {fmt}; measured flash {chosen.flash_bytes:,} of "
            f"{part.flash_bytes:,} B, RAM {chosen.ram_bytes:,} of {part.sram_bytes:,} B, "
            f"{chosen.mhz_needed:.1f} of {part.max_mhz} MHz (estimate)")
    if not chosen.fits_mhz:
        text += (f"\nwarning: {chosen.exit} needs about {chosen.mhz_needed:.0f} MHz at one "
                 f"instruction per cycle, more than {part.name}'s {part.max_mhz} MHz: not real "
                 "time on this part")
    return text


def _part_weights(weights: str | None, flash_budget: str | None) -> str:
    """With --part, fit chooses the formats: --weights auto (the default) or int8 only."""
    if flash_budget is not None or (weights or "auto") not in ("auto", "int8"):
        raise NsconvError("with --part the weight formats are chosen to fit the part: give "
                          "--weights auto (the default) or int8, and no --flash-budget")
    return weights or "auto"


def _check_default_exit(default_exit: str | None, kept, part_name: str | None = None) -> None:
    """--default-exit must name a kept exit: refused rather than silently replaced."""
    if default_exit is None or kept is None or default_exit in kept:
        return
    why = f"the exits that fit {part_name}" if part_name else "--exits"
    raise NsconvError(f"--default-exit {default_exit} is not among the kept exits "
                      f"({', '.join(kept)}: {why}); name a kept exit or keep {default_exit}")


def _part_choice(converted: Path, part, model: str, names, calib, weights: str,
                 rounding: str):
    """fit's measurement (ExitFit) of the exits to keep for the part: the exits up to the
    deepest that fits, or the exits named by --exits (refused when they do not fit the part's
    flash or RAM even with int4 layers), in the weight formats they fit in. Measured as
    `nsconv fit MODEL` does and in its work directory (out/fit/<model>), so either reuses the
    other's measurements."""
    from nsconv.target.fit import deepest_fitting_exits, default_work_dir, fit, fit_kept

    work = default_work_dir(model)
    if names is None:
        report = fit(converted, part, work, log=log.info, calib=calib, weights=weights,
                     rounding=rounding)
        log.info(report.table())
        kept, _ = deepest_fitting_exits(report)
        return next(e for e in report.exits if e.kept_exits == kept)
    chosen = fit_kept(converted, part, work, names, log=log.info, calib=calib,
                      weights=weights, rounding=rounding)
    if not (chosen.fits_flash and chosen.fits_ram):
        raise NsconvError(f"exits {', '.join(chosen.kept_exits)} do not fit {part.name}: "
                          f"flash {chosen.flash_bytes:,} B ({chosen.format}) of "
                          f"{part.flash_bytes:,}, RAM {chosen.ram_bytes:,} B of "
                          f"{part.sram_bytes:,}" + (f"; {chosen.note}" if chosen.note else ""))
    return chosen
