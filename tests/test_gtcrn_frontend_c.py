# SPDX-License-Identifier: Apache-2.0
"""GTCRN's C front end (firmware/frontend/nsn_gtcrn_frontend.c, tables generated from the
model's ERB synthesis matrix) against numpy's `nsconv.audio.gtcrn_frontend` on real audio, with
the network replaced by a fixed mask pattern fed through the same quantize / dequantize API the
core's runner uses; then the same harness on a Cortex-M4 in QEMU must give byte-identical
outputs, and prints the front end's instructions per hop.

Tolerances (float32 C against numpy's float64 FFT): the float32 FFT's error is about 1e-7 of the
frame's norm per bin (the nsNet2 front end's test bounds it by 1e-6, measured 2e-7), so every
feature (|X|, Re, Im) is held to 1e-6 of its frame's norm; the resynthesised output, a sum of
two such frames per sample after the same masks, to an SNR of 100 dB against numpy."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA
from frontend_harness import fwbuild
from frontend_harness.gtcrn_run import (
    RUNS,
    STREAM_OUTPUTS,
    build,
    costs,
    dequantize,
    float_bits,
    inputs,
    mask_pattern,
    quantize,
    stream_args,
)
from frontend_harness.gtcrn_run import project as make_project
from gtcrn_paths import GTCRN
from nsconv.audio import gtcrn_frontend as fe
from nsconv.errors import NsconvError
from nsconv.target import boards
from nsconv.target.firmware import gtcrn_frontend_state_bytes, write_gtcrn_frontend

SNR_DB = 100.0
FEATURE_REL = 1e-6
BOARD_NAMES = [b.name for b in boards.BOARDS]
# fused multiply-add instructions (as tests/test_frontend_c.py)
FUSED_OPS = re.compile(r"\bv(f|fn)m[as]\b|\bvfma\.|\bvfms\.")
MVE_FLOAT = re.compile(r"\bv\w+\.f(16|32)\s+q\d")  # flushes subnormals, unlike the host
needs_arm = pytest.mark.skipif(not (fwbuild.HAVE_ARM_GCC and fwbuild.HAVE_QEMU),
                               reason="arm-none-eabi-gcc and qemu-system-arm required")


@pytest.fixture(scope="module")
def spec() -> fe.GtcrnFrontendSpec:
    from nsconv.model.gtcrn import load_gtcrn

    return fe.GtcrnFrontendSpec.from_model(load_gtcrn(GTCRN / "gtcrn_simple.onnx"))


def _inputs(run: str, d: Path) -> list[str]:
    """Writes a run's inputs into d; returns the harness arguments ("extreme": see below)."""
    if run == "extreme":
        return _extreme_inputs(d)
    return inputs(run, DATA / RUNS[run][0], d)[0]


def _extreme_inputs(d: Path) -> list[str]:
    """Full-scale square waves, impulses and silence with int16 masks at both ends of the range
    (gains up to |1 + i| on bins that sum two bands): the output must saturate."""
    hop = fe.HOP
    pcm = np.concatenate([np.resize([32767, -32768], 4 * hop), np.full(2 * hop, -32768),
                          np.eye(1, 3 * hop, hop + 7)[0] * 32767, np.zeros(2 * hop),
                          np.resize(np.repeat([32767, -32768], 64), 4 * hop)]).astype(np.int16)
    pcm.tofile(d / "in.s16")
    hops = len(pcm) // hop
    mask = np.where(np.arange(hops * 258).reshape(hops, 258) % 3 == 0, 32767, -32768)
    mask.astype(np.int16).tofile(d / "mask.bin")
    return stream_args(16, (2.0**-6, 0), 16, (2.0**-15, 0))


ALL_RUNS = (*RUNS, "extreme")


@pytest.fixture(scope="module")
def project(spec, tmp_path_factory) -> Path:
    return make_project(spec, tmp_path_factory.mktemp("gtcrn_fe"), "gtcrn_simple.onnx")


@pytest.fixture(scope="module")
def host_runs(project, tmp_path_factory) -> dict[str, Path]:
    exe = build(project, "host", project.parent / "host")
    dirs = {}
    for run in ALL_RUNS:
        d = tmp_path_factory.mktemp(run)
        args = _inputs(run, d)
        for a in (args, ["api"]):
            r = fwbuild.run_host(exe, a, d)
            assert r.returncode == 0 and not r.stderr, r.stdout + r.stderr
        dirs[run] = d
    return dirs


