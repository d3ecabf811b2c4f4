# SPDX-License-Identifier: Apache-2.0
"""C code generation for the merged early-exit graph (stage "codegen").

Python computes every quantization constant (nsconv.quant.params, TFLM's Prepare arithmetic) and
builds a view of the program (names, offsets, parameter values, schedule blocks); the Jinja2
templates in templates/ write all C text. Output is deterministic: the same inputs give the
same bytes.

Files: nsn_model.h (API, exit enum, state rule, sizes), nsn_model.c (parameters, tables, step
function), nsn_weights.h/.c (constants named after their TFLite tensors, shared ones once),
nsn_provenance.h (tool version, the options as a path-free command line, source model name
and sha256, sha256 of every exit's TFLite file): no paths, so the same model and options give
the same bytes in any output folder.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from nsconv import __version__
from nsconv.compiler import packing
from nsconv.compiler.graph_merge import (
    Const,
    MergedGraph,
    MergedOp,
    Value,
    ValueKind,
    merge_dir,
    scope_free,
)
from nsconv.compiler.memplan import MemoryPlan, Storage, plan
from nsconv.compiler.tflite_ir import LOGISTIC_OUT, TANH_OUT, Activation, DType, OpKind, Quant, c_identifier
from nsconv.errors import NsconvError, bad_model
from nsconv.names import identifier
from nsconv.quant import params
from nsconv.quant.manifest import Manifest
from nsconv.resources import CODEGEN_TEMPLATE_DIR as TEMPLATE_DIR

GENERATED_FILES = ("nsn_model.h", "nsn_model.c", "nsn_weights.h", "nsn_weights.c",
                   "nsn_provenance.h")
SYMBOL_PREFIX = "nsn_"

# C99 keywords and names a generated local could clash with.
_RESERVED = frozenset("""
auto break case char const continue default do double else enum extern float for goto if inline
int long register restrict return short signed sizeof static struct switch typedef union unsigned
void volatile while _Bool _Complex _Imaginary m features mask exit_id memcpy memset NULL
""".split())


@dataclass(frozen=True)
class CodegenResult:
    files: tuple[Path, ...]
    merged: MergedGraph
    plan: MemoryPlan
    manifest: Manifest

    def summary(self) -> str:
        """What was generated: merge result, what was not shared and why, memory plan."""
        return (f"wrote {', '.join(p.name for p in self.files)} to {self.files[0].parent}\n"
                + self.merged.summary() + "\n" + self.plan.summary())


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    return env


# ---------------------------------------------------------------------------------------------
# Small formatting helpers (numbers only; the C syntax is in the templates)


def _wrap(values, per_line: int, width: int) -> list[str]:
    vals = [f"{int(v):{width}d}," for v in values]
    return [" ".join(vals[i : i + per_line]) for i in range(0, len(vals), per_line)]


def _fmt(x: float) -> str:
    return f"{x:.9g}"


def _quant_text(q: Quant | None) -> str:
    if q is None:
        return "not quantized"
    if q.per_channel:
        return (f"per-channel scales {_fmt(min(q.scales))}..{_fmt(max(q.scales))} "
                f"(axis {q.axis}), zero point 0")
    return f"scale {_fmt(q.scale)}, zero point {q.zero_point}"


def _c_string(text: str) -> str:
    """Contents of a C string literal (escaped, printable ASCII only)."""
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch in "\\\"?":  # \? keeps ?? from starting a trigraph
            out.append("\\" + ch)
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append(f"\\x{byte:02x}\"\"")  # "" ends the escape before a hex digit
    return "".join(out)


def _comment_text(text: str) -> str:
    """Text safe inside a C block comment."""
    return text.replace("*/", "* /").replace("/*", "/ *").replace("\n", " ")


class _Names:
    """Unique C identifiers."""

    def __init__(self) -> None:
        self.used: set[str] = set(_RESERVED)

    def take(self, base: str) -> str:
        base = re.sub(r"[^0-9A-Za-z_]", "_", base)
        if not base or base[0].isdigit():
            base = "t_" + base
        name = base
        n = 2
        while name in self.used:
            name = f"{base}_{n}"
            n += 1
        self.used.add(name)
        return name


def layer_name(tensor_name: str) -> str:
    """The Keras layer a tensor comes from, as a C identifier: `step_x_1/gru1_hn_1/MatMul1`
    -> `gru1_hn`. Names without a scope (e.g. `StatefulPartitionedCall_1:0`) are kept whole."""
    first = scope_free(tensor_name.split(";")[0])
    parts = first.split("/")
    return c_identifier("/".join(parts[:-1]) if len(parts) > 1 else first)


# ---------------------------------------------------------------------------------------------
# The view the templates render: typed, frozen records. Jinja2 reads their attributes
# (`{{ op.sym }}`) the way it reads dict keys.


@dataclass(frozen=True)
class Field:
    """One designated initializer of a parameter struct: `.name = value, /* note */`."""

    name: str
    value: int | str
    note: str = ""


@dataclass(frozen=True)
class StructView:
    """A `static const ctype name = {...};` parameter struct."""

    ctype: str
    name: str
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class ArrayView:
    """A `static const ctype name[size]` per-channel parameter array."""

    ctype: str
    name: str
    size: int
    lines: tuple[str, ...]


@dataclass(frozen=True)
class ConstView:
    """A constant of nsn_weights.[ch]: 2-D int8 weights one output row per block (`rows`),
    everything else flat (`lines`)."""

    name: str
    source: str  # comment text: the source tensor, or what a folded bias is
    dtype: str
    ctype: str
    shape_text: str
    quant_text: str
    users: str  # the exits that read it
    dims: tuple[int, ...]
    rows: tuple[tuple[str, ...], ...] | None
    lines: tuple[str, ...] | None


@dataclass(frozen=True)
class LutView:
    """A 256-entry LOGISTIC/TANH table for one input quantization."""

    name: str
    kind: str
    scale_text: str
    zero_point: int
    out_scale_text: str
    out_zero_point: int
    lines: tuple[str, ...]


@dataclass(frozen=True)
class PointerView:
    """A local pointer of the step function: into the arena, or an alias of another buffer."""

    ptr: str
    id: int  # value id
    init: str
    const: bool
    alias: bool


@dataclass(frozen=True)
class OutView:
    """An output of an op."""

    id: int  # value id
    ptr: str
    size: int
    offset: int  # where it starts in the input (SPLIT)
    tensor: str


@dataclass(frozen=True)
class OpView:
    """One merged op: its comment, its kernel call and its parameters."""

    id: int
    kind: str
    sym: str  # prefix of its parameter symbols
    activation: str  # the fused activation, "" for none
    sources: str  # the TFLite ops it computes
    title: str  # the exits that run it
    ins: tuple[str, ...]  # data operands: activations and (ADD/SUB/MUL) constants
    in_sizes: tuple[int, ...]
    in_offsets: tuple[int, ...]  # where each starts in the output (CONCATENATION)
    outs: tuple[OutView, ...]
    shape_lines: tuple[str, ...]
    structs: tuple[StructView, ...] = ()
    arrays: tuple[ArrayView, ...] = ()
    weights: str = ""  # FULLY_CONNECTED
    bias: str = ""  # FULLY_CONNECTED: the folded bias
    fc_kernel: str = ""  # FULLY_CONNECTED: nsn_fully_connected_s8, or _s4 for int4 weights
    lut: str = ""  # LOGISTIC, TANH
    is_end: bool = False


@dataclass(frozen=True)
class UpdateView:
    """A state write-back at the end of a step."""

    field: str
    src: str
    size: int
    params: str | None  # requantize parameters; None: a plain copy


@dataclass(frozen=True)
class EndView:
    """The end of an exit's step: the state write-backs and the mask copy."""

    name: str
    enum: str
    index: int
    updates: tuple[UpdateView, ...]
    mask: str
    is_end: bool = True


