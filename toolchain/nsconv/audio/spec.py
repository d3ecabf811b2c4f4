# SPDX-License-Identifier: Apache-2.0
"""FrontendSpec: the STFT front end a model was trained with, stored with the model.

One frozen value describes the whole front end (the numpy streamer in `audio/frontend.py`,
the generated C front end and the firmware follow it):

  key        default     meaning
  rate       16000       sample rate in Hz: 8000, 16000 or 48000
  win        320         window (frame) length in samples
  hop        160         hop in samples (1 <= hop < win)
  n_fft      320         FFT size (>= win, even, n_fft / 2 = 2^a 3^b 5^c); bins = n_fft/2 + 1
  window     sqrt-hann   sqrt-hann | sqrt-hann-periodic | hann | hann-periodic | hamming |
                         hamming-periodic (plain names are numpy's symmetric windows); the
                         same window is used for analysis and overlap-add synthesis
  feature    log10       log10 | ln of max(|X|^2, floor)
  floor      1e-12       power floor of the feature
  mask_min   1e-4        the mask (gain) is clipped to [mask_min, mask_max]
  mask_max   1.0
  drop_first true        drop the first frame (win - hop zeros + the first hop), as featurelib

The defaults are the DNS NSNet2 baseline's featurelib front end (16 kHz, 20 ms sqrt-Hann,
10 ms hop, 161 bins). Written as `key=value,key=value` (`parse`), as a JSON object of the
same keys (`from_json`, a file via `load`), and in ONNX metadata_props under the key
`nsconv.frontend` holding that JSON (`from_onnx`). Unknown keys and bad values are refused
with one line naming the key.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from nsconv.errors import NsconvError

ONNX_METADATA_KEY = "nsconv.frontend"
RATES = (8000, 16000, 48000)
WINDOWS = ("sqrt-hann", "sqrt-hann-periodic", "hann", "hann-periodic", "hamming",
           "hamming-periodic")
FEATURES = ("log10", "ln")
RADICES = (2, 3, 5)


@dataclass(frozen=True)
class FrontendSpec:
    rate: int = 16000
    win: int = 320
    hop: int = 160
    n_fft: int = 320
    window: str = "sqrt-hann"
    feature: str = "log10"
    floor: float = 1e-12
    mask_min: float = 1e-4
    mask_max: float = 1.0
    drop_first: bool = True

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem:
            raise NsconvError(f"front end: {problem}")

    # ---- derived -------------------------------------------------------------------------
    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def tail(self) -> int:
        """Samples of the overlap-add tail left after the last frame (win - hop)."""
        return self.win - self.hop

    @property
    def is_default(self) -> bool:
        return self == DEFAULT

    def window_values(self) -> np.ndarray:
        """The analysis (and synthesis) window, float64, length win."""
        name = self.window
        periodic = name.endswith("-periodic")
        base = name.removesuffix("-periodic")
        n = self.win
        make = np.hamming if base == "hamming" else np.hanning
        w = make(n + 1)[:-1] if periodic else make(n)
        return np.sqrt(w) if base == "sqrt-hann" else w

    def fft_radices(self) -> tuple[int, ...]:
        """Stages of the n_fft/2-point complex FFT, first to last: 4s, a 2, 3s, then 5s."""
        return fft_plan(self.n_fft // 2)

    def describe(self) -> str:
        return (f"{self.rate} Hz, {self.window} window {self.win}, hop {self.hop}, "
                f"FFT {self.n_fft} ({self.n_bins} bins), {self.feature} power")

    # ---- checks --------------------------------------------------------------------------
    def problem(self) -> str | None:
        """The first thing wrong with this spec, or None."""
        if not all(isinstance(getattr(self, k), int) and not isinstance(getattr(self, k), bool)
                   for k in ("rate", "win", "hop", "n_fft")):
            return "rate, win, hop and n_fft must be integers"
        if self.rate not in RATES:
            return f"rate {self.rate} is not supported (one of {', '.join(map(str, RATES))})"
        if self.win < 2:
            return f"win {self.win} is too short (at least 2 samples)"
        if not 1 <= self.hop < self.win:
            return f"hop {self.hop} must be at least 1 and less than win {self.win}"
        if self.n_fft < self.win:
            return f"n_fft {self.n_fft} is shorter than win {self.win}"
        if self.n_fft % 2 or fft_plan(self.n_fft // 2) is None:
            return (f"n_fft {self.n_fft} is not supported (the C FFT needs an even size whose "
                    "half is 2^a 3^b 5^c, e.g. 256, 320, 512, 960, 1024)")
        if not 16 <= self.n_fft <= 4096:
            return f"n_fft {self.n_fft} is outside 16 .. 4096"
        if self.window not in WINDOWS:
            return f"window {self.window!r} is not one of {', '.join(WINDOWS)}"
        if self.feature not in FEATURES:
            return f"feature {self.feature!r} is not one of {', '.join(FEATURES)}"
        for key in ("floor", "mask_min", "mask_max"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                return f"{key} must be a finite number"
        if not 1e-30 <= self.floor <= 1.0:
            return f"floor {self.floor} must be in [1e-30, 1]"
        if not 0.0 < self.mask_min < self.mask_max <= 1.0:
            return f"need 0 < mask_min ({self.mask_min}) < mask_max ({self.mask_max}) <= 1"
        if not isinstance(self.drop_first, bool):
            return "drop_first must be true or false"
        return None

    def check_features(self, bins: int, source: str | Path | None = None) -> None:
        """Refuses a model taking `bins` features per frame if this front end gives others."""
        if bins != self.n_bins:
            raise NsconvError(f"model takes {bins} features per frame; its front end "
                              f"({self.describe()}) gives {self.n_bins} (n_fft/2 + 1 bins; "
                              "give the model's front end with --frontend)", source)

    # ---- serialisation -------------------------------------------------------------------
    def to_json(self) -> dict:
        """The keys above (the derived n_bins included, ignored when read back)."""
        return {**asdict(self), "n_bins": self.n_bins}

    @staticmethod
    def from_json(d, source: str | Path | None = None) -> FrontendSpec:
        if not isinstance(d, dict):
            raise NsconvError("front end: expected a JSON object of front-end keys", source)
        d = {k: v for k, v in d.items() if k != "n_bins"}
        return _build(d, source, from_text=False)

    @staticmethod
    def parse(text: str) -> FrontendSpec:
        """`key=value,key=value` (any subset; the rest default), or the path of a JSON file."""
        text = text.strip()
        if text.startswith("{"):
            return FrontendSpec.from_json(_json(text, None))
        if text and "=" not in text:
            return FrontendSpec.load(Path(text))
        values = {}
        for item in filter(None, (s.strip() for s in text.split(","))):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise NsconvError(f"front end: {item!r} is not key=value")
            values[key.strip()] = value.strip()
        return _build(values, None, from_text=True)

    @staticmethod
    def load(path: Path) -> FrontendSpec:
        if not path.is_file():
            raise NsconvError("no such front-end file (or give key=value pairs)", path)
        return FrontendSpec.from_json(_json(path.read_text(), path), path)

    @staticmethod
    def from_onnx(path: Path) -> FrontendSpec | None:
        """The spec in the ONNX file's metadata_props[nsconv.frontend], or None."""
        import onnx

        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception:  # the importer reports unreadable files with its own message
            return None
        for prop in model.metadata_props:
            if prop.key == ONNX_METADATA_KEY:
                return FrontendSpec.from_json(_json(prop.value, path), path)
        return None


