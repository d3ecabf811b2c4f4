# SPDX-License-Identifier: Apache-2.0
"""An export's weight formats against the all-int8 conversion of the same model
(`nsconv evaluate OUT`, OUT an export or convert output directory).

The reference is the all-int8 conversion of the export's own source model (its float model
file, OUT/model.npz, with the export's front end and calibration clips), made once and
cached (`nsconv.check.engine.converted_dir`), or given (`--reference DIR`). Per exit and clip
the export's scores are set against the reference's, computed the same way on the same clips,
and the masks of the two are compared frame by frame:

    delta_<metric>   export - all-int8, per clip (and the mean)
    mask_rms         sqrt(mean((m - m_int8)^2)) over every frame and bin (masks in [0, 1])
    mask_mean_diff   mean(m - m_int8): a rounding that only pushes masks down shows here
    mask_max_abs     max |m - m_int8|

The checks are issue 11's: PESQ-wb within 0.05 of all-int8 on every clip and exit, and SI-SDR
at most 0.3 dB below it on every clip and exit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nsconv.errors import NsconvError

PESQ_TOLERANCE = 0.05
SI_SDR_DROP = 0.3
DELTA_METRICS = ("pesq_wb", "stoi", "si_sdr", "dnsmos_ovrl")


def weight_formats(out_dir: Path) -> dict:
    """What the export's manifest says of its weight formats: `layers` (layer -> int8/int4,
    quant/weights.py; empty when every layer is int8), `int4_layers`, and per exit the
    layers on its path held in int4 (`exits`) and the .tflite names of its int4 filters
    (`int4_tensors`, the manifest's per-exit `int4_weights`)."""
    from nsconv.model.netspec import NetSpec

    raw = json.loads((Path(out_dir) / "manifest.json").read_text())
    layers = raw.get("weight_formats") or {}
    model = Path(out_dir) / str(raw.get("model", ""))
    spec = NetSpec.load(model) if layers and model.suffix == ".npz" and model.is_file() \
        else None
    exits, tensors = {}, {}
    for e in raw.get("exits", []):
        tensors[e["name"]] = list(e.get("int4_weights") or [])
        path = [x.name for x in spec.exit_layers(spec.exit(e["name"]))] if spec else []
        exits[e["name"]] = [n for n in path if layers.get(n) == "int4"]
    int4 = [k for k, v in layers.items() if v == "int4"]
    return {"layers": layers, "int4_layers": int4, "exits": exits, "int4_tensors": tensors,
            "all_int8": not int4}


def int8_reference(out_dir: Path, reference: str | Path | None = None, log=None) -> Path:
    """The all-int8 conversion to compare OUT with: `reference` when given (checked to be
    the same source model), else the conversion of OUT's float model file with OUT's front
    end, made on first use and cached by converted_dir."""
    from nsconv.check.engine import converted_dir
    from nsconv.quant.manifest import Manifest
    from nsconv.quant.quantize import calibration_clips
    from nsconv.target.fit import source_file

    m = Manifest.load(out_dir)
    if reference is not None:
        ref = Manifest.load(Path(reference))
        if ref.source_sha256 != m.source_sha256:
            raise NsconvError(f"not a conversion of the same model as {out_dir} (source "
                              f"sha256 {ref.source_sha256[:12]} vs {m.source_sha256[:12]})",
                              reference)
        if not weight_formats(Path(reference))["all_int8"]:
            raise NsconvError("the reference holds int4 layers; give an all-int8 conversion",
                              reference)
        return Path(reference)
    bundled = tuple(p.name for p in calibration_clips())
    if tuple(m.calibration) != bundled:
        raise NsconvError("calibrated on other clips than the bundled ones ("
                          + ", ".join(m.calibration) + "): give --reference DIR, an all-int8 "
                          "`nsconv convert` of the same model with the same --calib", out_dir)
    source = source_file(m)
    if log:
        log(f"evaluate: all-int8 reference: {source.name} converted (once, then cached)")
    ref = converted_dir(source)  # the model's own front end: enhance's and evaluate's cache
    if Manifest.load(ref).frontend != m.frontend:
        ref = converted_dir(source, m.frontend)
    return ref


def mask_stats(masks: list[np.ndarray], ref: list[np.ndarray]) -> dict[str, float]:
    d = np.concatenate([(a.astype(np.float64) - b).ravel() for a, b in zip(masks, ref,
                                                                             strict=True)])
    return {"mask_rms": float(np.sqrt(np.mean(d * d))), "mask_mean_diff": float(np.mean(d)),
            "mask_max_abs": float(np.max(np.abs(d)))}


def compare_exit(row: dict, ref_row: dict, masks: dict[str, np.ndarray],
                 ref_masks: dict[str, np.ndarray], formats: dict) -> dict:
    """One exit of the export against the same exit of the all-int8 reference."""
    pairs = list(row["per_pair"])
    per_pair = {}
    for p in pairs:
        a, b = row["per_pair"][p], ref_row["per_pair"][p]
        per_pair[p] = {"int8": {k: b[k] for k in DELTA_METRICS},
                       **{f"delta_{k}": a[k] - b[k] for k in DELTA_METRICS},
                       **mask_stats([masks[p]], [ref_masks[p]])}
    deltas = {f"delta_{k}": _nanmean([v[f"delta_{k}"] for v in per_pair.values()])
              for k in DELTA_METRICS}
    pesq = [v["delta_pesq_wb"] for v in per_pair.values()]
    sdr = [v["delta_si_sdr"] for v in per_pair.values()]
    return {
        "name": row["name"], "engine": row["engine"],
        "int4_weights": formats["exits"].get(row["name"], []),
        "int8": {k: ref_row[k] for k in DELTA_METRICS}, **{k: row[k] for k in DELTA_METRICS},
        **deltas, **mask_stats([masks[p] for p in pairs], [ref_masks[p] for p in pairs]),
        "pesq_wb_max_abs_delta": _nanmax(np.abs(pesq)),
        "si_sdr_min_delta": _nanmin(sdr),
        "per_pair": per_pair,
    }


def checks(rows: list[dict]) -> dict:
    """Issue 11's quality bar over every exit and clip."""
    pesq = [(r["name"], p, v["delta_pesq_wb"]) for r in rows for p, v in r["per_pair"].items()]
    sdr = [(r["name"], p, v["delta_si_sdr"]) for r in rows for p, v in r["per_pair"].items()]
    worst_pesq = max(pesq, key=lambda t: abs(t[2]) if np.isfinite(t[2]) else -1)
    worst_sdr = min(sdr, key=lambda t: t[2] if np.isfinite(t[2]) else np.inf)
    return {
        "pesq_wb_tolerance": PESQ_TOLERANCE,
        "pesq_wb_within_tolerance_every_clip": bool(all(abs(t[2]) <= PESQ_TOLERANCE
                                                        for t in pesq)),
        "pesq_wb_worst": {"exit": worst_pesq[0], "pair": worst_pesq[1], "delta": worst_pesq[2]},
        "si_sdr_max_drop_db": SI_SDR_DROP,
        "si_sdr_within_tolerance_every_clip": bool(all(t[2] >= -SI_SDR_DROP for t in sdr)),
        "si_sdr_worst": {"exit": worst_sdr[0], "pair": worst_sdr[1], "delta": worst_sdr[2]},
    }


def table(vs: dict) -> str:
    """The comparison as a table: one row per exit and clip, one summary row per exit."""
    head = (f"{'exit':<7} {'clip':<10} {'PESQ-wb':>7} {'int8':>6} {'delta':>7} "
            f"{'SI-SDR':>7} {'delta':>6} {'STOI':>6} {'delta':>7} {'OVRL':>5} {'delta':>6} "
            f"{'mask RMS':>8} {'mean':>8}")
    lines = [f"against the all-int8 conversion ({vs['reference']}), engine {vs['engine']}",
             head, "-" * len(head)]
    for r in vs["exits"]:
        lines.append(f"{r['name']}: int4 layers "
                     + (", ".join(r["int4_weights"]) if r["int4_weights"] else "none"))
        for p, v in r["per_pair"].items():
            lines.append(_row(r["name"], p, r["per_pair"][p], v, v["int8"]))
        lines.append(_row(r["name"], "mean", r, r, r["int8"]))
    c = vs["checks"]
    w, s = c["pesq_wb_worst"], c["si_sdr_worst"]
    lines.append(f"PESQ-wb within {c['pesq_wb_tolerance']} of all-int8 on every clip and exit: "
                 f"{'yes' if c['pesq_wb_within_tolerance_every_clip'] else 'NO'} (largest "
                 f"|delta| {abs(w['delta']):.3f}, {w['exit']} on {w['pair']})")
    lines.append(f"SI-SDR at most {c['si_sdr_max_drop_db']} dB below all-int8 on every clip "
                 f"and exit: {'yes' if c['si_sdr_within_tolerance_every_clip'] else 'NO'} "
                 f"(lowest delta {s['delta']:+.2f} dB, {s['exit']} on {s['pair']})")
    lines.append("delta = this export - all-int8; mask RMS / mean = RMS / mean of (mask - "
                 "all-int8 mask) over every frame and bin")
    return "\n".join(lines)


def _row(name: str, pair: str, scores: dict, d: dict, int8: dict) -> str:
    ex = {k: int8[k] + d[f"delta_{k}"] for k in DELTA_METRICS}  # this export's score
    return (f"{name:<7} {pair:<10} {ex['pesq_wb']:7.3f} {int8['pesq_wb']:6.3f} "
            f"{d['delta_pesq_wb']:+7.3f} {ex['si_sdr']:7.2f} {d['delta_si_sdr']:+6.2f} "
            f"{ex['stoi']:6.3f} {d['delta_stoi']:+7.4f} {_f(ex['dnsmos_ovrl'], 5, 2)} "
            f"{_f(d['delta_dnsmos_ovrl'], 6, 2, '+')} {scores['mask_rms']:8.5f} "
            f"{scores['mask_mean_diff']:+8.5f}")


def _f(x: float, width: int, digits: int, sign: str = "") -> str:
    return f"{'-':>{width}}" if not np.isfinite(x) else f"{x:{sign}{width}.{digits}f}"


def _nanmean(v) -> float:
    v = [x for x in v if np.isfinite(x)]
    return float(np.mean(v)) if v else float("nan")


def _nanmax(v) -> float:
    v = [x for x in v if np.isfinite(x)]
    return float(np.max(v)) if v else float("nan")


def _nanmin(v) -> float:
    v = [x for x in v if np.isfinite(x)]
    return float(np.min(v)) if v else float("nan")
