# SPDX-License-Identifier: Apache-2.0
"""The Dynamic nsNet2 model family on the pretrained NSNet2 backbone, and its Keras forms.

Exits follow `gru1`, `gru2`, `fc2` and the final layer (`final`, whose head is the baseline's
`fc4`). The three intermediate exits get one of three head styles (docs/dynamic_nsnet2.md says
how each is read):

  (a) `direct`  -- Dense(stage width -> 161, sigmoid) on the stage's output.
  (b) `split`   -- a trainable copy of the next backbone layer (initialised from the pretrained
                   one; a copied GRU keeps its own state) as ancillary feature extractor, then
                   Dense(-> 161, sigmoid). The backbone's own next layer is left untouched.
  (c) `channel` -- the stage's output channels are divided: a fraction (default 1/4, the
                   channels the next layer uses least) feed only the exit's mask layer, the rest
                   only the onward path. Realised with structural zeros (zero rows in the mask
                   layer and in the next backbone layer's input weights), so the step model
                   needs no slicing op; the zeros are kept through training by a constraint.

Everything is a `NetSpec` (float layers, backbone, exits), so convert / step models / codegen
need nothing new. For training, `KerasNet` is the same network as sequence layers (Dense and
`keras.layers.GRU(reset_after=True)`, which is ONNX's `linear_before_reset=1` GRU) whose weights
map one to one to the NetSpec's; `to_keras_model` / `import_keras` give and read a plain
multi-output Keras model (one output per exit, named `mask_<exit>`), and `export_onnx` writes the
PyTorch-style ONNX graph that `onnx_import.import_onnx` reads back.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from nsconv.errors import NsconvError
from nsconv.model.netspec import GRU, Dense, ExitSpec, Layer, NetSpec
from nsconv.model.onnx_import import exit_names, tree_exits
from nsconv.names import identifier

EXIT_STAGES = ("gru1", "gru2", "fc2")
STYLES = ("direct", "split", "channel")
STYLE_ALIASES = {"a": "direct", "b": "split", "c": "channel"}
DEFAULT_CHANNEL_FRACTION = 0.25
MASK_BIAS_INIT = -0.4  # masks start near 0.4, like a trained suppressor's average gain
TEACHER = "__teacher__"  # pseudo-exit of KerasNet.add_teacher


def style_name(style: str) -> str:
    s = STYLE_ALIASES.get(style, style)
    if s not in STYLES:
        raise NsconvError(f"unknown head style {style!r} (choose from a/direct, b/split, "
                          "c/channel)")
    return s


def mask_layer_name(stage: str) -> str:
    return f"exit_{stage}_mask"


def _glorot(rng, n_in: int, n_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, (n_in, n_out)).astype(np.float32)


def _mask_dense(rng, name: str, n_in: int, bins: int) -> Dense:
    return Dense(name, _glorot(rng, n_in, bins), np.full(bins, MASK_BIAS_INIT, np.float32),
                 "sigmoid")


def _copy_layer(layer: Layer, name: str) -> Layer:
    if isinstance(layer, Dense):
        return Dense(name, layer.weight.copy(), layer.bias.copy(), layer.activation)
    return GRU(name, layer.w.copy(), layer.r.copy(), layer.wb.copy(), layer.rb.copy())


def _input_usage(layer: Layer) -> np.ndarray:
    """L2 norm of each input channel's outgoing weights in `layer`."""
    if isinstance(layer, Dense):
        return np.linalg.norm(layer.weight, axis=1)
    return np.linalg.norm(layer.w, axis=0)


def _zero_inputs(layer: Layer, channels: np.ndarray) -> Layer:
    if isinstance(layer, Dense):
        w = layer.weight.copy()
        w[channels, :] = 0.0
        return Dense(layer.name, w, layer.bias, layer.activation)
    w = layer.w.copy()
    w[:, channels] = 0.0
    return GRU(layer.name, w, layer.r, layer.wb, layer.rb)


