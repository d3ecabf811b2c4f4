# SPDX-License-Identifier: Apache-2.0
"""`nsconv verify`: the generated C against TensorFlow Lite Micro, bit for bit (stage "verify").

Real audio goes through the numpy front end, is quantized with the network input's scale and
zero point, and streams frame by frame, with state feedback, through
  * the generated C, built for the host with gcc (optionally under ASan/UBSan), and
  * the TFLM Python interpreter, one interpreter per exit (nsconv.tflm_ref), states carried
    under the same state rule.
Every frame's mask and every state after every frame must be equal (zero tolerance). Each
recording starts from reset states. Exit schedules: `fixed` runs every exit over all frames
(one stream per exit); `random` picks a random exit per frame (seeded), which also exercises
the states of GRUs that a frame skips.

An instrumented build (-DNSN_COUNT_MACS -DNSN_DEBUG_TENSORS) runs the same streams: its MACs
per frame must equal the analytic count of the frame's exit (FULLY_CONNECTED in * out, from the
exit's own model). On a mismatch, the stream is replayed up to the first bad frame on both
sides with every intermediate kept (TFLM kPreserveAllTensors, the C debug dump), and the first
op of that exit's model whose output differs is named.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from nsconv.audio import frontend
from nsconv.audio.spec import DEFAULT as DEFAULT_FRONTEND
from nsconv.audio.spec import FrontendSpec
from nsconv.audio.wav import read_wav, read_wav_resampled
from nsconv.compiler.codegen import CodegenResult, generate
from nsconv.compiler.graph_merge import MergedGraph
from nsconv.errors import NsconvError
from nsconv.quant.manifest import Manifest
from nsconv.target import hostbuild

SCHEDULES = ("fixed", "random")
DEFAULT_FRAMES = 500


@dataclass(frozen=True)
class ExitReport:
    name: str
    frames: int
    mismatches: int  # frames whose mask or states differ
    mismatched_values: int  # int8 values that differ, masks and states
    macs_per_frame: int  # analytic, from the exit's own model
    macs_counted: int  # instrumented build, per frame (the largest seen if it varied)
    macs_agree: bool
    manifest_macs: int | None
    weight_bytes: int  # constants the exit reads
    weight_bytes_own: int  # ... read by this exit only
    weight_bytes_shared: int  # ... also read by another exit
    ops: int  # merged ops the exit runs


@dataclass(frozen=True)
class Mismatch:
    exit: str
    frame: int  # position in the stream
    kind: str  # "mask", "state" or "intermediate"
    op_index: int | None  # op index in the exit's TFLite model
    merged_op: int | None
    op_type: str | None
    tensor: str | None
    tensor_index: int | None
    differing: int  # elements that differ in that tensor
    first_element: int | None
    c_value: int | None
    tflm_value: int | None
    note: str = ""

    def describe(self) -> str:
        if self.op_index is None:
            return f"exit {self.exit}, frame {self.frame}: {self.kind} differs ({self.note})"
        return (f"exit {self.exit}, frame {self.frame}: first difference at {self.exit}.tflite "
                f"op {self.op_index} ({self.op_type}), tensor {self.tensor_index} "
                f"{self.tensor!r}: {self.differing} element(s) differ, first [{self.first_element}]"
                f" C {self.c_value} vs TFLM {self.tflm_value}"
                + (f" ({self.note})" if self.note else ""))


@dataclass(frozen=True)
class VerifyReport:
    bit_exact: bool
    macs_agree: bool
    frames: int  # frames per stream
    schedule: str
    sanitize: bool
    audio: tuple[str, ...]
    exits: tuple[ExitReport, ...]
    arena_bytes: int
    state_bytes: int
    scratch_bytes: int
    weight_bytes: int  # emitted (shared constants once)
    weight_bytes_separate: int  # summed over the exits' models
    ops_merged: int
    ops_separate: int
    unshared: tuple[str, ...]
    c_matches_export: bool | None  # OUT/c equals the verified code (None: no OUT/c)
    first_mismatch: Mismatch | None
    seconds: float
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.bit_exact and self.macs_agree and self.c_matches_export is not False

    def to_json(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        return d

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)

    def table(self) -> str:
        head = (f"{'exit':<10} {'frames':>7} {'mismatch':>8} {'MACs/frame':>11} "
                f"{'counted':>11} {'weights':>10} {'own':>9} {'shared':>9}")
        lines = [head, "-" * len(head)]
        for e in self.exits:
            lines.append(f"{e.name:<10} {e.frames:>7} {e.mismatches:>8} {e.macs_per_frame:>11,} "
                         f"{e.macs_counted:>11,} {e.weight_bytes:>10,} {e.weight_bytes_own:>9,} "
                         f"{e.weight_bytes_shared:>9,}")
        lines.append("")
        lines.append(f"bit-exact: {'yes' if self.bit_exact else 'NO'}   MAC counts agree: "
                     f"{'yes' if self.macs_agree else 'NO'}   schedule {self.schedule}, "
                     f"{self.frames} frames per stream"
                     + (", ASan/UBSan" if self.sanitize else ""))
        lines.append(f"memory: arena {self.arena_bytes:,} B, states {self.state_bytes:,} B, "
                     f"scratch {self.scratch_bytes:,} B; constants {self.weight_bytes:,} B "
                     f"(separate exits: {self.weight_bytes_separate:,} B); ops "
                     f"{self.ops_merged} merged (separate: {self.ops_separate})")
        if self.c_matches_export is False:
            lines.append("OUT/c differs from the code generated now: re-export it")
        for u in self.unshared:
            lines.append(f"not shared: {u}")
        if self.first_mismatch is not None:
            lines.append("FIRST MISMATCH: " + self.first_mismatch.describe())
        for n in self.notes:
            lines.append(n)
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def default_audio() -> list[Path]:
    """The real noisy recordings bundled with nsconv."""
    from nsconv.quant.quantize import calibration_clips

    return calibration_clips()


def feature_streams(audio: list[Path], scale: float, zero_point: int,
                    frames: int | None, fe: FrontendSpec = DEFAULT_FRONTEND,
                    resample: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Quantized feature frames of the recordings in order, up to `frames` in all, and a reset
    flag at the first frame of each recording, in the model's front end `fe`. Recordings at
    another rate are refused, or resampled to it with `resample` (the bundled clips)."""
    feats, resets, used = [], [], []
    total = 0
    for p in audio:
        if frames is not None and total >= frames:
            break
        x = read_wav_resampled(p, fe.rate) if resample else read_wav(p, fe)
        x = frontend.features(frontend.stft(x, fe), fe)
        q = frontend.quantize(x, scale, zero_point)
        if frames is not None:
            q = q[: frames - total]
        r = np.zeros(len(q), dtype=bool)
        r[0] = True
        feats.append(q)
        resets.append(r)
        used.append(Path(p).name)
        total += len(q)
    if not feats:
        raise NsconvError("no audio frames to verify with")
    return np.concatenate(feats), np.concatenate(resets), used


