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
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np

from nsconv import __version__
from nsconv.compiler.graph_merge import MergedGraph, MergedOp, ValueKind, merge_dir, scope_free
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
# The view the templates render


@dataclass
class _View:
    ctx: dict = field(default_factory=dict)


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
               command_line: str) -> dict:
    names = _Names()
    exits = merged.exits
    enum_names = [names.take(f"NSN_EXIT_{identifier(e.name).upper()}") for e in exits]

    # the mask quantization is one for all exits (the step API has one mask format)
    mask_q = {merged.values[e.mask].quant for e in exits}
    if len(mask_q) != 1:
        raise NsconvError("exits quantize their masks differently: "
                          + ", ".join(_quant_text(q) for q in mask_q), manifest.root)
    mq = mask_q.pop()
    feat = merged.values[exits[0].features]
    num_bins = merged.values[exits[0].mask].size
    for e in exits:
        if merged.values[e.mask].size != num_bins:
            raise NsconvError(f"exit {e.name} produces {merged.values[e.mask].size} mask bins, "
                              f"exit {exits[0].name} {num_bins}", manifest.root)

    # constants; FC biases are replaced by per-op folded biases (see _folded_biases)
    folded = _folded_biases(merged)
    fc_bias = {op.inputs[2].const for op in merged.ops
               if op.kind is OpKind.FULLY_CONNECTED and len(op.inputs) > 2}
    other_use = {x.const for op in merged.ops for j, x in enumerate(op.inputs)
                 if not (op.kind is OpKind.FULLY_CONNECTED and j == 2)}
    bias_only = fc_bias - other_use
    const_names: list[str] = []
    consts = []
    for c in merged.consts:
        if c.id in bias_only:
            const_names.append("")  # replaced by the folded bias of each FC that uses it
            continue
        name = names.take(SYMBOL_PREFIX + c_identifier(scope_free(c.name)))
        const_names.append(name)
        arr = np.frombuffer(c.data, dtype=np.int8 if c.dtype is DType.INT8 else "<i4")
        users = ", ".join(exits[k].name for k in sorted(c.exits))
        entry = {"name": name, "source": _comment_text(c.name), "dtype": c.dtype.value,
                 "ctype": "int8_t" if c.dtype is DType.INT8 else "int32_t",
                 "shape_text": "[" + ", ".join(str(d) for d in c.shape) + "]",
                 "quant_text": _quant_text(c.quant), "users": users}
        if c.dtype is DType.INT8 and len(c.shape) == 2:
            rows = arr.reshape(c.shape)
            entry["dims"] = list(c.shape)
            entry["rows"] = [_wrap(r, 16, 4) for r in rows]
            entry["lines"] = None
        else:
            entry["dims"] = [int(arr.size)]
            entry["rows"] = None
            entry["lines"] = _wrap(arr, 7, 11) if c.dtype is DType.INT32 else _wrap(arr, 16, 4)
        consts.append(entry)
    folded_names: dict[int, str] = {}  # op index -> symbol of its folded bias
    for (wid, raw), op_indices in folded.items():
        data = np.frombuffer(raw, "<i4")
        name = names.take(const_names[wid] + "_bias_folded")
        users = sorted({k for i in op_indices for k in merged.ops[i].exits})
        consts.append({
            "name": name, "ctype": "int32_t", "dtype": "int32", "dims": [int(data.size)],
            "source": f"bias of {const_names[wid]}, input offset folded in "
                      "(bias + input_offset * row sum)",
            "shape_text": f"[{data.size}]", "quant_text": "scale input_scale * weight_scale[row]",
            "users": ", ".join(exits[k].name for k in users), "rows": None,
            "lines": _wrap(data, 7, 11)})
        for i in op_indices:
            folded_names[i] = name

    vnames = _value_names(merged, names)
    state_field = {s.layer: f"state_{identifier(s.layer)}" for s in merged.states}

    def ptr(v: int) -> str:
        return vnames[v]

    # pointers into the arena (and aliases)
    pointers = []
    plan_lines = []
    first_use: dict[int, int] = {}
    last_use: dict[int, int] = {}
    for op in merged.ops:
        for o in op.outputs:
            first_use.setdefault(o, op.id)
        for x in op.inputs:
            if x.value >= 0:
                last_use[x.value] = op.id
    for v in merged.values:
        p = mp.placements[v.id]
        if v.kind is not ValueKind.ACTIVATION:
            continue
        if p.alias_of is not None:
            root = merged.values[p.alias_of]
            init_ref = ("features" if root.kind is ValueKind.FEATURES
                        else ptr(p.alias_of))
            pointers.append({"ptr": ptr(v.id), "id": v.id, "init": init_ref,
                             "const": p.storage is Storage.FEATURES, "alias": True})
            where = f"alias of v{p.alias_of}"
        else:
            pointers.append({"ptr": ptr(v.id), "id": v.id, "init": f"&m->arena[{p.offset}]",
                             "const": False, "alias": False})
            where = f"[{p.offset}, {p.offset + p.size})"
        end = last_use.get(v.id, first_use.get(v.id, 0))
        plan_lines.append(f"v{v.id:<3d} {ptr(v.id):<22s} {where:<12s} s {_fmt(v.quant.scale)} "
                          f"zp {v.quant.zero_point}, ops {first_use.get(v.id, 0)}..{end}")
    # aliases must be declared after the pointer they alias (any order of ids works for the
    # arena ones, whose initialisers do not depend on each other)
    pointers.sort(key=lambda p: (p["alias"], p["id"]))

    # tables
    luts: dict[tuple, str] = {}
    lut_list = []

    def lut(kind: OpKind, q: Quant) -> str:
        key = (kind, q.scale, q.zero_point)
        if key not in luts:
            if kind is OpKind.LOGISTIC:
                table = params.logistic_table_s8(q.scale, q.zero_point)
                out_q = LOGISTIC_OUT
            else:
                table = params.tanh_table_s8(q.scale, q.zero_point)
                out_q = TANH_OUT
            name = names.take(f"{SYMBOL_PREFIX}{kind.value.lower()}_table_{len(lut_list)}")
            luts[key] = name
            lut_list.append({"name": name, "kind": kind.value, "scale_text": _fmt(q.scale),
                             "zero_point": q.zero_point, "out_scale_text": _fmt(out_q[0]),
                             "out_zero_point": out_q[1],
                             "lines": _wrap(np.asarray(table, dtype=np.int8), 16, 4)})
        return luts[key]

    # ops
    op_views = []
    for op in merged.ops:
        op_views.append(_op_view(op, merged, ptr, const_names, names, lut, enum_names,
                                     folded_names))

    # state write-back parameters
    state_params = []
    sp_names: dict[tuple, str] = {}

    def update_params(layer: str, src: Quant, dst: Quant) -> str | None:
        if src.scale == dst.scale and src.zero_point == dst.zero_point:
            return None
        key = (layer, src, dst)
        if key not in sp_names:
            rp = params.requantize_params(src.scale, src.zero_point, dst.scale, dst.zero_point)
            name = names.take(f"{SYMBOL_PREFIX}{identifier(layer)}_state_requantize")
            sp_names[key] = name
            state_params.append({"name": name, "layer": layer,
                                 "from_text": _quant_text(src), "to_text": _quant_text(dst),
                                 "fields": _fields(rp, ("input_offset", "output_offset",
                                                        "multiplier", "shift"))})
        return sp_names[key]

    states = []
    state_by_layer = {}
    for s in merged.states:
        entry = {"layer": s.layer, "size": s.size, "field": state_field[s.layer],
                 "scale_text": _fmt(s.quant.scale), "zero_point": s.quant.zero_point}
        states.append(entry)
        state_by_layer[s.layer] = s
    ends = []
    for e in exits:
        updates = []
        for u in e.updates:
            s = state_by_layer[u.layer]
            updates.append({"field": state_field[u.layer], "src": ptr(u.value), "size": s.size,
                            "params": update_params(u.layer, u.quant, s.quant)})
        ends.append({"is_end": True, "name": e.name, "enum": enum_names[e.index],
                     "updates": updates, "mask": ptr(e.mask), "index": e.index})

    # schedule blocks: consecutive items with the same exit set share one `if`
    items: list[tuple[frozenset[int], dict]] = []
    end_after: dict[int, list[int]] = {}
    for e in exits:
        end_after.setdefault(max(e.ops), []).append(e.index)
    for op in merged.ops:
        items.append((op.exits, op_views[op.id]))
        for k in end_after.get(op.id, []):
            items.append((frozenset({k}), ends[k]))
    blocks = []
    all_exits = frozenset(range(len(exits)))
    for exit_set, item in items:
        if blocks and blocks[-1]["set"] == exit_set:
            blocks[-1]["entries"].append(item)
        else:
            blocks.append({"set": exit_set, "entries": [item],
                           "cond": _condition(exit_set, all_exits, enum_names)})

    exit_views = []
    for e in exits:
        own, shared = merged.exit_const_bytes(e.index)
        exit_views.append({"name": _comment_text(e.name), "name_c": _c_string(e.name),
                           "enum": enum_names[e.index], "index": e.index,
                           "after": e.after, "macs": e.macs, "const_bytes": own + shared,
                           "tflite": Path(e.path).name, "sha256": e.sha256,
                           "upper": identifier(e.name).upper()})

    return {
        "version": __version__,
        "model_title": "Dynamic nsNet2 step",
        "num_features": feat.size,
        "num_bins": num_bins,
        "features_scale": _fmt(feat.quant.scale),
        "features_zero_point": feat.quant.zero_point,
        "mask_scale": _fmt(mq.scale),
        "mask_zero_point": mq.zero_point,
        "arena_bytes": mp.arena_bytes,
        "alignment": mp.alignment,
        "state_bytes": mp.state_bytes,
        "scratch_bytes": mp.scratch_bytes,
        "max_fc_input": max((merged.consts[op.inputs[1].const].shape[1] for op in merged.ops
                             if op.kind is OpKind.FULLY_CONNECTED), default=0),
        "const_bytes": merged.const_bytes,
        "separate_const_bytes": merged.separate_const_bytes,
        "exits": exit_views,
        "states": states,
        "consts": consts,
        "luts": lut_list,
        "lut_index_text": "(uint8_t)input",
        "ops": op_views,
        "state_params": state_params,
        "pointers": pointers,
        "plan_lines": plan_lines,
        "blocks": blocks,
        "source_path_text": _comment_text(Path(manifest.source_path).name),
        "source_sha256": manifest.source_sha256,
        "command_text": _comment_text(command_line),
        "command_c": _c_string(command_line),
    }


