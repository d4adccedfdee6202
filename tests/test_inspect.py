"""restorekit invert / visualize: feature inversion and activation maximisation (restorekit/inspect/).

Tiny images, few steps: the built-in ``faces`` network (trained in seconds on
scikit-image's bundled faces, once per process) and small TorchScript files
written by the tests.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from tests.helpers import invoke, one_line_error

torch = pytest.importorskip("torch")
nn = torch.nn

TINY_DIP = ["--net", "skip:levels=2,channels=8,skip=2"]


pytestmark = pytest.mark.usefixtures("fresh_host")  # chdir into tmp_path, fresh plugin host (conftest.py)


def psnr(a, b):
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.ReLU()

    def forward(self, x):
        return self.b(self.a(x)) + x


class _Tiny(nn.Module):
    """conv -> a residual block (nested layers) -> a Sequential -> pooled linear head."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.blk = _Block()
        self.seq = nn.Sequential(nn.Conv2d(4, 6, 1), nn.ReLU())
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        y = self.seq(self.blk(self.c1(x)))
        return self.fc(y.mean((2, 3)))


def _tiny():
    torch.manual_seed(0)
    return _Tiny().eval()


@pytest.fixture
def scripted(tmp_path) -> Path:
    p = tmp_path / "tiny.pt"
    torch.jit.script(_tiny()).save(str(p))
    return p


def _face_array(path):
    return (iio.imread(path).astype(np.float32) / 255)[None]


# -- the algorithms ---------------------------------------------------------------------------------
def test_inverting_an_early_layer_recovers_the_input(registry, face):
    from restorekit.inspect.model import open_model
    from restorekit.inspect.optimize import invert

    img = _face_array(face)
    model = open_model("faces", registry)
    priors = [registry.create("prior", s) for s in ("none", "dip")]
    recs = invert(model.layer_fn("conv1"), img, priors, iters=150, registry=registry,
                  net_spec="skip:levels=2,channels=16,skip=4")
    start = psnr(img, np.full_like(img, 0.5))
    by = {r.label: r for r in recs}
    # conv1 (8 channels of 3x3 filters on one) keeps nearly everything: bare pixels find the image again
    assert psnr(img, by["none"].image) > 35 > start + 15
    assert by["none"].objective < 1e-3 < by["none"].start
    # the deep image prior gets there too, more slowly (its output is a generator's)
    assert psnr(img, by["dip"].image) > 20 > start + 5
    assert by["dip"].objective < 0.1 * by["dip"].start
    assert by["dip"].net.startswith("skip:levels=2,channels=16")


def test_a_search_is_reproducible(registry, face):
    """Same seed, same image (the prior's fresh input noise included); another seed, another image."""
    from restorekit.inspect.model import open_model
    from restorekit.inspect.optimize import invert

    img = _face_array(face)
    fn = open_model("faces", registry).layer_fn("relu1")
    dip = [registry.create("prior", "dip")]
    kw = dict(iters=8, registry=registry, net_spec="skip:levels=2,channels=8,skip=2")
    a, b = invert(fn, img, dip, **kw)[0], invert(fn, img, dip, **kw)[0]
    c = invert(fn, img, dip, seed=1, **kw)[0]
    assert np.array_equal(a.image, b.image) and a.objective == b.objective
    assert not np.array_equal(a.image, c.image)


def test_inverting_a_deeper_layer_loses_detail(registry, face):
    """A pooled layer keeps less of the image than the first convolution: the same search recovers less."""
    from restorekit.inspect.model import open_model
    from restorekit.inspect.optimize import invert

    img = _face_array(face)
    model = open_model("faces", registry)
    none = [registry.create("prior", "none")]
    early = invert(model.layer_fn("conv1"), img, none, iters=100)[0]
    deep = invert(model.layer_fn("pool2"), img, none, iters=100)[0]
    assert psnr(img, deep.image) < psnr(img, early.image) - 5


def test_activation_maximisation_raises_the_unit(registry):
    from restorekit.inspect.model import open_model
    from restorekit.inspect.optimize import activation, visualize

    model = open_model("faces", registry)
    fn = model.layer_fn("conv2")
    priors = [registry.create("prior", s) for s in ("none", "tv:weight=1", "dip")]
    recs = visualize(fn, 5, (1, 25, 25), priors, iters=40, net_spec="skip:levels=2,channels=8,skip=2",
                     registry=registry)
    assert [r.label for r in recs] == ["none", "tv", "dip"]
    for r in recs:
        assert r.objective > r.start + 0.5, (r.label, r.start, r.objective)
        x = torch.from_numpy(r.image)[None]
        assert float(activation(fn, x, 5)) == pytest.approx(r.objective, rel=1e-4, abs=1e-4)
        assert r.image.min() >= 0 and r.image.max() <= 1
    # the unit's image excites it more than another unit's image does
    other = visualize(fn, 2, (1, 25, 25), priors[:1], iters=40)[0]
    assert float(activation(fn, torch.from_numpy(other.image)[None], 5)) < recs[0].objective