@dataclass(frozen=True)
class RequantizeView:
    """Parameters that requantize a state output into its state's quantization."""

    name: str
    layer: str
    from_text: str
    to_text: str
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class StateView:
    layer: str
    size: int
    field: str
    scale_text: str
    zero_point: int


@dataclass(frozen=True)
class Condition:
    """When a block runs: exit_id >= exits[0] ("from"), <= exits[-1] ("upto"), or == one of
    exits ("any")."""

    kind: str
    exits: tuple[str, ...]


@dataclass(frozen=True)
class Block:
    """Consecutive schedule entries that run for the same exits (one `if`, or none)."""

    exits: frozenset[int]
    cond: Condition | None
    entries: tuple[OpView | EndView, ...]


@dataclass(frozen=True)
class ExitView:
    name: str  # comment-safe
    name_c: str  # C-string-safe
    enum: str
    index: int
    after: str
    macs: int
    const_bytes: int
    tflite: str
    sha256: str
    upper: str


@dataclass(frozen=True)
class ModelView:
    """Everything the templates render."""

    version: str
    model_title: str
    num_features: int
    num_bins: int
    features_scale: str
    features_zero_point: int
    mask_scale: str
    mask_zero_point: int
    arena_bytes: int
    alignment: int
    state_bytes: int
    scratch_bytes: int
    max_fc_input: int
    max_fc_s4_input: int  # largest input of an int4 FULLY_CONNECTED, 0 when there is none
    const_bytes: int
    separate_const_bytes: int
    exits: tuple[ExitView, ...]
    states: tuple[StateView, ...]
    consts: tuple[ConstView, ...]
    luts: tuple[LutView, ...]
    lut_index_text: str
    ops: tuple[OpView, ...]
    state_params: tuple[RequantizeView, ...]
    pointers: tuple[PointerView, ...]
    plan_lines: tuple[str, ...]
    blocks: tuple[Block, ...]
    source_path_text: str
    source_sha256: str
    command_text: str
    command_c: str

    def context(self) -> dict:
        """The template variables (one per field, not copied)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _value_names(merged: MergedGraph, names: _Names) -> list[str]:
    """Local pointer names: signature names for model outputs, else the tensor name."""
    outputs: dict[int, str] = {}
    for e in merged.exits:
        outputs.setdefault(e.mask, f"mask_{e.name}")
        for u in e.updates:
            outputs.setdefault(u.value, f"{u.layer}_out")
    result = []
    for v in merged.values:
        if v.kind is ValueKind.FEATURES:
            result.append("features")
            continue
        if v.kind is ValueKind.STATE:
            result.append(f"m->state_{identifier(v.state or 'state')}")
            continue
        base = outputs.get(v.id) or layer_name(v.name)
        result.append(names.take("t_" + c_identifier(base)))
    return result


def build_view(manifest: Manifest, merged: MergedGraph, mp: MemoryPlan,
               command_line: str) -> ModelView:
    """The view of the whole program. C names are taken in a fixed order (exit enums,
    constants, folded biases, tensors, per op its parameters and tables, state requantize
    parameters), so the output does not depend on anything but the inputs."""
    names = _Names()
    enum_names = [names.take(f"NSN_EXIT_{identifier(e.name).upper()}") for e in merged.exits]
    mask_q, num_bins = _mask_format(manifest, merged)
    feat = merged.values[merged.exits[0].features]
    consts, const_names, folded_names = _const_views(merged, names)
    vnames = _value_names(merged, names)
    pointers, plan_lines = _arena_views(merged, mp, vnames)
    cx = _OpContext(merged, vnames, const_names, folded_names, names, _Luts(names))
    ops = tuple(_op_view(op, cx) for op in merged.ops)
    requantize = _StateRequantize(names)
    ends = _end_views(merged, vnames, enum_names, requantize)
    return ModelView(
        version=__version__,
        model_title="Dynamic nsNet2 step",
        num_features=feat.size,
        num_bins=num_bins,
        features_scale=_fmt(feat.quant.scale),
        features_zero_point=feat.quant.zero_point,
        mask_scale=_fmt(mask_q.scale),
        mask_zero_point=mask_q.zero_point,
        arena_bytes=mp.arena_bytes,
        alignment=mp.alignment,
        state_bytes=mp.state_bytes,
        scratch_bytes=mp.scratch_bytes,
        max_fc_input=max((merged.consts[op.inputs[1].const].shape[1] for op in merged.ops
                          if op.kind is OpKind.FULLY_CONNECTED), default=0),
        max_fc_s4_input=max((merged.consts[op.inputs[1].const].shape[1] for op in merged.ops
                             if op.kind is OpKind.FULLY_CONNECTED
                             and merged.consts[op.inputs[1].const].int4), default=0),
        const_bytes=merged.const_bytes,
        separate_const_bytes=merged.separate_const_bytes,
        exits=_exit_views(merged, enum_names),
        states=_state_views(merged),
        consts=consts,
        luts=tuple(cx.luts.views),
        lut_index_text="(uint8_t)input",
        ops=ops,
        state_params=tuple(requantize.views),
        pointers=pointers,
        plan_lines=plan_lines,
        blocks=_blocks(merged, ops, ends, enum_names),
        source_path_text=_comment_text(Path(manifest.source_path).name),
        source_sha256=manifest.source_sha256,
        command_text=_comment_text(command_line),
        command_c=_c_string(command_line),
    )


def _mask_format(manifest: Manifest, merged: MergedGraph) -> tuple[Quant, int]:
    """The mask's quantization and size: one for all exits (the step API has one mask
    format)."""
    exits = merged.exits
    mask_q = {merged.values[e.mask].quant for e in exits}
    if len(mask_q) != 1:
        raise NsconvError("exits quantize their masks differently: "
                          + ", ".join(_quant_text(q) for q in mask_q), manifest.root)
    num_bins = merged.values[exits[0].mask].size
    for e in exits:
        if merged.values[e.mask].size != num_bins:
            raise NsconvError(f"exit {e.name} produces {merged.values[e.mask].size} mask bins, "
                              f"exit {exits[0].name} {num_bins}", manifest.root)
    return mask_q.pop(), num_bins


# -- constants (nsn_weights.[ch]) -------------------------------------------------------------


def _const_views(merged: MergedGraph, names: _Names
                 ) -> tuple[tuple[ConstView, ...], list[str], dict[int, str]]:
    """The constants, FC biases replaced by per-op folded biases (see _folded_biases); the C
    name of each merged constant ("" for a bias that only folded biases replace); and the
    folded bias symbol of each FULLY_CONNECTED op index."""
    folded = _folded_biases(merged)
    fc_bias = {op.inputs[2].const for op in merged.ops
               if op.kind is OpKind.FULLY_CONNECTED and len(op.inputs) > 2}
    other_use = {x.const for op in merged.ops for j, x in enumerate(op.inputs)
                 if not (op.kind is OpKind.FULLY_CONNECTED and j == 2)}
    bias_only = fc_bias - other_use
    const_names: list[str] = []
    views: list[ConstView] = []
    for c in merged.consts:
        if c.id in bias_only:
            const_names.append("")  # replaced by the folded bias of each FC that uses it
            continue
        name = names.take(SYMBOL_PREFIX + c_identifier(scope_free(c.name)))
        const_names.append(name)
        views.append(_const_view(c, name, merged))
    folded_names: dict[int, str] = {}
    for (wid, raw), op_indices in folded.items():
        name = names.take(const_names[wid] + "_bias_folded")
        views.append(_folded_bias_view(name, const_names[wid], raw, op_indices, merged))
        for i in op_indices:
            folded_names[i] = name
    return tuple(views), const_names, folded_names


def _const_view(c: Const, name: str, merged: MergedGraph) -> ConstView:
    arr = np.frombuffer(c.data, dtype=np.int8 if c.dtype is DType.INT8 else "<i4")
    rows = lines = None
    if c.int4:
        return _packed_view(c, name, merged)
    if c.dtype is DType.INT8 and len(c.shape) == 2:
        dims = tuple(c.shape)
        rows = tuple(tuple(_wrap(r, 16, 4)) for r in arr.reshape(c.shape))
    else:
        dims = (int(arr.size),)
        lines = tuple(_wrap(arr, 7, 11) if c.dtype is DType.INT32 else _wrap(arr, 16, 4))
    return ConstView(
        name=name, source=_comment_text(c.name), dtype=c.dtype.value,
        ctype="int8_t" if c.dtype is DType.INT8 else "int32_t",
        shape_text="[" + ", ".join(str(d) for d in c.shape) + "]",
        quant_text=_quant_text(c.quant),
        users=", ".join(merged.exits[k].name for k in sorted(c.exits)),
        dims=dims, rows=rows, lines=lines)


def _packed_view(c: Const, name: str, merged: MergedGraph) -> ConstView:
    """int4 weights, packed two per byte (compiler/packing.py), one output row per block."""
    packed = packing.pack_s4(np.frombuffer(c.data, np.int8).reshape(c.shape))
    n_out, n_in = c.shape
    return ConstView(
        name=name, source=_comment_text(c.name), dtype="int4, packed two per byte",
        ctype="int8_t",
        shape_text=(f"[{n_out}, {n_in}] as [{n_out}][{packed.shape[1]}] bytes "
                    "(nsn_nnfunctions.h: NSN_FC_S4_ROW_BYTES)"),
        quant_text=_quant_text(c.quant),
        users=", ".join(merged.exits[k].name for k in sorted(c.exits)),
        dims=packed.shape, rows=tuple(tuple(_wrap(r, 16, 4)) for r in packed), lines=None)


def _folded_bias_view(name: str, weights: str, raw: bytes, op_indices: list[int],
                      merged: MergedGraph) -> ConstView:
    data = np.frombuffer(raw, "<i4")
    users = sorted({k for i in op_indices for k in merged.ops[i].exits})
    return ConstView(
        name=name, ctype="int32_t", dtype="int32", dims=(int(data.size),),
        source=f"bias of {weights}, input offset folded in (bias + input_offset * row sum)",
        shape_text=f"[{data.size}]", quant_text="scale input_scale * weight_scale[row]",
        users=", ".join(merged.exits[k].name for k in users), rows=None,
        lines=tuple(_wrap(data, 7, 11)))


# -- the arena: pointers and the plan comment ---------------------------------------------------


def _arena_views(merged: MergedGraph, mp: MemoryPlan, vnames: list[str]
                 ) -> tuple[tuple[PointerView, ...], tuple[str, ...]]:
    """The step's pointers into the arena (and aliases), and one plan line per activation."""
    first_use: dict[int, int] = {}
    last_use: dict[int, int] = {}
    for op in merged.ops:
        for o in op.outputs:
            first_use.setdefault(o, op.id)
        for x in op.inputs:
            if x.value >= 0:
                last_use[x.value] = op.id
    pointers: list[PointerView] = []
    plan_lines = []
    for v in merged.values:
        p = mp.placements[v.id]
        if v.kind is not ValueKind.ACTIVATION:
            continue
        if p.alias_of is not None:
            root = merged.values[p.alias_of]
            init_ref = "features" if root.kind is ValueKind.FEATURES else vnames[p.alias_of]
            pointers.append(PointerView(vnames[v.id], v.id, init_ref,
                                        p.storage is Storage.FEATURES, alias=True))
            where = f"alias of v{p.alias_of}"
        else:
            pointers.append(PointerView(vnames[v.id], v.id, f"&m->arena[{p.offset}]",
                                        const=False, alias=False))
            where = f"[{p.offset}, {p.offset + p.size})"
        end = last_use.get(v.id, first_use.get(v.id, 0))
        plan_lines.append(f"v{v.id:<3d} {vnames[v.id]:<22s} {where:<12s} s {_fmt(v.quant.scale)} "
                          f"zp {v.quant.zero_point}, ops {first_use.get(v.id, 0)}..{end}")
    # aliases must be declared after the pointer they alias (any order of ids works for the
    # arena ones, whose initialisers do not depend on each other)
    pointers.sort(key=lambda p: (p.alias, p.id))
    return tuple(pointers), tuple(plan_lines)