@dataclass(frozen=True)
class _Stream:
    features: np.ndarray  # int8 (n, bins)
    exits: np.ndarray  # exit index per frame
    resets: np.ndarray  # bool per frame


def _schedule(feats: np.ndarray, resets: np.ndarray, n_exits: int, schedule: str,
              seed: int) -> _Stream:
    if schedule == "fixed":
        f = np.concatenate([feats] * n_exits)
        e = np.repeat(np.arange(n_exits), len(feats))
        r = np.concatenate([resets] * n_exits)
        return _Stream(f, e, r)
    if schedule == "random":
        rng = np.random.default_rng(seed)
        return _Stream(feats, rng.integers(0, n_exits, len(feats)), resets)
    raise NsconvError(f"unknown exit schedule {schedule!r} (choose from {', '.join(SCHEDULES)})")


def _state_layout(merged: MergedGraph) -> list[tuple[str, int, int]]:
    """(layer, offset, size) of each state in the runner's state bytes (NSN_STATE_LIST)."""
    out, off = [], 0
    for s in merged.states:
        out.append((s.layer, off, s.size))
        off += s.size
    return out


def _reference_run(root: Path, merged: MergedGraph, stream: _Stream,
                   preserve_all: bool = False, stop: int | None = None):
    """TFLM masks and states per frame (up to and including frame `stop`)."""
    from nsconv.check.tflm_ref import TflmReference

    ref = TflmReference(root, preserve_all=preserve_all)
    names = [e.name for e in merged.exits]
    layout = _state_layout(merged)
    n = len(stream.features) if stop is None else stop + 1
    sbytes = sum(s for _, _, s in layout)
    states = np.empty((n, sbytes), dtype=np.int8)
    bins = merged.values[merged.exits[0].mask].size
    masks = np.empty((n, bins), dtype=np.int8)
    for t in range(n):
        if stream.resets[t]:
            ref.reset()
        masks[t] = ref.step(stream.features[t], names[stream.exits[t]])
        for layer, off, size in layout:
            states[t, off : off + size] = np.asarray(ref.states[layer]).reshape(-1)
    return ref, masks, states