def _numpy_stream(x: np.ndarray, mask: np.ndarray, out_q, spec) -> tuple[np.ndarray, ...]:
    """numpy Streamer over the same zero-padded hops and dequantized masks: (frames, outputs)."""
    hops = len(mask)
    padded = np.concatenate([x, np.zeros(hops * fe.HOP - len(x))])
    streamer = fe.Streamer()
    frames, out = [], []
    for t in range(hops):
        frame = streamer.push(padded[t * fe.HOP:(t + 1) * fe.HOP])
        m = dequantize(mask[t], *out_q).reshape(2, -1)
        frames.append(frame)
        out.append(streamer.synthesize(fe.apply_mask(frame, fe.expand_mask(m, spec.synthesis))))
    out.append(streamer.flush())
    return np.asarray(frames), np.concatenate(out), padded


def _snr(ref: np.ndarray, got: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2)
                               / np.sum((got.astype(np.float64) - ref) ** 2)))


@pytest.mark.parametrize("run", list(RUNS))
def test_stream_matches_numpy(spec, host_runs, run, tmp_path):
    d = host_runs[run]
    _, bits, _, in_q, out_q = RUNS[run]
    args, x, mask = inputs(run, DATA / RUNS[run][0], tmp_path)
    frames, y, padded = _numpy_stream(x, mask, out_q, spec)
    hops = len(mask)

    # float features: every value within 1e-6 of its frame's norm of numpy's
    feat = np.fromfile(d / "feat.f32", np.float32).reshape(hops, 3, fe.BINS)
    ref = np.stack([fe.features(f, spec.mag_eps) for f in frames])
    norm = np.maximum(np.linalg.norm(frames, axis=1), 1e-30)[:, None, None]
    rel = np.abs(feat - ref) / norm
    assert rel.max() < FEATURE_REL, rel.max()

    # quantized features: TFLite QUANTIZE of the C features, bit for bit; against numpy's
    # only where a rounding boundary lies between the two float values
    dtype = np.int8 if bits == 8 else np.int16
    featq = np.fromfile(d / "featq.bin", dtype).reshape(hops, -1)
    np.testing.assert_array_equal(featq, quantize(feat.reshape(hops, -1), *in_q, bits))
    q_np = quantize(ref.reshape(hops, -1), *in_q, bits)
    lo = np.minimum(feat, ref).reshape(hops, -1) / in_q[0]
    hi = np.maximum(feat, ref).reshape(hops, -1) / in_q[0]
    differ = featq != q_np
    assert not np.any(differ & ~(np.floor(hi - 0.5) + 0.5 >= lo))

    # output: numpy Streamer with the same dequantized masks
    c_y = np.fromfile(d / "out.f32", np.float32)
    assert len(c_y) == len(y) == (hops + 1) * fe.HOP
    snr = _snr(y, c_y)
    assert snr >= SNR_DB
    c_y16 = np.fromfile(d / "out.s16", np.int16)
    np.testing.assert_array_equal(c_y16, quantize(c_y, 2.0**-15, 0, 16))  # round(32768 y)

    # against the batch centred STFT (reflect padding): frames 1 .. hops-1 are the same
    # samples; output hops 1 .. hops-1 (batch y[0 .. 256 (hops-1))) use only those frames
    # except the first, which also uses frame 0
    batch = fe.stft(padded)
    assert np.abs(feat[1:] - np.stack([fe.features(f, spec.mag_eps) for f in batch[1:hops]])).max() \
        <= FEATURE_REL * norm[1:].max()
    masked = np.stack([fe.apply_mask(batch[t], fe.expand_mask(
        dequantize(mask[min(t, hops - 1)], *out_q).reshape(2, -1), spec.synthesis))
        for t in range(len(batch))])
    y_batch = fe.istft(masked, len(padded))
    interior = slice(2 * fe.HOP, hops * fe.HOP)  # stream hops 2 .. hops-1
    snr_batch = _snr(y_batch[fe.HOP:(hops - 1) * fe.HOP], c_y[interior])
    print(f"\n{run} ({RUNS[run][0]}, {hops} hops): feature max error {rel.max():.2e} of the "
          f"frame norm ({np.abs(feat - ref).max():.2e} absolute); {differ.sum()} of "
          f"{differ.size} int{bits} features differ from numpy's (rounding boundaries); "
          f"resynthesis SNR {snr:.1f} dB vs numpy Streamer, {snr_batch:.1f} dB vs batch istft "
          "(interior)")
    assert snr_batch >= SNR_DB


