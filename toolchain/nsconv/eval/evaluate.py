# SPDX-License-Identifier: Apache-2.0
"""`nsconv evaluate`: per-exit quality and cost of a model on clean/noisy pairs.

Metrics per clip (the enhanced signal against the clean reference, both at 16 kHz):
  pesq_wb      ITU-T P.862.2 wide band (`pesq` package)
  stoi         short-time objective intelligibility (`pystoi`, classic STOI)
  si_sdr       scale-invariant SDR in dB (zero-mean signals)
  dnsmos_sig / dnsmos_bak / dnsmos_ovrl
               DNSMOS P.835 (no reference), run with onnxruntime on the `sig_bak_ovr.onnx`
               model shipped in the PyPI package speechmos 0.0.1.1, with speechmos' own
               procedure: clips shorter than 9.01 s are repeated to that length, 9.01 s windows
               hop by 1 s, the raw scores go through the DNSMOS polynomial fit, and are averaged.
Costs per exit: MACs per frame (dense and GRU matrix products on the exit's path), MACs per
second (100 frames/s) and parameters on the path.

Engines: `float` (float step model), `tflm` (the int8 models in the TFLM interpreter) and `c`
(the generated C, built for the host with gcc and streamed frame by frame).

Pairs in an audio folder: every `<id>_clean.wav` with each `<id>_noisy*.wav` beside it.
Figures (PNG): quality against MMAC/s (one point per exit and engine), box plots per exit, and
the masks of every exit for one clip.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nsconv.audio import frontend
from nsconv.audio.wav import read_wav
from nsconv.errors import NsconvError
from nsconv.eval import formats

METRICS = ("pesq_wb", "stoi", "si_sdr", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")
ENGINES = ("float", "tflm", "c")
FRAMES_PER_SECOND = frontend.SAMPLE_RATE / frontend.HOP  # the default front end's
# PESQ-wb and DNSMOS are defined at 16 kHz: clean and enhanced audio of a model at another
# rate are resampled to it for scoring (audio.wav.resample: scipy.signal.resample_poly).
METRIC_RATE = 16000
LABELS = {"pesq_wb": "PESQ-wb", "stoi": "STOI", "si_sdr": "SI-SDR (dB)",
          "dnsmos_sig": "DNSMOS SIG", "dnsmos_bak": "DNSMOS BAK", "dnsmos_ovrl": "DNSMOS OVRL"}


# --------------------------------------------------------------------------------------------
# metrics


def pesq_wb(clean: np.ndarray, x: np.ndarray) -> float:
    from pesq import pesq

    n = min(len(clean), len(x))
    try:
        return float(pesq(frontend.SAMPLE_RATE, clean[:n], x[:n], "wb"))
    except Exception:  # no utterance found, too short: no score rather than a crash
        return float("nan")


def stoi(clean: np.ndarray, x: np.ndarray) -> float:
    from pystoi import stoi as _stoi

    n = min(len(clean), len(x))
    return float(_stoi(clean[:n], x[:n], frontend.SAMPLE_RATE, extended=False))


def si_sdr(clean: np.ndarray, x: np.ndarray) -> float:
    n = min(len(clean), len(x))
    s = clean[:n] - np.mean(clean[:n])
    y = x[:n] - np.mean(x[:n])
    target = (np.dot(y, s) / (np.dot(s, s) + 1e-12)) * s
    noise = y - target
    return float(10 * np.log10((np.dot(target, target) + 1e-12) / (np.dot(noise, noise) + 1e-12)))


class Dnsmos:
    """DNSMOS P.835 (SIG, BAK, OVRL) with the model file of speechmos 0.0.1.1."""

    INPUT_LENGTH = 9.01
    P_SIG = np.poly1d([-0.08397278, 1.22083953, 0.0052439])
    P_BAK = np.poly1d([-0.13166888, 1.60915514, -0.39604546])
    P_OVR = np.poly1d([-0.06766283, 1.11546468, 0.04602535])

    def __init__(self) -> None:
        import importlib.util

        import onnxruntime as ort

        spec = importlib.util.find_spec("speechmos")
        if spec is None or not spec.submodule_search_locations:
            raise NsconvError("DNSMOS needs the PyPI package speechmos==0.0.1.1 (run make setup)")
        model = Path(list(spec.submodule_search_locations)[0]) / "dnsmos_models" / \
            "sig_bak_ovr.onnx"
        if not model.is_file():
            raise NsconvError("DNSMOS model missing from the speechmos package", model)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model), opts,
                                            providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> dict[str, float]:
        fs = frontend.SAMPLE_RATE
        audio = np.clip(np.asarray(x, np.float64), -1.0, 1.0)
        need = int(self.INPUT_LENGTH * fs)
        while len(audio) < need:
            audio = np.append(audio, audio)
        hops = int(np.floor(len(audio) / fs) - self.INPUT_LENGTH) + 1
        sig, bak, ovr = [], [], []
        for i in range(hops):
            seg = audio[int(i * fs) : int((i + self.INPUT_LENGTH) * fs)]
            if len(seg) < need:
                continue
            raw = self.session.run(None, {self.input: seg.astype(np.float32)[None, :]})[0][0]
            sig.append(self.P_SIG(raw[0]))
            bak.append(self.P_BAK(raw[1]))
            ovr.append(self.P_OVR(raw[2]))
        return {"dnsmos_sig": float(np.mean(sig)), "dnsmos_bak": float(np.mean(bak)),
                "dnsmos_ovrl": float(np.mean(ovr))}


def clip_metrics(clean: np.ndarray, x: np.ndarray, dnsmos: Dnsmos | None,
                 rate: int = METRIC_RATE) -> dict[str, float]:
    if rate != METRIC_RATE:
        from nsconv.audio.wav import resample

        clean, x = resample(clean, rate, METRIC_RATE), resample(x, rate, METRIC_RATE)
    m = {"pesq_wb": pesq_wb(clean, x), "stoi": stoi(clean, x), "si_sdr": si_sdr(clean, x)}
    if dnsmos is not None:
        m.update(dnsmos(x))
    else:
        m.update({k: float("nan") for k in ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")})
    return m


# --------------------------------------------------------------------------------------------
# audio pairs and engines


@dataclass(frozen=True)
class Pair:
    name: str
    clean: Path
    noisy: Path


def find_pairs(audio: str | Path) -> list[Pair]:
    root = Path(audio)
    if not root.is_dir():
        raise NsconvError("not an audio folder", root)
    pairs = []
    for clean in sorted(root.glob("*_clean.wav")):
        uid = clean.name[: -len("_clean.wav")]
        for noisy in sorted(root.glob(f"{uid}_noisy*.wav")):
            suffix = noisy.stem[len(uid) + len("_noisy"):]
            pairs.append(Pair(uid + suffix, clean, noisy))
    if not pairs:
        raise NsconvError("no <id>_clean.wav / <id>_noisy.wav pairs", root)
    return pairs


class _CEngine:
    """The generated C of a converted model, built for the host, one stream per utterance."""

    def __init__(self, out_dir: Path, work: Path) -> None:
        from nsconv.compiler.codegen import generate
        from nsconv.target import hostbuild

        self._hb = hostbuild
        self.work = work
        gen = generate(out_dir, work / "c", command_line="nsconv evaluate --engine c")
        self.names = [e.name for e in gen.merged.exits]
        self.program = hostbuild.build(work / "c", work / "build")

    def masks(self, feats: np.ndarray, entry) -> np.ndarray:
        fq = frontend.quantize(feats, entry.features.scale, entry.features.zero_point)
        k = self.names.index(entry.name)
        resets = np.zeros(len(fq), bool)
        resets[0] = True
        run = self._hb.run(self.program, self.work, fq, np.full(len(fq), k), resets,
                           tag=f"eval_{k}")
        return frontend.dequantize(run.masks, entry.mask.scale, entry.mask.zero_point)


# --------------------------------------------------------------------------------------------
# evaluation


def _mean(values) -> float:
    v = [x for x in values if not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else float("nan")


def _summary(per_pair: dict[str, dict[str, float]]) -> dict[str, float]:
    return {k: _mean([m[k] for m in per_pair.values()]) for k in METRICS}


def evaluate(model: str | Path, audio: str | Path,
             engines: str | tuple[str, ...] | list[str] = ("float",),
             figures: str | Path | None = None, exits: list[str] | None = None,
             dnsmos: bool = True, mask_clip: str | None = None, progress: bool = True,
             log=print, compare: bool | None = None, reference: str | Path | None = None) -> dict:
    """Evaluate every exit of MODEL (built-in name, .onnx/.npz file, or `convert`/`export`
    output directory) with each engine on the clean/noisy pairs in the folder `audio`.

    Returns the report (also JSON-able): `noisy` (metrics of the unprocessed input), `exits`
    (first engine: per exit name, after, macs_per_frame, macs_per_second, params, the METRICS
    means and `per_pair`), `by_engine` (the same for every engine), `checks` and `figures`
    (PNG paths, written to `figures` when given).

    compare (default: when MODEL is a directory): also `weight_formats` and `vs_int8`, the
    exits of the first integer engine (tflm or c) against the all-int8 conversion of the same
    model (`reference`, else made and cached; eval/formats.py): per clip score deltas and the
    RMS difference of the masks."""
    from tqdm import tqdm

    from nsconv.check.engine import converted_dir
    from nsconv.quant.manifest import Manifest

    engines = _engines(engines)
    audio = Path(audio)
    pairs = find_pairs(audio)
    out_dir = converted_dir(model)
    manifest = Manifest.load(out_dir)
    names = _exit_names(manifest, exits)
    scorer = Dnsmos() if dnsmos else None
    fe = manifest.frontend  # audio at another rate is refused by read_wav, one line
    data = _load_pairs(pairs, fe)
    mask_pair = mask_clip or pairs[0].name
    if mask_pair not in [p.name for p in pairs]:
        raise NsconvError(f"no pair named {mask_pair!r} for the mask figure", audio)

    compare = Path(model).is_dir() if compare is None else compare
    int_engine = next((e for e in engines if e != "float"), None)
    if compare and int_engine is None:
        raise NsconvError("the comparison with all-int8 needs the tflm or c engine")
    ref_dir = formats.int8_reference(out_dir, reference, log) if compare else None
    total = len(pairs) * (1 + len(names) * (len(engines) + bool(compare)))
    bar = tqdm(total=total, desc="evaluate", disable=not progress, file=sys.stderr,
               dynamic_ncols=True, leave=False)
    noisy_pp = {}
    for p, clean, noisy, _, _ in data:
        noisy_pp[p.name] = clip_metrics(clean, noisy, scorer, fe.rate)
        bar.update(1)
    run = _Run(out_dir, manifest, data, scorer, fe, mask_pair, bar, log)
    with tempfile.TemporaryDirectory(prefix="nsconv-eval-") as tmp:
        c_engine = _CEngine(out_dir, Path(tmp)) if "c" in engines else None
        by_engine = {eng: [run.score_exit(eng, name, c_engine, eng == engines[0])
                           for name in names] for eng in engines}
    vs_int8 = None
    if ref_dir is not None:
        vs_int8 = _vs_int8(run, by_engine[int_engine], ref_dir, names)
    bar.close()

    noisy_summary = {**_summary(noisy_pp), "per_pair": noisy_pp}
    log(f"noisy input: PESQ-wb {noisy_summary['pesq_wb']:.3f}  STOI {noisy_summary['stoi']:.3f}"
        f"  SI-SDR {noisy_summary['si_sdr']:6.2f}  DNSMOS OVRL {noisy_summary['dnsmos_ovrl']:.3f}")
    report = {
        "model": str(model), "converted": str(out_dir), "audio": str(audio),
        "pairs": [p.name for p in pairs], "engines": list(engines),
        "frames_per_second": fe.rate / fe.hop, "sample_rate": fe.rate,
        "noisy": noisy_summary, "exits": by_engine[engines[0]], "by_engine": by_engine,
        "checks": _checks(by_engine, noisy_summary),
        "figures": [],
    }
    if vs_int8 is not None:
        report["weight_formats"] = formats.weight_formats(out_dir)
        report["vs_int8"] = vs_int8
    if figures is not None:
        report["figures"] = write_figures(report, Path(figures), run.masks_for_figure, data,
                                          mask_pair)
    return report


def _vs_int8(run: _Run, rows: list[dict], ref_dir: Path, names: list[str]) -> dict:
    """The exits of one integer engine against the same exits of the all-int8 reference,
    scored on the same clips with the TFLM engine."""
    from nsconv.quant.manifest import Manifest

    ref_manifest = Manifest.load(ref_dir)
    ref_run = _Run(ref_dir, ref_manifest, run.data, run.scorer, run.fe, run.mask_pair, run.bar,
                   run.log, tag="int8")
    fmts = formats.weight_formats(run.out_dir)
    exits = []
    for row in rows:
        ref_row = ref_run.score_exit("tflm", row["name"], None, False)
        exits.append(formats.compare_exit(row, ref_row, run.masks[(row["engine"], row["name"])],
                                          ref_run.masks[("tflm", row["name"])], fmts))
    assert [r["name"] for r in exits] == names
    return {"reference": str(ref_dir), "engine": rows[0]["engine"], "reference_engine": "tflm",
            "exits": exits, "checks": formats.checks(exits)}


def _engines(engines: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    engines = (engines,) if isinstance(engines, str) else tuple(engines)
    for e in engines:
        if e not in ENGINES:
            raise NsconvError(f"unknown engine {e!r} (choose from {', '.join(ENGINES)})")
    if not engines:
        raise NsconvError("no engine to evaluate")
    return engines


def _exit_names(manifest, exits: list[str] | None) -> list[str]:
    names = [e.name for e in manifest.exits]
    if exits:
        for n in exits:
            manifest.exit(n)  # refuses an unknown name
        names = [n for n in names if n in exits]
    return names


def _load_pairs(pairs, fe) -> list[tuple]:
    """(pair, clean, noisy, noisy STFT, features) per pair, trimmed to a common length."""
    data = []
    for p in pairs:
        clean, noisy = read_wav(p.clean, fe), read_wav(p.noisy, fe)
        n = min(len(clean), len(noisy))
        clean, noisy = clean[:n], noisy[:n]
        spec = frontend.stft(noisy, fe)
        data.append((p, clean, noisy, spec, frontend.features(spec, fe)))
    return data


@dataclass
class _Run:
    """What scoring one exit with one engine needs; collects the masks for the figure."""

    out_dir: Path
    manifest: object
    data: list
    scorer: object
    fe: object
    mask_pair: str
    bar: object
    log: object
    tag: str = ""  # printed before the engine name in the log
    masks_for_figure: dict = field(default_factory=dict)
    masks: dict = field(default_factory=dict)  # (engine, exit) -> {pair: mask}

    def score_exit(self, eng: str, name: str, c_engine, keep_masks: bool) -> dict:
        from nsconv.check.engine import Enhancer

        entry = self.manifest.exit(name)
        if eng == "c":
            def mask_fn(f):
                return c_engine.masks(f, entry)
        else:
            mask_fn = Enhancer(self.out_dir, name, eng).masks
        pp = {}
        for p, clean, noisy, spec, feats in self.data:
            m = mask_fn(feats)
            y = frontend.istft(frontend.apply_mask(spec, m, self.fe), self.fe)[: len(noisy)]
            pp[p.name] = clip_metrics(clean, y, self.scorer, self.fe.rate)
            self.masks.setdefault((eng, name), {})[p.name] = m
            if keep_masks and p.name == self.mask_pair:
                self.masks_for_figure[name] = m
            self.bar.update(1)
        row = {"name": name, "engine": eng, "after": entry.after,
               "head": list(entry.head), "macs_per_frame": entry.macs_per_frame,
               "macs_per_second": entry.macs_per_frame * self.fe.rate / self.fe.hop,
               "params": entry.params, **_summary(pp), "per_pair": pp}
        self.log(f"{self.tag}{eng:>5} {name:<8} {row['macs_per_second'] / 1e6:7.1f} MMAC/s  "
                 f"PESQ-wb {row['pesq_wb']:.3f}  STOI {row['stoi']:.3f}  "
                 f"SI-SDR {row['si_sdr']:6.2f}  DNSMOS OVRL {row['dnsmos_ovrl']:.3f}")
        return row


def _checks(by_engine: dict[str, list[dict]], noisy: dict) -> dict:
    out: dict = {}
    for eng, rows in by_engine.items():
        p = [r["pesq_wb"] for r in rows]
        out[eng] = {
            "pesq_monotonic": bool(all(b > a for a, b in zip(p, p[1:], strict=False))),
            "every_exit_improves_pesq": bool(all(x > noisy["pesq_wb"] for x in p)),
        }
    if "float" in by_engine:
        ref = {r["name"]: r["pesq_wb"] for r in by_engine["float"]}
        for eng, rows in by_engine.items():
            if eng != "float":
                out[eng]["pesq_minus_float"] = {r["name"]: round(r["pesq_wb"] - ref[r["name"]], 4)
                                                for r in rows}
    return out


def report_json(report: dict) -> str:
    """The report as JSON text (NaN, e.g. DNSMOS switched off or no PESQ, becomes null)."""
    def clean(o):
        if isinstance(o, float) and math.isnan(o):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, list):
            return [clean(v) for v in o]
        return o
    return json.dumps(clean(report), indent=2) + "\n"


def write_json(report: dict, path: str | Path) -> None:
    Path(path).write_text(report_json(report))


# --------------------------------------------------------------------------------------------
# figures


def write_figures(report: dict, dest: Path, masks: dict[str, np.ndarray], data,
                  mask_pair: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dest.mkdir(parents=True, exist_ok=True)
    files = []
    shown = ("pesq_wb", "stoi", "si_sdr", "dnsmos_ovrl")
    markers = {"float": "o", "tflm": "s", "c": "^"}
    noisy = report["noisy"]

    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    for ax, metric in zip(axes.flat, shown, strict=True):
        for eng, rows in report["by_engine"].items():
            x = [r["macs_per_second"] / 1e6 for r in rows]
            y = [r[metric] for r in rows]
            ax.plot(x, y, marker=markers.get(eng, "o"), linestyle="-", label=eng, alpha=0.85)
            if eng == report["engines"][0]:
                for xi, yi, r in zip(x, y, rows, strict=True):
                    ax.annotate(r["name"], (xi, yi), textcoords="offset points", xytext=(4, 4),
                                fontsize=8)
        if not math.isnan(noisy[metric]):
            ax.axhline(noisy[metric], color="grey", linestyle="--", label="noisy input")
        ax.set_xlabel("MMAC/s")
        ax.set_ylabel(LABELS[metric])
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"Quality against compute per exit ({len(report['pairs'])} clips, mean)")
    fig.tight_layout()
    files.append(_save(fig, dest / "quality_vs_mmacs.png", plt))

    engines = report["engines"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for ax, metric in zip(axes.flat, shown, strict=True):
        labels = ["noisy"] + [r["name"] for r in report["by_engine"][engines[0]]]
        width = 0.8 / len(engines)
        for k, eng in enumerate(engines):
            rows = report["by_engine"][eng]
            series = [[v[metric] for v in noisy["per_pair"].values()]]
            series += [[v[metric] for v in r["per_pair"].values()] for r in rows]
            series = [[v for v in s if not math.isnan(v)] or [np.nan] for s in series]
            pos = np.arange(len(series)) + (k - (len(engines) - 1) / 2) * width
            bp = ax.boxplot(series, positions=pos, widths=width * 0.9, patch_artist=True,
                            manage_ticks=False)
            for patch in bp["boxes"]:
                patch.set_facecolor(f"C{k}")
                patch.set_alpha(0.5)
        ax.set_xticks(np.arange(len(labels)))
        ax.set_xticklabels(labels)
        ax.set_ylabel(LABELS[metric])
        ax.grid(alpha=0.3, axis="y")
    handles = [plt.Rectangle((0, 0), 1, 1, color=f"C{k}", alpha=0.5) for k in range(len(engines))]
    axes.flat[0].legend(handles, engines, fontsize=8)
    fig.suptitle("Per-clip scores per exit")
    fig.tight_layout()
    files.append(_save(fig, dest / "boxplots.png", plt))

    if masks:
        spec = next(d[3] for d in data if d[0].name == mask_pair)
        n = len(masks) + 1
        fig, axes = plt.subplots(n, 1, figsize=(10, 1.9 * n), sharex=True)
        t = len(spec) / report["frames_per_second"]
        extent = (0, t, 0, report["sample_rate"] / 2000)
        axes[0].imshow(10 * np.log10(np.abs(spec.T) ** 2 + 1e-12), origin="lower",
                       aspect="auto", extent=extent, cmap="magma")
        axes[0].set_title(f"{mask_pair}: noisy power (dB)", fontsize=9)
        for ax, (name, m) in zip(axes[1:], masks.items(), strict=True):
            im = ax.imshow(m.T, origin="lower", aspect="auto", extent=extent, vmin=0, vmax=1,
                           cmap="viridis")
            ax.set_title(f"mask of exit {name} ({engines[0]})", fontsize=9)
        for ax in axes:
            ax.set_ylabel("kHz")
        axes[-1].set_xlabel("s")
        fig.colorbar(im, ax=list(axes), fraction=0.02, pad=0.01, label="mask")
        files.append(_save(fig, dest / f"masks_{mask_pair}.png", plt))
    return files


def _save(fig, path: Path, plt) -> str:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
