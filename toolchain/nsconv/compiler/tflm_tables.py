# SPDX-License-Identifier: Apache-2.0
"""256-entry tables of int8 unary ops, computed by TFLM itself at generation time.

An int8 -> int8 op of one input (RELU, RELU6, RSQRT, ...) is a function of 256 values. The
table is what TFLM's kernel returns for each of them: the op is cut out of the model with its
input and output quantization and options into a one-op model of shape [256], run once in the
TFLM interpreter on -128..127, and its output is the table. The C then indexes it with the
input byte (nsn_lut_s8), bit-exact with TFLM by construction.
"""

from __future__ import annotations

import copy

import numpy as np

from nsconv.compiler.ndgraph import NdGraph, NdOp

LUT_OPS = frozenset({"RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "RSQRT", "SQRT", "ABS",
                     "NEG", "LEAKY_RELU", "HARD_SWISH", "ELU", "EXP", "LOG", "SIN", "COS"})


_PARSED: dict[str, object] = {}  # sha256 -> the model's object tree (parsed once)


def _parsed(g: NdGraph):
    from tensorflow.lite.python import schema_py_generated as schema

    if g.sha256 not in _PARSED:
        _PARSED.clear()
        _PARSED[g.sha256] = schema.ModelT.InitFromPackedBuf(g.raw, 0)
    return _PARSED[g.sha256]


def one_op_model(g: NdGraph, op: NdOp, length: int = 256) -> bytes:
    """The op alone, its input and output flattened to [length], as a TFLite flatbuffer."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    model = _parsed(g)
    sg = model.subgraphs[0]
    raw_op = sg.operators[op.index]
    out = schema.ModelT()
    out.version = 3
    out.description = "nsconv one-op table"
    code = copy.deepcopy(model.operatorCodes[raw_op.opcodeIndex])
    out.operatorCodes = [code]
    empty = schema.BufferT()
    out.buffers = [empty]
    tensors = []
    for i in (op.inputs[0], op.outputs[0]):
        t = copy.deepcopy(sg.tensors[i])
        t.shape = np.array([length], dtype=np.int32)
        t.shapeSignature = None
        t.buffer = 0
        tensors.append(t)
    new_op = schema.OperatorT()
    new_op.opcodeIndex = 0
    new_op.inputs = np.array([0], dtype=np.int32)
    new_op.outputs = np.array([1], dtype=np.int32)
    new_op.builtinOptionsType = raw_op.builtinOptionsType
    new_op.builtinOptions = copy.deepcopy(raw_op.builtinOptions)
    sub = schema.SubGraphT()
    sub.tensors = tensors
    sub.inputs = np.array([0], dtype=np.int32)
    sub.outputs = np.array([1], dtype=np.int32)
    sub.operators = [new_op]
    sub.name = "main"
    out.subgraphs = [sub]
    builder = flatbuffers.Builder(1024)
    builder.Finish(out.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def lut_s8(g: NdGraph, op: NdOp) -> np.ndarray:
    """TFLM's int8 output for each int8 input, indexed by the input byte (uint8)."""
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(one_op_model(g, op), arena_size=64 << 10)
    x = np.arange(256, dtype=np.uint8).view(np.int8)  # table index = (uint8_t)input
    interp.set_input(x, 0)
    interp.invoke()
    return np.asarray(interp.get_output(0)).astype(np.int8).reshape(256)