def _localize(root: Path, gen: CodegenResult, program: hostbuild.HostProgram, work: Path,
              stream: _Stream, frame: int, what: str) -> Mismatch:
    merged = gen.merged
    k = int(stream.exits[frame])
    ex = merged.exits[k]
    sub = _Stream(stream.features[: frame + 1], stream.exits[: frame + 1],
                  stream.resets[: frame + 1])
    run = hostbuild.run(program, work, sub.features, sub.exits, sub.resets, dump_frame=frame,
                        tag="localize")
    ref, _, _ = _reference_run(root, merged, sub, preserve_all=True)
    tflm = ref.exits[ex.name]
    graph_ops = _exit_ops(gen, k)
    for op_index, op_type, outputs in graph_ops:
        for t_index, t_name in outputs:
            v = ex.value_of(t_index)
            c_data = run.tensors.get(v)
            ref_data = np.asarray(tflm.tensor(t_index)).reshape(-1).astype(np.int8)
            if c_data is None:
                return Mismatch(ex.name, frame, "intermediate", op_index, None, op_type, t_name,
                                t_index, 0, None, None, None,
                                "the C debug dump lacks this tensor")
            if not np.array_equal(c_data, ref_data):
                diff = np.flatnonzero(c_data != ref_data)
                merged_op = next(op.id for op in merged.ops if v in op.outputs)
                return Mismatch(ex.name, frame, "intermediate", op_index, merged_op, op_type,
                                t_name, t_index, int(diff.size), int(diff[0]),
                                int(c_data[diff[0]]), int(ref_data[diff[0]]))
    return Mismatch(ex.name, frame, what, None, None, None, None, None, 0, None, None, None,
                    "every intermediate of the frame agrees: the difference is in the state "
                    "write-back or the mask copy")


def _exit_ops(gen: CodegenResult, k: int) -> list[tuple[int, str, list[tuple[int, str]]]]:
    """(op index, op type, [(output tensor index, name)]) of exit k's own model, in order."""
    from nsconv.compiler.tflite_ir import read_tflite

    ex = gen.merged.exits[k]
    g = read_tflite(ex.path)
    return [(op.index, op.kind.value, [(o, g.tensors[o].name) for o in op.outputs])
            for op in g.ops]


def verify(out_dir: Path, frames: int | None = DEFAULT_FRAMES, audio: list[Path] | None = None,
           schedule: str = "fixed", sanitize: bool = False, seed: int = 0,
           work_dir: Path | None = None, log=None) -> VerifyReport:
    """Verify the C generated for `out_dir` against TFLM; see the module docstring.

    frames: frames per stream (None: all frames of the audio); audio: wav files (default: the
    bundled clips); schedule: "fixed" or "random"; sanitize: build with ASan/UBSan. The code is
    generated afresh into a work directory; if OUT/c exists, the report says whether it is
    the same code (`c_matches_export`)."""
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="nsconv-verify-") as tmp:
        work = Path(work_dir) if work_dir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        c_dir = work / "c"
        gen = generate(out_dir, c_dir, command_line="nsconv verify (temporary copy)")
        c_matches = None
        export = out_dir / "c"
        if (export / "nsn_model.c").exists():
            c_matches = all((export / f.name).is_file() and _same_code(export / f.name, f)
                            for f in gen.files)
        return verify_code(out_dir, gen, c_dir, frames=frames, audio=audio, schedule=schedule,
                           sanitize=sanitize, seed=seed, work_dir=work, log=log,
                           c_matches_export=c_matches)


