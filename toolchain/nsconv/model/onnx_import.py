# SPDX-License-Identifier: Apache-2.0
"""Import of nsNet2-family ONNX graphs (as PyTorch's exporters write them) into a `NetSpec`.

First the graph is simplified by the onnxscript optimizer (pinned): constant subgraphs are folded,
so the weights that torch's default (dynamo) exporter builds with Slice/Concat/Reshape become
plain constants. Then it is read as a chain of layers from its one input: MatMul/Gemm (+ bias
Add) with an optional Relu or Sigmoid is a dense layer; a GRU (linear_before_reset=1, forward,
default activations, zero initial state) is a GRU layer; Transpose/Squeeze/Unsqueeze/Reshape/
Identity on the data path are layout only (the streaming model works on one frame). Nodes that
only compute shapes (from `Shape` of a data tensor, e.g. the dynamo exporter's Shape/Slice/Mul/
Concat for a dynamic time axis, or the legacy exporter's zero initial state) are dropped; the
initial state is checked to be zeros.

Names: a layer takes its PyTorch module path (node metadata `pkg.torch.onnx.name_scopes` of the
dynamo exporter, the `/fc1/MatMul` node names of the legacy one, or the `fc1.bias` /
`gru1.weight_ih_l0` parameter names), made an identifier by `nsconv.names.identifier`
(`enc.fc1` -> `enc_fc1`); the layers of one multi-layer nn.GRU are `<module>_l0`, `<module>_l1`.
When some layer has no source name, all layers take position names (fc1, fc2, ..., gru1, ...).
Every graph output is an exit: one output is the exit `final`; with several, an exit takes its
output's name (a `mask_` prefix dropped, made an identifier), and an output without a usable name
(torch's automatic names: numeric such as `109`, `output`, `output_3`, `sigmoid`, `sigmoid_1`)
is `exit_<n>`, n its position
among the outputs. The backbone is the path to the deepest output (most MACs).
Any other op on the data path makes the graph not an nsNet2-family graph: `OutsideFamily` names
the op, the node and the reason.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nsconv.errors import NsconvError
from nsconv.model.netspec import GRU, Dense, ExitSpec, NetSpec
from nsconv.names import identifier

LAYOUT_OPS = {"Transpose", "Squeeze", "Unsqueeze", "Reshape", "Identity", "Flatten"}
RECURRENT_OPS = {"LSTM", "RNN", "GRU", "Loop", "Scan", "If"}
DATA_PATH_HINTS = {
    "Gather": "indexing the features (e.g. a 2-D (frames, bins) input or x[0]); export with a "
              "(batch, frames, bins) input and no indexing",
    "LSTM": "LSTM is not in the nsNet2 family (dense and GRU layers only)",
    "RNN": "a plain RNN is not in the nsNet2 family (dense and GRU layers only)",
}
class OutsideFamily(NsconvError):
    """The graph holds an op the nsNet2-family importer does not map."""

    def __init__(self, op_type: str, node_name: str, path: Path, why: str = "",
                 recurrent: bool = False) -> None:
        self.op_type = op_type
        self.recurrent = recurrent  # the graph holds a recurrence: no onnx2tf fallback
        detail = f": {why}" if why else ""
        super().__init__(f"op {op_type} (node {node_name!r}) is outside the nsNet2 family{detail}",
                         path)


@dataclass
class _Builder:
    kind: str  # "dense" | "gru"
    parent: str | None  # layer producing the input, None for the graph input
    arrays: dict
    source: str | None  # module path from the exporter, None when it wrote none
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
        owners = _param_owners(model)
        return _import(fold_constants(model, path), path, owners)
    except NsconvError:
        raise
    except Exception as exc:  # inconsistent tensors that onnx.checker lets through
        msg = " ".join(str(exc).split())[:160]
        raise NsconvError(f"malformed ONNX graph ({type(exc).__name__}: {msg})", path) from None


def fold_constants(model, path: Path):
    """Constant subgraphs folded by the onnxscript optimizer (the tool torch's exporter uses)."""
    import onnxscript.optimizer

    try:
        return onnxscript.optimizer.optimize(model, input_size_limit=10**9,
                                             output_size_limit=10**9)
    except Exception as exc:  # the optimizer's errors name a node; keep them to one line
        msg = " ".join(str(exc).split())[:160]
        raise NsconvError(f"constant folding failed ({type(exc).__name__}: {msg})", path) from None


def has_recurrence(model) -> bool:
    return any(n.op_type in RECURRENT_OPS for n in model.graph.node)


def _module_path(node) -> str | None:
    """The PyTorch module a node belongs to, when the exporter recorded it."""
    for prop in node.metadata_props:  # dynamo: cumulative scopes, e.g. ['', 'enc', 'enc.0', 'linear']
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return None
            return scopes[-2] if len(scopes) >= 3 and scopes[-2] else None
    if node.name.startswith("/"):  # legacy exporter: /enc/fc1/MatMul
        parts = [p for p in node.name.split("/") if p][:-1]
        return ".".join(parts) or None
    return None


def _param_owners(model) -> dict[str, str]:
    """Node name -> module path from the parameter names it reads (`fc1.bias`,
    `gru1.weight_ih_l0`), traced through the subgraphs that build them, before folding."""
    producers = {out: node for node in model.graph.node for out in node.output}
    inits = {t.name for t in model.graph.initializer}
    owners: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type not in ("MatMul", "Gemm", "GRU", "Add"):
            continue
        found, todo, seen = set(), list(node.input[1:]), set()
        while todo:
            t = todo.pop()
            if t in seen or not t:
                continue
            seen.add(t)
            if t in inits:
                m = re.fullmatch(r"(.+)\.(weight|bias)(_ih|_hh)?(_l\d+)?", t)
                if m:
                    found.add(m.group(1) + (m.group(4) or ""))
            elif t in producers:
                todo.extend(producers[t].input)
        if len(found) == 1:
            owners[node.name] = found.pop()
    return owners


def _import(model, path: Path, owners: dict[str, str]) -> NetSpec:
    graph = model.graph
    walk = _Walk(model, path, owners)
    for node in graph.node:
        walk.node(node)
    outputs = [o.name for o in graph.output]
    if any(o not in walk.alias or walk.alias[o] is None for o in outputs):
        raise NsconvError("a graph output is not computed from the input by mapped layers", path)
    return _netspec(walk, outputs)


def _graph_constants(graph) -> tuple[dict, dict]:
    """(initializers, initializers and Constant node values) by tensor name."""
    from onnx import numpy_helper

    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consts = dict(inits)
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(attr.t)
    return inits, consts


class _Walk:
    """One pass over the graph's nodes in order: which layer produces each data tensor
    (`alias`), and the layers being built (`builders`, named by position until the end)."""

    def __init__(self, model, path: Path, owners: dict[str, str]) -> None:
        graph = model.graph
        inits, self.consts = _graph_constants(graph)
        self.producers = {out: node for node in graph.node for out in node.output}
        inputs = [i for i in graph.input if i.name not in inits]
        if len(inputs) != 1:
            raise NsconvError(f"expected one input (features), found {len(inputs)}", path)
        in_dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
        if not in_dims or in_dims[-1] <= 0:
            raise NsconvError("input's last dimension (frequency bins) is not fixed", path)
        self.input_size = in_dims[-1]
        self.path, self.owners = path, owners
        self.recurrent = has_recurrence(model)
        self.alias: dict[str, str | None] = {inputs[0].name: None}  # tensor -> its layer
        self.builders: dict[str, _Builder] = {}

    def outside(self, op: str, node, why: str = "") -> OutsideFamily:
        return OutsideFamily(op, node.name, self.path, why, self.recurrent)

    def new_layer(self, kind: str, parent: str | None, arrays: dict, node) -> str:
        name = f"_{len(self.builders)}"  # renamed once all layers are known
        source = _module_path(node) or self.owners.get(node.name)
        self.builders[name] = _Builder(kind, parent, arrays, source)
        return name

    def node(self, node) -> None:
        data_in = [i for i in node.input if i in self.alias]
        op = node.op_type
        if not data_in or op in ("Shape", "Size"):
            return  # shape arithmetic, or an unfolded computation checked where it is used
        src = self.alias[data_in[0]]
        if op in LAYOUT_OPS:
            if len(data_in) != 1 or node.input[0] != data_in[0]:
                raise self.outside(op, node, "a data tensor is used as a shape")
            self.alias[node.output[0]] = src
        elif op in ("MatMul", "Gemm"):
            self.alias[node.output[0]] = _dense(node, op, src, self.consts, self.builders,
                                                self.new_layer, self.outside)
        elif op == "Add":
            self.bias_add(node, src, data_in)
        elif op in ("Relu", "Sigmoid"):
            self.activation(node, src)
        elif op == "GRU":
            self.gru(node, src)
        elif op in DATA_PATH_HINTS:
            raise self.outside(op, node, DATA_PATH_HINTS[op])
        else:
            raise self.outside(op, node, "the family has dense layers with ReLU or sigmoid "
                               "and GRU layers only")

    def bias_add(self, node, src: str | None, data_in: list[str]) -> None:
        other = [i for i in node.input if i not in self.alias]
        b = self.builders.get(src) if src else None
        if (len(data_in) != 1 or not other or other[0] not in self.consts or b is None
                or b.kind != "dense" or b.stage != "matmul"):
            raise self.outside("Add", node, "only a bias add after MatMul is mapped")
        b.arrays["bias"] = b.arrays["bias"] + np.broadcast_to(self.consts[other[0]],
                                                              b.arrays["bias"].shape)
        b.stage = "bias"
        self.alias[node.output[0]] = src

    def activation(self, node, src: str | None) -> None:
        b = self.builders.get(src) if src else None
        if b is None or b.kind != "dense" or b.stage == "act":
            raise self.outside(node.op_type, node,
                               "an activation is mapped only right after a dense layer")
        b.activation = node.op_type.lower()
        b.stage = "act"
        self.alias[node.output[0]] = src

    def gru(self, node, src: str | None) -> None:
        arrays = _gru_arrays(node, self.consts, self.producers, self.path, self.outside)
        name = self.new_layer("gru", src, arrays, node)
        self.alias[node.output[0]] = name
        if len(node.output) > 1 and node.output[1]:  # Y_h equals the last Y step: data too
            self.alias[node.output[1]] = name


def _netspec(walk: _Walk, outputs: list[str]) -> NetSpec:
    """The layers under their final names and the exits the outputs define."""
    builders = walk.builders
    rename = _layer_names(builders)
    layers = {}
    for key, b in builders.items():
        a = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in b.arrays.items()}
        name = rename[key]
        if b.kind == "dense":
            layers[name] = Dense(name, a["weight"], a["bias"], b.activation)
        else:
            layers[name] = GRU(name, a["w"], a["r"], a["wb"], a["rb"])

    def chain(layer: str) -> list[str]:
        out = []
        cur: str | None = layer
        while cur is not None:
            out.append(rename[cur])
            cur = builders[cur].parent
        return out[::-1]

    paths = [chain(walk.alias[o]) for o in outputs]
    names = exit_names(outputs)
    try:
        return NetSpec(walk.input_size, layers, *tree_exits(paths, names, layers))
    except NsconvError as exc:
        raise NsconvError(exc.problem, walk.path) from None


