# SPDX-License-Identifier: Apache-2.0
"""Front ends other than the default: the FrontendSpec (parsing, refusals, storage with the
model) and the C front end generated for a spec (gen_tables.py), against numpy's
`nsconv.audio.frontend` on real audio resampled to the spec's rate, on the host; one spec
also on a Cortex-M4 in QEMU, byte-identical to the host build."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA
from frontend_harness import fwbuild
from nsconv.audio import frontend
from nsconv.audio.spec import DEFAULT, FrontendSpec, fft_plan
from nsconv.audio.wav import read_wav, read_wav_resampled, write_wav
from nsconv.errors import NsconvError
from nsconv.target import boards
from nsconv.target.firmware import write_frontend
from test_frontend_c import MASK_Q, _bits, _quantize_exact, _round_half_away

SPECS = {
    # the 257-bin layout of the Dynamic nsNet2 authors' group
    "16k-512": "rate=16000,win=512,hop=256,n_fft=512,window=sqrt-hann-periodic",
    # the 48 kHz DNS layout: 960-sample window zero padded to a 1024-point FFT, 513 bins
    "48k-960-1024": "rate=48000,win=960,hop=480,n_fft=1024",
    # 8 kHz, radix 3 (n_fft / 2 = 120 = 4 2 3 5), tail longer than a hop, ln, no drop, clamp
    "8k-240-ln": "rate=8000,win=200,hop=80,n_fft=240,window=hamming,feature=ln,"
                 "drop_first=false,mask_min=0.01,mask_max=0.9",
}
CLIP = "p232_043_noisy.wav"  # VoiceBank-DEMAND, 16 kHz, 2 s
FEATURE_Q = (np.float32(16 / 255), 63)
STREAM_OUTPUTS = ("features.s8", "logpow.f32", "spectrum.f32", "out.f32", "out.s16")


# --------------------------------------------------------------------------- the spec


def test_default_is_the_dns_front_end():
    assert (DEFAULT.rate, DEFAULT.win, DEFAULT.hop, DEFAULT.n_fft, DEFAULT.n_bins) == \
        (16000, 320, 160, 320, 161)
    assert np.array_equal(DEFAULT.window_values(), np.sqrt(np.hanning(320)))
    assert FrontendSpec.parse("") == DEFAULT and FrontendSpec.from_json({}) == DEFAULT
    assert DEFAULT.fft_radices() == (4, 4, 2, 5)  # the committed 320-point plan


def test_parse_subset_json_and_roundtrip(tmp_path):
    s = FrontendSpec.parse("rate=16000, win=512,hop=256,n_fft=512,window=sqrt-hann-periodic")
    assert (s.n_bins, s.feature, s.floor, s.drop_first) == (257, "log10", 1e-12, True)
    assert s.fft_radices() == (4, 4, 4, 4)
    f = tmp_path / "fe.json"
    f.write_text(json.dumps({"rate": 48000, "win": 960, "hop": 480, "n_fft": 1024}))
    b = FrontendSpec.parse(str(f))
    assert b.n_bins == 513 and b.window == "sqrt-hann"
    assert FrontendSpec.from_json(json.loads(json.dumps(b.to_json()))) == b
    assert FrontendSpec.parse("drop_first=false,feature=ln").drop_first is False
    assert np.allclose(FrontendSpec.parse("window=hann-periodic,win=8,n_fft=16,hop=4")
                       .window_values(), np.hanning(9)[:-1])
    assert fft_plan(480) == (4, 4, 2, 3, 5) and fft_plan(7) is None


@pytest.mark.parametrize("text, words", [
    ("hop=400", "hop 400 must be at least 1 and less than win 320"),
    ("n_fft=256", "n_fft 256 is shorter than win 320"),
    ("n_fft=322", "n_fft 322 is not supported"),
    ("n_fft=336", "n_fft 336 is not supported"),  # 168 = 2^3 3 7
    ("rate=44100", "rate 44100 is not supported"),
    ("window=kaiser", "window 'kaiser' is not one of"),
    ("feature=db", "feature 'db' is not one of"),
    ("mask_min=0", "need 0 < mask_min"),
    ("floor=-1", "floor -1.0 must be in"),
    ("colour=red", "unknown key 'colour'"),
    ("win=3.5", "win='3.5' is not a valid int"),
    ("drop_first=maybe", "drop_first='maybe' is not a valid bool"),
    ("win", "no such front-end file"),
    ('{"win": "512"}', "win='512' is not a valid int"),
    ("{oops", "not valid JSON"),
])
def test_refusals_are_one_line(text, words):
    with pytest.raises(NsconvError) as err:
        FrontendSpec.parse(text)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_npz_with_a_front_end_round_trips(tmp_path):
    from nsconv.model import assets
    from nsconv.model.netspec import NetSpec

    base = NetSpec.load(assets.resolve_model("dynamic-nsnet2"))
    assert base.frontend == DEFAULT  # a file written before front ends were stored
    fe = FrontendSpec.parse("window=hann,feature=ln,floor=1e-10,mask_min=0.001")
    spec = NetSpec(base.input_size, base.layers, base.backbone, base.exits, frontend=fe)
    spec.save(tmp_path / "m.npz")
    assert NetSpec.load(tmp_path / "m.npz").frontend == fe


def test_convert_refuses_a_feature_count_mismatch(tmp_path):
    from nsconv.quant.convert import convert

    with pytest.raises(NsconvError) as err:
        convert("nsnet2-baseline", tmp_path / "out", log=lambda *_: None,
                frontend=FrontendSpec.parse("win=512,hop=256,n_fft=512"))
    assert "model takes 161 features per frame" in str(err.value)
    assert "gives 257" in str(err.value)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- C vs numpy


def _project(spec: FrontendSpec, directory: Path) -> Path:
    """The front-end sources with the two files generated for spec."""
    fe = directory / "frontend"
    fe.mkdir(parents=True)
    for p in (fwbuild.FIRMWARE / "frontend").glob("*.[ch]"):
        shutil.copyfile(p, fe / p.name)
    write_frontend(spec, fe)
    return fe


def _build(spec: FrontendSpec, directory: Path, target: str = "host",
           sanitize: bool = False) -> Path:
    fe = directory / "frontend"
    if not fe.is_dir():
        fe = _project(spec, directory)
    srcs = tuple(fe / f for f in ("nsn_frontend.c", "nsn_rfft.c", "nsn_frontend_tables.c"))
    return fwbuild.build(target, directory / f"build-{target}{'-asan' if sanitize else ''}",
                         "frontend_harness",
                         srcs + (fwbuild.HARNESS_DIR / "frontend_harness.c",), includes=(fe,),
                         extra_cflags=fwbuild.make_variable("NSN_FRONTEND_CFLAGS", target),
                         sanitize=sanitize)


def _inputs(spec: FrontendSpec, d: Path) -> list[str]:
    """The real clip at the spec's rate (resample_poly, 16-bit) and a varied mask."""
    write_wav(d / "in.wav", read_wav_resampled(DATA / CLIP, spec.rate), spec.rate)
    x = read_wav(d / "in.wav", spec)
    feat = frontend.features(frontend.stft(x, spec), spec)
    rng = np.random.default_rng(spec.n_fft)
    floor = np.percentile(feat, 20, axis=0)
    gain = 1 / (1 + np.exp(-(feat - floor - 1.0))) + rng.normal(0, 0.05, feat.shape)
    mask = _quantize_exact(np.clip(gain, 0, 1), *MASK_Q)
    mask[3], mask[4] = -128, 127
    mask.tofile(d / "mask.s8")
    n = spec.n_fft
    frames = [rng.standard_normal(n), rng.standard_normal(n) * 1e-4, np.eye(1, n, 7)[0],
              np.ones(n), np.resize([1.0, -1.0], n)]
    np.asarray(frames, dtype=np.float32).tofile(d / "frames.f32")
    return ["stream", "in.wav", "mask.s8", _bits(FEATURE_Q[0]), str(FEATURE_Q[1]),
            _bits(MASK_Q[0]), str(MASK_Q[1])]


