"""--prior auto (the default), keep_known, impulse detection, and the classical baselines it is measured against."""

from __future__ import annotations

import numpy as np
import pytest

import restorekit
from restorekit.errors import UsageError

TINY = "skip:levels=2,channels=8,skip=2"
FIT_PRIOR = "dip:keep_known=true,input=observation"


def smooth(h=24, w=24, c=3, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.5 + 0.35 * np.sin(4 * xx + k) * np.cos(3 * yy - k) for k in range(c)], -1)
    return np.clip(img + 0.01 * rng.standard_normal(img.shape), 0.02, 0.98)


@pytest.fixture
def fast_budget(monkeypatch):
    """auto's time budget cut to a fraction of a second."""
    from restorekit.run import auto

    monkeypatch.setattr(auto, "BUDGET_S", 0.3)
    monkeypatch.setattr(auto, "BUDGET_MAX_S", 0.3)


@pytest.fixture
def classic_registry():
    import restorekit_classic

    from restorekit.testing.hosts import registered

    with registered(restorekit_classic, name="classic") as host:
        yield host.registry


# -- the choice -----------------------------------------------------------------------------------------
def test_the_default_prior_is_auto():
    from restorekit.run.settings import DEFAULTS

    assert DEFAULTS["prior"] == ("auto",) and DEFAULTS["precision"] == "auto"


@pytest.mark.parametrize("degrade, task", [
    (["bernoulli:0.5"], "inpaint"), (["box"], "hole"), (["text"], "inpaint"), (["bernoulli", "box"], "inpaint"),
    (["salt-pepper:0.1"], "impulse"), (["salt-pepper:amount=0.1,detect=false"], "other"),
    (["downsample:4"], "sr"), (["gaussian:25"], "gaussian"), (["poisson:10"], "poisson"),
    (["periodic"], "periodic"), (["downsample:2", "gaussian:10"], "other"), (["none"], "other"),
])
def test_task_classes(registry, degrade, task):
    from restorekit.run.auto import task_of

    assert task_of([registry.create("degradation", d) for d in degrade]) == task


def test_missing_pixels_fit_a_cpu_network_for_a_time_budget(registry, fast_budget):
    r = restorekit.restore(smooth(32, 32), mode="benchmark", degrade="bernoulli:0.5", registry=registry, device="cpu")
    rec = r.record
    assert rec.auto is not None and rec.auto.task == "inpaint"
    # a 32-pixel image: the network loses a level (its deepest keeps 2x2 pixels)
    assert rec.auto.prior == [FIT_PRIOR] and rec.auto.net == "skip:channels=32,levels=4"
    assert rec.auto.time_limit_s == 0.3 and rec.settings.time_limit_s == 0.3
    assert rec.components.generator.params["channels"] == 32 and rec.components.generator.params["levels"] == 4
    assert rec.components.priors[0].params["keep_known"] is True
    assert rec.components.priors[0].params["input"] == "observation"
    assert rec.result.stop_reason == "time limit" or "time" in (rec.result.stop_reason or "")
    assert rec.settings.stop is None  # no noise to overfit: the budget ends the fit
    assert any(n.startswith(f"auto: {FIT_PRIOR}") for n in rec.notes)
    assert any("budget" in n for n in rec.notes)


def test_auto_precision_is_bf16_only_for_its_own_fits_on_a_bf16_cpu(registry, fast_budget, monkeypatch):
    from restorekit.run import plan

    monkeypatch.setattr(plan, "cpu_has_native_bf16", lambda: True)
    img = smooth(32, 32)
    assert restorekit.restore(img, mode="benchmark", degrade="bernoulli:0.5", registry=registry, device="cpu").record.settings.precision == "bf16"
    named = restorekit.restore(img, mode="benchmark", degrade="bernoulli:0.5", prior="dip", net=TINY, iters=2, registry=registry, device="cpu")
    assert named.record.settings.precision == "fp32" and named.record.auto is None
    monkeypatch.setattr(plan, "cpu_has_native_bf16", lambda: False)
    assert restorekit.restore(img, mode="benchmark", degrade="bernoulli:0.5", registry=registry, device="cpu").record.settings.precision == "fp32"


