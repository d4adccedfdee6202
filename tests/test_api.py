"""The Python API and the problem set-up: padding, bit depths, modes, SR."""

import numpy as np
import pytest

import restorekit
from restorekit.errors import UsageError
from restorekit.run.problem import ForwardModel, build_problem

TINY = "skip:levels=2,channels=8,skip=2"


def smooth_image(h=20, w=24, c=3, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = [0.5 + 0.4 * np.sin(3 * xx + k) * np.cos(2 * yy - k) for k in range(c)]
    img = np.stack(base, axis=-1) + 0.01 * rng.standard_normal((h, w, c))
    return np.clip(img, 0, 1)


def test_restore_array_returns_same_layout(registry):
    img = (smooth_image() * 255).round().astype(np.uint8)
    r = restorekit.restore(img, mode="benchmark", degrade="gaussian:25", net=TINY, iters=3, registry=registry)
    assert r.image.shape == img.shape and r.image.dtype == np.uint8
    assert r.record["result"]["iteration"] == 3
    assert set(r.metrics) == {"psnr", "ssim"}
    assert r.record["task"] == "denoise"


@pytest.mark.parametrize("shape", [(17, 23), (33, 31, 3), (9, 40, 4)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_odd_sizes_and_bit_depths_round_trip(registry, shape, dtype):
    rng = np.random.default_rng(1)
    top = np.iinfo(dtype).max
    img = (rng.random(shape) * top).astype(dtype)
    r = restorekit.restore(img, mode="benchmark", degrade="gaussian:5", net=TINY, iters=2, registry=registry)
    assert r.image.shape == img.shape and r.image.dtype == img.dtype
    if len(shape) == 3 and shape[2] == 4:  # alpha is kept aside and restored exactly
        assert np.array_equal(r.image[..., 3], img[..., 3])


def test_the_canvas_is_padded_by_reflection_and_cropped_back():
    img = smooth_image(20, 24).transpose(2, 0, 1).astype(np.float32)
    fm = ForwardModel([])
    p = build_problem(img, fm, mode="restore", seed=0, stride=16)
    geo = p.geometry
    # the forward model and the observation keep the image's own size; only the canvas is padded
    assert p.image_shape == (3, 20, 24) and tuple(p.observation.shape) == (1, 3, 20, 24)
    assert geo.canvas_shape == (3, 32, 32) and geo.padded
    top, left, h, w = geo.crop
    assert (h, w) == (20, 24)
    canvas = geo.pad_to_canvas(img)
    # the image sits untouched inside the canvas, and comes back whole
    assert np.array_equal(geo.to_image(canvas), img)
    assert np.array_equal(geo.to_result(geo.to_image(canvas)), img)
    # reflected border: the row above the image mirrors the second row
    assert np.array_equal(canvas[:, top - 1, left : left + w], img[:, 1])


def test_benchmark_is_seeded(registry):
    img = smooth_image()
    a = restorekit.restore(img, mode="benchmark", degrade="bernoulli:0.5", net=TINY, iters=2, seed=4, registry=registry)
    b = restorekit.restore(img, mode="benchmark", degrade="bernoulli:0.5", net=TINY, iters=2, seed=4, registry=registry)
    c = restorekit.restore(img, mode="benchmark", degrade="bernoulli:0.5", net=TINY, iters=2, seed=5, registry=registry)
    assert np.array_equal(a.degraded, b.degraded) and np.array_equal(a.mask, b.mask)
    assert np.array_equal(a.restored, b.restored)  # same seed, same device: same result
    assert not np.array_equal(a.mask, c.mask)
    assert 0.4 < (~a.mask).mean() < 0.6
    assert "psnr_missing" in a.metrics and a.record["task"] == "inpaint"


def test_super_resolution_shapes(registry):
    img = smooth_image(24, 32)
    r = restorekit.restore(img, mode="benchmark", degrade="downsample:4", net=TINY, iters=2, registry=registry)
    assert r.degraded.shape == (3, 6, 8)
    assert r.restored.shape == (3, 24, 32)
    assert r.record["result"]["baseline_kind"] == "bicubic"
    # restore mode: a 6x8 observation becomes a 24x32 image
    low = (np.moveaxis(r.degraded, 0, -1) * 255).round().astype(np.uint8)
    r2 = restorekit.restore(low, degrade="downsample:4", net=TINY, iters=2, mode="restore", registry=registry)
    assert r2.image.shape == (24, 32, 3)
    assert r2.metrics == {}


def test_sr_of_size_not_multiple_of_factor_keeps_every_pixel(registry):
    img = smooth_image(26, 30)
    r = restorekit.restore(img, mode="benchmark", degrade="downsample:4", net=TINY, iters=1, registry=registry)
    assert r.restored.shape == (3, 26, 30)


def test_an_image_given_is_restored_as_observed(registry):
    """restore(image): restore mode, the degradation the estimated real noise; nothing is added or scored."""
    img = (smooth_image() * 255).round().astype(np.uint8)
    r = restorekit.restore(img, net=TINY, iters=1, registry=registry)
    assert r.record.mode == "restore"
    assert [d["name"] for d in r.record["components"]["degradations"]] == ["noise"]
    assert np.array_equal((np.moveaxis(r.degraded, 0, -1) * 255).round().astype(np.uint8), img)
    assert r.metrics == {} and r.reference is None


def test_without_an_image_or_with_mode_benchmark_the_degradation_is_simulated(registry):
    r = restorekit.restore(net=TINY, iters=1, registry=registry)  # the embedded image: the demo benchmark
    assert r.record.mode == "benchmark"
    assert [d["spec"] for d in r.record["components"]["degradations"]] == ["gaussian:sigma=25.0,clip=true"]
    assert set(r.metrics) == {"psnr", "ssim"}
    img = smooth_image()
    r = restorekit.restore(img, mode="benchmark", net=TINY, iters=1, registry=registry)
    assert r.record.mode == "benchmark"
    assert [d["spec"] for d in r.record["components"]["degradations"]] == ["gaussian:sigma=25.0,clip=true"]
    assert not np.allclose(np.moveaxis(r.degraded, 0, -1), img, atol=1e-3) and set(r.metrics) == {"psnr", "ssim"}


def test_the_defaults_that_depend_on_the_run():
    from restorekit.run.settings import DEFAULTS, default_degrade, default_mode, make_settings

    assert default_mode(None) == "benchmark" and default_mode("photo.png") == "restore"
    assert default_degrade("restore") == ("noise",) and default_degrade("benchmark") == ("gaussian:25",)
    assert DEFAULTS["degrade"] == {"restore": ("noise",), "benchmark": ("gaussian:25",)}
    s = make_settings(image=np.zeros((8, 8)))
    assert (s.mode, s.degrade) == ("restore", ("noise",))
    s = make_settings()
    assert (s.mode, s.degrade) == ("benchmark", ("gaussian:25",))
    assert make_settings(image="photo.png", degrade="none").degrade == ("none",)
    assert make_settings(image="photo.png", mode="benchmark").degrade == ("gaussian:25",)
    assert make_settings(mode="restore").degrade == ("noise",)
    # a preset that sets the mode keeps it, image or not
    s = make_settings(image="photo.png", preset="denoise")
    assert (s.mode, s.degrade) == ("benchmark", ("gaussian:25",)) and "mode" in s.from_preset
    with pytest.raises(UsageError, match="unknown mode"):
        make_settings(image="photo.png", mode="restor")


def test_restore_mode_adds_nothing(registry):
    img = smooth_image()
    r = restorekit.restore(img, degrade="gaussian:25", net=TINY, iters=1, mode="restore", registry=registry)
    assert np.allclose(np.moveaxis(r.degraded, 0, -1), img, atol=1e-6)
    with pytest.raises(UsageError, match="reference is"):
        restorekit.restore(img, degrade="downsample:2", net=TINY, iters=1, mode="restore",
                           reference=img, registry=registry)


def test_identity_with_tv_and_none(registry):
    img = smooth_image(16, 16)
    r_none = restorekit.restore(img, mode="benchmark", degrade="gaussian:25", prior="none", iters=50, registry=registry)
    r_tv = restorekit.restore(img, mode="benchmark", degrade="gaussian:25", prior="tv:0.2", iters=200, lr=0.01,
                              registry=registry)
    assert r_none.record["components"]["generator"]["name"] == "identity"
    # no prior: the fit converges to the noisy observation; TV smooths and scores higher
    assert r_tv.metrics["psnr"] > r_none.metrics["psnr"] + 1.0


def test_dip_plus_tv_combines(registry):
    img = smooth_image()
    r = restorekit.restore(img, degrade="gaussian:25", prior=["dip", "tv:0.01"], net=TINY, iters=2, registry=registry)
    roles = [p["role"] for p in r.record["components"]["priors"]]
    assert roles == ["network", "penalty"]


def test_dip_improves_a_denoising_problem(registry):
    """A real (small) fit: the restored image beats the noisy one."""
    img = smooth_image(32, 32)
    r = restorekit.restore(img, mode="benchmark", degrade="gaussian:25", net="skip:levels=3,channels=16,skip=4",
                           iters=150, lr=0.01, registry=registry)
    assert r.metrics["psnr"] > r.baseline["psnr"] + 2.0


def test_backtracking_restores_weights(registry):
    """A collapse of the fit (>5 dB between checks) restores the saved weights."""
    import torch

    from restorekit.run.engine import fit

    gen = registry.create("generator", TINY)
    dip = registry.create("prior", "dip:ema=0")
    y = torch.rand(1, 3, 16, 16)
    calls = {"n": 0}
    snapshots = {}

    def forward(x):
        calls["n"] += 1
        if calls["n"] == 8:  # iteration 8: the output looks ruined
            return x * 0 + 1e3
        return x

    def cb(p):
        if p.iteration in (6, 8):
            snapshots[p.iteration] = p.iteration

    problem = restorekit.Problem(observation=y, forward=forward, mask=None, image_shape=(3, 16, 16), init=y)
    res = fit(problem, generator=gen, network_prior=dip, penalties=[], iterations=12, lr=0.01, seed=0,
              device=torch.device("cpu"), report_every=2, callback=cb)
    assert res.backtracks == 1
    assert res.iterations_run == 12


def test_loop_has_no_host_sync_between_reports(registry, monkeypatch):
    """.item() is only called on reporting (and backtracking) iterations."""
    import torch

    calls = {"n": 0}
    orig = torch.Tensor.item

    def counting(self):
        import sys

        if sys._getframe(1).f_globals.get("__name__", "").startswith("restorekit"):
            calls["n"] += 1  # our own syncs, not the optimiser's CPU bookkeeping
        return orig(self)

    monkeypatch.setattr(torch.Tensor, "item", counting)
    img = smooth_image(16, 16)
    restorekit.restore(img, mode="benchmark", degrade="gaussian:25", prior="dip:backtrack=0", net=TINY, iters=40,
                       report_every=20, metrics=["mse"], registry=registry)
    # reports at 1, 20, 40: a loss and two PSNRs each
    assert calls["n"] <= 9


def test_ema_is_default_output(registry):
    img = smooth_image(16, 16)
    r = restorekit.restore(img, net=TINY, iters=2, registry=registry)
    assert r.record["result"]["output"] == "ema"
    r = restorekit.restore(img, prior="dip:ema=0", net=TINY, iters=2, registry=registry)
    assert r.record["result"]["output"] == "last"


def test_text_and_box_masks(registry):
    img = smooth_image(64, 64)
    r = restorekit.restore(img, mode="benchmark", degrade="text:HELLO,font_size=12", net=TINY, iters=1,
                           registry=registry)
    lost = ~r.mask
    assert 0.02 < lost.mean() < 0.5
    r = restorekit.restore(img, mode="benchmark", degrade="box:width=10,height=6,x=2,y=3", net=TINY, iters=1,
                           registry=registry)
    assert (~r.mask).sum() == 60 and not r.mask[3:9, 2:12].any()


def test_default_image_is_embedded():
    from restorekit.api import default_image_path

    p = default_image_path()
    assert p.exists() and p.stat().st_size > 1000


def test_cpu_default_iterations_capped(registry, monkeypatch):
    from restorekit.run import plan as api

    monkeypatch.setattr(api, "CPU_ITERATION_CAP", 2)
    notes = []
    r = restorekit.restore(smooth_image(16, 16), mode="benchmark", prior="dip", net=TINY, registry=registry, device="cpu",
                           log=notes.append)
    assert r.record["settings"]["iterations"] == 2
    assert notes and "--iters" in notes[0]


def test_too_small_for_the_default_net_is_a_usage_error(registry):
    img = smooth_image(20, 20)
    with pytest.raises(UsageError, match="too small.*levels"):
        restorekit.restore(img, prior="dip", iters=1, registry=registry)


def test_bf16_hint_only_for_fp32_dip_on_a_cpu_with_bf16(registry, monkeypatch):
    from restorekit.run import plan as api

    img = np.random.default_rng(0).random((16, 16, 3))
    kw = dict(prior="dip", net="skip:channels=4,levels=2", iters=2, registry=registry, device="cpu")
    hint = "--precision bf16 is likely faster"
    monkeypatch.setattr(api, "cpu_has_native_bf16", lambda: True)
    assert any(hint in n for n in restorekit.restore(img, **kw).record["notes"])
    assert not any(hint in n for n in restorekit.restore(img, precision="bf16", **kw).record["notes"])
    assert not any(hint in n for n in restorekit.restore(img, prior="tv", net="identity", iters=2,
                                                           registry=registry, device="cpu").record["notes"])
    monkeypatch.setattr(api, "cpu_has_native_bf16", lambda: False)
    assert not any(hint in n for n in restorekit.restore(img, **kw).record["notes"])


def test_cpu_has_native_bf16_reads_the_flags(monkeypatch, tmp_path):
    import builtins

    from restorekit.run import plan as api

    real_open = builtins.open
    info = tmp_path / "cpuinfo"

    def fake_open(path, *a, **k):
        return real_open(info if path == "/proc/cpuinfo" else path, *a, **k)

    monkeypatch.setattr(builtins, "open", fake_open)
    info.write_text("processor : 0\nflags : fpu sse avx2 avx512f\n")
    assert api.cpu_has_native_bf16() is False
    info.write_text("processor : 0\nflags : fpu avx512f avx512_bf16\n")
    assert api.cpu_has_native_bf16() is True
    info.unlink()
    assert api.cpu_has_native_bf16() is False