def _dense(node, op, src, consts, builders, new_layer, outside) -> str:
    weight = consts.get(node.input[1])
    if weight is None or weight.ndim != 2:
        raise outside(op, node, "the weight is not a constant matrix")
    bias = np.zeros(weight.shape[1], np.float32)
    stage = "matmul"
    if op == "Gemm":
        attrs = {a.name: a for a in node.attribute}
        if "transA" in attrs and attrs["transA"].i:
            raise outside(op, node, "transA=1")
        if "transB" in attrs and attrs["transB"].i:
            weight = weight.T
        for key in ("alpha", "beta"):
            if key in attrs and attrs[key].f != 1.0:
                raise outside(op, node, f"{key} != 1")
        bias = np.zeros(weight.shape[1], np.float32)
        if len(node.input) > 2 and node.input[2]:
            if node.input[2] not in consts:
                raise outside(op, node, "the bias is not a constant")
            bias = np.broadcast_to(consts[node.input[2]], (weight.shape[1],)).copy()
            stage = "bias"
    name = new_layer("dense", src, {"weight": weight, "bias": bias}, node)
    builders[name].stage = stage
    return name


def _gru_arrays(node, consts, producers, path, outside) -> dict:
    attrs = {a.name: a for a in node.attribute}
    direction = attrs["direction"].s.decode() if "direction" in attrs else "forward"
    if direction == "bidirectional":
        raise outside("GRU", node, "bidirectional GRU: a streaming model runs forward in time "
                      "only (use a unidirectional nn.GRU)")
    if direction != "forward":
        raise outside("GRU", node, f"direction {direction}: only forward GRUs stream")
    if not ("linear_before_reset" in attrs and attrs["linear_before_reset"].i == 1):
        raise outside("GRU", node, "linear_before_reset must be 1 (as PyTorch's nn.GRU)")
    if "activations" in attrs and [s.decode() for s in attrs["activations"].strings] != [
            "Sigmoid", "Tanh"]:
        raise outside("GRU", node, "activations other than Sigmoid, Tanh")
    if "clip" in attrs:
        raise outside("GRU", node, "attribute clip is not supported")
    if "layout" in attrs and attrs["layout"].i != 0:
        raise outside("GRU", node, "layout=1 is not supported")
    w, r = consts.get(node.input[1]), consts.get(node.input[2])
    if w is None or r is None:
        which = " and ".join(k for k, v in (("W", w), ("R", r)) if v is None)
        raise outside("GRU", node, f"non-constant {which}: the weights must be constants "
                      "(or subgraphs of constants)")
    hidden = r.shape[-1]
    b = consts.get(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    if len(node.input) > 3 and node.input[3] and b is None:
        raise outside("GRU", node, "non-constant B: the biases must be constants")
    b = np.zeros((1, 6 * hidden), np.float32) if b is None else b
    if (w.ndim != 3 or w.shape[:2] != (1, 3 * hidden) or r.shape != (1, 3 * hidden, hidden)
            or b.shape != (1, 6 * hidden)):
        raise NsconvError(f"GRU {node.name!r}: inconsistent W {w.shape}, R {r.shape}, "
                          f"B {b.shape} for hidden size {hidden}", path)
    if len(node.input) > 4 and node.input[4]:
        raise outside("GRU", node, "sequence_lens is not supported")
    if len(node.input) > 5 and node.input[5]:
        _check_zero_state(node.input[5], producers, consts, path, node.name)
    return {"w": w[0], "r": r[0], "wb": b[0, : 3 * hidden], "rb": b[0, 3 * hidden :]}


def _layer_names(builders: dict) -> dict[str, str]:
    """Builder key -> layer name: source module paths (see the module doc) or positions."""
    if all(b.source for b in builders.values()):
        per_module: dict[tuple, int] = {}
        for b in builders.values():
            per_module[(b.kind, b.source)] = per_module.get((b.kind, b.source), 0) + 1
        seen: dict[tuple, int] = {}
        names = {}
        for key, b in builders.items():
            base = identifier(b.source)
            if per_module[(b.kind, b.source)] > 1:  # layers of one nn.GRU(num_layers=N)
                k = seen.get((b.kind, b.source), 0)
                seen[(b.kind, b.source)] = k + 1
                if not re.search(r"_l\d+$", base):
                    base = f"{base}_l{k}"
            names[key] = base
        if len(set(names.values())) == len(names):
            return names
    counts = {"dense": 0, "gru": 0}
    names = {}
    for key, b in builders.items():
        counts[b.kind] += 1
        names[key] = f"{'fc' if b.kind == 'dense' else 'gru'}{counts[b.kind]}"
    return names


def exit_names(outputs: list[str]) -> list[str]:
    """Exit names from output names (the rule in the module doc)."""
    if len(outputs) == 1:
        return ["final"]
    names = []
    for n, out in enumerate(outputs):
        base = re.sub(r"^mask[_\-.]?", "", out)
        name = identifier(base)
        if re.fullmatch(r"t_\d*|(output|sigmoid)(_\d+)?|t|", name):  # torch's automatic names
            name = f"exit_{n}"
        names.append(name)
    dup = {n for n in names if names.count(n) > 1}
    return [f"exit_{i}" if n in dup else n for i, n in enumerate(names)]


def tree_exits(paths: list[list[str]], names: list[str], layers: dict):
    """(backbone, exits) of a tree of layer paths, one per output: the backbone is the path to
    the deepest output (most MACs; on a tie, the later output), minus its last layer."""
    macs = [sum(layers[n].macs for n in p) for p in paths]
    deepest = max(range(len(paths)), key=lambda i: (macs[i], i))
    backbone = tuple(paths[deepest][:-1])
    if not backbone:
        backbone = tuple(paths[deepest])
    exits = []
    for name, p in zip(names, paths, strict=True):
        common = 0
        while common < min(len(p) - 1, len(backbone)) and p[common] == backbone[common]:
            common += 1
        if common == 0:
            raise NsconvError(f"output of exit {name!r} shares no layer with the backbone")
        exits.append(ExitSpec(name, backbone[common - 1], tuple(p[common:])))
    exits.sort(key=lambda e: (backbone.index(e.after), sum(layers[n].macs for n in e.head)))
    return backbone, tuple(exits)


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