def build(base: NetSpec, style: str = "direct", seed: int = 0,
          channel_fraction: float = DEFAULT_CHANNEL_FRACTION) -> NetSpec:
    """4-exit Dynamic nsNet2 on `base`'s backbone with untrained heads of one style.

    `base` must have the NSNet2 backbone (fc1, gru1, gru2, fc2, fc3) and one exit `final`.
    """
    style = style_name(style)
    for stage in EXIT_STAGES:
        if stage not in base.backbone:
            raise NsconvError(f"backbone has no stage {stage!r}: not an NSNet2 backbone")
    if base.backbone.index("fc2") + 1 >= len(base.backbone):
        raise NsconvError("no backbone layer after fc2: not an NSNet2 backbone")
    final = base.exits[-1]
    rng = np.random.default_rng(seed)
    layers = dict(base.layers)
    exits: list[ExitSpec] = []
    split: dict[str, list[int]] = {}
    bins = base.input_size
    for stage in EXIT_STAGES:
        nxt = base.backbone[base.backbone.index(stage) + 1]
        width = layers[stage].out_size
        mname = mask_layer_name(stage)
        if style == "direct":
            layers[mname] = _mask_dense(rng, mname, width, bins)
            head: tuple[str, ...] = (mname,)
        elif style == "split":
            dup = f"exit_{stage}_{nxt}"
            layers[dup] = _copy_layer(layers[nxt], dup)
            layers[mname] = _mask_dense(rng, mname, layers[dup].out_size, bins)
            head = (dup, mname)
        else:
            k = max(1, int(round(channel_fraction * width)))
            if k >= width:
                raise NsconvError(f"channel fraction {channel_fraction} leaves no channel "
                                  f"for the onward path after {stage}")
            usage = _input_usage(layers[nxt])
            chans = np.sort(np.argsort(usage, kind="stable")[:k])
            split[stage] = [int(c) for c in chans]
            m = _mask_dense(rng, mname, width, bins)
            keep = np.zeros(width, bool)
            keep[chans] = True
            w = m.weight.copy()
            w[~keep, :] = 0.0
            layers[mname] = Dense(mname, w, m.bias, "sigmoid")
            layers[nxt] = _zero_inputs(layers[nxt], chans)
            head = (mname,)
        exits.append(ExitSpec(stage, stage, head))
    exits.append(ExitSpec("final", final.after, final.head))
    meta = {"family": "dynamic-nsnet2", "head_style": style, "seed": seed}
    if split:
        meta["channel_split"] = split
        meta["channel_fraction"] = channel_fraction
    return NetSpec(base.input_size, layers, base.backbone, tuple(exits), meta=meta)


def structural_zeros(spec: NetSpec) -> dict[str, dict[str, np.ndarray]]:
    """{layer: {array key: bool array, True where the weight must stay 0}} for channel split."""
    out: dict[str, dict[str, np.ndarray]] = {}
    split = spec.meta.get("channel_split", {})
    for stage, chans in split.items():
        chans = np.asarray(chans, int)
        nxt = spec.backbone[spec.backbone.index(stage) + 1]
        layer = spec.layers[nxt]
        if isinstance(layer, Dense):
            z = np.zeros(layer.weight.shape, bool)
            z[chans, :] = True
            out.setdefault(nxt, {})["weight"] = z
        else:
            z = np.zeros(layer.w.shape, bool)
            z[:, chans] = True
            out.setdefault(nxt, {})["w"] = z
        mname = mask_layer_name(stage)
        m = spec.layers[mname]
        z = np.ones(m.weight.shape, bool)
        z[chans, :] = False
        out.setdefault(mname, {})["weight"] = z
    return out


def round_weights(spec: NetSpec, dtype=np.float16) -> NetSpec:
    """The same network with every weight rounded to `dtype` (and held as float32)."""
    layers: dict[str, Layer] = {}
    for name, layer in spec.layers.items():
        def r(a):
            return np.asarray(a, dtype).astype(np.float32)
        if isinstance(layer, Dense):
            layers[name] = Dense(name, r(layer.weight), r(layer.bias), layer.activation)
        else:
            layers[name] = GRU(name, r(layer.w), r(layer.r), r(layer.wb), r(layer.rb))
    return NetSpec(spec.input_size, layers, spec.backbone, spec.exits, meta=dict(spec.meta))


def exit_costs(spec: NetSpec, frames_per_second: float = 100.0) -> list[dict]:
    """Per exit: MACs per frame and per second, parameters on its path."""
    out = []
    for ex in spec.exits:
        macs = spec.exit_macs(ex)
        out.append({"name": ex.name, "after": ex.after, "head": list(ex.head),
                    "macs_per_frame": macs, "macs_per_second": macs * frames_per_second,
                    "params": spec.exit_params(ex)})
    return out


