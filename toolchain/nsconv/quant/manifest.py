# SPDX-License-Identifier: Apache-2.0
"""OUT/manifest.json: what `convert` produced, read by every later stage."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from nsconv.audio.spec import DEFAULT as DEFAULT_FRONTEND
from nsconv.audio.spec import FrontendSpec
from nsconv.errors import NsconvError

FORMAT = "nsconv-manifest-1"
STATE_POLICY = "requantize-to-input"


@dataclass(frozen=True)
class TensorRef:
    """A model input/output: subgraph tensor index, tensor name, int8 quantization."""

    index: int
    position: int  # place among the subgraph's inputs (or outputs): TFLM addresses them so
    name: str
    scale: float
    zero_point: int

    def to_json(self) -> dict:
        return {"index": self.index, "position": self.position, "name": self.name,
                "scale": self.scale, "zero_point": self.zero_point}

    @staticmethod
    def from_json(d: dict) -> TensorRef:
        return TensorRef(int(d["index"]), int(d["position"]), str(d["name"]), float(d["scale"]),
                         int(d["zero_point"]))


@dataclass(frozen=True)
class StateRef:
    layer: str
    size: int
    input: TensorRef
    output: TensorRef

    def to_json(self) -> dict:
        return {"layer": self.layer, "size": self.size, "input": self.input.to_json(),
                "output": self.output.to_json()}

    @staticmethod
    def from_json(d: dict) -> StateRef:
        return StateRef(d["layer"], int(d["size"]), TensorRef.from_json(d["input"]),
                        TensorRef.from_json(d["output"]))


@dataclass(frozen=True)
class ExitEntry:
    name: str
    after: str
    head: tuple[str, ...]
    tflite: str  # path relative to the output directory
    tflite_bytes: int
    macs_per_frame: int
    params: int
    features: TensorRef
    mask: TensorRef
    states: tuple[StateRef, ...]
    # .tflite names of the FULLY_CONNECTED filters that hold int4-grid values (in [-7, 7], int4
    # scales; quant/int4.py): what the code generator packs two to a byte. Written only when
    # not empty, so all-int8 manifests are as before.
    int4_weights: tuple[str, ...] = ()

    def to_json(self) -> dict:
        d = {"name": self.name, "after": self.after, "head": list(self.head),
             "tflite": self.tflite, "tflite_bytes": self.tflite_bytes,
             "macs_per_frame": self.macs_per_frame, "params": self.params,
             "features": self.features.to_json(), "mask": self.mask.to_json(),
             "states": [s.to_json() for s in self.states]}
        if self.int4_weights:
            d["int4_weights"] = list(self.int4_weights)
        return d

    @staticmethod
    def from_json(d: dict) -> ExitEntry:
        return ExitEntry(d["name"], d["after"], tuple(d["head"]), d["tflite"],
                         int(d["tflite_bytes"]), int(d["macs_per_frame"]), int(d["params"]),
                         TensorRef.from_json(d["features"]), TensorRef.from_json(d["mask"]),
                         tuple(StateRef.from_json(s) for s in d["states"]),
                         tuple(str(n) for n in d.get("int4_weights", ())))


@dataclass(frozen=True)
class Manifest:
    root: Path
    source_path: str
    source_sha256: str
    model_file: str  # the float NetSpec, relative to root
    exits: tuple[ExitEntry, ...]
    calibration: tuple[str, ...]
    calibration_frames: int
    frontend: FrontendSpec = DEFAULT_FRONTEND  # manifests without one are the DNS default

    # The exit `enhance` and `run` use without --exit: `convert --default-exit`, else the deepest
    # exit (most MACs per frame; on a tie, the later one).
    default_exit: str | None = None

    # {layer: "int8" | "int4"} for every NetSpec layer, when any layer is int4 (quant/weights.py);
    # empty: every layer int8 (and the key is not written). int4_rounding: "gptq" or "rtn".
    weight_formats: dict[str, str] = field(default_factory=dict)
    int4_rounding: str | None = None

    def weight_format(self, layer: str) -> str:
        return self.weight_formats.get(layer, "int8")

    @property
    def default(self) -> ExitEntry:
        if self.default_exit:
            return self.exit(self.default_exit)
        return max(reversed(self.exits), key=lambda e: e.macs_per_frame)

    def exit(self, name: str) -> ExitEntry:
        for e in self.exits:
            if e.name == name:
                return e
        raise NsconvError(f"no exit named {name!r} (exits: "
                          + ", ".join(e.name for e in self.exits) + ")", self.root)

    def to_json(self) -> dict:
        from nsconv import __version__
        return {
            "format": FORMAT,
            "nsconv_version": __version__,
            "source_model": {"path": self.source_path, "sha256": self.source_sha256},
            "model": self.model_file,
            "frontend": self.frontend.to_json(),
            "state_policy": STATE_POLICY,
            "calibration": {"clips": list(self.calibration), "frames": self.calibration_frames},
            "exits": [e.to_json() for e in self.exits],
            "default_exit": self.default.name,
            **({"weight_formats": dict(self.weight_formats), "int4_rounding": self.int4_rounding}
               if any(f != "int8" for f in self.weight_formats.values()) else {}),
        }

    def save(self) -> None:
        (self.root / "manifest.json").write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @staticmethod
    def load(root: Path) -> Manifest:
        path = Path(root) / "manifest.json"
        if not path.is_file():
            raise NsconvError("no manifest.json: not an nsconv output directory", root)
        try:
            d = json.loads(path.read_text())
            if d.get("format") != FORMAT:
                raise NsconvError(f"unknown manifest format {d.get('format')!r}", path)
            return Manifest(Path(root), d["source_model"]["path"], d["source_model"]["sha256"],
                            d["model"], tuple(ExitEntry.from_json(e) for e in d["exits"]),
                            tuple(d["calibration"]["clips"]), int(d["calibration"]["frames"]),
                            _frontend(d.get("frontend"), path), d.get("default_exit"),
                            _formats(d.get("weight_formats", {})), d.get("int4_rounding"))
        except NsconvError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise NsconvError(f"malformed manifest ({type(exc).__name__}: {exc})", path) from None


def _formats(d) -> dict[str, str]:
    if not isinstance(d, dict) or any(f not in ("int8", "int4") for f in d.values()):
        raise ValueError(f"weight_formats {d!r} is not {{layer: 'int8' | 'int4'}}")
    return {str(k): str(v) for k, v in d.items()}


def _frontend(d, path: Path) -> FrontendSpec:
    """The manifest's front end; manifests written before it was stored held the default."""
    if isinstance(d, dict) and "rate" in d:
        return FrontendSpec.from_json(d, path)
    return DEFAULT_FRONTEND
