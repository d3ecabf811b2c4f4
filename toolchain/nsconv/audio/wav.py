# SPDX-License-Identifier: Apache-2.0
"""Reading and writing wav files, with one-line errors that name the file and the problem.

Accepted: 16 kHz mono wav, any PCM width (8/16/24/32-bit) or float, converted to float64 in
[-1, 1) by libsndfile. Refused: other sample rates (no silent resampling), more than one
channel, unreadable files, non-finite samples, files shorter than one hop (160 samples).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nsconv.audio import frontend
from nsconv.errors import NsconvError


def read_wav(path: str | Path) -> np.ndarray:
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise NsconvError("no such audio file", path)
    try:
        data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except Exception as exc:  # libsndfile's message says what is wrong with the file
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise NsconvError(f"not a readable wav file ({msg[:160]})", path) from None
    if rate != frontend.SAMPLE_RATE:
        raise NsconvError(f"sample rate is {rate} Hz, nsNet2 needs {frontend.SAMPLE_RATE} Hz "
                          "(resample it first)", path)
    if data.shape[1] != 1:
        raise NsconvError(f"{data.shape[1]} channels, nsNet2 needs mono", path)
    x = data[:, 0]
    if len(x) < frontend.HOP:
        raise NsconvError(f"{len(x)} samples, shorter than one {frontend.HOP}-sample hop", path)
    if not np.all(np.isfinite(x)):
        raise NsconvError("contains NaN or Inf samples", path)
    return x


def write_wav(path: str | Path, x: np.ndarray) -> None:
    """16-bit PCM at 16 kHz; samples beyond full scale are clipped (libsndfile clips)."""
    import soundfile as sf

    sf.write(str(path), np.clip(x, -1.0, 1.0), frontend.SAMPLE_RATE, subtype="PCM_16",
             format="WAV")