# -- tables and parameters shared by several ops or exits ---------------------------------------


class _Luts:
    """The LOGISTIC/TANH tables, one per (kind, input quantization), in order of first use."""

    def __init__(self, names: _Names) -> None:
        self.names = names
        self.symbols: dict[tuple, str] = {}
        self.views: list[LutView] = []

    def symbol(self, kind: OpKind, q: Quant) -> str:
        key = (kind, q.scale, q.zero_point)
        if key not in self.symbols:
            if kind is OpKind.LOGISTIC:
                table, out_q = params.logistic_table_s8(q.scale, q.zero_point), LOGISTIC_OUT
            else:
                table, out_q = params.tanh_table_s8(q.scale, q.zero_point), TANH_OUT
            name = self.names.take(f"{SYMBOL_PREFIX}{kind.value.lower()}_table_{len(self.views)}")
            self.symbols[key] = name
            self.views.append(LutView(name, kind.value, _fmt(q.scale), q.zero_point,
                                      _fmt(out_q[0]), out_q[1],
                                      tuple(_wrap(np.asarray(table, dtype=np.int8), 16, 4))))
        return self.symbols[key]


class _StateRequantize:
    """Requantize parameters of the state write-backs, one per (layer, from, to)."""

    def __init__(self, names: _Names) -> None:
        self.names = names
        self.symbols: dict[tuple, str] = {}
        self.views: list[RequantizeView] = []

    def symbol(self, layer: str, src: Quant, dst: Quant) -> str | None:
        """None when the quantizations are equal (the write-back is a copy)."""
        if src.scale == dst.scale and src.zero_point == dst.zero_point:
            return None
        key = (layer, src, dst)
        if key not in self.symbols:
            rp = params.requantize_params(src.scale, src.zero_point, dst.scale, dst.zero_point)
            name = self.names.take(f"{SYMBOL_PREFIX}{identifier(layer)}_state_requantize")
            self.symbols[key] = name
            self.views.append(RequantizeView(name, layer, _quant_text(src), _quant_text(dst),
                                             _fields(rp, _REQUANTIZE_FIELDS)))
        return self.symbols[key]