def verify_code(out_dir: Path, gen: CodegenResult, c_dir: Path,
                frames: int | None = DEFAULT_FRAMES, audio: list[Path] | None = None,
                schedule: str = "fixed", sanitize: bool = False, seed: int = 0,
                work_dir: Path | None = None, log=None,
                c_matches_export: bool | None = None) -> VerifyReport:
    """Verify the C sources in c_dir (generated as `gen` for out_dir) against TFLM."""
    t0 = time.monotonic()
    out_dir = Path(out_dir)
    if schedule not in SCHEDULES:
        raise NsconvError(f"unknown exit schedule {schedule!r} (choose from "
                          f"{', '.join(SCHEDULES)})")
    if frames is not None and frames < 1:
        raise NsconvError(f"--frames must be at least 1, got {frames}")
    bundled = not audio
    audio = list(audio) if audio else default_audio()
    fe = Manifest.load(out_dir).frontend
    say = log or (lambda msg: None)
    merged = gen.merged
    with tempfile.TemporaryDirectory(prefix="nsconv-verify-") as tmp:
        work = Path(work_dir) if work_dir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        feat0 = merged.values[merged.exits[0].features]
        feats, resets, used = feature_streams(audio, feat0.quant.scale, feat0.quant.zero_point,
                                              frames, fe, resample=bundled)
        stream = _schedule(feats, resets, len(merged.exits), schedule, seed)
        say(f"verify: {len(merged.exits)} exits, {len(feats)} frames per stream from "
            f"{len(used)} recording(s), schedule {schedule}")

        build = work / "build"
        plain = hostbuild.build(c_dir, build, sanitize=sanitize)
        instr = hostbuild.build(c_dir, build, sanitize=sanitize, count_macs=True,
                                debug_tensors=True)
        c_run = hostbuild.run(plain, work, stream.features, stream.exits, stream.resets,
                              tag="plain")
        i_run = hostbuild.run(instr, work, stream.features, stream.exits, stream.resets,
                              tag="instrumented")
        say("verify: C done, running TFLM")
        _, ref_masks, ref_states = _reference_run(out_dir, merged, stream)

        notes = []
        if not (np.array_equal(c_run.masks, i_run.masks)
                and np.array_equal(c_run.states, i_run.states)):
            notes.append("the instrumented build computes different masks or states than the "
                         "plain build")
        mask_bad = np.any(c_run.masks != ref_masks, axis=1)
        state_bad = np.any(c_run.states != ref_states, axis=1)
        bad = mask_bad | state_bad
        values_bad = (np.sum(c_run.masks != ref_masks, axis=1)
                      + np.sum(c_run.states != ref_states, axis=1))

        exit_reports = []
        all_macs_ok = True
        for e in merged.exits:
            sel = stream.exits == e.index
            counted = i_run.macs[sel]
            agree = bool(np.all(counted == e.macs)) and (
                e.manifest_macs is None or e.manifest_macs == e.macs)
            all_macs_ok &= agree
            own, shared = merged.exit_const_bytes(e.index)
            exit_reports.append(ExitReport(
                e.name, int(sel.sum()), int(bad[sel].sum()), int(values_bad[sel].sum()),
                e.macs, int(counted.max()) if counted.size else 0, agree, e.manifest_macs,
                own + shared, own, shared, len(e.ops)))

        first = None
        if bad.any():
            frame = int(np.flatnonzero(bad)[0])
            what = "mask" if mask_bad[frame] else "state"
            say(f"verify: mismatch at frame {frame}; localizing")
            first = _localize(out_dir, gen, instr, work, stream, frame, what)
        bit_exact = not bad.any() and not notes
        unshared = tuple(f"{u.exit} op {u.op_index} ({u.kind.value}) vs {u.counterpart[0]} op "
                         f"{u.counterpart[1]}: {u.reason}" for u in merged.unshared
                         if u.root_cause)
        return VerifyReport(
            bit_exact=bit_exact, macs_agree=all_macs_ok, frames=len(feats), schedule=schedule,
            sanitize=sanitize, audio=tuple(used), exits=tuple(exit_reports),
            arena_bytes=gen.plan.arena_bytes, state_bytes=gen.plan.state_bytes,
            scratch_bytes=gen.plan.scratch_bytes, weight_bytes=merged.const_bytes,
            weight_bytes_separate=merged.separate_const_bytes, ops_merged=len(merged.ops),
            ops_separate=merged.separate_ops, unshared=unshared,
            c_matches_export=c_matches_export, first_mismatch=first,
            seconds=round(time.monotonic() - t0, 2), notes=tuple(notes))


def _same_code(a: Path, b: Path) -> bool:
    """Equal apart from the provenance header's command line (verify generates its own)."""
    if a.name == "nsn_provenance.h":
        def strip(text: str) -> list[str]:
            return [ln for ln in text.splitlines()
                    if "command line:" not in ln and "NSN_COMMAND_LINE" not in ln]
        return strip(a.read_text()) == strip(b.read_text())
    return a.read_bytes() == b.read_bytes()
