# SPDX-License-Identifier: Apache-2.0
"""The one rule that turns a source name into the name nsconv uses everywhere.

A layer or exit name from a model (a PyTorch module path such as `enc.fc1`, a Keras layer name,
an ONNX output name) becomes a C identifier by `identifier`: lower case; every run of characters
outside [a-z0-9_] becomes one `_`; runs of `_` collapse and `_` at either end is dropped; a name
that would start with a digit (or be empty) gets the prefix `t_`. The result is the name in the
NetSpec, the manifest, every report and the generated C (`state_<layer>`, `NSN_EXIT_<EXIT>`).
"""

from __future__ import annotations

import re


def identifier(name: str) -> str:
    text = re.sub(r"[^0-9a-z_]+", "_", name.lower())
    text = re.sub(r"_+", "_", text).strip("_")
    if not text or text[0].isdigit():
        text = "t_" + text
    return text