@pytest.fixture(scope="module", params=list(SPECS))
def host_run(request, tmp_path_factory):
    spec = FrontendSpec.parse(SPECS[request.param])
    d = tmp_path_factory.mktemp(request.param)
    exe = _build(spec, d)
    for args in (_inputs(spec, d), ["rfft", "frames.f32"], ["api"]):
        run = fwbuild.run_host(exe, args, d)
        assert run.returncode == 0, run.stdout + run.stderr
    return spec, d


def test_rfft_matches_numpy(host_run):
    spec, d = host_run
    n = spec.n_fft
    frames = np.fromfile(d / "frames.f32", np.float32).reshape(-1, n)
    got = np.fromfile(d / "rfft.f32", np.float32).reshape(len(frames), spec.n_bins, 2)
    got = got[..., 0] + 1j * got[..., 1]
    ref = np.fft.rfft(frames.astype(np.float64), axis=1)
    rel = np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)
    assert rel.max() < 1e-6, rel
    inverse = np.fromfile(d / "irfft.f32", np.float32).reshape(len(frames), n)
    ref_inv = np.fft.irfft(got.astype(np.complex128), n, axis=1) * n
    assert (np.abs(inverse - ref_inv).max(axis=1) / np.abs(ref_inv).max(axis=1)).max() < 1e-6


