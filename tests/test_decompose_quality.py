"""The dark channel prior's dehazing (restorekit.segment.dehaze, method ``dark-channel``) on tiny images.

A synthetic hazy image with a known scene, transmission and airlight (the
atmospheric scattering model ``I = J t + A (1 - t)``): the dehazed layer is
closer to the scene than the hazy input and the airlight is found; the guided
filter keeps a constant, smooths noise on a flat region and keeps an edge of
its guide; the command writes its files.
"""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest

from restorekit.segment.dehaze import box_mean, dark_channel, dark_channel_dehaze, default_patch, guided_filter
from tests.helpers import invoke

AIRLIGHT = np.array([0.9, 0.92, 0.95], np.float32)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


def _hazy(size: int = 48, seed: int = 0, sky: int = 8):
    """A scene that obeys the dark channel prior (blocks of saturated colours: one channel dark, with a
    little noise), hazed under a sky band of ``sky`` rows (transmission 0.02: the airlight shows there, as in
    a hazy photo with sky) and below it a transmission rising from exp(-1.5) to 1: (J, t, I)."""
    rng = np.random.default_rng(seed)
    block = 4
    n = -(-size // block)
    colours = rng.uniform(0.3, 0.9, (3, n, n))
    dark = rng.integers(0, 3, (n, n))
    for c in range(3):
        colours[c][dark == c] = 0.03
    j = np.kron(colours, np.ones((1, block, block)))[:, :size, :size]
    j = np.clip(j + 0.02 * rng.standard_normal(j.shape), 0, 1).astype(np.float32)
    d = np.linspace(1.0, 0.0, size - sky)
    t = (np.concatenate([np.full(sky, 0.02), np.exp(-1.5 * d)])[:, None] * np.ones((1, size))).astype(np.float32)
    hazy = (j * t[None] + AIRLIGHT[:, None, None] * (1 - t[None])).astype(np.float32)
    return j, t, hazy


def test_dark_channel_dehazes_better_than_the_hazy_input_and_finds_the_airlight():
    from restorekit.builtins.decompositions import DarkChannel

    j, t, hazy = _hazy()
    before = hazy.copy()
    out = DarkChannel.from_spec("dark-channel").decompose(hazy, "dehaze")
    assert np.array_equal(hazy, before)
    dehazed = out.layers["dehazed"]
    assert dehazed.shape == j.shape and out.mask.shape == t.shape
    assert out.layers["airlight"].shape == (3, 1, 1) and out.layers["transmission"].shape == (1,) + t.shape
    below = slice(8, None)  # under the sky, where the scene can be recovered (t >= 0.22 > t0)
    assert _psnr(dehazed[:, below], j[:, below]) > _psnr(hazy[:, below], j[:, below]) + 6.0  # about 11 dB
    assert np.abs(out.layers["airlight"].ravel() - AIRLIGHT).max() < 0.05
    assert np.abs(out.mask - t)[below].mean() < 0.12  # the transmission, too (about 0.07)
    assert any(n.startswith("airlight: ") for n in out.notes)
    # the airlight as the candidates' mean colour works as well, and the coarse transmission is patchier
    mean = DarkChannel.from_spec("dark-channel:airlight=mean,refine=false").decompose(hazy, "dehaze")
    assert np.abs(mean.layers["airlight"].ravel() - AIRLIGHT).max() < 0.05
    assert _psnr(mean.layers["dehazed"][:, below], j[:, below]) > _psnr(hazy[:, below], j[:, below]) + 6.0


def test_a_haze_free_scene_is_left_nearly_as_it_is():
    j, _, _ = _hazy()
    r = dark_channel_dehaze(j)  # the scene itself, no haze
    assert r.transmission.mean() > 0.8  # the scene's dark channel is near zero: no haze found
    assert _psnr(r.dehazed, j) > 20


def test_the_patch_scales_with_the_image_and_the_dark_channel_is_a_patch_minimum():
    assert default_patch(600, 400) == 15 and default_patch(128, 128) == 9 and default_patch(96, 200) == 7
    assert default_patch(16, 16) == 3
    img = np.full((3, 9, 9), 0.8, np.float32)
    img[1, 4, 4] = 0.1
    dc = dark_channel(img, 3)
    assert dc[3:6, 3:6].max() == pytest.approx(0.1) and dc[0, 0] == pytest.approx(0.8)


def test_the_guided_filter_keeps_a_constant_and_smooths_noise_on_a_flat_region():
    rng = np.random.default_rng(1)
    const = np.full((20, 24), 0.37)
    guide = rng.random((20, 24))
    assert np.allclose(guided_filter(guide, const, 4, 1e-3), 0.37, atol=1e-9)
    assert np.allclose(guided_filter(const, const, 30, 1e-3), 0.37, atol=1e-9)  # a radius beyond the image
    assert np.allclose(box_mean(const, 3), 0.37)
    # a flat region with noise, guided by itself: the noise's variance is below eps, so it is smoothed
    noisy = 0.5 + 0.02 * rng.standard_normal((40, 40))
    q = guided_filter(noisy, noisy, 4, 1e-3)
    assert q.std() < 0.5 * noisy.std() and abs(q.mean() - 0.5) < 0.01
    # an edge of the guide far above eps is kept while the flat sides are smoothed
    step = np.where(np.arange(40)[None, :] < 20, 0.2, 0.8) * np.ones((40, 1))
    q = guided_filter(step, step + 0.02 * rng.standard_normal(step.shape), 4, 1e-3)
    assert q[:, :18].mean() == pytest.approx(0.2, abs=0.02) and q[:, 22:].mean() == pytest.approx(0.8, abs=0.02)
    assert q[:, 20].mean() - q[:, 19].mean() > 0.5


def test_the_command_writes_the_dehazing(fresh_host, tmp_path):
    _, _, hazy = _hazy(32, sky=6)
    img = tmp_path / "hazy.png"
    iio.imwrite(img, np.round(np.moveaxis(hazy, 0, -1) * 255).astype(np.uint8))
    out = tmp_path / "dh"
    r = invoke(["decompose", img, "--task", "dehaze", "--method", "dark-channel", "--out", out, "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads((out / "run.json").read_text())
    assert rec == json.loads(r.stdout)
    assert {p.name for p in out.iterdir()} == {"mask.png", "layer-dehazed.png", "layer-transmission.png",
                                              "overlay.png", "run.json"}
    assert rec["task"] == "dehaze" and rec["method"].startswith("dark-channel") and rec["iterations"] == 0
    assert rec["layers"] == ["airlight", "dehazed", "transmission"]
    assert any(n.startswith("airlight: ") for n in rec["notes"])
    assert iio.imread(out / "layer-dehazed.png").shape == (32, 32, 3)
    r = invoke(["decompose", img, "--task", "watermark", "--method", "dark-channel", "--hint", "box:2,2,8,8"])
    assert r.exit_code == 2 and "error:" in r.stderr
