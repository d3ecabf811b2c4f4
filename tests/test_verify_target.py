# SPDX-License-Identifier: Apache-2.0
"""`nsconv verify OUT --target CORE`: the shipped firmware's model and kernels in QEMU against
TFLM (the short form of `make verify-targets`), and what it reports when they differ.

1. A 4-exit model, random exit schedule, 150 real-audio frames on every core the firmware
   supports: bit-exact, masks and states, with the kernel path the running binary reports.
2. One weight byte corrupted in the exported ARM project only (OUT/firmware/cortex-m4/model/
   nsn_weights.c; the host build is generated afresh): the CLI exits with status 3 and names the
   FULLY_CONNECTED op that reads that weight as the first op whose output differs.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from frontend_harness import fwbuild
from nsconv.check.target_verify import cores, verify_targets
from nsconv.cli.base import main
from nsconv.target import firmware

pytestmark = pytest.mark.skipif(
    not (fwbuild.HAVE_ARM_GCC and fwbuild.HAVE_QEMU),
    reason="arm-none-eabi-gcc and qemu-system-arm required",
)

EXPECTED_PATH = {"cortex-m4": "dsp", "cortex-m7": "dsp", "cortex-m33": "dsp",
                 "cortex-m55": "mve"}
FRAMES = 150


@pytest.fixture(scope="module")
def out_dir(dynamic_out, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("verify-target") / "out"
    shutil.copytree(dynamic_out, out, ignore=shutil.ignore_patterns("firmware", "c"))
    return out


@pytest.fixture(scope="module")
def reports(out_dir):
    return verify_targets(out_dir, list(cores()), frames=FRAMES, schedule="random")


def test_every_core_is_bit_exact_with_tflm(reports):
    assert [r.target for r in reports] == list(cores())
    for r in reports:
        assert r.ok and r.bit_exact, r.table()
        assert r.kernels_path == EXPECTED_PATH[r.target], r.target
        assert r.c_matches_export is True
        assert r.first_mismatch is None
        assert sum(e.frames for e in r.exits) == FRAMES
        assert all(e.frames > 0 and e.mismatches == 0 for e in r.exits)
        assert r.seconds_per_frame is not None and r.seconds_per_frame > 0
        assert f"kernel path {r.kernels_path}" in r.table()
        assert r.to_json()["kernels_path"] == r.kernels_path


def _corrupt_first_weight(project: Path) -> tuple[str, int]:
    """Flips the sign bit of the first weight of the first weights array of the exported
    model; returns the array's name and the merged op that reads it."""
    weights = project / "model" / "nsn_weights.c"
    text = weights.read_text()
    m = re.search(r"const int8_t (\w+)\[\d+\]\[\d+\] NSN_WEIGHTS_ALIGN = \{\s*\{ /\* \[0\] \*/\s*"
                  r"(-?\d+),", text)
    assert m is not None
    value = int(m[2])
    flipped = value - 128 if value >= 0 else value + 128  # the int8 with bit 7 flipped
    weights.write_text(text[: m.start(2)] + str(flipped) + text[m.end(2) :])
    model = (project / "model" / "nsn_model.c").read_text()
    use = model.index(f"&{m[1]}[0][0]")
    op = re.findall(r"/\* op (\d+): FULLY_CONNECTED", model[:use])[-1]
    return m[1], int(op)


def test_a_corrupted_weight_in_the_arm_build_is_found_and_named(reports, out_dir, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(out_dir, out, symlinks=True)
    project = firmware.export_firmware(out, "cortex-m4").root
    name, merged_op = _corrupt_first_weight(project)
    result = CliRunner().invoke(main, ["verify", str(out), "--target", "cortex-m4", "--frames",
                                       "20", "--json"])
    assert result.exit_code == 3, result.output
    d = json.loads(result.output)
    assert d["ok"] is False
    (r,) = d["reports"]
    assert r["bit_exact"] is False and r["kernels_path"] == "dsp"
    assert r["c_matches_export"] is False  # the report also says model/ was changed
    first = r["first_mismatch"]
    assert first["kind"] == "intermediate", first
    assert first["op_type"] == "FULLY_CONNECTED" and first["merged_op"] == merged_op, (name, first)
    assert first["c_value"] != first["tflm_value"]


FAULTY = """
#include <stdio.h>
int main(int argc, char **argv)
{
    if (argc > 1 && argv[1][0] == 'h') {
        for (;;) {
        }
    }
    printf("about to fault\\n");
    __asm volatile("udf #0");
    return 0;
}
"""


def test_a_fault_or_a_hang_is_a_clear_failure(tmp_path):
    """The bounded QEMU run of verify --target (and run): a fault is an error quoting the
    fault registers that boards/common/nsn_fault.c prints; a hang ends at the time limit."""
    from nsconv.errors import NsconvError
    from nsconv.target import boards, qemu

    src = tmp_path / "faulty.c"
    src.write_text(FAULTY)
    board = boards.board("mps2-an386")
    elf = fwbuild.build(board.name, tmp_path, "faulty", (src,))
    cmd = board.qemu_command(elf, "fault", icount=False)
    with pytest.raises(NsconvError, match=r"(?s)crashed on cortex-m4.*UsageFault.*PC=0x.*CFSR=0x"):
        qemu.run_bounded(cmd, tmp_path, 60, "cortex-m4 (mps2-an386)", elf, 1)
    cmd = board.qemu_command(elf, "hang", icount=False)
    with pytest.raises(NsconvError, match="did not finish within 3 s"):
        qemu.run_bounded(cmd, tmp_path, 3, "cortex-m4 (mps2-an386)", elf, 1)
