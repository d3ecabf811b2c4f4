# SPDX-License-Identifier: Apache-2.0
"""Weight formats per layer for `convert`/`export` (--weights, --flash-budget, --rounding).

  --weights int8               every layer int8 (the default: the converter's models, untouched)
  --weights int4               every layer int4
  --weights gru1=int4,fc3=int4 the named layers (NetSpec layer names); the others int8
  --weights auto               int4 for the layers chosen under --flash-budget by measured
                               quality cost per byte saved (quant/int4_choose.py)

The int8 models are converted as always; the int4 layers' weights are then written into every
exit's .tflite that holds them (quant/int4.patch_fc_weights), so the manifest's models are what
TFLM, verify and the generated C all see. The manifest records `weight_formats` and, per exit,
the .tflite names of its int4 filters (`int4_weights`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from nsconv.errors import NsconvError
from nsconv.model.netspec import NetSpec
from nsconv.quant.int4 import (
    FORMATS,
    Int4Weights,
    int4_tensor_names,
    layer_matrices,
    patch_fc_weights,
    rtn_layer,
)

ROUNDINGS = ("gptq", "rtn")
MODES = ("int8", "int4", "auto", "layers")


@dataclass(frozen=True)
class WeightsRequest:
    """What the user asked for: a mode, the named layers' formats, a budget, a rounding."""

    mode: str = "int8"
    layers: tuple[tuple[str, str], ...] = ()
    budget_bytes: int | None = None
    rounding: str = "gptq"

    @property
    def is_default(self) -> bool:
        return self.mode == "int8"

    @staticmethod
    def parse(text: str | None, budget_bytes: int | None = None,
              rounding: str = "gptq") -> WeightsRequest:
        """--weights TEXT [--flash-budget] [--rounding]; a budget alone means auto."""
        if rounding not in ROUNDINGS:
            raise NsconvError(f"--rounding {rounding!r}: use one of {', '.join(ROUNDINGS)}")
        if budget_bytes is not None and budget_bytes <= 0:
            raise NsconvError(f"--flash-budget {budget_bytes}: must be a positive size")
        mode = (text or ("auto" if budget_bytes is not None else "int8")).strip()
        if mode in ("int8", "int4", "auto"):
            if mode == "auto" and budget_bytes is None:
                raise NsconvError("--weights auto: needs a budget (--flash-budget SIZE, or "
                                  "export --part)")
            if mode != "auto" and budget_bytes is not None:
                raise NsconvError(f"--flash-budget applies to --weights auto, not {mode}")
            return WeightsRequest(mode, (), budget_bytes, rounding)
        if budget_bytes is not None:
            raise NsconvError("--flash-budget applies to --weights auto, not to a list of layers")
        pairs = []
        for item in mode.split(","):
            layer, sep, fmt = (p.strip() for p in item.partition("="))
            if not sep or not layer or not fmt:
                raise NsconvError(f"--weights {text!r}: {item.strip()!r} is not LAYER=FORMAT "
                                  "(e.g. gru1=int4,fc3=int4), int8, int4 or auto")
            if fmt not in FORMATS:
                raise NsconvError(f"--weights {text!r}: unknown format {fmt!r} for {layer} "
                                  f"(formats: {', '.join(FORMATS)})")
            if layer in dict(pairs):
                raise NsconvError(f"--weights {text!r}: layer {layer} is named twice")
            pairs.append((layer, fmt))
        return WeightsRequest("layers", tuple(pairs), None, rounding)

    def formats(self, spec: NetSpec, where=None) -> dict[str, str]:
        """{layer: format} for every layer of the spec (not for auto: see int4_choose)."""
        if self.mode == "auto":
            raise ValueError("auto formats are chosen by int4_choose.choose_formats")
        if self.mode in ("int8", "int4"):
            return {name: self.mode for name in spec.layers}
        unknown = [name for name, _ in self.layers if name not in spec.layers]
        if unknown:
            raise NsconvError(f"--weights: no layer named {unknown[0]!r} in the model (layers: "
                              + ", ".join(spec.layers) + ")", where)
        given = dict(self.layers)
        return {name: given.get(name, "int8") for name in spec.layers}

    def to_json(self) -> dict:
        return {"mode": self.mode, "layers": dict(self.layers),
                "budget_bytes": self.budget_bytes, "rounding": self.rounding}


def int4_weights(spec: NetSpec, layers, rounding: str, inputs=None,
                 feats=None) -> dict[str, Int4Weights]:
    """The int4 weights of `layers` by Keras FC name. gptq: quantized together, upstream first
    (gptq.sequential_gptq; needs the calibration features `feats`; inputs: the float model's
    gptq.LayerInputs by layer when already recorded); rtn: each on its own."""
    out: dict[str, Int4Weights] = {}
    if rounding == "rtn":
        for layer in layers:
            out.update(rtn_layer(spec, layer))
        return out
    from nsconv.quant.gptq import sequential_gptq

    return sequential_gptq(spec, layers, feats, inputs)


def apply_int4(tflite: bytes, spec: NetSpec, exit_name: str,
               weights: Mapping[str, Int4Weights]) -> tuple[bytes, tuple[str, ...]]:
    """An exit's .tflite with the int4 weights of the layers on its path, and the .tflite
    names of its int4 filters (the manifest's `int4_weights`)."""
    ex = spec.exit(exit_name)
    mine = {m.name: weights[m.name] for layer in spec.exit_layers(ex)
            for m in layer_matrices(spec, layer.name) if m.name in weights}
    if not mine:
        return tflite, ()
    return patch_fc_weights(tflite, mine), tuple(int4_tensor_names(tflite, mine))


def apply_formats(spec: NetSpec, converted: list, formats: Mapping[str, str],
                  weights: Mapping[str, Int4Weights]) -> list[tuple[object, tuple[str, ...]]]:
    """[(QuantizedExit with its int4 layers' weights patched in, its int4 filter names)] per
    exit; weights: int4 weights by Keras FC name, holding at least the int4 layers'."""
    int4 = {m.name for name, fmt in formats.items() if fmt == "int4"
            for m in layer_matrices(spec, name)}
    mine = {k: weights[k] for k in int4}
    out = []
    for q in converted:
        tflite, names = apply_int4(q.tflite, spec, q.name, mine)
        out.append((replace(q, tflite=tflite), names))
    return out


def layer_weight_bytes(spec: NetSpec, layer: str, fmt: str) -> int:
    """Flash bytes of a layer's FULLY_CONNECTED filters and int32 biases in a format."""
    total = 0
    for m in layer_matrices(spec, layer):
        out_f, in_f = m.weight.shape
        total += out_f * (in_f if fmt == "int8" else int4_row_bytes(in_f))
        total += 0 if m.bias is None else 4 * int(np.asarray(m.bias).size)
    return total


def int4_row_bytes(in_features: int) -> int:
    """Bytes of one packed int4 filter row: rows are padded to 16 weights, 8 bytes each
    (the layout of compiler/packing.py and nsn_fully_connected_s4, NSN_FC_S4_ROW_BYTES; a
    test checks the two agree)."""
    return 8 * -(-in_features // 16)