def test_stream_matches_numpy(host_run):
    spec, d = host_run
    x = read_wav(d / "in.wav", spec)
    stft = frontend.stft(x, spec)
    frames, bins = stft.shape
    assert frames == frontend.num_frames(len(x), spec) and bins == spec.n_bins

    c_spec = np.fromfile(d / "spectrum.f32", np.float32).reshape(frames, bins, 2)
    c_spec = c_spec[..., 0] + 1j * c_spec[..., 1]
    norm = np.linalg.norm(stft, axis=1, keepdims=True)
    assert (np.abs(c_spec - stft) / np.maximum(norm, 1e-30)).max() < 1e-6

    feat = frontend.features(stft, spec)
    c_feat = np.fromfile(d / "logpow.f32", np.float32).reshape(frames, bins)
    per_decade = np.log(10) if spec.feature == "ln" else 1.0
    magnitude = np.maximum(np.abs(stft), np.sqrt(spec.floor))
    allowed = (2 * np.log10(1 + 1e-6 * norm / magnitude) + 2e-6) * per_decade
    assert np.all(np.abs(c_feat - feat) <= allowed)

    q_c = np.fromfile(d / "features.s8", np.int8).reshape(frames, bins)
    q_np = _quantize_exact(feat, *FEATURE_Q)
    lo = np.minimum(c_feat, feat) / FEATURE_Q[0]
    hi = np.maximum(c_feat, feat) / FEATURE_Q[0]
    differ = q_c != q_np
    assert not np.any(differ & ~(np.floor(hi - 0.5) + 0.5 >= lo))  # only at k + 0.5 boundaries
    # Resampled audio has no content above the source's 8 kHz: at 48 kHz two thirds of the
    # bins lie 1e-8 and more below the frame energy, where the float32 FFT's absolute error
    # moves the feature most; count boundary crossings separately there.
    quiet = np.abs(stft) ** 2 < 1e-8 * norm**2
    print(f"\n{spec.describe()}: int8 features at rounding boundaries: "
          f"{(differ & ~quiet).sum()} of {(~quiet).sum()} bins, "
          f"{(differ & quiet).sum()} of {quiet.sum()} quiet bins")
    assert (differ & ~quiet).sum() <= 1e-3 * (~quiet).sum()
    assert differ.sum() <= 1e-2 * differ.size

    mask = np.fromfile(d / "mask.s8", np.int8).reshape(frames, bins)
    gain = frontend.dequantize(mask, *MASK_Q)
    y = frontend.istft(frontend.apply_mask(stft, gain, spec), spec)
    c_y = np.fromfile(d / "out.f32", np.float32)
    assert len(c_y) == len(y) == spec.hop * (frames - 1) + spec.win
    snr = 10 * np.log10(np.sum(y**2) / np.sum((c_y - y) ** 2))
    print(f"\n{spec.describe()}: {frames} frames, {differ.sum()} of {differ.size} int8 "
          f"features at rounding boundaries, resynthesis SNR against numpy {snr:.1f} dB")
    assert snr >= 100
    c_y16 = np.fromfile(d / "out.s16", np.int16)
    np.testing.assert_array_equal(
        c_y16, np.clip(_round_half_away(c_y * np.float32(32768)), -32768, 32767))

    # the numpy Streamer gives the same samples hop by hop
    streamer = frontend.Streamer(spec)
    total = frames + (1 if spec.drop_first else 0)
    padded = np.concatenate([x, np.zeros(total * spec.hop - len(x))])
    out, k = [], 0
    for i in range(0, len(padded), spec.hop):
        r = streamer.push(padded[i : i + spec.hop])
        if r is not None:
            out.append(streamer.synthesize(frontend.apply_mask(r[0], gain[k], spec)))
            k += 1
    out.append(streamer.flush())
    assert k == frames and np.max(np.abs(np.concatenate(out) - c_y)) < 1e-5


def test_sanitizers_clean_and_same_bits(tmp_path):
    """ASan + UBSan on the most unusual plan (radix 3, tail longer than a hop, no drop)."""
    spec = FrontendSpec.parse(SPECS["8k-240-ln"])
    _project(spec, tmp_path)
    plain, asan = _build(spec, tmp_path), _build(spec, tmp_path, sanitize=True)
    outs = {}
    for name, exe in (("plain", plain), ("asan", asan)):
        d = tmp_path / name
        d.mkdir()
        for args in (_inputs(spec, d), ["rfft", "frames.f32"], ["api"]):
            run = fwbuild.run_host(exe, args, d)
            assert run.returncode == 0 and not run.stderr, run.stdout + run.stderr
        outs[name] = d
    for name in STREAM_OUTPUTS + ("rfft.f32", "irfft.f32"):
        assert (outs["asan"] / name).read_bytes() == (outs["plain"] / name).read_bytes(), name


@pytest.mark.skipif(not (fwbuild.HAVE_ARM_GCC and fwbuild.HAVE_QEMU),
                    reason="arm-none-eabi-gcc and qemu-system-arm required")
