"""--device for segment, decompose, invert and visualize (issue 23): the work really moves.

No GPU here (nor in CI), so three kinds of check:

* ``device="cpu"`` given gives the very bits of no device (double-dip, clustering, invert), and so does the
  moving path itself pointed at the CPU (every ``.to(device)`` taken): a seed is one result on every device
  up to float rounding;
* the device reaches the tensors: with ``torch.device("meta")`` (tensors without data; a CPU tensor met on
  the way is an error, "not on the expected device") the fit's loss, the networks' weights, the codes and
  the pixels are all on it, which fails as soon as one of them is left on the CPU;
* the record's notes: where it ran when not the CPU, "takes no device" for the NumPy baselines, and no
  "stays on the CPU" note for invert and visualize.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import invoke

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("fresh_host", "one_thread")  # tmp_path, fresh plugin host, one torch thread

META = torch.device("meta")
FAST_DD = "double-dip:iters=6,warmup=3,channels=4,levels=2"
TINY_NET = "skip:levels=2,channels=8,skip=2"


class _Reached(Exception):
    """Raised by a spy once it has seen what it came for."""


def _composite(size: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    mask = ((yy - 0.45 * size) / (0.3 * size)) ** 2 + ((xx - 0.55 * size) / (0.22 * size)) ** 2 < 1
    img = np.where(mask, 0.7, 0.3) + 0.04 * rng.standard_normal((size, size))
    return np.clip(img, 0, 1)[None].astype(np.float32)


def _colour(size: int = 24, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((3, size, size)).astype(np.float32)


def _same(a, b) -> None:
    """Two Decomposed results, bit for bit."""
    assert a.iterations == b.iterations and a.history == b.history and a.notes == b.notes
    for x, y in ((a.mask, b.mask), (a.labels, b.labels)):
        assert (x is None) == (y is None)
        if x is not None:
            assert np.array_equal(np.asarray(x), np.asarray(y))
    assert sorted(a.layers) == sorted(b.layers)
    for k in a.layers:
        assert np.array_equal(np.asarray(a.layers[k]), np.asarray(b.layers[k])), k


# the double-dip tasks: (task, image, extra keyword arguments)
def _cases():
    from restorekit.components import Hint

    img, col = _composite(), _colour()
    return [
        ("segment", img, {}),
        ("segment", img, {"hint": Hint(box=(4, 4, 14, 14))}),
        ("transparency", col, {}),
        ("watermark", col, {"hint": Hint(box=(4, 4, 10, 10))}),
        ("dehaze", col, {}),
    ]


def _dd(spec: str = FAST_DD):
    from restorekit.builtins.decompositions import DoubleDip

    return DoubleDip.from_spec(spec)


# -- the same bits on the CPU ---------------------------------------------------------------------------
@pytest.mark.parametrize("index", range(5), ids=["segment", "segment-box", "transparency", "watermark", "dehaze"])
def test_double_dip_on_the_cpu_is_the_same_with_or_without_a_device(index, monkeypatch):
    import restorekit.segment.doubledip as dd

    task, img, kw = _cases()[index]
    method = _dd()
    none = method.decompose(img, task, seed=3, **kw)
    _same(none, method.decompose(img, task, seed=3, device="cpu", **kw))
    _same(none, method.decompose(img, task, seed=3, device=torch.device("cpu"), **kw))
    # the moving path itself (every tensor and network through .to(device)), pointed at the CPU
    monkeypatch.setattr(dd, "_device", lambda device: None if device is None else torch.device("cpu"))
    _same(none, method.decompose(img, task, seed=3, device="cpu", **kw))


def test_double_dip_restarts_and_a_second_mixture_take_the_device(monkeypatch):
    import restorekit.segment.doubledip as dd

    img, col = _composite(), _colour()
    second = np.roll(col, 3, axis=2)
    monkeypatch.setattr(dd, "_device", lambda device: None if device is None else torch.device("cpu"))
    restarts = _dd(FAST_DD + ",restarts=2")
    _same(restarts.decompose(img, "segment", seed=1), restarts.decompose(img, "segment", seed=1, device="cpu"))
    unmix = _dd(FAST_DD + ",unmix=false")
    _same(unmix.decompose(col, "transparency", seed=1, others=(second,)),
          unmix.decompose(col, "transparency", seed=1, others=(second,), device="cpu"))


def test_clustering_on_the_cpu_is_the_same_with_or_without_a_device(monkeypatch):
    import restorekit.segment.clustering as cl
    from restorekit.builtins.decompositions import Clustering
    from restorekit.components import Hint

    method = Clustering.from_spec("clustering:iters=8,channels=8")
    img = _colour()
    marks = np.zeros(img.shape[1:], np.int8)
    marks[10:14, 10:14], marks[:2, :] = 1, 2
    for hint in (None, Hint(scribbles=marks)):
        none = method.decompose(img, "segment", seed=2, hint=hint)
        _same(none, method.decompose(img, "segment", seed=2, hint=hint, device="cpu"))
    # the moving path itself (the image, the CNN and the scribbles through .to(device)), pointed at the CPU
    monkeypatch.setattr(cl, "_device", lambda device: None if device is None else torch.device("cpu"))
    for hint in (None, Hint(scribbles=marks)):
        _same(method.decompose(img, "segment", seed=2, hint=hint),
              method.decompose(img, "segment", seed=2, hint=hint, device="cpu"))


def test_invert_and_visualize_on_the_cpu_are_the_same_with_or_without_a_device(registry, face, monkeypatch):
    import imageio.v3 as iio

    import restorekit.inspect.optimize as opt
    from restorekit.inspect.model import open_model

    img = (iio.imread(face).astype(np.float32) / 255)[None]
    fn = open_model("faces", registry).layer_fn("relu1")
    priors = [registry.create("prior", p) for p in ("dip", "tv", "none")]
    kw = dict(iters=6, registry=registry, net_spec=TINY_NET, seed=1)

    def run(**more):
        return (opt.invert(fn, img, priors, **kw, **more),
                opt.visualize(fn, 2, img.shape, priors, **kw, **more))

    def same(a, b):
        for x, y in zip(a, b):
            assert np.array_equal(x.image, y.image) and x.objective == y.objective and x.history == y.history

    none = run()
    for got in (run(device="cpu"), run(device=torch.device("cpu"))):
        for a, b in zip(none, got):
            same(a, b)
    monkeypatch.setattr(opt, "_device", lambda device: None if device is None else torch.device("cpu"))
    for a, b in zip(none, run(device="cpu")):  # every .to(device) taken, to the CPU
        same(a, b)


# -- the device reaches the tensors ---------------------------------------------------------------------
def _spy_loop(seen: dict):
    """A run_loop that takes a warm-up step and a free step on the device, records the losses and the
    parameters' devices, and stops the fit."""

    def loop(forward, iterations, **kw):
        seen["losses"] = [forward(1), forward(iterations)]
        raise _Reached

    return loop


