# SPDX-License-Identifier: Apache-2.0
"""The reference: per-exit int8 models in the TensorFlow Lite Micro interpreter, streaming.

One TFLM interpreter per exit. GRU states are shared between exits by layer name and follow the
state rule of the generated C (see quantize.py): stored in the state input's quantization,
refreshed after a step by requantizing the state output with TFLM's int8->int8 QUANTIZE
arithmetic, left as they are when a frame's exit does not reach the layer, and initialised to
the input zero point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nsconv.quant.manifest import ExitEntry, Manifest, TensorRef

ARENA_BYTES = 1 << 20


def requantize_state(q: np.ndarray, src: TensorRef, dst: TensorRef) -> np.ndarray:
    """State output (src quantization) -> state input (dst quantization), TFLM QUANTIZE."""
    if src.scale == dst.scale and src.zero_point == dst.zero_point:
        return q.astype(np.int8, copy=True)
    from nsconv.quant import params, refops

    params = params.requantize_params(src.scale, src.zero_point, dst.scale, dst.zero_point)
    return refops.requantize_s8(params, q)


class TflmExit:
    """One exit's int8 model in TFLM."""

    def __init__(self, root: Path, entry: ExitEntry, preserve_all: bool = False) -> None:
        from tflite_micro.python.tflite_micro import runtime

        self.entry = entry
        self.model = (Path(root) / entry.tflite).read_bytes()
        config = (runtime.InterpreterConfig.kPreserveAllTensors if preserve_all
                  else runtime.InterpreterConfig.kAllocationRecording)
        self.interp = runtime.Interpreter.from_bytes(self.model, arena_size=ARENA_BYTES,
                                                     intrepreter_config=config)

    def invoke(self, features_q: np.ndarray, states: dict[str, np.ndarray]):
        """-> (mask int8[bins], {layer: state output int8 in the output's quantization})."""
        e = self.entry
        self.interp.set_input(features_q.reshape(self._shape(e.features.position)).astype(np.int8),
                              e.features.position)
        for s in e.states:
            self.interp.set_input(states[s.layer].reshape(self._shape(s.input.position)),
                                  s.input.position)
        self.interp.invoke()
        mask = np.asarray(self.interp.get_output(e.mask.position)).reshape(-1).copy()
        outs = {s.layer: np.asarray(self.interp.get_output(s.output.position)).reshape(-1).copy()
                for s in e.states}
        return mask, outs

    def _shape(self, position: int) -> tuple[int, ...]:
        return tuple(int(d) for d in self.interp.get_input_details(position)["shape"])

    def tensor(self, index: int) -> np.ndarray:
        """An intermediate tensor of the last invoke (needs preserve_all)."""
        return np.asarray(self.interp.GetTensor(index, 0)["tensor_data"]).copy()


class TflmReference:
    """All exits of an nsconv output directory, streaming with shared states."""

    def __init__(self, root: Path, preserve_all: bool = False) -> None:
        self.manifest = Manifest.load(root)
        self.exits = {e.name: TflmExit(root, e, preserve_all) for e in self.manifest.exits}
        self.state_refs = {}
        for e in self.manifest.exits:
            for s in e.states:
                self.state_refs.setdefault(s.layer, s)
        self.reset()

    def reset(self) -> None:
        self.states = {layer: np.full(s.size, s.input.zero_point, np.int8)
                       for layer, s in self.state_refs.items()}

    def step(self, features_q: np.ndarray, exit_name: str) -> np.ndarray:
        ex = self.exits[exit_name]
        mask, outs = ex.invoke(features_q, self.states)
        for s in ex.entry.states:
            self.states[s.layer] = requantize_state(outs[s.layer], s.output, s.input)
        return mask
