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
    """Verify OUT if it is a GTCRN export (True; exits 3 on a mismatch), else False: the host
    build of OUT/c, or with targets the firmware's network on each core in QEMU."""
    from nsconv.compiler.gtcrn_export import is_gtcrn_out

    if not is_gtcrn_out(out):
        return False
    if targets:
        from nsconv.check.target_verify import verify_gtcrn_targets
        from nsconv.errors import NsconvError

        if sanitize:
            raise NsconvError("--sanitize is for the host build; it cannot go with --target")
        results = verify_gtcrn_targets(out, list(targets), frames, list(audio) or None,
                                       log=log.info)
    else:
        from nsconv.check.nd_verify import verify_gtcrn

        results = [verify_gtcrn(out, frames, list(audio) or None, sanitize, log=log.info)]
    ok = all(rep.bit_exact for rep, _ in results)
    if as_json:
        items = [{"ok": rep.bit_exact, **rep.to_json(), **info} for rep, info in results]
        click.echo(json.dumps(items[0] if not targets else {"ok": ok, "reports": items},
                              indent=2))
    else:
        click.echo("\n\n".join(_verify_text(rep, info) for rep, info in results))
    if not ok:
        if not as_json:
            log.info("verification FAILED: the C differs from TFLM (exit status 3)")
        sys.exit(EXIT_MISMATCH)
    return True


def _verify_text(rep, info: dict) -> str:
    bad = {k: v for k, v in rep.state_mismatched_frames.items() if v}
    where = "host C" if "target" not in info else \
        f"{info['target']} ({info['board']}) in QEMU"
    timing = f"{info['seconds']} s" if "target" not in info else \
        f"{info['seconds']} s, {1000 * info['seconds_per_frame']:.2f} ms per frame in QEMU"
    return (f"GTCRN core, {where} vs TFLM: {rep.frames} frames of {', '.join(info['audio'])}\n"
            f"  bit_exact {str(rep.bit_exact).lower()}: {rep.mismatched_frames} mismatched "
            f"frames (mask {rep.mask_mismatched_frames}, states "
            f"{sum(bad.values())} over {len(rep.state_mismatched_frames)} states)\n"
            f"  kernel path {rep.kernels_path}, arena {rep.arena_bytes:,} bytes, states "
            f"{rep.state_bytes:,} bytes, {timing}"
            + ("" if info.get("c_matches_export", True) else
               "\n  note: the firmware's model/ differs from OUT/c (edited after export)")
            + (f"\n  first mismatch: {rep.first_mismatch}" if rep.first_mismatch else ""))