def test_stream_hops_is_the_c_runner_alignment(spec, project, tmp_path):
    """numpy's stream_hops (what a runner writes for a clip: its hops and one of zeros, len(x)
    samples out) is the C stream of the same hops without its first output hop."""
    exe = build(project, "host", project.parent / "host")
    args, x, _ = inputs("int8", DATA / RUNS["int8"][0], tmp_path)
    hops = -(-len(x) // fe.HOP) + 1
    np.concatenate([np.round(x * 32768), np.zeros(hops * fe.HOP - len(x))]).astype(
        np.int16).tofile(tmp_path / "in.s16")
    mask = mask_pattern(hops, 8, RUNS["int8"][4], seed=1)
    mask.tofile(tmp_path / "mask.bin")
    r = fwbuild.run_host(exe, args, tmp_path)
    assert r.returncode == 0, r.stderr
    frames = iter(mask)
    y = fe.stream_hops(x, lambda feat: dequantize(next(frames), *RUNS["int8"][4]),
                       spec.synthesis, spec.mag_eps)
    c_y = np.fromfile(tmp_path / "out.f32", np.float32)
    assert len(y) == len(x) and _snr(y, c_y[fe.HOP:fe.HOP + len(x)]) >= SNR_DB


def test_api_contract_and_state_size(project, tmp_path):
    """Sequence and argument errors (gtcrn_harness.c run_api); sizeof the state as computed by
    target.firmware for RAM figures."""
    exe = build(project, "host", project.parent / "host")
    r = fwbuild.run_host(exe, ["api"], tmp_path)
    assert r.returncode == 0 and "api ok" in r.stdout, r.stdout + r.stderr
    spec = fe.GtcrnFrontendSpec(np.eye(64, 192, dtype=np.float32))
    assert f"state {gtcrn_frontend_state_bytes(spec)} bytes" in r.stdout


def test_float_input_api_gives_same_bits(project, host_runs, tmp_path):
    exe = build(project, "host", project.parent / "host")
    args = _inputs("mixed", tmp_path)
    r = fwbuild.run_host(exe, args + ["f32"], tmp_path)
    assert r.returncode == 0, r.stderr
    for name in STREAM_OUTPUTS:
        assert (tmp_path / name).read_bytes() == (host_runs["mixed"] / name).read_bytes(), name


def test_quantize_is_tflite_rounding(project, tmp_path):
    """Values on and next to every k + 0.5 of the scale, and beyond saturation."""
    exe = build(project, "host", project.parent / "host")
    rng = np.random.default_rng(3)
    # where a shortcut could slip: just below 1/2 (0.5 + 0.5 rounds up in float), around the
    # 2^17 saturation bound, 2 x / scale overflowing, infinities, NaN of both signs, subnormals
    edges = np.array([0.5 - 2**-25, 0.5 - 2**-24, 131071.5, 131072.0, 131072.5, 2.0**18,
                      3e38, np.inf, 1e-45, 1e-40, 2**-126], np.float32)
    edges = np.concatenate([edges, -edges, np.array([0x7FC00000, 0xFFC00000], np.uint32)
                            .view(np.float32)])
    for bits, (scale, zp) in ((8, (np.float32(0.25), -10)), (16, (np.float32(2.0**-9), 7)),
                              (16, (np.float32(1.0), 0)), (8, (np.float32(1.0), 3))):
        halves = (np.arange(-300, 300) + np.float32(0.5)).astype(np.float32) * scale
        x = np.concatenate([halves, np.nextafter(halves, np.float32(np.inf)),
                            np.nextafter(halves, np.float32(-np.inf)),
                            rng.uniform(-200, 200, 5000), [1e9, -1e9, 0.0, -0.0, np.nan],
                            edges * scale])
        x.astype(np.float32).tofile(tmp_path / "q.f32")
        r = fwbuild.run_host(exe, ["quantize", "q.f32", str(bits), float_bits(scale), str(zp)],
                             tmp_path)
        assert r.returncode == 0, r.stderr
        got = np.fromfile(tmp_path / "quant.bin", np.int8 if bits == 8 else np.int16)
        with np.errstate(invalid="ignore", over="ignore"):  # inf - trunc(inf), 3e38 / 2^-9
            expect = quantize(np.nan_to_num(x.astype(np.float32), nan=-1e9), scale, zp, bits)
        np.testing.assert_array_equal(got, expect)


# (bits, scale, zero point): the deployed mixed core's int16 input (scale 0.00145) and
# int16 output rounding (2^-15), the int8 run's, a unit scale, and 2^-126 (1 + 2^-23), whose
# half is not a float (the undivided path)
SWEEPS = ((16, np.float32(0.0014513216447085142), 0), (16, np.float32(2.0**-15), 0),
          (8, np.float32(0.25), -10), (16, np.float32(1.0), 7),
          (8, np.uint32(0x00800001).view(np.float32), -5))


def _sweep(run, args: list[str]) -> tuple[int, int]:
    r = run(args)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"sweep (\d+) values, (\d+) differ", r.stdout)
    assert m, r.stdout
    return int(m[1]), int(m[2])


