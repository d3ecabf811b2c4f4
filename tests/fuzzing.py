# SPDX-License-Identifier: Apache-2.0
"""Mutation fuzzing of nsconv's readers: .onnx, .tflite, model descriptions (.npz), wav.

Inputs are mutated from valid seeds (truncations, bit flips, byte runs, structured edits: wrong
types and shapes, huge dimensions, NaN/Inf weights, empty files). Each reader runs in a worker
process that takes one input at a time, so a crash (a signal) or a hang (past the per-input time
bound) is caught and counted instead of ending the run. A reader may accept an input; if it
refuses, the refusal must be an NsconvError whose one-line message names the file. Anything
else (another exception type, a multi-line message, a message without the path, a crash, a
hang) is a finding.
"""

from __future__ import annotations

import io
import json
import os
import random
import select
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

READERS = ("onnx", "tflite", "netspec", "wav")
SUFFIX = {"onnx": ".onnx", "tflite": ".tflite", "netspec": ".npz", "wav": ".wav"}


# ------------------------------------------------------------------------------------------
# worker side
# ------------------------------------------------------------------------------------------

def _read(reader: str, path: str) -> None:
    if reader == "onnx":
        from nsconv.model.onnx_import import import_onnx

        import_onnx(Path(path))
    elif reader == "tflite":
        from nsconv.compiler.tflite_ir import read_tflite

        read_tflite(path)
    elif reader == "netspec":
        from nsconv.model.netspec import NetSpec

        NetSpec.load(Path(path))
    elif reader == "wav":
        from nsconv.audio.wav import read_wav

        read_wav(path)
    else:
        raise ValueError(reader)


def worker() -> None:
    """Reads {"reader", "path"} lines; answers {"status", "message"} lines."""
    import traceback

    from nsconv.errors import NsconvError

    for line in sys.stdin:
        req = json.loads(line)
        try:
            _read(req["reader"], req["path"])
            res = {"status": "accepted"}
        except NsconvError as exc:
            res = {"status": "rejected", "message": str(exc)}
        except BaseException as exc:  # a finding: report it, keep serving
            res = {"status": "exception", "message": f"{type(exc).__name__}: {exc}"[:300],
                   "traceback": traceback.format_exc()[-1500:]}
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()


# ------------------------------------------------------------------------------------------
# seeds
# ------------------------------------------------------------------------------------------