def test_gaussian_noise_is_bm3d_and_the_learned_denoiser_when_installed(classic_registry):
    """Gray: BM3D and the learned model; colour: the learned model also in the image's principal colour axes and
    in RGB, four solvers weighted by SURE."""
    pytest.importorskip("bm3d")
    r = restorekit.restore(smooth(32, 32, c=1)[..., 0], mode="benchmark", degrade="gaussian:25",
                           registry=classic_registry, device="cpu")
    assert r.record.auto.prior == ["bm3d", "learned"] and r.record.auto.task == "gaussian"
    assert [p.name for p in r.record.components.priors] == ["bm3d", "learned"]
    assert r.record.settings.iterations == 0 and r.record.settings.precision == "fp32"
    assert any(n.startswith("SURE weights of the solvers: bm3d") for n in r.record.notes)
    r = restorekit.restore(smooth(32, 32), mode="benchmark", degrade="gaussian:25", registry=classic_registry,
                           device="cpu")
    colour = ["bm3d", "learned", "learned:colour=pca", "learned:colour=rgb"]
    assert r.record.auto.prior == colour
    assert [p.spec.split(",colour=")[-1] for p in r.record.components.priors[1:]] == ["opponent", "pca", "rgb"]
    weights = next(n for n in r.record.notes if n.startswith("SURE weights of the solvers: "))
    assert "learned (pca) " in weights and "learned (rgb) " in weights
    assert r.metrics["psnr"] > r.baseline["psnr"] + 5


