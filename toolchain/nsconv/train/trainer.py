# SPDX-License-Identifier: Apache-2.0
"""Training Dynamic nsNet2 on CPU: layer-wise on the frozen pretrained backbone, or joint.

Data: noisy mixtures made on the fly from the clean speech and the noise of a training audio
folder given explicitly (`audio`, or $NSCONV_AUDIO; never guessed): each mixture is a random
3 s crop of one clean utterance (shorter ones are placed at a random offset in silence) plus a
random crop of one noise at an SNR drawn uniformly in [-5, 20] dB, scaled to a level drawn
uniformly in [-35, -15] dBFS. Clean utterances are split by utterance into training and
validation (every `VAL_EVERY`-th utterance in name order); the long noises are split in time
(last 20 % for validation), the noise of the clean/noisy pairs (noisy - clean) by pair.
Utterances of the held-out evaluation pairs (the folder `held_out`, also explicit) are never
used.

Loss: the compressed spectral loss of the NSNet2 papers (Braun & Tashev): with c = 0.3 and
X^c = |X|^c e^{j angle X}, per utterance
    L = lambda * mean |S^c - Shat^c|^2 + (1 - lambda) * mean (|S|^c - |Shat|^c)^2,  lambda = 0.3,
Shat = mask * noisy (noisy phase), divided by mean |S^c|^2 of the utterance (level
normalisation, so loud and quiet mixtures weigh the same).

Schemes:
  layerwise -- exit by exit, only that exit's new layers train, everything else is frozen
               (for head styles a/b the backbone is never touched, so the final exit IS the
               pretrained baseline and the three heads, sharing nothing, train in one pass --
               the same as one after the other; for c each phase also trains the backbone
               layer that lost its split-off input channels).
  joint     -- every layer trains, on the weighted sum of the four exit losses (from `init`,
               e.g. a layer-wise model: joint fine-tuning; backbone at a lower learning rate).

The model is stored with float16 weights (`--weights float16`, the default): the backbone is
rounded to float16 *before* training, so the heads are trained on exactly the stored backbone
and the file is the model.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from nsconv.audio import frontend
from nsconv.errors import NsconvError
from nsconv.model import dynamic
from nsconv.model.netspec import Dense, NetSpec

VAL_EVERY = 5
NOISE_VAL_FRACTION = 0.2
SCHEMES = ("layerwise", "joint")


AUDIO_ENV = "NSCONV_AUDIO"


def audio_root(audio: str | Path | None) -> Path:
    """The training audio folder: `audio`, else $NSCONV_AUDIO; refused when neither names a
    folder (no path is guessed from where nsconv is installed)."""
    if audio is None:
        env = os.environ.get(AUDIO_ENV)
        if not env:
            raise NsconvError(f"no training audio folder: pass --audio DIR (or set {AUDIO_ENV})")
        audio = env
    root = Path(audio)
    if not root.is_dir():
        raise NsconvError("training audio folder not found", root)
    return root


def held_out_names(eval_dir: str | Path) -> set[str]:
    """Utterance ids of the evaluation pairs (`<id>_clean.wav`) in eval_dir, never used for
    training. The folder must exist (it may hold no pairs)."""
    eval_dir = Path(eval_dir)
    if not eval_dir.is_dir():
        raise NsconvError("held-out evaluation folder not found", eval_dir)
    return {p.name[: -len("_clean.wav")] for p in eval_dir.glob("*_clean.wav")}


# --------------------------------------------------------------------------------------------
# data


@dataclass
class Corpus:
    train_speech: list[tuple[str, np.ndarray]]
    val_speech: list[tuple[str, np.ndarray]]
    train_noise: list[tuple[str, np.ndarray]]
    val_noise: list[tuple[str, np.ndarray]]

    def describe(self) -> dict:
        def sec(items):
            return round(sum(len(a) for _, a in items) / frontend.SAMPLE_RATE, 1)
        return {"train_speech": [n for n, _ in self.train_speech],
                "val_speech": [n for n, _ in self.val_speech],
                "train_noise": [n for n, _ in self.train_noise],
                "val_noise": [n for n, _ in self.val_noise],
                "seconds": {"train_speech": sec(self.train_speech),
                            "val_speech": sec(self.val_speech),
                            "train_noise": sec(self.train_noise),
                            "val_noise": sec(self.val_noise)}}


def _read(path: Path) -> np.ndarray:
    import soundfile as sf

    x, rate = sf.read(str(path), dtype="float64", always_2d=True)
    if rate != frontend.SAMPLE_RATE:
        raise NsconvError(f"sample rate {rate} Hz, training needs 16 kHz", path)
    return x.mean(axis=1)


def speaker_of(uid: str) -> str | None:
    """VoiceBank-style ids `p232_043` name their speaker (`p232`); others do not."""
    m = re.match(r"^(p\d{3})_\d+", uid)
    return m.group(1) if m else None


def load_corpus(root: str | Path, exclude: set[str],
                exclude_speakers: bool = True) -> Corpus:
    """Clean speech and noise of the training audio folder, split for training/validation.

    `exclude`: utterance ids never used (the evaluation pairs, `held_out_names`); with
    `exclude_speakers` the speech of their speakers is not used either (the noise of such a
    pair still is: it holds no speech)."""
    root = Path(root)
    if not root.is_dir():
        raise NsconvError("training audio folder not found", root)
    speakers = {speaker_of(u) for u in exclude} - {None} if exclude_speakers else set()
    speech: list[tuple[str, np.ndarray]] = []
    pair_noise: list[tuple[str, np.ndarray]] = []
    long_noise: list[tuple[str, np.ndarray]] = []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in (".wav", ".ogg", ".flac") or not p.is_file():
            continue
        rel = p.relative_to(root).as_posix()
        stem = p.name.split(".")[0]
        if rel.startswith("noise/"):
            long_noise.append((rel, _read(p)))
            continue
        if "_noisy" in stem:
            continue
        uid = stem[: -len("_clean")] if stem.endswith("_clean") else stem
        if uid in exclude:
            continue
        clean = _read(p)
        if speaker_of(uid) not in speakers:
            speech.append((rel, clean))
        if stem.endswith("_clean"):
            noisy = sorted(p.parent.glob(f"{uid}_noisy*"))
            # the 0 dB mixture when there is a sweep, else the one pair
            pick = [q for q in noisy if q.stem.endswith("_0dB")] or noisy[:1]
            for q in pick:
                y = _read(q)
                n = min(len(y), len(clean))
                pair_noise.append((q.relative_to(root).as_posix(), y[:n] - clean[:n]))
    if not speech or not (long_noise or pair_noise):
        raise NsconvError("no clean speech or no noise for training", root)
    val_idx = set(range(VAL_EVERY - 1, len(speech), VAL_EVERY))
    train_speech = [s for i, s in enumerate(speech) if i not in val_idx]
    val_speech = [s for i, s in enumerate(speech) if i in val_idx] or speech[-1:]
    train_noise, val_noise = [], []
    for name, x in long_noise:
        cut = int(len(x) * (1 - NOISE_VAL_FRACTION))
        train_noise.append((name, x[:cut]))
        val_noise.append((name, x[cut:]))
    for i, item in enumerate(pair_noise):
        (val_noise if i % VAL_EVERY == VAL_EVERY - 1 else train_noise).append(item)
    return Corpus(train_speech, val_speech, train_noise or val_noise, val_noise or train_noise)


def _crop(rng, x: np.ndarray, n: int) -> np.ndarray:
    if len(x) >= n:
        start = rng.integers(0, len(x) - n + 1)
        return x[start : start + n].copy()
    reps = int(np.ceil(n / len(x))) + 1
    y = np.tile(x, reps)
    start = rng.integers(0, len(x))
    return y[start : start + n].copy()


def mix(rng, speech: np.ndarray, noise: np.ndarray, n: int, snr_db: tuple[float, float],
        level_db: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy) of n samples: speech crop (or speech placed in silence) + noise crop."""
    if len(speech) >= n:
        clean = _crop(rng, speech, n)
        active = clean
    else:
        clean = np.zeros(n)
        start = rng.integers(0, n - len(speech) + 1)
        clean[start : start + len(speech)] = speech
        active = speech
    nz = _crop(rng, noise, n)
    ps = np.mean(active**2) + 1e-12
    pn = np.mean(nz**2) + 1e-12
    snr = rng.uniform(*snr_db)
    nz *= np.sqrt(ps / (pn * 10 ** (snr / 10)))
    noisy = clean + nz
    level = rng.uniform(*level_db)
    g = 10 ** (level / 20) / (np.sqrt(np.mean(noisy**2)) + 1e-12)
    peak = np.max(np.abs(noisy)) * g
    if peak > 0.99:
        g *= 0.99 / peak
    return clean * g, noisy * g


