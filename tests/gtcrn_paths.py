# SPDX-License-Identifier: Apache-2.0
"""Where the GTCRN tests find the model and real speech (not a test module): the authors' ONNX
files bundled in tests/data/gtcrn (MIT, see its SOURCES.md and LICENSE) and the DNS3 clips in
tests/data, so the tests run on any checkout."""

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
GTCRN = DATA / "gtcrn"
GTCRN_SIMPLE = GTCRN / "gtcrn_simple.onnx"
DNS3 = DATA  # the DNS3 pairs 0072, 0398 and 0523 (tests/data/SOURCES.md)
