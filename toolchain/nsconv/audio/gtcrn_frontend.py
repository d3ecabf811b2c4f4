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

import numpy as np

N_FFT = 512
HOP = 256
BINS = N_FFT // 2 + 1
MAG_EPS = 1e-12


def window() -> np.ndarray:
    n = np.arange(N_FFT)
    return np.sqrt(0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT))


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


def features(frame: np.ndarray) -> np.ndarray:
    """One complex frame (257,) -> the network input (3, 257): |X|, Re X, Im X (float32)."""
    re = np.real(frame).astype(np.float32)
    im = np.imag(frame).astype(np.float32)
    mag = np.sqrt(re * re + im * im + np.float32(MAG_EPS)).astype(np.float32)
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


def stream(x: np.ndarray, step, synthesis: np.ndarray) -> np.ndarray:
    """Enhance a clip frame by frame: `step(features (3, 257)) -> ERB mask (2, 129)` carries the
    network and its states; analysis, features, mask expansion/application and synthesis here."""
    spec = stft(x)
    out = np.empty_like(spec)
    for t in range(len(spec)):
        mask = np.asarray(step(features(spec[t])), np.float32).reshape(2, -1)
        out[t] = apply_mask(spec[t], expand_mask(mask, synthesis))
    return istft(out, len(x))
