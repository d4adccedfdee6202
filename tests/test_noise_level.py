"""The noise-level network (restorekit.noise.level): simulated camera noise, training, reading an image's
level, and the cap it puts on the statistical estimate (issue 20: a clean textured photo is not noisy)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from restorekit.noise import NoiseModel, estimate
from restorekit.noise import level
from tests.test_noise import camera_noise, scene


def _lag1(n: np.ndarray) -> float:
    n = n - n.mean()
    return float((n[:, 1:] * n[:, :-1]).mean() / (n * n).mean())


def _smooth_rgb(side=96, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    base = np.stack([0.3 + 0.4 * xx, 0.5 - 0.2 * yy, 0.4 + 0.2 * xx * yy], -1)
    return np.clip(base + rng.uniform(-0.05, 0.05, (1, 1, 3)), 0, 1)


def test_simulated_camera_noise_is_correlated_and_the_noise_free_pair_is_equal():
    x = _smooth_rgb()
    kinds = {"none": 0, "camera": 0}
    for seed in range(40):
        noisy, ref = level.simulate(x, np.random.default_rng(seed))
        assert noisy.shape == ref.shape == x.shape
        assert noisy.min() >= 0 and noisy.max() <= 1
        d = noisy - ref
        if not d.any():
            kinds["none"] += 1
        elif _lag1(d[..., 1]) > 0.3:  # demosaicked (and perhaps smoothed) noise: neighbours share it
            kinds["camera"] += 1
    assert kinds["none"] >= 1 and kinds["camera"] >= 10, kinds


def test_train_writes_a_model_that_levels_reads(tmp_path):
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        img = (np.clip(_smooth_rgb(120, i) + rng.normal(0, 0.02, (120, 120, 3)), 0, 1) * 255).astype(np.uint8)
        Image.fromarray(img).save(photos / f"p{i}.png")
    xs, ts = level.training_set(sorted(photos.iterdir()), 2, np.random.default_rng(0))
    assert xs.shape[1:] == (1, level.PATCH, level.PATCH) and xs.dtype == np.float32
    assert len(xs) == len(ts) and np.all(ts >= level.FLOOR - 1e-6)
    assert np.allclose(xs.mean(axis=(1, 2, 3)), 0, atol=1e-4) and np.allclose(xs.std(axis=(1, 2, 3)), 1, atol=1e-3)
    card = level.train(photos, tmp_path / "model", per_image=2, steps=3, batch=4, skip_every=3, log=lambda s: None)
    assert card["trained"]["photos"] == 2  # every 3rd photo (p0) left out
    saved = json.loads((tmp_path / "model" / "model.json").read_text())
    assert saved["format"] == level.FORMAT and saved["trained"]["steps"] == 3
    from safetensors.torch import load_file

    net = level.build()
    net.load_state_dict(load_file(str(tmp_path / "model" / "model.safetensors")))
    got = level.levels(np.moveaxis(_smooth_rgb(128), -1, 0), net)
    assert got is not None and got.shape == (3,) and np.all(np.isfinite(got) & (got >= 0))


def _white(c: int) -> np.ndarray:
    acf = np.zeros((c, c, 3, 3))
    acf[np.arange(c), np.arange(c), 1, 1] = 1
    return acf


class _Constant:
    """A stand-in network that reports the same noise share for every patch."""

    def __init__(self, share: float):
        self.share = share

    def __call__(self, x):
        import torch

        return torch.full((x.shape[0],), float(np.log(self.share)))


def test_cap_lowers_an_estimate_far_above_the_learned_level_and_says_so():
    img = np.moveaxis(_smooth_rgb(128), -1, 0)
    model = NoiseModel(a=np.full(3, 1e-3), b=np.full(3, 1e-4), acf=_white(3), rms=np.full(3, 0.04))
    learned = level.levels(img, _Constant(0.01))
    capped, note = level.cap(model, img, _Constant(0.01))
    assert note is not None and "lowered" in note
    assert np.isclose(capped.rms.mean(), level.CAP * learned.mean())
    # the whole variance line scales with the level
    f = (capped.rms / model.rms) ** 2
    assert np.allclose(capped.a, model.a * f) and np.allclose(capped.b, model.b * f)
    assert capped.record()["learned_rms_255"] == [round(float(v) * 255, 3) for v in learned]
    # an estimate within the cap is kept as it is
    kept, note = level.cap(model, img, _Constant(10.0))
    assert note is None and np.array_equal(kept.rms, model.rms) and kept.learned is not None


def test_cap_leaves_images_smaller_than_a_patch_and_textureless_channels_alone():
    model = NoiseModel(a=np.zeros(1), b=np.full(1, 1e-4), acf=_white(1), rms=np.full(1, 0.01))
    small = np.full((1, 40, 200), 0.5)
    out, note = level.cap(model, small, _Constant(0.01))
    assert note is None and out is model
    flat = np.full((1, 100, 100), 0.5)  # no spread anywhere: nothing to read
    out, note = level.cap(model, flat, _Constant(0.01))
    assert note is None and np.isnan(out.learned[0]) and out.rms[0] == model.rms[0]


def test_patch_grid_is_bounded_and_covers_the_image():
    g = level._grid(4000, 20)
    assert len(g) == 20 and g[0] == 0 and g[-1] == 4000 - level.PATCH
    assert level._grid(64, 5) == [0]


@pytest.mark.skipif(level._shipped() is None, reason="the shipped noise-level network is not installed")
def test_shipped_network_reads_noise_on_a_smooth_scene_and_little_on_a_clean_one():
    clean = scene(192, 192)
    sigma = 8 / 255
    noisy = clean + np.random.default_rng(3).normal(0, sigma, clean.shape)
    got = level.levels(noisy)
    assert np.all((got > sigma / 2.5) & (got < sigma * 2.5)), got * 255
    # correlated, signal-dependent noise too
    cam = camera_noise(clean, a=0.0008, b=0.0001, blur=True)
    truth = (cam - clean).std(axis=(1, 2))
    got = level.levels(cam)
    assert np.all((got > truth / 3) & (got < truth * 2.5)), (got * 255, truth * 255)
    # the clean scene itself: far below either
    assert np.all(level.levels(clean) < sigma / 3)


@pytest.mark.skipif(level._shipped() is None, reason="the shipped noise-level network is not installed")
def test_estimate_on_a_clean_textured_photo_is_capped():
    from skimage import data

    photo = np.moveaxis(data.astronaut()[100:356, 100:356].astype(np.float64) / 255, -1, 0)
    raw = estimate(photo)
    capped, note = level.cap(raw, photo)
    # the statistical estimate reads the astronaut's suit and badges as 6-7 grey levels of noise; the network
    # reads about 1.5, so the cap lowers the level by more than a third in every channel
    assert note is not None and np.all(capped.rms < 0.7 * raw.rms), (raw.rms * 255, capped.rms * 255)
    assert np.isclose(capped.rms.mean(), level.CAP * capped.learned.mean())


def test_the_training_command_does_not_replace_a_model_without_overwrite(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"finished")
    with pytest.raises(SystemExit) as stop:
        level.main([str(tmp_path), "--out", str(out), "--steps", "1"])
    assert stop.value.code == 2
    assert (out / "model.safetensors").read_bytes() == b"finished"