def _condition(exit_set: frozenset[int], all_exits: frozenset[int],
               enum_names: list[str]) -> dict | None:
    if exit_set == all_exits:
        return None
    ks = sorted(exit_set)
    n = len(all_exits)
    contiguous = ks == list(range(ks[0], ks[-1] + 1))
    if len(ks) > 1 and contiguous and ks[-1] == n - 1:
        return {"kind": "from", "exits": [enum_names[ks[0]]]}
    if len(ks) > 1 and contiguous and ks[0] == 0:
        return {"kind": "upto", "exits": [enum_names[ks[-1]]]}
    return {"kind": "any", "exits": [enum_names[k] for k in ks]}


def _fields(obj, names: tuple[str, ...], notes: dict[str, str] | None = None) -> list[dict]:
    notes = notes or {}
    return [{"name": n, "value": int(getattr(obj, n)), "note": notes.get(n, "")} for n in names]


_ADD_FIELDS = ("input1_offset", "input1_multiplier", "input1_shift", "input2_offset",
               "input2_multiplier", "input2_shift", "left_shift", "output_offset",
               "output_multiplier", "output_shift", "activation_min", "activation_max")
_MUL_FIELDS = ("input1_offset", "input2_offset", "output_offset", "output_multiplier",
               "output_shift", "activation_min", "activation_max")


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