# -- states, exits and the schedule -------------------------------------------------------------


def _state_field(layer: str) -> str:
    return f"state_{identifier(layer)}"


def _state_views(merged: MergedGraph) -> tuple[StateView, ...]:
    return tuple(StateView(s.layer, s.size, _state_field(s.layer), _fmt(s.quant.scale),
                           s.quant.zero_point) for s in merged.states)


def _end_views(merged: MergedGraph, vnames: list[str], enum_names: list[str],
               requantize: _StateRequantize) -> list[EndView]:
    """The end of each exit's step, in exit order."""
    state_by_layer = {s.layer: s for s in merged.states}
    ends = []
    for e in merged.exits:
        updates = []
        for u in e.updates:
            s = state_by_layer[u.layer]
            updates.append(UpdateView(_state_field(u.layer), vnames[u.value], s.size,
                                      requantize.symbol(u.layer, u.quant, s.quant)))
        ends.append(EndView(e.name, enum_names[e.index], e.index, tuple(updates),
                            vnames[e.mask]))
    return ends


def _blocks(merged: MergedGraph, ops: tuple[OpView, ...], ends: list[EndView],
            enum_names: list[str]) -> tuple[Block, ...]:
    """The schedule: every op, each exit's end after its last op; consecutive entries with the
    same exit set share one `if`."""
    end_after: dict[int, list[int]] = {}
    for e in merged.exits:
        end_after.setdefault(max(e.ops), []).append(e.index)
    items: list[tuple[frozenset[int], OpView | EndView]] = []
    for op in merged.ops:
        items.append((op.exits, ops[op.id]))
        items.extend((frozenset({k}), ends[k]) for k in end_after.get(op.id, []))
    all_exits = frozenset(range(len(merged.exits)))
    return tuple(Block(exit_set, _condition(exit_set, all_exits, enum_names),
                       tuple(item for _, item in group))
                 for exit_set, group in itertools.groupby(items, key=lambda it: it[0]))


