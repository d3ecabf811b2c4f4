# SPDX-License-Identifier: Apache-2.0
"""The layout pass (compiler/layout.py) against TFLM: data-movement-only int8 models from the
real TFLite converter, run in the TFLM interpreter; the pass's views (aliases, folded constants,
copy tables) applied to the same input must give TFLM's output bytes."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _convert(fn, shape, seed=0) -> bytes:
    import tensorflow as tf

    spec = tf.TensorSpec(shape, tf.float32, name="x")
    f = tf.function(fn, input_signature=[spec])
    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    rng = np.random.default_rng(seed)
    conv.representative_dataset = lambda: ([rng.uniform(-1, 1, shape).astype(np.float32)]
                                           for _ in range(8))
    return conv.convert()


def _moves(x):
    """Every data-movement op kind the pass folds, on one [1, 4, 6, 3] input."""
    import tensorflow as tf

    t = tf.transpose(x, [0, 3, 1, 2])  # [1, 3, 4, 6]
    g = tf.gather(t, [5, 0, 2, 2, 1], axis=3)  # [1, 3, 4, 5]
    s = tf.slice(t, [0, 1, 0, 2], [1, 2, 4, 3])  # [1, 2, 4, 3]
    ss = t[:, ::2, 1:, ::-2]  # strided slice, negative stride
    p = tf.pad(s, [[0, 0], [0, 0], [2, 1], [0, 1]])  # zero-point padding
    a, b = tf.split(x, 2, axis=2)  # [1, 4, 3, 3] each
    u = tf.unstack(x, axis=1)  # 4 x [1, 6, 3]
    pk = tf.stack([u[3], u[0]], axis=2)  # [1, 6, 2, 3]
    sq = tf.squeeze(x[:, 1:2], axis=1)  # [1, 6, 3]
    flat = tf.reshape(x, [-1])
    xx = tf.concat([flat, flat[::-1]], 0)  # 144
    # every other row of 2, 4, 8, 16 elements: the copy helper's fixed-size lines
    rows = [tf.reshape(tf.reshape(xx, [-1, n])[::2], [-1]) for n in (2, 4, 8, 16)]
    last = tf.concat([tf.reshape(u[2], [-1]), *rows], 0)
    zipped = tf.stack([x[..., 0], x[..., 2]], axis=-1)  # 24 rows alike: a row loop
    parts = [zipped, t, g, s, ss, p, b, a, pk, tf.concat([tf.reshape(sq, [-1]), last], 0)]
    return tf.concat([tf.reshape(q, [-1]) for q in parts], axis=0)


def _tflm(model: bytes, x: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    interp.set_input(x, 0)
    interp.invoke()
    return np.asarray(interp.get_output(0)).copy()


@pytest.fixture(scope="module")
def moves_model() -> bytes:
    return _convert(_moves, (1, 4, 6, 3))


def test_layout_matches_tflm(moves_model):
    from nsconv.compiler import layout
    from nsconv.compiler.ndgraph import parse_nd

    g = parse_nd(moves_model, "moves.tflite")
    result = layout.fold(g)
    assert result.compute == ()  # nothing but data movement
    for kind in ("TRANSPOSE", "GATHER", "SLICE", "STRIDED_SLICE", "PAD", "SPLIT", "UNPACK",
                 "PACK", "CONCATENATION", "RESHAPE"):
        assert result.folded.get(kind, 0) >= 1, (kind, result.folded)
    (out_name, out_idx), = g.outputs
    (_, in_idx), = g.inputs
    view = result.views[out_idx]
    assert view.kind == "gather" and view.roots == (in_idx,)
    assert any(r.root == layout.ZERO for r in view.runs)  # the padding
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.integers(-128, 128, g.tensors[in_idx].shape).astype(np.int8)
        got = layout.apply_view(view, g, {in_idx: x})
        assert np.array_equal(got.reshape(-1), _tflm(moves_model, x).reshape(-1))


def test_alias_and_runs(moves_model):
    """A reshape is an alias, a slice of whole rows one run; the runs cover every element."""
    from nsconv.compiler import layout
    from nsconv.compiler.ndgraph import parse_nd

    g = parse_nd(moves_model, "moves.tflite")
    (_, in_idx), = g.inputs
    t = g.tensors[in_idx]
    ids = layout.root_ids(t)
    assert layout.make_view(g, in_idx, ids.reshape(-1)).kind == "alias"
    v = layout.make_view(g, in_idx, np.concatenate([ids.reshape(-1)[6:], ids.reshape(-1)[:6]]))
    assert v.kind == "gather" and [(r.dst, r.src, r.length) for r in v.runs] == [
        (0, 6, t.size - 6), (t.size - 6, 0, 6)]
    b = layout.broadcast_view(g, in_idx, (2,) + t.shape)
    assert b.kind == "gather" and len(b.runs) == 2


def test_refuses_requantizing_move(moves_model):
    """A concatenation whose operands are quantized unlike its output is not data movement:
    refused naming the op, the tensor and the file."""
    from nsconv.compiler import layout
    from nsconv.compiler.ndgraph import NdQuant, parse_nd
    from nsconv.errors import NsconvError

    g = parse_nd(moves_model, "moves.tflite")
    concat = next(op for op in g.ops if op.kind == "CONCATENATION")
    victim = concat.inputs[1]
    tensors = list(g.tensors)
    q = tensors[victim].quant
    tensors[victim] = dataclasses.replace(tensors[victim],
                                          quant=NdQuant((q.scale * 2,), q.zero_points))
    bad = dataclasses.replace(g, tensors=tuple(tensors))
    with pytest.raises(NsconvError) as info:
        layout.fold(bad)
    text = str(info.value)
    # the first op that meets the changed tensor (its producer) is named
    assert text.startswith("moves.tflite: op ") and "quantized unlike" in text
    assert tensors[victim].name in text


def _raw_bytes(runs, sources, nbytes, zero_byte):
    out = np.zeros(nbytes, np.uint8)
    for d, slot, o, n in runs:
        out[d : d + n] = sources[slot][o : o + n] if slot >= 0 else zero_byte
    return out


def _interleave_runs(rows: int, width: int) -> list[tuple[int, int, int, int]]:
    """GTCRN's bidirectional-GRU input: row f = [X[f], X[rows-1-f]], X [rows, width] the
    element interleave of two [rows, width / 2] sources."""
    half = width // 2
    runs = []
    for f in range(rows):
        for side, xf in ((0, f), (1, rows - 1 - f)):
            for c in range(width):
                runs.append((f * 2 * width + side * width + c, c % 2, xf * half + c // 2, 1))
    return runs


def test_copy_plan_patterns():
    """Nested strided copy entries write exactly the raw runs' bytes, each once, and a
    transpose, an interleave with reversed rows and an unfold are a handful of entries."""
    from nsconv.compiler import layout

    rng = np.random.default_rng(0)
    srcs = [rng.integers(0, 256, 4096).astype(np.uint8) for _ in range(3)]
    transpose = [(c * 33 + f, 0, f * 16 + c, 1) for f in range(33) for c in range(16)]
    unfold = [(18 * (f - 1) + 6 * c + 2 * k, 1 if f + k < 65 else 2, 2 * (f + k - 1) + 256 * c, 2)
              for f in range(1, 128) for c in range(3) for k in range(3)]
    cases = {"transpose": (transpose, 1), "interleave+reversed": (_interleave_runs(33, 16), 8),
             "unfold": (unfold, 12)}
    random, d = [], 0  # any gather: random sources, lengths and zero fills
    for i in range(300):
        random.append((d, i % 3 - 1, int(rng.integers(0, 4000)), 1 + i % 2))
        d += 1 + i % 2
    cases["random"] = (random, 300)
    for name, (runs, most) in cases.items():
        nbytes = max(d + n for d, _, _, n in runs)
        plan = layout.copy_plan(runs)
        assert len(plan) <= most, (name, len(plan))
        got = layout.apply_copy_plan(plan, srcs, nbytes, 0xAB)
        assert np.array_equal(got, _raw_bytes(runs, srcs, nbytes, 0xAB)), name
        for e in plan:
            assert list(e.counts) == sorted(e.counts, reverse=True)  # longest loop innermost
        loops, rest = layout.row_plan(runs, nbytes, 2 if name == "unfold" else 1)
        out = _raw_bytes(rest, srcs, nbytes, 0xAB)
        layout.apply_row_loops(loops, srcs, out, 0xAB)
        assert np.array_equal(out, _raw_bytes(runs, srcs, nbytes, 0xAB)), name
        assert bool(loops) == (name != "random"), name
    assert any(s < 0 for e in layout.copy_plan(_interleave_runs(33, 16)) for s in e.src_steps)


def test_copy_tables_in_c(moves_model, tmp_path, monkeypatch):
    """The copy helper of the generated C (nsn_copy_runs: nested loops, negative steps,
    zero-point fills, 1/2/4/8/16-byte and odd lines) on the moves model with row loops off,
    host build under ASan/UBSan: the output equals TFLM's. (The row loops' C is checked the
    same way on GTCRN's core in test_gtcrn_compile.) With row loops on, the zipped rows are
    one unrolled loop."""
    from nsconv.check.nd_verify import verify_frames
    from nsconv.compiler import layout
    from nsconv.compiler.ndcodegen import NdSpec, generate_nd
    from nsconv.compiler.ndgraph import read_nd

    path = tmp_path / "moves.tflite"
    path.write_bytes(moves_model)
    g = read_nd(path)
    spec = NdSpec(g.inputs[0][0], g.outputs[0][0], (), "moves")
    (copy,) = generate_nd(path, spec, tmp_path / "rows").view.steps
    assert copy.loops and copy.loops[0].rows == 24
    monkeypatch.setattr(layout, "ROW_BYTES", 0)
    res = generate_nd(path, spec, tmp_path / "c")
    (table,) = res.view.run_tables
    assert not res.view.steps[0].loops
    assert {1, 2, 4, 8, 16} <= {r[3] for r in table.runs}
    assert any(r[1] < 0 for r in table.runs)  # zero-point fills
    assert any(r[4 + 3 * k + 2] < 0 for r in table.runs for k in range(3))  # negative steps
    frames = np.random.default_rng(3).integers(-128, 128, (4, g.tensors[g.inputs[0][1]].size))
    rep = verify_frames(g, spec, tmp_path / "c", tmp_path / "build", frames.astype(np.int8),
                        sanitize=True)
    assert rep.bit_exact, rep.first_mismatch


def test_state_shift_chunks():
    """An in-place state update moving bytes down (a frame cache's shift) is split into
    memcpys that never overlap, with memmove's result; a short shift stays one memmove."""
    from nsconv.compiler.ndcodegen import MOVE_CHUNKS, _move_chunks

    for dst, src, n in ((0, 528, 4752), (0, 528, 528), (3, 10, 40), (0, 1, 1000)):
        buf = np.arange(src + n, dtype=np.int64)
        want = buf.copy()
        want[dst : dst + n] = buf[src : src + n]
        chunks = _move_chunks(dst, src, n)
        assert (len(chunks) == 1 and chunks[0][2] < 0) == (-(-n // (src - dst)) > MOVE_CHUNKS)
        for d, s, k in chunks:
            if k > 0:
                assert s >= d + k  # memcpy: no overlap
            buf[d : d + abs(k)] = buf[s : s + abs(k)].copy()
        assert np.array_equal(buf, want)


def test_gtcrn_views_fold(gtcrn_converted):
    """On GTCRN's core: each depthwise conv reads its frame cache in place (the PAD is its own
    padding, the current frame written behind the cache's bytes), the caches are updated in
    place, the GRU step outputs are one slab, and every copy's row loops and remaining runs
    write exactly its bytes."""
    from nsconv.compiler import layout
    from nsconv.compiler.gtcrn_export import core_spec
    from nsconv.compiler.ndcodegen import compile_program
    from nsconv.compiler.ndgraph import parse_nd

    core = gtcrn_converted[0]
    g = parse_nd(core.tflite, "core.tflite")
    p = compile_program(g, core_spec(core))
    dw = [s for s in p.steps if s["kind"] == "dwconv"]
    assert len(dw) == 6 and all(p.bufs[s["x"].buf].kind == "state" for s in dw)
    assert len(p.state_tail) == 6
    rng = np.random.default_rng(4)
    unrolled = 0
    for s in (s for s in p.steps if s["kind"] == "copy"):
        ends = [max((o + n for _, k, o, n in s["raw_runs"] if k == slot), default=0)
                for slot in range(len(s["src_bufs"]))]  # a slab's first buffer: the slab
        srcs = [rng.integers(0, 256, n).astype(np.uint8) for n in ends]
        if s["moves"]:  # in place into a state: memcpys (memmove: size < 0), then the runs
            written = np.zeros(s["nbytes"], np.int32)
            for d, _, n in s["moves"]:
                written[d : d + abs(n)] += 1
            for d, _, _, n in s["raw_runs"]:
                written[d : d + n] += 1
            assert (written == 1).all(), s["comment"]
            continue
        want = _raw_bytes(s["raw_runs"], srcs, s["nbytes"], 7)
        loops, rest = layout.row_plan(s["raw_runs"], s["nbytes"], s["item"])
        got = _raw_bytes(rest, srcs, s["nbytes"], 7)
        layout.apply_row_loops(loops, srcs, got, 7)
        assert np.array_equal(got, want), s["comment"]
        unrolled += bool(loops)
    assert unrolled >= 20  # shuffles, [X, X reversed rows], the unfold: row loops
    assert sorted(p.state_tail.values()) == [528] * 6
    # the bidirectional GRUs' 33 step outputs, back to back in the arena
    assert [len(slab) for slab in p.slabs] == [33, 33]
