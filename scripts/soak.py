# SPDX-License-Identifier: Apache-2.0
"""Long-run streaming: the generated C under ASan/UBSan against TFLM, every frame.

Real noisy speech (the bundled clips, looped) streams through the generated C of an early-exit
model with the exit switching at random (held 1..200 frames), for --frames frames (360,000 =
one hour), in one process with no reset. The same frames go through the TFLM reference. Every
frame's mask and every state are compared. States that sit at the int8 limits are counted and
reported per layer with the real range its int8 quantization covers: a state pinned at
-128/127 would mean the calibration range is too small, unless that range is the state's own
bound (a GRU state lies in [-1, 1]). The report is written whole by this script: the model
(source file and sha256 from OUT's manifest), the clips, the command line and every count.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def soak_clips() -> list[Path]:
    """The noisy test clips of the checkout and the calibration clips shipped in the package."""
    from nsconv.quant.quantize import calibration_clips

    return sorted((REPO / "tests" / "data").glob("*_noisy.wav")) + list(calibration_clips())


def feature_loop(clips: list[Path], frames: int, scale: float, zero_point: int) -> np.ndarray:
    from nsconv.audio import frontend
    from nsconv.audio.wav import read_wav

    x = np.concatenate([read_wav(p) for p in clips])
    feats = frontend.quantize(frontend.features(frontend.stft(x)), scale, zero_point)
    reps = -(-frames // len(feats))
    return np.tile(feats, (reps, 1))[:frames]


def exit_schedule(frames: int, n_exits: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty(frames, np.uint8)
    t = 0
    while t < frames:
        hold = int(rng.integers(1, 201))
        out[t : t + hold] = rng.integers(0, n_exits)
        t += hold
    return out


def soak(out_dir: Path, frames: int, seed: int = 0, sanitize: bool = True, log=print) -> dict:
    from nsconv.check.tflm_ref import TflmReference
    from nsconv.check.verify import _state_layout
    from nsconv.compiler.codegen import generate
    from nsconv.target import hostbuild

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nsconv-soak-") as tmp:
        work = Path(tmp)
        gen = generate(out_dir, work / "c", command_line="scripts/soak.py")
        merged = gen.merged
        program = hostbuild.build(work / "c", work / "build", sanitize=sanitize)
        e0 = gen.manifest.exits[0]
        clips = soak_clips()
        feats = feature_loop(clips, frames, e0.features.scale, e0.features.zero_point)
        names = [e.name for e in merged.exits]
        exits = exit_schedule(frames, len(names), seed)
        log(f"soak: {frames} frames, {len(names)} exits, C {'with' if sanitize else 'without'} "
            "ASan/UBSan")
        c = hostbuild.run(program, work, feats, exits, tag="soak")
        t_c = time.monotonic() - t0
        log(f"soak: C done in {t_c:.0f} s; TFLM reference")
        ref = TflmReference(out_dir)
        layout = _state_layout(merged)
        mismatched_frames = 0
        first = None
        for t in range(frames):
            mask = ref.step(feats[t], names[exits[t]])
            state = np.concatenate([ref.states[layer] for layer, _, _ in layout])
            if not (np.array_equal(mask, c.masks[t]) and np.array_equal(state, c.states[t])):
                mismatched_frames += 1
                first = t if first is None else first
    saturated = {}
    quant = {st.layer: st for e in gen.manifest.exits for st in e.states}
    for layer, off, size in layout:
        s = c.states[:, off : off + size]
        q = quant[layer].input if layer in quant else None
        saturated[layer] = {"int8_real_range": None if q is None else
                            [round((-128 - q.zero_point) * q.scale, 6),
                             round((127 - q.zero_point) * q.scale, 6)],
                            "values": int(s.size),
                            "at_limit": int(np.count_nonzero((s == 127) | (s == -128))),
                            "frames_with_any": int(np.count_nonzero(
                                np.any((s == 127) | (s == -128), axis=1)))}
    per_exit = {n: int(np.count_nonzero(exits == i)) for i, n in enumerate(names)}
    man = gen.manifest
    return {"model": {"source": Path(man.source_path).name, "sha256": man.source_sha256,
                      "exits": names},
            "audio": [p.name for p in clips], "seed": seed,
            "frames": frames, "hours_of_audio": frames / 100 / 3600, "sanitize": sanitize,
            "exit_frames": per_exit, "switches": int(np.count_nonzero(np.diff(exits))),
            "mismatched_frames": mismatched_frames, "first_mismatch": first,
            "state_saturation": saturated, "seconds": round(time.monotonic() - t0, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path, help="an nsconv output directory (convert/export)")
    ap.add_argument("--frames", type=int, default=360_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-sanitize", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args()
    from nsconv import log

    log.quiet_libraries()
    log.quiet_native_output()  # the result alone on stdout, progress lines on stderr
    res = soak(args.out, args.frames, args.seed, not args.no_sanitize, log=log.info)
    res = {"command": " ".join(["scripts/soak.py"] + sys.argv[1:]), **res}
    text = json.dumps(res, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0 if res["mismatched_frames"] == 0 else 3  # 3: a mismatch, as `nsconv verify`


if __name__ == "__main__":
    sys.exit(main())
