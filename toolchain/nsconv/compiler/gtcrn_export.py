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
FORMAT = 1
GTCRN_INPUTS = ("mix", "conv_cache", "tra_cache", "inter_cache")


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


def core_spec(model, tflite: bytes, path: str) -> NdSpec:
    """Signature names of the features, the mask and each state's input and output. The TF
    step returns a dict; the converter names its outputs Identity, Identity_1, ... in the order
    of the sorted keys (unless they keep the keys' own names)."""
    from nsconv.compiler.ndgraph import parse_nd
    from nsconv.model.gtcrn import FEATURES, MASK
    from nsconv.model.opgraph_tf import _safe

    g = parse_nd(tflite, path)
    out_names = {n for n, _ in g.outputs}
    keys = sorted([_safe(k) for k in model.core.outputs]
                  + [_safe(s.name) for s in model.core.states])

    def out(key: str) -> str:
        if key in out_names:
            return key
        k = keys.index(key)
        name = "Identity" if k == 0 else f"Identity_{k}"
        if name not in out_names:
            raise NsconvError(f"the core has no output for {key!r}", path)
        return name

    states = tuple(StatePair(_safe(s.name), _safe(s.name), out(_safe(s.name)))
                   for s in model.core.states)
    return NdSpec(_safe(FEATURES), out(_safe(MASK)), states, "GTCRN core step")


def convert_core(onnx_path: Path, calib: list[Path] | None, log: Callable[[str], None],
                 every: int = 2) -> tuple[object, bytes, dict]:
    """(imported model, int8 core .tflite, calibration record)."""
    from nsconv.audio.wav import read_wav
    from nsconv.model.gtcrn import load_gtcrn
    from nsconv.quant import gtcrn_quant as gq
    from nsconv.quant.quantize import calibration_clips

    model = load_gtcrn(onnx_path)
    clips = list(calib) if calib else calibration_clips()
    log(f"calibrating GTCRN's core closed loop on {len(clips)} clip(s), every {every}th frame")
    samples = gq.record_calibration(model, [read_wav(p) for p in clips], every=every)
    log(f"converting the core ({len(samples)} representative frames, int8)")
    tflite = gq.convert(model, samples, "int8", "gather")
    return model, tflite, {"clips": [p.name for p in clips], "frames": len(samples),
                           "every": every, "mode": "int8", "layout": "gather"}


def export_gtcrn(onnx_path: Path, out_dir: Path, calib: list[Path] | None,
                 log: Callable[[str], None], command_line: str = "") -> GtcrnExport:
    from nsconv.model.assets import sha256_file

    onnx_path = Path(onnx_path)
    out_dir = Path(out_dir)
    model, tflite, cal = convert_core(onnx_path, calib, log)
    core = out_dir / CORE_FILE
    core.write_bytes(tflite)
    spec = core_spec(model, tflite, str(core))
    meta = {"format": FORMAT, "kind": "gtcrn", "source_model": onnx_path.name,
            "source_sha256": sha256_file(onnx_path), "tflite": CORE_FILE,
            "features": spec.features, "mask": spec.mask,
            "states": [{"name": s.name, "input": s.input, "output": s.output}
                       for s in spec.states],
            "calibration": cal}
    (out_dir / SPEC_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    log("compiling the core to C")
    result = generate_nd(core, spec, out_dir / "c", command_line=command_line)
    return GtcrnExport(spec, core, result, meta)


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