# --------------------------------------------------------------------------------------------
# Keras sequence form (training)


class _ZeroMask:
    """Keras constraint that keeps the masked entries of a kernel at zero."""

    def __init__(self, keep: np.ndarray) -> None:
        self.keep = keep.astype(np.float32)

    def __call__(self, w):
        return w * self.keep

    def get_config(self):  # pragma: no cover - not serialised
        return {}


class KerasNet:
    """Sequence (batch, frames, bins) version of a NetSpec, weights shared with it one to one.

    `trainable` names the layers whose weights are trained; the others are frozen.
    """

    def __init__(self, spec: NetSpec, trainable: set[str] | None = None,
                 constraints: bool = True) -> None:
        import keras
        from keras import layers as kl

        self.spec = spec
        self.zeros = structural_zeros(spec) if constraints else {}
        trainable = set() if trainable is None else set(trainable)
        self.layers = {}
        for name, layer in spec.layers.items():
            z = self.zeros.get(name, {})
            if isinstance(layer, Dense):
                act = None if layer.activation == "linear" else layer.activation
                cons = _ZeroMask(~z["weight"]) if "weight" in z else None
                k = kl.Dense(layer.out_size, activation=act, name=name, kernel_constraint=cons)
                k.build((None, None, layer.in_size))
                k.set_weights([layer.weight, layer.bias])
            else:
                cons = _ZeroMask(~z["w"].T) if "w" in z else None
                k = kl.GRU(layer.hidden, return_sequences=True, reset_after=True, name=name,
                           kernel_constraint=cons)
                k.build((None, None, layer.in_size))
                k.set_weights([layer.w.T, layer.r.T, np.stack([layer.wb, layer.rb])])
            k.trainable = name in trainable
            self.layers[name] = k
        self._keras = keras

    def add_teacher(self, head: list[Layer], after: str) -> None:
        """Frozen copies of `head` (e.g. the pretrained final head) on stage `after`, computed
        as the pseudo-exit `__teacher__`."""
        from keras import layers as kl

        ks = []
        for layer in head:
            if not isinstance(layer, Dense):
                raise NsconvError("a teacher head of dense layers only")
            act = None if layer.activation == "linear" else layer.activation
            k = kl.Dense(layer.out_size, activation=act, name=f"teacher_{layer.name}")
            k.build((None, None, layer.in_size))
            k.set_weights([layer.weight, layer.bias])
            k.trainable = False
            ks.append(k)
        self._teacher = (after, ks)

    def trainable_variables(self) -> list:
        return [v for k in self.layers.values() for v in k.trainable_variables]

    def apply_constraints(self) -> None:
        for name, k in self.layers.items():
            if name in self.zeros:
                owner = getattr(k, "cell", k)
                owner.kernel.assign(owner.kernel_constraint(owner.kernel))

    def __call__(self, feats, exits: list[str] | None = None, training: bool = False) -> dict:
        """Masks per exit name for features (batch, frames, bins)."""
        spec = self.spec
        teacher = getattr(self, "_teacher", None)
        want_teacher = bool(exits) and TEACHER in exits and teacher is not None
        wanted = ([spec.exit(e) for e in exits if e != TEACHER] if exits
                  else list(spec.exits))
        afters = [spec.backbone.index(ex.after) for ex in wanted]
        if want_teacher:
            afters.append(spec.backbone.index(teacher[0]))
        last = max(afters)
        stage_out = {}
        x = feats
        for name in spec.backbone[: last + 1]:
            x = self.layers[name](x, training=training)
            stage_out[name] = x
        out = {}
        for ex in wanted:
            y = stage_out[ex.after]
            for name in ex.head:
                y = self.layers[name](y, training=training)
            out[ex.name] = y
        if want_teacher:
            y = stage_out[teacher[0]]
            for k in teacher[1]:
                y = k(y)
            out[TEACHER] = y
        return out

    def to_netspec(self, meta: dict | None = None) -> NetSpec:
        layers: dict[str, Layer] = {}
        for name, layer in self.spec.layers.items():
            w = [np.asarray(a, np.float32) for a in self.layers[name].get_weights()]
            if isinstance(layer, Dense):
                layers[name] = Dense(name, w[0], w[1], layer.activation)
            else:
                layers[name] = GRU(name, np.ascontiguousarray(w[0].T),
                                   np.ascontiguousarray(w[1].T), w[2][0].copy(), w[2][1].copy())
        m = dict(self.spec.meta)
        m.update(meta or {})
        return NetSpec(self.spec.input_size, layers, self.spec.backbone, self.spec.exits, meta=m)


