# SPDX-License-Identifier: Apache-2.0
"""The C front end (firmware/frontend) against the numpy featurelib pipeline
(nsconv.frontend), on real audio; then the same harness on Cortex-M4, M7 and M55 in QEMU
must produce byte-identical outputs to the host build."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA
from frontend_harness import fwbuild
from nsconv.audio import frontend
from nsconv.audio.wav import read_wav
from nsconv.target import boards

CLIPS = ("p232_043_noisy.wav", "0072_noisy.wav")  # VoiceBank-DEMAND 2.0 s, DNS3 5 s
# Realistic int8 parameters: log-power features span about [-12, 4]; the mask is a sigmoid
# output (TFLite's fixed 1/256, -128).
FEATURE_Q = (np.float32(16 / 255), 63)
MASK_Q = (np.float32(1 / 256), -128)
BOARD_NAMES = [b.name for b in boards.BOARDS]
needs_arm = pytest.mark.skipif(not (fwbuild.HAVE_ARM_GCC and fwbuild.HAVE_QEMU),
                               reason="arm-none-eabi-gcc and qemu-system-arm required")


def _bits(value: np.float32) -> str:
    return f"0x{int(np.float32(value).view(np.uint32)):08x}"


def _round_half_away(x: np.ndarray) -> np.ndarray:
    """Exact std::round on float32 (np.round rounds half to even)."""
    x = np.asarray(x, dtype=np.float32)
    t = np.trunc(x)
    frac = x - t  # exact
    return t + (frac >= 0.5) - (frac <= -0.5)


def _quantize_exact(values: np.ndarray, scale: np.float32, zero_point: int) -> np.ndarray:
    scaled = np.asarray(values, dtype=np.float32) / np.float32(scale)
    return np.clip(_round_half_away(scaled) + zero_point, -128, 127).astype(np.int8)


def _frontend_cflags() -> str:
    return fwbuild.make_variable("NSN_FRONTEND_CFLAGS")


def _build_harness(target: str, out: Path, sanitize: bool = False) -> Path:
    return fwbuild.build(target, out, "frontend_harness",
                         fwbuild.FRONTEND_SRCS + (fwbuild.HARNESS_DIR / "frontend_harness.c",),
                         includes=(fwbuild.FIRMWARE / "frontend",),
                         extra_cflags=_frontend_cflags(), sanitize=sanitize)


def _mask_for(clip: str, num_frames: int) -> np.ndarray:
    """A varied int8 mask, fixed per clip: a Wiener-like gain from numpy's features, some
    noise, and whole frames at both ends of the range (gain 0 -> 1e-4, gain ~1)."""
    x = read_wav(DATA / clip)
    feat = frontend.features(frontend.stft(x))
    noise_floor = np.percentile(feat, 20, axis=0)
    rng = np.random.default_rng(len(clip))
    gain = 1 / (1 + np.exp(-2.0 * (feat - noise_floor - 1.0))) + rng.normal(0, 0.05, feat.shape)
    mask = _quantize_exact(np.clip(gain, 0, 1), *MASK_Q)
    mask[5] = -128
    mask[6] = 127
    assert mask.shape == (num_frames, frontend.N_BINS)
    return mask


def _stream_inputs(clip: str, directory: Path) -> list[str]:
    """Copies the clip and its mask into directory; returns the harness arguments."""
    x = read_wav(DATA / clip)
    shutil.copyfile(DATA / clip, directory / "in.wav")
    _mask_for(clip, frontend.num_frames(len(x))).tofile(directory / "mask.s8")
    return ["stream", "in.wav", "mask.s8", _bits(FEATURE_Q[0]), str(FEATURE_Q[1]),
            _bits(MASK_Q[0]), str(MASK_Q[1])]


STREAM_OUTPUTS = ("features.s8", "logpow.f32", "spectrum.f32", "out.f32", "out.s16")


def _rfft_frames() -> np.ndarray:
    """Random frames at several levels plus edge cases, float32, shape (frames, 320)."""
    rng = np.random.default_rng(11)
    frames = [rng.standard_normal(320) * level for level in (1.0, 1e-3, 3e-5)]
    frames += [np.zeros(320), np.eye(1, 320, 0)[0], np.eye(1, 320, 201)[0], np.ones(320),
               np.resize([1.0, -1.0], 320), rng.uniform(-1, 1, 320) * frontend.WINDOW]
    frames += list(rng.integers(-32768, 32768, (8, 320)) / 32768 * frontend.WINDOW)
    return np.asarray(frames, dtype=np.float32)


def _special_inputs(directory: Path) -> None:
    _rfft_frames().tofile(directory / "frames.f32")
    rng = np.random.default_rng(5)
    logs = np.concatenate([10.0 ** rng.uniform(-12, 6, 20000),
                           10.0 ** np.arange(-12, 7), [2.0, 0.5, 1e-12, 3.4e38, 1.2e-38]])
    logs.astype(np.float32).tofile(directory / "log10_in.f32")
    q_in = np.concatenate([rng.uniform(-13, 6, 20000), _boundary_values()])
    q_in.astype(np.float32).tofile(directory / "quant_in.f32")


def _boundary_values() -> np.ndarray:
    """Values whose scaled value lands on or next to k + 0.5 and beyond saturation."""
    scale = FEATURE_Q[0]
    halves = (np.arange(-200, 200) + np.float32(0.5)).astype(np.float32)
    exact = halves * scale  # float32: f / scale may or may not give back the half exactly
    near = np.concatenate([np.nextafter(exact, np.float32(np.inf)),
                           np.nextafter(exact, np.float32(-np.inf))])
    tiny = np.array([np.nextafter(np.float32(0.5), np.float32(0)) * scale, -0.0, 0.0, 1e6, -1e6],
                    dtype=np.float32)
    return np.concatenate([exact, near, tiny]).astype(np.float32)


SPECIAL_RUNS = (("rfft", "frames.f32"), ("log10", "log10_in.f32"),
                ("quantize", "quant_in.f32", _bits(FEATURE_Q[0]), str(FEATURE_Q[1])))
SPECIAL_OUTPUTS = ("rfft.f32", "irfft.f32", "log10.f32", "quantize.s8")


# --------------------------------------------------------------------------- host build


@pytest.fixture(scope="module")
def host_harness(tmp_path_factory) -> Path:
    return _build_harness("host", tmp_path_factory.mktemp("host_build"))


@pytest.fixture(scope="module")
def host_stream(host_harness, tmp_path_factory) -> dict[str, Path]:
    """Host harness outputs per clip (a directory each)."""
    dirs = {}
    for clip in CLIPS:
        d = tmp_path_factory.mktemp(clip.split(".")[0])
        run = fwbuild.run_host(host_harness, _stream_inputs(clip, d), d)
        assert run.returncode == 0, run.stderr
        dirs[clip] = d
    return dirs


@pytest.fixture(scope="module")
def host_special(host_harness, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("special")
    _special_inputs(d)
    for args in SPECIAL_RUNS:
        run = fwbuild.run_host(host_harness, list(args), d)
        assert run.returncode == 0, run.stderr
    return d


def test_tables_are_generated_from_gen_tables(tmp_path):
    subprocess.run([sys.executable, str(fwbuild.FIRMWARE / "frontend" / "gen_tables.py"),
                    "--output", str(tmp_path)], check=True)
    for name in ("nsn_frontend_tables.c", "nsn_frontend_config.h"):
        assert (tmp_path / name).read_text() == (fwbuild.FIRMWARE / "frontend" / name).read_text()


def test_rfft_matches_numpy(host_special):
    frames = _rfft_frames()
    spec = np.fromfile(host_special / "rfft.f32", np.float32).reshape(len(frames), 161, 2)
    spec = spec[..., 0] + 1j * spec[..., 1]
    ref = np.fft.rfft(frames.astype(np.float64), axis=1)
    scale = np.maximum(np.linalg.norm(ref, axis=1), 1e-30)
    rel = np.linalg.norm(spec - ref, axis=1) / scale
    assert rel.max() < 1e-6, rel
    assert np.all(spec[:, 0].imag == 0) and np.all(spec[:, 160].imag == 0)
    assert np.all(spec[3] == 0)  # zeros in, exact zeros out
    inverse = np.fromfile(host_special / "irfft.f32", np.float32).reshape(len(frames), 320)
    ref_inv = np.fft.irfft(spec.astype(np.complex128), 320, axis=1) * 320
    inv_scale = np.maximum(np.abs(ref_inv).max(axis=1), 1e-30)
    assert (np.abs(inverse - ref_inv).max(axis=1) / inv_scale).max() < 1e-6


def test_log10_accuracy(host_special):
    x = np.fromfile(host_special / "log10_in.f32", np.float32)
    got = np.fromfile(host_special / "log10.f32", np.float32)
    ref = np.log10(x.astype(np.float64))
    ulp = np.spacing(np.maximum(np.abs(ref), 1.0).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(got - ref) / ulp) <= 1.0  # within 1 ulp of max(|log10 x|, 1)
    exact_powers = (x == np.float32(1)) | (x == np.float32(10)) | (x == np.float32(1e6))
    assert np.all(got[exact_powers] == np.round(ref[exact_powers]))
    assert got[x == np.float32(1e-12)][0] == np.float32(-12.0)  # featurelib's floor value


def test_quantize_is_tflite_rounding(host_special):
    """Bit-exact TFLite QUANTIZE: float32 division, round half away from zero, saturation."""
    x = np.fromfile(host_special / "quant_in.f32", np.float32)
    got = np.fromfile(host_special / "quantize.s8", np.int8)
    np.testing.assert_array_equal(got, _quantize_exact(x, *FEATURE_Q))


@pytest.mark.parametrize("clip", CLIPS)
def test_stream_matches_numpy_featurelib(host_stream, clip):
    d = host_stream[clip]
    x = read_wav(DATA / clip)
    spec = frontend.stft(x)
    frames = len(spec)
    assert frames == frontend.num_frames(len(x))

    # spectrum: float32 FFT against numpy's float64 rfft
    c_spec = np.fromfile(d / "spectrum.f32", np.float32).reshape(frames, 161, 2)
    c_spec = c_spec[..., 0] + 1j * c_spec[..., 1]
    norm = np.linalg.norm(spec, axis=1, keepdims=True)
    abs_err = np.abs(c_spec - spec)
    assert (abs_err / np.maximum(norm, 1e-30)).max() < 1e-6

    # float features: each bin within what a spectrum error of 1e-6 * frame norm allows
    feat = frontend.features(spec)
    c_feat = np.fromfile(d / "logpow.f32", np.float32).reshape(frames, 161)
    magnitude = np.maximum(np.abs(spec), 1e-6)  # |X| at the 1e-12 power floor
    allowed = 2 * np.log10(1 + 1e-6 * norm / magnitude) + 2e-6
    assert np.all(np.abs(c_feat - feat) <= allowed)
    assert np.median(np.abs(c_feat - feat)) < 1e-6

    # int8 features: equal except where a rounding boundary k + 0.5 lies between the C and
    # numpy values of feature / scale
    q_c = np.fromfile(d / "features.s8", np.int8).reshape(frames, 161)
    q_np = _quantize_exact(feat, *FEATURE_Q)  # TFLite rounding (see _round_half_away)
    scale = FEATURE_Q[0]
    lo = np.minimum(c_feat / scale, feat / scale)
    hi = np.maximum(c_feat / scale, feat / scale)
    straddles = np.floor(hi - 0.5) + 0.5 >= lo
    differ = q_c != q_np
    assert not np.any(differ & ~straddles)
    print(f"\n{clip}: {frames} frames, {differ.sum()} of {differ.size} int8 features differ "
          f"from numpy, all at rounding boundaries; max float feature error "
          f"{np.abs(c_feat - feat).max():.2e}")
    assert differ.sum() <= 1e-3 * differ.size
    np.testing.assert_array_equal(q_c, _quantize_exact(c_feat, *FEATURE_Q))

    # resynthesis with the same int8 masks: batch istft of numpy's spectrum
    mask = np.fromfile(d / "mask.s8", np.int8).reshape(frames, 161)
    gain = frontend.dequantize(mask, *MASK_Q)
    y = frontend.istft(frontend.apply_mask(spec, gain))
    c_y = np.fromfile(d / "out.f32", np.float32)
    assert len(c_y) == len(y) == frontend.HOP * (frames + 1)
    snr = 10 * np.log10(np.sum(y**2) / np.sum((c_y - y) ** 2))
    print(f"{clip}: resynthesis SNR against numpy {snr:.1f} dB")
    assert snr >= 40

    # int16 output: round half away from zero of 32768 y, saturated
    c_y16 = np.fromfile(d / "out.s16", np.int16)
    expect16 = np.clip(_round_half_away(c_y * np.float32(32768)), -32768, 32767).astype(np.int16)
    np.testing.assert_array_equal(c_y16, expect16)


def test_stream_equals_numpy_streamer_alignment(host_stream):
    """The C stream output is frontend.Streamer's: hop k out = batch y[160k : 160k + 160]."""
    clip = CLIPS[0]
    x = read_wav(DATA / clip)
    c_y = np.fromfile(host_stream[clip] / "out.f32", np.float32)
    mask = np.fromfile(host_stream[clip] / "mask.s8", np.int8).reshape(-1, 161)
    gain = frontend.dequantize(mask, *MASK_Q)
    streamer = frontend.Streamer()
    padded = np.concatenate([x, np.zeros((len(mask) + 1) * frontend.HOP - len(x))])
    out, k = [], 0
    for i in range(0, len(padded), frontend.HOP):
        r = streamer.push(padded[i : i + frontend.HOP])
        if r is not None:
            out.append(streamer.synthesize(frontend.apply_mask(r[0], gain[k])))
            k += 1
    out.append(streamer.flush())
    ref = np.concatenate(out)
    assert k == len(mask) and len(ref) == len(c_y)
    assert np.max(np.abs(ref - c_y)) < 1e-5


