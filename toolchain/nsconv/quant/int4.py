# SPDX-License-Identifier: Apache-2.0
"""4-bit weights carried by the int8 TFLite models: the int4 grid, rounding, and the patcher.

A layer in int4 keeps every FULLY_CONNECTED of its weights (a Dense: one; a GRU: six, the
`<gru>_xz, _hz, _xr, _hr, _xn, _hn` matrices of model/stepmodel.py) in the int8 .tflite, with

  filter   the int4 values themselves, q in [-7, 7], stored as int8 (symmetric, zero point 0)
  scales   one per output channel (axis 0): the int4 scale s[c], so w ~ q * s[c]
  bias     int32, re-quantized as the converter does: round(b / (s_in * s[c])), s_in the FC
           input's scale; its quantization scales become s_in * s[c]

so TFLM, which recomputes every multiplier from the scales at Prepare, computes exactly what a
packed int4 kernel must compute, and `verify` compares with it as for int8. `patch_fc_weights`
writes these values into the flatbuffer in place (every patched vector keeps its length), so all
other bytes of the model stay as the converter wrote them.

The int4 values and scales of a layer depend only on its float weights (and, for the
error-compensating rounding of quant/gptq.py, on the float calibration trajectory, which does
not depend on the exit), and the bias only on them and the FC input's scale, which exits that
share the layer share too; so every exit's .tflite gets the same int4 values, scales and bias,
and graph_merge still emits the shared tensors once.

Round-to-nearest (`rtn`): per output channel, symmetric, s = max|w_row| / 7, q = round(w / s).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from nsconv.model.netspec import GRU, Dense, NetSpec

INT4_MAX = 7  # symmetric: [-7, 7]; -8 is not used, so negation stays in range
GRU_MATRICES = ("xz", "hz", "xr", "hr", "xn", "hn")
FORMATS = ("int8", "int4")


@dataclass(frozen=True, eq=False)
class FcMatrix:
    """One FULLY_CONNECTED of a NetSpec layer: the float weights as the .tflite holds them
    ((out, in), rows are output channels), the float bias (None: the FC has none), and which
    of the layer's inputs it reads ('x': the layer input; 'h': a GRU's state)."""

    name: str  # the Keras layer name in the step model, e.g. "fc1" or "gru1_xz"
    layer: str  # the NetSpec layer
    weight: np.ndarray
    bias: np.ndarray | None
    operand: str = "x"


@dataclass(frozen=True, eq=False)
class Int4Weights:
    """The int4-grid weights of one FULLY_CONNECTED.

    values: (out, in) int8 holding integers in [-7, 7]; scales: (out,) float32, > 0;
    bias: the float bias (out,) to quantize with the new scales, or None to keep the model's
    own float bias (its int32 bias dequantized with the old scales, then re-quantized)."""

    values: np.ndarray
    scales: np.ndarray
    bias: np.ndarray | None = None

    def __post_init__(self) -> None:
        v = np.asarray(self.values)
        if v.ndim != 2 or v.dtype != np.int8:
            raise ValueError(f"int4 values must be a 2-D int8 array, got {v.dtype} {v.shape}")
        if v.size and (int(v.min()) < -INT4_MAX or int(v.max()) > INT4_MAX):
            raise ValueError(f"int4 values outside [-{INT4_MAX}, {INT4_MAX}]")
        s = np.asarray(self.scales)
        if s.shape != (v.shape[0],) or not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ValueError("int4 scales must be one positive finite value per output row")

    def dequantized(self) -> np.ndarray:
        return self.values.astype(np.float32) * self.scales.astype(np.float32)[:, None]


def layer_matrices(spec: NetSpec, layer: str) -> list[FcMatrix]:
    """The FULLY_CONNECTED matrices of a NetSpec layer, as build_step_model writes them."""
    L = spec.layers[layer]
    if isinstance(L, Dense):
        return [FcMatrix(L.name, L.name, np.ascontiguousarray(L.weight.T), L.bias, "x")]
    assert isinstance(L, GRU)
    H = L.hidden
    out = []
    for k, gate in enumerate(("z", "r", "n")):
        rows = slice(k * H, (k + 1) * H)
        # the same float32 sums as stepmodel._gru_step, so the bias is the one the converter saw
        xb = L.wb[rows] + L.rb[rows] if gate != "n" else L.wb[rows]
        hb = None if gate != "n" else L.rb[rows]
        out.append(FcMatrix(f"{L.name}_x{gate}", L.name, np.ascontiguousarray(L.w[rows]), xb, "x"))
        out.append(FcMatrix(f"{L.name}_h{gate}", L.name, np.ascontiguousarray(L.r[rows]), hb, "h"))
    order = {m: i for i, m in enumerate(GRU_MATRICES)}
    return sorted(out, key=lambda m: order[m.name.rsplit("_", 1)[1]])


def rtn(weight: np.ndarray, scales: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Round-to-nearest int4, per output row (axis 0), symmetric: (values int8, scales f32).

    scales default to max|w_row| / 7 (a row of zeros gets scale 1: its values are all 0)."""
    w = np.asarray(weight, np.float32)
    if scales is None:
        scales = rtn_scales(w)
    s = np.asarray(scales, np.float32)
    q = np.clip(np.round(w / s[:, None]), -INT4_MAX, INT4_MAX).astype(np.int8)
    return q, s