@pytest.mark.parametrize("index", [0, 2, 3, 4], ids=["segment", "transparency", "watermark", "dehaze"])
def test_double_dip_builds_everything_on_the_device(index, monkeypatch):
    import restorekit.segment.doubledip as dd

    task, img, kw = _cases()[index]
    seen: dict = {}
    built = []
    real_layers = dd._Layers

    def layers(*a, **k):
        built.append(real_layers(*a, **k))
        return built[-1]

    monkeypatch.setattr(dd, "run_loop", _spy_loop(seen))
    monkeypatch.setattr(dd, "_Layers", layers)
    with pytest.raises(_Reached):
        _dd().decompose(img, task, seed=0, device=META, **kw)
    assert [loss.device for loss in seen["losses"]] == [META, META]
    (lay,) = built
    assert lay.parameters() and {p.device for p in lay.parameters()} == {META}
    assert {z.device for z in lay.codes} == {META}
    # and without a device nothing moves (the snapshot's bits): the CPU
    with pytest.raises(_Reached):
        _dd().decompose(img, task, seed=0, **kw)
    assert {p.device.type for p in built[-1].parameters()} == {"cpu"}
    assert [loss.device.type for loss in seen["losses"]] == ["cpu", "cpu"]


def test_double_dip_restarts_pass_the_device_on(monkeypatch):
    import restorekit.segment.doubledip as dd

    seen: dict = {}
    monkeypatch.setattr(dd, "run_loop", _spy_loop(seen))
    with pytest.raises(_Reached):
        _dd(FAST_DD + ",restarts=2").decompose(_composite(), "segment", seed=0, device=META)
    assert [loss.device for loss in seen["losses"]] == [META, META]


