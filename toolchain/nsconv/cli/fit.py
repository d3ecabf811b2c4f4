# SPDX-License-Identifier: Apache-2.0
"""`nsconv fit`."""

from __future__ import annotations

from pathlib import Path

import click

from nsconv import log
from nsconv.cli.base import emit, json_option, main
from nsconv.errors import NsconvError
from nsconv.target.firmware import TARGETS
from nsconv.target.parts import PARTS


@main.command()
@click.argument("model", required=False)
@click.option("--part", "part_name", type=click.Choice([p.name for p in PARTS]), default=None,
              help="A part of the parts table (see --list-parts).")
@click.option("--flash", default=None, help="Flash for code + constants of a part not in the "
              "table, e.g. 1M or 786K (with --ram, --mhz, --core).")
@click.option("--ram", default=None, help="SRAM of a part not in the table, e.g. 512K.")
@click.option("--mhz", type=int, default=None, help="Maximum clock of a part not in the table.")
@click.option("--core", type=click.Choice(list(TARGETS)), default=None,
              help="Core of a part not in the table.")
@click.option("-o", "--out", "work", type=click.Path(path_type=Path), default=None,
              help="Work directory: the conversion, one export per exit prefix and its bench "
                   "measurement, reused by later fits (default: out/fit/<model>).")
@click.option("--frames", type=int, default=20, show_default=True,
              help="Frames measured per exit.")
@click.option("--weights", type=click.Choice(["auto", "int8"]), default="auto",
              show_default=True,
              help="auto: an exit whose all-int8 export is too large for the part's flash is "
                   "measured again with int4 layers chosen to fit; int8: all int8 only.")
@click.option("--list-parts", is_flag=True, help="Print the parts table and exit.")
@click.option("--markdown", is_flag=True, help="With --list-parts: as a Markdown table.")
@json_option
def fit(model: str | None, part_name: str | None, flash: str | None, ram: str | None,
        mhz: int | None, core: str | None, work: Path | None, frames: int, weights: str,
        list_parts: bool, markdown: bool, as_json: bool) -> None:
    """Will MODEL's exits fit a part? Flash, RAM and clock per exit, measured by bench, and
    the weight format each exit fits in (all int8, or int8 with int4 layers)."""
    from nsconv.target import parts
    from nsconv.target.fit import converted_model, default_work_dir
    from nsconv.target.fit import fit as run

    if list_parts:
        table = parts.markdown_table()
        emit(as_json, {"parts": [{**p.__dict__, "flash_bytes": p.flash_bytes} for p in PARTS]},
             table if markdown else table.replace("|---|---|---|---|---|---|---|---|\n", ""))
        return
    if model is None:
        raise click.UsageError("MODEL is required (or --list-parts)")
    part = _part(part_name, flash, ram, mhz, core)
    work = work or default_work_dir(model)
    converted = converted_model(model, work, log.info)
    report = run(converted, part, work, frames=frames, model_name=model, log=log.info,
                 weights=weights)
    emit(as_json, report.to_json(), report.table())


def _part(name, flash, ram, mhz, core):
    from nsconv.target import parts

    custom = (flash, ram, mhz, core)
    if name is not None:
        if any(v is not None for v in custom):
            raise click.UsageError("--part takes no --flash/--ram/--mhz/--core")
        return parts.part(name)
    if any(v is None for v in custom):
        raise click.UsageError("give --part NAME, or all of --flash, --ram, --mhz and --core")
    try:
        return parts.custom_part(core, parts.parse_size(flash), parts.parse_size(ram), mhz)
    except NsconvError as exc:
        raise click.UsageError(str(exc)) from None
