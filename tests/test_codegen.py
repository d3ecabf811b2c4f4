# SPDX-License-Identifier: Apache-2.0
"""Merging, memory planning and C generation, checked against TFLM on the small test models.

The generated C is built with gcc -Wall -Wextra -Werror (and -pedantic) and run under
ASan/UBSan; masks and states must equal TFLM's on every frame (zero tolerance), MACs counted
by the instrumented build must equal the analytic count.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from irmodels import pack_model, tensor_named, unpack_model
from nsconv.compiler.codegen import GENERATED_FILES, generate
from nsconv.compiler.graph_merge import merge_dir
from nsconv.compiler.memplan import MemoryPlan, Storage, check_plan, plan
from nsconv.compiler.tflite_ir import OpKind, read_tflite
from nsconv.errors import NsconvError
from nsconv.target import hostbuild


@pytest.fixture(scope="module")
def tiny_gen(tiny_out, tmp_path_factory):
    return generate(tiny_out, tmp_path_factory.mktemp("tiny_c"), command_line="pytest")


@pytest.fixture(scope="module")
def tiny_prog(tiny_gen, tmp_path_factory):
    c_dir = tiny_gen.files[0].parent
    return hostbuild.build(c_dir, tmp_path_factory.mktemp("tiny_build"), sanitize=True,
                           count_macs=True, debug_tensors=True)


def _reference(root, exits, features, resets):
    from nsconv.check.tflm_ref import TflmReference

    ref = TflmReference(root)
    masks, states = [], []
    layers = list(ref.states)
    for t in range(len(features)):
        if resets[t]:
            ref.reset()
        masks.append(ref.step(features[t], exits[t]))
        states.append(np.concatenate([ref.states[k].reshape(-1) for k in layers]))
    return np.array(masks), np.array(states)


# ---------------------------------------------------------------------------------------------
# merge


def test_merge_shares_every_backbone_op(tiny_out):
    manifest, merged = merge_dir(tiny_out)
    assert [e.name for e in merged.exits] == ["gru1", "gru2", "fc2", "final"]
    assert merged.separate_ops == 19 + 35 + 36 + 37
    # backbone: fc1 (1) + 2 GRUs (16 each) + fc2 (1) + fc3 (1); heads: 2 + 2 + 2 + 2 ops
    assert len(merged.ops) == 1 + 16 + 16 + 1 + 1 + 4 * 2
    assert merged.unshared == ()
    for e, entry in zip(merged.exits, manifest.exits, strict=True):
        g = read_tflite(tiny_out / entry.tflite)
        assert len(e.ops) == len(g.ops)  # nothing duplicated, nothing missing
        assert list(e.ops) == sorted(e.ops)
        assert merged.merged_macs(e.index) == e.macs == entry.macs_per_frame
        for op_id in e.ops:
            assert e.index in merged.ops[op_id].exits
    # the schedule is topological: every operand is written by an earlier op
    written = {v.id for v in merged.values if v.kind.value != "activation"}
    for op in merged.ops:
        for x in op.inputs:
            assert x.value < 0 or x.value in written
        written.update(op.outputs)
    # constants once: no two with the same bytes; shared ones read by several exits
    assert len({c.data for c in merged.consts}) == len(merged.consts)
    fc1 = next(c for c in merged.consts if "fc1_1/MatMul" in c.name)
    assert fc1.exits == frozenset(range(4))
    own, shared = merged.exit_const_bytes(0)
    assert own > 0 and shared > 0 and own + shared < merged.const_bytes
    assert merged.const_bytes < merged.separate_const_bytes


def _mutated_copy(src: Path, dst: Path, exit_name: str, mutate) -> Path:
    shutil.copytree(src, dst)
    path = dst / "tflite" / f"{exit_name}.tflite"
    m = unpack_model(path.read_bytes())
    mutate(m)
    path.write_bytes(pack_model(m))
    return dst


def test_merge_reports_what_cannot_be_shared(tiny_out, tmp_path):
    def requantize_gate(m):
        t = m.subgraphs[0].tensors[tensor_named(m, "gru2_z_sum_1/Add")]
        t.quantization.scale = np.array(t.quantization.scale) * np.float32(1.1)

    out = _mutated_copy(tiny_out, tmp_path / "q", "final", requantize_gate)
    _, merged = merge_dir(out)
    roots = [u for u in merged.unshared if u.root_cause]
    assert len(roots) == 1
    r = roots[0]
    assert (r.exit, r.kind, r.counterpart[0]) == ("final", OpKind.ADD, "gru2")
    assert "gru2_z_sum" in r.output and "calibrated differently" in r.reason
    # everything downstream of it in `final` is reported as a consequence
    assert any(not u.root_cause and "not shared" in u.reason for u in merged.unshared)
    assert len(merged.ops) > 43

    def new_weights(m):
        t = m.subgraphs[0].tensors[tensor_named(m, "gru2_xr_1/MatMul")]
        buf = m.buffers[t.buffer]
        data = np.array(buf.data)
        data[0] = data[0] - 1 if data[0] > -128 else 1
        buf.data = data

    out = _mutated_copy(tiny_out, tmp_path / "w", "fc2", new_weights)
    _, merged = merge_dir(out)
    roots = [u for u in merged.unshared if u.root_cause]
    assert [(u.exit, u.kind) for u in roots] == [("fc2", OpKind.FULLY_CONNECTED)]
    assert "contents differ" in roots[0].reason and "gru2_xr" in roots[0].reason


def test_merge_refuses_inconsistent_inputs(tiny_out, tmp_path):
    def features_scale(m):
        t = m.subgraphs[0].tensors[tensor_named(m, "serving_default_features")]
        t.quantization.scale = np.array(t.quantization.scale) * np.float32(2)

    out = _mutated_copy(tiny_out, tmp_path / "f", "gru2", features_scale)
    with pytest.raises(NsconvError, match="manifest quantization"):
        merge_dir(out)  # the manifest no longer describes the model
    d = json.loads((out / "manifest.json").read_text())
    d["exits"][1]["features"]["scale"] = float(
        read_tflite(out / "tflite" / "gru2.tflite").input("features").scale)
    (out / "manifest.json").write_text(json.dumps(d))
    with pytest.raises(NsconvError, match="features quantized .* unlike the first exit"):
        merge_dir(out)  # one feature frame feeds every exit


# ---------------------------------------------------------------------------------------------
# memory plan


def test_memory_plan(tiny_out):
    _, merged = merge_dir(tiny_out)
    mp = plan(merged)
    check_plan(merged, mp)
    assert mp.arena_bytes < mp.unshared_arena_bytes
    assert mp.state_bytes == 32 and mp.scratch_bytes == 0
    for p in mp.placements:
        if p.storage is Storage.ARENA:
            assert p.offset % 4 == 0
    states = [p for p in mp.placements if p.storage is Storage.STATE]
    assert sorted(p.state for p in states) == ["gru1", "gru2"]
    # a plan that puts two values alive at the same time on the same bytes is caught
    arena = [p for p in mp.placements if p.storage is Storage.ARENA]
    a = next(p for p in arena if p.end - p.start >= 4)
    b = next(p for p in arena if p is not a and a.start < p.start < a.end)
    broken = list(mp.placements)
    broken[b.value] = type(b)(b.value, b.storage, a.offset, b.size, None, b.start, b.end)
    with pytest.raises(AssertionError):
        check_plan(merged, MemoryPlan(tuple(broken), mp.arena_bytes, mp.state_bytes, 0, 4,
                                      mp.unshared_arena_bytes))


# ---------------------------------------------------------------------------------------------
# generated code


def test_generated_code_is_deterministic_and_readable(tiny_out, tiny_gen, tmp_path):
    again = generate(tiny_out, tmp_path / "again", command_line="pytest")
    for a, b in zip(tiny_gen.files, again.files, strict=True):
        assert a.name == b.name
        assert a.read_bytes() == b.read_bytes(), a.name
    c_dir = tiny_gen.files[0].parent
    assert sorted(p.name for p in c_dir.iterdir()) == sorted(GENERATED_FILES)
    for name in GENERATED_FILES:
        text = (c_dir / name).read_text()
        assert text.startswith("/* SPDX-License-Identifier: Apache-2.0 */\n"), name
        assert "\t" not in text and not re.search(r"[ \t]+$", text, re.M), name
        long = [ln for ln in text.splitlines() if len(ln) > 100 and "sha256" not in ln.lower()]
        assert not long, (name, long[:3])
    model_c = (c_dir / "nsn_model.c").read_text()
    model_h = (c_dir / "nsn_model.h").read_text()
    weights_c = (c_dir / "nsn_weights.c").read_text()
    prov = (c_dir / "nsn_provenance.h").read_text()
    assert "STATE RULE" in model_h and "NSN_EXIT_GRU1 = 0" in model_h
    assert "nsn_status nsn_model_step(nsn_model_t *m, const int8_t features[" in model_h
    # a comment per op naming the exit models' op indices, type and shapes
    for op in tiny_gen.merged.ops:
        assert f"/* op {op.id}: {op.kind.value}" in model_c
    assert "TFLite: gru1 op 0, gru2 op 0, fc2 op 0, final op 0" in model_c
    assert re.search(r"static const nsn_fc_params nsn_fc1_params = \{\n    \.input_offset", model_c)
    # weights named after their tensors, each emitted once, rows wrapped
    assert weights_c.count("const int8_t nsn_fc1_matmul[24][161] NSN_WEIGHTS_ALIGN = {") == 1
    # every constant once; FC biases are replaced by one folded bias per distinct FC
    from nsconv.compiler.codegen import _folded_biases
    from nsconv.compiler.tflite_ir import OpKind

    merged = tiny_gen.merged
    biases = {op.inputs[2].const for op in merged.ops
              if op.kind is OpKind.FULLY_CONNECTED and len(op.inputs) > 2
              and op.inputs[2].const >= 0}
    assert len(re.findall(r"^const \w+ (nsn_\w+)", weights_c, re.M)) == \
        len(merged.consts) - len(biases) + len(_folded_biases(merged))
    # every file-scope symbol carries the prefix
    for text in (model_c, weights_c):
        for sym in re.findall(r"^(?:static )?const [\w ]+?\*?\s*(?:const )?(\w+)\s*[\[=]", text,
                              re.M):
            assert sym.startswith("nsn_"), sym
    assert tiny_gen.manifest.source_sha256 in prov
    assert 'NSN_COMMAND_LINE "pytest"' in prov


def test_generated_code_compiles_pedantic(tiny_gen, tmp_path):
    c_dir = tiny_gen.files[0].parent
    inc = hostbuild.KERNEL_DIR / "include"
    for src in ("nsn_model.c", "nsn_weights.c"):
        for defs in ([], ["-DNSN_COUNT_MACS", "-DNSN_DEBUG_TENSORS"]):
            subprocess.run(["gcc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror",
                            "-Wshadow", "-Wstrict-prototypes", "-Wmissing-prototypes",
                            "-Wcast-qual", *defs, f"-I{c_dir}", f"-I{inc}", "-c",
                            str(c_dir / src), "-o", str(tmp_path / "x.o")], check=True)


def test_tiny_bit_exact_with_random_exits(tiny_out, tiny_gen, tiny_prog, tmp_path):
    """Random features (with saturated frames) and exits, resets; masks, states and MACs."""
    rng = np.random.default_rng(7)
    n = 400
    feats = rng.integers(-128, 128, (n, 161)).astype(np.int8)
    feats[10:20] = -128
    feats[20:30] = 127
    exits = rng.integers(0, 4, n)
    resets = np.zeros(n, bool)
    resets[[0, 150, 151, 300]] = True
    run = hostbuild.run(tiny_prog, tmp_path, feats, exits, resets)
    names = [e.name for e in tiny_gen.merged.exits]
    masks, states = _reference(tiny_out, [names[k] for k in exits], feats, resets)
    assert len(np.unique(masks)) > 50  # varied values, not a degenerate run
    np.testing.assert_array_equal(run.masks, masks)
    np.testing.assert_array_equal(run.states, states)
    macs = np.array([tiny_gen.merged.exits[k].macs for k in exits])
    np.testing.assert_array_equal(run.macs, macs)


def test_state_rule(tiny_gen, tiny_prog, tmp_path):
    """Reset states are the zero points; a GRU that the exit skips keeps its state."""
    merged = tiny_gen.merged
    zp = np.concatenate([np.full(s.size, s.quant.zero_point) for s in merged.states])
    rng = np.random.default_rng(3)
    feats = rng.integers(-128, 128, (6, 161)).astype(np.int8)
    exits = np.array([0, 3, 0, 0, 1, 0])
    resets = np.array([True, False, False, False, False, True])
    run = hostbuild.run(tiny_prog, tmp_path, feats, exits, resets)
    g1, g2 = slice(0, 16), slice(16, 32)
    assert np.array_equal(run.states[0, g2], zp[g2])  # exit gru1 never touches gru2
    assert not np.array_equal(run.states[0, g1], zp[g1])
    assert not np.array_equal(run.states[1, g2], zp[g2])
    assert np.array_equal(run.states[2, g2], run.states[1, g2])  # skipped: kept
    assert np.array_equal(run.states[3, g2], run.states[1, g2])
    assert not np.array_equal(run.states[4, g2], run.states[3, g2])
    assert np.array_equal(run.states[5, g2], zp[g2])  # reset before frame 5


def test_invalid_exit_is_an_error(tiny_prog, tmp_path):
    feats = np.zeros((2, 161), np.int8)
    with pytest.raises(NsconvError, match="returned -1"):
        hostbuild.run(tiny_prog, tmp_path, feats, np.array([0, 4]))


def test_special_ops_bit_exact(special_out, tmp_path):
    """SPLIT, CONCATENATION, RESHAPE (alias), QUANTIZE, a constant broadcast SUB operand and
    a state stored through requantization, against TFLM."""
    gen = generate(special_out, tmp_path / "c")
    text = (tmp_path / "c" / "nsn_model.c").read_text()
    assert "nsn_requantize_s8(&nsn_g_state_requantize" in text  # state quantizations differ
    assert "alias of v" in text and "memcpy(t_cat + 12" in text
    prog = hostbuild.build(tmp_path / "c", tmp_path / "b", sanitize=True, count_macs=True,
                           debug_tensors=True)
    rng = np.random.default_rng(5)
    n = 300
    feats = rng.integers(-128, 128, (n, 20)).astype(np.int8)
    feats[:10] = -128
    feats[10:20] = 127
    resets = np.zeros(n, bool)
    resets[0] = resets[200] = True
    run = hostbuild.run(prog, tmp_path, feats, np.zeros(n, int), resets)
    masks, states = _reference(special_out, ["final"] * n, feats, resets)
    assert len(np.unique(masks)) > 50
    np.testing.assert_array_equal(run.masks, masks)
    np.testing.assert_array_equal(run.states, states)
    assert np.all(run.macs == gen.merged.exits[0].macs)