def fft_plan(half: int) -> tuple[int, ...] | None:
    """Radices of a `half`-point complex FFT (4s, one 2 if needed, 3s, 5s), None if not 2^a 3^b 5^c."""
    if half < 1:
        return None
    counts = {}
    rest = half
    for r in RADICES:
        counts[r] = 0
        while rest % r == 0:
            rest //= r
            counts[r] += 1
    if rest != 1:
        return None
    twos = counts[2]
    return (4,) * (twos // 2) + (2,) * (twos % 2) + (3,) * counts[3] + (5,) * counts[5]


def _json(text: str, source) -> object:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise NsconvError(f"front end: not valid JSON ({exc})", source) from None


_TYPES = {f.name: f.type for f in fields(FrontendSpec)}


def _build(values: dict, source, from_text: bool) -> FrontendSpec:
    kwargs = {}
    for key, value in values.items():
        if key not in _TYPES:
            raise NsconvError(f"front end: unknown key {key!r} (keys: {', '.join(_TYPES)})",
                              source)
        kwargs[key] = _coerce(key, value, from_text, source)
    try:
        return FrontendSpec(**kwargs)
    except NsconvError as exc:
        raise NsconvError(exc.problem, source) from None


def _coerce(key: str, value, from_text: bool, source):
    kind = _TYPES[key]
    bad = NsconvError(f"front end: {key}={value!r} is not a valid {kind}", source)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if from_text and str(value).lower() in ("true", "1", "yes", "false", "0", "no"):
            return str(value).lower() in ("true", "1", "yes")
        raise bad
    if kind == "str":
        if not isinstance(value, str):
            raise bad
        return value.strip().lower()
    if kind == "int":
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if from_text and str(value).strip().lstrip("-").isdigit():
            return int(value)
        raise bad
    if isinstance(value, bool):
        raise bad
    if isinstance(value, (int, float)):
        return float(value)
    if from_text:
        try:
            return float(value)
        except ValueError:
            raise bad from None
    raise bad


DEFAULT = FrontendSpec()
