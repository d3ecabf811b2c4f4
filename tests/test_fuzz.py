# SPDX-License-Identifier: Apache-2.0
"""Every reader survives mutated inputs: accepted, or refused with one line naming the file.

CI runs a few thousand inputs; `make fuzz` runs the long version (scripts/fuzz.py).
"""

from __future__ import annotations

from pathlib import Path

import fuzzing
import pytest

REPO = Path(__file__).resolve().parents[1]
CI_INPUTS = 1000


@pytest.mark.parametrize("reader", fuzzing.READERS)
def test_reader_survives_mutations(reader, tmp_path):
    stats = fuzzing.run(reader, fuzzing.seeds_for(reader, REPO), CI_INPUTS, rng_seed=7,
                        keep_dir=tmp_path / "findings")
    summary = stats.to_json()
    print(summary)
    assert stats.inputs == CI_INPUTS
    # the mutations must exercise both outcomes, or the fuzzer is not testing the reader
    assert stats.rejected > CI_INPUTS // 10, summary
    assert stats.accepted > 0, summary
    details = "\n".join(f"{k}: {m[:600]} ({p})" for k, m, p in stats.findings[:5])
    assert not stats.findings, details