def spectral_batch(pairs: list[tuple[np.ndarray, np.ndarray]], c: float) -> dict:
    """Features and compressed spectra for a batch of (clean, noisy) signals of equal length."""
    feats, s_re, s_im, y_re, y_im = [], [], [], [], []
    for clean, noisy in pairs:
        S = frontend.stft(clean)
        Y = frontend.stft(noisy)
        feats.append(frontend.features(Y))
        Sc = S * np.maximum(np.abs(S), 1e-30) ** (c - 1.0)
        Yc = Y * np.maximum(np.abs(Y), 1e-30) ** (c - 1.0)
        s_re.append(Sc.real), s_im.append(Sc.imag), y_re.append(Yc.real), y_im.append(Yc.imag)

    def st(a):
        return np.stack(a).astype(np.float32)
    return {"feats": st(feats), "s_re": st(s_re), "s_im": st(s_im), "y_re": st(y_re),
            "y_im": st(y_im)}


class Mixer:
    """Batches of on-the-fly mixtures from one speech/noise split."""

    def __init__(self, speech, noise, recipe: Recipe, rng) -> None:
        self.speech, self.noise, self.recipe, self.rng = speech, noise, recipe, rng
        w = np.array([len(a) for _, a in speech], float)
        self.p = np.sqrt(w) / np.sqrt(w).sum()  # long utterances more often, not dominating

    def batch(self, size: int) -> dict:
        r = self.recipe
        n = int(r.seconds * frontend.SAMPLE_RATE)
        pairs = []
        for _ in range(size):
            s = self.speech[self.rng.choice(len(self.speech), p=self.p)][1]
            z = self.noise[self.rng.integers(len(self.noise))][1]
            pairs.append(mix(self.rng, s, z, n, r.snr_db, r.level_db))
        return spectral_batch(pairs, r.loss_c)


