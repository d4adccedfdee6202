"""Real noise (issue 20): the blind noise model, the denoisers told it, and the ground-truth-free
safeguards (never worse than the input; a budgeted fit never worse than its start)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import convolve, gaussian_filter

import restorekit
from restorekit.noise import NoiseModel, estimate
from restorekit.noise.check import STRUCTURE_LIMIT, structure_ratio
from restorekit.noise.denoise import stabilise, unstabilise
from tests.helpers import invoke, one_line_error


def scene(h=128, w=128, seed=0) -> np.ndarray:
    """A (3, H, W) picture with flat regions, edges and smooth shading, in [0.1, 0.9]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.3 + 0.4 * xx, 0.6 - 0.3 * yy, 0.5 + 0.2 * np.sin(4 * xx)])
    side = max(4, min(h, w) // 5)
    for _ in range(6):  # a few flat-shaded rectangles: edges
        y0, x0 = rng.integers(0, h - side), rng.integers(0, w - side)
        img[:, y0:y0 + side, x0:x0 + side] = rng.uniform(0.15, 0.85, (3, 1, 1))
    return np.clip(img, 0.1, 0.9)


def camera_noise(clean: np.ndarray, a: float, b: float, blur: bool, seed=1) -> np.ndarray:
    """Poisson-Gaussian noise (var = a x + b), optionally correlated by a 3x3 binomial kernel (like
    demosaicking) rescaled to keep the variance, and shared in part between channels."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(clean.shape)
    shared = rng.standard_normal(clean.shape[1:])
    white = np.sqrt(0.7) * white + np.sqrt(0.3) * shared[None]  # cross-channel correlation 0.3
    if blur:
        k = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
        white = np.stack([convolve(c, k, mode="wrap") for c in white]) / np.sqrt((k**2).sum())
    return clean + np.sqrt(a * clean + b) * white


def test_estimate_finds_level_and_correlation_of_correlated_signal_dependent_noise():
    clean = scene(256, 256)
    noisy = camera_noise(clean, a=0.0008, b=0.0001, blur=True)
    truth = (noisy - clean).std(axis=(1, 2))
    m = estimate(noisy)
    assert np.all(np.abs(np.log(m.rms / truth)) < np.log(1.3)), (m.rms, truth)
    # binomial 3x3 kernel: neighbour correlation of the noise 2/3 (sum k_i k_{i+1} / sum k_i^2 per axis)
    assert 0.5 < m.lag1 < 0.8, m.lag1
    off = m.cross_channel[np.triu_indices(3, 1)]
    assert np.all((off > 0.15) & (off < 0.45)), m.cross_channel
    assert m.a.mean() > 0.3 * 0.0008, m.a  # the level grows with the signal
    # a white-noise estimator sees a fraction of it; the white-noise equivalent sees more than the RMS
    assert m.white_sigma() > truth.mean()


def test_estimate_of_white_noise_is_white_and_constant():
    clean = scene(256, 256)
    noisy = camera_noise(clean, a=0.0, b=0.02**2, blur=False)
    m = estimate(noisy)
    assert abs(m.lag1) < 0.12
    assert np.all(np.abs(m.rms / 0.02 - 1) < 0.25), m.rms
    rec = m.record()
    assert set(rec) >= {"a_255", "b_255", "rms_255", "lag1_correlation", "cross_channel_correlation"}
    json.dumps(rec)  # plain JSON


def test_estimate_is_bounded_on_tiny_and_flat_images():
    tiny = camera_noise(scene(20, 24), 0.0, 0.01**2, blur=False)
    m = estimate(tiny)
    assert np.all(np.isfinite(m.rms)) and np.all(m.rms <= tiny.std(axis=(1, 2)) + 1e-9)
    flat = np.full((1, 64, 64), 0.5)
    m = estimate(flat)
    assert np.all(np.isfinite(m.rms)) and float(m.rms.max()) < 1e-3


def test_stabilise_inverts_and_makes_the_variance_one():
    clean = scene(128, 128)
    noisy = camera_noise(clean, a=0.002, b=0.0002, blur=False)
    m = NoiseModel(a=np.full(3, 0.002), b=np.full(3, 0.0002), acf=np.zeros((3, 3, 3, 3)), rms=np.full(3, 0.03))
    z = stabilise(noisy, m)
    assert np.allclose(unstabilise(z, m), noisy, atol=1e-9)
    zc = stabilise(clean, m)
    assert abs(float((z - zc).std()) - 1) < 0.1


def test_structure_ratio_flags_a_result_that_removed_edges():
    clean = scene(128, 128)
    noisy = camera_noise(clean, a=0.0, b=0.02**2, blur=False)
    m = estimate(noisy)
    assert structure_ratio(noisy, clean, m) <= STRUCTURE_LIMIT  # the perfect result removed noise only
    blurred = np.stack([gaussian_filter(c, 3) for c in noisy])
    assert structure_ratio(noisy, blurred, m) > 2 * STRUCTURE_LIMIT


def _png(tmp_path, name, chw):
    import imageio.v3 as iio

    p = tmp_path / name
    iio.imwrite(p, (np.moveaxis(np.clip(chw, 0, 1), 0, -1) * 255).round().astype(np.uint8))
    return p


@pytest.fixture
def noisy_png(tmp_path):
    clean = scene(64, 64)
    return _png(tmp_path, "noisy.png", camera_noise(clean, 0.0005, 0.0002, blur=True)), _png(tmp_path, "clean.png", clean)


def test_run_with_no_flags_estimates_the_noise_and_improves_the_image(noisy_png, tmp_path):
    noisy, clean = noisy_png
    out = tmp_path / "o"
    r = invoke(["run", noisy, "--reference", clean, "--out", out])
    assert r.exit_code == 0, r.output
    assert "noise estimated: RMS" in r.output
    rec = json.loads((out / "run.json").read_text())
    assert rec["mode"] == "restore" and rec["components"]["degradations"][0]["name"] == "noise"
    assert rec["noise"]["rms_255"] and rec["noise"]["lag1_correlation"] > 0.3
    assert rec["safeguard"]["check"] == "structure"
    assert rec["auto"]["task"] == "noise"
    m = rec["result"]["metrics"]
    assert m["psnr"] > rec["result"]["baseline"]["psnr"] + 1.5


def test_a_clean_photo_comes_back_nearly_unchanged(tmp_path):
    from restorekit.run.settings import default_image_path

    r = restorekit.restore(default_image_path(), reference=default_image_path())
    assert r.metrics["psnr"] >= 35, r.metrics


def test_the_safeguard_backs_off_an_over_estimated_noise_level(monkeypatch):
    """Told 16x the noise's variance, BM3D removes edges: the check sees it and denoises again, milder."""
    import restorekit.noise as noise_pkg

    clean = scene(64, 64)
    noisy = camera_noise(clean, 0.0, 0.01**2, blur=False)
    real = noise_pkg.estimate
    monkeypatch.setattr(noise_pkg, "estimate", lambda x: real(x).scaled(16.0))
    hwc = (np.moveaxis(np.clip(noisy, 0, 1), 0, -1) * 255).round().astype(np.uint8)
    # the safeguard alone: the learned cap would lower the level first
    r = restorekit.restore(hwc, degrade="noise:cap=false",
                           reference=(np.moveaxis(clean, 0, -1) * 255).round().astype(np.uint8))
    g = r.record.safeguard
    assert g.action == "milder" and "over-estimated" in g.why
    assert any(n.startswith("safeguard:") for n in r.record.notes)


@pytest.mark.skipif(__import__("restorekit.noise.level", fromlist=["_shipped"])._shipped() is None,
                    reason="the shipped noise-level network is not installed")
def test_the_learned_cap_lowers_an_over_estimated_noise_level_before_denoising(monkeypatch):
    """Told 16x the noise's variance by the statistical estimate, the noise-level network's reading caps it
    near the truth: the note says so, run.json keeps the reading, and no safeguard has to back off."""
    import restorekit.noise as noise_pkg
    import restorekit.noise.level as level

    clean = scene(128, 128)
    noisy = camera_noise(clean, 0.0, (6 / 255) ** 2, blur=True)
    real = noise_pkg.estimate
    inflated = []
    monkeypatch.setattr(noise_pkg, "estimate", lambda x: inflated.append(real(x).scaled(16.0)) or inflated[-1])
    hwc = (np.moveaxis(np.clip(noisy, 0, 1), 0, -1) * 255).round().astype(np.uint8)
    r = restorekit.restore(hwc, reference=(np.moveaxis(clean, 0, -1) * 255).round().astype(np.uint8))
    rec = r.record.noise
    assert rec.learned_rms_255 is not None and len(rec.learned_rms_255) == 3
    assert np.mean(rec.rms_255) <= level.CAP * np.mean(rec.learned_rms_255) + 0.01
    assert np.mean(rec.rms_255) < 0.6 * np.mean(inflated[-1].rms) * 255, (rec.rms_255, inflated[-1].rms * 255)
    notes = r.record.notes
    said = [i for i, n in enumerate(notes) if n.startswith(("noise estimated", "noise level lowered"))]
    assert len(said) == 2 and notes[said[0]] == inflated[-1].summary(), notes  # the estimate, then the cap
    assert notes[said[1]].startswith("noise level lowered") and "noise:cap=false" in notes[said[1]]
    assert r.metrics["psnr"] > r.baseline["psnr"] + 1

    kept = restorekit.restore(hwc, degrade="noise:cap=false")  # the switch: the statistical estimate is used
    assert kept.record.noise.learned_rms_255 is None
    assert np.allclose(kept.record.noise.rms_255, inflated[-1].rms * 255, rtol=1e-3, atol=1e-3)
    assert not any(n.startswith("noise level lowered") for n in kept.record.notes)


def test_noise_cannot_be_simulated():
    with pytest.raises(restorekit.UsageError, match="estimated from a real noisy image"):
        restorekit.restore(None, degrade="noise", mode="benchmark")
    r = invoke(["run", "--degrade", "noise"])
    one_line_error(r, "estimated from a real noisy image")


def test_a_budgeted_fit_that_ran_too_few_steps_returns_its_start():
    """A loaded machine: the fit gets a few steps in its budget; the result is its biharmonic start."""
    from restorekit.run.problem import fill_missing

    r = restorekit.restore(None, degrade="bernoulli:0.5", mode="benchmark", time_limit=0.3)
    g = r.record.safeguard
    assert g is not None and g.check == "start" and g.action == "start", g
    assert r.record.result.output == "start"
    assert any(n.startswith("warning: the fit ran") for n in r.record.notes)
    start = fill_missing(r.degraded, r.mask)  # biharmonic inpainting of the same draw
    assert np.allclose(r.restored, np.clip(start, 0, 1), atol=1e-5)
    assert r.metrics["psnr"] > r.baseline["psnr"] + 10


def test_start_floor_keeps_a_fit_that_fits_the_observed_pixels():
    import torch

    from restorekit.run.auto import Choice
    from restorekit.run.solve import START_FLOOR, start_floor
    from restorekit.testing import make_problem

    problem = make_problem("inpaint", shape=(3, 32, 32))

    class Plan:
        auto = Choice(task="inpaint", prior=("dip",), net="skip", precision="fp32", why="", budgeted=True)
        notes: list = []

    class Res:
        interrupted = False
        stop_reason = "time limit"
        iterations_run = 500

    exact = problem.observation.clone()  # the observed pixels fitted exactly
    g = start_floor(Plan, problem, exact, Res)
    assert g["action"] == "kept" and g["score"] <= START_FLOOR
    flat = torch.full_like(exact, 0.5)  # a fit that has not started
    g = start_floor(Plan, problem, flat, Res)
    assert g["action"] == "start" and Plan.notes


def test_a_dim_16_bit_micrograph_gets_its_shot_noise():
    """Poisson-Gaussian counts between ~100 and ~4000 of 65535 (gain 2, read noise 5 counts): the
    estimate runs on the image's own range, finds the signal dependence and the level in counts."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:192, 0:192] / 192
    photons = 50 + 1950 * (0.5 + 0.5 * np.sin(5 * xx) * np.cos(3 * yy))  # expected photons
    counts = 2 * rng.poisson(photons) + rng.normal(0, 5, photons.shape)
    truth = float(np.sqrt(np.mean(4 * photons + 25)))  # RMS in counts
    m = estimate(counts[None] / 65535)
    rms_counts = float(m.rms[0]) * 65535
    assert abs(rms_counts / truth - 1) < 0.2, (rms_counts, truth)
    assert m.a[0] * 65535 > 1.0  # variance grows with the signal: about 2 counts per count


def test_a_flat_16_bit_image_keeps_its_level_and_dtype():
    """A flat 16-bit image with white noise of 400 counts: the level in counts is found and printed, and
    the result stays uint16."""
    rng = np.random.default_rng(0)
    img = (20000 + rng.normal(0, 400, (64, 64))).astype(np.uint16)
    assert abs(float(estimate(img[None] / 65535).rms[0]) * 65535 / 400 - 1) < 0.15
    notes: list[str] = []
    r = restorekit.restore(img, log=notes.append)
    assert r.image.dtype == np.uint16
    assert any(n.startswith("noise in the image's own units (0-65535): RMS") for n in notes), notes
    assert float(np.std(r.image.astype(float) - 20000)) < 200  # most of the noise is gone


def test_a_negligible_shot_noise_slope_does_not_wreck_the_stabilisation():
    """A fitted slope of 1e-9 beside a constant variance of 4e-4 made the Anscombe transform's values
    ~1e5 times the noise, and BM3D returned garbage (a cc15 crop at 19.8 dB against 34.4 noisy)."""
    from restorekit.noise.denoise import bm3d_colored

    clean = scene(64, 64)
    noisy = camera_noise(clean, 0.0, 0.02**2, blur=False)
    m = estimate(noisy)
    m.a[:] = [1e-9, 2e-4, 1e-12]
    z = stabilise(noisy, m)
    assert np.abs(z).max() < 1e3
    assert np.allclose(unstabilise(z, m), noisy, atol=1e-9)
    out = bm3d_colored(noisy, m)
    err = lambda x: float(np.sqrt(np.mean((x - clean) ** 2)))  # noqa: E731
    assert err(out) < 0.7 * err(noisy)


def test_a_large_image_goes_through_bm3d_in_overlapping_tiles(monkeypatch):
    """Past TILE x TILE pixels BM3D runs on overlapping tiles of at most TILE a side (bounded memory); the
    blend is close to the whole image's result and as good against the clean image."""
    from restorekit.noise import denoise

    for size in (1, 1000, 1025, 2048, 6001):
        spans = denoise.tile_spans(size)
        assert spans[0][0] == 0 and sum(spans[-1]) == size and all(n <= denoise.TILE for _, n in spans)
        assert all(a + n - b >= denoise.OVERLAP for (a, n), (b, _) in zip(spans, spans[1:]))
    clean = scene(96, 80)
    noisy = camera_noise(clean, 0.0, 0.02**2, blur=True)
    m = estimate(noisy)
    whole = denoise.bm3d_colored(noisy, m)
    monkeypatch.setattr(denoise, "TILE", 48)
    monkeypatch.setattr(denoise, "OVERLAP", 16)
    seen = []
    real = denoise._bm3d_colored
    monkeypatch.setattr(denoise, "_bm3d_colored", lambda x, *a: seen.append(x.shape) or real(x, *a))
    tiled = denoise.bm3d_colored(noisy, m)
    assert len(seen) == 3 * 2 and all(h <= 48 and w <= 48 for _, h, w in seen)
    err = lambda x: float(np.sqrt(np.mean((x - clean) ** 2)))  # noqa: E731
    assert err(tiled) < 1.1 * err(whole) and err(tiled) < 0.7 * err(noisy)
    assert float(np.sqrt(np.mean((tiled - whole) ** 2))) < 0.3 * err(noisy)

    import bm3d  # the white-noise partner goes through the same tiles

    monkeypatch.setattr(denoise, "TILE", 10**6)
    white_whole = denoise.bm3d_white(noisy, m)
    monkeypatch.setattr(denoise, "TILE", 48)
    seen.clear()
    rgb = bm3d.bm3d_rgb
    monkeypatch.setattr(bm3d, "bm3d_rgb", lambda x, *a, **k: seen.append(x.shape) or rgb(x, *a, **k))
    white_tiled = denoise.bm3d_white(noisy, m)
    assert len(seen) == 3 * 2 and all(h <= 48 and w <= 48 for h, w, _ in seen)
    assert err(white_tiled) < 1.1 * err(white_whole) and err(white_tiled) < 0.7 * err(noisy)


def test_real_noise_bm3d_is_averaged_with_bm3d_told_the_white_noise_equivalent(monkeypatch):
    """The default on real noise: the result the safeguard accepts (BM3D told the model) averaged with BM3D
    told the model's white-noise equivalent, with a note; ``bm3d:white_mean=false`` leaves the first alone, and
    so does near-white noise."""
    from restorekit.noise import denoise

    clean = scene(64, 64)
    noisy = camera_noise(clean, 0.0, (6 / 255) ** 2, blur=True)
    hwc = (np.moveaxis(np.clip(noisy, 0, 1), 0, -1) * 255).round().astype(np.uint8)
    ref = (np.moveaxis(clean, 0, -1) * 255).round().astype(np.uint8)
    partner = []
    real = denoise.bm3d_white
    monkeypatch.setattr(denoise, "bm3d_white", lambda *a, **k: partner.append(real(*a, **k)) or partner[-1])
    mean = restorekit.restore(hwc, reference=ref)
    alone = restorekit.restore(hwc, prior="bm3d:white_mean=false", reference=ref)
    assert len(partner) == 1 and mean.record.safeguard.action == alone.record.safeguard.action == "kept"
    assert any(n.startswith("averaged with bm3d told the noise's white-noise equivalent") for n in mean.record.notes)
    assert not any(n.startswith("averaged with") for n in alone.record.notes)
    assert np.allclose(mean.restored, (alone.restored + partner[0]) / 2, atol=1e-5)
    assert not np.allclose(mean.restored, alone.restored, atol=1e-3)
    assert mean.metrics["psnr"] > mean.baseline["psnr"] + 1

    # white noise: the model's spectrum is already flat, the partner would only smooth more; it is not run
    white = camera_noise(clean, 0.0, (6 / 255) ** 2, blur=False)
    r = restorekit.restore((np.moveaxis(np.clip(white, 0, 1), 0, -1) * 255).round().astype(np.uint8))
    assert r.record.noise.lag1_correlation < 0.2 and r.record.safeguard.action in ("kept", "milder")
    assert len(partner) == 1 and not any(n.startswith("averaged with") for n in r.record.notes)


def test_a_grey_image_stored_as_rgb_is_denoised():
    """Equal channels: the colour differences carry no noise power; BM3D got an all-zero spectrum for
    them and failed with NaN (set14's bridge.png)."""
    clean = scene(64, 64)[:1].repeat(3, axis=0)
    noisy = camera_noise(clean[:1], 0.0, 0.02**2, blur=True).repeat(3, axis=0)
    hwc = (np.moveaxis(np.clip(noisy, 0, 1), 0, -1) * 255).round().astype(np.uint8)
    r = restorekit.restore(hwc, reference=(np.moveaxis(clean, 0, -1) * 255).round().astype(np.uint8))
    assert np.isfinite(r.restored).all() and r.metrics["psnr"] > r.baseline["psnr"]


def test_the_safeguard_returns_the_input_when_no_milder_level_passes(monkeypatch):
    import restorekit.noise.check as check
    import restorekit.run.solve as solve

    monkeypatch.setattr(solve, "MILDER", (0.5,))
    monkeypatch.setattr(check, "STRUCTURE_LIMIT", -1.0)  # nothing passes
    clean = scene(48, 48)
    noisy = camera_noise(clean, 0.0, 0.02**2, blur=False)
    hwc = (np.moveaxis(np.clip(noisy, 0, 1), 0, -1) * 255).round().astype(np.uint8)
    r = restorekit.restore(hwc)
    assert r.record.safeguard.action == "input"
    assert np.array_equal(r.image, hwc)


def test_correlation_ratio_tells_removed_noise_from_removed_fine_texture():
    """A result that removed exactly the correlated noise the model describes passes; one that removed
    fine grain far less correlated than the model's noise (a clean photo's own texture) fails."""
    from restorekit.noise.check import CORRELATION_LIMIT, correlation_ratio

    clean = scene(128, 128)
    noisy = camera_noise(clean, a=0.0, b=0.02**2, blur=True)
    m = estimate(noisy)
    assert m.lag1 > 0.5
    assert correlation_ratio(noisy, clean, m) >= CORRELATION_LIMIT
    grain = 0.02 * np.random.default_rng(5).standard_normal(clean.shape)  # white: no neighbour correlation
    assert correlation_ratio(clean + grain, clean, m) < 0.5 * CORRELATION_LIMIT
    white = estimate(camera_noise(clean, a=0.0, b=0.02**2, blur=False))
    assert correlation_ratio(clean + grain, clean, white) is None  # white noise: nothing to compare


def test_the_safeguard_returns_the_input_when_the_removed_part_is_not_the_models_noise(monkeypatch):
    import restorekit.noise.check as check

    monkeypatch.setattr(check, "correlation_ratio", lambda noisy, out, model: 0.1)
    clean = scene(48, 48)
    noisy = camera_noise(clean, 0.0, 0.02**2, blur=True)
    hwc = (np.moveaxis(np.clip(noisy, 0, 1), 0, -1) * 255).round().astype(np.uint8)
    r = restorekit.restore(hwc)
    g = r.record.safeguard
    assert g.check == "correlation" and g.action == "input" and g.score < g.limit, g
    assert any(n.startswith("safeguard:") and "texture" in n for n in r.record.notes)
    assert np.array_equal(r.image, hwc)


def test_a_real_noise_partner_of_the_wrong_shape_is_a_clear_error(monkeypatch):
    """A prior's partner that returns another shape is reported, not broadcast into the result."""
    import restorekit_classic

    monkeypatch.setattr(restorekit_classic.BM3D, "real_noise_partner", lambda self, image, noise: np.zeros((1, 2, 2)))
    noisy = camera_noise(scene(64, 64), 0.0, (6 / 255) ** 2, blur=True)
    with pytest.raises(restorekit.RestoreError, match="real-noise partner of shape"):
        restorekit.restore((np.moveaxis(np.clip(noisy, 0, 1), 0, -1) * 255).round().astype(np.uint8))