def to_keras_model(spec: NetSpec):
    """A plain Keras functional model of the whole family: input `features` (batch, frames,
    bins), one output `mask_<exit>` per exit. Layer names are the NetSpec's."""
    import keras
    from keras import layers as kl

    net = KerasNet(spec, constraints=False)
    feats = keras.Input((None, spec.input_size), name="features")
    masks = net(feats)
    outputs = {f"mask_{k}": kl.Identity(name=f"mask_{k}")(v) for k, v in masks.items()}
    return keras.Model(feats, outputs, name="dynamic_nsnet2")


def import_keras(model_or_path) -> NetSpec:
    """A Keras model of the nsNet2 family -> NetSpec.

    Accepts a `.keras` file or a loaded model made of Dense (linear/relu/sigmoid) and
    GRU(reset_after=True, tanh/sigmoid, forward) layers in a tree from one input; every model
    output is an exit (named after the output, `mask_` prefix dropped), the backbone is the path
    to the last output, as in the ONNX import.
    """
    model, path = _load_keras(model_or_path)
    if len(model.inputs) != 1:
        raise NsconvError(f"expected one input (features), found {len(model.inputs)}", path)
    walk = _KerasWalk(model, path)
    out_names = list(model.output_names) if hasattr(model, "output_names") else []
    out_layers = []
    for t in model.outputs:
        n = t._keras_history[0].name
        out_layers.append(walk.passthrough.get(n, n))
    if not out_names or len(out_names) != len(out_layers):
        out_names = [t._keras_history[0].name for t in model.outputs]
    # layer names follow the one naming rule (nsconv.names)
    ident = {k: identifier(k) for k in walk.layers}
    if len(set(ident.values())) != len(ident):
        raise NsconvError("two layer names give the same identifier: "
                          + ", ".join(sorted(ident)), path)
    layers = {ident[k]: dataclasses.replace(v, name=ident[k]) for k, v in walk.layers.items()}
    paths = [[ident[k] for k in walk.chain(o)] for o in out_layers]
    try:
        backbone, exits = tree_exits(paths, exit_names(out_names), layers)
        used = {n for p in paths for n in p}
        layers = {k: v for k, v in layers.items() if k in used}
        return NetSpec(int(model.inputs[0].shape[-1]), layers, backbone, exits)
    except NsconvError as exc:
        raise NsconvError(exc.problem, path) from None


def _load_keras(model_or_path):
    """(model, path): a `.keras`/`.h5` file loaded, or a model passed in with its name."""
    import keras

    if not isinstance(model_or_path, (str, Path)):
        return model_or_path, Path(getattr(model_or_path, "name", "keras-model"))
    path = Path(model_or_path)
    try:
        return keras.saving.load_model(str(path), compile=False), path
    except Exception as exc:
        raise NsconvError(f"not a readable Keras model ({type(exc).__name__}: {exc})",
                          path) from None