def test_clustering_builds_its_cnn_and_image_on_the_device(monkeypatch):
    import restorekit.segment.clustering as cl
    from restorekit.builtins.decompositions import Clustering

    seen: dict = {}
    nets = []
    real_net = cl._net

    def net(*a, **k):
        nets.append(real_net(*a, **k))
        return nets[-1]

    monkeypatch.setattr(cl, "run_loop", _spy_loop(seen))
    monkeypatch.setattr(cl, "_net", net)
    method = Clustering.from_spec("clustering:iters=8,channels=8")
    with pytest.raises(_Reached):
        method.decompose(_colour(), "segment", seed=0, device=META)
    assert [loss.device for loss in seen["losses"]] == [META, META]
    assert {p.device for p in nets[-1].parameters()} == {META}


def test_the_search_puts_the_generator_its_code_and_the_pixels_on_the_device(registry):
    from restorekit.inspect import optimize

    init = optimize._init_image((1, 12, 12), 0)
    for name in ("dip", "tv", "none"):
        prior = registry.create("prior", name)
        params, make_x, _, _, _ = optimize._parameterisation(prior, TINY_NET, (1, 12, 12), registry, 0, None, init,
                                                             META)
        assert params and {p.device for p in params} == {META}, name
        assert make_x(True).device == META and make_x(False).device == META, name
        assert init.device.type == "cpu"  # the start is drawn on the CPU, and stays there for the next prior


def test_invert_and_visualize_put_their_image_on_the_device(registry, face):
    import imageio.v3 as iio

    from restorekit.inspect import optimize

    seen = []

    def layer_fn(x):
        seen.append(x.device)
        raise _Reached

    img = (iio.imread(face).astype(np.float32) / 255)[None]
    prior = [registry.create("prior", "none")]
    with pytest.raises(_Reached):
        optimize.invert(layer_fn, img, prior, iters=2, registry=registry, device=META)
    with pytest.raises(_Reached):
        optimize.visualize(layer_fn, 0, img.shape, prior, iters=2, registry=registry, device=META)
    assert seen == [META, META]


def _fake_devices(monkeypatch, dev):
    """``--device cuda`` resolved to ``dev`` (the CLI's check and the pipeline's both)."""
    import restorekit.run.plan as plan
    import restorekit.session.device as device

    monkeypatch.setattr(plan, "pick_device", lambda name="auto": dev)
    monkeypatch.setattr(device, "pick_device", lambda name="auto": dev)