def test_float_input_api_gives_same_bits(host_harness, host_stream, tmp_path):
    """analyze_f32 on sample / 32768 is the same computation as analyze_s16."""
    clip = CLIPS[0]
    run = fwbuild.run_host(host_harness, _stream_inputs(clip, tmp_path) + ["f32"], tmp_path)
    assert run.returncode == 0, run.stderr
    for name in STREAM_OUTPUTS:
        assert (tmp_path / name).read_bytes() == (host_stream[clip] / name).read_bytes(), name


def test_api_contract(host_harness, tmp_path):
    """Argument checks, the priming hop, a repeated synthesis, flush (see frontend_harness.c)."""
    run = fwbuild.run_host(host_harness, ["api"], tmp_path)
    assert run.returncode == 0 and "api ok" in run.stdout, run.stdout + run.stderr


def test_sanitizers_clean_and_same_bits(host_stream, host_special, tmp_path):
    """ASan + UBSan build: no finding, and byte-identical outputs to the plain build."""
    exe = _build_harness("host", tmp_path / "build", sanitize=True)
    clip = CLIPS[0]
    run = fwbuild.run_host(exe, _stream_inputs(clip, tmp_path), tmp_path)
    assert run.returncode == 0, run.stderr
    _special_inputs(tmp_path)
    for args in SPECIAL_RUNS + (("api",),):
        run = fwbuild.run_host(exe, list(args), tmp_path)
        assert run.returncode == 0, run.stderr
    for name in STREAM_OUTPUTS:
        assert (tmp_path / name).read_bytes() == (host_stream[clip] / name).read_bytes(), name
    for name in SPECIAL_OUTPUTS:
        assert (tmp_path / name).read_bytes() == (host_special / name).read_bytes(), name