# --------------------------------------------------------------------------------------------
# loss


def distill_loss(mask, teacher, b: dict, c: float = 0.3):
    """Compressed spectral loss against the teacher's estimate teacher * noisy, shape (batch,).

    Both estimates keep the noisy phase, so the complex and magnitude terms coincide:
    mean (T^c - M^c)^2 |Y^c|^2, normalised like `compressed_loss`."""
    import tensorflow as tf

    mc = tf.pow(tf.clip_by_value(mask, frontend.MIN_GAIN, 1.0), c)
    tc = tf.pow(tf.clip_by_value(teacher, frontend.MIN_GAIN, 1.0), c)
    y2 = b["y_re"] ** 2 + b["y_im"] ** 2
    s2 = b["s_re"] ** 2 + b["s_im"] ** 2
    return tf.reduce_mean((tc - mc) ** 2 * y2, axis=[1, 2]) / (
        tf.reduce_mean(s2, axis=[1, 2]) + 1e-8)


def compressed_loss(mask, b: dict, c: float = 0.3, lam: float = 0.3):
    """Per-utterance compressed spectral loss, shape (batch,). `b` holds s_re/s_im/y_re/y_im."""
    import tensorflow as tf

    mc = tf.pow(tf.clip_by_value(mask, frontend.MIN_GAIN, 1.0), c)
    d_re = b["s_re"] - mc * b["y_re"]
    d_im = b["s_im"] - mc * b["y_im"]
    s_mag = tf.sqrt(b["s_re"] ** 2 + b["s_im"] ** 2)
    y_mag = tf.sqrt(b["y_re"] ** 2 + b["y_im"] ** 2)
    cplx = tf.reduce_mean(d_re**2 + d_im**2, axis=[1, 2])
    mag = tf.reduce_mean((s_mag - mc * y_mag) ** 2, axis=[1, 2])
    norm = tf.reduce_mean(s_mag**2, axis=[1, 2]) + 1e-8
    return (lam * cplx + (1 - lam) * mag) / norm


