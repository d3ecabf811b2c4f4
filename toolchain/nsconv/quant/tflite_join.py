# SPDX-License-Identifier: Apache-2.0
"""Join separately converted TFLite segments into one model (one subgraph).

The TFLite converter quantizes a whole model in one mode (int8, or int16 activations with int8
weights). A mix is made by converting runs of a model separately and joining them here: a
segment's input named like an earlier segment's output reads that tensor; where the two differ
in type or quantization a QUANTIZE op requantizes (TFLM's QUANTIZE handles int8<->int16 and
int16->int16), otherwise the tensor is shared. Inputs named like a model input read it.
"""

from __future__ import annotations

import numpy as np

from nsconv.errors import NsconvError


def _schema():
    from tensorflow.lite.python import schema_py_generated as schema

    return schema


def _name(t) -> str:
    n = t.name
    return n.decode() if isinstance(n, bytes) else str(n)


def rename_outputs(tflite: bytes, names: list[str]) -> bytes:
    """Name a converted model's outputs (`Identity`, `Identity_1`, ... in the order of the sorted
    output keys, as TF flattens a returned dict) and order them as `names` sorted."""
    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(tflite, 0)
    sg = model.subgraphs[0]
    keys = sorted(names)
    by_pos = {}
    for o in sg.outputs:
        n = _name(sg.tensors[o])
        k = 0 if n == "Identity" else int(n.rsplit("_", 1)[1])
        sg.tensors[o].name = keys[k].encode()
        by_pos[k] = o
    sg.outputs = np.array([by_pos[k] for k in range(len(keys))], np.int32)
    return pack(model)


def pack(model) -> bytes:
    import flatbuffers

    b = flatbuffers.Builder(1 << 20)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _same_quant(a, b) -> bool:
    if a.type != b.type:
        return False
    qa, qb = a.quantization, b.quantization
    if qa is None or qb is None or qa.scale is None or qb.scale is None:
        return qa is None and qb is None
    return (np.array_equal(np.asarray(qa.scale), np.asarray(qb.scale))
            and np.array_equal(np.asarray(qa.zeroPoint), np.asarray(qb.zeroPoint)))


class _Joiner:
    def __init__(self, schema) -> None:
        self.s = schema
        self.model = schema.ModelT()
        self.model.version = 3
        self.model.description = b"nsconv joined segments"
        self.model.buffers = [schema.BufferT()]
        self.model.operatorCodes = []
        self.codes: dict[tuple, int] = {}
        sg = schema.SubGraphT()
        sg.tensors, sg.operators, sg.name = [], [], b"main"
        self.sg = sg
        self.model.subgraphs = [sg]

    def code(self, oc) -> int:
        key = (int(oc.builtinCode), int(oc.deprecatedBuiltinCode), oc.customCode)
        if key not in self.codes:
            new = self.s.OperatorCodeT()
            new.builtinCode, new.deprecatedBuiltinCode = oc.builtinCode, oc.deprecatedBuiltinCode
            new.customCode, new.version = oc.customCode, oc.version
            self.codes[key] = len(self.model.operatorCodes)
            self.model.operatorCodes.append(new)
        else:
            old = self.model.operatorCodes[self.codes[key]]
            old.version = max(old.version, oc.version)
        return self.codes[key]

    def tensor(self, t, buffers) -> int:
        data = buffers[t.buffer].data if t.buffer else None
        if data is not None and len(data):
            buf = self.s.BufferT()
            buf.data = np.asarray(data, np.uint8).copy()
            t.buffer = len(self.model.buffers)
            self.model.buffers.append(buf)
        else:
            t.buffer = 0
        self.sg.tensors.append(t)
        return len(self.sg.tensors) - 1

    def quantize(self, src: int, dst: int) -> None:
        oc = self.s.OperatorCodeT()
        oc.builtinCode = self.s.BuiltinOperator.QUANTIZE
        oc.deprecatedBuiltinCode = self.s.BuiltinOperator.QUANTIZE
        oc.version = 1
        op = self.s.OperatorT()
        op.opcodeIndex = self.code(oc)
        op.inputs = np.array([src], np.int32)
        op.outputs = np.array([dst], np.int32)
        self.sg.operators.append(op)


def join(segments: list[bytes], inputs: list[str], outputs: list[str]) -> bytes:
    """One model from segments (in execution order), with model inputs and outputs named."""
    schema = _schema()
    j = _Joiner(schema)
    produced: dict[str, int] = {}
    model_in: dict[str, int] = {}
    for k, blob in enumerate(segments):
        seg = schema.ModelT.InitFromPackedBuf(blob, 0)
        if len(seg.subgraphs) != 1:
            raise NsconvError(f"segment {k} has {len(seg.subgraphs)} subgraphs", "<join>")
        sg = seg.subgraphs[0]
        seg_inputs = set(int(i) for i in sg.inputs)
        tmap: dict[int, int] = {}
        for i, t in enumerate(sg.tensors):
            name = _name(t)
            if i in seg_inputs and name not in inputs:
                if name not in produced:
                    raise NsconvError(f"segment {k} reads {name!r}, which nothing produced",
                                      "<join>")
                src = produced[name]
                if _same_quant(j.sg.tensors[src], t):
                    tmap[i] = src
                else:
                    t.name = f"{name}/requantized{k}".encode()
                    tmap[i] = j.tensor(t, seg.buffers)
                    j.quantize(src, tmap[i])
                continue
            tmap[i] = j.tensor(t, seg.buffers)
            if i in seg_inputs:
                if name in model_in:
                    raise NsconvError(f"model input {name!r} read by two segments", "<join>")
                model_in[name] = tmap[i]
        for op in sg.operators:
            op.opcodeIndex = j.code(seg.operatorCodes[op.opcodeIndex])
            op.inputs = np.array([tmap[int(i)] if i >= 0 else -1 for i in op.inputs], np.int32)
            op.outputs = np.array([tmap[int(i)] for i in op.outputs], np.int32)
            if op.intermediates is not None and len(op.intermediates):
                op.intermediates = np.array([tmap[int(i)] for i in op.intermediates], np.int32)
            j.sg.operators.append(op)
        for o in sg.outputs:
            produced[_name(sg.tensors[int(o)])] = tmap[int(o)]
    missing = [n for n in inputs if n not in model_in] + [n for n in outputs if n not in produced]
    if missing:
        raise NsconvError(f"joined model lacks {missing}", "<join>")
    j.sg.inputs = np.array([model_in[n] for n in inputs], np.int32)
    j.sg.outputs = np.array([produced[n] for n in outputs], np.int32)
    return pack(j.model)
