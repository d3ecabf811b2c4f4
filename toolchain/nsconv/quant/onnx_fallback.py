# SPDX-License-Identifier: Apache-2.0
"""ONNX graphs outside the nsNet2 family: converted by onnx2tf where it can.

Only frame-wise (stateless) graphs can take this route: one input of shape (1, 1, bins) or
(1, bins), one output of the same shape, no recurrent op (a recurrence would need the explicit
state rewrite that only the nsNet2-family importer does: a graph with one is refused with the
importer's own cause, e.g. op Tanh or a bidirectional GRU). The graph becomes a TensorFlow
SavedModel with onnx2tf (pinned 1.28.8) and is then calibrated and quantized like any exit; it
has the single exit `final` and no state. Anything onnx2tf cannot convert is refused with the op
that made the graph leave the family.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nsconv.errors import NsconvError
from nsconv.model.onnx_import import OutsideFamily, load_onnx


@dataclass(frozen=True)
class FramewiseModel:
    """A stateless per-frame model held as a SavedModel directory."""

    saved_model: Path
    input_name: str
    output_name: str
    bins: int
    input_shape: tuple[int, ...]

    def reshape(self, feats: np.ndarray) -> np.ndarray:
        return feats.reshape(self.input_shape).astype(np.float32)


def convert_with_onnx2tf(path: Path, why: OutsideFamily, work: Path) -> FramewiseModel:
    if why.recurrent:  # only the nsNet2 importer can make a recurrence streaming: its cause
        raise why
    model = load_onnx(path)
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise NsconvError(f"{why.problem}; onnx2tf route needs one input and one output", path)

    def dims(value_info) -> list[int]:
        return [d.dim_value if d.dim_value > 0 else 1 for d in value_info.type.tensor_type.shape.dim]

    in_dims, out_dims = dims(inputs[0]), dims(graph.output[0])
    if in_dims not in ([1, 1, in_dims[-1]], [1, in_dims[-1]]) or out_dims[-1] != in_dims[-1]:
        raise NsconvError(f"{why.problem}; the onnx2tf route takes frame-wise graphs of shape "
                          f"(1, 1, bins) or (1, bins), not {in_dims}", path)
    import onnx2tf

    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    out = work / "saved_model"
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            onnx2tf.convert(input_onnx_file_path=str(path), output_folder_path=str(out),
                            non_verbose=True,
                            keep_shape_absolutely_input_names=[inputs[0].name])
    except BaseException as exc:  # onnx2tf raises assorted errors and sometimes SystemExit
        raise NsconvError(f"{why.problem}, and onnx2tf could not convert the graph "
                          f"({type(exc).__name__}: {str(exc).strip()[:160]})", path) from None
    if not (out / "saved_model.pb").exists():
        raise NsconvError(f"{why.problem}, and onnx2tf produced no model", path)
    return FramewiseModel(out, inputs[0].name, graph.output[0].name, in_dims[-1],
                          tuple(in_dims))