# --------------------------------------------------------------------------------------------
# recipe and training


@dataclass
class Recipe:
    style: str = "direct"
    scheme: str = "layerwise"
    seed: int = 0
    epochs: int = 12
    steps_per_epoch: int = 60
    batch: int = 16
    seconds: float = 3.0
    lr: float = 1e-3
    backbone_lr: float = 1e-4
    exit_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    snr_db: tuple[float, float] = (-5.0, 20.0)
    level_db: tuple[float, float] = (-35.0, -15.0)
    loss_c: float = 0.3
    loss_lambda: float = 0.3
    val_mixtures: int = 48
    patience: int = 4
    distill: float = 1.0  # weight of the self-distillation term (teacher: the final exit)
    train_final: bool = False  # layer-wise: also retrain the final head on the frozen backbone
    final_distill: float = 0.0  # distillation weight of the final exit itself (when it trains)
    channel_fraction: float = dynamic.DEFAULT_CHANNEL_FRACTION
    weights: str = "float16"

    def check(self) -> None:
        self.style = dynamic.style_name(self.style)
        if self.scheme not in SCHEMES:
            raise NsconvError(f"unknown training scheme {self.scheme!r} "
                              f"(choose from {', '.join(SCHEMES)})")
        if self.weights not in ("float16", "float32"):
            raise NsconvError(f"weights must be float16 or float32, not {self.weights!r}")
        if min(self.epochs, self.steps_per_epoch, self.batch, self.val_mixtures) < 1 \
                or self.seconds < 0.1:
            raise NsconvError("epochs, steps per epoch, batch, validation mixtures and seconds "
                              "must be positive")


@dataclass
class _Phase:
    name: str
    exits: list[str]
    trainable: set[str]
    weights: dict[str, float] = field(default_factory=dict)


def _phases(spec: NetSpec, recipe: Recipe) -> list[_Phase]:
    names = [e.name for e in spec.exits]
    if recipe.scheme == "joint":
        w = dict(zip(names, recipe.exit_weights, strict=True))
        return [_Phase("joint", names, set(spec.layers), w)]
    modified = set(dynamic.structural_zeros(spec)) & set(spec.backbone)
    owned: set[str] = set()
    phases = []
    for ex in spec.exits:
        path = [n for n in spec.backbone[: spec.backbone.index(ex.after) + 1]]
        new = {n for n in path if n in modified and n not in owned}
        head = set(ex.head)
        if ex.name == spec.exits[-1].name and not new and not recipe.train_final:
            head = set()  # the pretrained head on the untouched backbone stays as it is
        train = new | head
        owned |= train
        if train:
            phases.append(_Phase(ex.name, [ex.name], train, {ex.name: 1.0}))
    if phases and not any(p.trainable & set(spec.backbone) for p in phases):
        # heads on a frozen backbone share nothing: one pass trains them all
        merged = _Phase("heads", [e for p in phases for e in p.exits],
                        set().union(*(p.trainable for p in phases)),
                        {e: 1.0 for p in phases for e in p.exits})
        return [merged]
    return phases


def _val_set(corpus: Corpus, recipe: Recipe) -> list[dict]:
    rng = np.random.default_rng(recipe.seed + 10_000)
    mixer = Mixer(corpus.val_speech, corpus.val_noise, recipe, rng)
    out, left = [], recipe.val_mixtures
    while left > 0:
        n = min(recipe.batch, left)
        out.append(mixer.batch(n))
        left -= n
    return out


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True,
                file=sys.stderr)


