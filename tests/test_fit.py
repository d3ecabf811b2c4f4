# SPDX-License-Identifier: Apache-2.0
"""Parts table and `nsconv fit`: the figures are bench's, for the same export."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from nsconv.cli import main
from nsconv.errors import NsconvError
from nsconv.target import bench, firmware, parts
from nsconv.target.fit import deepest_fitting_exits, fit

ROOT = Path(__file__).resolve().parent.parent
ISSUE_PARTS = ("stm32f446", "stm32l4r5", "stm32h743", "imxrt1062", "nrf5340", "stm32u585",
               "rp2350", "alif-e7", "stm32n657")
HAVE_TOOLS = all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm", "make"))


def test_parts_table():
    assert tuple(p.name for p in parts.PARTS) == ISSUE_PARTS
    cores = {p.name: p.core for p in parts.PARTS}
    assert [n for n, c in cores.items() if c == "cortex-m33"] == ["nrf5340", "stm32u585", "rp2350"]
    for p in parts.PARTS:
        assert p.core in firmware.TARGETS and p.source
        assert parts.board_of(p).core == p.core  # runs on the emulated board of its core
        assert p.flash_bytes > 0 and p.sram_bytes > 0 and p.max_mhz > 0
        assert p.external == (p.internal_flash_bytes == 0)  # the three XIP parts
    assert [p.name for p in parts.PARTS if p.external] == ["imxrt1062", "rp2350", "stm32n657"]
    assert parts.part("stm32f446").flash_bytes == 512 * 1024
    with pytest.raises(NsconvError, match="unknown part 'stm32f4'.*stm32f446"):
        parts.part("stm32f4")
    assert parts.parse_size("1.5M") == 1536 * 1024 and parts.parse_size("786K") == 786 * 1024
    assert parts.parse_size("4096") == 4096
    with pytest.raises(NsconvError, match="not a size"):
        parts.parse_size("lots")


def test_readme_parts_table_is_the_commands_output():
    out = CliRunner().invoke(main, ["fit", "--list-parts", "--markdown"])
    assert out.exit_code == 0
    assert out.output.strip() in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("args, needle", [
    (["fit", "m", "--part", "nosuch"], "Invalid value for '--part'"),
    (["fit", "m", "--flash", "1M"], "all of --flash, --ram, --mhz and --core"),
    (["fit", "m", "--part", "nrf5340", "--mhz", "64"], "--part takes no"),
    (["fit", "m", "--flash", "x", "--ram", "1K", "--mhz", "1", "--core", "cortex-m4"], "not a size"),
    (["fit"], "MODEL is required"),
])
def test_fit_usage_errors(args, needle):
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 2 and needle in out.output


def test_fit_refuses_a_directory_that_is_not_an_export(tmp_path):
    out = CliRunner().invoke(main, ["fit", str(tmp_path), "--part", "nrf5340", "-o",
                                    str(tmp_path / "w")])
    assert out.exit_code == 1 and "no manifest.json" in out.output


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_TOOLS, reason="arm-none-eabi-gcc, qemu-system-arm, make required")
def test_fit_figures_are_benchs_for_the_same_export(dynamic_out, tmp_path):
    generous = parts.custom_part("cortex-m33", 8 << 20, 8 << 20, 1000)
    report = fit(dynamic_out, generous, tmp_path, frames=2, exits=["gru1"])
    (e,) = report.exits
    assert e.exit == "gru1" and e.kept_exits == ("gru1",) and e.fits
    export = Path(e.export_dir)
    # bench, run again on the same export, measures the same figures
    b = bench.bench(export, ["cortex-m33"], ["gru1"], frames=2)
    (r,) = b["results"]
    assert e.flash_bytes == r["flash_bytes"] == r["flash"]["code_bytes"] + \
        r["flash"]["constants_bytes"]
    # RAM: the network's (bench ram_bytes) and the front end's state, as bench measures both
    assert e.ram_bytes == r["ram_with_frontend_bytes"] == r["ram_bytes"] + \
        r["frontend_state_bytes"]
    assert (e.network_ram_bytes, e.frontend_state_bytes) == (r["ram_bytes"],
                                                             r["frontend_state_bytes"])
    assert e.instructions_per_frame == pytest.approx(
        r["instructions_per_frame"] + r["frontend_instructions_per_frame"], abs=0.2)
    assert e.mhz_needed == r["mhz_for_real_time_estimate"]
    # the gru1-only export holds fc1, gru1 and its head (~1.1 MB), not the ~3 MB of all exits
    assert 1_000_000 < r["flash"]["weights_bytes"] < 1_150_000
    assert r["flash"]["code_region"].startswith("ZBT SSRAM1")
    # a part just too small for each budget
    for flash, ram, mhz, why in ((e.flash_bytes - 1, 1 << 20, 1000, "fits_flash"),
                                 (8 << 20, e.ram_bytes - 1, 1000, "fits_ram"),
                                 (8 << 20, 1 << 20, int(e.mhz_needed), "fits_mhz")):
        small = parts.custom_part("cortex-m33", flash, ram, mhz)
        t0 = time.monotonic()
        (s,) = fit(dynamic_out, small, tmp_path, frames=2, exits=["gru1"]).exits
        assert time.monotonic() - t0 < 30  # measured once, then read from the cache
        assert not getattr(s, why) and not s.fits
        with pytest.raises(NsconvError, match="no exit of .* fits custom"):
            deepest_fitting_exits(fit(dynamic_out, small, tmp_path, frames=2, exits=["gru1"]))
    assert deepest_fitting_exits(report) == (("gru1",), ())
    as_json = json.loads(json.dumps(report.to_json()))
    assert {"fits", "flash_bytes", "ram_bytes", "mhz_needed"} <= set(as_json["exits"][0])


def test_export_refuses_a_default_exit_it_does_not_keep(tmp_path):
    out = CliRunner().invoke(main, ["export", "dynamic-nsnet2", "-o", str(tmp_path / "o"),
                                    "--exits", "gru1,gru2", "--default-exit", "final"])
    assert out.exit_code == 1, out.output
    assert "--default-exit final is not among the kept exits (gru1, gru2: --exits)" in out.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, needle", [
    (["--weights", "gru1=int4"], "with --part the weight formats are chosen"),
    (["--flash-budget", "1M"], "with --part the weight formats are chosen"),
])
def test_export_part_leaves_the_formats_to_fit(tmp_path, args, needle):
    out = CliRunner().invoke(main, ["export", "dynamic-nsnet2", "-o", str(tmp_path / "o"),
                                    "--part", "nrf5340", *args])
    assert out.exit_code == 1 and needle in out.output
    assert not (tmp_path / "o").exists()


def test_fit_refuses_unknown_weights_and_other_calibration(dynamic_out, tmp_path):
    from nsconv.target.fit import formats_conversion

    part = parts.part("nrf5340")
    with pytest.raises(NsconvError, match="fit weights 'int4'"):
        fit(dynamic_out, part, tmp_path, weights="int4")
    with pytest.raises(NsconvError, match="other calibration clips"):
        formats_conversion(dynamic_out, {"gru1": "int4"}, tmp_path,
                           calib=[ROOT / "tests" / "data" / "0072_noisy.wav"])


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_TOOLS, reason="arm-none-eabi-gcc, qemu-system-arm, make required")
@pytest.mark.skipif(not os.environ.get("NSCONV_FIT_FULL"),
                    reason="int4 ranking, GPTQ conversion and two bench runs (minutes): "
                           "NSCONV_FIT_FULL=1 (make fit-report runs the same path on "
                           "dynamic-nsnet2)")
def test_fit_chooses_int4_layers_when_int8_is_too_large(dynamic_out, tmp_path):
    from nsconv.quant.manifest import Manifest

    big = parts.custom_part("cortex-m33", 8 << 20, 8 << 20, 1000)
    (e8,) = fit(dynamic_out, big, tmp_path, frames=2, exits=["gru1"]).exits
    assert e8.fits and not e8.int4_layers and e8.int8_flash_bytes is None
    small = parts.custom_part("cortex-m33", e8.flash_bytes - 50_000, 8 << 20, 1000)
    report = fit(dynamic_out, small, tmp_path, frames=2, exits=["gru1"])
    (e,) = report.exits
    assert e.fits_flash and e.int4_layers and e.int8_flash_bytes == e8.flash_bytes
    assert e.flash_bytes <= small.flash_bytes < e8.flash_bytes
    # the figures are bench's for the export fit measured, which holds those int4 layers
    r = bench.bench(Path(e.export_dir), ["cortex-m33"], ["gru1"], frames=2)["results"][0]
    assert (e.flash_bytes, e.ram_bytes) == (r["flash_bytes"], r["ram_with_frontend_bytes"])
    m = Manifest.load(Path(e.export_dir))
    assert [k for k, v in m.weight_formats.items() if v == "int4"] == list(e.int4_layers)
    assert m.exit("gru1").int4_weights
    j = report.to_json()["exits"][0]
    assert j["weight_formats"] == e.weight_formats and j["int4_layers"] == list(e.int4_layers)
    assert "int8 + int4" in report.table()
    assert deepest_fitting_exits(report) == (("gru1",), ())
