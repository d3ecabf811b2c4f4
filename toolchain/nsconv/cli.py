# SPDX-License-Identifier: Apache-2.0
"""The `nsconv` command line."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .errors import NsconvError


class _Group(click.Group):
    """Turns NsconvError into `nsconv: error: FILE: problem` and exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NsconvError as exc:
            click.echo(f"nsconv: error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(package_name="nsconv")
def main() -> None:
    """Dynamic nsNet2 noise suppression, from trained model to bit-exact Cortex-M C."""
    import warnings

    # TensorFlow's deprecation and converter warnings are not the user's to act on.
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


@main.command()
@click.argument("model")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path),
              help="Output directory (replaced atomically).")
@click.option("--calib", multiple=True, type=click.Path(path_type=Path),
              help="Calibration wav (repeatable; default: the bundled real noisy clips).")
def convert(model: str, out: Path, calib: tuple[Path, ...]) -> None:
    """Per-exit int8 TFLite models of MODEL (ONNX, nsconv .npz, or a built-in name)."""
    from .audio import read_wav
    from .convert import convert as run

    for c in calib:
        read_wav(c)  # refuse bad calibration audio before any work
    m = run(model, out, list(calib) or None)
    click.echo(f"wrote {out}/manifest.json and {len(m.exits)} int8 model(s)")


@main.command()
@click.argument("model")
@click.argument("in_wav", type=click.Path(path_type=Path))
@click.argument("out_wav", type=click.Path(path_type=Path))
@click.option("--exit", "exit_name", default=None, help="Exit to run (default: the last).")
@click.option("--engine", type=click.Choice(["float", "tflm"]), default="tflm", show_default=True)
def enhance(model: str, in_wav: Path, out_wav: Path, exit_name: str | None, engine: str) -> None:
    """Denoise IN_WAV (16 kHz mono) into OUT_WAV with one exit of MODEL."""
    from .audio import read_wav, write_wav
    from .engine import Enhancer

    x = read_wav(in_wav)
    if out_wav.parent and not out_wav.parent.exists():
        raise NsconvError("output directory does not exist", out_wav.parent)
    enh = Enhancer(model, exit_name, engine)
    y = enh.enhance(x)
    tmp = out_wav.with_name(f".{out_wav.name}.part")
    write_wav(tmp, y)
    tmp.replace(out_wav)
    click.echo(f"{out_wav}: {len(y) / 16000:.2f} s, exit {enh.exit_name}, engine {engine}")


TARGETS = ("host", "cortex-m4", "cortex-m7", "cortex-m55")


@main.command()
@click.argument("model")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path),
              help="Output directory (replaced atomically).")
@click.option("--target", type=click.Choice(TARGETS), default="host", show_default=True,
              help="host: OUT/c only; a core: also a firmware project in OUT/firmware/<core>.")
@click.option("--calib", multiple=True, type=click.Path(path_type=Path),
              help="Calibration wav (repeatable; default: the bundled real noisy clips).")
def export(model: str, out: Path, target: str, calib: tuple[Path, ...]) -> None:
    """Convert MODEL and generate its early-exit C (OUT/tflite, OUT/c, manifest.json)."""
    from .audio import read_wav
    from .codegen import generate
    from .convert import convert_into
    from .outdir import atomic_output_dir

    for c in calib:
        read_wav(c)
    command = " ".join(["nsconv"] + sys.argv[1:])
    with atomic_output_dir(out) as tmp:
        convert_into(model, tmp, list(calib) or None)
        gen = generate(tmp, command_line=command)
        if target != "host":
            from .firmware import export_firmware

            export_firmware(tmp, target, command_line=command)
    click.echo(gen.summary().replace(str(tmp), str(out)))
    click.echo(f"wrote {out}/c" + (f" and {out}/firmware/{target}" if target != "host" else ""))


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--frames", type=int, default=None,
              help="Frames per stream (default: all frames of the audio).")
@click.option("--audio", multiple=True, type=click.Path(path_type=Path),
              help="Real audio to stream (repeatable; default: the bundled clips).")
@click.option("--exit-schedule", "schedule", type=click.Choice(["fixed", "random"]),
              default="fixed", show_default=True)
@click.option("--sanitize", is_flag=True, help="Build the C with ASan/UBSan.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(out: Path, frames: int | None, audio: tuple[Path, ...], schedule: str,
           sanitize: bool, as_json: bool) -> None:
    """Generated C vs TFLM on every exit, every frame; exit status 0 only if all equal."""
    from .audio import read_wav
    from .verify import verify as run

    for a in audio:
        read_wav(a)
    report = run(out, frames=frames, audio=list(audio) or None, schedule=schedule,
                 sanitize=sanitize, log=None if as_json else click.echo)
    click.echo(report.dumps() if as_json else report.table())
    if not report.ok:
        sys.exit(1)


