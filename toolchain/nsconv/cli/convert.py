# SPDX-License-Identifier: Apache-2.0
"""`nsconv convert`, `nsconv export`."""

from __future__ import annotations

from pathlib import Path

import click

from nsconv import log
from nsconv.cli.base import emit, json_option, main, provenance_command
from nsconv.target.firmware import HOST, TARGETS


def _manifest_json(out: Path, m) -> dict:
    return {"out": str(out), "manifest": str(out / "manifest.json"),
            "source_model": Path(m.source_path).name, "source_sha256": m.source_sha256,
            "calibration": {"clips": list(m.calibration), "frames": m.calibration_frames},
            "exits": [{"name": e.name, "tflite": str(out / e.tflite),
                       "tflite_bytes": e.tflite_bytes, "macs_per_frame": e.macs_per_frame,
                       "params": e.params} for e in m.exits]}


@main.command()
@click.argument("model")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path),
              help="Output directory (replaced atomically).")
@click.option("--calib", multiple=True, type=click.Path(path_type=Path),
              help="Calibration wav (repeatable; default: the bundled real noisy clips).")
@click.option("--frontend", "frontend", default=None, metavar="KEYS|FILE.json",
              help="The model's STFT front end, e.g. rate=16000,win=512,hop=256,n_fft=512,"
                   "window=sqrt-hann-periodic (any subset; the rest default to the DNS NSNet2 "
                   "front end), or a JSON file of the same keys. Default: the model's own.")
@json_option
def convert(model: str, out: Path, calib: tuple[Path, ...], frontend: str | None,
            as_json: bool) -> None:
    """Per-exit int8 TFLite models of MODEL (ONNX, nsconv .npz, or a built-in name)."""
    from nsconv.audio.spec import FrontendSpec
    from nsconv.audio.wav import read_wav_any_rate
    from nsconv.quant.convert import convert as run

    fe = FrontendSpec.parse(frontend) if frontend is not None else None
    for c in calib:
        read_wav_any_rate(c)  # refuse bad calibration audio before any work
    m = run(model, out, list(calib) or None, log=log.info, frontend=fe)
    emit(as_json, _manifest_json(out, m),
         f"wrote {out}/manifest.json and {len(m.exits)} int8 model(s)")


@main.command()
@click.argument("model")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path),
              help="Output directory (replaced atomically).")
@click.option("--target", type=click.Choice([HOST, *TARGETS]), default=HOST, show_default=True,
              help="host: OUT/c only; a core: also a firmware project in OUT/firmware/<core>.")
@click.option("--calib", multiple=True, type=click.Path(path_type=Path),
              help="Calibration wav (repeatable; default: the bundled real noisy clips).")
@click.option("--frontend", "frontend", default=None, metavar="KEYS|FILE.json",
              help="The model's STFT front end, e.g. rate=16000,win=512,hop=256,n_fft=512,"
                   "window=sqrt-hann-periodic (any subset; the rest default to the DNS NSNet2 "
                   "front end), or a JSON file of the same keys. Default: the model's own.")
@json_option
def export(model: str, out: Path, target: str, calib: tuple[Path, ...],
           frontend: str | None, as_json: bool) -> None:
    """Convert MODEL and generate its early-exit C (OUT/tflite, OUT/c, manifest.json)."""
    from nsconv.audio.spec import FrontendSpec
    from nsconv.audio.wav import read_wav_any_rate
    from nsconv.compiler.codegen import generate
    from nsconv.outdir import atomic_output_dir
    from nsconv.quant.convert import convert_into

    fe = FrontendSpec.parse(frontend) if frontend is not None else None
    for c in calib:
        read_wav_any_rate(c)
    fe_words = ("--frontend", Path(frontend).name) if frontend else ()
    command = provenance_command("export", model, "--target", target, *fe_words, calib=calib)
    with atomic_output_dir(out) as tmp:
        m = convert_into(model, tmp, list(calib) or None, log=log.info, frontend=fe)
        gen = generate(tmp, command_line=command)
        if target != HOST:
            from nsconv.target.firmware import export_firmware

            export_firmware(tmp, target, command_line=command)
    firmware = out / "firmware" / target if target != HOST else None
    data = {**_manifest_json(out, m), "target": target, "c": str(out / "c"),
            "c_files": [p.name for p in gen.files],
            "firmware": None if firmware is None else str(firmware),
            "const_bytes": gen.merged.const_bytes, "arena_bytes": gen.plan.arena_bytes,
            "state_bytes": gen.plan.state_bytes, "scratch_bytes": gen.plan.scratch_bytes}
    emit(as_json, data, gen.summary().replace(str(tmp), str(out)) + "\n"
         + f"wrote {out}/c" + (f" and {firmware}" if firmware else ""))