def test_an_interrupt_keeps_the_best_image_so_far(registry, face):
    from restorekit.inspect.model import open_model
    from restorekit.inspect.optimize import invert

    img = _face_array(face)
    fn = open_model("faces", registry).layer_fn("conv1")
    calls = {"n": 0}

    def interrupting(x):
        calls["n"] += 1
        if calls["n"] == 40:
            raise KeyboardInterrupt
        return fn(x)

    priors = [registry.create("prior", s) for s in ("none", "tv")]
    recs = invert(interrupting, img, priors, iters=500)
    assert len(recs) == 1  # tv never started
    r = recs[0]
    assert r.stopped == "interrupted" and 30 < r.iterations < 40
    assert r.objective < 0.5 * r.start and psnr(img, r.image) > psnr(img, np.full_like(img, 0.5))


@pytest.mark.parametrize("export", ["script", "trace"])
def test_torchscript_layers_are_the_modules_outputs(tmp_path, export, registry):
    """The cut TorchScript graph gives each named layer's own output, nested ones included, with gradients."""
    from restorekit.inspect.model import open_model

    net = _tiny()
    x = torch.rand(1, 1, 9, 7)
    p = tmp_path / "m.pt"
    (torch.jit.script(net) if export == "script" else torch.jit.trace(net, x)).save(str(p))
    model = open_model(str(p), registry)
    assert model.source == "torchscript"
    assert [n for n, _ in model.layers()] == [n for n, _ in net.named_modules() if n]
    with torch.no_grad():
        c1 = net.c1(x)
        blk = net.blk(c1)
        expected = {"c1": c1, "blk.a": net.blk.a(c1), "blk": blk, "seq.0": net.seq[0](blk), "seq.1": net.seq(blk),
                    "fc": net(x)}
    for layer, want in expected.items():
        got = model.layer_fn(layer)(x)
        assert torch.allclose(got, want, atol=1e-6), layer
    xg = x.clone().requires_grad_(True)
    model.layer_fn("blk.a")(xg).sum().backward()
    assert xg.grad is not None and float(xg.grad.abs().sum()) > 0


def test_a_python_module_stops_at_the_layer(registry):
    """Hooks on a Python network: later layers do not run (they may not take the size)."""
    from restorekit.inspect.model import open_model

    model = open_model("faces", registry)
    out = model.layer_fn("pool1")(torch.rand(1, 1, 40, 30))  # fc would refuse this size
    assert tuple(out.shape) == (1, 8, 20, 15)


def test_faces_passes_the_network_contract(registry):
    from restorekit.testing import check_network

    passed = check_network("faces", registry=registry)
    assert {"input_shape", "load", "forward"} <= set(passed)


def test_faces_network_is_trained_deterministically_and_classifies():
    from restorekit.inspect.faces import data, train_faces

    a, b = train_faces(seed=0, steps=60), train_faces(seed=0, steps=60)
    for pa, pb in zip(a.net.parameters(), b.net.parameters()):
        assert torch.equal(pa, pb)
    images, labels = data()
    assert images.shape == (200, 1, 25, 25) and labels.sum() == 100
    assert a.test_accuracy >= 0.8 and len(a.test_index) == 40


