# SPDX-License-Identifier: Apache-2.0
"""One-step streaming Keras models with explicit GRU states, one per exit.

Each GRU step is written with one dense layer per gate and operand so that the TFLite converter
emits only TFLM int8 ops (FULLY_CONNECTED, ADD, SUB, MUL, LOGISTIC, TANH) and no WHILE loop:
    z = sigmoid(Dense_xz(x) + Dense_hz(h))     bias Wbz + Rbz on the x side
    r = sigmoid(Dense_xr(x) + Dense_hr(h))     bias Wbr + Rbr on the x side
    n = tanh(Dense_xn(x) + r * Dense_hn(h))    bias Wbh on the x side, Rbh on the h side
    h' = n + z * (h - n)                        = (1 - z) * n + z * h
Inputs are named `features` and `state_<gru>`; outputs `mask` and `state_<gru>_out`. Batch is
left open (None) so the converter adds no RESHAPE; a step is one frame per batch row.
"""

from __future__ import annotations

import numpy as np

from nsconv.model.netspec import GRU, Dense, ExitSpec, NetSpec


def state_input_name(gru: str) -> str:
    return f"state_{gru}"


def state_output_name(gru: str) -> str:
    return f"state_{gru}_out"


def build_step_model(spec: NetSpec, ex: ExitSpec):
    """Keras functional model of one step of `ex`'s sub-network."""
    import keras
    from keras import layers as kl

    feats = keras.Input((spec.input_size,), name="features")
    inputs = {"features": feats}
    outputs = {}
    x = feats
    for layer in spec.exit_layers(ex):
        if isinstance(layer, Dense):
            act = None if layer.activation == "linear" else layer.activation
            dense = kl.Dense(layer.out_size, activation=act, name=layer.name)
            x = dense(x)
            dense.set_weights([layer.weight, layer.bias])
        else:
            h = keras.Input((layer.hidden,), name=state_input_name(layer.name))
            inputs[h.name] = h
            x = _gru_step(layer, x, h)
            outputs[state_output_name(layer.name)] = x
    outputs["mask"] = x
    # Keras names outputs by the last layer; wrap in Identity layers so the names are ours.
    named = {k: kl.Identity(name=k)(v) for k, v in outputs.items()}
    # A list in name order: the converter calls the model with a positional list and orders the
    # .tflite inputs by name, so the two agree whatever the layer names are.
    ordered = [inputs[k] for k in sorted(inputs)]
    return keras.Model(inputs=ordered, outputs=named, name=f"step_{ex.name}")


def _gru_step(g: GRU, x, h):
    from keras import layers as kl

    H = g.hidden
    wz, wr, wh = g.w[:H], g.w[H : 2 * H], g.w[2 * H :]
    rz, rr, rh = g.r[:H], g.r[H : 2 * H], g.r[2 * H :]
    bz = g.wb[:H] + g.rb[:H]
    br = g.wb[H : 2 * H] + g.rb[H : 2 * H]
    bwh, brh = g.wb[2 * H :], g.rb[2 * H :]

    def dense(name, kernel, bias, inp):
        layer = kl.Dense(H, use_bias=bias is not None, name=f"{g.name}_{name}")
        out = layer(inp)
        layer.set_weights([kernel.T.copy()] + ([bias] if bias is not None else []))
        return out

    z = kl.Activation("sigmoid", name=f"{g.name}_z")(
        kl.Add(name=f"{g.name}_z_sum")([dense("xz", wz, bz, x), dense("hz", rz, None, h)]))
    r = kl.Activation("sigmoid", name=f"{g.name}_r")(
        kl.Add(name=f"{g.name}_r_sum")([dense("xr", wr, br, x), dense("hr", rr, None, h)]))
    hn = dense("hn", rh, brh, h)
    n = kl.Activation("tanh", name=f"{g.name}_n")(
        kl.Add(name=f"{g.name}_n_sum")([dense("xn", wh, bwh, x),
                                         kl.Multiply(name=f"{g.name}_rhn")([r, hn])]))
    delta = kl.Subtract(name=f"{g.name}_h_minus_n")([h, n])
    return kl.Add(name=f"{g.name}_out")([n, kl.Multiply(name=f"{g.name}_zd")([z, delta])])


class FloatStepper:
    """Runs one exit's float step model frame by frame with its states fed back.

    Several independent streams can run at once (one per batch row).
    """

    def __init__(self, spec: NetSpec, ex: ExitSpec) -> None:
        import tensorflow as tf

        self.spec, self.ex = spec, ex
        self.model = build_step_model(spec, ex)
        self.grus = [g.name for g in spec.grus(ex)]
        self._fn = tf.function(lambda inputs: self.model(inputs), reduce_retracing=True)

    def initial_states(self, batch: int = 1) -> dict[str, np.ndarray]:
        return {g: np.zeros((batch, self.spec.layers[g].hidden), np.float32) for g in self.grus}

    def step(self, feats: np.ndarray, states: dict[str, np.ndarray]):
        """feats (batch, bins); returns (mask (batch, bins), new states)."""
        inputs = {"features": np.asarray(feats, np.float32)}
        inputs.update({state_input_name(g): states[g] for g in self.grus})
        out = self._fn([inputs[k] for k in sorted(inputs)])
        return (np.asarray(out["mask"]),
                {g: np.asarray(out[state_output_name(g)]) for g in self.grus})

    def run(self, feats: np.ndarray, record: list | None = None) -> np.ndarray:
        """Masks (frames, bins) of one utterance; optionally records each step's inputs."""
        states = self.initial_states()
        masks = np.empty_like(feats, dtype=np.float32)
        for t in range(len(feats)):
            if record is not None:
                record.append((feats[t].copy(), {g: s[0].copy() for g, s in states.items()}))
            mask, states = self.step(feats[t : t + 1], states)
            masks[t] = mask[0]
        return masks