# --------------------------------------------------------------------------- ARM builds


@pytest.fixture(scope="module")
def arm_harness(tmp_path_factory) -> dict[str, Path]:
    if not (fwbuild.HAVE_ARM_GCC and fwbuild.HAVE_QEMU):
        pytest.skip("arm-none-eabi-gcc and qemu-system-arm required")
    out = tmp_path_factory.mktemp("arm_build")
    return {name: _build_harness(name, out / name) for name in BOARD_NAMES}


@needs_arm
@pytest.mark.parametrize("name", BOARD_NAMES)
def test_arm_outputs_byte_identical_to_host(arm_harness, host_stream, host_special, name,
                                            tmp_path):
    b = boards.board(name)
    elf = arm_harness[name]
    for clip in CLIPS:
        d = tmp_path / clip.split(".")[0]
        d.mkdir()
        run = fwbuild.run_qemu(b, elf, " ".join(_stream_inputs(clip, d)), cwd=d)
        assert run.returncode == 0, run.stdout + run.stderr
        for out_name in STREAM_OUTPUTS:
            assert (d / out_name).read_bytes() == (host_stream[clip] / out_name).read_bytes(), \
                f"{name} {clip} {out_name}"
        cost = re.findall(r"per frame: (\d+) instructions", run.stdout)
        print(f"\n{name} {clip}: analyze {cost[0]}, synthesize {cost[1]} instructions per hop")
    _special_inputs(tmp_path)
    for args in SPECIAL_RUNS + (("api",),):
        run = fwbuild.run_qemu(b, elf, " ".join(args), cwd=tmp_path)
        assert run.returncode == 0, run.stdout + run.stderr
    for out_name in SPECIAL_OUTPUTS:
        assert (tmp_path / out_name).read_bytes() == (host_special / out_name).read_bytes(), \
            f"{name} {out_name}"