def rtn_scales(weight: np.ndarray) -> np.ndarray:
    peak = np.max(np.abs(np.asarray(weight, np.float32)), axis=1)
    return np.where(peak > 0, peak / np.float32(INT4_MAX), np.float32(1.0)).astype(np.float32)


def rtn_layer(spec: NetSpec, layer: str) -> dict[str, Int4Weights]:
    """Round-to-nearest int4 for every FULLY_CONNECTED of a layer, keyed by Keras name."""
    out = {}
    for m in layer_matrices(spec, layer):
        q, s = rtn(m.weight)
        out[m.name] = Int4Weights(q, s, m.bias)
    return out


# ---------------------------------------------------------------------------------------------
# Finding a layer's FULLY_CONNECTED ops in a converted step model


def fc_weight_tensors(tflite: bytes) -> dict[str, int]:
    """{Keras layer name: weight tensor index} of every FULLY_CONNECTED of a step model.

    The converter names a weight tensor `step_<exit>_1/<layer>_1/MatMul` (Keras scope suffixes
    `_1`, `_2`, ... vary), so the layer is the path component after the model's scope."""
    fb = _Flatbuffer(tflite)
    found: dict[str, int] = {}
    for _, w, _ in fb.fc_ops():
        name = _keras_layer(fb.name(w))
        if name in found:
            raise ValueError(f"two FULLY_CONNECTED ops name layer {name!r}")
        found[name] = w
    return found


def _keras_layer(tensor_name: str) -> str:
    parts = tensor_name.split(";")[0].split("/")
    if len(parts) < 3:
        raise ValueError(f"weight tensor {tensor_name!r} does not name its Keras layer")
    return re.sub(r"_\d+$", "", parts[1])


def int4_tensor_names(tflite: bytes, names) -> list[str]:
    """The .tflite names of the weight tensors of the Keras layers `names` (manifest
    `int4_weights`), in tensor-index order."""
    tensors = fc_weight_tensors(tflite)
    missing = sorted(set(names) - set(tensors))
    if missing:
        raise ValueError(f"no FULLY_CONNECTED for {', '.join(missing)}")
    fb = _Flatbuffer(tflite)
    return [fb.name(i) for i in sorted(tensors[n] for n in names)]


# ---------------------------------------------------------------------------------------------
# Patching the flatbuffer


def patch_fc_weights(tflite: bytes, layers: Mapping[str, Int4Weights]) -> bytes:
    """The model with int4-grid weights in the FULLY_CONNECTED ops of `layers`, written in
    place: filter values, filter scales, int32 bias and bias scales. Keys: the Keras layer name
    of the FC ("fc3", "gru1_xz", ...) or its weight tensor's index. Layers the model does not
    hold are an error; every other byte is left as it was.
    """
    fb = _Flatbuffer(tflite)
    ops: dict[str | int, tuple[int, int, int]] = {}
    for x, w, b in fb.fc_ops():
        ops[w] = (x, w, b)
        with contextlib.suppress(ValueError):  # a name that is not a step model's: index only
            ops[_keras_layer(fb.name(w))] = (x, w, b)
    missing = sorted(str(k) for k in set(layers) - set(ops))
    if missing:
        raise ValueError(f"the model has no FULLY_CONNECTED for {', '.join(missing)}")
    for name, w4 in layers.items():
        x, w, b = ops[name]
        if tuple(w4.values.shape) != fb.shape(w):
            raise ValueError(f"{name}: int4 values {w4.values.shape} for weights {fb.shape(w)}")
        old = fb.scales(w)
        scales = np.asarray(w4.scales, np.float32)
        fb.write_data(w, np.ascontiguousarray(w4.values, np.int8).tobytes())
        fb.write_scales(w, scales)
        if b < 0:
            if w4.bias is not None and np.any(w4.bias):
                raise ValueError(f"{name}: a bias is given but the FULLY_CONNECTED has none")
            continue
        s_in = fb.scales(x)[0]
        fbias = (np.asarray(w4.bias, np.float32) if w4.bias is not None
                 else np.frombuffer(fb.data(b), "<i4") * (np.float64(s_in) * old))
        fb.write_data(b, quantize_bias(fbias, s_in, scales).astype("<i4").tobytes())
        fb.write_scales(b, (np.float32(s_in) * scales).astype(np.float32))
    return fb.bytes()


