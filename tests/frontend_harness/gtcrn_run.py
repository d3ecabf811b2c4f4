# SPDX-License-Identifier: Apache-2.0
"""Build and run the GTCRN front-end harness (gtcrn_harness.c) for tests/test_gtcrn_frontend_c.py
and scripts/gtcrn_frontend_cost.py: the generated project, the fixed mask pattern that stands in
for the network, and the per-stage cost the harness prints."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
from frontend_harness import fwbuild
from nsconv.audio import gtcrn_frontend as fe
from nsconv.audio.wav import read_wav
from nsconv.target.firmware import GTCRN_FRONTEND_SRCS, write_gtcrn_frontend

# run: (clip, input bits, mask bits, input (scale, zero point), mask (scale, zero point)).
# int8: a feature scale that spans the loudest bins of the clip; TFLite's fixed TANH output
# quantisation for the mask. mixed: as gtcrn-graph's mixed core, symmetric int16 features and
# the int8 TANH mask.
RUNS = {
    "int8": ("0072_noisy.wav", 8, 8, (np.float32(0.25), -10), (np.float32(1 / 128), 0)),
    "mixed": ("p232_043_noisy.wav", 16, 8, (np.float32(2.0**-9), 0), (np.float32(1 / 128), 0)),
}
STREAM_OUTPUTS = ("feat.f32", "featq.bin", "out.f32", "out.s16")
STAGES = ("analyze", "quantize", "dequantize", "synthesize")


def float_bits(value) -> str:
    """A float32 as the hex bit pattern the harness reads."""
    return f"0x{int(np.float32(value).view(np.uint32)):08x}"


def quantize(x: np.ndarray, scale, zero_point: int, bits: int) -> np.ndarray:
    """TFLite QUANTIZE: float32 division, round half away from zero (exactly, on the float32
    quotient), saturation to int8 or int16."""
    scaled = np.asarray(x, np.float32) / np.float32(scale)
    whole = np.trunc(scaled)
    rounded = whole + np.sign(scaled) * (np.abs(scaled - whole) >= np.float32(0.5))
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return np.clip(rounded + zero_point, lo, hi).astype(np.int8 if bits == 8 else np.int16)


def dequantize(q: np.ndarray, scale, zero_point: int) -> np.ndarray:
    return (q.astype(np.int32) - zero_point).astype(np.float32) * np.float32(scale)


def project(spec: fe.GtcrnFrontendSpec, directory: Path, source: str) -> Path:
    """The front-end sources with the files generated for GTCRN's front end."""
    d = directory / "frontend"
    d.mkdir(parents=True)
    for p in (fwbuild.FIRMWARE / "frontend").glob("*.[ch]"):
        shutil.copyfile(p, d / p.name)
    write_gtcrn_frontend(spec, d, source)
    return d


def build(proj: Path, target: str, out: Path, sanitize: bool = False, extra: str = "") -> Path:
    srcs = tuple(proj / f for f in GTCRN_FRONTEND_SRCS)
    return fwbuild.build(target, out, "gtcrn_harness",
                         srcs + (fwbuild.HARNESS_DIR / "gtcrn_harness.c",), includes=(proj,),
                         extra_cflags=fwbuild.make_variable("NSN_GTCRN_FRONTEND_CFLAGS", target)
                         + extra, sanitize=sanitize)


def mask_pattern(hops: int, bits: int, out_q, seed: int) -> np.ndarray:
    """A varied fixed mask in place of the network: smooth tanh-bounded real and imaginary
    parts over the 129 bands, noise, and whole frames at both ends of the integer range."""
    rng = np.random.default_rng(seed)
    t = np.arange(hops)[:, None]
    b = np.arange(fe.BINS // 2 + 1)[None, :]
    re_ = np.tanh(1.5 * np.sin(0.07 * t + 0.05 * b) + 0.5) + rng.normal(0, 0.05, (hops, b.size))
    im = 0.4 * np.tanh(np.cos(0.11 * t - 0.03 * b)) + rng.normal(0, 0.05, (hops, b.size))
    q = quantize(np.clip(np.concatenate([re_, im], axis=1), -1, 1), *out_q, bits)
    info = np.iinfo(q.dtype)
    q[3], q[4] = info.min, info.max
    return q


def inputs(run: str, clip: Path, d: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Writes in.s16 and mask.bin for a run into d; returns the harness arguments, the
    samples and the mask."""
    _, in_bits, out_bits, in_q, out_q = RUNS[run]
    x = read_wav(clip)
    np.round(x * 32768).astype(np.int16).tofile(d / "in.s16")
    hops = -(-len(x) // fe.HOP)
    mask = mask_pattern(hops, out_bits, out_q, seed=in_bits)
    mask.tofile(d / "mask.bin")
    return stream_args(in_bits, in_q, out_bits, out_q), x, mask


def stream_args(in_bits: int, in_q, out_bits: int, out_q) -> list[str]:
    """The harness's stream command for in.s16 and mask.bin with these quantisations."""
    return ["stream", "in.s16", "mask.bin", str(in_bits), float_bits(in_q[0]), str(in_q[1]),
            str(out_bits), float_bits(out_q[0]), str(out_q[1])]


def costs(stdout: str) -> dict[str, int]:
    """{stage: instructions per hop} from the harness output (all four stages, or ValueError)."""
    found = {k: int(v) for k, v in re.findall(r"(\w+) per hop: (\d+) instructions", stdout)}
    if set(found) != set(STAGES):
        raise ValueError(f"harness printed no cost for {sorted(set(STAGES) - set(found))}")
    return {k: found[k] for k in STAGES}