# -- the command line -------------------------------------------------------------------------------
def test_invert_writes_every_output(face, tmp_path):
    before = hashlib.sha256(face.read_bytes()).hexdigest()
    out = tmp_path / "inv"
    r = invoke(["invert", "faces", str(face), "--layer", "conv1", "--iters", "30", *TINY_DIP, "--out", str(out),
                "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["command"] == "invert" and rec["layer"] == "conv1" and rec["stopped"] == "done"
    assert rec["model"] == {"source": "network", "name": "faces:seed=0"}
    assert [x["label"] for x in rec["results"]] == ["dip", "tv", "none"]
    for x in rec["results"]:
        assert x["iterations"] == 30 and x["feature_loss"] < x["start_feature_loss"]
        assert 0 < x["ssim"] <= 1 and x["psnr"] > 10
        assert len(rec["history"][x["label"]]["feature_loss"]) >= 2
    files = {p.name for p in out.iterdir()}
    assert files == {"input.png", "dip.png", "tv.png", "none.png", "invert.png", "curves.png", "inspect.json"}
    assert json.loads((out / "inspect.json").read_text()) == rec
    src = iio.imread(face)
    none = iio.imread(out / "none.png")
    assert none.shape == src.shape and none.dtype == np.uint8
    assert psnr(src / 255, none / 255) == pytest.approx(rec["results"][2]["psnr"], abs=0.3)
    assert hashlib.sha256(face.read_bytes()).hexdigest() == before  # the input is never modified
    assert not list(tmp_path.glob(".*tmp"))


def test_invert_summary_and_default_folder(face, tmp_path):
    r = invoke(["invert", "faces", str(face), "--layer", "relu1", "--iters", "5", "--prior", "none",
                "--prior", "tv:0.5"])
    assert r.exit_code == 0, r.output
    assert "none" in r.stdout and "tv" in r.stdout and "PSNR" in r.stdout
    out = tmp_path / "runs" / "invert-face-001"
    assert {p.name for p in out.iterdir()} == {"input.png", "none.png", "tv.png", "invert.png", "curves.png",
                                               "inspect.json"}
    # a taken --out is refused before any work, and nothing in it changes
    again = invoke(["invert", "faces", str(face), "--layer", "relu1", "--iters", "5", "--out", str(out)])
    one_line_error(again, "already holds files")


def test_visualize_writes_every_output(tmp_path):
    out = tmp_path / "vis"
    r = invoke(["visualize", "faces", "--layer", "fc", "--unit", "1", "--iters", "30", *TINY_DIP, "--out", str(out),
                "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["unit"] == 1 and rec["shape"] == [1, 25, 25]
    for x in rec["results"]:
        assert x["activation"] > x["start"]
    assert {p.name for p in out.iterdir()} == {"dip.png", "tv.png", "none.png", "visualize.png", "curves.png",
                                               "inspect.json"}
    assert iio.imread(out / "dip.png").shape == (25, 25)


def test_visualize_a_torchscript_file_with_a_shape(scripted, tmp_path):
    out = tmp_path / "v"
    r = invoke(["visualize", str(scripted), "--layer", "blk.a", "--unit", "2", "--shape", "1,12,10", "--iters",
                "20", "--prior", "none", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["model"]["source"] == "torchscript"
    assert rec["results"][0]["activation"] > rec["results"][0]["start"]
    assert iio.imread(out / "none.png").shape == (12, 10)


def test_interrupted_invert_writes_the_best_so_far(face, tmp_path, monkeypatch):
    from restorekit.inspect import optimize

    real = optimize._features
    calls = {"n": 0}

    def features(fn, x):
        calls["n"] += 1
        if calls["n"] == 25:
            raise KeyboardInterrupt
        return real(fn, x)

    monkeypatch.setattr(optimize, "_features", features)
    out = tmp_path / "int"
    r = invoke(["invert", "faces", str(face), "--layer", "conv1", "--iters", "500", "--prior", "none",
                "--prior", "tv", "--out", str(out)])
    assert r.exit_code == 130, r.output
    rec = json.loads((out / "inspect.json").read_text())
    assert rec["stopped"] == "interrupted" and [x["label"] for x in rec["results"]] == ["none"]
    assert rec["results"][0]["feature_loss"] < rec["results"][0]["start_feature_loss"]
    assert (out / "none.png").is_file() and not (out / "tv.png").exists()


def test_a_restorekit_model_folder_is_inspected(tmp_path):
    """The shipped denoiser's folder (safetensors + model.json): layers by name, an inversion that converges."""
    from restorekit.learn.model import builtin_path

    folder = builtin_path("gaussian")
    r = invoke(["invert", str(folder), "--list-layers", "--json"])
    assert r.exit_code == 0, r.output
    names = [x["name"] for x in json.loads(r.stdout)["layers"]]
    assert names and names[0] == "enc1" and "enc1.0" in names
    img = tmp_path / "crop.png"
    yy, xx = np.mgrid[0:16, 0:16]
    iio.imwrite(img, ((xx * 13 + yy * 7) % 256).astype(np.uint8))
    r = invoke(["invert", str(folder), str(img), "--layer", "enc1.0", "--prior", "none", "--iters", "40",
                "--out", str(tmp_path / "o"), "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["model"]["source"] == "model folder"
    res = rec["results"][0]
    assert res["feature_loss"] < 0.1 * res["start_feature_loss"]


@pytest.mark.parametrize("command", ["invert", "visualize"])
def test_list_layers(command, scripted):
    r = invoke([command, "faces", "--list-layers"])
    assert r.exit_code == 0, r.output
    names = [line.split()[0] for line in r.stdout.strip().splitlines()[1:]]
    assert names == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "fc"]
    r = invoke([command, str(scripted), "--list-layers", "--json"])
    assert r.exit_code == 0, r.output
    layers = json.loads(r.stdout)["layers"]
    assert [x["name"] for x in layers] == [n for n, _ in _tiny().named_modules() if n]
    assert layers[0]["type"] == "Conv2d"


class _Payload:
    """Unpickling this touches a file: the proof that a file was unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_pickle_is_refused_not_run(tmp_path, face):
    marker = tmp_path / "unpickled"
    raw = tmp_path / "model.pkl"
    raw.write_bytes(pickle.dumps(_Payload(marker)))
    ckpt = tmp_path / "model.pt"
    torch.save({"payload": _Payload(marker)}, str(ckpt))
    assert not marker.exists()
    r = invoke(["invert", str(raw), str(face), "--layer", "c1"])
    one_line_error(r, "is a pickle file, not TorchScript")
    r = invoke(["visualize", str(ckpt), "--layer", "c1", "--unit", "0"])
    one_line_error(r, "torch.save checkpoint (pickled objects), not TorchScript")
    r = invoke(["invert", str(ckpt), "--list-layers"])
    one_line_error(r, "not TorchScript")
    assert not marker.exists()


@pytest.mark.parametrize("args, fragment", [
    (["invert", "{text}", "{face}", "--layer", "c1"], "is not a TorchScript file"),
    (["invert", "faces", "{face}", "--layer", "conv3"], "has no layer 'conv3'; did you mean 'conv2'?"),
    (["visualize", "{scripted}", "--layer", "blk.aa", "--unit", "0", "--shape", "1,8,8"], "did you mean 'blk.a'?"),
    (["visualize", "faces", "--layer", "fc", "--unit", "2"], "unit 2 is out of range: layer 'fc' has 2 units"),
    (["visualize", "faces", "--layer", "conv2", "--unit", "-1"], "unit -1 is out of range"),
    (["invert", "faces", "{missing}", "--layer", "conv1"], "file not found"),
    (["invert", "faces", "--layer", "conv1"], "give the image to invert"),
    (["invert", "faces", "{face}"], "give the layer to look at"),
    (["visualize", "faces", "--layer", "fc"], "give the unit to excite"),
    (["invert", "faces", "{rgb}", "--layer", "conv1"], "has 3 channels; network 'faces:seed=0' takes 1-channel"),
    (["invert", "faces", "{big}", "--layer", "conv1"], "is 30x25; network 'faces:seed=0' takes 25x25 images"),
    (["invert", "{scripted}", "{rgb}", "--layer", "c1"], "cannot take a 3-channel 25x25 input at layer 'c1'"),
    (["visualize", "{scripted}", "--layer", "c1", "--unit", "0"], "give --shape C,H,W"),
    (["invert", "facez", "{face}", "--layer", "conv1"], "unknown network 'facez'; did you mean 'faces'?"),
    (["invert", "no/such.pt", "{face}", "--layer", "conv1"], "'no/such.pt' does not exist"),
    (["invert", "faces", "{face}", "--layer", "conv1", "--prior", "bm3d"], "prior 'bm3d' solves restorations"),
    (["invert", "faces", "{face}", "--layer", "conv1", "--net", "identity"], "needs a network generator"),
    (["visualize", "faces", "--layer", "fc", "--unit", "0", "--lr", "0"], "--lr must be a positive number"),
])
def test_errors_are_one_line_with_exit_2(args, fragment, tmp_path, face, scripted):
    text = tmp_path / "notes.txt"
    text.write_text("not a model\n")
    rgb = tmp_path / "rgb.png"
    iio.imwrite(rgb, np.zeros((25, 25, 3), np.uint8))
    big = tmp_path / "big.png"
    iio.imwrite(big, np.zeros((25, 30), np.uint8))
    paths = {"text": text, "face": face, "scripted": scripted, "missing": tmp_path / "missing.png", "rgb": rgb,
             "big": big}
    r = invoke([a.format(**paths) for a in args])
    one_line_error(r, fragment)
    assert not (tmp_path / "runs").exists()  # nothing reserved, nothing written
