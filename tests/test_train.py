# SPDX-License-Identifier: Apache-2.0
"""Dynamic nsNet2 model family (head styles a/b/c, Keras and ONNX forms) and training smoke runs.

The training runs are tiny (a few steps of short mixtures): they check the recipe's mechanics
(data split, frozen layers, structural zeros, float16 storage, the model loads and converts),
not quality; the committed model's quality is checked in test_evaluate.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA
from nsconv.audio import frontend
from nsconv.errors import NsconvError
from nsconv.model import dynamic
from nsconv.model.netspec import NetSpec
from nsconv.model.stepmodel import FloatStepper


@pytest.fixture(scope="module")
def feats():
    from nsconv.audio.wav import read_wav

    x = read_wav(DATA / "0072_noisy.wav")[:8000]
    return frontend.features(frontend.stft(x))


TRAIN_AUDIO = DATA / "train"  # the small committed corpus (tests/data/SOURCES.md)


@pytest.fixture(scope="module")
def corpus():
    from nsconv.train.trainer import held_out_names, load_corpus

    return load_corpus(TRAIN_AUDIO, held_out_names(DATA))


# ------------------------------------------------------------------------------ model family


@pytest.mark.parametrize("style", ["a", "b", "c"])
def test_family_layout_and_sequence_model_matches_step_model(baseline_spec, feats, style):
    spec = dynamic.build(baseline_spec, style, seed=0)
    assert [e.name for e in spec.exits] == ["gru1", "gru2", "fc2", "final"]
    assert [e.after for e in spec.exits] == ["gru1", "gru2", "fc2", "fc3"]
    assert spec.exits[-1].head == ("fc4",)
    macs = [spec.exit_macs(e) for e in spec.exits]
    assert macs[-1] == 2_681_000
    assert all(b >= a for a, b in zip(macs, macs[1:], strict=False))
    out = dynamic.KerasNet(spec)(feats[None])
    for ex in spec.exits:
        ref = FloatStepper(spec, ex).run(feats)
        np.testing.assert_allclose(np.asarray(out[ex.name])[0], ref, atol=2e-5)


def test_direct_heads_leave_the_backbone_as_it_is(baseline_spec):
    spec = dynamic.build(baseline_spec, "direct")
    for name in baseline_spec.layers:
        assert spec.layers[name] is baseline_spec.layers[name]
    assert spec.exits[0].head == ("exit_gru1_mask",)
    assert spec.layers["exit_gru1_mask"].weight.shape == (400, 161)


def test_split_heads_copy_the_next_layer(baseline_spec):
    spec = dynamic.build(baseline_spec, "split")
    assert spec.exits[0].head == ("exit_gru1_gru2", "exit_gru1_mask")
    np.testing.assert_array_equal(spec.layers["exit_gru1_gru2"].r, baseline_spec.layers["gru2"].r)
    assert spec.layers["exit_fc2_fc3"].weight.shape == (600, 600)


def test_channel_split_divides_the_stage_output(baseline_spec):
    spec = dynamic.build(baseline_spec, "channel", channel_fraction=0.25)
    split = spec.meta["channel_split"]
    assert [len(split[s]) for s in ("gru1", "gru2", "fc2")] == [100, 100, 150]
    zeros = dynamic.structural_zeros(spec)
    for stage, nxt in (("gru1", "gru2"), ("gru2", "fc2"), ("fc2", "fc3")):
        chans = np.array(split[stage])
        rest = np.setdiff1d(np.arange(spec.layers[stage].out_size), chans)
        head = spec.layers[dynamic.mask_layer_name(stage)].weight
        assert not head[rest].any() and head[chans].any()  # the exit reads only its channels
        onward = spec.layers[nxt]
        w_in = onward.weight if hasattr(onward, "weight") else onward.w.T
        assert not w_in[chans].any() and w_in[rest].any()  # the onward path only the rest
        assert nxt in zeros


def test_unknown_style_is_refused(baseline_spec):
    with pytest.raises(NsconvError, match="head style"):
        dynamic.build(baseline_spec, "d")


def test_meta_and_float16_storage_round_trip(baseline_spec, tmp_path):
    spec = dynamic.round_weights(dynamic.build(baseline_spec, "c"))
    p16, p32 = tmp_path / "m16.npz", tmp_path / "m32.npz"
    spec.save(p16, weight_dtype=np.float16, compressed=True)
    spec.save(p32)
    assert p16.stat().st_size < 0.55 * p32.stat().st_size
    back = NetSpec.load(p16)
    assert back.meta["head_style"] == "channel"
    assert back.meta["channel_split"] == spec.meta["channel_split"]
    for name, layer in spec.layers.items():
        a = getattr(layer, "weight", getattr(layer, "w", None))
        b = getattr(back.layers[name], "weight", getattr(back.layers[name], "w", None))
        np.testing.assert_array_equal(a, b)  # float16 storage of float16-rounded weights: exact


# ------------------------------------------------------------------------------ import forms


@pytest.mark.parametrize("style", ["a", "b"])
def test_keras_and_onnx_forms_import_to_the_same_network(baseline_spec, feats, tmp_path, style):
    from nsconv.model.onnx_import import import_onnx

    spec = dynamic.build(baseline_spec, style, seed=3)
    dynamic.to_keras_model(spec).save(tmp_path / "m.keras")
    from_keras = dynamic.import_keras(tmp_path / "m.keras")
    dynamic.export_onnx(spec, tmp_path / "m.onnx")
    from_onnx = import_onnx(tmp_path / "m.onnx")
    f = feats[:40]
    for imported in (from_keras, from_onnx):
        assert [e.name for e in imported.exits] == ["gru1", "gru2", "fc2", "final"]
        assert [imported.exit_macs(e) for e in imported.exits] == \
            [spec.exit_macs(e) for e in spec.exits]
        for ex in spec.exits:
            ref = FloatStepper(spec, ex).run(f)
            got = FloatStepper(imported, imported.exit(ex.name)).run(f)
            np.testing.assert_allclose(got, ref, atol=1e-6)


def test_keras_import_refuses_other_layers(tmp_path):
    import keras

    x = keras.Input((None, 161))
    y = keras.layers.LSTM(8, return_sequences=True)(x)
    y = keras.layers.Dense(161, activation="sigmoid")(y)
    with pytest.raises(NsconvError, match="outside the nsNet2 family"):
        dynamic.import_keras(keras.Model(x, y))


# ------------------------------------------------------------------------------ data and loss


def test_evaluation_utterances_are_held_out(corpus):
    from nsconv.train.trainer import held_out_names, load_corpus

    held = held_out_names(DATA)
    assert held == {"0072", "0398", "0523", "p232_043", "p232_052", "p257_418"}
    used = [n for n, _ in corpus.train_speech + corpus.val_speech
            + corpus.train_noise + corpus.val_noise]
    for name in used:
        assert not any(h in name for h in held), name
    speech = sorted(n for n, _ in corpus.train_speech + corpus.val_speech)
    # the speech of the held-out VoiceBank speaker p232 is not used, the noise of its pair is
    assert speech == ["arctic/cmu_arctic_us_aew_a0001.wav", "arctic/cmu_arctic_us_aew_a0002.wav",
                      "arctic/cmu_arctic_us_axb_a0004.wav", "arctic/cmu_arctic_us_axb_a0006.wav",
                      "dns3/0015_clean.wav"]
    noise = {n for n, _ in corpus.train_noise + corpus.val_noise}
    assert noise == {"dns3/0015_noisy.wav", "vbd/p232_010_noisy.wav",
                     "noise/doing_the_dishes.wav", "noise/running_tap.wav"}
    train = {n for n, _ in corpus.train_speech}
    val = {n for n, _ in corpus.val_speech}
    assert train and val and not train & val  # split by utterance
    # an utterance named in the held-out folder is left out even when it is in the corpus
    again = load_corpus(TRAIN_AUDIO, {"0015"})
    assert "dns3/0015_clean.wav" not in {n for n, _ in again.train_speech + again.val_speech}


def test_training_data_is_an_explicit_argument(tmp_path, monkeypatch, baseline_onnx):
    from nsconv.train.trainer import train

    monkeypatch.delenv("NSCONV_AUDIO", raising=False)
    with pytest.raises(NsconvError, match="--audio"):
        train(baseline_onnx, tmp_path / "m.npz", held_out=DATA, **SMOKE)
    with pytest.raises(NsconvError, match="--held-out"):
        train(baseline_onnx, tmp_path / "m.npz", audio=TRAIN_AUDIO, **SMOKE)
    with pytest.raises(NsconvError, match="training audio folder not found"):
        train(baseline_onnx, tmp_path / "m.npz", audio=tmp_path / "none", held_out=DATA, **SMOKE)
    with pytest.raises(NsconvError, match="held-out evaluation folder not found"):
        train(baseline_onnx, tmp_path / "m.npz", audio=TRAIN_AUDIO, held_out=tmp_path / "none",
              **SMOKE)
    assert not (tmp_path / "m.npz").exists()


def test_mixtures_have_the_drawn_snr_and_level():
    from nsconv.train.trainer import mix

    rng = np.random.default_rng(0)
    speech = np.random.default_rng(1).standard_normal(16000) * 0.1
    noise = np.random.default_rng(2).standard_normal(40000) * 0.3
    for _ in range(20):
        clean, noisy = mix(rng, speech, noise, 16000, (-5, 20), (-35, -15))
        nz = noisy - clean
        snr = 10 * np.log10(np.mean(clean**2) / np.mean(nz**2))
        level = 20 * np.log10(np.sqrt(np.mean(noisy**2)))
        assert -5.01 <= snr <= 20.01
        assert -35.01 <= level <= -15.0 + 1e-6 or np.max(np.abs(noisy)) >= 0.98
    short = np.ones(4000) * 0.1  # shorter than the crop: placed in silence
    clean, _ = mix(rng, short, noise, 16000, (0, 0), (-20, -20))
    assert np.count_nonzero(clean) == 4000


def test_compressed_loss_is_zero_for_the_ideal_mask():
    from nsconv.train.trainer import compressed_loss, distill_loss, spectral_batch

    rng = np.random.default_rng(0)
    Y = (rng.standard_normal((1, 30, 161)) + 1j * rng.standard_normal((1, 30, 161))) * 0.01
    ideal = rng.uniform(0.05, 1.0, Y.shape)
    S = ideal * Y  # clean = a real gain on the noisy spectrum: the ideal mask reaches it

    def comp(X):
        return X * np.abs(X) ** -0.7
    b = {"s_re": comp(S).real, "s_im": comp(S).imag, "y_re": comp(Y).real, "y_im": comp(Y).imag}
    b = {k: v.astype(np.float32) for k, v in b.items()}
    m = ideal.astype(np.float32)
    assert float(compressed_loss(m, b)[0]) < 1e-6
    worse = float(compressed_loss(np.clip(m * 1.3, 0, 1), b)[0])
    assert worse > 1e-3
    assert float(distill_loss(m, m, b)[0]) == 0.0
    assert float(distill_loss(m * 0.5, m, b)[0]) > 0

    x = rng.standard_normal(4000) * 0.1
    batch = spectral_batch([(0.5 * x, x)], 0.3)
    np.testing.assert_array_equal(batch["feats"][0], frontend.features(frontend.stft(x)))
    np.testing.assert_allclose(np.hypot(batch["s_re"], batch["s_im"]),
                               0.5**0.3 * np.hypot(batch["y_re"], batch["y_im"]), rtol=1e-4)


# ------------------------------------------------------------------------------ training runs

SMOKE = dict(epochs=1, steps_per_epoch=2, batch=2, seconds=0.5, val_mixtures=2, progress=False,
             log=lambda *_: None)
DATA_ARGS = dict(audio=TRAIN_AUDIO, held_out=DATA)


def _array(layer):
    return getattr(layer, "weight", getattr(layer, "w", None))


@pytest.mark.parametrize("style", ["a", "c"])
def test_layerwise_smoke(corpus, tmp_path, baseline_onnx, style):
    from nsconv.model.onnx_import import import_onnx
    from nsconv.train.trainer import train

    # style c without distillation: its separate teacher network is the joint test's business
    out = train(baseline_onnx, tmp_path / "m.npz", style=style, scheme="layerwise", seed=0,
                **SMOKE, **DATA_ARGS, **({"distill": 0.0} if style == "c" else {}))
    spec = NetSpec.load(out)
    base = dynamic.round_weights(dynamic.build(import_onnx(baseline_onnx), style))
    assert spec.meta["training"]["scheme"] == "layerwise"
    assert spec.meta["head_style"] == dynamic.style_name(style)
    with np.load(out) as z:
        assert z["fc1/weight"].dtype == np.float16
    if style == "a":
        for name in ("fc1", "gru1", "gru2", "fc2", "fc3", "fc4"):  # frozen: stored backbone
            np.testing.assert_array_equal(_array(spec.layers[name]), _array(base.layers[name]))
        for stage in dynamic.EXIT_STAGES:
            name = dynamic.mask_layer_name(stage)
            assert not np.array_equal(spec.layers[name].weight, base.layers[name].weight)
    else:
        zeros = dynamic.structural_zeros(spec)
        for name, keys in zeros.items():
            for key, z in keys.items():
                arr = getattr(spec.layers[name], key)
                assert not arr[z].any(), (name, key)  # the split survives training
        np.testing.assert_array_equal(spec.layers["fc1"].weight, base.layers["fc1"].weight)
        assert not np.array_equal(spec.layers["gru2"].w, base.layers["gru2"].w)


def test_joint_fine_tuning_smoke(corpus, tmp_path, baseline_onnx, baseline_spec):
    from nsconv.train.trainer import train

    first = tmp_path / "lw.npz"  # fresh heads stand in for a layer-wise model
    dynamic.build(baseline_spec, "a", seed=1).save(first)
    out = train(baseline_onnx, tmp_path / "joint.npz", scheme="joint", init=first, seed=1,
                exit_weights=(1, 1, 1, 2), **SMOKE, **DATA_ARGS)
    a, b = NetSpec.load(first), NetSpec.load(out)
    assert b.meta["training"]["scheme"] == "joint"
    assert b.meta["training"]["recipe"]["exit_weights"] == [1, 1, 1, 2]
    p = _parse_train_command(b.meta["training"]["command"])  # a command the CLI accepts
    assert (p["scheme"], p["init"], p["audio"], p["held_out"]) == ("joint", first, TRAIN_AUDIO,
                                                                   DATA)
    assert (p["epochs"], p["steps_per_epoch"], p["exit_weights"]) == (1, 2, (1, 1, 1, 2))
    for name in ("fc1", "gru1", "fc4", "exit_gru1_mask"):  # everything trains
        assert not np.array_equal(_array(a.layers[name]), _array(b.layers[name])), name


def test_bad_arguments_are_refused(tmp_path, baseline_onnx):
    from nsconv.train.trainer import train

    with pytest.raises(NsconvError, match="scheme"):
        train(baseline_onnx, tmp_path / "m.npz", scheme="greedy", **SMOKE, **DATA_ARGS)
    with pytest.raises(NsconvError, match=".npz"):
        train(baseline_onnx, tmp_path / "m.onnx", **SMOKE, **DATA_ARGS)
    with pytest.raises(NsconvError, match="exit weights"):
        train(baseline_onnx, tmp_path / "m.npz", exit_weights=(1, 1), **SMOKE, **DATA_ARGS)


# ------------------------------------------------------------------------------ command line


def _parse_train_command(command: str) -> dict:
    """The parameters `nsconv train` gets from a recorded command line (click parses it)."""
    import shlex

    from nsconv.cli import main

    args = shlex.split(command)
    assert args[:2] == ["nsconv", "train"], command
    return main.commands["train"].make_context("train", args[2:]).params


def test_recorded_command_line_is_accepted_by_the_cli(tmp_path):
    from nsconv.train.trainer import Recipe, _command_line

    recipe = Recipe(style="channel", scheme="joint", seed=7, epochs=3, steps_per_epoch=5,
                    batch=4, seconds=1.5, lr=2e-3, backbone_lr=3e-5, distill=0.5,
                    train_final=True, channel_fraction=0.3, val_mixtures=8, weights="float32",
                    exit_weights=(1.0, 1.0, 1.0, 2.5))
    line = _command_line("nsnet2-baseline", tmp_path / "m.npz", tmp_path / "init.npz", recipe,
                         TRAIN_AUDIO, DATA)
    p = _parse_train_command(line)
    assert (p["model"], p["out"], p["init"]) == ("nsnet2-baseline", tmp_path / "m.npz",
                                                 tmp_path / "init.npz")
    assert (p["audio"], p["held_out"]) == (TRAIN_AUDIO, DATA)
    assert (p["style"], p["scheme"], p["seed"]) == ("channel", "joint", 7)
    assert (p["epochs"], p["steps_per_epoch"], p["batch"], p["seconds"]) == (3, 5, 4, 1.5)
    assert (p["lr"], p["backbone_lr"], p["distill"]) == (2e-3, 3e-5, 0.5)
    assert p["train_final"] is True and p["channel_fraction"] == 0.3 and p["val_mixtures"] == 8
    assert p["weights"] == "float32" and p["exit_weights"] == (1.0, 1.0, 1.0, 2.5)
    # the defaults are left out, and still parse
    p = _parse_train_command(_command_line("nsnet2-baseline", tmp_path / "m.npz", None,
                                           Recipe(), TRAIN_AUDIO, DATA))
    assert p["lr"] is None and p["train_final"] is False and p["init"] is None


def test_cli_refuses_training_without_audio_in_one_line(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NSCONV_AUDIO"}
    cmd = [sys.executable, "-m", "nsconv.cli", "train", "-o", str(tmp_path / "m.npz"),
           "--held-out", str(DATA)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == ""  # bad input: status 1, one line on stderr
    assert r.stderr.strip().splitlines() == [
        "nsconv: error: no training audio folder: pass --audio DIR (or set NSCONV_AUDIO)"]
    env["NSCONV_AUDIO"] = str(tmp_path / "gone")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert r.returncode == 1 and "training audio folder not found" in r.stderr
    assert not (tmp_path / "m.npz").exists()


def test_documented_train_commands_are_accepted_by_the_cli():
    """Every `nsconv train` line of the training docs parses (as written) with the CLI."""
    import re

    repo = DATA.parents[1]
    docs = [repo / "docs" / "dynamic_nsnet2.md",
            repo / "toolchain" / "nsconv" / "model" / "data" / "models" / "README.md"]
    found = 0
    for doc in docs:
        text = doc.read_text().replace("\\\n", " ")
        for line in re.findall(r"^(nsconv train .*)$", text, re.M):
            p = _parse_train_command(line)
            assert p["audio"] is not None and p["held_out"] is not None, line
            found += 1
    assert found >= 7