def _op_view(op: MergedOp, merged: MergedGraph, ptr, const_names: list[str], names: _Names,
             lut, enum_names: list[str], folded_names: dict[int, str]) -> dict:
    vals = merged.values
    consts = merged.consts
    # data operands: activations and (ADD/SUB/MUL) constants; FC weights and bias apart
    data_ops = op.inputs[:1] if op.kind is OpKind.FULLY_CONNECTED else op.inputs
    in_names, in_sizes, in_quants, in_shapes = [], [], [], []
    for x in data_ops:
        if x.value >= 0:
            in_names.append(ptr(x.value))
            in_sizes.append(vals[x.value].size)
            in_quants.append(vals[x.value].quant)
            in_shapes.append(vals[x.value].shape)
        else:
            c = consts[x.const]
            in_names.append(const_names[c.id])
            in_sizes.append(c.nbytes)
            in_quants.append(c.quant)
            in_shapes.append(c.shape)
    outs = [vals[o] for o in op.outputs]
    base = names.take(SYMBOL_PREFIX + ptr(outs[0].id)[2:])
    sources = ", ".join(f"{merged.exits[k].name} op {i}" for k, i in op.sources)
    view = {
        "is_end": False, "id": op.id, "kind": op.kind.value, "sym": base,
        "activation": "" if op.activation is Activation.NONE else op.activation.name,
        "sources": sources,
        "title": ("(all exits)" if len(op.exits) == len(merged.exits) else
                  "(exit" + ("s " if len(op.exits) > 1 else " ")
                  + ", ".join(merged.exits[k].name for k in sorted(op.exits)) + ")"),
        "ins": in_names,
        "in_sizes": in_sizes,
        "outs": [], "structs": [], "arrays": [], "shape_lines": [],
    }
    offset = 0
    for o in outs:
        view["outs"].append({"id": o.id, "ptr": ptr(o.id), "size": o.size, "offset": offset,
                             "tensor": ptr(o.id)})
        offset += o.size
    offs = []
    acc = 0
    for size in in_sizes:
        offs.append(acc)
        acc += size
    view["in_offsets"] = offs

    def shape(dims) -> str:
        return "[" + ", ".join(str(d) for d in dims) + "]"

    for name, dims, q in zip(in_names, in_shapes, in_quants, strict=True):
        view["shape_lines"].append(f"in  {name} {shape(dims)}, {_quant_text(q)}")
    for o in outs:
        view["shape_lines"].append(f"out {ptr(o.id)} {shape(o.shape)}, {_quant_text(o.quant)}")

    act = op.activation
    kind = op.kind
    if kind is OpKind.FULLY_CONNECTED:
        x = vals[op.inputs[0].value]
        wc = merged.consts[op.inputs[1].const]
        y = outs[0]
        n_out, n_in = wc.shape
        assert wc.quant is not None
        p = params.fc_params(x.quant.scale, x.quant.zero_point, list(wc.quant.scales),
                            y.quant.scale, y.quant.zero_point, n_out, act)
        view["weights"] = const_names[wc.id]
        view["bias"] = folded_names[op.id]
        p = dataclasses.replace(p, input_offset=0)  # folded into the bias
        view["shape_lines"].insert(1, f"weights {const_names[wc.id]} [{n_out}, {n_in}], "
                                   f"{n_in * n_out:,} MACs")
        view["shape_lines"].insert(2, f"bias {view['bias']} [{n_out}] (input offset "
                                   f"{-x.quant.zero_point} folded in)")
        view["arrays"] = [
            {"ctype": "int32_t", "name": f"{base}_multiplier", "size": n_out,
             "lines": _wrap(p.multipliers, 7, 11)},
            {"ctype": "int32_t", "name": f"{base}_shift", "size": n_out,
             "lines": _wrap(p.shifts, 16, 3)},
        ]
        view["structs"] = [
            {"ctype": "nsn_fc_params", "name": f"{base}_params",
             "fields": _fields(p, ("input_offset", "output_offset", "activation_min",
                                   "activation_max"))},
            {"ctype": "nsn_per_channel_quant_params", "name": f"{base}_quant",
             "fields": [{"name": "multiplier", "value": f"{base}_multiplier", "note": ""},
                        {"name": "shift", "value": f"{base}_shift", "note": ""}]},
            {"ctype": "nsn_fc_dims", "name": f"{base}_dims",
             "fields": [{"name": "input_features", "value": n_in, "note": ""},
                        {"name": "output_features", "value": n_out, "note": ""}]},
        ]
    elif kind in (OpKind.ADD, OpKind.SUB, OpKind.MUL):
        qa, qb = in_quants
        y = outs[0]
        args = (qa.scale, qa.zero_point, qb.scale, qb.zero_point, y.quant.scale,
                y.quant.zero_point, act)
        if kind is OpKind.ADD:
            p, ctype, fields = params.add_params(*args), "nsn_add_params", _ADD_FIELDS
        elif kind is OpKind.SUB:
            p, ctype, fields = params.sub_params(*args), "nsn_add_params", _ADD_FIELDS
        else:
            p, ctype, fields = params.mul_params(*args), "nsn_mul_params", _MUL_FIELDS
        view["structs"] = [{"ctype": ctype, "name": f"{base}_params",
                            "fields": _fields(p, fields)}]
    elif kind in (OpKind.LOGISTIC, OpKind.TANH):
        view["lut"] = lut(kind, vals[op.inputs[0].value].quant)
    elif kind is OpKind.QUANTIZE:
        x = vals[op.inputs[0].value]
        y = outs[0]
        p = params.requantize_params(x.quant.scale, x.quant.zero_point, y.quant.scale,
                                    y.quant.zero_point)
        view["structs"] = [{"ctype": "nsn_requantize_params", "name": f"{base}_params",
                            "fields": _fields(p, ("input_offset", "output_offset", "multiplier",
                                                  "shift"))}]
    return view


# ---------------------------------------------------------------------------------------------


def render(view: dict) -> dict[str, str]:
    env = environment()
    return {name: env.get_template(name + ".j2").render(**view) for name in GENERATED_FILES}


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
    texts = render(view)
    dest.mkdir(parents=True, exist_ok=True)
    files = []
    for name, text in texts.items():
        path = dest / name
        tmp = path.with_name(f".{name}.part")
        tmp.write_text(text)
        tmp.replace(path)
        files.append(path)
    return CodegenResult(tuple(files), merged, mp, manifest)
