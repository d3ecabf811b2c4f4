# SPDX-License-Identifier: Apache-2.0
"""Bring your own model: nsNet2-family models written in PyTorch and Keras, exported the usual
way, come in with their names, their exits and their real refusal causes.

The float step model of the imported NetSpec must reproduce the source framework's own masks
(torch's forward, keras' predict) on real features, frame by frame from zero state.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import DATA
from models.layouts import EXITS, LAYOUTS, export_torch, keras_model, torch_masks, torch_model
from nsconv.audio import frontend
from nsconv.audio.wav import read_wav
from nsconv.errors import NsconvError
from nsconv.model.onnx_import import OutsideFamily, import_onnx
from nsconv.model.stepmodel import FloatStepper

torch = pytest.importorskip("torch")  # the `test` extra

CLIP = DATA / "0072_noisy.wav"
ALL = os.environ.get("NSCONV_TEST_MODELS") == "1"  # `make test-models`: everything, whole
SMALL = LAYOUTS["dns16k"].__class__("small", 16000, 320, 160, 320, 48, 32, 40)


@pytest.fixture(scope="module")
def feats() -> np.ndarray:
    return frontend.features(frontend.stft(read_wav(CLIP)))[:60]


def _check_same(spec, net, feats, tol=2e-5):
    ref = torch_masks(net, feats)
    assert {e.name for e in spec.exits} == EXITS
    for ex in spec.exits:
        got = FloatStepper(spec, ex).run(feats)
        assert np.abs(got - ref[ex.name]).max() <= tol, ex.name
    return ref


@pytest.mark.parametrize("kwargs", [
    {},  # torch's defaults: the dynamo exporter, its default opset, fixed time axis
    {"dynamo": True, "opset_version": 18, "dynamic_shapes": ({1: "T"},)},
    {"dynamo": True, "opset_version": 20},
    {"dynamo": False, "opset_version": 13},
    {"dynamo": False, "opset_version": 17, "dynamic_axes": {"features": {1: "T"}}},
], ids=["default", "dynamo-18-dynamic", "dynamo-20", "legacy-13", "legacy-17-dynamic"])
def test_torch_exports_import_exactly(kwargs, feats, tmp_path, request):
    if not ALL and request.node.callspec.id in ("dynamo-20", "legacy-17-dynamic"):
        pytest.skip("make test-models runs every exporter setting")
    net = torch_model(SMALL, seed=1)
    if "dynamic_shapes" in kwargs:
        kwargs = {**kwargs, "dynamic_shapes": ({1: torch.export.Dim("T")},)}
    path = export_torch(net, tmp_path / "m.onnx", SMALL.bins, **kwargs)
    spec = import_onnx(path)
    # names from the source: module paths and output names, whatever the exporter
    assert spec.backbone == ("fc1", "gru1", "gru2", "fc2", "fc3")
    assert {e.name: e.head for e in spec.exits} == {
        "gru1": ("head_gru1",), "gru2": ("head_gru2",), "final": ("fc4",)}
    assert spec.default_exit().name == "final"  # the deepest, though returned second
    _check_same(spec, net, feats)


def test_layout1_from_torch_and_keras_agree(feats, tmp_path):
    """The 16 kHz DNS layout exported by torch's default exporter and the same weights as a
    .keras file give the same NetSpec; masks are real masks, not saturated."""
    from nsconv.quant.convert import load_model

    lay = LAYOUTS["dns16k"]
    net = torch_model(lay, seed=0, feats=feats)
    spec = load_model(export_torch(net, tmp_path / "dns16k.onnx", lay.bins))[1]
    ref = _check_same(spec, net, feats)
    for m in ref.values():
        assert 0.2 < m.mean() < 0.8 and m.std() > 0.02
        assert np.mean((m > 0.02) & (m < 0.98)) > 0.95
    keras_model(net, lay).save(tmp_path / "dns16k.keras")
    kspec = load_model(tmp_path / "dns16k.keras")[1]
    assert kspec.backbone == spec.backbone
    assert [(e.name, e.after, e.head) for e in kspec.exits] == \
        [(e.name, e.after, e.head) for e in spec.exits]
    for name, layer in spec.layers.items():
        for a, b in zip(vars(layer).values(), vars(kspec.layers[name]).values(), strict=True):
            if isinstance(a, np.ndarray):
                assert np.allclose(a, b, atol=1e-6), name


def test_multilayer_gru_and_nested_modules_keep_module_paths(tmp_path):
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.Sequential(nn.Linear(161, 24), nn.ReLU())
            self.rnn = nn.GRU(24, 16, num_layers=2, batch_first=True)
            self.Out = nn.Linear(16, 161)

        def forward(self, x):
            y, _ = self.rnn(self.enc(x))
            return torch.sigmoid(self.Out(y))

    p = tmp_path / "m.onnx"
    torch.onnx.export(Net().eval(), (torch.randn(1, 5, 161),), str(p))
    spec = import_onnx(p)
    assert spec.backbone == ("enc_0", "rnn_l0", "rnn_l1")
    assert [(e.name, e.head) for e in spec.exits] == [("final", ("out",))]


class _Refused(torch.nn.Module if torch else object):
    def __init__(self, kind: str) -> None:
        from torch import nn

        super().__init__()
        self.kind = kind
        self.fc1 = nn.Linear(161, 16)
        self.gru = nn.GRU(16, 8, batch_first=True, bidirectional=kind == "bidirectional")
        self.fc2 = nn.Linear(16 if kind == "bidirectional" else 8, 161)

    def forward(self, x):
        if self.kind == "gather":
            x = x[0]  # (frames, bins): indexing the features
        h = self.fc1(x)
        h = {"tanh": torch.tanh, "leaky": torch.nn.functional.leaky_relu}.get(
            self.kind, torch.relu)(h)
        y, _ = self.gru(h)
        return torch.sigmoid(self.fc2(y))


@pytest.mark.parametrize("kind,needles", [
    ("tanh", ("op Tanh", "node_tanh")),
    ("leaky", ("op LeakyRelu", "node_leaky_relu")),
    ("bidirectional", ("op GRU", "bidirectional GRU")),
    ("gather", ("op Gather", "(frames, bins)")),
])
def test_refusal_names_the_real_cause(kind, needles, tmp_path):
    """A GRU graph outside the family is refused for its own cause, naming node and file, and
    never goes to the onnx2tf route (which has no recurrence)."""
    from nsconv.quant.convert import load_model

    p = tmp_path / f"{kind}.onnx"
    torch.onnx.export(_Refused(kind).eval(), (torch.randn(1, 5, 161),), str(p))
    with pytest.raises(OutsideFamily) as err:
        load_model(p, work=tmp_path / "work")
    msg = str(err.value)
    assert all(n in msg for n in needles) and str(p) in msg, msg
    assert "onnx2tf" not in msg and not (tmp_path / "work").exists()


def test_refusal_non_constant_gru_weights(tmp_path):
    """A GRU whose W is computed at run time (here: RandomNormal) is refused as such."""
    import onnx
    from onnx import TensorProto, helper

    H, B = 4, 6
    rng = np.random.default_rng(0)
    inits = [onnx.numpy_helper.from_array(rng.normal(size=(1, 3 * H, H)).astype(np.float32), "R"),
             onnx.numpy_helper.from_array(rng.normal(size=(H, B)).astype(np.float32), "wo")]
    nodes = [helper.make_node("RandomNormal", [], ["W"], shape=[1, 3 * H, B], name="w_gen"),
             helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("GRU", ["xt", "W", "R"], ["y"], hidden_size=H,
                              linear_before_reset=1, name="the_gru"),
             helper.make_node("Squeeze", ["y", "ax"], ["ys"]),
             helper.make_node("Constant", [], ["ax"], value=onnx.numpy_helper.from_array(
                 np.array([1], np.int64))),
             helper.make_node("MatMul", ["ys", "wo"], ["o"]),
             helper.make_node("Sigmoid", ["o"], ["mask"])]
    nodes.insert(3, nodes.pop(4))  # Constant before its use
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     [1, None, B])],
                          [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, None, B])], inits)
    p = tmp_path / "ncw.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), p)
    with pytest.raises(OutsideFamily) as err:
        import_onnx(p)
    assert "non-constant W" in str(err.value) and "the_gru" in str(err.value)


def test_exit_names_from_outputs():
    from nsconv.model.onnx_import import exit_names

    assert exit_names(["out"]) == ["final"]
    assert exit_names(["mask_gru1", "109", "output_3", "Mask.Early", "sigmoid_1"]) == \
        ["gru1", "exit_1", "exit_2", "mask_early", "exit_4"]
    assert exit_names(["a", "A"]) == ["exit_0", "exit_1"]  # same identifier: by position


def test_keras_h5_in_the_loader(tmp_path):
    from nsconv.quant.convert import load_model

    net = torch_model(SMALL, seed=2)
    km = keras_model(net, SMALL)
    km.save(tmp_path / "m.h5")
    spec = load_model(tmp_path / "m.h5")[1]
    assert {e.name for e in spec.exits} == EXITS
    with pytest.raises(NsconvError) as err:
        load_model(tmp_path / "missing.keras")
    assert "missing.keras" in str(err.value)


# ---------------------------------------------------------------------------------------------
# The whole path for each public layout: export -> verify -> firmware (M4, M55) -> run -> enhance

FRAMES = {"dns16k": 16, "bins257": 8, "dns48k": 4}  # `make test`: few frames per step


def _cli(*args):
    from click.testing import CliRunner
    from nsconv.cli import main

    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.stdout  # results; logs go to stderr


def _has_frontend_option() -> bool:
    from nsconv.cli.convert import export

    return any(p.name == "frontend" for p in export.params)


def _clip_at(rate: int, path) -> object:
    """The real noisy clip resampled to the model's rate (a 16-bit mono wav)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    x, sr = sf.read(CLIP)
    if rate != sr:
        x = resample_poly(x, rate, sr)
    sf.write(path, x, rate, subtype="PCM_16")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("source", ["torch", "keras"])
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_layout_whole_path(name, source, tmp_path):
    import soundfile as sf
    from models.layouts import features
    from nsconv.quant.manifest import Manifest
    from nsconv.target import qemu

    lay = LAYOUTS[name]
    if not ALL and (source == "keras" or name not in os.environ.get("NSCONV_LAYOUTS", "dns16k")):
        pytest.skip("make test-models runs this layout/source whole")
    if lay.frontend_args and not _has_frontend_option():
        pytest.skip("this layout needs a configurable front end (export --frontend)")
    x, sr = read_wav(CLIP), 16000
    net = torch_model(lay, seed=0, feats=features(lay, x, sr)[:200])
    if source == "torch":
        model = export_torch(net, tmp_path / f"{name}.onnx", lay.bins)
    else:
        model = tmp_path / f"{name}.keras"
        keras_model(net, lay).save(model)
    frames = None if ALL else FRAMES[name]
    out = tmp_path / "out"
    # one conversion: export for the M4; `run --target cortex-m55` exports the M55 project
    # from the same output as `export --target cortex-m55` does. `make test` calibrates on the
    # 5 s clip (the path is the point), `make test-models` on the default clips
    calib = [] if ALL else ["--calib", CLIP]
    _cli("export", model, "-o", out, "--target", "cortex-m4", *lay.frontend_args, *calib)
    m = Manifest.load(out)
    assert {e.name for e in m.exits} == EXITS and m.default.name == "final"
    report = json.loads(_cli("verify", out, "--json", *(["--frames", frames] if frames else [])))
    assert report["bit_exact"] and report["ok"]
    assert all(e["mismatches"] == 0 and e["frames"] > 0 for e in report["exits"])
    clip = _clip_at(lay.rate, tmp_path / "clip.wav")
    project = qemu.load_project(out / "firmware" / "cortex-m4")
    qemu.build(project, host=True)
    host_wav = tmp_path / "host.wav"
    qemu.run(project, clip, host_wav, frames=frames, host=True, exit_name="final")
    for core in ("cortex-m4", "cortex-m55"):
        core_wav = tmp_path / f"{core}.wav"
        _cli("run", out, clip, core_wav, "--target", core,
             *(["--frames", frames] if frames else []))  # default exit: final
        assert core_wav.read_bytes() == host_wav.read_bytes(), core
    enhanced = tmp_path / "enhanced.wav"
    _cli("enhance", out, clip, enhanced)
    (y, ry), (x, rx) = sf.read(enhanced), sf.read(clip)
    assert ry == rx == lay.rate and len(y) == len(x) and 0 < np.std(y) < np.std(x)


