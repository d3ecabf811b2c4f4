# SPDX-License-Identifier: Apache-2.0
"""Generate nsn_frontend_tables.c: FFT twiddles, DIT load order and the sqrt-Hann windows.

Each value is computed once in float64 and rounded to float32 here, then written as a C99
hex-float literal, so the host and every ARM build read back identical bits (no libm call
happens at run time). Twiddles use exact symmetries so that values such as exp(-i*pi/2) are
exactly (0, -1), with math.cos/math.sin evaluated only on the first octant.

    python firmware/frontend/gen_tables.py [--output FILE]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import jinja2
import numpy as np

HERE = Path(__file__).resolve().parent
N_FFT = 320
HALF = N_FFT // 2
WIN_LEN = 320
# Must equal the stages of nsn_cfft160_stages in nsn_rfft.c (first stage first).
STAGE_RADIX = (4, 4, 2, 5)


def _cos_turns(k: int) -> float:
    """cos(2*pi*k/320) from the first octant only, so symmetric entries are bit-equal."""
    k %= N_FFT
    if k > HALF:
        k = N_FFT - k
    if k > HALF // 2:
        return -_cos_turns(HALF - k)
    if k > HALF // 4:
        return math.sin(2 * math.pi * (HALF // 2 - k) / N_FFT)
    return math.cos(2 * math.pi * k / N_FFT)


def _sin_turns(k: int) -> float:
    return _cos_turns(HALF // 2 - k)  # sin(t) = cos(pi/2 - t)


def twiddles() -> list[tuple[float, float]]:
    """exp(-2*pi*i*k/320) for k = 0..319."""
    return [(_cos_turns(k), -_sin_turns(k)) for k in range(N_FFT)]


def dit_input_order(n: int = HALF, radices: tuple[int, ...] = STAGE_RADIX) -> list[int]:
    """Index of the input sample that the decimation-in-time FFT reads at each position.

    The last stage combines `radix` sub-transforms stored one after another, the q-th being
    the transform of x[q::radix]; recursing on the earlier stages gives the full order.
    """
    def order(idx: list[int], stages: tuple[int, ...]) -> list[int]:
        if not stages:
            return idx
        radix = stages[-1]
        return [i for q in range(radix) for i in order(idx[q::radix], stages[:-1])]

    assert math.prod(radices) == n
    return order(list(range(n)), radices)


def c_float(value: float) -> str:
    """float32(value) as a C99 hex-float literal, e.g. 0x1.921fb6p+1f."""
    f = float(np.float32(value)) + 0.0  # + 0.0 turns -0.0 into +0.0
    mantissa, exponent = f.hex().split("p")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}p{exponent}f"


def render() -> str:
    window = np.sqrt(np.hanning(WIN_LEN))  # featurelib's window, float64
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    template = env.get_template("nsn_frontend_tables.c.j2")
    return template.render(
        formulas=[
            "nsn_rfft_twiddle[k] = (cos(2 pi k/320), -sin(2 pi k/320)), first octant + symmetry",
            f"nsn_rfft_input_order = decimation-in-time order for radices {STAGE_RADIX}",
            "nsn_frontend_window[n] = numpy.sqrt(numpy.hanning(320))[n]",
            "nsn_frontend_synthesis_window[n] = numpy.sqrt(numpy.hanning(320))[n] / 320",
        ],
        twiddle=[(c_float(re), c_float(im)) for re, im in twiddles()],
        input_order=dit_input_order(),
        window=[c_float(v) for v in window],
        synthesis_window=[c_float(v / N_FFT) for v in window],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=HERE / "nsn_frontend_tables.c")
    args = parser.parse_args()
    args.output.write_text(render())


if __name__ == "__main__":
    main()
