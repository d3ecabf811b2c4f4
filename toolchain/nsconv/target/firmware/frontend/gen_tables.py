# SPDX-License-Identifier: Apache-2.0
"""Generate the front end's size-dependent C: nsn_frontend_config.h and nsn_frontend_tables.c.

For one FrontendSpec (nsconv.audio.spec): the sizes, feature, floors and FFT stage plan
(config header) and the FFT twiddles, DIT load order and windows (tables). Each table value
is computed once in float64 and rounded to float32 here, then written as a C99 hex-float
literal, so the host and every ARM build read back identical bits (no libm call happens at
run time). Twiddles use exact symmetries so that values such as exp(-i*pi/2) are exactly
(0, -1), with math.cos/math.sin evaluated only on the first octant.

`nsconv export --target ...` calls `write(spec, dir)` for the model's front end; the copies
in this directory are the default (DNS NSNet2) front end's, used by the tests:

    python firmware/frontend/gen_tables.py [--frontend KEYS] [--output DIR]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import jinja2
import numpy as np

HERE = Path(__file__).resolve().parent
TABLES = "nsn_frontend_tables.c"
CONFIG = "nsn_frontend_config.h"
GTCRN_TABLES = "nsn_gtcrn_tables.c"
GTCRN_CONFIG = "nsn_gtcrn_config.h"


def _cos_turns(k: int, n: int) -> float:
    """cos(2*pi*k/n); for n a multiple of 8 from the first octant only, so symmetric entries
    are bit-equal."""
    if n % 8:
        return math.cos(2 * math.pi * k / n)
    half = n // 2
    k %= n
    if k > half:
        k = n - k
    if k > half // 2:
        return -_cos_turns(half - k, n)
    if k > half // 4:
        return math.sin(2 * math.pi * (half // 2 - k) / n)
    return math.cos(2 * math.pi * k / n)


def _sin_turns(k: int, n: int) -> float:
    if n % 8:
        return math.sin(2 * math.pi * k / n)
    return _cos_turns(n // 4 - k, n)  # sin(t) = cos(pi/2 - t)


def twiddles(n: int) -> list[tuple[float, float]]:
    """exp(-2*pi*i*k/n) for k = 0..n-1."""
    return [(_cos_turns(k, n), -_sin_turns(k, n)) for k in range(n)]


def dit_input_order(n: int, radices: tuple[int, ...]) -> list[int]:
    """Index of the input sample that the decimation-in-time FFT reads at each position.

    The last stage combines `radix` sub-transforms stored one after another, the q-th being
    the transform of x[q::radix]; recursing on the earlier stages gives the full order.
    Position 0 reads sample 0 (nsn_rfft_inverse_packed relies on it).
    """
    def order(idx: list[int], stages: tuple[int, ...]) -> list[int]:
        if not stages:
            return idx
        radix = stages[-1]
        return [i for q in range(radix) for i in order(idx[q::radix], stages[:-1])]

    assert math.prod(radices) == n
    return order(list(range(n)), radices)


def stage_calls(radices: tuple[int, ...]) -> list[tuple[int, int]]:
    """(radix, sub_len) of each stage, first to last."""
    calls, sub = [], 1
    for r in radices:
        calls.append((r, sub))
        sub *= r
    return calls


def c_float(value: float) -> str:
    """float32(value) as a C99 hex-float literal, e.g. 0x1.921fb6p+1f."""
    f = float(np.float32(value)) + 0.0  # + 0.0 turns -0.0 into +0.0
    mantissa, exponent = f.hex().split("p")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}p{exponent}f"


def _window_formula(spec) -> str:
    base = spec.window.removesuffix("-periodic")
    fn = "numpy.hamming" if base == "hamming" else "numpy.hanning"
    arg = f"{spec.win + 1})[:-1]" if spec.window.endswith("-periodic") else f"{spec.win})"
    w = f"{fn}({arg}"
    return f"numpy.sqrt({w})" if base == "sqrt-hann" else w


def render(spec) -> dict[str, str]:
    """{file name: text} of the two generated files for a FrontendSpec."""
    n = spec.n_fft
    radices = spec.fft_radices()
    window = spec.window_values()  # float64
    env = _env()
    wf = _window_formula(spec)
    tables = env.get_template(TABLES + ".j2").render(
        formulas=[
            f"nsn_rfft_twiddle[k] = (cos(2 pi k/{n}), -sin(2 pi k/{n})), "
            + ("first octant + symmetry" if n % 8 == 0 else "direct"),
            f"nsn_rfft_input_order = decimation-in-time order for radices {radices}",
            f"nsn_frontend_window[n] = {wf}[n]",
            f"nsn_frontend_synthesis_window[n] = {wf}[n] / {n}",
        ],
        twiddle=[(c_float(re), c_float(im)) for re, im in twiddles(n)],
        input_order=dit_input_order(n // 2, radices),
        window=[c_float(v) for v in window],
        synthesis_window=[c_float(v / n) for v in window],
    )
    config = env.get_template(CONFIG + ".j2").render(
        spec=spec,
        describe=spec.describe(),
        json=spec.to_json(),
        radices=radices,
        stages=stage_calls(radices),
        index_type="uint8_t" if n // 2 <= 256 else "uint16_t",
        min_power=c_float(spec.floor),
        min_gain=c_float(spec.mask_min),
        max_gain=c_float(spec.mask_max),
    )
    return {TABLES: tables, CONFIG: config}


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def erb_columns(synthesis: np.ndarray) -> tuple[list[int], list[int], list[float]]:
    """The band matrix (bands, high) by columns without its zeros: (start[high + 1], band[nnz],
    weight[nnz]), bands increasing within a column."""
    start, band, weight = [0], [], []
    for j in range(synthesis.shape[1]):
        rows = np.nonzero(synthesis[:, j])[0]
        band += [int(b) for b in rows]
        weight += [float(synthesis[b, j]) for b in rows]
        start.append(len(band))
    return start, band, weight


def render_gtcrn(fe, source: str = "the model") -> dict[str, str]:
    """{file name: text} of GTCRN's front end for a GtcrnFrontendSpec (audio/gtcrn_frontend.py):
    the STFT's two files (`render(fe.stft)`) and nsn_gtcrn_config.h, nsn_gtcrn_tables.c."""
    st = fe.stft
    n, hop = st.n_fft, st.hop
    w = st.window_values()  # float64
    norm = w * w + np.roll(w * w, hop)  # hop = n / 2: the steady-state summed squared window
    start, band, weight = erb_columns(fe.synthesis)
    env = _env()
    tables = env.get_template(GTCRN_TABLES + ".j2").render(
        formulas=[
            f"nsn_gtcrn_synthesis_window[n] = w[n] / ({n} (w[n]^2 + w[(n + {hop}) mod {n}]^2)),"
            f" w = {_window_formula(st)}",
            f"nsn_gtcrn_erb_* = the non-zero entries of the {fe.bands} x {fe.synthesis.shape[1]}"
            f" ERB synthesis band matrix of {source}, by columns",
        ],
        synthesis_window=[c_float(v) for v in w / (n * norm)],
        erb_start=start, erb_band=band, erb_weight=[c_float(v) for v in weight],
    )
    config = env.get_template(GTCRN_CONFIG + ".j2").render(
        describe=st.describe(), source=source, bins=st.n_bins, low=fe.low, bands=fe.bands,
        high=fe.synthesis.shape[1], nnz=len(band), mag_eps=fe.mag_eps,
        mag_eps_c=c_float(fe.mag_eps), band_type="uint8_t" if fe.bands <= 256 else "uint16_t",
        start_type="uint16_t" if len(band) < 65536 else "uint32_t",
    )
    return {**render(st), GTCRN_TABLES: tables, GTCRN_CONFIG: config}


def _write(files: dict[str, str], directory: Path) -> list[Path]:
    paths = []
    for name, text in files.items():
        path = Path(directory) / name
        path.write_text(text)
        paths.append(path)
    return paths


def write(spec, directory: Path) -> list[Path]:
    return _write(render(spec), directory)


def write_gtcrn(fe, directory: Path, source: str = "the model") -> list[Path]:
    return _write(render_gtcrn(fe, source), directory)


def main() -> None:
    try:
        from nsconv.audio.spec import DEFAULT, FrontendSpec
    except ImportError:  # run from a checkout without PYTHONPATH
        sys.path.insert(0, str(HERE.parents[3]))
        from nsconv.audio.spec import DEFAULT, FrontendSpec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frontend", default=None, help="key=value,... (default: DNS NSNet2)")
    parser.add_argument("--output", type=Path, default=HERE, help="directory to write into")
    args = parser.parse_args()
    spec = FrontendSpec.parse(args.frontend) if args.frontend else DEFAULT
    write(spec, args.output)


if __name__ == "__main__":
    main()
