# SPDX-License-Identifier: Apache-2.0
"""Float network description of the nsNet2 family, and its exit description.

A `NetSpec` is what every later stage reads: the layers (dense and GRU, with float weights), the
backbone order, and the exits. An exit follows one backbone stage (`after`) and computes its mask
with its own head layers, applied in order to that stage's output. The baseline has one exit,
`final`, whose head is the last dense layer; Dynamic nsNet2 has exits after gru1, gru2, fc2 and
the final layer, with heads of one or more layers (a head may hold a GRU: its state is then the
exit's own).

On disk (`save` / `load`) a NetSpec is one .npz: a JSON string `spec` (structure and exits)
plus one array per weight, so it carries no pickled code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nsconv.audio.spec import DEFAULT as DEFAULT_FRONTEND
from nsconv.audio.spec import FrontendSpec
from nsconv.errors import NsconvError

ACTIVATIONS = ("linear", "relu", "sigmoid")
SPEC_FORMAT = "nsconv-netspec-1"


@dataclass(frozen=True, eq=False)
class Dense:
    """y = act(x @ weight + bias); weight shape (in, out)."""

    name: str
    weight: np.ndarray
    bias: np.ndarray
    activation: str = "linear"

    @property
    def in_size(self) -> int:
        return int(self.weight.shape[0])

    @property
    def out_size(self) -> int:
        return int(self.weight.shape[1])

    @property
    def macs(self) -> int:
        return self.in_size * self.out_size

    @property
    def params(self) -> int:
        return int(self.weight.size + self.bias.size)


@dataclass(frozen=True, eq=False)
class GRU:
    """ONNX GRU, linear_before_reset=1, gate order (z, r, h).

    w: (3H, in), r: (3H, H), wb and rb: (3H,). One step:
      z = sigmoid(x Wz' + Wbz + h Rz' + Rbz), r = sigmoid(x Wr' + Wbr + h Rr' + Rbr),
      n = tanh(x Wh' + Wbh + r * (h Rh' + Rbh)), h' = (1 - z) * n + z * h.
    """

    name: str
    w: np.ndarray
    r: np.ndarray
    wb: np.ndarray
    rb: np.ndarray

    @property
    def hidden(self) -> int:
        return int(self.r.shape[1])

    @property
    def in_size(self) -> int:
        return int(self.w.shape[1])

    @property
    def out_size(self) -> int:
        return self.hidden

    @property
    def macs(self) -> int:
        return 3 * self.hidden * (self.in_size + self.hidden)

    @property
    def params(self) -> int:
        return int(self.w.size + self.r.size + self.wb.size + self.rb.size)


Layer = Dense | GRU


@dataclass(frozen=True)
class ExitSpec:
    name: str
    after: str
    head: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class NetSpec:
    input_size: int
    layers: dict[str, Layer] = field(repr=False)
    backbone: tuple[str, ...]
    exits: tuple[ExitSpec, ...]
    # Free-form JSON-able provenance (training recipe, head style, ...); saved in the spec JSON
    # under "meta" and absent from files that have none.
    meta: dict = field(default_factory=dict, repr=False)
    # The STFT front end the model was trained with; saved in the spec JSON under "frontend"
    # (files without it load with the DNS NSNet2 default).
    frontend: FrontendSpec = DEFAULT_FRONTEND

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        names = set(self.layers)
        for name in self.backbone:
            if name not in names:
                raise NsconvError(f"backbone layer {name!r} is not defined")
        if not self.exits:
            raise NsconvError("the model defines no exit")
        seen = set()
        for ex in self.exits:
            if ex.name in seen:
                raise NsconvError(f"exit {ex.name!r} is defined twice")
            seen.add(ex.name)
            if ex.after not in self.backbone:
                raise NsconvError(f"exit {ex.name!r} follows {ex.after!r}, not a backbone stage")
            if not ex.head:
                raise NsconvError(f"exit {ex.name!r} has no head layer")
            for name in ex.head:
                if name not in names:
                    raise NsconvError(f"exit {ex.name!r} uses undefined layer {name!r}")
        order = [self.backbone.index(ex.after) for ex in self.exits]
        if order != sorted(order):
            raise NsconvError("exits must be listed in backbone order")
        # shapes along each exit path
        for ex in self.exits:
            size = self.input_size
            for layer in self.exit_layers(ex):
                if layer.in_size != size:
                    raise NsconvError(
                        f"layer {layer.name!r} takes {layer.in_size} inputs but gets {size} "
                        f"on the path of exit {ex.name!r}")
                size = layer.out_size
            last = self.layers[ex.head[-1]]
            if not (isinstance(last, Dense) and last.activation == "sigmoid"):
                raise NsconvError(f"exit {ex.name!r} must end in a sigmoid dense layer (the mask)")
            if size != self.input_size:
                raise NsconvError(f"exit {ex.name!r} produces {size} mask bins, "
                                  f"expected {self.input_size}")
        for layer in self.layers.values():
            for arr in _arrays(layer).values():
                if not np.all(np.isfinite(arr)):
                    raise NsconvError(f"layer {layer.name!r} has NaN or Inf weights")
            if isinstance(layer, Dense) and layer.activation not in ACTIVATIONS:
                raise NsconvError(f"layer {layer.name!r}: unsupported activation "
                                  f"{layer.activation!r}")

    def exit(self, name: str) -> ExitSpec:
        for ex in self.exits:
            if ex.name == name:
                return ex
        raise NsconvError(f"no exit named {name!r} (exits: "
                          + ", ".join(e.name for e in self.exits) + ")")

    def default_exit(self) -> ExitSpec:
        """meta["default_exit"] (set by `convert --default-exit`), else the deepest exit (most
        MACs; on a tie, the later one)."""
        if self.meta.get("default_exit"):
            return self.exit(self.meta["default_exit"])
        return max(reversed(self.exits), key=self.exit_macs)

    def exit_layers(self, ex: ExitSpec) -> list[Layer]:
        """Layers from the input to the exit's mask, in order."""
        stop = self.backbone.index(ex.after) + 1
        return [self.layers[n] for n in self.backbone[:stop] + ex.head]

    def exit_macs(self, ex: ExitSpec) -> int:
        return sum(layer.macs for layer in self.exit_layers(ex))

    def exit_params(self, ex: ExitSpec) -> int:
        return sum(layer.params for layer in self.exit_layers(ex))

    def grus(self, ex: ExitSpec) -> list[GRU]:
        return [layer for layer in self.exit_layers(ex) if isinstance(layer, GRU)]

    def describe_exits(self) -> list[dict]:
        return [{"name": e.name, "after": e.after, "head": list(e.head)} for e in self.exits]

    def save(self, path: Path, weight_dtype=np.float32, compressed: bool = False) -> None:
        """Write the .npz. weight_dtype float16 halves the file (weights are loaded back as
        float32, so a float16 file holds its model exactly); compressed uses zip deflate."""
        arrays: dict[str, np.ndarray] = {}
        layers = []
        for layer in self.layers.values():
            kind = "dense" if isinstance(layer, Dense) else "gru"
            entry = {"name": layer.name, "type": kind}
            if isinstance(layer, Dense):
                entry["activation"] = layer.activation
            for key, arr in _arrays(layer).items():
                arrays[f"{layer.name}/{key}"] = np.asarray(arr, dtype=weight_dtype)
            layers.append(entry)
        spec = {"format": SPEC_FORMAT, "input_size": self.input_size, "layers": layers,
                "backbone": list(self.backbone), "exits": self.describe_exits()}
        if self.meta:
            spec["meta"] = self.meta
        spec["frontend"] = self.frontend.to_json()
        with open(path, "wb") as f:
            (np.savez_compressed if compressed else np.savez)(
                f, spec=np.array(json.dumps(spec)), **arrays)

    @staticmethod
    def load(path: Path) -> NetSpec:
        try:
            with np.load(path, allow_pickle=False) as z:
                spec = json.loads(str(z["spec"]))
                arrays = {k: np.asarray(z[k], dtype=np.float32) for k in z.files if k != "spec"}
        except NsconvError:
            raise
        except Exception as exc:  # any malformed archive is a corrupt model
            raise NsconvError(f"not a readable nsconv model ({type(exc).__name__}: {exc})",
                              path) from None
        try:
            if spec.get("format") != SPEC_FORMAT:
                raise NsconvError(f"unknown model format {spec.get('format')!r}", path)
            layers: dict[str, Layer] = {}
            for entry in spec["layers"]:
                name = entry["name"]
                if entry["type"] == "dense":
                    layers[name] = Dense(name, arrays[f"{name}/weight"], arrays[f"{name}/bias"],
                                         entry["activation"])
                elif entry["type"] == "gru":
                    layers[name] = GRU(name, *(arrays[f"{name}/{k}"] for k in ("w", "r", "wb", "rb")))
                else:
                    raise NsconvError(f"unsupported layer type {entry['type']!r}", path)
            exits = tuple(ExitSpec(e["name"], e["after"], tuple(e["head"])) for e in spec["exits"])
            meta = spec.get("meta") or {}
            if not isinstance(meta, dict):
                raise NsconvError("model meta is not a JSON object", path)
            frontend = (FrontendSpec.from_json(spec["frontend"]) if "frontend" in spec
                        else DEFAULT_FRONTEND)
            return NetSpec(int(spec["input_size"]), layers, tuple(spec["backbone"]), exits,
                           meta=meta, frontend=frontend)
        except NsconvError as exc:
            raise NsconvError(exc.problem, path) from None
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise NsconvError(f"malformed model description ({type(exc).__name__}: {exc})",
                              path) from None