def train(model: str | Path = "nsnet2-baseline", out: str | Path = "dynamic-nsnet2.npz", *,
          style: str = "direct", scheme: str = "layerwise", init: str | Path | None = None,
          seed: int = 0, epochs: int | None = None, steps_per_epoch: int | None = None,
          batch: int | None = None, seconds: float | None = None,
          exit_weights: tuple[float, ...] | None = None, lr: float | None = None,
          backbone_lr: float | None = None, distill: float | None = None,
          train_final: bool = False, channel_fraction: float | None = None,
          val_mixtures: int | None = None, weights: str = "float16",
          audio: str | Path | None = None, held_out: str | Path | None = None,
          progress: bool = True, log=print) -> Path:
    """Train a Dynamic nsNet2 into `out` (an .npz that `nsconv convert` takes); returns `out`.

    model: the pretrained baseline (built-in name, .onnx or .npz) whose backbone is used.
    style: head style a/direct, b/split, c/channel. scheme: layerwise | joint.
    init: start from this Dynamic nsNet2 .npz instead of fresh heads (its style is kept), e.g.
      joint fine-tuning of a layer-wise model.
    epochs, steps_per_epoch, batch, seconds (crop length), lr (heads), backbone_lr (backbone
      layers in joint), exit_weights (joint, one per exit), distill (self-distillation weight,
      0 = off), train_final (layer-wise: also retrain the final head), channel_fraction (style
      c), val_mixtures (size of the fixed validation set): None keeps the `Recipe` defaults.
    weights: float16 (default; the file is the model) or float32 storage. audio: the training
      audio folder (default $NSCONV_AUDIO; refused when neither is given).
    held_out: the evaluation folder whose `<id>_clean.wav` utterances (and their VoiceBank
      speakers) are kept out of training; required.
    progress: tqdm bars on stderr; log: one line per phase/epoch. The model's meta records the
      `nsconv train` command line that asks for this run."""
    recipe = Recipe(style=style, scheme=scheme, seed=seed, weights=weights,
                    train_final=train_final)
    for k, v in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch), ("batch", batch),
                 ("seconds", seconds), ("exit_weights", exit_weights), ("lr", lr),
                 ("backbone_lr", backbone_lr), ("distill", distill),
                 ("channel_fraction", channel_fraction), ("val_mixtures", val_mixtures)):
        if v is not None:
            setattr(recipe, k, tuple(v) if k == "exit_weights" else v)
    recipe.check()
    root, held, out = _check_paths(audio, held_out, Path(out))
    import keras
    import tensorflow as tf

    t0 = time.time()
    keras.utils.set_random_seed(seed)
    spec, teacher_spec = _start_model(model, init, recipe)
    source = str(init if init is not None else model)
    if len(recipe.exit_weights) != len(spec.exits):
        raise NsconvError(f"{len(recipe.exit_weights)} exit weights for "
                          f"{len(spec.exits)} exits")

    corpus = load_corpus(root, held)
    d = corpus.describe()
    log(f"data: {len(corpus.train_speech)} training / {len(corpus.val_speech)} validation "
        f"utterances ({d['seconds']['train_speech']} s / {d['seconds']['val_speech']} s), "
        f"{len(corpus.train_noise)} / {len(corpus.val_noise)} noises; "
        f"held out for evaluation: {', '.join(sorted(held)) or 'none'}")
    val = _val_set(corpus, recipe)
    mixer = Mixer(corpus.train_speech, corpus.train_noise, recipe, np.random.default_rng(seed))

    phases = _phases(spec, recipe)
    net = dynamic.KerasNet(spec, trainable=set().union(*(p.trainable for p in phases))
                           if phases else set())
    teacher = None
    if recipe.distill > 0:
        teacher = _teacher(net, phases, teacher_spec)
        log(f"self-distillation from the {'pretrained ' if init is None else ''}final exit, "
            f"weight {recipe.distill}")
    history: dict[str, list] = {}
    best_val: dict[str, float] = {}
    for phase in phases:
        log(f"phase {phase.name}: training {', '.join(sorted(phase.trainable))} "
            f"on exit loss(es) {', '.join(phase.exits)}")
        h, bv = _run_phase(net, phase, recipe, mixer, val, progress, log, tf, keras, teacher)
        history[phase.name] = h
        best_val.update(bv)

    meta = _meta(recipe, source, d, best_val, history, round(time.time() - t0, 1),
                 _command_line(model, out, init, recipe, root, held_out))
    _save(net.to_netspec(meta=meta), out, recipe.weights)
    log(f"wrote {out} ({out.stat().st_size:,} bytes, {recipe.weights} weights) in "
        f"{time.time() - t0:.0f} s")
    return out