@pytest.mark.parametrize("command", ["invert", "visualize"])
def test_invert_and_visualize_move_the_network_and_search_on_the_device(command, face, monkeypatch):
    import restorekit.inspect.optimize as opt

    _fake_devices(monkeypatch, META)
    seen = {}

    def spy(layer_fn, *args, device=None, **kw):
        seen["device"] = device
        assert moved == [META]  # the network is on the device while the search runs
        raise _Reached

    monkeypatch.setattr(opt, command, spy)
    moved = []
    from restorekit.inspect.model import Inspected

    # recorded, not done: meta tensors hold no data, and the 'faces' network is cached in this process
    monkeypatch.setattr(Inspected, "to", lambda self, dev: moved.append(dev) or self)
    args = [str(face), "--layer", "conv1"] if command == "invert" else ["--layer", "fc", "--unit", "1"]
    r = invoke([command, "faces", *args, "--iters", "2", "--device", "cuda"])
    assert "internal error: _Reached" in r.output, r.output  # the spy ended the search
    # the network moved to the device for the search, and back to the CPU after it (even when it failed)
    assert seen["device"] == META and moved == [META, "cpu"]


def test_an_inspected_network_moves_to_the_device():
    from restorekit.inspect.model import Inspected

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU())
    model = Inspected(net, "network", "tiny")
    assert model.to(META) is model
    assert {p.device for p in net.parameters()} == {META}
    assert model.layer_fn("0")(torch.zeros(1, 1, 5, 5, device=META)).device == META


# -- the notes ------------------------------------------------------------------------------------------
def test_the_inspect_record_names_a_device_other_than_the_cpu(monkeypatch):
    from restorekit.cli.inspect import _device_note

    assert _device_note("cpu") == (None, None)
    _fake_devices(monkeypatch, META)
    dev, note = _device_note("cuda")
    assert dev == META and note == "the search ran on meta (--device cuda)"


@pytest.mark.parametrize("command", ["invert", "visualize"])
def test_a_cpu_search_has_no_device_note(command, face, tmp_path):
    args = [str(face), "--layer", "conv1"] if command == "invert" else ["--layer", "fc", "--unit", "1"]
    r = invoke([command, "faces", *args, "--iters", "2", "--prior", "none", "--device", "cpu", "--json",
                "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert not any("CPU" in n or "device" in n for n in rec["notes"]), rec["notes"]


def _outcome(method: str, device: str | None):
    from restorekit.plugins import get_registry
    from restorekit.segment.pipeline import Request, prepare

    return prepare(Request(image=_composite()[0], method=method, device=device), get_registry())


def test_segment_notes_where_the_method_ran(monkeypatch):
    import restorekit.segment.doubledip as dd
    from restorekit.components import Decomposed
    from restorekit.segment.pipeline import decompose

    got = {}

    def fake(image, task, params, *, device=None, **kw):
        got["device"] = device
        return Decomposed(mask=np.zeros(image.shape[1:], np.float32), iterations=1)

    monkeypatch.setattr(dd, "double_dip", fake)
    # the CPU: nothing passed, nothing noted (exactly as before)
    assert not decompose(_outcome(FAST_DD, "cpu")).record["notes"]
    assert got["device"] is None
    assert not decompose(_outcome("otsu", "cpu")).record["notes"]
    _fake_devices(monkeypatch, META)
    notes = decompose(_outcome(FAST_DD, "cuda")).record["notes"]
    assert got["device"] == META and notes == ["double-dip ran on meta (--device cuda)"]
    # a NumPy baseline cannot: it runs on the CPU, and says so
    notes = decompose(_outcome("otsu", "cuda")).record["notes"]
    assert notes == ["otsu takes no device: it ran on the CPU (--device cuda)"]


def test_clustering_is_given_the_device(monkeypatch):
    import restorekit.segment.clustering as cl
    from restorekit.components import Decomposed
    from restorekit.segment.pipeline import decompose

    got = {}

    def fake(image, params, *, device=None, **kw):
        got["device"] = device
        return Decomposed(mask=np.zeros(image.shape[1:], np.float32), iterations=1)

    monkeypatch.setattr(cl, "cluster", fake)
    _fake_devices(monkeypatch, META)
    notes = decompose(_outcome("clustering:iters=2", "cuda")).record["notes"]
    assert got["device"] == META and notes == ["clustering ran on meta (--device cuda)"]
