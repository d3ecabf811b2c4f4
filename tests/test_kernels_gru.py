# SPDX-License-Identifier: Apache-2.0
"""nsn_gru_gates_s8 against TFLM on the host, sanitized (tests/gru_checks.py; the same checks
run on every board in tests/test_kernels_arm.py)."""

from __future__ import annotations

from gru_checks import (  # noqa: F401 -- collected and resolved in this module
    gru_models,
    test_gru_gates_match_tflm,
    test_gru_gates_reject_bad_arguments,
)
from test_kernels import harness  # noqa: F401 -- the sanitized host driver


def test_chain_with_an_escaping_tensor_is_not_fused(tmp_path) -> None:
    """A chain whose intermediate is read elsewhere (here n = TANH(...) is a second model output)
    stays op by op: fusing it would drop a tensor something else needs."""
    import numpy as np
    import tensorflow as tf
    from gru_checks import convert_fn
    from nsconv.compiler import layout, ndcodegen
    from nsconv.compiler.ndgraph import read_nd

    hidden = 4

    def step(x_zr, h_zr, h_n, x_n, h):
        z, r = tf.split(tf.sigmoid(x_zr + h_zr), 2, axis=-1)
        n = tf.tanh(x_n + r * h_n)
        return n + z * (h - n), n

    path = tmp_path / "escape.tflite"
    path.write_bytes(convert_fn(step, 1, hidden, np.random.default_rng(3)))
    g = read_nd(path)
    lay = layout.fold(g)
    made = {o: op for op in lay.compute for o in op.outputs}
    last = made[g.outputs[0][1]] if made[g.outputs[0][1]].kind == "ADD" else made[g.outputs[1][1]]
    assert ndcodegen._gru_match(g, lay, made, last) is not None  # the chain is there...
    assert ndcodegen.gru_chains(g, lay) == []  # ...and is left alone