def test_quantize_sweep_matches_reference(project, tmp_path):
    """nsn_gtcrn_quantize_* (round_twice: no float rounding step, saturation on the bits)
    against the direct TFLite rounding (gtcrn_harness.c reference_quantize) on every 2048th
    float bit pattern, shifted by k % 7 (the whole 2^32 with stride 1: docs/gtcrn-frontend.md)."""
    exe = build(project, "host", project.parent / "host")
    for bits, scale, zp in SWEEPS:
        n, differ = _sweep(lambda a: fwbuild.run_host(exe, a, tmp_path),
                           ["sweep", str(bits), float_bits(scale), str(zp), "2048"])
        assert n == 2**21 and differ == 0, (bits, scale, zp, differ)


def test_sanitizers_clean_and_same_bits(project, host_runs, tmp_path):
    """ASan + UBSan build: no finding, byte-identical outputs to the plain build."""
    exe = build(project, "host", tmp_path / "build", sanitize=True)
    args = _inputs("int8", tmp_path)
    for a in (args, ["api"]):
        r = fwbuild.run_host(exe, a, tmp_path)
        assert r.returncode == 0 and not r.stderr, r.stdout + r.stderr
    for name in STREAM_OUTPUTS:
        assert (tmp_path / name).read_bytes() == (host_runs["int8"] / name).read_bytes(), name
    d = tmp_path / "extreme"
    d.mkdir()
    ext = _extreme_inputs(d)
    r = fwbuild.run_host(exe, ext, d)
    assert r.returncode == 0 and not r.stderr, r.stdout + r.stderr
    for name in STREAM_OUTPUTS:
        assert (d / name).read_bytes() == (host_runs["extreme"] / name).read_bytes(), name


def test_extreme_inputs_saturate_and_stay_finite(host_runs):
    d = host_runs["extreme"]
    y = np.fromfile(d / "out.f32", np.float32)
    y16 = np.fromfile(d / "out.s16", np.int16)
    feat = np.fromfile(d / "feat.f32", np.float32)
    hops = len(feat) // (3 * fe.BINS)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(feat)) and len(y) == (hops + 1) * fe.HOP
    assert y16.min() == -32768 and y16.max() == 32767  # saturated, not wrapped
    np.testing.assert_array_equal(y16, quantize(y, 2.0**-15, 0, 16))


def test_tables_come_from_the_model(spec, project, tmp_path):
    """The ERB table is the model's matrix (decoded back exactly); generation is reproducible;
    the spec round-trips through JSON (as stored in an export) and refuses a bad matrix."""
    gen = __import__("nsconv.target.firmware", fromlist=["_gen_tables"])._gen_tables()
    start, band, weight = gen.erb_columns(spec.synthesis)
    dense = np.zeros_like(spec.synthesis)
    for j in range(dense.shape[1]):
        dense[band[start[j]:start[j + 1]], j] = weight[start[j]:start[j + 1]]
    np.testing.assert_array_equal(dense, spec.synthesis)
    text = (project / "nsn_gtcrn_tables.c").read_text()
    assert len(re.findall(r"0x[0-9a-f.]+p[-+]\d+f", text)) == fe.N_FFT + len(weight)
    write_gtcrn_frontend(spec, tmp_path, "gtcrn_simple.onnx")
    for p in tmp_path.iterdir():
        assert p.read_text() == (project / p.name).read_text(), p.name
    back = fe.GtcrnFrontendSpec.from_json(json.loads(json.dumps(spec.to_json())))
    np.testing.assert_array_equal(back.synthesis, spec.synthesis)
    # the graph's Add constant, float32(1e-12)
    assert (back.stft, back.mag_eps, back.low, back.mask_bands) == \
        (fe.STFT, float(np.float32(1e-12)), 65, 129)
    with pytest.raises(NsconvError, match="does not fit 257 bins"):
        fe.GtcrnFrontendSpec(np.ones((4, 300), np.float32))
    with pytest.raises(NsconvError, match="expected a 'gtcrn' front-end object"):
        fe.GtcrnFrontendSpec.from_json(fe.STFT.to_json())