def test_sure_weighs_the_solvers_away_from_black_and_white(registry, monkeypatch):
    """A noisy image clipped to [0, 1] has no Gaussian noise near black and white, where SURE is biased: the
    weights are judged on the values whose mean estimate is at least CLIP_MARGIN sigmas from both (all values
    when under CLIP_MIN_INSIDE of them are), and the note says on how many."""
    import torch

    from restorekit.run import solve

    est = torch.tensor([0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
    inside = solve.unclipped([est - 0.01, est + 0.01], 0.1)  # 2 sigma = 0.2
    assert inside.tolist() == [0, 0, 1, 1, 1, 0, 0]
    assert solve.unclipped([torch.tensor([0.0, 0.05, 0.97, 1.0] * 5 + [0.5])], 0.1).tolist() == [1.0] * 21

    seen = []
    real = solve.sure_weights
    monkeypatch.setattr(solve, "sure_weights", lambda outs, y, divs, sigma: seen.append((outs, y)) or real(outs, y, divs, sigma))
    img = smooth(32, 32)
    img[:, :12] = 0.03  # a dark band: clipped noise at sigma 25
    r = restorekit.restore(img, mode="benchmark", degrade="gaussian:25", registry=registry, device="cpu")
    note = next(n for n in r.record.notes if n.startswith("SURE weights of the solvers: "))
    (outs, y), = seen
    share = float((outs[0] != 0).double().mean())  # the dark band is left out of every term
    assert 0.3 < share < 0.8 and f"judged on the {100 * share:.0f}% of values at least 2 sigma from black" in note
    assert all(float(o[..., :, :10].abs().max()) == 0 for o in outs) and float(y[..., :, :10].abs().max()) == 0
    assert r.metrics["psnr"] > r.baseline["psnr"] + 5


def test_without_bm3d_gaussian_noise_is_the_learned_denoiser(registry):
    r = restorekit.restore(smooth(32, 32, c=1)[..., 0], mode="benchmark", degrade="gaussian:25", registry=registry,
                           device="cpu")
    assert r.record.auto.prior == ["learned"]
    r = restorekit.restore(smooth(32, 32), mode="benchmark", degrade="gaussian:25", registry=registry, device="cpu")
    assert r.record.auto.prior == ["learned", "learned:colour=pca", "learned:colour=rgb"]
    assert any("bm3d + learned would be the choice, but bm3d is not installed" in n for n in r.record.notes)


def test_periodic_stripes_are_the_notch_filter(classic_registry):
    r = restorekit.restore(smooth(32, 32), mode="benchmark", degrade="periodic", registry=classic_registry, device="cpu")
    assert r.record.auto.prior == ["notch"]


def test_super_resolution_is_tv_on_the_pixels(registry):
    r = restorekit.restore(smooth(32, 32), mode="benchmark", degrade="downsample:4", registry=registry, device="cpu")
    assert r.record.auto.prior == ["tv:0.01"] and r.record.auto.net == "identity"
    assert r.record.components.generator.name == "identity" and r.record.result.iterations_run > 0


def test_without_the_classical_winner_auto_fits_and_says_why(registry, fast_budget):
    r = restorekit.restore(smooth(32, 32), mode="benchmark", degrade="periodic", registry=registry, device="cpu")
    assert r.record.auto.prior == [FIT_PRIOR]
    assert any("notch is the choice for this task on a CPU, but notch is not installed" in n for n in r.record.notes)


def test_loop_options_ask_for_a_fit(classic_registry):
    r = restorekit.restore(smooth(32, 32), mode="benchmark", degrade="gaussian:25", iters=3, net=TINY, registry=classic_registry,
                           device="cpu")
    assert r.record.auto.prior == [FIT_PRIOR] and r.record.auto.net == TINY
    assert r.record.result.iterations_run == 3 and r.record.auto.time_limit_s is None


@pytest.mark.parametrize("prior, fragment", [
    (["auto", "tv"], "cannot be combined"), (["auto:x=1"], "takes no parameters"),
])
def test_auto_misuse_is_a_usage_error(registry, prior, fragment):
    with pytest.raises(UsageError, match=fragment):
        restorekit.restore(smooth(), prior=prior, registry=registry)


def test_budget_grows_with_the_image_up_to_its_cap():
    from restorekit.run.auto import BUDGET_MAX_S, BUDGET_S, budget_seconds

    assert budget_seconds((3, 64, 64)) == BUDGET_S == budget_seconds((3, 128, 128))
    assert BUDGET_S < budget_seconds((3, 256, 256)) <= BUDGET_MAX_S
    assert budget_seconds((3, 2048, 2048)) == BUDGET_MAX_S


# -- keep_known --------------------------------------------------------------------------------------------
def test_keep_known_returns_the_observed_pixels_exactly(registry):
    img = smooth(24, 24)
    kw = dict(mode="benchmark", degrade="bernoulli:0.5", net=TINY, iters=3, registry=registry, device="cpu", seed=1)
    kept = restorekit.restore(img, prior="dip:keep_known=true", **kw)
    plain = restorekit.restore(img, prior="dip", **kw)
    known = np.asarray(kept.mask, dtype=bool)  # (H, W)
    obs = np.asarray(kept.degraded, dtype=np.float64)  # (C, H, W)
    out, out_plain = np.asarray(kept.restored, np.float64), np.asarray(plain.restored, np.float64)
    known = np.broadcast_to(known, obs.shape)
    assert np.abs(out[known] - obs[known]).max() <= 1e-6  # the observed pixels, as observed
    assert np.abs(out_plain[known] - obs[known]).max() > 1e-3  # what the fit alone gives there
    assert np.array_equal(out[~known], out_plain[~known])  # the missing pixels are the fit's
    assert kept.metrics["psnr"] > plain.metrics["psnr"]


def test_keep_known_does_nothing_when_the_kept_pixels_are_noisy(registry):
    img = smooth(24, 24)
    kw = dict(mode="benchmark", degrade=["bernoulli:0.5", "gaussian:25"], net=TINY, iters=3, registry=registry, device="cpu")
    a = restorekit.restore(img, prior="dip:keep_known=true", **kw)
    b = restorekit.restore(img, prior="dip", **kw)
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))