def test_cortex_m4_byte_identical_to_host(tmp_path):
    spec = FrontendSpec.parse(SPECS["48k-960-1024"])
    _project(spec, tmp_path)
    exe = _build(spec, tmp_path)
    elf = _build(spec, tmp_path, "mps2-an386")
    host, arm = tmp_path / "host", tmp_path / "arm"
    for d in (host, arm):
        d.mkdir()
        args = _inputs(spec, d)
    assert fwbuild.run_host(exe, args, host).returncode == 0
    run = fwbuild.run_qemu(boards.board("mps2-an386"), elf, " ".join(args), cwd=arm)
    assert run.returncode == 0, run.stdout + run.stderr
    for name in STREAM_OUTPUTS:
        assert (arm / name).read_bytes() == (host / name).read_bytes(), name


def test_generated_tables_reproducible_and_default_committed(tmp_path):
    write_frontend(DEFAULT, tmp_path)
    for name in ("nsn_frontend_tables.c", "nsn_frontend_config.h"):
        assert (tmp_path / name).read_text() == (fwbuild.FIRMWARE / "frontend" / name).read_text()
    spec = FrontendSpec.parse(SPECS["16k-512"])
    write_frontend(spec, tmp_path)
    text = (tmp_path / "nsn_frontend_config.h").read_text()
    assert "#define NSN_RFFT_N 512" in text and "stage_radix4((buf), 64)" in text


def test_onnx_metadata_front_end(tmp_path):
    """An exporter's metadata_props["nsconv.frontend"] is the model's front end."""
    import onnx
    from fuzzing import tiny_nsnet_onnx
    from nsconv.audio.spec import ONNX_METADATA_KEY
    from nsconv.quant.convert import load_model, model_frontend

    fe = FrontendSpec.parse(SPECS["16k-512"])
    model = onnx.load_from_string(tiny_nsnet_onnx(bins=fe.n_bins))
    plain = tmp_path / "plain.onnx"
    onnx.save(model, plain)
    prop = model.metadata_props.add()
    prop.key, prop.value = ONNX_METADATA_KEY, json.dumps(fe.to_json())
    onnx.save(model, tmp_path / "m.onnx")
    assert FrontendSpec.from_onnx(tmp_path / "m.onnx") == fe
    assert model_frontend(*load_model(tmp_path / "m.onnx")) == fe
    assert FrontendSpec.from_onnx(plain) is None
    assert model_frontend(*load_model(plain)) == DEFAULT
    prop.value = '{"hop": 999}'
    onnx.save(model, tmp_path / "bad.onnx")
    with pytest.raises(NsconvError, match="bad.onnx: front end: hop 999"):
        FrontendSpec.from_onnx(tmp_path / "bad.onnx")


def test_convert_verify_enhance_follow_the_front_end(tmp_path):
    """An 8 kHz model (front end from its ONNX metadata): calibration on the bundled clips
    resampled to 8 kHz, the front end stored in the manifest and model.npz, verify bit-exact
    on resampled audio, enhance at 8 kHz, 16 kHz audio refused in one line."""
    import onnx
    from fuzzing import tiny_nsnet_onnx
    from nsconv.audio.spec import ONNX_METADATA_KEY
    from nsconv.check.engine import Enhancer
    from nsconv.check.verify import verify
    from nsconv.model.netspec import NetSpec
    from nsconv.quant.convert import convert

    fe = FrontendSpec.parse("rate=8000,win=256,hop=128,n_fft=256,window=hann-periodic")
    model = onnx.load_from_string(tiny_nsnet_onnx(bins=fe.n_bins, hidden=8))
    prop = model.metadata_props.add()
    prop.key, prop.value = ONNX_METADATA_KEY, json.dumps(fe.to_json())
    onnx.save(model, tmp_path / "m8k.onnx")
    m = convert(tmp_path / "m8k.onnx", tmp_path / "out", log=lambda *_: None)
    assert m.frontend == fe
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["frontend"]["n_bins"] == 129
    assert NetSpec.load(tmp_path / "out" / m.model_file).frontend == fe
    rep = verify(tmp_path / "out", frames=40)
    assert rep.ok
    write_wav(tmp_path / "in8k.wav", read_wav_resampled(DATA / CLIP, 8000), 8000)
    x = read_wav(tmp_path / "in8k.wav", fe)
    enh = Enhancer(tmp_path / "out", None, "tflm")
    assert enh.frontend == fe
    y = enh.enhance(x)
    assert len(y) == len(x) and 0 < np.std(y) < np.std(x)
    with pytest.raises(NsconvError, match="sample rate is 16000 Hz, the model's front end needs "
                                          "8000 Hz"):
        verify(tmp_path / "out", frames=5, audio=[DATA / CLIP])
