# SPDX-License-Identifier: Apache-2.0
"""Which layers go int4: a measured sensitivity ranking and a greedy choice under a budget.

Sensitivity of a layer: make only that layer int4 (with the rounding that will ship), run every
exit whose path holds it as it will ship, i.e. the int8 .tflite with the int4 weights patched in,
in the TFLM interpreter, streaming over the calibration clips with its states fed back, and
measure the RMS difference of its masks from the all-int8 model's masks. A layer's cost is the
largest of its exits' RMS differences (every exit must stay good, not the average); the bytes it
saves are its filters' int8 size minus their packed int4 size (weights.layer_weight_bytes).

Choice (`choose_formats`): if the weights of the layers the kept exits use fit the budget, all
int8. Otherwise layers go int4 in order of cost per byte saved until they fit; then layers whose
return to int8 still fits are returned, most costly first (the greedy pass can overshoot). Costs
of several int4 layers are not measured together: the ranking assumes they add up.

The ranking and the int4 weights are cached under the nsconv cache directory, keyed by a sha256
of the model's layers and exits, the calibration clips, the front end and the rounding (and, for
the ranking, of the int8 models), so `fit` and `export` can ask again at no cost.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nsconv.errors import NsconvError
from nsconv.model.netspec import NetSpec
from nsconv.quant.int4 import Int4Weights, layer_matrices
from nsconv.quant.weights import apply_int4, int4_weights, layer_weight_bytes

RANKING_FORMAT = "nsconv-int4-ranking-1"
ARENA_BYTES = 1 << 20


@dataclass(frozen=True)
class LayerCost:
    layer: str
    mask_rms: dict[str, float]  # exit -> RMS(mask with only this layer int4 - all-int8 mask)
    int8_bytes: int
    int4_bytes: int

    @property
    def saved_bytes(self) -> int:
        return self.int8_bytes - self.int4_bytes

    @property
    def cost(self) -> float:
        return max(self.mask_rms.values()) if self.mask_rms else 0.0

    @property
    def cost_per_kib(self) -> float:
        return self.cost / max(self.saved_bytes, 1) * 1024

    def to_json(self) -> dict:
        return {"layer": self.layer, "mask_rms": self.mask_rms, "cost": self.cost,
                "int8_bytes": self.int8_bytes, "int4_bytes": self.int4_bytes,
                "saved_bytes": self.saved_bytes, "cost_per_kib": self.cost_per_kib}


@dataclass(frozen=True)
class Ranking:
    """Every layer's measured cost of int4, cheapest per byte saved first."""

    rounding: str
    measured_with: str  # "tflm": the int8 models with the layer's int4 weights, in TFLM
    frames: int
    layers: tuple[LayerCost, ...]

    def layer(self, name: str) -> LayerCost:
        return next(c for c in self.layers if c.layer == name)

    def to_json(self) -> dict:
        return {"format": RANKING_FORMAT, "rounding": self.rounding,
                "measured_with": self.measured_with, "frames": self.frames,
                "metric": "RMS of mask difference from the all-int8 model, per exit; cost = "
                          "the largest over the exits that use the layer",
                "layers": [c.to_json() for c in self.layers]}

    @staticmethod
    def from_json(d: dict) -> Ranking:
        if d.get("format") != RANKING_FORMAT:
            raise ValueError("not an int4 ranking")
        return Ranking(d["rounding"], d["measured_with"], int(d["frames"]), tuple(
            LayerCost(c["layer"], {k: float(v) for k, v in c["mask_rms"].items()},
                      int(c["int8_bytes"]), int(c["int4_bytes"])) for c in d["layers"]))

    def table(self) -> str:
        lines = [f"int4 sensitivity ({self.rounding}, {self.measured_with}, {self.frames} "
                 "frames): mask RMS difference from all-int8",
                 f"  {'layer':<16} {'saves':>10} {'cost':>9} {'per KiB':>9}  per exit"]
        for c in self.layers:
            per_exit = ", ".join(f"{k} {v:.4f}" for k, v in c.mask_rms.items())
            lines.append(f"  {c.layer:<16} {c.saved_bytes:>10,} {c.cost:>9.5f} "
                         f"{c.cost_per_kib:>9.6f}  {per_exit}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Choice:
    formats: dict[str, str]
    budget_bytes: int
    int8_bytes: int  # weights of the kept exits' layers, all int8
    weight_bytes: int  # the same with the chosen formats
    exits: tuple[str, ...]
    ranking: Ranking | None = field(default=None, repr=False)

    @property
    def fits(self) -> bool:
        return self.weight_bytes <= self.budget_bytes

    @property
    def int4_layers(self) -> list[str]:
        return [k for k, v in self.formats.items() if v == "int4"]

    def to_json(self) -> dict:
        return {"formats": self.formats, "int4_layers": self.int4_layers,
                "budget_bytes": self.budget_bytes, "int8_bytes": self.int8_bytes,
                "weight_bytes": self.weight_bytes, "fits": self.fits, "exits": list(self.exits),
                "ranking": None if self.ranking is None else self.ranking.to_json()}


def greedy_formats(spec: NetSpec, costs: Mapping[str, LayerCost], budget_bytes: int,
                   exits: Sequence[str]) -> Choice:
    """The greedy choice of the module docstring, from given costs (no measurement)."""
    used = _layers_of(spec, exits)
    total = sum(costs[name].int8_bytes for name in used)
    int8_total = total
    order = sorted(used, key=lambda n: (costs[n].cost_per_kib, n))
    chosen: list[str] = []
    for name in order:
        if total <= budget_bytes:
            break
        chosen.append(name)
        total -= costs[name].saved_bytes
    for name in sorted(chosen, key=lambda n: -costs[n].cost):
        if total + costs[name].saved_bytes <= budget_bytes:
            chosen.remove(name)
            total += costs[name].saved_bytes
    formats = {name: ("int4" if name in chosen else "int8") for name in spec.layers}
    return Choice(formats, budget_bytes, int8_total, total, tuple(exits))


def _layers_of(spec: NetSpec, exits: Sequence[str]) -> list[str]:
    used: list[str] = []
    for ex in exits:
        for layer in spec.exit_layers(spec.exit(ex)):
            if layer.name not in used:
                used.append(layer.name)
    return used


def check_budget(spec: NetSpec, budget_bytes: int, exits: Sequence[str] | None = None,
                 where=None) -> None:
    """NsconvError when the kept exits' weights exceed the budget even all in int4."""
    exits = tuple(exits or (e.name for e in spec.exits))
    floor = sum(layer_weight_bytes(spec, n, "int4") for n in _layers_of(spec, exits))
    if floor > budget_bytes:
        raise NsconvError(f"a weight budget of {budget_bytes:,} bytes is too small: the weights "
                          f"of exits {', '.join(exits)} need {floor:,} bytes even with every "
                          "layer int4", where)


def choose_formats(spec: NetSpec, budget_bytes: int, exits: Sequence[str] | None = None,
                   rounding: str = "gptq", converted: Sequence | None = None,
                   clips: Sequence[Path] | None = None, inputs=None, log=None) -> Choice:
    """{layer: "int8" | "int4"} for the kept exits' layers to fit budget_bytes of weights, with
    the ranking that decided it. converted: the int8 QuantizedExits of spec calibrated on
    `clips` (e.g. converted_exits(OUT); default: converted here, only when the ranking is not
    cached); inputs: gptq.LayerInputs by layer (default: recorded here when needed).
    Raises NsconvError when even all-int4 weights do not fit."""
    exits = tuple(exits or (e.name for e in spec.exits))
    used = _layers_of(spec, exits)
    bytes8 = sum(layer_weight_bytes(spec, n, "int8") for n in used)
    if bytes8 <= budget_bytes:  # nothing to measure
        return Choice({n: "int8" for n in spec.layers}, budget_bytes, bytes8, bytes8, exits)
    check_budget(spec, budget_bytes, exits)
    ranking = rank_layers(spec, rounding, converted, clips, inputs, log)
    costs = {c.layer: c for c in ranking.layers}
    choice = greedy_formats(spec, costs, budget_bytes, exits)
    return Choice(choice.formats, budget_bytes, choice.int8_bytes, choice.weight_bytes, exits,
                  ranking)


# ---------------------------------------------------------------------------------------------
# Measuring


def rank_layers(spec: NetSpec, rounding: str = "gptq", converted: Sequence | None = None,
                clips: Sequence[Path] | None = None, inputs=None, log=None) -> Ranking:
    """The sensitivity ranking of every layer (cached; see the module docstring)."""
    from nsconv.quant.quantize import calibration_clips, calibration_features

    log = log or (lambda *_: None)
    clips = list(clips or calibration_clips())
    feats = calibration_features(clips, spec.frontend)
    # the int8 models are the converter's deterministic output for the model and clips, so its
    # version stands for them in the key, and a cached ranking needs no conversion
    key = cache_key(spec, clips, rounding, _converter_version())
    path = _cache_root() / f"ranking-{key[:24]}.json"
    if path.is_file():
        try:
            return _sized(spec, Ranking.from_json(json.loads(path.read_text())))
        except (ValueError, KeyError, TypeError):
            pass  # a stale or partial file: measure again
    converted = list(converted) if converted is not None else _convert_all(spec, feats)
    weights = cached_int4_weights(spec, rounding, clips, lambda: inputs or _inputs(spec, feats),
                                  log)
    log(f"int4 sensitivity: {len(spec.layers)} layers, {len(converted)} exits, "
        f"{sum(len(f) for f in feats)} frames in TFLM")
    by_exit = {q.name: q for q in converted}
    base = {name: exit_masks(q, feats) for name, q in by_exit.items()}
    costs = []
    for layer in spec.layers:
        mine = {m.name: weights[m.name] for m in layer_matrices(spec, layer)}
        rms = {}
        for ex in spec.exits:
            if layer in {x.name for x in spec.exit_layers(ex)}:
                q = by_exit[ex.name]
                tflite, _ = apply_int4(q.tflite, spec, ex.name, mine)
                masks = exit_masks(q, feats, tflite)
                rms[ex.name] = float(np.sqrt(np.mean((masks - base[ex.name]) ** 2)))
        costs.append(LayerCost(layer, rms, layer_weight_bytes(spec, layer, "int8"),
                               layer_weight_bytes(spec, layer, "int4")))
    ranking = _sized(spec, Ranking(rounding, "tflm", sum(len(f) for f in feats), tuple(costs)))
    _write_atomic(path, json.dumps(ranking.to_json(), indent=1))
    return ranking


def _sized(spec: NetSpec, ranking: Ranking) -> Ranking:
    """The ranking with every layer's bytes from weights.layer_weight_bytes (a cached ranking
    keeps its measurements, not a byte count an older packing gave), cheapest per byte first."""
    costs = [LayerCost(c.layer, c.mask_rms, layer_weight_bytes(spec, c.layer, "int8"),
                       layer_weight_bytes(spec, c.layer, "int4")) for c in ranking.layers]
    if {c.layer for c in costs} != set(spec.layers):
        raise ValueError("the ranking does not cover the model's layers")
    costs.sort(key=lambda c: (c.cost_per_kib, c.layer))
    return Ranking(ranking.rounding, ranking.measured_with, ranking.frames, tuple(costs))


def exit_masks(q, feats: list[np.ndarray], tflite: bytes | None = None) -> np.ndarray:
    """Float masks of one exit's int8 model in TFLM over the utterances (frames concatenated),
    streaming from zero states with the state rule of quantize.py."""
    from tflite_micro.python.tflite_micro import runtime

    from nsconv.audio.frontend import dequantize, quantize
    from nsconv.quant import params, refops

    interp = runtime.Interpreter.from_bytes(tflite or q.tflite, arena_size=ARENA_BYTES)

    def shape(position: int) -> tuple[int, ...]:
        return tuple(int(d) for d in interp.get_input_details(position)["shape"])

    req = {s.layer: (None if (s.output.scale, s.output.zero_point)
                     == (s.input.scale, s.input.zero_point)
                     else params.requantize_params(s.output.scale, s.output.zero_point,
                                                   s.input.scale, s.input.zero_point))
           for s in q.states}
    out = []
    for utt in feats:
        fq = quantize(utt, q.features.scale, q.features.zero_point)
        states = {s.layer: np.full(shape(s.input.position), s.input.zero_point, np.int8)
                  for s in q.states}
        for t in range(len(fq)):
            interp.set_input(fq[t].reshape(shape(q.features.position)), q.features.position)
            for s in q.states:
                interp.set_input(states[s.layer], s.input.position)
            interp.invoke()
            out.append(np.asarray(interp.get_output(q.mask.position)).reshape(-1).copy())
            for s in q.states:
                new = np.asarray(interp.get_output(s.output.position)).reshape(
                    shape(s.input.position))
                p = req[s.layer]
                states[s.layer] = new.copy() if p is None else refops.requantize_s8(p, new)
    return dequantize(np.stack(out), q.mask.scale, q.mask.zero_point)


def converted_exits(root: Path) -> list:
    """The int8 QuantizedExits of a converted output directory (for `converted=`)."""
    from nsconv.quant.manifest import Manifest
    from nsconv.quant.quantize import QuantizedExit

    m = Manifest.load(root)
    if m.weight_formats:
        raise NsconvError("already holds int4 layers: rank on an all-int8 conversion", root)
    return [QuantizedExit(e.name, (Path(root) / e.tflite).read_bytes(), e.features, e.mask,
                          e.states) for e in m.exits]


def _convert_all(spec: NetSpec, feats) -> list:
    from nsconv.quant.quantize import convert_exit, record_closed_loop

    return [convert_exit(spec, ex, record_closed_loop(spec, ex, feats)) for ex in spec.exits]


def _inputs(spec: NetSpec, feats):
    from nsconv.quant.gptq import record_layer_inputs

    return record_layer_inputs(spec, feats)


# ---------------------------------------------------------------------------------------------
# Cache


def spec_digest(spec: NetSpec) -> str:
    """sha256 of what decides a model's int4 weights: structure, exits, weights, front end."""
    h = hashlib.sha256()
    h.update(json.dumps({"input": spec.input_size, "backbone": spec.backbone,
                         "exits": spec.describe_exits(), "frontend": spec.frontend.to_json(),
                         "layers": [[n, type(L).__name__] for n, L in spec.layers.items()]},
                        sort_keys=True).encode())
    for name in spec.layers:
        for m in layer_matrices(spec, name):
            h.update(m.name.encode())
            h.update(np.ascontiguousarray(m.weight, np.float32).tobytes())
            if m.bias is not None:
                h.update(np.ascontiguousarray(m.bias, np.float32).tobytes())
    return h.hexdigest()


def cache_key(spec: NetSpec, clips: Sequence[Path], rounding: str, extra: str = "") -> str:
    from nsconv.model.assets import sha256_file

    h = hashlib.sha256(spec_digest(spec).encode())
    h.update(rounding.encode())
    for c in clips:
        h.update(sha256_file(Path(c)).encode())
    h.update(extra.encode())
    return h.hexdigest()


def _converter_version() -> str:
    from importlib.metadata import version

    return f"{RANKING_FORMAT} tensorflow {version('tensorflow')} tflm {version('tflite-micro')}"


def cached_int4_weights(spec: NetSpec, rounding: str, clips: Sequence[Path],
                        inputs: Callable[[], Mapping], log=None) -> dict[str, Int4Weights]:
    """Every layer's int4 weights (by Keras FC name), computed once per model, clips and
    rounding; inputs() gives gptq.LayerInputs by layer when they must be computed."""
    path = _cache_root() / f"weights-{cache_key(spec, clips, rounding)[:24]}.npz"
    mats = {m.name: m for n in spec.layers for m in layer_matrices(spec, n)}
    if path.is_file():
        try:
            with np.load(path) as z:
                return {k: Int4Weights(z[f"{k}/values"], z[f"{k}/scales"], m.bias)
                        for k, m in mats.items()}
        except (ValueError, KeyError, OSError):
            pass
    if log:
        log(f"int4 weights ({rounding}) of {len(spec.layers)} layers")
    weights: dict[str, Int4Weights] = {}
    if rounding == "gptq":  # each layer on its own: the ranking makes one layer int4 at a time
        from nsconv.quant.gptq import gptq_layer

        layer_inputs = inputs()
        for name in spec.layers:
            weights.update(gptq_layer(spec, name, layer_inputs[name]))
    else:
        weights = int4_weights(spec, list(spec.layers), rounding)
    arrays = {}
    for k, w in weights.items():
        arrays[f"{k}/values"], arrays[f"{k}/scales"] = w.values, w.scales
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return weights


def _cache_root() -> Path:
    from nsconv.model.assets import cache_dir

    return cache_dir() / "int4"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