def _condition(exit_set: frozenset[int], all_exits: frozenset[int],
               enum_names: list[str]) -> Condition | None:
    if exit_set == all_exits:
        return None
    ks = sorted(exit_set)
    n = len(all_exits)
    contiguous = ks == list(range(ks[0], ks[-1] + 1))
    if len(ks) > 1 and contiguous and ks[-1] == n - 1:
        return Condition("from", (enum_names[ks[0]],))
    if len(ks) > 1 and contiguous and ks[0] == 0:
        return Condition("upto", (enum_names[ks[-1]],))
    return Condition("any", tuple(enum_names[k] for k in ks))


def _exit_views(merged: MergedGraph, enum_names: list[str]) -> tuple[ExitView, ...]:
    views = []
    for e in merged.exits:
        own, shared = merged.exit_const_bytes(e.index)
        views.append(ExitView(name=_comment_text(e.name), name_c=_c_string(e.name),
                              enum=enum_names[e.index], index=e.index, after=e.after,
                              macs=e.macs, const_bytes=own + shared, tflite=Path(e.path).name,
                              sha256=e.sha256, upper=identifier(e.name).upper()))
    return tuple(views)


def _folded_biases(merged: MergedGraph) -> dict[tuple[int, bytes], list[int]]:
    """Per FULLY_CONNECTED op: bias + input_offset * sum_k w[row][k], as int32.

    TFLM computes sum_k w * (x + input_offset) + bias; with the offset term precomputed the
    kernels compute bias_folded + sum_k w * x, the same integer (no int32 overflow: checked),
    and the inner loop has no per-element add. Keyed by (weights const, folded bytes) so that
    equal folded biases are emitted once; the value lists the op indices using it.
    """
    out: dict[tuple[int, bytes], list[int]] = {}
    for op in merged.ops:
        if op.kind is not OpKind.FULLY_CONNECTED:
            continue
        wc = merged.consts[op.inputs[1].const]
        w = np.frombuffer(wc.data, np.int8).reshape(wc.shape).astype(np.int64)
        has_bias = len(op.inputs) > 2 and op.inputs[2].const >= 0
        bias = (np.frombuffer(merged.consts[op.inputs[2].const].data, "<i4").astype(np.int64)
                if has_bias else np.zeros(wc.shape[0], np.int64))
        offset = -merged.values[op.inputs[0].value].quant.zero_point
        total = bias + offset * w.sum(axis=1)
        if np.abs(total).max(initial=0) >= 1 << 31:
            raise NsconvError(f"folded bias of {wc.name} overflows int32")
        out.setdefault((wc.id, total.astype("<i4").tobytes()), []).append(op.id)
    return out


