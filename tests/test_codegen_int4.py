# SPDX-License-Identifier: Apache-2.0
"""int4 weights through the compiler: the FULLY_CONNECTED filters a manifest lists as int4 are
checked to lie in [-7, 7], emitted packed two per byte (compiler/packing.py) and run by
nsn_fully_connected_s4; everything else is generated as for an all-int8 model. The generated C
is bit-exact with TFLM on the int8 models that carry the int4-grid weights, on the host under
ASan/UBSan and, as shipped firmware, on Cortex-M55 (MVE) and Cortex-M4 (DSP) in QEMU.

The model is the tiny 4-exit network of irmodels.py converted with gru1 and fc3 in int4 (GPTQ
rounding, nsconv.quant.weights: conftest.py's tiny_int4_out), as `nsconv convert --weights`
does.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from frontend_harness import fwbuild
from irmodels import pack_model, unpack_model
from nsconv.compiler import packing
from nsconv.compiler.codegen import generate
from nsconv.compiler.graph_merge import merge_dir
from nsconv.compiler.tflite_ir import OpKind, parse_tflite
from nsconv.errors import NsconvError
from nsconv.quant.manifest import Manifest
from nsconv.target import hostbuild


@pytest.fixture(scope="module")
def int4_out(tiny_int4_out) -> Path:
    return tiny_int4_out


@pytest.fixture(scope="module")
def int4_gen(int4_out, tmp_path_factory):
    return generate(int4_out, tmp_path_factory.mktemp("tiny_int4_c"), command_line="pytest")


def _c_array(text: str, name: str) -> tuple[tuple[int, ...], np.ndarray]:
    """The dimensions and values of `const int8_t name[..][..] ... = {...};` in generated C."""
    m = re.search(rf"const int8_t {name}((?:\[\d+\])+) NSN_WEIGHTS_ALIGN = \{{(.*?)\n\}};",
                  text, re.S)
    assert m, name
    dims = tuple(int(d) for d in re.findall(r"\d+", m[1]))
    body = re.sub(r"/\*.*?\*/", "", m[2], flags=re.S)
    return dims, np.array([int(v) for v in re.findall(r"-?\d+", body)], np.int8)


def test_int4_filters_are_packed_and_run_by_the_s4_kernel(tiny_out, int4_out, int4_gen):
    manifest, merged = Manifest.load(int4_out), int4_gen.merged
    _, merged8 = merge_dir(tiny_out)
    listed = {n for e in manifest.exits for n in e.int4_weights}
    int4 = [c for c in merged.consts if c.int4]
    # every listed filter (once per exit that holds it) became a shared packed constant
    assert int4 and all(c.name in listed for c in int4)
    assert {c.id for c in int4} == {op.inputs[1].const for op in merged.ops
                                    if op.kind is OpKind.FULLY_CONNECTED
                                    and merged.consts[op.inputs[1].const].int4}
    assert not merged.unshared and len(merged.ops) == len(merged8.ops)
    saved = sum(len(c.data) - c.nbytes for c in int4)
    assert saved > 0 and merged.const_bytes == merged8.const_bytes - saved

    c_dir = int4_gen.files[0].parent
    weights_c = (c_dir / "nsn_weights.c").read_text()
    model_c = (c_dir / "nsn_model.c").read_text()
    calls = re.findall(r"NSN_CHECK\((nsn_fully_connected_s[48])\(.*?&(\w+)\[0\]\[0\]", model_c,
                       re.S)
    # the source tensor named in each packed constant's comment -> its C name
    packed = dict(re.findall(r"/\* ([^\n]*)\n \*   int4, packed two per byte[^\n]*\n"
                             r" \*   used by [^\n]*\*/\nconst int8_t (\w+)\[", weights_c))
    names = {c.id: packed[c.name] for c in int4}
    assert len(packed) == len(int4)
    assert {k for k, w in calls if w in names.values()} == {"nsn_fully_connected_s4"}
    assert {w for k, w in calls if k == "nsn_fully_connected_s4"} == set(names.values())
    assert any(k == "nsn_fully_connected_s8" for k, _ in calls)
    for c in int4:
        dims, values = _c_array(weights_c, names[c.id])
        assert dims == (c.shape[0], packing.row_bytes(c.shape[1]))
        w = np.frombuffer(c.data, np.int8).reshape(c.shape)
        assert np.array_equal(values, packing.pack_s4(w).ravel())
        assert np.array_equal(packing.unpack_s4(values.reshape(dims), c.shape[1]), w)
    assert "#define NSN_MODEL_MAX_FC_S4_INPUT" in (c_dir / "nsn_model.h").read_text()


def test_int4_export_is_bit_exact_with_tflm(int4_out, int4_gen, tmp_path):
    """Random features (saturated frames included), exits and resets: masks, states, MACs."""
    from nsconv.check.tflm_ref import TflmReference

    prog = hostbuild.build(int4_gen.files[0].parent, tmp_path / "build", sanitize=True,
                           count_macs=True)
    rng = np.random.default_rng(17)
    n = 300
    feats = rng.integers(-128, 128, (n, 161)).astype(np.int8)
    feats[10:20] = 127
    exits = rng.integers(0, 4, n)
    resets = np.zeros(n, bool)
    resets[[0, 120]] = True
    run = hostbuild.run(prog, tmp_path, feats, exits, resets)
    ref = TflmReference(int4_out)
    names = [e.name for e in int4_gen.merged.exits]
    masks, states = [], []
    for t in range(n):
        if resets[t]:
            ref.reset()
        masks.append(ref.step(feats[t], names[exits[t]]))
        states.append(np.concatenate([ref.states[k].reshape(-1) for k in ref.states]))
    assert len(np.unique(masks)) > 50
    np.testing.assert_array_equal(run.masks, np.array(masks))
    np.testing.assert_array_equal(run.states, np.array(states))
    np.testing.assert_array_equal(run.macs, [int4_gen.merged.exits[k].macs for k in exits])


def test_int4_filters_are_checked(int4_out):
    """A listed filter must hold int4-grid values and be a FULLY_CONNECTED filter."""
    entry = Manifest.load(int4_out).exits[-1]
    buf = (int4_out / entry.tflite).read_bytes()
    names = entry.int4_weights
    assert all(t.int4 == (t.name in names) for t in parse_tflite(buf, int4=names).tensors)
    model = unpack_model(buf)
    tensors = model.subgraphs[0].tensors
    target = next(t for t in tensors if t.name.decode() == names[0])
    data = np.array(model.buffers[target.buffer].data, np.uint8)
    data[3] = 8
    model.buffers[target.buffer].data = data
    with pytest.raises(NsconvError, match=r"listed as int4 but hold values in \[-?\d+, 8\]"):
        parse_tflite(pack_model(model), int4=names)
    with pytest.raises(NsconvError, match="no FULLY_CONNECTED filter"):
        parse_tflite(buf, int4=(*names, "step_final_1/no_such_layer/MatMul"))


@pytest.mark.skipif(not (fwbuild.HAVE_ARM_GCC and fwbuild.HAVE_QEMU),
                    reason="arm-none-eabi-gcc and qemu-system-arm required")
def test_int4_firmware_is_bit_exact_on_the_cores(int4_out, tmp_path):
    """The shipped firmware (model + kernels) in QEMU against TFLM: Cortex-M55 (the MVE s4
    loop) and Cortex-M4 (DSP); M7 and M33 (the M4's DSP source) with NSCONV_ARM_FULL=1."""
    import os

    from nsconv.check.target_verify import verify_targets

    out = tmp_path / "out"
    shutil.copytree(int4_out, out)
    cores = ["cortex-m55", "cortex-m4"]
    if os.environ.get("NSCONV_ARM_FULL") == "1":
        cores += ["cortex-m7", "cortex-m33"]
    for r in verify_targets(out, cores, frames=60, schedule="random"):
        assert r.ok and r.bit_exact, r.table()
        assert r.kernels_path == ("mve" if r.target == "cortex-m55" else "dsp")