def tiny_nsnet_onnx(bins: int = 9, hidden: int = 6, seed: int = 0) -> bytes:
    """A small nsNet2-family graph as PyTorch exports it: FC+Relu, GRU (zero state), FC+Sigmoid."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)

    def init(name, shape):
        return numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)

    nodes = [
        helper.make_node("MatMul", ["input", "w1"], ["a"]),
        helper.make_node("Add", ["a", "b1"], ["b"]),
        helper.make_node("Relu", ["b"], ["c"]),
        helper.make_node("Transpose", ["c"], ["ct"], perm=[1, 0, 2]),
        helper.make_node("Shape", ["c"], ["shp"]),
        helper.make_node("Gather", ["shp", "zero_i"], ["bs"], axis=0),
        helper.make_node("Unsqueeze", ["bs"], ["bs1"], axes=[0]),
        helper.make_node("Concat", ["one_i", "bs1", "hid_i"], ["hshape"], axis=0),
        helper.make_node("ConstantOfShape", ["hshape"], ["h0"]),
        helper.make_node("GRU", ["ct", "W", "R", "B", "", "h0"], ["y", "yh"], hidden_size=hidden,
                         linear_before_reset=1),
        helper.make_node("Squeeze", ["y"], ["ys"], axes=[1]),
        helper.make_node("Transpose", ["ys"], ["yt"], perm=[1, 0, 2]),
        helper.make_node("MatMul", ["yt", "w2"], ["d"]),
        helper.make_node("Add", ["d", "b2"], ["e"]),
        helper.make_node("Sigmoid", ["e"], ["output"]),
    ]
    inits = [init("w1", (bins, hidden)), init("b1", (hidden,)),
             init("W", (1, 3 * hidden, hidden)), init("R", (1, 3 * hidden, hidden)),
             init("B", (1, 6 * hidden)), init("w2", (hidden, bins)), init("b2", (bins,)),
             numpy_helper.from_array(np.array(0, np.int64), "zero_i"),
             numpy_helper.from_array(np.array([1], np.int64), "one_i"),
             numpy_helper.from_array(np.array([hidden], np.int64), "hid_i")]
    graph = helper.make_graph(
        nodes, "tiny_nsnet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", "frames", bins])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", "frames", bins])],
        inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]).SerializeToString()


def tiny_spec(bins: int = 9, hidden: int = 6, seed: int = 0):
    from nsconv.model.netspec import GRU, Dense, ExitSpec, NetSpec

    rng = np.random.default_rng(seed)

    def r(*shape):
        return rng.normal(0, 0.3, shape).astype(np.float32)

    layers = {"fc1": Dense("fc1", r(bins, hidden), r(hidden), "relu"),
              "gru1": GRU("gru1", r(3 * hidden, hidden), r(3 * hidden, hidden), r(3 * hidden),
                          r(3 * hidden)),
              "head1": Dense("head1", r(hidden, bins), r(bins), "sigmoid")}
    return NetSpec(bins, layers, ("fc1", "gru1"), (ExitSpec("gru1", "gru1", ("head1",)),))


def tiny_netspec(bins: int = 161, hidden: int = 6, seed: int = 0) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        tiny_spec(bins, hidden, seed).save(Path(d) / "m.npz")
        return (Path(d) / "m.npz").read_bytes()


def tiny_tflite(seed: int = 0) -> bytes:
    """The tiny NetSpec's one exit as int8 TFLite (real converter, random calibration)."""
    from nsconv.quant.quantize import convert_exit

    spec = tiny_spec(seed=seed)
    rng = np.random.default_rng(seed)
    samples = [{"features": rng.normal(0, 2, (1, spec.input_size)).astype(np.float32),
                "state_gru1": rng.uniform(-1, 1, (1, 6)).astype(np.float32)} for _ in range(32)]
    return convert_exit(spec, spec.exits[0], samples).tflite


def wav_seeds(speech: np.ndarray) -> list[bytes]:
    import soundfile as sf

    out = []
    x = speech[:4000]
    for subtype, rate, chans in (("PCM_16", 16000, 1), ("PCM_24", 16000, 1), ("FLOAT", 16000, 1),
                                 ("PCM_U8", 16000, 1), ("PCM_32", 16000, 1),
                                 ("PCM_16", 16000, 2), ("PCM_16", 8000, 1)):
        buf = io.BytesIO()
        data = np.stack([x] * chans, 1) if chans > 1 else x
        sf.write(buf, data, rate, subtype=subtype, format="WAV")
        out.append(buf.getvalue())
    return out


# ------------------------------------------------------------------------------------------
# mutations
# ------------------------------------------------------------------------------------------

INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0xFE]


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(8)
    if not b or kind == 0:
        return bytes(b[: rng.randrange(len(b) + 1)])  # truncation (possibly to empty)
    if kind == 1:
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == 2:
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.choice(INTERESTING)
    elif kind == 3:
        i = rng.randrange(len(b))
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif kind == 4:
        i = rng.randrange(len(b))
        del b[i : i + rng.randint(1, 64)]
    elif kind == 5:  # a 32-bit field set to an extreme value (sizes, offsets, counts)
        if len(b) >= 4:
            i = rng.randrange(len(b) - 3)
            b[i : i + 4] = struct.pack("<I", rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF,
                                                          0x10000000, rng.randrange(1 << 32)]))
    elif kind == 6:
        i, j = sorted(rng.randrange(len(b)) for _ in range(2))
        b[j:j] = b[i : min(j, i + 256)]
    else:
        return b""
    return bytes(b)