# -- ops: the common part, then one builder per kernel, like the kernels in C -------------------


@dataclass(frozen=True)
class _OpContext:
    """What the op builders read: the graph, the C names, the shared tables."""

    merged: MergedGraph
    vnames: list[str]  # by value id
    const_names: list[str]  # by const id
    folded_names: dict[int, str]  # op id -> its folded bias
    names: _Names
    luts: _Luts


@dataclass(frozen=True)
class _DataOperand:
    name: str
    size: int
    quant: Quant | None
    shape: tuple[int, ...]


@dataclass(frozen=True)
class _Kernel:
    """What an op kind adds to its view."""

    structs: tuple[StructView, ...] = ()
    arrays: tuple[ArrayView, ...] = ()
    shape_lines: tuple[str, ...] = ()  # after the input lines
    weights: str = ""
    bias: str = ""
    fc_kernel: str = ""
    lut: str = ""


def _fields(obj, names: tuple[str, ...]) -> tuple[Field, ...]:
    return tuple(Field(n, int(getattr(obj, n))) for n in names)


def _shape_text(dims) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


_FC_FIELDS = ("input_offset", "output_offset", "activation_min", "activation_max")
_ADD_FIELDS = ("input1_offset", "input1_multiplier", "input1_shift", "input2_offset",
               "input2_multiplier", "input2_shift", "left_shift", "output_offset",
               "output_multiplier", "output_shift", "activation_min", "activation_max")