# --------------------------------------------------------------------------- Cortex-M


@pytest.fixture(scope="module")
def arm_elfs(project) -> dict[str, Path]:
    if not (fwbuild.HAVE_ARM_GCC and fwbuild.HAVE_QEMU):
        pytest.skip("arm-none-eabi-gcc and qemu-system-arm required")
    return {name: build(project, name, project.parent / name) for name in BOARD_NAMES}


@needs_arm
@pytest.mark.parametrize("name", BOARD_NAMES)
def test_cores_byte_identical_to_host_and_cost(spec, arm_elfs, host_runs, name, tmp_path):
    """The real-audio runs and the extreme one on each core in QEMU: outputs byte-identical to
    the host build's; prints the instructions per hop of each stage of the real-audio runs
    (QEMU -icount, see nsn_port.h)."""
    board = boards.board(name)
    for run in ALL_RUNS:
        d = tmp_path / run
        d.mkdir()
        args = _inputs(run, d)
        r = fwbuild.run_qemu(board, arm_elfs[name], " ".join(args), cwd=d)
        assert r.returncode == 0, r.stdout + r.stderr
        for out in STREAM_OUTPUTS:
            assert (d / out).read_bytes() == (host_runs[run] / out).read_bytes(), f"{run} {out}"
        if run == "extreme":
            continue
        cost = costs(r.stdout)
        print(f"\n{name} ({board.core}) {run}: " + ", ".join(f"{k} {v:,}" for k, v in cost.items())
              + f" instructions per hop; total {sum(cost.values()):,}")
    r = fwbuild.run_qemu(board, arm_elfs[name], "api", cwd=tmp_path)
    assert r.returncode == 0 and "api ok" in r.stdout, r.stdout + r.stderr
    assert f"state {gtcrn_frontend_state_bytes(spec)} bytes" in r.stdout


def _disassembly(elf: Path) -> str:
    return subprocess.run(["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", str(elf)],
                          check=True, capture_output=True, text=True).stdout


@needs_arm
@pytest.mark.parametrize("name", BOARD_NAMES)
def test_arm_code_has_no_fma_and_inline_sqrt(arm_elfs, name):
    """-ffp-contract=off, -fno-tree-vectorize and -fno-math-errno as promised: no fused
    multiply-add and no MVE float in the front end, the square root is VSQRT.F32, no libm."""
    dis = _disassembly(arm_elfs[name])
    functions = re.split(r"\n(?=[0-9a-f]{8} <)", dis)
    ours = [f for f in functions
            if re.match(r"[0-9a-f]{8} <(nsn_gtcrn|nsn_rfft|nsn_cfft|analyze_frame)", f)]
    assert len(ours) >= 8
    assert not any(FUSED_OPS.search(f) or MVE_FLOAT.search(f) for f in ours)
    assert any("vsqrt.f32" in f for f in ours)
    assert not re.search(r"<sqrtf?>", dis)


@needs_arm
@pytest.mark.parametrize("name", BOARD_NAMES)
def test_quantize_sweep_on_cores(arm_elfs, name, tmp_path):
    """The cores' quantization (SSAT, VCVT) against the same reference, every 65536th pattern."""
    board = boards.board(name)
    for bits, scale, zp in SWEEPS[:3]:
        n, differ = _sweep(lambda a: fwbuild.run_qemu(board, arm_elfs[name], " ".join(a),
                                                      cwd=tmp_path),
                           ["sweep", str(bits), float_bits(scale), str(zp), "65536"])
        assert n == 2**16 and differ == 0, (name, bits, scale, zp, differ)


@needs_arm
def test_init_refuses_a_build_with_fused_multiply_add(project, tmp_path):
    """On Cortex-M4 -ffp-contract=fast fuses a * b + c into VFMA; nsn_gtcrn_init must refuse."""
    m4 = boards.board("mps2-an386")
    elf = build(project, m4.name, tmp_path / "fused", extra=" -ffp-contract=fast")
    assert FUSED_OPS.search(_disassembly(elf))
    args = _inputs("mixed", tmp_path)
    r = fwbuild.run_qemu(m4, elf, " ".join(args), cwd=tmp_path)
    assert r.returncode == 2 and "nsn_gtcrn_init failed: -2" in r.stdout + r.stderr