# -- the initial estimate ----------------------------------------------------------------------------------
@pytest.mark.parametrize("biharmonic", [True, False])
def test_missing_pixels_are_filled_in_the_initial_estimate(monkeypatch, biharmonic):
    from restorekit.run import problem

    if not biharmonic:
        monkeypatch.setattr(problem, "BIHARMONIC_MAX_MISSING", 0)  # the multi-scale fill of huge holes
    img = np.moveaxis(smooth(32, 32), -1, 0).astype(np.float32)
    known = np.random.default_rng(0).random((32, 32)) > 0.5
    known[8:20, 8:20] = False  # and a hole
    out = problem.fill_missing(img * known, known)
    assert np.array_equal(out[:, known], img[:, known])
    err_filled = np.abs(out[:, ~known] - img[:, ~known]).mean()
    err_mean = np.abs(img[:, known].mean(axis=1)[:, None] - img[:, ~known]).mean()
    assert err_filled < err_mean / 2


def test_fits_start_from_the_filled_estimate(registry):
    """The identity parameterisation starts at problem.init (one negligible step): the filled image."""
    r = restorekit.restore(smooth(32, 32), mode="benchmark", degrade="bernoulli:0.5", prior="none", net="identity", iters=1, lr=1e-9,
                           registry=registry)
    assert r.metrics["psnr_missing"] > 25  # 38 dB; the channel-mean fill it replaced scores 15 dB here


# -- impulse detection -------------------------------------------------------------------------------------
def test_impulse_pixels_finds_impulses_but_not_flat_extremes():
    from restorekit.builtins.degradations import impulse_pixels

    img = np.moveaxis(smooth(40, 40), -1, 0).astype(np.float32)
    img[:, :10, :10] = 0.0  # a black region (a night sky): extreme but not an impulse
    rng = np.random.default_rng(0)
    hit = rng.random((40, 40)) < 0.1
    hit[:10, :10] = False
    noisy = img.copy()
    noisy[:, hit] = rng.integers(0, 2, hit.sum()).astype(np.float32)
    found = impulse_pixels(noisy)
    assert not found[:9, :9].any()  # (its corner pixel is mostly surrounded by brighter ones)
    # nearly every impulse that differs from the image is found (a clump of same-valued impulses can
    # carry its 3x3 median with it), and almost nothing else
    visible = hit & (np.abs(noisy - img).max(axis=0) > 0.15)
    assert found[visible].mean() > 0.97
    assert (found & ~hit).sum() <= 2


def test_salt_pepper_pixels_become_missing_for_every_prior(registry):
    img = smooth(32, 32)
    detected = restorekit.restore(img, mode="benchmark", degrade="salt-pepper:0.1", prior="dip", net=TINY, iters=2, registry=registry)
    assert detected.record.task == "denoise" and "psnr_missing" in detected.metrics
    plain = restorekit.restore(img, mode="benchmark", degrade="salt-pepper:amount=0.1,detect=false", prior="dip", net=TINY, iters=2,
                               registry=registry)
    assert "psnr_missing" not in plain.metrics


def test_detected_impulses_are_inpainted_by_biharmonic(classic_registry):
    img = smooth(32, 32)
    on = restorekit.restore(img, mode="benchmark", degrade="salt-pepper:0.1", prior="biharmonic", registry=classic_registry)
    assert on.metrics["psnr"] > 35
    with pytest.raises(UsageError, match="no degradation masks"):
        restorekit.restore(img, mode="benchmark", degrade="salt-pepper:amount=0.1,detect=false", prior="biharmonic",
                           registry=classic_registry)


# -- the classical baselines ------------------------------------------------------------------------------
def test_median_removes_impulses(classic_registry):
    img = smooth(32, 32)
    r = restorekit.restore(img, mode="benchmark", degrade="salt-pepper:amount=0.1,detect=false", prior="median",
                           registry=classic_registry)
    assert r.metrics["psnr"] > r.baseline["psnr"] + 8
    with pytest.raises(UsageError, match="odd"):
        restorekit.restore(img, mode="benchmark", degrade="salt-pepper:0.1", prior="median:size=4", registry=classic_registry)


