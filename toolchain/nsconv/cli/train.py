# SPDX-License-Identifier: Apache-2.0
"""`nsconv train`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nsconv import log
from nsconv.cli.base import emit, json_option, main


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
@json_option
def train(model: str, out: Path, style: str, scheme: str, init: Path | None, seed: int,
          epochs: int | None, steps_per_epoch: int | None, as_json: bool) -> None:
    """Train Dynamic nsNet2 exits on MODEL's backbone (CPU, real speech and noise mixtures)."""
    from nsconv.train.trainer import train as run

    style = {"a": "direct", "b": "split", "c": "channel"}.get(style, style)
    path = run(model, out, style=style, scheme=scheme, init=init, seed=seed, epochs=epochs,
               steps_per_epoch=steps_per_epoch, command=" ".join(["nsconv"] + sys.argv[1:]),
               progress=sys.stderr.isatty(), log=log.info)
    emit(as_json, {"model": str(path), "style": style, "scheme": scheme, "seed": seed},
         f"wrote {path}")