class _KerasWalk:
    """The model's layers in order: each mapped layer (`layers`) and its source (`parent`);
    Identity layers pass their source through (`passthrough`)."""

    def __init__(self, model, path: Path) -> None:
        import keras

        self.path = path
        self.parent: dict[str, str | None] = {}
        self.layers: dict[str, Layer] = {}
        self.passthrough: dict[str, str | None] = {}
        self.input_names = {t.name for t in model.inputs} | {
            lyr.name for lyr in model.layers if isinstance(lyr, keras.layers.InputLayer)}
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            if isinstance(layer, keras.layers.Identity):
                self.passthrough[layer.name] = self.src_of(layer)
                continue
            src = self.src_of(layer)
            self.layers[layer.name] = self.layer(layer)
            self.parent[layer.name] = src

    def src_of(self, layer) -> str | None:
        node = layer._inbound_nodes[0]
        srcs = [t._keras_history[0].name for t in node.input_tensors]
        if len(srcs) != 1:
            raise NsconvError(f"layer {layer.name!r} has {len(srcs)} inputs: outside the "
                              "nsNet2 family", self.path)
        s = srcs[0]
        return None if s in self.input_names else self.passthrough.get(s, s)

    def layer(self, layer) -> Layer:
        import keras

        if isinstance(layer, keras.layers.Dense):
            act = layer.activation.__name__
            if act not in ("linear", "relu", "sigmoid"):
                raise NsconvError(f"Dense {layer.name!r}: activation {act} outside the family",
                                  self.path)
            w = [np.asarray(a, np.float32) for a in layer.get_weights()]
            bias = w[1] if len(w) > 1 else np.zeros(w[0].shape[1], np.float32)
            return Dense(layer.name, w[0], bias, act)
        if isinstance(layer, keras.layers.GRU):
            cell = layer.cell
            if (not cell.reset_after or layer.go_backwards
                    or cell.activation.__name__ != "tanh"
                    or cell.recurrent_activation.__name__ != "sigmoid"):
                raise NsconvError(f"GRU {layer.name!r}: needs reset_after=True, forward, "
                                  "tanh/sigmoid", self.path)
            k, rk, b = [np.asarray(a, np.float32) for a in layer.get_weights()]
            return GRU(layer.name, np.ascontiguousarray(k.T), np.ascontiguousarray(rk.T),
                       b[0].copy(), b[1].copy())
        raise NsconvError(f"layer {layer.name!r} ({type(layer).__name__}) is outside the "
                          "nsNet2 family", self.path)

    def chain(self, name: str) -> list[str]:
        out = []
        cur: str | None = name
        while cur is not None:
            out.append(cur)
            cur = self.parent[cur]
        return out[::-1]


# --------------------------------------------------------------------------------------------
# ONNX export (the graph PyTorch's exporter writes for this family)


def export_onnx(spec: NetSpec, path: Path) -> None:
    """Write `spec` as a multi-output ONNX graph: input `features` (batch, frames, bins),
    outputs `mask_<exit>`; MatMul + Add (+ Relu/Sigmoid) per dense layer and, per GRU,
    Transpose -> GRU(linear_before_reset=1) -> Squeeze -> Transpose, as torch.onnx exports
    nn.Linear and nn.GRU(batch_first=True)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    done: dict[str, str] = {}

    def emit(name: str, x: str) -> str:
        layer = spec.layers[name]
        if isinstance(layer, Dense):
            mm = f"{name}/MatMul"
            nodes.append(helper.make_node("MatMul", [x, const(f"{name}.weight", layer.weight)],
                                          [mm], name=mm))
            y = f"{name}/Add"
            nodes.append(helper.make_node("Add", [mm, const(f"{name}.bias", layer.bias)], [y],
                                          name=y))
            if layer.activation != "linear":
                op = {"relu": "Relu", "sigmoid": "Sigmoid"}[layer.activation]
                nodes.append(helper.make_node(op, [y], [f"{name}/{op}"], name=f"{name}/{op}"))
                y = f"{name}/{op}"
            return y
        t = f"{name}/Transpose_in"
        nodes.append(helper.make_node("Transpose", [x], [t], perm=[1, 0, 2], name=t))
        w = const(f"{name}.W", layer.w[None])
        r = const(f"{name}.R", layer.r[None])
        b = const(f"{name}.B", np.concatenate([layer.wb, layer.rb])[None])
        yy = f"{name}/Y"
        nodes.append(helper.make_node("GRU", [t, w, r, b], [yy, f"{name}/Y_h"],
                                      hidden_size=layer.hidden, linear_before_reset=1,
                                      name=f"{name}/GRU"))
        sq = f"{name}/Squeeze"
        nodes.append(helper.make_node("Squeeze", [yy, const(f"{name}.axes", np.array([1]))],
                                      [sq], name=sq))
        out = f"{name}/Transpose_out"
        nodes.append(helper.make_node("Transpose", [sq], [out], perm=[1, 0, 2], name=out))
        return out

    x = "features"
    outs = {}
    for name in spec.backbone:
        x = emit(name, x)
        done[name] = x
    for ex in spec.exits:
        y = done[ex.after]
        for name in ex.head:
            y = emit(name, y)
        oname = f"mask_{ex.name}"
        nodes.append(helper.make_node("Identity", [y], [oname], name=oname))
        outs[ex.name] = oname
    bins = spec.input_size
    graph = helper.make_graph(
        nodes, "dynamic_nsnet2",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", "frames", bins])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["batch", "frames", bins])
         for o in outs.values()], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="nsconv")
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
