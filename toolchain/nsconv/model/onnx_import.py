# SPDX-License-Identifier: Apache-2.0
"""Import of nsNet2-family ONNX graphs (as exported from PyTorch) into a `NetSpec`.

The graph is read as a chain of layers from its one input: MatMul/Gemm (+ bias Add) with an
optional Relu or Sigmoid is a dense layer; a GRU (linear_before_reset=1, forward, default
activations, zero initial state) is a GRU layer; Transpose/Squeeze/Unsqueeze/Reshape/Identity on
the data path are layout only (the streaming model works on one frame). Shape/Gather/Concat/
ConstantOfShape/Slice nodes that only build the zero initial state are checked, then dropped.

Every graph output is an exit. With one output the exit is `final`; with several, each output
names its exit and the backbone is the path to the last output. Any other op on the data path
makes the graph not an nsNet2-family graph: `OutsideFamily` names it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nsconv.errors import NsconvError
from nsconv.model.netspec import GRU, Dense, ExitSpec, NetSpec

LAYOUT_OPS = {"Transpose", "Squeeze", "Unsqueeze", "Reshape", "Identity"}
STATE_PLUMBING_OPS = {"Shape", "Gather", "Unsqueeze", "Concat", "ConstantOfShape", "Slice",
                      "Constant", "Cast", "Squeeze", "Expand"}


class OutsideFamily(NsconvError):
    """The graph holds an op the nsNet2-family importer does not map."""

    def __init__(self, op_type: str, node_name: str, path: Path, why: str = "") -> None:
        self.op_type = op_type
        detail = f" ({why})" if why else ""
        super().__init__(f"op {op_type} (node {node_name!r}) is outside the nsNet2 family{detail}",
                         path)


@dataclass
class _Builder:
    kind: str  # "dense" | "gru"
    parent: str | None  # layer producing the input, None for the graph input
    arrays: dict
    stage: str = "matmul"  # dense: matmul -> bias -> act
    activation: str = "linear"


def load_onnx(path: Path):
    import onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NsconvError(f"not a valid ONNX model ({msg[:200]})", path) from None
    return model


def import_onnx(path: Path) -> NetSpec:
    """nsNet2-family ONNX -> NetSpec. Raises OutsideFamily or NsconvError."""
    model = load_onnx(path)
    try:
        return _import(model, path)
    except NsconvError:
        raise
    except Exception as exc:  # inconsistent tensors that onnx.checker lets through
        msg = " ".join(str(exc).split())[:160]
        raise NsconvError(f"malformed ONNX graph ({type(exc).__name__}: {msg})", path) from None


def _import(model, path: Path) -> NetSpec:
    from onnx import numpy_helper

    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consts = dict(inits)
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(attr.t)
    producers = {out: node for node in graph.node for out in node.output}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise NsconvError(f"expected one input (features), found {len(inputs)}", path)
    in_dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    if not in_dims or in_dims[-1] <= 0:
        raise NsconvError("input's last dimension (frequency bins) is not fixed", path)
    input_size = in_dims[-1]

    alias: dict[str, str | None] = {inputs[0].name: None}  # data tensor -> producing layer
    builders: dict[str, _Builder] = {}
    counts = {"dense": 0, "gru": 0}

    def new_layer(kind: str, parent: str | None, arrays: dict) -> str:
        counts[kind] += 1
        name = f"fc{counts[kind]}" if kind == "dense" else f"gru{counts[kind]}"
        builders[name] = _Builder(kind, parent, arrays)
        return name

    for node in graph.node:
        data_in = [i for i in node.input if i in alias]
        op = node.op_type
        if not data_in:
            if op not in STATE_PLUMBING_OPS:
                raise OutsideFamily(op, node.name, path)
            continue
        src = alias[data_in[0]]
        if op in LAYOUT_OPS:
            alias[node.output[0]] = src
        elif op == "Shape":
            continue  # feeds only the zero-state construction, checked at the GRU
        elif op in ("MatMul", "Gemm"):
            weight = consts.get(node.input[1])
            if weight is None or weight.ndim != 2:
                raise OutsideFamily(op, node.name, path, "weight is not a constant matrix")
            bias = np.zeros(weight.shape[1], np.float32)
            if op == "Gemm":
                attrs = {a.name: a for a in node.attribute}
                if "transA" in attrs and attrs["transA"].i:
                    raise OutsideFamily(op, node.name, path, "transA=1")
                if "transB" in attrs and attrs["transB"].i:
                    weight = weight.T
                for key in ("alpha", "beta"):
                    if key in attrs and attrs[key].f != 1.0:
                        raise OutsideFamily(op, node.name, path, f"{key} != 1")
                bias = np.zeros(weight.shape[1], np.float32)
                if len(node.input) > 2 and node.input[2]:
                    bias = np.broadcast_to(consts[node.input[2]], (weight.shape[1],)).copy()
            name = new_layer("dense", src, {"weight": weight, "bias": bias})
            if op == "Gemm" and len(node.input) > 2 and node.input[2]:
                builders[name].stage = "bias"
            alias[node.output[0]] = name
        elif op == "Add":
            other = [i for i in node.input if i not in alias]
            b = builders.get(src) if src else None
            if (len(data_in) != 1 or not other or other[0] not in consts or b is None
                    or b.kind != "dense" or b.stage != "matmul"):
                raise OutsideFamily(op, node.name, path, "only a bias add after MatMul is mapped")
            b.arrays["bias"] = b.arrays["bias"] + np.broadcast_to(consts[other[0]],
                                                                  b.arrays["bias"].shape)
            b.stage = "bias"
            alias[node.output[0]] = src
        elif op in ("Relu", "Sigmoid"):
            b = builders.get(src) if src else None
            if b is None or b.kind != "dense" or b.stage == "act":
                raise OutsideFamily(op, node.name, path, "activation not after a dense layer")
            b.activation = op.lower()
            b.stage = "act"
            alias[node.output[0]] = src
        elif op == "GRU":
            attrs = {a.name: a for a in node.attribute}
            if not ("linear_before_reset" in attrs and attrs["linear_before_reset"].i == 1):
                raise OutsideFamily(op, node.name, path, "linear_before_reset must be 1")
            if "direction" in attrs and attrs["direction"].s not in (b"forward",):
                raise OutsideFamily(op, node.name, path, "only forward direction")
            for key in ("activations", "clip", "layout"):
                if key in attrs and (key != "layout" or attrs[key].i != 0):
                    raise OutsideFamily(op, node.name, path, f"attribute {key} is not supported")
            w, r = consts.get(node.input[1]), consts.get(node.input[2])
            if w is None or r is None:
                raise OutsideFamily(op, node.name, path, "W and R must be constants")
            hidden = r.shape[-1]
            b = consts.get(node.input[3]) if len(node.input) > 3 and node.input[3] else None
            b = np.zeros((1, 6 * hidden), np.float32) if b is None else b
            if (w.ndim != 3 or w.shape[:2] != (1, 3 * hidden) or r.shape != (1, 3 * hidden, hidden)
                    or b.shape != (1, 6 * hidden)):
                raise NsconvError(f"GRU {node.name!r}: inconsistent W {w.shape}, R {r.shape}, "
                                  f"B {b.shape} for hidden size {hidden}", path)
            if len(node.input) > 4 and node.input[4]:
                raise OutsideFamily(op, node.name, path, "sequence_lens is not supported")
            if len(node.input) > 5 and node.input[5]:
                _check_zero_state(node.input[5], producers, consts, path, node.name)
            name = new_layer("gru", src, {"w": w[0], "r": r[0], "wb": b[0, : 3 * hidden],
                                          "rb": b[0, 3 * hidden :]})
            alias[node.output[0]] = name
            # Y_h (second output) equals the last Y step; also a data tensor.
            if len(node.output) > 1 and node.output[1]:
                alias[node.output[1]] = name
        else:
            raise OutsideFamily(op, node.name, path)

    outputs = [o.name for o in graph.output]
    if any(o not in alias or alias[o] is None for o in outputs):
        raise NsconvError("a graph output is not computed from the input by mapped layers", path)
    layers = {}
    for name, b in builders.items():
        a = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in b.arrays.items()}
        if b.kind == "dense":
            layers[name] = Dense(name, a["weight"], a["bias"], b.activation)
        else:
            layers[name] = GRU(name, a["w"], a["r"], a["wb"], a["rb"])

    def chain(layer: str) -> list[str]:
        out = []
        cur: str | None = layer
        while cur is not None:
            out.append(cur)
            cur = builders[cur].parent
        return out[::-1]

    paths = [chain(alias[o]) for o in outputs]
    backbone = tuple(paths[-1][:-1])
    exits = []
    for out_name, p in zip(outputs, paths, strict=True):
        common = 0
        while common < min(len(p) - 1, len(backbone)) and p[common] == backbone[common]:
            common += 1
        if common == 0:
            raise NsconvError(f"output {out_name!r} shares no layer with the backbone", path)
        exit_name = "final" if len(outputs) == 1 else _exit_name(out_name)
        exits.append(ExitSpec(exit_name, backbone[common - 1], tuple(p[common:])))
    exits.sort(key=lambda e: backbone.index(e.after))
    try:
        return NetSpec(input_size, layers, backbone, tuple(exits))
    except NsconvError as exc:
        raise NsconvError(exc.problem, path) from None


def _exit_name(output_name: str) -> str:
    name = re.sub(r"^(mask|output|exit)[_\-.]?", "", output_name) or output_name
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _check_zero_state(tensor: str, producers: dict, consts: dict, path: Path, gru: str) -> None:
    """The initial state must be zeros built in the graph (ConstantOfShape 0, sliced/reshaped)."""
    from onnx import numpy_helper

    cur = tensor
    while True:
        if cur in consts:
            if np.any(consts[cur] != 0):
                raise OutsideFamily("GRU", gru, path, "initial state is not zero")
            return
        node = producers.get(cur)
        if node is None:
            raise OutsideFamily("GRU", gru, path, "initial state is a graph input")
        if node.op_type == "ConstantOfShape":
            for attr in node.attribute:
                if attr.name == "value" and np.any(numpy_helper.to_array(attr.t) != 0):
                    raise OutsideFamily("GRU", gru, path, "initial state is not zero")
            return
        if node.op_type not in ("Slice", "Unsqueeze", "Squeeze", "Reshape", "Identity", "Expand",
                                "Cast"):
            raise OutsideFamily("GRU", gru, path,
                                f"initial state computed by {node.op_type}, not zeros")
        cur = node.input[0]