_MUL_FIELDS = ("input1_offset", "input2_offset", "output_offset", "output_multiplier",
               "output_shift", "activation_min", "activation_max")
_REQUANTIZE_FIELDS = ("input_offset", "output_offset", "multiplier", "shift")


def _data_operands(op: MergedOp, cx: _OpContext) -> list[_DataOperand]:
    """Activations and (ADD/SUB/MUL) constants; FC weights and bias apart."""
    data_ops = op.inputs[:1] if op.kind is OpKind.FULLY_CONNECTED else op.inputs
    out = []
    for x in data_ops:
        if x.value >= 0:
            v = cx.merged.values[x.value]
            out.append(_DataOperand(cx.vnames[x.value], v.size, v.quant, v.shape))
        else:
            c = cx.merged.consts[x.const]
            out.append(_DataOperand(cx.const_names[c.id], c.nbytes, c.quant, c.shape))
    return out


def _op_title(op: MergedOp, exits) -> str:
    if len(op.exits) == len(exits):
        return "(all exits)"
    return ("(exit" + ("s " if len(op.exits) > 1 else " ")
            + ", ".join(exits[k].name for k in sorted(op.exits)) + ")")


def _op_view(op: MergedOp, cx: _OpContext) -> OpView:
    merged, vnames = cx.merged, cx.vnames
    ins = _data_operands(op, cx)
    outs = [merged.values[o] for o in op.outputs]
    base = cx.names.take(SYMBOL_PREFIX + vnames[outs[0].id][2:])
    kernel = _KERNELS.get(op.kind, _no_kernel)(op, cx, base, ins, outs[0])
    out_views = []
    offset = 0
    for o in outs:
        out_views.append(OutView(o.id, vnames[o.id], o.size, offset, vnames[o.id]))
        offset += o.size
    sizes = tuple(x.size for x in ins)
    shape_lines = ([f"in  {x.name} {_shape_text(x.shape)}, {_quant_text(x.quant)}" for x in ins]
                   + list(kernel.shape_lines)
                   + [f"out {vnames[o.id]} {_shape_text(o.shape)}, {_quant_text(o.quant)}"
                      for o in outs])
    return OpView(
        id=op.id, kind=op.kind.value, sym=base,
        activation="" if op.activation is Activation.NONE else op.activation.name,
        sources=", ".join(f"{merged.exits[k].name} op {i}" for k, i in op.sources),
        title=_op_title(op, merged.exits),
        ins=tuple(x.name for x in ins), in_sizes=sizes,
        in_offsets=tuple(sum(sizes[:i]) for i in range(len(sizes))),
        outs=tuple(out_views), shape_lines=tuple(shape_lines),
        structs=kernel.structs, arrays=kernel.arrays,
        weights=kernel.weights, bias=kernel.bias, fc_kernel=kernel.fc_kernel, lut=kernel.lut)


def _fc_kernel(op: MergedOp, cx: _OpContext, base: str, ins: list[_DataOperand],
               y: Value) -> _Kernel:
    """nsn_fully_connected_s8 (nsn_fully_connected_s4 for int4 weights, packed): per-channel
    requantization, the input offset folded into the bias."""
    x = cx.merged.values[op.inputs[0].value]
    wc = cx.merged.consts[op.inputs[1].const]
    n_out, n_in = wc.shape
    assert wc.quant is not None
    p = params.fc_params(x.quant.scale, x.quant.zero_point, list(wc.quant.scales),
                         y.quant.scale, y.quant.zero_point, n_out, op.activation)
    p = dataclasses.replace(p, input_offset=0)  # folded into the bias
    weights, bias = cx.const_names[wc.id], cx.folded_names[op.id]
    packed = ", int4 packed" if wc.int4 else ""
    return _Kernel(
        weights=weights, bias=bias,
        fc_kernel="nsn_fully_connected_s4" if wc.int4 else "nsn_fully_connected_s8",
        shape_lines=(f"weights {weights} [{n_out}, {n_in}]{packed}, {n_in * n_out:,} MACs",
                     f"bias {bias} [{n_out}] (input offset {-x.quant.zero_point} folded in)"),
        arrays=(ArrayView("int32_t", f"{base}_multiplier", n_out,
                          tuple(_wrap(p.multipliers, 7, 11))),
                ArrayView("int32_t", f"{base}_shift", n_out, tuple(_wrap(p.shifts, 16, 3)))),
        structs=(StructView("nsn_fc_params", f"{base}_params", _fields(p, _FC_FIELDS)),
                 StructView("nsn_per_channel_quant_params", f"{base}_quant",
                            (Field("multiplier", f"{base}_multiplier"),
                             Field("shift", f"{base}_shift"))),
                 StructView("nsn_fc_dims", f"{base}_dims",
                            (Field("input_features", n_in), Field("output_features", n_out)))))


