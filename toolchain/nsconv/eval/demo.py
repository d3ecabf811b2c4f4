# SPDX-License-Identifier: Apache-2.0
"""`make demo`'s table (python -m nsconv.eval.demo OUT DATA_DIR): per exit, MACs/frame,
int8 model bytes, PESQ-wb float vs int8 (TFLM)."""

from __future__ import annotations

import sys
from pathlib import Path

from nsconv.audio.wav import read_wav
from nsconv.check.engine import Enhancer
from nsconv.quant.manifest import Manifest

PAIRS = ("0072", "0398", "0523")


def pesq_wb(clean, x) -> float:
    from pesq import pesq

    n = min(len(clean), len(x))
    return float(pesq(16000, clean[:n], x[:n], "wb"))


def main(out: str, data: str) -> None:
    m = Manifest.load(Path(out))
    data_dir = Path(data)
    clips = [(read_wav(data_dir / f"{p}_clean.wav"), read_wav(data_dir / f"{p}_noisy.wav")) for p in PAIRS]
    noisy = sum(pesq_wb(c, n) for c, n in clips) / len(clips)
    print(f"\nPESQ-wb, mean over {len(clips)} real DNS Challenge clips; noisy input: {noisy:.3f}")
    print(f"{'exit':<8} {'MACs/frame':>12} {'int8 bytes':>11} {'PESQ float':>11} {'PESQ int8':>10}")
    for e in m.exits:
        scores = []
        for engine in ("float", "tflm"):
            enh = Enhancer(out, e.name, engine)
            scores.append(sum(pesq_wb(c, enh.enhance(n)) for c, n in clips) / len(clips))
        print(f"{e.name:<8} {e.macs_per_frame:>12,} {e.tflite_bytes:>11,} {scores[0]:>11.3f} "
              f"{scores[1]:>10.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