def test_notch_removes_periodic_stripes(classic_registry):
    img = smooth(64, 64)
    r = restorekit.restore(img, mode="benchmark", degrade="periodic:amplitude=40,frequency=0.25", prior="notch",
                           registry=classic_registry)
    assert r.metrics["psnr"] > r.baseline["psnr"] + 8


def test_bicubic_is_the_upsampled_observation(classic_registry):
    img = smooth(32, 32)
    r = restorekit.restore(img, mode="benchmark", degrade="downsample:4", prior="bicubic", registry=classic_registry)
    assert r.metrics["psnr"] == pytest.approx(r.baseline["psnr"], abs=1e-3)  # the baseline is bicubic too
    with pytest.raises(UsageError, match="upsamples"):
        restorekit.restore(img, mode="benchmark", degrade="gaussian:25", prior="bicubic", registry=classic_registry)


# -- several solvers: the mean of their results ------------------------------------------------------------
def test_solvers_combine_into_the_mean_of_their_results(classic_registry):
    img = smooth(32, 32)
    kw = dict(mode="benchmark", degrade="poisson:30", registry=classic_registry, seed=2)  # no known Gaussian sigma: the mean
    a = restorekit.restore(img, prior="nlm", **kw)
    b = restorekit.restore(img, prior="wavelet", **kw)
    both = restorekit.restore(img, prior=["nlm", "wavelet"], **kw)
    assert np.allclose(both.restored, (a.restored + b.restored) / 2, atol=1e-6)
    assert [p.name for p in both.record.components.priors] == ["nlm", "wavelet"]
    assert any("the result combines nlm + wavelet" in n for n in both.record.notes)
    assert not any(n.startswith("SURE weights") for n in both.record.notes)
    with pytest.raises(UsageError, match="not several with a fitted prior"):
        restorekit.restore(img, prior=["nlm", "wavelet", "dip"], **kw)


def test_with_gaussian_noise_solvers_are_weighted_by_sure(classic_registry):
    import re

    img = smooth(48, 48)
    kw = dict(mode="benchmark", degrade="gaussian:25", registry=classic_registry, seed=2)
    a = restorekit.restore(img, prior="nlm", **kw)
    b = restorekit.restore(img, prior="wavelet", **kw)
    both = restorekit.restore(img, prior=["nlm", "wavelet"], **kw)
    note = next(n for n in both.record.notes if n.startswith("SURE weights"))
    w = [float(v) for v in re.findall(r"(\d\.\d\d)", note)]
    assert len(w) == 2 and abs(sum(w) - 1) < 0.011
    assert np.allclose(both.restored, w[0] * a.restored + w[1] * b.restored, atol=0.006)
    # never much worse than the better of the two (SURE is an unbiased estimate of the error)
    assert both.metrics["psnr"] > max(a.metrics["psnr"], b.metrics["psnr"]) - 0.2


def test_sure_weights_prefer_the_estimator_with_less_risk():
    import torch

    from restorekit.run.solve import sure_weights

    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 64, 64, generator=g)
    sigma = 0.1
    y = x + sigma * torch.randn(x.shape, generator=g)
    n = x.numel()
    # the observation itself (divergence n) against the truth (divergence 0): all weight on the truth
    w = sure_weights([y, x], y, [float(n), 0.0], sigma)
    assert w[1] > 0.95
    # two estimators with independent errors of the same size and no divergence: about half each
    e1, e2 = 0.05 * torch.randn(x.shape, generator=g), 0.05 * torch.randn(x.shape, generator=g)
    w = sure_weights([x + e1, x + e2], y, [0.0, 0.0], sigma)
    assert abs(w[0] - 0.5) < 0.1 and min(w) >= 0