def quantize_bias(bias: np.ndarray, input_scale: float, scales: np.ndarray) -> np.ndarray:
    """int32 bias for scale input_scale * scales[c], as the TFLite converter rounds it."""
    s = np.float32(input_scale) * np.asarray(scales, np.float32)
    q = np.round(np.asarray(bias, np.float32) / s)
    if np.any(np.abs(q) > np.iinfo(np.int32).max):
        raise ValueError("bias does not fit int32 with these scales")
    return q.astype(np.int32)


class _Flatbuffer:
    """In-place writes of tensor buffer contents and quantization scales of subgraph 0."""

    def __init__(self, tflite: bytes) -> None:
        from tensorflow.lite.python import schema_py_generated as schema

        self.buf = bytearray(tflite)
        self.model = schema.Model.GetRootAs(self.buf, 0)
        self.sg = self.model.Subgraphs(0)
        self.written: list[tuple[int, int]] = []
        self.buffer_users: dict[int, int] = {}
        for i in range(self.sg.TensorsLength()):
            b = self.sg.Tensors(i).Buffer()
            self.buffer_users[b] = self.buffer_users.get(b, 0) + 1

    def fc_ops(self) -> list[tuple[int, int, int]]:
        """(input, weights, bias or -1) tensor indices of every FULLY_CONNECTED."""
        from tensorflow.lite.python import schema_py_generated as schema

        out = []
        for k in range(self.sg.OperatorsLength()):
            op = self.sg.Operators(k)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            if builtin == schema.BuiltinOperator.FULLY_CONNECTED:
                ins = [int(i) for i in op.InputsAsNumpy()]
                out.append((ins[0], ins[1], ins[2] if len(ins) > 2 else -1))
        return out

    def name(self, tensor: int) -> str:
        return self.sg.Tensors(tensor).Name().decode()

    def shape(self, tensor: int) -> tuple[int, ...]:
        return tuple(int(d) for d in self.sg.Tensors(tensor).ShapeAsNumpy())

    def scales(self, tensor: int) -> np.ndarray:
        q = self.sg.Tensors(tensor).Quantization()
        return np.array(q.ScaleAsNumpy(), np.float32) if q is not None else np.zeros(0)  # a copy

    def _data_span(self, tensor: int) -> tuple[int, int]:
        t = self.sg.Tensors(tensor)
        b = self.model.Buffers(t.Buffer())
        if b.Offset() > 1:  # data kept after the flatbuffer (models over 2 GB)
            return int(b.Offset()), int(b.Size())
        return b._tab.Vector(b._tab.Offset(4)), b.DataLength()

    def data(self, tensor: int) -> bytes:
        start, n = self._data_span(tensor)
        return bytes(self.buf[start:start + n])

    def _span(self, start: int, n: int) -> None:
        for a, m in self.written:
            if start < a + m and a < start + n:
                raise ValueError("two patched vectors share bytes in the flatbuffer")
        self.written.append((start, n))

    def write_data(self, tensor: int, data: bytes) -> None:
        t = self.sg.Tensors(tensor)
        if t.Buffer() <= 0 or self.buffer_users[t.Buffer()] != 1:
            raise ValueError(f"tensor {t.Name().decode()!r} does not own its buffer")
        start, n = self._data_span(tensor)
        if n != len(data):
            raise ValueError(f"tensor {t.Name().decode()!r} holds {n} bytes, not {len(data)}")
        self._span(start, n)
        self.buf[start:start + n] = data

    def write_scales(self, tensor: int, scales: np.ndarray) -> None:
        t = self.sg.Tensors(tensor)
        q = t.Quantization()
        if q is None or q.ScaleLength() != len(scales):
            raise ValueError(f"tensor {t.Name().decode()!r} has no {len(scales)} scales")
        start = q._tab.Vector(q._tab.Offset(8))
        raw = np.asarray(scales, "<f4").tobytes()
        self._span(start, len(raw))
        self.buf[start:start + len(raw)] = raw

    def bytes(self) -> bytes:
        return bytes(self.buf)
