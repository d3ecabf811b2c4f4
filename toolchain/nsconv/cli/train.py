# SPDX-License-Identifier: Apache-2.0
"""`nsconv train`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nsconv import log
from nsconv.cli.base import emit, json_option, main


def _weights(ctx, param, value: str | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        return tuple(float(w) for w in value.split(","))
    except ValueError:
        raise click.BadParameter("comma-separated numbers, e.g. 1,1,1,2") from None


@main.command()
@click.argument("model", default="nsnet2-baseline")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path),
              help="The trained model (.npz), which `nsconv export` takes.")
@click.option("--audio", type=click.Path(path_type=Path), default=None,
              help="Training audio folder: clean speech, noise/ and clean/noisy pairs "
                   "(default: $NSCONV_AUDIO).")
@click.option("--held-out", type=click.Path(path_type=Path), default=None,
              help="Evaluation folder (<id>_clean.wav pairs) whose utterances and VoiceBank "
                   "speakers are kept out of training. Required.")
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
@click.option("--batch", type=int, default=None, help="Mixtures per step.")
@click.option("--seconds", type=float, default=None, help="Length of each mixture.")
@click.option("--lr", type=float, default=None, help="Learning rate of the heads.")
@click.option("--backbone-lr", type=float, default=None,
              help="Learning rate of the backbone layers (joint).")
@click.option("--distill", type=float, default=None,
              help="Weight of self-distillation from the final exit (0: off).")
@click.option("--train-final", is_flag=True,
              help="Layer-wise: also retrain the final head on the frozen backbone.")
@click.option("--exit-weights", callback=_weights, default=None,
              help="Joint: loss weight per exit, comma-separated (e.g. 1,1,1,2).")
@click.option("--channel-fraction", type=float, default=None,
              help="Style c: fraction of a stage's channels given to its exit.")
@click.option("--val-mixtures", type=int, default=None,
              help="Size of the fixed validation set (mixtures).")
@click.option("--weights", type=click.Choice(["float16", "float32"]), default="float16",
              show_default=True, help="Storage of the trained weights.")
@json_option
def train(model: str, out: Path, audio: Path | None, held_out: Path | None, style: str,
          scheme: str, init: Path | None, seed: int, as_json: bool, **recipe) -> None:
    """Train Dynamic nsNet2 exits on MODEL's backbone (CPU, real speech and noise mixtures)."""
    from nsconv.train.trainer import train as run

    style = {"a": "direct", "b": "split", "c": "channel"}.get(style, style)
    path = run(model, out, style=style, scheme=scheme, init=init, seed=seed, audio=audio,
               held_out=held_out, progress=sys.stderr.isatty(), log=log.info, **recipe)
    emit(as_json, {"model": str(path), "style": style, "scheme": scheme, "seed": seed},
         f"wrote {path}")
