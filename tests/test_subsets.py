# SPDX-License-Identifier: Apache-2.0
"""Exit subsets (`nsconv export --exits`): only what the kept exits need is emitted and run,
and what is kept stays bit-exact with TFLM."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from nsconv.check.verify import verify
from nsconv.compiler.codegen import generate
from nsconv.compiler.graph_merge import keep_exits, merge_dir, parse_exit_names
from nsconv.errors import NsconvError
from nsconv.quant.manifest import Manifest


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("firmware", "c"))
    return dest


@pytest.fixture(scope="module")
def full(dynamic_out):
    return merge_dir(dynamic_out)[1]


@pytest.fixture(scope="module")
def subset(dynamic_out, tmp_path_factory) -> Path:
    out = _copy(dynamic_out, tmp_path_factory.mktemp("subset") / "out")
    assert keep_exits(out, ["gru1", "gru2"]) == ("fc2", "final")
    return out


def test_subset_keeps_the_named_exits_and_their_files(subset, dynamic_out):
    m = Manifest.load(subset)
    assert [e.name for e in m.exits] == ["gru1", "gru2"]
    for e in m.exits:  # the kept exits' models are the full export's, byte for byte
        assert (subset / e.tflite).read_bytes() == (dynamic_out / e.tflite).read_bytes()
    assert sorted(p.name for p in (subset / "tflite").iterdir()) == \
        sorted(Path(e.tflite).name for e in m.exits)


def test_subset_drops_the_ops_and_constants_of_dropped_exits(subset, full):
    _, sub = merge_dir(subset)
    dropped = {full.exit(n).index for n in ("fc2", "final")}
    only_dropped = [op for op in full.ops if op.exits <= dropped]
    assert only_dropped  # the heads of fc2 and final (fc2, fc3, fc4 ...)
    assert len(sub.ops) == len(full.ops) - len(only_dropped)
    const_only_dropped = sum(c.nbytes for c in full.consts if c.exits <= dropped)
    assert const_only_dropped > 500_000  # fc2 (600x400) alone is 240 KB of int8
    assert sub.const_bytes == full.const_bytes - const_only_dropped
    for name in ("gru1", "gru2"):
        assert sub.merged_macs(sub.exit(name).index) == full.merged_macs(full.exit(name).index)


def test_subset_generated_c_has_no_dropped_weights(subset, dynamic_out, tmp_path):
    sub = generate(subset, tmp_path / "sub")
    all_ = generate(_copy(dynamic_out, tmp_path / "all"), tmp_path / "allc")
    arrays = re.compile(r"^(?:static )?const \w+ (\w+)\[", re.M)
    sub_arrays = set(arrays.findall((tmp_path / "sub" / "nsn_weights.c").read_text()))
    all_arrays = set(arrays.findall((tmp_path / "allc" / "nsn_weights.c").read_text()))
    assert sub_arrays and sub_arrays < all_arrays
    assert sub.merged.const_bytes < all_.merged.const_bytes
    header = (tmp_path / "sub" / "nsn_model.h").read_text()
    assert "#define NSN_NUM_EXITS 2\n" in header and "#define NSN_NUM_EXITS 4\n" in \
        (tmp_path / "allc" / "nsn_model.h").read_text()


def test_subset_verifies_bit_exact_with_tflm(subset):
    report = verify(subset, frames=60, schedule="random")
    assert report.ok, report.table()
    assert report.frames >= 60


def test_bad_subsets_are_refused(dynamic_out, tmp_path):
    out = _copy(dynamic_out, tmp_path / "out")
    with pytest.raises(NsconvError, match="no exit named 'fc9'.*gru1, gru2, fc2, final"):
        keep_exits(out, ["gru1", "fc9"])
    with pytest.raises(NsconvError, match="named twice"):
        parse_exit_names("gru1,gru1")
    with pytest.raises(NsconvError, match="exit names separated by commas"):
        parse_exit_names("gru1,,gru2")
    assert [e.name for e in Manifest.load(out).exits] == ["gru1", "gru2", "fc2", "final"]


def test_export_refuses_a_bad_exit_list_before_any_work(tmp_path):
    from click.testing import CliRunner
    from nsconv.cli import main

    out = CliRunner().invoke(main, ["export", "dynamic-nsnet2", "-o", str(tmp_path / "o"),
                                    "--exits", "gru1,gru1"])
    assert out.exit_code == 1 and "nsconv: error: --exits 'gru1,gru1': an exit is named twice" \
        in out.output
    assert not (tmp_path / "o").exists()
