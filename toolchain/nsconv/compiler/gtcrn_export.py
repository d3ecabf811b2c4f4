# SPDX-License-Identifier: Apache-2.0
"""`nsconv export` of GTCRN: its quantized one-step core, compiled to C (compiler/ndcodegen.py).

GTCRN is not an nsNet2-family model: model/gtcrn.py imports the ONNX graph and cuts it into a
float front end and a core (features + 16 states -> ERB mask + new states); quant/gtcrn_quant.py
calibrates the core closed loop and converts it with the real TFLite converter. This module runs
that conversion, writes

  OUT/gtcrn_core.tflite   the quantized core (the TFLM reference of `nsconv verify`)
  OUT/gtcrn.json          what the core's tensors are: features, mask, each state's input and
                          output signature names; source model and calibration
  OUT/c/                  nsn_model.[ch], nsn_weights.[ch] (ndcodegen)

and `load_spec` reads it back for verification.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nsconv.compiler.ndcodegen import NdResult, NdSpec, StatePair, generate_nd
from nsconv.errors import NsconvError

SPEC_FILE = "gtcrn.json"
CORE_FILE = "gtcrn_core.tflite"
FRONTEND_FILE = "gtcrn_frontend.json"
FORMAT = 1
GTCRN_INPUTS = ("mix", "conv_cache", "tra_cache", "inter_cache")
# gtcrn_quant's chosen mix: the input stage int16 (16x8), everything else int8
MODE = "mixed"


def is_gtcrn(model: str | Path) -> bool:
    """An ONNX file with GTCRN's streaming interface (the authors' export)."""
    path = Path(model)
    if path.suffix.lower() != ".onnx" or not path.is_file():
        return False
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception:  # not readable as ONNX: the nsNet2 route reports it
        return False
    names = {i.name for i in graph.input}
    return all(n in names for n in GTCRN_INPUTS)


def is_gtcrn_out(out_dir: Path) -> bool:
    return (Path(out_dir) / SPEC_FILE).is_file()


@dataclass(frozen=True)
class GtcrnExport:
    spec: NdSpec
    tflite: Path
    result: NdResult
    meta: dict


def core_spec(core) -> NdSpec:
    """The compiler's view of a `gtcrn_quant.QuantizedCore`: the tensor names of the features,
    the mask and each state's input and output."""
    return NdSpec(core.features.name, core.mask.name,
                  tuple(StatePair(s.name, s.input.name, s.output.name) for s in core.states),
                  "GTCRN core step")


def convert_core(onnx_path: Path, calib: list[Path] | None, log: Callable[[str], None],
                 mode: str = MODE):
    """GTCRN's quantized compact core (gtcrn_quant.convert_core, branch gtcrn-graph),
    calibrated float closed loop over `calib` (default: the package's clips)."""
    from nsconv.audio.wav import read_wav
    from nsconv.model.gtcrn import load_gtcrn
    from nsconv.quant import gtcrn_quant as gq
    from nsconv.quant.quantize import calibration_clips

    model = load_gtcrn(onnx_path)
    clips = list(calib) if calib else calibration_clips()
    log(f"calibrating GTCRN's core closed loop on {len(clips)} clip(s)")
    records = gq.record_values(model, [read_wav(p) for p in clips])
    log(f"converting the core ({len(records)} representative frames, {mode})")
    core = gq.convert_core(onnx_path, mode=mode, records=records, model=model)
    return core, {"clips": [p.name for p in clips], "frames": len(records), "mode": mode}


def export_gtcrn(onnx_path: Path, out_dir: Path, calib: list[Path] | None,
                 log: Callable[[str], None], command_line: str = "",
                 converted: tuple | None = None) -> GtcrnExport:
    """converted: (QuantizedCore, calibration record) already made by `convert_core` (tests
    share one conversion), else the core is converted here."""
    from nsconv.model.assets import sha256_file

    onnx_path = Path(onnx_path)
    out_dir = Path(out_dir)
    quantized, cal = converted or convert_core(onnx_path, calib, log)
    core = out_dir / CORE_FILE
    core.write_bytes(quantized.tflite)
    spec = core_spec(quantized)
    meta = {"format": FORMAT, "kind": "gtcrn", "source_model": onnx_path.name,
            "source_sha256": sha256_file(onnx_path), "tflite": CORE_FILE,
            "features": spec.features, "mask": spec.mask,
            "states": [{"name": s.name, "input": s.input, "output": s.output}
                       for s in spec.states],
            "calibration": cal}
    (out_dir / SPEC_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    write_frontend_spec(onnx_path, out_dir)
    log("compiling the core to C")
    result = generate_nd(core, spec, out_dir / "c", command_line=command_line)
    return GtcrnExport(spec, core, result, meta)


def write_frontend_spec(onnx_path: Path, out_dir: Path) -> Path:
    """OUT/gtcrn_frontend.json: the model's front end (GtcrnFrontendSpec), from which a
    firmware export generates the C front end's tables (target/gtcrn_target.py)."""
    from nsconv.audio.gtcrn_frontend import GtcrnFrontendSpec
    from nsconv.model.gtcrn import load_gtcrn

    path = Path(out_dir) / FRONTEND_FILE
    fe = GtcrnFrontendSpec.from_model(load_gtcrn(onnx_path))
    path.write_text(json.dumps(fe.to_json()) + "\n")
    return path


def load_spec(out_dir: Path) -> tuple[NdSpec, Path, dict]:
    path = Path(out_dir) / SPEC_FILE
    try:
        meta = json.loads(path.read_text())
        spec = NdSpec(meta["features"], meta["mask"],
                      tuple(StatePair(s["name"], s["input"], s["output"])
                            for s in meta["states"]), "GTCRN core step")
        return spec, Path(out_dir) / meta["tflite"], meta
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NsconvError(f"not a GTCRN export ({type(exc).__name__}: {exc})", path) from None