class _Named(torch.nn.Module if torch else object):
    """Module names with digits, upper case and nesting; outputs left unnamed by the user."""

    def __init__(self) -> None:
        from torch import nn

        super().__init__()
        self.Enc = nn.Sequential(nn.Linear(161, 24), nn.ReLU())
        self.gru_a = nn.GRU(24, 16, batch_first=True)
        self.gru_b = nn.GRU(16, 16, batch_first=True)
        self.early_1 = nn.Linear(16, 161)
        self.Dec = nn.Linear(16, 161)

    def forward(self, x):
        a, _ = self.gru_a(self.Enc(x))
        b, _ = self.gru_b(a)
        return torch.sigmoid(self.Dec(b)), torch.sigmoid(self.early_1(a))


@pytest.mark.slow
def test_names_survive_into_manifest_reports_and_c(tmp_path):
    from nsconv.check.verify import verify
    from nsconv.compiler.codegen import generate
    from nsconv.quant.convert import convert
    from nsconv.quant.manifest import Manifest

    p = tmp_path / "named.onnx"
    torch.onnx.export(_Named().eval(), (torch.randn(1, 5, 161),), str(p))  # no output_names
    out = tmp_path / "out"
    convert(p, out, log=lambda *_: None)
    m = Manifest.load(out)
    assert [(e.name, e.after, e.head) for e in m.exits] == [
        ("exit_1", "gru_a", ("early_1",)), ("exit_0", "gru_b", ("dec",))]
    assert m.default.name == "exit_0"  # the deepest, returned first
    generate(out)
    header = (out / "c" / "nsn_model.h").read_text()
    for text in ("NSN_EXIT_EXIT_0", "NSN_EXIT_EXIT_1", "state_gru_a[16]", "state_gru_b[16]"):
        assert text in header, text
    report = verify(out, frames=20)
    assert report.ok and [e.name for e in report.exits] == ["exit_1", "exit_0"]
    assert "exit_1" in report.table() and "gru_a" not in {e.name for e in report.exits}

    # --default-exit: stored in the manifest, used by enhance without --exit; a wrong name is
    # refused before any work
    from nsconv.check.engine import Enhancer

    convert(p, tmp_path / "out2", log=lambda *_: None, default_exit="exit_1")
    assert Manifest.load(tmp_path / "out2").default.name == "exit_1"
    assert Enhancer(tmp_path / "out2").exit_name == "exit_1"
    with pytest.raises(NsconvError) as err:
        convert(p, tmp_path / "out3", log=lambda *_: None, default_exit="gru_a")
    assert "--default-exit 'gru_a'" in str(err.value) and "exit_0" in str(err.value)
    assert not (tmp_path / "out3").exists()


@pytest.mark.slow
def test_stateless_model_passes_verify(tmp_path):
    """A frame-wise nsNet2-family model (dense layers only, no GRU state) verifies: the host
    harness compiles under -Werror with an empty state list."""
    from nsconv.check.verify import verify
    from nsconv.quant.convert import convert
    from torch import nn

    net = nn.Sequential(nn.Linear(161, 32), nn.ReLU(), nn.Linear(32, 161), nn.Sigmoid()).eval()
    p = tmp_path / "framewise.onnx"
    torch.onnx.export(net, (torch.randn(1, 5, 161),), str(p))
    out = tmp_path / "out"
    convert(p, out, log=lambda *_: None)
    report = verify(out, frames=20)
    assert report.ok and report.bit_exact and report.exits[0].mismatches == 0