def _arrays(layer: Layer) -> dict[str, np.ndarray]:
    if isinstance(layer, Dense):
        return {"weight": layer.weight, "bias": layer.bias}
    return {"w": layer.w, "r": layer.r, "wb": layer.wb, "rb": layer.rb}


def with_random_exits(base: NetSpec, seed: int = 0) -> NetSpec:
    """The 4-exit Dynamic nsNet2 layout on a baseline backbone, heads random but sensibly scaled.

    Exits after gru1, gru2 and fc2 get a direct head (dense to the mask bins + sigmoid) with
    Glorot-uniform weights and a small negative bias (masks start near 0.4, like a trained
    suppressor); `final` keeps the baseline's last layer. For code-generation and verification
    tests: quality is not the point, realistic value ranges are.
    """
    rng = np.random.default_rng(seed)
    final = base.exits[-1]
    layers = dict(base.layers)
    exits = []
    for stage in ("gru1", "gru2", "fc2"):
        if stage not in base.backbone:
            raise NsconvError(f"backbone has no stage {stage!r}")
        n_in = layers[stage].out_size
        limit = np.sqrt(6.0 / (n_in + base.input_size))
        w = rng.uniform(-limit, limit, (n_in, base.input_size)).astype(np.float32)
        b = np.full(base.input_size, -0.4, np.float32)
        name = f"exit_{stage}_mask"
        layers[name] = Dense(name, w, b, "sigmoid")
        exits.append(ExitSpec(stage, stage, (name,)))
    exits.append(final)
    return NetSpec(base.input_size, layers, base.backbone, tuple(exits), frontend=base.frontend)
