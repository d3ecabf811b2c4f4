# SPDX-License-Identifier: Apache-2.0
"""The three public nsNet2-family layouts, built as a user would: a PyTorch module exported with
torch.onnx.export's defaults, and a tf.keras functional model saved as .keras.

Shapes are the documented ones (docs: /work/shared/notes/models-and-parts.md, from the DNS
Challenge NSNet2 baseline, the Dynamic nsNet2 authors' 257-bin model files, and the DNS 48 kHz
branch). Weights are random but sensibly scaled: PyTorch's default init, then each dense layer rescaled
on real features so that its pre-activation has unit standard deviation (LSUV-style), and the
mask layers' bias -0.4, so masks spread around 0.4 like a trained suppressor's without
saturating. Every model has
two early exits after the GRUs (heads `head_gru1`, `head_gru2`) besides the final mask, and
returns its outputs out of backbone order (gru2, final, gru1) so the default-exit rule (the
deepest exit) is exercised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Layout:
    name: str
    rate: int
    win: int
    hop: int
    n_fft: int
    fc: int  # fc1 out (the GRU input)
    gru: int  # hidden size of gru1, gru2
    fc2: int  # fc2, fc3 out

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def frontend_args(self) -> list[str]:
        """`--frontend ...` for export (none for the default, the 16 kHz DNS front end)."""
        if (self.rate, self.win, self.hop, self.n_fft) == (16000, 320, 160, 320):
            return []
        return ["--frontend", f"rate={self.rate},win={self.win},hop={self.hop},"
                f"n_fft={self.n_fft},window=sqrt-hann"]


LAYOUTS = {
    "dns16k": Layout("dns16k", 16000, 320, 160, 320, 400, 400, 600),
    "bins257": Layout("bins257", 16000, 512, 256, 512, 400, 400, 600),
    "dns48k": Layout("dns48k", 48000, 960, 480, 1024, 600, 600, 800),
}
OUTPUTS = ("mask_gru2", "final", "mask_gru1")  # out of backbone order on purpose
EXITS = {"gru1", "gru2", "final"}


def features(layout: Layout, x: np.ndarray, rate: int) -> np.ndarray:
    """log10 power features of x (resampled to the layout's rate) with a sqrt-Hann window:
    what the layout's front end gives, for scaling the random weights."""
    from scipy.signal import resample_poly

    if rate != layout.rate:
        x = resample_poly(x, layout.rate, rate)
    win = np.sqrt(np.hanning(layout.win))
    n = 1 + (len(x) - layout.win) // layout.hop
    frames = np.stack([x[k * layout.hop: k * layout.hop + layout.win] * win for k in range(n)])
    power = np.abs(np.fft.rfft(frames, layout.n_fft)) ** 2
    return np.log10(np.maximum(power, 1e-12)).astype(np.float32)


def torch_model(layout: Layout, seed: int = 0, feats: np.ndarray | None = None):
    """The layout as a torch module; with feats (frames, bins), dense layers rescaled on them."""
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class NsNet2Family(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            b, f, h, f2 = layout.bins, layout.fc, layout.gru, layout.fc2
            self.fc1 = nn.Linear(b, f)
            self.gru1 = nn.GRU(f, h, batch_first=True)
            self.gru2 = nn.GRU(h, h, batch_first=True)
            self.fc2 = nn.Linear(h, f2)
            self.fc3 = nn.Linear(f2, f2)
            self.fc4 = nn.Linear(f2, b)
            self.head_gru1 = nn.Linear(h, b)
            self.head_gru2 = nn.Linear(h, b)
            with torch.no_grad():
                for m in (self.fc4, self.head_gru1, self.head_gru2):
                    m.bias.fill_(-0.4)

        def forward(self, x):
            x = torch.relu(self.fc1(x))
            g1, _ = self.gru1(x)
            g2, _ = self.gru2(g1)
            y = torch.relu(self.fc3(torch.relu(self.fc2(g2))))
            return (torch.sigmoid(self.head_gru2(g2)), torch.sigmoid(self.fc4(y)),
                    torch.sigmoid(self.head_gru1(g1)))

    net = NsNet2Family().eval()
    if feats is not None:
        _rescale(net, feats)
    return net


def _rescale(net, feats: np.ndarray) -> None:
    import torch

    x = torch.from_numpy(feats[None].astype(np.float32))
    for name in ("fc1", "fc2", "fc3", "fc4", "head_gru1", "head_gru2"):
        layer = getattr(net, name)
        seen = []
        hook = layer.register_forward_hook(lambda m, i, o, seen=seen: seen.append(o))
        with torch.no_grad():
            net(x)
            hook.remove()
            std = float(seen[0].std())
            layer.weight /= std
            layer.bias /= std
            if name in ("fc4", "head_gru1", "head_gru2"):
                layer.bias.fill_(-0.4)


def export_torch(model, path: Path, bins: int, frames: int = 8, **kwargs) -> Path:
    """torch.onnx.export with its defaults (the dynamo exporter) unless kwargs say otherwise."""
    import torch

    x = torch.randn(1, frames, bins)
    torch.onnx.export(model, (x,), str(path), input_names=["features"],
                      output_names=list(OUTPUTS), **kwargs)
    return path


def torch_masks(model, feats: np.ndarray) -> dict[str, np.ndarray]:
    """The torch model's masks (frames, bins) per exit name, for float features."""
    import torch

    with torch.no_grad():
        outs = model(torch.from_numpy(feats[None].astype(np.float32)))
    names = [o.removeprefix("mask_") for o in OUTPUTS]
    return {n: o[0].numpy() for n, o in zip(names, outs, strict=True)}


def keras_model(torch_net, layout: Layout):
    """The same network as a tf.keras functional model (Dense, GRU(reset_after=True)) with
    the torch module's weights, layer names and output names."""
    import keras
    from keras import layers as kl

    sd = {k: v.detach().numpy() for k, v in torch_net.state_dict().items()}

    def dense(name, act):
        layer = kl.Dense(sd[f"{name}.weight"].shape[0], activation=act, name=name)
        return layer, [sd[f"{name}.weight"].T, sd[f"{name}.bias"]]

    def gru(name):
        h = sd[f"{name}.weight_hh_l0"].shape[1]
        layer = kl.GRU(h, return_sequences=True, reset_after=True, name=name)
        # torch gate order (r, z, n) -> Keras (z, r, h)
        def reorder(a):
            r, z, n = np.split(a, 3, axis=0)
            return np.concatenate([z, r, n], axis=0)
        k = reorder(sd[f"{name}.weight_ih_l0"]).T
        rk = reorder(sd[f"{name}.weight_hh_l0"]).T
        b = np.stack([reorder(sd[f"{name}.bias_ih_l0"]), reorder(sd[f"{name}.bias_hh_l0"])])
        return layer, [k, rk, b]

    x_in = keras.Input((None, layout.bins), name="features")
    built = []

    def apply(pair, x):
        layer, w = pair
        y = layer(x)
        built.append((layer, w))
        return y

    x = apply(dense("fc1", "relu"), x_in)
    g1 = apply(gru("gru1"), x)
    g2 = apply(gru("gru2"), g1)
    y = apply(dense("fc3", "relu"), apply(dense("fc2", "relu"), g2))
    outs = {"mask_gru2": apply(dense("head_gru2", "sigmoid"), g2),
            "final": apply(dense("fc4", "sigmoid"), y),
            "mask_gru1": apply(dense("head_gru1", "sigmoid"), g1)}
    for layer, w in built:
        layer.set_weights(w)
    named = [kl.Identity(name=k)(v) for k, v in outs.items()]
    return keras.Model(x_in, named, name=f"nsnet2_{layout.name}")
