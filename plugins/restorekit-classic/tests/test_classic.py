"""Tests of restorekit-classic: quality on small synthetic images, refusals, contract."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import restorekit_classic
from restorekit import UsageError
from restorekit.testing import check_plugin, make_problem, make_test_image, registered

DENOISERS = ["nlm", "tv-chambolle", "wavelet", "bm3d"]
PRIORS = {cls.name: cls for cls in restorekit_classic.PRIORS}


def psnr(clean: np.ndarray, test) -> float:
    test = np.asarray(test.detach().cpu() if hasattr(test, "detach") else test, dtype=np.float64)
    mse = np.mean((clean.astype(np.float64) - test.reshape(clean.shape)) ** 2)
    return float(10 * np.log10(1.0 / mse))


@pytest.fixture(scope="module", params=[3, 1], ids=["rgb", "gray"])
def noisy(request):
    """48x48 piecewise-constant + gradient image with Gaussian noise, sigma 25."""
    clean = make_test_image((request.param, 48, 48), seed=1)
    return clean, make_problem("denoise", image=clean, sigma=25, seed=3)


@pytest.mark.parametrize("name", DENOISERS)
def test_denoisers_improve_psnr(name, noisy):
    clean, problem = noisy
    before = psnr(clean, problem.observation)
    out = PRIORS[name]().solve(problem)
    assert tuple(out.shape) == (1, *problem.image_shape)
    after = psnr(clean, out)
    assert after > before + 5, f"{name}: {before:.2f} dB -> {after:.2f} dB"


@pytest.mark.parametrize("name", ["nlm", "tv-chambolle"])
def test_sigma_parameter_is_used(name, noisy):
    clean, problem = noisy
    weak = PRIORS[name].from_spec(f"{name}:sigma=2").solve(problem)
    strong = PRIORS[name]().solve(problem)
    assert psnr(clean, strong) > psnr(clean, weak) + 3


def test_sigma_is_estimated_when_unknown(noisy):
    clean, problem = noisy
    problem.sigma = None  # as after a degradation that does not know its level
    out = PRIORS["wavelet"]().solve(problem)
    assert psnr(clean, out) > psnr(clean, problem.observation) + 5


def test_biharmonic_fills_missing_pixels():
    clean = make_test_image((3, 48, 48), seed=1)
    problem = make_problem("inpaint", image=clean, fraction=0.5, seed=3)
    known = problem.mask[0, 0].numpy() > 0.5
    obs = problem.observation[0].numpy()
    mean_fill = np.where(known, obs, obs[:, known].mean(axis=1)[:, None, None])[None]
    before = psnr(clean, mean_fill)  # missing pixels filled with the channel means
    out = PRIORS["biharmonic"]().solve(problem)
    assert psnr(clean, out) > before + 8
    # the observed pixels are kept as they are
    assert np.allclose(out[0].numpy()[:, known], problem.observation[0].numpy()[:, known], atol=1e-5)


def test_denoiser_with_missing_pixels_inpaints_first():
    clean = make_test_image((3, 48, 48), seed=1)
    problem = make_problem("inpaint-noisy", image=clean, fraction=0.3, sigma=25, seed=3)
    out = PRIORS["nlm"]().solve(problem)
    fill_only = PRIORS["biharmonic"]().solve(problem)
    assert psnr(clean, out) > psnr(clean, fill_only) + 2


@pytest.mark.parametrize("name", ["nlm", "wavelet"])
def test_super_resolution_denoises_the_bicubic_upsample(name):
    clean = make_test_image((3, 48, 48), seed=1)
    problem = make_problem("sr", image=clean, factor=2, seed=3)
    out = PRIORS[name]().solve(problem)
    assert tuple(out.shape) == (1, 3, 48, 48)
    assert abs(psnr(clean, out) - psnr(clean, problem.init)) < 3  # close to bicubic, not a failure


def test_biharmonic_needs_a_mask():
    with pytest.raises(UsageError, match="no degradation masks any"):
        PRIORS["biharmonic"]().solve(make_problem("denoise"))
    with pytest.raises(UsageError, match="does not super-resolve"):
        PRIORS["biharmonic"]().solve(make_problem("sr"))


def test_super_resolution_with_missing_pixels_is_refused():
    import torch

    problem = make_problem("sr")
    problem.mask = torch.ones((1, 1, 16, 16))
    with pytest.raises(UsageError, match="super-resolution combined with missing pixels"):
        PRIORS["tv-chambolle"]().solve(problem)


def test_unknown_wavelet_suggests_close_names():
    with pytest.raises(UsageError, match="unknown wavelet 'db22x'.*did you mean"):
        PRIORS["wavelet"].from_spec("wavelet:wavelet=db22x").solve(make_problem("denoise"))


def test_missing_bm3d_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "bm3d", None)  # import bm3d now raises ImportError
    with pytest.raises(UsageError, match="pip install bm3d"):
        PRIORS["bm3d"]().solve(make_problem("denoise", shape=(1, 16, 16)))


def test_bm3d_on_gaussian_noise_goes_in_tiles_in_its_colour_space_and_copes_with_grey_rgb(monkeypatch):
    """BM3D told a sigma runs a large image in overlapping tiles (bounded memory), in the colour space its
    ``colorspace`` parameter names, and a grey image stored as RGB channel by channel (bm3d_rgb scales each
    colour difference by its range and gave NaN for a flat one)."""
    import bm3d

    from restorekit.noise import denoise

    clean = make_test_image((3, 80, 80), seed=1)
    problem = make_problem("denoise", image=clean, sigma=25, seed=3)
    whole = PRIORS["bm3d"]().solve(problem)
    monkeypatch.setattr(denoise, "TILE", 48)
    monkeypatch.setattr(denoise, "OVERLAP", 16)
    seen = []
    rgb = bm3d.bm3d_rgb
    monkeypatch.setattr(bm3d, "bm3d_rgb", lambda x, *a, **k: seen.append((x.shape, k["colorspace"])) or rgb(x, *a, **k))
    tiled = PRIORS["bm3d"].from_spec("bm3d:colorspace=YCbCr").solve(problem)
    assert len(seen) == 4 and all(h <= 48 and w <= 48 and cs == "YCbCr" for (h, w, _), cs in seen)
    before = psnr(clean, problem.observation)
    assert psnr(clean, tiled) > before + 5 and abs(psnr(clean, tiled) - psnr(clean, whole)) < 1.0

    grey = np.repeat(make_test_image((1, 48, 48), seed=2), 3, axis=0)
    problem = make_problem("denoise", image=grey, sigma=25, seed=3)
    problem.observation = problem.observation[:, :1].repeat(1, 3, 1, 1)  # the noise grey too
    out = PRIORS["bm3d"]().solve(problem).numpy()
    assert np.isfinite(out).all() and psnr(grey, out) > psnr(grey, problem.observation) + 5


def test_contract():
    results = check_plugin(restorekit_classic, name="classic")
    assert {name for _, name in results} == set(PRIORS)


def test_through_restore():
    from restorekit import restore

    image = np.moveaxis(make_test_image((3, 32, 32)), 0, -1)
    with registered(restorekit_classic, name="classic"):
        r = restore(image, degrade="gaussian:25", prior="tv-chambolle", metrics=["psnr"], device="cpu",
                    mode="benchmark")
    assert r.metrics["psnr"] > r.baseline["psnr"] + 5
    prior = r.record["components"]["priors"][0]
    assert prior["plugin"] == "classic" and prior["role"] == "solver"
    assert prior["spec"].startswith("tv-chambolle:weight=none")


def test_import_is_light():
    """`restorekit list` imports the plugin: scikit-image and bm3d must wait for solve()."""
    code = "import sys, restorekit_classic; print(sorted(m for m in ('skimage', 'bm3d', 'pywt', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
