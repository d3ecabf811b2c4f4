# SPDX-License-Identifier: Apache-2.0
"""GTCRN's front end outside the network, in numpy (float32 where the network sees it).

As the authors run it (models/gtcrn/SOURCES.md): torch.stft(n_fft=512, hop=256, win=512,
window=sqrt(periodic Hann), center=True, reflect padding); the inverse uses the same window with
overlap-add normalised by the summed squared window. Per frame, the network's input features are
(|X|, Re X, Im X) with |X| = sqrt(Re^2 + Im^2 + 1e-12) (the magnitude the ONNX graph computes
from `mix`); the network returns a complex mask in ERB bands (2 x 129, tanh-bounded): the first
`low` bins are per bin, the rest are expanded by the ERB synthesis band matrix; the enhanced frame
is the complex product of the mask and the noisy frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nsconv.audio.spec import FrontendSpec
from nsconv.errors import NsconvError

# The STFT as the authors run it (SOURCES.md); the C front end's FFT plan and window tables are
# generated from this spec (firmware/frontend/gen_tables.py), as for nsNet2. Its feature and
# mask keys (log power, gain clip) are nsNet2's and do not apply here.
STFT = FrontendSpec(rate=16000, win=512, hop=256, n_fft=512, window="sqrt-hann-periodic",
                    drop_first=False)
N_FFT = STFT.n_fft
HOP = STFT.hop
BINS = STFT.n_bins
MAG_EPS = 1e-12  # |X| = sqrt(Re^2 + Im^2 + eps): GTCRN's head's eps (load_gtcrn reads the model's)
KIND = "gtcrn"


def window() -> np.ndarray:
    """sqrt(periodic Hann 512), float64."""
    return STFT.window_values()


def ola_norm() -> np.ndarray:
    """Summed squared window seen by each sample of a frame in the steady state (hop = N/2):
    w^2[n] + w^2[n +- hop]; istft divides by it (1 up to rounding for sqrt-Hann)."""
    w2 = window() ** 2
    return w2 + np.roll(w2, HOP)


def stft(x: np.ndarray) -> np.ndarray:
    """(frames, 257) complex64, frames = 1 + len // 256 (centred, reflect padding)."""
    x = np.asarray(x, np.float64)
    xp = np.pad(x, (N_FFT // 2, N_FFT // 2), mode="reflect")
    frames = 1 + (len(xp) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    return np.fft.rfft(xp[idx] * window(), axis=1).astype(np.complex64)


def istft(spec: np.ndarray, length: int) -> np.ndarray:
    """Inverse of `stft`: windowed overlap-add over the summed squared window, centre removed."""
    w = window()
    frames = np.fft.irfft(np.asarray(spec, np.complex128), n=N_FFT, axis=1) * w
    total = N_FFT + HOP * (len(spec) - 1)
    out = np.zeros(total)
    norm = np.zeros(total)
    for t in range(len(spec)):
        out[t * HOP: t * HOP + N_FFT] += frames[t]
        norm[t * HOP: t * HOP + N_FFT] += w * w
    out = out / np.where(norm > 1e-11, norm, 1.0)
    return out[N_FFT // 2: N_FFT // 2 + length].astype(np.float32)


def features(frame: np.ndarray, mag_eps: float = MAG_EPS) -> np.ndarray:
    """One complex frame (257,) -> the network input (3, 257): |X|, Re X, Im X (float32)."""
    re = np.real(frame).astype(np.float32)
    im = np.imag(frame).astype(np.float32)
    mag = np.sqrt(re * re + im * im + np.float32(mag_eps)).astype(np.float32)
    return np.stack([mag, re, im])


def expand_mask(mask_erb: np.ndarray, synthesis: np.ndarray) -> np.ndarray:
    """(2, low + bands) ERB-domain mask -> (2, 257) per-bin mask; synthesis (bands, 257 - low)."""
    bands = synthesis.shape[0]
    low = mask_erb.shape[-1] - bands
    high = mask_erb[..., low:] @ synthesis
    return np.concatenate([mask_erb[..., :low], high], axis=-1).astype(np.float32)


def apply_mask(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Complex product of a frame (257,) and a per-bin mask (2, 257) (real, imaginary)."""
    re = np.real(frame).astype(np.float32)
    im = np.imag(frame).astype(np.float32)
    mr, mi = mask[0], mask[1]
    return (re * mr - im * mi) + 1j * (im * mr + re * mi)


@dataclass(frozen=True, eq=False)
class GtcrnFrontendSpec:
    """Every number of GTCRN's front end: the STFT (`STFT`), the magnitude epsilon of the
    features, and the ERB synthesis band matrix of the mask, taken from the model's graph
    (`model.gtcrn.load_gtcrn(...).synthesis`, shape (bands, BINS - low)). The network's mask
    has low + bands values per part (real, imaginary): the first `low` are per bin."""

    synthesis: np.ndarray = field(repr=False)
    stft: FrontendSpec = STFT
    mag_eps: float = MAG_EPS

    def __post_init__(self) -> None:
        s = np.asarray(self.synthesis)
        st = self.stft
        if s.ndim != 2 or not 0 < s.shape[1] <= st.n_bins or s.shape[0] < 1:
            raise NsconvError(f"front end: ERB synthesis matrix of shape {s.shape} does not fit "
                              f"{st.n_bins} bins")
        if not np.all(np.isfinite(s)):
            raise NsconvError("front end: ERB synthesis matrix has non-finite values")
        if not (st.win == st.n_fft == 2 * st.hop and st.drop_first is False):
            raise NsconvError("front end: the GTCRN front end needs win = n_fft = 2 hop, no "
                              f"dropped frame (got {st.describe()})")
        object.__setattr__(self, "synthesis", np.ascontiguousarray(s, np.float32))

    @property
    def bands(self) -> int:
        return self.synthesis.shape[0]

    @property
    def low(self) -> int:
        """Bins whose mask value is the network's own (no band expansion)."""
        return self.stft.n_bins - self.synthesis.shape[1]

    @property
    def mask_bands(self) -> int:
        """Mask values per part (real, imaginary): low + bands (129 for GTCRN)."""
        return self.low + self.bands

    @property
    def feature_count(self) -> int:
        """Network input values per frame: (|X|, Re X, Im X) x bins, channel-major."""
        return 3 * self.stft.n_bins

    def to_json(self) -> dict:
        return {"kind": KIND, "stft": self.stft.to_json(), "mag_eps": self.mag_eps,
                "erb_synthesis": [[float(v) for v in row] for row in self.synthesis]}

    @staticmethod
    def from_json(d, source: str | Path | None = None) -> GtcrnFrontendSpec:
        if not isinstance(d, dict) or d.get("kind") != KIND:
            raise NsconvError(f"front end: expected a {KIND!r} front-end object", source)
        try:
            syn = np.asarray(d["erb_synthesis"], np.float64)
            return GtcrnFrontendSpec(syn.astype(np.float32),
                                     FrontendSpec.from_json(d["stft"], source),
                                     float(d["mag_eps"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise NsconvError(f"front end: bad {KIND} front end ({exc})", source) from None
        except NsconvError as exc:
            raise NsconvError(exc.problem, source) from None

    @staticmethod
    def from_model(model) -> GtcrnFrontendSpec:
        """The front end of a `model.gtcrn.Gtcrn`: its ERB synthesis matrix and magnitude eps,
        read from the graph and checked against this module by `load_gtcrn`."""
        return GtcrnFrontendSpec(model.synthesis, STFT, model.mag_eps)


class Streamer:
    """Hop-by-hop front end, as the C front end (nsn_gtcrn_frontend.h) runs it.

    push(256 samples) returns the spectrum of the frame that ends with them: frame t of a stream
    is x[256 (t-1) .. 256 t + 256), centred on sample 256 t, with zeros before the stream starts
    (`stft` reflects instead; a stream cannot see x[1..256] when frame 0 is due, so frames t >= 1
    equal `stft`'s and frame 0 differs). synthesize(masked frame) returns output hop t =
    istft samples y[256 (t-1) .. 256 t), i.e. the batch output delayed by one hop (zeros for
    t = 0, which precedes the input). flush() returns the last hop of the overlap-add tail.
    """

    def __init__(self) -> None:
        self._window = window()
        self._synthesis_window = self._window / ola_norm()
        self._buf = np.zeros(N_FFT)
        self._ola = np.zeros(HOP)
        self._hops = 0

    def push(self, hop: np.ndarray) -> np.ndarray:
        if len(hop) != HOP:
            raise ValueError(f"push takes {HOP} samples, got {len(hop)}")
        self._buf = np.concatenate([self._buf[HOP:], np.asarray(hop, np.float64)])
        self._hops += 1
        return np.fft.rfft(self._buf * self._window).astype(np.complex64)

    def synthesize(self, frame: np.ndarray) -> np.ndarray:
        y = np.fft.irfft(np.asarray(frame, np.complex128), N_FFT) * self._synthesis_window
        out = self._ola + y[:HOP]
        self._ola = y[HOP:].copy()
        return np.zeros(HOP) if self._hops == 1 else out

    def flush(self) -> np.ndarray:
        out, self._ola = self._ola, np.zeros(HOP)
        return out


def stream(x: np.ndarray, step, synthesis: np.ndarray) -> np.ndarray:
    """Enhance a clip frame by frame: `step(features (3, 257)) -> ERB mask (2, 129)` carries the
    network and its states; analysis, features, mask expansion/application and synthesis here."""
    spec = stft(x)
    out = np.empty_like(spec)
    for t in range(len(spec)):
        mask = np.asarray(step(features(spec[t])), np.float32).reshape(2, -1)
        out[t] = apply_mask(spec[t], expand_mask(mask, synthesis))
    return istft(out, len(x))


def stream_hops(x: np.ndarray, step, synthesis: np.ndarray,
                mag_eps: float = MAG_EPS) -> np.ndarray:
    """Enhance a clip as a C runner streams it (`Streamer`): ceil(len / 256) hops of the clip
    (the last zero padded) and one hop of zeros, so that every sample of the clip lies in two
    analysed frames; `step(features (3, 257)) -> ERB mask (2, 129)` carries the network.
    Returns len(x) samples aligned with x (the first output hop, which precedes the input,
    dropped)."""
    x = np.asarray(x, np.float64)
    hops = -(-len(x) // HOP) + 1
    padded = np.zeros(hops * HOP)
    padded[:len(x)] = x
    streamer = Streamer()
    out = []
    for t in range(hops):
        frame = streamer.push(padded[t * HOP:(t + 1) * HOP])
        mask = np.asarray(step(features(frame, mag_eps)), np.float32).reshape(2, -1)
        out.append(streamer.synthesize(apply_mask(frame, expand_mask(mask, synthesis))))
    return np.concatenate(out)[HOP:HOP + len(x)].astype(np.float32)