def _elementwise_kernel(op: MergedOp, cx: _OpContext, base: str, ins: list[_DataOperand],
                        y: Value) -> _Kernel:
    """nsn_elementwise_{add,sub,mul}_s8."""
    qa, qb = (x.quant for x in ins)
    args = (qa.scale, qa.zero_point, qb.scale, qb.zero_point, y.quant.scale,
            y.quant.zero_point, op.activation)
    if op.kind is OpKind.ADD:
        p, ctype, fields = params.add_params(*args), "nsn_add_params", _ADD_FIELDS
    elif op.kind is OpKind.SUB:
        p, ctype, fields = params.sub_params(*args), "nsn_add_params", _ADD_FIELDS
    else:
        p, ctype, fields = params.mul_params(*args), "nsn_mul_params", _MUL_FIELDS
    return _Kernel(structs=(StructView(ctype, f"{base}_params", _fields(p, fields)),))


def _lut_kernel(op: MergedOp, cx: _OpContext, base: str, ins: list[_DataOperand],
                y: Value) -> _Kernel:
    """nsn_lut_s8 with the table of the input quantization."""
    return _Kernel(lut=cx.luts.symbol(op.kind, cx.merged.values[op.inputs[0].value].quant))


def _requantize_kernel(op: MergedOp, cx: _OpContext, base: str, ins: list[_DataOperand],
                       y: Value) -> _Kernel:
    """nsn_requantize_s8 (int8 -> int8 QUANTIZE)."""
    x = cx.merged.values[op.inputs[0].value]
    p = params.requantize_params(x.quant.scale, x.quant.zero_point, y.quant.scale,
                                 y.quant.zero_point)
    return _Kernel(structs=(StructView("nsn_requantize_params", f"{base}_params",
                                       _fields(p, _REQUANTIZE_FIELDS)),))


def _no_kernel(op: MergedOp, cx: _OpContext, base: str, ins: list[_DataOperand],
               y: Value) -> _Kernel:
    """SPLIT, CONCATENATION (copies), RESHAPE (an alias): no parameters."""
    return _Kernel()


_KERNELS = {
    OpKind.FULLY_CONNECTED: _fc_kernel,
    OpKind.ADD: _elementwise_kernel,
    OpKind.SUB: _elementwise_kernel,
    OpKind.MUL: _elementwise_kernel,
    OpKind.LOGISTIC: _lut_kernel,
    OpKind.TANH: _lut_kernel,
    OpKind.QUANTIZE: _requantize_kernel,
}


# ---------------------------------------------------------------------------------------------


def render(view: ModelView) -> dict[str, str]:
    env = environment()
    context = view.context()
    return {name: env.get_template(name + ".j2").render(**context) for name in GENERATED_FILES}


def generate(out_dir: Path, dest: Path | None = None, command_line: str = "",
             alignment: int = 4) -> CodegenResult:
    """Generate the C sources for the nsconv output directory `out_dir` into `dest`
    (default OUT/c). Returns the files written and the merged graph and plan. command_line
    is recorded in nsn_provenance.h; it should name options, not paths (the CLI passes
    nsconv.cli.base.provenance_command), or the output depends on where it was written."""
    out_dir = Path(out_dir)
    dest = Path(dest) if dest is not None else out_dir / "c"
    with bad_model("cannot generate C for this model", out_dir):
        manifest, merged = merge_dir(out_dir)
        mp = plan(merged, alignment=alignment, scratch_bytes=0)  # nsn_ kernels take no scratch
        view = build_view(manifest, merged, mp, command_line)
    return CodegenResult(write_texts(render(view), dest), merged, mp, manifest)


def write_texts(texts: dict[str, str], dest: Path) -> tuple[Path, ...]:
    """Write each rendered file into dest, each one replaced whole (never half-written)."""
    dest.mkdir(parents=True, exist_ok=True)
    files = []
    for name, text in texts.items():
        path = dest / name
        tmp = path.with_name(f".{name}.part")
        tmp.write_text(text)
        tmp.replace(path)
        files.append(path)
    return tuple(files)
