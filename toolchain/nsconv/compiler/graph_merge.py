# SPDX-License-Identifier: Apache-2.0
"""Merging the per-exit graphs into one early-exit graph (stage "IR -> merged IR").

Each exit is a separate int8 TFLite model of its own sub-network. Exits share their backbone,
so most ops appear in several models. An op is computed once when, in two exits, it has the
same type and options, the same constant operands (bytes, shape and quantization), the same
(already merged) activation operands and the same output quantization and shape. Constants are
deduplicated by content on their own, so identical weights are emitted once even when the ops
using them cannot be shared.

Exits are processed in manifest (backbone) order and each exit's ops in model order; the merged
schedule is the concatenation of the ops each exit adds, so it is topological and every exit's
ops form a subsequence of it. Each merged op records the set of exits that run it.

What could not be shared is reported: an op of a later exit whose counterpart in an earlier exit
(the op with the same scope-free output tensor name, or for FULLY_CONNECTED the same weights)
differs; the reason names the first difference. Ops that differ only because an input differs
are reported as consequences, not causes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from nsconv.compiler import packing
from nsconv.compiler.tflite_ir import (
    Activation,
    DType,
    Graph,
    Op,
    OpKind,
    OpOptions,
    Quant,
    Tensor,
    read_tflite,
)
from nsconv.errors import NsconvError
from nsconv.quant.manifest import ExitEntry, Manifest, StateRef


class ValueKind(enum.Enum):
    FEATURES = "features"  # the step's input frame (the caller's buffer)
    STATE = "state"  # a GRU state input (a persistent buffer in the model)
    ACTIVATION = "activation"  # computed by an op


@dataclass(frozen=True)
class Value:
    """An int8 activation of the merged graph."""

    id: int
    kind: ValueKind
    name: str  # the source tensor name in the first exit that has it
    shape: tuple[int, ...]
    quant: Quant
    state: str | None = None  # layer name, for STATE values

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class Const:
    """A constant operand (weights int8, bias int32), deduplicated by content."""

    id: int
    name: str  # the source tensor name in the first exit that has it
    dtype: DType
    shape: tuple[int, ...]
    quant: Quant | None
    data: bytes
    exits: frozenset[int]  # exits whose ops read it
    int4: bool = False  # FULLY_CONNECTED weights on the int4 grid: emitted packed

    @property
    def nbytes(self) -> int:
        """Bytes of the emitted constant (int4 weights: packed two per byte)."""
        if self.int4:
            return self.shape[0] * packing.row_bytes(self.shape[1])
        return len(self.data)


@dataclass(frozen=True)
class Operand:
    """An op operand: an activation value, a constant, or absent (optional FC bias)."""

    value: int = -1
    const: int = -1

    @property
    def absent(self) -> bool:
        return self.value < 0 and self.const < 0


@dataclass(frozen=True)
class MergedOp:
    id: int  # position in the merged schedule
    kind: OpKind
    inputs: tuple[Operand, ...]
    outputs: tuple[int, ...]  # value ids
    options: OpOptions
    exits: frozenset[int]  # exit indices that run it
    sources: tuple[tuple[int, int], ...]  # (exit index, op index in that exit's model)

    @property
    def activation(self) -> Activation:
        return getattr(self.options, "activation", Activation.NONE)


@dataclass(frozen=True)
class MergedState:
    """One GRU state buffer; stored in the quantization of the state input tensor."""

    layer: str
    size: int
    value: int  # the STATE value id
    quant: Quant


@dataclass(frozen=True)
class StateUpdate:
    """After a step of `exit`, state `layer` := requantize(value, from quant to state quant)."""

    layer: str
    value: int
    quant: Quant  # the state output's quantization in that exit


@dataclass(frozen=True)
class MergedExit:
    index: int
    name: str
    after: str
    path: str  # the exit's .tflite
    sha256: str
    features: int  # value id
    mask: int  # value id
    ops: tuple[int, ...]  # merged op ids, in schedule order
    updates: tuple[StateUpdate, ...]
    macs: int  # analytic, from the exit's own model
    manifest_macs: int | None
    tensor_values: tuple[tuple[int, int], ...]  # (tensor index in the exit model, value id)

    def value_of(self, tensor: int) -> int:
        for t, v in self.tensor_values:
            if t == tensor:
                return v
        raise KeyError(tensor)


@dataclass(frozen=True)
class Unshared:
    exit: str
    op_index: int
    kind: OpKind
    output: str  # output tensor name
    counterpart: tuple[str, int]  # (exit, op index) of the op it was compared with
    reason: str
    root_cause: bool  # False when it only differs because an input is not shared


@dataclass(frozen=True)
class MergedGraph:
    exits: tuple[MergedExit, ...]
    values: tuple[Value, ...]
    consts: tuple[Const, ...]
    ops: tuple[MergedOp, ...]
    states: tuple[MergedState, ...]
    unshared: tuple[Unshared, ...]
    separate_ops: int  # ops summed over the exit models
    separate_const_bytes: int  # constant bytes summed over the exit models

    def exit(self, name: str) -> MergedExit:
        for e in self.exits:
            if e.name == name:
                return e
        raise NsconvError(f"no exit named {name!r} (exits: "
                          + ", ".join(e.name for e in self.exits) + ")")

    @property
    def const_bytes(self) -> int:
        return sum(c.nbytes for c in self.consts)

    def exit_const_bytes(self, index: int) -> tuple[int, int]:
        """(own, shared) constant bytes of an exit: read only by it / also by another exit."""
        own = shared = 0
        for c in self.consts:
            if index in c.exits:
                if len(c.exits) == 1:
                    own += c.nbytes
                else:
                    shared += c.nbytes
        return own, shared

    def merged_macs(self, index: int) -> int:
        """MACs of an exit counted on the merged schedule (must equal the exit's own)."""
        total = 0
        for op in self.ops:
            if index in op.exits and op.kind is OpKind.FULLY_CONNECTED:
                w = self.consts[op.inputs[1].const]
                total += w.shape[0] * w.shape[1]
        return total

    def summary(self) -> str:
        lines = [f"merged graph: {len(self.ops)} ops (separately {self.separate_ops}), "
                 f"{self.const_bytes:,} constant bytes (separately "
                 f"{self.separate_const_bytes:,})"]
        for e in self.exits:
            own, shared = self.exit_const_bytes(e.index)
            lines.append(f"  exit {e.name}: {len(e.ops)} ops, {e.macs:,} MACs, constants "
                         f"{own + shared:,} bytes ({own:,} own, {shared:,} shared)")
        roots = [u for u in self.unshared if u.root_cause]
        if roots:
            lines.append(f"  not shared: {len(self.unshared)} ops, {len(roots)} root cause(s):")
            for u in roots:
                lines.append(f"    {u.exit} op {u.op_index} ({u.kind.value}, {u.output}) vs "
                             f"{u.counterpart[0]} op {u.counterpart[1]}: {u.reason}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExitModel:
    """One exit: its manifest entry and its parsed model."""

    entry: ExitEntry
    graph: Graph


def load_exits(out_dir: Path) -> tuple[Manifest, tuple[ExitModel, ...]]:
    manifest = Manifest.load(out_dir)
    models = []
    for e in manifest.exits:
        graph = read_tflite(Path(out_dir) / e.tflite, int4=e.int4_weights)
        models.append(ExitModel(e, graph))
    return manifest, tuple(models)


def scope_free(name: str) -> str:
    """Tensor name without its first scope (the per-exit model name, e.g. `step_gru1_1/`)."""
    parts = []
    for seg in name.split(";"):
        parts.append(seg.split("/", 1)[1] if "/" in seg else seg)
    return ";".join(parts)


def _check_ref(graph: Graph, index: int, name: str, scale: float, zp: int, what: str) -> Tensor:
    if not 0 <= index < len(graph.tensors):
        raise NsconvError(f"manifest {what} tensor index {index} out of range", graph.path)
    t = graph.tensors[index]
    if t.name != name:
        raise NsconvError(f"manifest {what} is tensor {index} {name!r}, the model has "
                          f"{t.name!r} there", graph.path)
    if t.dtype is not DType.INT8 or t.quant is None or t.quant.per_channel:
        raise NsconvError(f"{what} tensor {name!r} is not per-tensor int8", graph.path)
    if abs(t.quant.scale - scale) > 1e-6 * scale or t.quant.zero_point != zp:
        raise NsconvError(f"{what} tensor {name!r}: manifest quantization ({scale:g}, {zp}) "
                          f"differs from the model's ({t.quant.scale:g}, {t.quant.zero_point})",
                          graph.path)
    return t


@dataclass
class _OpBuild:
    """A merged op while exits are still being added (MergedOp once done)."""

    kind: OpKind
    inputs: tuple[Operand, ...]
    outputs: tuple[int, ...]
    options: OpOptions
    exits: set[int]
    sources: list[tuple[int, int]]
    key: tuple  # what makes two ops the same computation
    name: str  # scope-free output tensor name, for the diagnostics


@dataclass
class _ExitScope:
    """The exit being added."""

    k: int  # its index
    name: str
    graph: Graph
    tmap: dict[int, int]  # tensor index -> value id
    corr: dict[int, int]  # tensor -> the value it corresponds to (for the diagnostics)


class _Merger:
    def __init__(self) -> None:
        self.values: list[Value] = []
        self.consts: list[Const] = []
        self.const_keys: dict[tuple, int] = {}
        self.const_exits: dict[int, set[int]] = {}
        self.ops: list[_OpBuild] = []  # mutable while merging; frozen at the end
        self.op_keys: dict[tuple, int] = {}
        self.features: int | None = None
        self.states: dict[str, MergedState] = {}
        self.exits: list[MergedExit] = []
        self.unshared: list[Unshared] = []
        # for the diagnostics: merged ops by type and corresponding activation operands
        self.by_struct: dict[tuple, list[int]] = {}
        self.graphs: list[Graph] = []
        self.exits_names: list[str] = []

    def new_value(self, kind: ValueKind, t: Tensor, state: str | None = None) -> int:
        assert t.quant is not None
        v = Value(len(self.values), kind, t.name, t.shape, t.quant, state)
        self.values.append(v)
        return v.id

    def const(self, t: Tensor, exit_index: int) -> int:
        assert t.data is not None
        key = (t.dtype, t.shape, t.quant, t.data, t.int4)
        cid = self.const_keys.get(key)
        if cid is None:
            cid = len(self.consts)
            self.consts.append(Const(cid, t.name, t.dtype, t.shape, t.quant, t.data,
                                     frozenset(), t.int4))
            self.const_keys[key] = cid
            self.const_exits[cid] = set()
        self.const_exits[cid].add(exit_index)
        return cid

    def add_exit(self, k: int, model: ExitModel) -> None:
        """Merge exit k's ops into the graph (sharing every op an earlier exit computes)."""
        e, g = model.entry, model.graph
        tmap, declared = self.bind_inputs(e, g)
        self.graphs.append(g)
        self.exits_names.append(e.name)
        scope = _ExitScope(k, e.name, g, tmap, dict(tmap))
        op_ids = [self.add_op(scope, op) for op in g.ops]
        self.exits.append(self.finish_exit(scope, e, declared, op_ids))

    def bind_inputs(self, e: ExitEntry, g: Graph) -> tuple[dict[int, int], set[int]]:
        """The values of the exit's model inputs (tensor index -> value id), checked against
        the manifest and the earlier exits, and the input tensors the manifest declares."""
        feat = _check_ref(g, e.features.index, e.features.name, e.features.scale,
                          e.features.zero_point, "features")
        tmap = {feat.index: self.bind_features(e, g, feat)}
        for s in e.states:
            t_in = self.bind_state(e, g, s)
            tmap[t_in.index] = self.states[s.layer].value
        declared = {feat.index} | {s.input.index for s in e.states}
        for name, idx in g.inputs:
            if idx not in declared:
                raise NsconvError(f"model input {name!r} is neither the features nor a state "
                                  "in the manifest", g.path)
        return tmap, declared

    def bind_features(self, e: ExitEntry, g: Graph, feat: Tensor) -> int:
        """The FEATURES value: one frame, quantized alike, for every exit."""
        if self.features is None:
            self.features = self.new_value(ValueKind.FEATURES, feat)
        elif self.values[self.features].quant != feat.quant or \
                self.values[self.features].shape != feat.shape:
            first = self.values[self.features]
            raise NsconvError(f"exit {e.name}: features quantized ({feat.quant.scale:g}, "
                              f"{feat.quant.zero_point}) unlike the first exit "
                              f"({first.quant.scale:g}, {first.quant.zero_point}); the step "
                              "takes one feature frame", g.path)
        return self.features

    def bind_state(self, e: ExitEntry, g: Graph, s: StateRef) -> Tensor:
        """Checks state `s` of the exit and adds its STATE value when it is the first exit that
        has it; returns the state input tensor."""
        t_in = _check_ref(g, s.input.index, s.input.name, s.input.scale,
                          s.input.zero_point, f"state {s.layer} input")
        _check_ref(g, s.output.index, s.output.name, s.output.scale, s.output.zero_point,
                   f"state {s.layer} output")
        if t_in.size != s.size:
            raise NsconvError(f"state {s.layer}: tensor {t_in.name!r} has {t_in.size} "
                              f"elements, manifest says {s.size}", g.path)
        known = self.states.get(s.layer)
        if known is None:
            vid = self.new_value(ValueKind.STATE, t_in, s.layer)
            self.states[s.layer] = MergedState(s.layer, s.size, vid, t_in.quant)
        elif known.quant != t_in.quant or known.size != s.size:
            raise NsconvError(f"exit {e.name}: state {s.layer} input quantized "
                              f"({t_in.quant.scale:g}, {t_in.quant.zero_point}) unlike in "
                              f"an earlier exit ({known.quant.scale:g}, "
                              f"{known.quant.zero_point}); there is one state buffer",
                              g.path)
        return t_in

    def operands(self, scope: _ExitScope, op: Op) -> tuple[Operand, ...]:
        g = scope.graph
        operands: list[Operand] = []
        for i in op.inputs:
            if i < 0:
                operands.append(Operand())
            elif g.tensors[i].is_const:
                operands.append(Operand(const=self.const(g.tensors[i], scope.k)))
            else:
                if i not in scope.tmap:
                    raise NsconvError(f"op {op.index} ({op.kind.value}) reads tensor "
                                      f"{g.tensors[i].name!r} before it is computed", g.path)
                operands.append(Operand(value=scope.tmap[i]))
        return tuple(operands)

    def add_op(self, scope: _ExitScope, op: Op) -> int:
        """The merged op that computes `op`: an existing one with the same key, else a new one.
        Binds the op's output tensors to its values."""
        operands = self.operands(scope, op)
        outs = [scope.graph.tensors[o] for o in op.outputs]
        key = (op.kind, op.options, operands, tuple((t.shape, t.quant) for t in outs))
        mid = self.op_keys.get(key)
        if mid is None:
            mid = self.new_op(scope, op, key, outs)
        else:
            self.ops[mid].exits.add(scope.k)
            self.ops[mid].sources.append((scope.k, op.index))
            for t, vid in zip(outs, self.ops[mid].outputs, strict=True):
                scope.corr[t.index] = vid
        for t, vid in zip(outs, self.ops[mid].outputs, strict=True):
            if t.index in scope.tmap:
                raise NsconvError(f"tensor {t.name!r} is written twice", scope.graph.path)
            scope.tmap[t.index] = vid
        return mid

    def new_op(self, scope: _ExitScope, op: Op, key: tuple, outs: list[Tensor]) -> int:
        """A merged op no earlier exit has; when an earlier exit has its counterpart, why they
        differ is recorded."""
        g = scope.graph
        twin = self.counterpart(g, op, scope.corr)
        if twin is not None:
            self.diagnose(scope.k, scope.name, g, op, key, twin)
        skey = self.struct_key(g, op, scope.tmap)
        out_ids = tuple(self.new_value(ValueKind.ACTIVATION, t) for t in outs)
        mid = len(self.ops)
        self.ops.append(_OpBuild(op.kind, key[2], out_ids, op.options, {scope.k},
                                 [(scope.k, op.index)], key, scope_free(outs[0].name)))
        self.op_keys[key] = mid
        if skey is not None:
            self.by_struct.setdefault(skey, []).append(mid)
        twin_outs = self.ops[twin].outputs if twin is not None else ()
        for t, vid in zip(outs, twin_outs, strict=False):
            scope.corr[t.index] = vid
        return mid

    def finish_exit(self, scope: _ExitScope, e: ExitEntry, declared: set[int],
                    op_ids: list[int]) -> MergedExit:
        """The merged exit: its mask, its state updates and its ops."""
        g, tmap = scope.graph, scope.tmap
        mask = _check_ref(g, e.mask.index, e.mask.name, e.mask.scale, e.mask.zero_point, "mask")
        if mask.index not in tmap or mask.index in declared:
            raise NsconvError(f"mask tensor {mask.name!r} is not computed", g.path)
        updates = []
        for s in e.states:
            if s.output.index not in tmap or s.output.index in declared:
                raise NsconvError(f"state output {s.output.name!r} is not computed", g.path)
            quant = g.tensors[s.output.index].quant
            assert quant is not None
            updates.append(StateUpdate(s.layer, tmap[s.output.index], quant))
        assert self.features is not None
        return MergedExit(
            scope.k, e.name, e.after, g.path, g.sha256, self.features, tmap[mask.index],
            tuple(sorted(set(op_ids))), tuple(updates), g.macs, e.macs_per_frame,
            tuple(sorted(tmap.items())))

    # -- diagnostics -------------------------------------------------------------------------

    def counterpart(self, g: Graph, op: Op, corr: dict[int, int]) -> int | None:
        """The merged op this unshared op would have been: same type, operands that correspond
        (computed from corresponding values), and the same weights or the same scope-free
        output name."""
        shape = self.struct_key(g, op, corr)
        if shape is None:
            return None
        cands = self.by_struct.get(shape, [])
        name = scope_free(g.tensors[op.outputs[0]].name)
        if op.kind is OpKind.FULLY_CONNECTED:
            data = g.tensors[op.inputs[1]].data
            for mid in cands:
                if self.consts[self.ops[mid].inputs[1].const].data == data:
                    return mid
        for mid in cands:
            if self.ops[mid].name == name:
                return mid
        if op.kind is not OpKind.FULLY_CONNECTED and len(cands) == 1:
            return cands[0]
        return None

    def struct_key(self, g: Graph, op: Op, corr: dict[int, int]) -> tuple | None:
        parts = []
        for i in op.inputs:
            if i < 0:
                parts.append(None)
            elif g.tensors[i].is_const:
                parts.append("const")
            elif i in corr:
                parts.append(corr[i])
            else:
                return None
        return (op.kind, tuple(parts))

    def diagnose(self, k: int, exit_name: str, g: Graph, op: Op, key: tuple, mid: int) -> None:
        c_exit, c_index = self.ops[mid].sources[0]
        c_graph = self.graphs[c_exit]
        c_op = c_graph.ops[c_index]
        reason, root = _difference(key, self.ops[mid].key, op, c_op, g, c_graph)
        self.unshared.append(Unshared(exit_name, op.index, op.kind,
                                      g.tensors[op.outputs[0]].name,
                                      (self.exits_names[c_exit], c_index), reason, root))

    def result(self, models: tuple[ExitModel, ...]) -> MergedGraph:
        consts = tuple(Const(c.id, c.name, c.dtype, c.shape, c.quant, c.data,
                             frozenset(self.const_exits[c.id]), c.int4) for c in self.consts)
        ops = tuple(MergedOp(i, d.kind, d.inputs, d.outputs, d.options, frozenset(d.exits),
                             tuple(d.sources))
                    for i, d in enumerate(self.ops))
        sep_ops = sum(len(m.graph.ops) for m in models)
        sep_bytes = 0
        for m in models:
            seen = set()
            for op in m.graph.ops:
                for i in op.inputs:
                    if i >= 0 and m.graph.tensors[i].is_const and i not in seen:
                        seen.add(i)
                        sep_bytes += len(m.graph.tensors[i].data or b"")
        return MergedGraph(tuple(self.exits), tuple(self.values), consts, ops,
                           tuple(self.states.values()), tuple(self.unshared), sep_ops, sep_bytes)


def _qtext(q: Quant | None) -> str:
    if q is None:
        return "none"
    if q.per_channel:
        return f"{len(q.scales)} per-channel scales"
    return f"scale {q.scale:.9g} zero point {q.zero_point}"


def _difference(key: tuple, c_key: tuple, op: Op, c_op: Op, g: Graph,
                c_graph: Graph) -> tuple[str, bool]:
    """A readable first difference between two op keys, and whether it is a root cause."""
    kind, options, operands, outs = key
    c_kind, c_options, c_operands, c_outs = c_key
    if kind != c_kind:
        return f"op type {kind.value} vs {c_kind.value}", True
    if len(operands) != len(c_operands):
        return f"{len(operands)} vs {len(c_operands)} operands", True
    for n, (a, b) in enumerate(zip(operands, c_operands, strict=True)):
        if a == b:
            continue
        ta, tb = g.tensors[op.inputs[n]], c_graph.tensors[c_op.inputs[n]]
        if a.absent or b.absent:
            return f"operand {n}: present in one model only", True
        if a.value >= 0 and b.value >= 0:
            return f"input {ta.name!r} is itself not shared", False
        if a.const >= 0 and b.const >= 0:
            if ta.shape != tb.shape:
                return f"constant {ta.name!r}: shape {list(ta.shape)} vs {list(tb.shape)}", True
            if ta.quant != tb.quant:
                return (f"constant {ta.name!r}: quantization differs "
                        f"({_qtext(ta.quant)} vs {_qtext(tb.quant)})"), True
            return f"constant {ta.name!r}: contents differ", True
        return f"operand {n}: constant in one model, computed in the other", True
    if options != c_options:
        return f"options {options} vs {c_options}", True
    for n, ((sa, qa), (sb, qb)) in enumerate(zip(outs, c_outs, strict=False)):
        if sa != sb:
            return f"output {n}: shape {list(sa)} vs {list(sb)}", True
        if qa != qb:
            return (f"output {g.tensors[op.outputs[n]].name!r}: {_qtext(qa)} vs "
                    f"{_qtext(qb)} (calibrated differently)"), True
    return "no difference found", True


def merge(models: tuple[ExitModel, ...] | list[ExitModel]) -> MergedGraph:
    """Merge exit models given in backbone order (the manifest's order)."""
    if not models:
        raise NsconvError("no exits to merge")
    names = [m.entry.name for m in models]
    if len(set(names)) != len(names):
        raise NsconvError(f"exit names are not unique: {names}")
    merger = _Merger()
    for k, m in enumerate(models):
        merger.add_exit(k, m)
    return merger.result(tuple(models))


def merge_dir(out_dir: Path) -> tuple[Manifest, MergedGraph]:
    manifest, models = load_exits(out_dir)
    return manifest, merge(models)


def parse_exit_names(text: str) -> tuple[str, ...]:
    """'gru1,gru2' -> ('gru1', 'gru2'); refuses empty and repeated names."""
    names = tuple(n.strip() for n in text.split(","))
    if not names or any(not n for n in names):
        raise NsconvError(f"--exits {text!r}: give exit names separated by commas")
    if len(set(names)) != len(names):
        raise NsconvError(f"--exits {text!r}: an exit is named twice")
    return names


def keep_exits(out_dir: Path, names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Reduce a converted output directory to the named exits (kept in backbone order) and
    return the names dropped. The other exits' manifest entries and TFLite files are removed,
    so the merge sees only the kept exits' models: the ops only dropped exits run are not
    generated and the constants only they read are not emitted. The kept exits' TFLite files
    are untouched (each exit is converted on its own), so they stay bit-exact with the full
    export's."""
    import dataclasses

    manifest = Manifest.load(out_dir)
    known = [e.name for e in manifest.exits]
    for n in names:
        manifest.exit(n)  # refuses unknown names, listing the exits
    if len(set(names)) != len(names):
        raise NsconvError("an exit is named twice")
    kept = tuple(e for e in manifest.exits if e.name in names)
    if not kept:
        raise NsconvError("no exits to keep", out_dir)
    dropped = tuple(n for n in known if n not in names)
    kept_files = {e.tflite for e in kept}
    for e in manifest.exits:
        if e.name in dropped and e.tflite not in kept_files:
            (Path(out_dir) / e.tflite).unlink(missing_ok=True)
    # a dropped default exit gives way to the manifest's rule for none: the deepest kept exit
    default = manifest.default_exit if manifest.default_exit in names else None
    dataclasses.replace(manifest, exits=kept, default_exit=default).save()
    return dropped