def mutate_onnx(data: bytes, rng: random.Random) -> bytes:
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load_from_string(data)
    g = model.graph
    kind = rng.randrange(7)
    if kind == 0 and g.initializer:  # NaN / Inf weights
        t = rng.choice(list(g.initializer))
        arr = numpy_helper.to_array(t).copy()
        if arr.dtype == np.float32 and arr.size:
            arr.flat[rng.randrange(arr.size)] = rng.choice([np.nan, np.inf, -np.inf, 3e38])
            t.CopyFrom(numpy_helper.from_array(arr, t.name))
    elif kind == 1 and g.initializer:  # wrong / huge shapes
        t = rng.choice(list(g.initializer))
        if t.dims:
            t.dims[rng.randrange(len(t.dims))] = rng.choice([0, 1, 7, 1 << 20, 1 << 40, -3])
    elif kind == 2 and g.initializer:  # wrong types
        t = rng.choice(list(g.initializer))
        t.data_type = rng.choice([TensorProto.INT8, TensorProto.DOUBLE, TensorProto.STRING,
                                  TensorProto.FLOAT16, TensorProto.INT64, 999])
    elif kind == 3 and g.node:  # op swapped for another
        rng.choice(list(g.node)).op_type = rng.choice(
            ["Softmax", "LSTM", "Conv", "Tanh", "Add", "MatMul", "Gemm", "NoSuchOp", "GRU"])
    elif kind == 4 and g.node:  # node dropped or inputs rewired
        nodes = list(g.node)
        victim = rng.choice(nodes)
        if rng.random() < 0.5:
            g.node.remove(victim)
        elif victim.input:
            victim.input[rng.randrange(len(victim.input))] = rng.choice(
                [n.output[0] for n in nodes if n.output] + ["", "missing"])
    elif kind == 5 and g.node:  # attribute values
        node = rng.choice(list(g.node))
        for a in node.attribute:
            if a.type == onnx.AttributeProto.INT:
                a.i = rng.choice([0, 1, -1, 1 << 31, 3])
            elif a.type == onnx.AttributeProto.INTS and a.ints:
                a.ints[0] = rng.choice([0, 5, -7])
    elif kind == 6:  # input shape
        dims = g.input[0].type.tensor_type.shape.dim
        if dims:
            dims[-1].dim_value = rng.choice([0, 1, 160, 1 << 30])
    return model.SerializeToString()


def mutate_netspec(data: bytes, rng: random.Random) -> bytes:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    spec = json.loads(str(arrays["spec"]))
    kind = rng.randrange(7)
    keys = [k for k in arrays if k != "spec"]
    if kind == 0:
        k = rng.choice(keys)
        a = arrays[k].astype(np.float32).copy()
        a.flat[rng.randrange(a.size)] = rng.choice([np.nan, np.inf, -np.inf])
        arrays[k] = a
    elif kind == 1:
        k = rng.choice(keys)
        arrays[k] = rng.choice([arrays[k].T.copy(), arrays[k][..., :1].copy(),
                                np.zeros((2, 2, 2), np.float32), np.zeros(0, np.float32)])
    elif kind == 2:
        k = rng.choice(keys)
        arrays[k] = rng.choice([arrays[k].astype(np.int64), np.array("text"),
                                np.array([True, False])])
    elif kind == 3:
        del arrays[rng.choice(keys)]
    elif kind == 4:  # JSON: wrong types / values
        target = rng.choice(["input_size", "backbone", "exits", "layers", "format"])
        spec[target] = rng.choice([None, -1, 1 << 40, "x", [], {}, [1, 2], 3.5])
    elif kind == 5:
        if spec["exits"]:
            e = rng.choice(spec["exits"])
            e[rng.choice(["name", "after", "head"])] = rng.choice(["", "nope", [], None, 7, ["fc1"]])
    else:
        if spec["layers"]:
            layer = rng.choice(spec["layers"])
            layer[rng.choice(["type", "name", "activation"])] = rng.choice(
                ["lstm", "softmax", "", None, 5, "fc2"])
    arrays["spec"] = np.array(json.dumps(spec))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


STRUCTURED = {"onnx": mutate_onnx, "netspec": mutate_netspec}