CORES = ("cortex-m4", "cortex-m7", "cortex-m55")


@main.command()
@click.argument("model", default="nsnet2-baseline")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path),
              help="The trained model (.npz), which `nsconv export` takes.")
@click.option("--style", type=click.Choice(["direct", "split", "channel", "a", "b", "c"]),
              default="direct", show_default=True,
              help="Exit head style: (a) direct, (b) split with a duplicated layer, "
                   "(c) channel split.")
@click.option("--scheme", type=click.Choice(["layerwise", "joint"]), default="layerwise",
              show_default=True)
@click.option("--init", type=click.Path(path_type=Path), default=None,
              help="Start from this trained model (e.g. joint fine-tuning of a layer-wise one).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--epochs", type=int, default=None)
@click.option("--steps-per-epoch", type=int, default=None)
def train(model: str, out: Path, style: str, scheme: str, init: Path | None, seed: int,
          epochs: int | None, steps_per_epoch: int | None) -> None:
    """Train Dynamic nsNet2 exits on MODEL's backbone (CPU, real speech and noise mixtures)."""
    from .train import train as run

    style = {"a": "direct", "b": "split", "c": "channel"}.get(style, style)
    path = run(model, out, style=style, scheme=scheme, init=init, seed=seed, epochs=epochs,
               steps_per_epoch=steps_per_epoch, command=" ".join(["nsconv"] + sys.argv[1:]))
    click.echo(f"wrote {path}")


@main.command()
@click.argument("model")
@click.option("--engine", "engines", multiple=True,
              type=click.Choice(["float", "tflm", "c"]), help="Repeatable (default: float).")
@click.option("--audio", type=click.Path(path_type=Path), default=None,
              help="Directory of *_clean.wav / *_noisy.wav pairs (default: tests/data).")
@click.option("--figures", type=click.Path(path_type=Path), default=None,
              help="Directory for the PNG figures.")
@click.option("--no-dnsmos", is_flag=True, help="Skip DNSMOS (faster).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON only.")
def evaluate(model: str, engines: tuple[str, ...], audio: Path | None, figures: Path | None,
             no_dnsmos: bool, as_json: bool) -> None:
    """Per exit PESQ-wb, STOI, SI-SDR, DNSMOS, MACs/s and parameters on clean/noisy pairs."""
    from .evaluate import evaluate as run
    from .evaluate import report_json

    report = run(model, audio, tuple(engines) or ("float",), figures, dnsmos=not no_dnsmos,
                 progress=not as_json, log=(lambda *_: None) if as_json else click.echo)
    click.echo(report_json(report))


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.argument("in_wav", type=click.Path(path_type=Path))
@click.argument("out_wav", type=click.Path(path_type=Path))
@click.option("--exit", "exit_name", default=None, help="Exit to run (default: the last).")
@click.option("--schedule", default=None, help="Cyclic exit schedule instead: name[:n],...")
@click.option("--target", type=click.Choice(CORES), default=None,
              help="Core (default: the one exported, else cortex-m55).")
@click.option("--frames", type=int, default=None, help="Only the first N frames.")
def run(out: Path, in_wav: Path, out_wav: Path, exit_name: str | None, schedule: str | None,
        target: str | None, frames: int | None) -> None:
    """Build OUT's firmware, stream IN_WAV through it under QEMU, fetch OUT_WAV."""
    from .audio import read_wav
    from .qemu import run_on_target

    read_wav(in_wav)
    r = run_on_target(out, in_wav, out_wav, exit_name, target, schedule=schedule, frames=frames,
                      command_line=" ".join(["nsconv"] + sys.argv[1:]), log=click.echo)
    click.echo(r.table())


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--core", "cores", multiple=True, type=click.Choice(CORES),
              help="Core to measure (repeatable; default: all three).")
@click.option("--exit", "exits", multiple=True, help="Exit to measure (repeatable; default: all).")
@click.option("--frames", type=int, default=100, show_default=True, help="Frames per exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON only.")
def bench(out: Path, cores: tuple[str, ...], exits: tuple[str, ...], frames: int,
          as_json: bool) -> None:
    """Instructions per frame per exit per core in QEMU (-icount), and ELF section sizes."""
    import json

    from . import bench as b

    report = b.bench(out, list(cores) or None, list(exits) or None, frames,
                     log=None if as_json else click.echo)
    click.echo(json.dumps(report, indent=2) if as_json else b.table(report))


if __name__ == "__main__":
    main()