def _check_paths(audio, held_out, out: Path) -> tuple[Path, set[str], Path]:
    """(training audio folder, held-out utterance ids, out), or a one-line refusal."""
    root = audio_root(audio)
    if held_out is None:
        raise NsconvError("no held-out evaluation folder: pass --held-out DIR")
    held = held_out_names(held_out)
    if out.suffix != ".npz":
        raise NsconvError("the trained model is an .npz file", out)
    if out.parent and not out.parent.exists():
        raise NsconvError("output directory does not exist", out.parent)
    return root, held, out


def _meta(recipe: Recipe, source: str, data: dict, best_val: dict, history: dict,
          seconds: float, command: str) -> dict:
    """The trained model's meta: family, head style and the record of its training."""
    return {
        "family": "dynamic-nsnet2",
        "head_style": recipe.style,
        "training": {
            "scheme": recipe.scheme, "source": source,
            "recipe": {k: (list(v) if isinstance(v, tuple) else v)
                       for k, v in asdict(recipe).items()},
            "data": data,
            "loss": f"compressed spectral, c={recipe.loss_c}, lambda={recipe.loss_lambda}, "
                    "per-utterance normalised",
            "best_val_loss": {k: round(v, 5) for k, v in best_val.items()},
            "history": history,
            "seconds": seconds,
            "command": command,
        },
    }


def _start_model(model, init, recipe: Recipe) -> tuple[NetSpec, NetSpec]:
    """(the model to train, the network whose final exit teaches): `init` as it is, or fresh
    heads of `recipe.style` on the base model (its weights rounded to float16 first when the
    result is stored so)."""
    from nsconv.quant.convert import load_model

    if init is not None:
        spec = NetSpec.load(Path(init))
        if len(spec.exits) != 4:
            raise NsconvError("init model is not a 4-exit Dynamic nsNet2", Path(init))
        recipe.style = spec.meta.get("head_style", recipe.style)
        return spec, spec
    path, base = load_model(model)
    if not isinstance(base, NetSpec):
        raise NsconvError("the base model is not of the nsNet2 family", path)
    if recipe.weights == "float16":
        base = dynamic.round_weights(base)
    spec = dynamic.build(base, recipe.style, seed=recipe.seed,
                         channel_fraction=recipe.channel_fraction)
    return spec, base


def _teacher(net, phases: list[_Phase], tspec: NetSpec) -> tuple:
    """How the final exit teaches: ("shared", exit) when it is computed by the trained network
    itself, ("separate", network, exit) when it needs its own copy."""
    spec = net.spec
    final = spec.exits[-1]
    path = set(spec.backbone[: spec.backbone.index(final.after) + 1]) | set(final.head)
    touched = set().union(*(p.trainable for p in phases)) | set(net.zeros)
    if not (path & touched):
        return ("shared", final.name)  # the final exit never changes: use it as it is
    if not (path & touched) - set(final.head) and all(
            isinstance(tspec.layers[n], Dense) for n in tspec.exits[-1].head):
        # only the final head trains: its pretrained copy on the shared backbone teaches
        net.add_teacher([tspec.layers[n] for n in tspec.exits[-1].head], final.after)
        return ("shared", dynamic.TEACHER)
    return ("separate", dynamic.KerasNet(tspec), tspec.exits[-1].name)


def _save(trained: NetSpec, out: Path, weights: str) -> None:
    """Write the model through a temporary file that must load before it replaces `out`."""
    dtype = np.float16 if weights == "float16" else np.float32
    if weights == "float16":
        trained = dynamic.round_weights(trained)
    tmp = out.with_name(f".{out.name}.part")
    trained.save(tmp, weight_dtype=dtype, compressed=True)
    NetSpec.load(tmp)  # refuse to leave a file that does not load
    tmp.replace(out)


