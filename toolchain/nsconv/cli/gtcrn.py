# SPDX-License-Identifier: Apache-2.0
"""GTCRN's side of `nsconv export` and `nsconv verify` (no command of its own): an ONNX model
with GTCRN's streaming interface is exported by compiler/gtcrn_export.py, an output folder with
gtcrn.json is verified by check/nd_verify.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from nsconv import log
from nsconv.cli.base import EXIT_MISMATCH, emit, provenance_command
from nsconv.target.firmware import HOST


def gtcrn_export(model: str, out: Path, target: str | None, calib: tuple[Path, ...],
                 as_json: bool, **nsnet2_only: str | None) -> bool:
    """Export GTCRN if MODEL is its ONNX streaming model (True), else leave it to nsNet2's."""
    from nsconv.compiler.gtcrn_export import is_gtcrn

    if not is_gtcrn(model):
        return False
    refused = ["--" + k.replace("_", "-") for k, v in nsnet2_only.items() if v]
    _export_gtcrn(model, out, target, calib, as_json, refused)
    return True


def _export_gtcrn(model: str, out: Path, target: str | None, calib: tuple[Path, ...],
                  as_json: bool, refused: list[str]) -> None:
    """GTCRN (an ONNX model with its streaming interface): its quantized core compiled to C."""
    from nsconv.compiler.gtcrn_export import export_gtcrn
    from nsconv.errors import NsconvError
    from nsconv.outdir import atomic_output_dir

    if refused:
        raise NsconvError(f"{', '.join(refused)}: not available for GTCRN (one exit, its own "
                          "front end)", model)
    target = target or HOST
    command = provenance_command("export", model, "--target", target, calib=calib)
    with atomic_output_dir(out) as tmp:
        exp = export_gtcrn(Path(model), tmp, list(calib) or None, log=log.info,
                           command_line=command)
        if target != HOST:
            from nsconv.target.gtcrn_target import export_gtcrn_firmware

            log.info(f"writing the {target} firmware project")
            export_gtcrn_firmware(tmp, target, command_line=command)
    v = exp.result.view
    data = {"out": str(out), "kind": "gtcrn", "tflite": str(out / exp.tflite.name),
            "c": str(out / "c"), "c_files": [p.name for p in exp.result.files],
            "kernel_calls": dict(v.op_counts), "folded": dict(v.folded_counts),
            "copies": sum(1 for s in v.steps if s.kind == "copy"),
            "arena_bytes": v.arena_bytes, "state_bytes": v.state_bytes,
            "const_bytes": v.const_bytes, "calibration": exp.meta["calibration"],
            "target": target}
    text = exp.result.summary().replace(str(tmp), str(out)) + f"\nwrote {out}/c"
    if target != HOST:
        data["firmware"] = str(out / "firmware" / target)
        text += f"\nwrote {data['firmware']} (make -C {data['firmware']} run)"
    emit(as_json, data, text)


def gtcrn_verify(out: Path, frames: int | None, audio: tuple[Path, ...], sanitize: bool,
                 targets: tuple[str, ...], as_json: bool) -> bool:
    """Verify OUT if it is a GTCRN export (True; exits 3 on a mismatch), else False."""
    from nsconv.check.nd_verify import verify_gtcrn
    from nsconv.compiler.gtcrn_export import is_gtcrn_out
    from nsconv.errors import NsconvError

    if not is_gtcrn_out(out):
        return False

    if targets:
        raise NsconvError("--target: GTCRN's core is verified on the host against TFLM; on a "
                          "core, `nsconv run` gives the host build's wav byte for byte", out)
    rep, info = verify_gtcrn(out, frames, list(audio) or None, sanitize, log=log.info)
    if as_json:
        click.echo(json.dumps({"ok": rep.bit_exact, **rep.to_json(), **info}, indent=2))
    else:
        bad = {k: v for k, v in rep.state_mismatched_frames.items() if v}
        click.echo(f"GTCRN core, host C vs TFLM: {rep.frames} frames of "
                   f"{', '.join(info['audio'])}\n"
                   f"  bit_exact {str(rep.bit_exact).lower()}: {rep.mismatched_frames} mismatched "
                   f"frames (mask {rep.mask_mismatched_frames}, states "
                   f"{sum(bad.values())} over {len(rep.state_mismatched_frames)} states)\n"
                   f"  kernels {rep.kernels_path}, arena {rep.arena_bytes:,} bytes, states "
                   f"{rep.state_bytes:,} bytes, {info['seconds']} s"
                   + (f"\n  first mismatch: {rep.first_mismatch}" if rep.first_mismatch else ""))
    if not rep.bit_exact:
        if not as_json:
            log.info("verification FAILED: the C differs from TFLM (exit status 3)")
        sys.exit(EXIT_MISMATCH)
    return True
