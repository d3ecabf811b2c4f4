# SPDX-License-Identifier: Apache-2.0
"""Reading and writing wav files, with one-line errors that name the file and the problem.

Accepted: mono wav at the front end's rate (16 kHz by default), any PCM width
(8/16/24/32-bit) or float, converted to float64 in [-1, 1) by libsndfile. Refused: other
sample rates (no silent resampling; read_wav_resampled is the explicit one), more than one
channel, unreadable files, non-finite samples, files shorter than one hop (160 by default).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nsconv.audio.spec import DEFAULT, FrontendSpec
from nsconv.errors import NsconvError


def read_wav(path: str | Path, spec: FrontendSpec = DEFAULT) -> np.ndarray:
    """Samples of a mono wav at the front end's rate (other rates are refused)."""
    x, rate = _read(Path(path), spec.hop)
    if rate != spec.rate:
        raise NsconvError(f"sample rate is {rate} Hz, the model's front end needs {spec.rate} "
                          "Hz (resample it first)", path)
    return x


def read_wav_resampled(path: str | Path, rate: int) -> np.ndarray:
    """A mono wav of any rate, resampled to `rate` for calibration and test audio.

    Method: scipy.signal.resample_poly(x, rate / g, file_rate / g), g = gcd, i.e. polyphase
    filtering with scipy's default Kaiser window (beta 5.0) anti-aliasing filter.
    """
    x, file_rate = read_wav_any_rate(path)
    return resample(x, file_rate, rate)


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """x at rate_in -> rate_out with scipy.signal.resample_poly (x itself when equal)."""
    if rate_in == rate_out:
        return x
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate_in, rate_out)
    return resample_poly(x, rate_out // g, rate_in // g)


def read_wav_any_rate(path: str | Path) -> tuple[np.ndarray, int]:
    """(samples, rate) of a mono wav, with the checks of read_wav except the rate."""
    return _read(Path(path), 1)


def _read(path: Path, min_samples: int) -> tuple[np.ndarray, int]:
    import soundfile as sf

    if not path.is_file():
        raise NsconvError("no such audio file", path)
    try:
        data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except Exception as exc:  # libsndfile's message says what is wrong with the file
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise NsconvError(f"not a readable wav file ({msg[:160]})", path) from None
    if data.shape[1] != 1:
        raise NsconvError(f"{data.shape[1]} channels, nsNet2 needs mono", path)
    x = data[:, 0]
    if len(x) < min_samples:
        raise NsconvError(f"{len(x)} samples, shorter than one {min_samples}-sample hop", path)
    if not np.all(np.isfinite(x)):
        raise NsconvError("contains NaN or Inf samples", path)
    return x, int(rate)


def write_wav(path: str | Path, x: np.ndarray, rate: int = DEFAULT.rate) -> None:
    """16-bit PCM at `rate` (16 kHz by default); samples beyond full scale are clipped."""
    import soundfile as sf

    sf.write(str(path), np.clip(x, -1.0, 1.0), rate, subtype="PCM_16",
             format="WAV")