def _command_line(model, out: Path, init, recipe: Recipe, audio: Path, held_out) -> str:
    """The `nsconv train` command line that asks for this recipe (a test parses it with the
    CLI)."""
    args = ["nsconv", "train", str(model), "-o", str(out), "--style", recipe.style,
            "--scheme", recipe.scheme, "--seed", str(recipe.seed), "--audio", str(audio),
            "--held-out", str(held_out)]
    if init is not None:
        args += ["--init", str(init)]
    default = Recipe()
    for key in ("epochs", "steps_per_epoch", "batch", "seconds", "lr", "backbone_lr",
                "distill", "channel_fraction", "val_mixtures", "weights"):
        v = getattr(recipe, key)
        if v != getattr(default, key):
            args += [f"--{key.replace('_', '-')}", str(v)]
    if tuple(recipe.exit_weights) != tuple(default.exit_weights):
        args += ["--exit-weights", ",".join(f"{w:g}" for w in recipe.exit_weights)]
    if recipe.train_final:
        args.append("--train-final")
    return shlex.join(args)


_KEYS = ("feats", "s_re", "s_im", "y_re", "y_im")


def _phase_steps(net, phase: _Phase, recipe: Recipe, tf, keras, teacher):
    """The compiled training step and validation loss of a phase, and its learning rates:
    (step(batch) -> (total, losses), evaluate(batch) -> summed loss per exit, lr, bb_lr)."""
    for name, layer in net.layers.items():
        layer.trainable = name in phase.trainable
    backbone = set(net.spec.backbone)
    bb_vars = [v for n in sorted(phase.trainable & backbone)
               for v in net.layers[n].trainable_variables]
    head_vars = [v for n in sorted(phase.trainable - backbone)
                 for v in net.layers[n].trainable_variables]
    lr = tf.Variable(recipe.lr, trainable=False, dtype=tf.float32)
    bb_lr = tf.Variable(recipe.backbone_lr if recipe.scheme == "joint" else recipe.lr,
                        trainable=False, dtype=tf.float32)
    opt_head = keras.optimizers.Adam(learning_rate=lambda: lr) if head_vars else None
    opt_bb = keras.optimizers.Adam(learning_rate=lambda: bb_lr) if bb_vars else None
    if opt_head:
        opt_head.build(head_vars)
    if opt_bb:
        opt_bb.build(bb_vars)
    exits = phase.exits
    wsum = sum(phase.weights[e] for e in exits)
    c, lam = recipe.loss_c, recipe.loss_lambda
    spec_sig = {k: tf.TensorSpec((None, None, net.spec.input_size), tf.float32) for k in _KEYS}

    gamma = recipe.distill
    final_name = net.spec.exits[-1].name

    def exit_losses(b, training: bool) -> dict:
        """Per exit, per utterance: compressed loss (+ gamma * distillation loss)."""
        want = list(exits)
        if teacher is not None and teacher[0] == "shared" and teacher[1] not in want:
            want.append(teacher[1])
        masks = net(b["feats"], want, training=training)
        t = None
        if teacher is not None:
            if teacher[0] == "shared":
                t = tf.stop_gradient(masks[teacher[1]])
                t_name = teacher[1]
            else:
                t = tf.stop_gradient(teacher[1](b["feats"], [teacher[2]])[teacher[2]])
                t_name = None
        out = {}
        for e in exits:
            loss = compressed_loss(masks[e], b, c, lam)
            g = recipe.final_distill if e == final_name else gamma
            if t is not None and e != t_name and g > 0:
                loss = loss + g * distill_loss(masks[e], t, b, c)
            out[e] = loss
        return out

    @tf.function(input_signature=[spec_sig])
    def step(b):
        with tf.GradientTape() as tape:
            losses = {e: tf.reduce_mean(v) for e, v in exit_losses(b, True).items()}
            total = tf.add_n([phase.weights[e] * losses[e] for e in exits]) / wsum
        grads = tape.gradient(total, head_vars + bb_vars)
        if opt_head:
            opt_head.apply_gradients(zip(grads[: len(head_vars)], head_vars, strict=True))
        if opt_bb:
            opt_bb.apply_gradients(zip(grads[len(head_vars):], bb_vars, strict=True))
        return total, losses

    @tf.function(input_signature=[spec_sig])
    def evaluate(b):
        return {e: tf.reduce_sum(v) for e, v in exit_losses(b, False).items()}

    return step, evaluate, lr, bb_lr