FUSED_OPS = re.compile(r"\bv(f|fn)m[as]\b|\bvfma\.|\bvfms\.")
MVE_FLOAT = re.compile(r"\bv\w+\.f(16|32)\s+q\d")


@needs_arm
@pytest.mark.parametrize("name", BOARD_NAMES)
def test_arm_frontend_code_has_no_fma_or_vector_float(arm_harness, name):
    """Static check of what -ffp-contract=off and -fno-tree-vectorize promise: no fused
    multiply-add in the front end, and (M55) no MVE float instruction, which would flush
    subnormals to zero unlike the host."""
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", "--no-show-raw-insn",
                          str(arm_harness[name])], check=True, capture_output=True,
                         text=True).stdout
    functions = re.split(r"\n(?=[0-9a-f]{8} <)", dis)
    frontend_code = [f for f in functions
                     if re.match(r"[0-9a-f]{8} <nsn_(frontend|rfft|cfft)", f)]
    assert len(frontend_code) >= 8
    for f in frontend_code:
        assert not FUSED_OPS.search(f), f.splitlines()[0]
        assert not MVE_FLOAT.search(f), f.splitlines()[0]


@needs_arm
def test_init_refuses_a_build_with_fused_multiply_add(tmp_path):
    """The run-time guard: on Cortex-M4 -ffp-contract=fast fuses a * b + c into VFMA, and
    nsn_frontend_init must then refuse to run (NSN_FRONTEND_ERR_FLOAT_BUILD = -2)."""
    b = boards.board("mps2-an386")
    elf = fwbuild.build(b.name, tmp_path, "fused",
                        fwbuild.FRONTEND_SRCS + (fwbuild.HARNESS_DIR / "frontend_harness.c",),
                        includes=(fwbuild.FIRMWARE / "frontend",),
                        extra_cflags=_frontend_cflags() + " -ffp-contract=fast")
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], check=True,
                         capture_output=True, text=True).stdout
    assert FUSED_OPS.search(dis)
    run = fwbuild.run_qemu(b, elf, " ".join(_stream_inputs(CLIPS[0], tmp_path)), cwd=tmp_path)
    assert run.returncode == 2
    assert "nsn_frontend_init failed: -2" in run.stdout + run.stderr