def mutate(reader: str, seed: bytes, rng: random.Random) -> bytes:
    fn = STRUCTURED.get(reader)
    if fn is not None and rng.random() < 0.5:
        try:
            return fn(seed, rng)
        except Exception:
            pass  # the seed's structure did not allow this edit: fall back to bytes
    return mutate_bytes(seed, rng)


# ------------------------------------------------------------------------------------------
# driver
# ------------------------------------------------------------------------------------------

@dataclass
class Stats:
    reader: str
    inputs: int = 0
    accepted: int = 0
    rejected: int = 0
    findings: list = field(default_factory=list)  # (kind, message, kept input path)
    slowest: float = 0.0

    def to_json(self) -> dict:
        kinds: dict[str, int] = {}
        for k, _, _ in self.findings:
            kinds[k] = kinds.get(k, 0) + 1
        return {"reader": self.reader, "inputs": self.inputs, "accepted": self.accepted,
                "rejected": self.rejected, "crashes": kinds.get("crash", 0),
                "hangs": kinds.get("hang", 0), "exceptions": kinds.get("exception", 0),
                "bad_messages": kinds.get("bad-message", 0),
                "slowest_seconds": round(self.slowest, 3)}


class _Worker:
    def __init__(self) -> None:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(Path(__file__).parent))
        self.proc = subprocess.Popen([sys.executable, "-c", "import fuzzing; fuzzing.worker()"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env)

    def ask(self, reader: str, path: Path, timeout: float):
        self.proc.stdin.write(json.dumps({"reader": reader, "path": str(path)}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None  # hang
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {"status": "crash",
                                              "message": f"exit {self.proc.wait()}"}

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def run(reader: str, seeds: list[bytes], count: int, rng_seed: int = 0,
        timeout: float = 10.0, keep_dir: Path | None = None) -> Stats:
    rng = random.Random(rng_seed)
    stats = Stats(reader)
    worker_ = _Worker()
    # the first request pays the imports; give it room
    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / ("warm" + SUFFIX[reader])
        warm.write_bytes(seeds[0])
        worker_.ask(reader, warm, 120)
        try:
            for i in range(count):
                data = mutate(reader, rng.choice(seeds), rng)
                path = Path(tmp) / f"in{i % 16}{SUFFIX[reader]}"
                path.write_bytes(data)
                t0 = time.monotonic()
                res = worker_.ask(reader, path, timeout)
                stats.slowest = max(stats.slowest, time.monotonic() - t0)
                stats.inputs += 1
                finding = None
                if res is None:
                    finding = ("hang", f"no answer within {timeout} s")
                elif res["status"] == "accepted":
                    stats.accepted += 1
                elif res["status"] == "rejected":
                    msg = res["message"]
                    if "\n" in msg or str(path) not in msg:
                        finding = ("bad-message", msg)
                    else:
                        stats.rejected += 1
                else:
                    finding = (res["status"], res.get("message", "") + "\n"
                               + res.get("traceback", ""))
                if finding:
                    kept = None
                    if keep_dir is not None:
                        keep_dir.mkdir(parents=True, exist_ok=True)
                        kept = keep_dir / f"{reader}-{i}{SUFFIX[reader]}"
                        kept.write_bytes(data)
                    stats.findings.append((finding[0], finding[1], kept))
                    if finding[0] in ("hang", "crash"):
                        worker_.close()
                        worker_ = _Worker()
                        worker_.ask(reader, warm, 120)
        finally:
            worker_.close()
    return stats


def seeds_for(reader: str, repo: Path) -> list[bytes]:
    from nsconv.audio.wav import read_wav

    if reader == "onnx":
        return [tiny_nsnet_onnx(seed=s) for s in range(3)]
    if reader == "netspec":
        return [tiny_netspec(seed=s) for s in range(3)]
    if reader == "wav":
        return wav_seeds(read_wav(repo / "tests" / "data" / "p232_043_noisy.wav"))
    if reader == "tflite":
        return [tiny_tflite(seed=s) for s in range(2)]
    raise ValueError(reader)