def _run_phase(net, phase: _Phase, recipe: Recipe, mixer: Mixer, val: list[dict], progress,
               log, tf, keras, teacher=None) -> tuple[list, dict]:
    step, evaluate, lr, bb_lr = _phase_steps(net, phase, recipe, tf, keras, teacher)
    keys, exits = _KEYS, phase.exits
    backbone = set(net.spec.backbone)
    wsum = sum(phase.weights[e] for e in exits)

    def val_losses() -> dict[str, float]:
        acc = {e: 0.0 for e in exits}
        n = 0
        for b in val:
            r = evaluate({k: b[k] for k in keys})
            for e in exits:
                acc[e] += float(r[e])
            n += len(b["feats"])
        return {e: acc[e] / n for e in exits}

    def snapshot(layer_names):
        return {n: [np.array(w) for w in net.layers[n].get_weights()] for n in layer_names}

    # per-exit ownership of the trainable layers: heads by exit; backbone layers go with the
    # whole phase (joint, or a channel-split phase with one exit)
    spec = net.spec
    per_exit = {e: set(spec.exit(e).head) & phase.trainable for e in exits}
    independent = not (phase.trainable & backbone) and len(exits) > 1
    groups = ({e: per_exit[e] for e in exits} if independent
              else {"all": set(phase.trainable)})

    def group_val(g, v):
        if g == "all":
            return sum(phase.weights[e] * v[e] for e in exits) / wsum
        return v[g]

    v0 = val_losses()
    best = {g: group_val(g, v0) for g in groups}
    best_w = {g: snapshot(groups[g]) for g in groups}
    bad = {g: 0 for g in groups}
    history = [{"epoch": 0, "val": {e: round(x, 5) for e, x in v0.items()}}]
    log("  epoch 0: val " + ", ".join(f"{e} {x:.4f}" for e, x in v0.items()))
    for epoch in range(1, recipe.epochs + 1):
        bar = _progress(recipe.steps_per_epoch, f"{phase.name} {epoch}/{recipe.epochs}",
                        progress)
        run = 0.0
        for i in range(recipe.steps_per_epoch):
            b = mixer.batch(recipe.batch)
            total, _ = step({k: b[k] for k in keys})
            if net.zeros:
                net.apply_constraints()  # keep the channel split's structural zeros at zero
            run += (float(total) - run) / (i + 1)
            bar.update(1)
            bar.set_postfix(loss=f"{run:.4f}")
        bar.close()
        v = val_losses()
        history.append({"epoch": epoch, "train": round(run, 5),
                        "val": {e: round(x, 5) for e, x in v.items()}})
        marks = []
        for g in groups:
            gv = group_val(g, v)
            if gv < best[g] - 1e-5:
                best[g], bad[g] = gv, 0
                best_w[g] = snapshot(groups[g])
                marks.append(g)
            else:
                bad[g] += 1
        log(f"  epoch {epoch}: train {run:.4f}, val " +
            ", ".join(f"{e} {x:.4f}" for e, x in v.items()) +
            (f"  (best: {', '.join(marks)})" if marks else ""))
        if all(bad[g] >= 2 for g in groups) and epoch < recipe.epochs:
            lr.assign(lr * 0.5)
            bb_lr.assign(bb_lr * 0.5)
        if all(bad[g] >= recipe.patience for g in groups):
            log(f"  early stop after epoch {epoch}")
            break
    for g in groups:
        for n, ws in best_w[g].items():
            net.layers[n].set_weights(ws)
    bv = ({e: best[e] for e in exits} if independent
          else {e: val_losses()[e] for e in exits})
    return history, bv
