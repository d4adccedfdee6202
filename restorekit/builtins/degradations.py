"""Built-in degradations: noise models, pixel-loss masks and downsampling.

Each separates its seeded random part (drawn in :meth:`prepare` or
:meth:`corrupt` from a NumPy generator, so every device sees the same draw)
from the deterministic forward operator :meth:`forward` that the loss
differentiates through.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field

from restorekit import Degradation, Params, hookimpl
from restorekit.errors import UsageError


def _clip(y: np.ndarray, clip: bool) -> np.ndarray:
    return np.clip(y, 0.0, 1.0) if clip else y


class NoDegradation(Degradation):
    name = "none"
    summary = "No degradation: the observation is the image itself (e.g. flash/no-flash, unknown noise)."


# ---------------------------------------------------------------------------
# noise: A is the identity, the randomness is all in corrupt()
# ---------------------------------------------------------------------------
class Gaussian(Degradation):
    name = "gaussian"
    summary = "Additive white Gaussian noise; sigma in 0-255 units (the paper uses 25 and 50)."
    task = "denoise"
    primary = "sigma"

    class Params(Params):
        sigma: float = Field(25.0, ge=0, le=255, description="noise standard deviation, 0-255 units")
        clip: bool = Field(True, description="clip the noisy image to [0, 1], as the DIP authors do")

    def corrupt(self, y, rng):
        s = self.params.sigma / 255.0
        return _clip(y + rng.normal(0.0, s, size=y.shape).astype(y.dtype), self.params.clip)

    def noise_sigma(self):
        return self.params.sigma / 255.0

    def adds_noise(self):
        return self.params.sigma > 0


class Poisson(Degradation):
    name = "poisson"
    summary = "Poisson (shot) noise: photon counts with the given peak for a white pixel."
    task = "denoise"
    primary = "peak"

    class Params(Params):
        peak: float = Field(30.0, gt=0, le=1e6, description="expected photon count of a pixel of value 1")
        clip: bool = Field(True, description="clip the noisy image to [0, 1]")

    def corrupt(self, y, rng):
        p = self.params.peak
        return _clip((rng.poisson(np.clip(y, 0, None) * p) / p).astype(y.dtype), self.params.clip)


class SaltPepper(Degradation):
    name = "salt-pepper"
    summary = "Impulse noise: a fraction of pixels set to black or white."
    task = "denoise"
    primary = "amount"

    class Params(Params):
        amount: float = Field(0.1, ge=0, le=1, description="fraction of pixels replaced")
        salt: float = Field(0.5, ge=0, le=1, description="fraction of replaced pixels set to white")
        per_channel: bool = Field(False, description="draw each channel independently")
        detect: bool = Field(
            True, description="treat the pixels that look like impulses (0 or 1, unlike their 3x3 median) as "
            "missing, so every prior fits only the pixels that carry the image",
        )

    def corrupt(self, y, rng):
        c, h, w = y.shape
        shape = (c, h, w) if self.params.per_channel else (1, h, w)
        hit = rng.random(shape) < self.params.amount
        white = rng.random(shape) < self.params.salt
        out = y.copy()
        hit = np.broadcast_to(hit, y.shape)
        white = np.broadcast_to(white, y.shape)
        out[hit & white] = 1.0
        out[hit & ~white] = 0.0
        return out

    def adds_noise(self):
        # with detection, the pixels kept are exactly the image's (an impulse that passes the test
        # is within 0.1 of its neighbourhood's median)
        return not self.params.detect

    def detect_lost(self, observation):
        if not self.params.detect:
            return None
        return impulse_pixels(observation)


def impulse_pixels(y: np.ndarray, contrast: float = 0.1) -> np.ndarray:
    """(H, W) bool: the pixels of a (C, H, W) image in [0, 1] that look like impulses.

    A pixel is an impulse when a channel sits at 0 or 1 (the values impulse
    noise writes) and differs from its 3x3 median by more than ``contrast``:
    the adaptive median filter's test.  Extreme values inside a flat region
    of the same value (a black sky, a blown-out highlight) are not impulses.
    """
    from scipy.ndimage import median_filter

    extreme = (y <= 0.0) | (y >= 1.0)
    med = median_filter(y, size=(1, 3, 3), mode="reflect")
    return np.any(extreme & (np.abs(y - med) > contrast), axis=0)


class Periodic(Degradation):
    name = "periodic"
    summary = "Periodic (sinusoidal stripe) noise, e.g. from electrical interference."
    task = "denoise"
    primary = "amplitude"

    class Params(Params):
        amplitude: float = Field(30.0, ge=0, le=255, description="peak amplitude, 0-255 units")
        frequency: float = Field(0.125, gt=0, le=0.5, description="cycles per pixel")
        orientation: Literal["horizontal", "vertical"] = Field(
            "horizontal", description="stripe direction (horizontal stripes vary down the rows)"
        )
        phase: float | None = Field(None, description="phase in radians; none draws one from the seed")
        clip: bool = Field(True, description="clip the noisy image to [0, 1]")

    def corrupt(self, y, rng):
        p = self.params
        phase = rng.uniform(0, 2 * math.pi) if p.phase is None else p.phase
        _, h, w = y.shape
        n = h if p.orientation == "horizontal" else w
        wave = (p.amplitude / 255.0) * np.sin(2 * math.pi * p.frequency * np.arange(n) + phase)
        wave = wave[:, None] if p.orientation == "horizontal" else wave[None, :]
        return _clip(y + wave[None].astype(y.dtype), p.clip)


# ---------------------------------------------------------------------------
# pixel loss: A(x) = x * mask; the mask is the random (or given) part
# ---------------------------------------------------------------------------
class _Masked(Degradation):
    """Shared forward operator of the masking degradations."""

    noise_free = True
    task = "inpaint"
    _mask_t = None

    def make_mask(self, shape, rng, mode) -> np.ndarray:  # (H, W) bool, True = known
        raise NotImplementedError

    def prepare(self, shape, rng, mode):
        out = super().prepare(shape, rng, mode)
        mask = np.asarray(self.make_mask(shape, rng, mode), dtype=bool)
        if mask.shape != tuple(shape[1:]):
            raise UsageError(f"{self.name}: mask shape {mask.shape} does not match image {shape[1:]}")
        if not mask.any():
            raise UsageError(f"{self.name}: every pixel is masked out; nothing is left to fit")
        self.mask = mask
        self._mask_t = None
        return out

    def forward(self, x):
        if self.mask is None:
            raise RuntimeError(f"{self.name}: prepare() was not called")
        if self._mask_t is None or self._mask_t.device != x.device:
            self._mask_t = self.mask_tensor(x.device).to(x.dtype)
        return x * self._mask_t


class Bernoulli(_Masked):
    name = "bernoulli"
    summary = "Random pixel loss: each pixel is lost with the given probability (same in all channels)."
    primary = "fraction"

    class Params(Params):
        fraction: float = Field(0.5, ge=0, lt=1, description="probability that a pixel is lost")

    def make_mask(self, shape, rng, mode):
        if mode == "restore":
            raise UsageError(
                "bernoulli draws a random mask, which a degraded photo does not reveal: an image given is "
                "restored as observed (--mode restore), so describe its lost pixels with mask:FILE, or add "
                "--mode benchmark to simulate the loss on a clean image"
            )
        return rng.random(shape[1:]) >= self.params.fraction


class Mask(_Masked):
    name = "mask"
    summary = "Pixel loss given by a mask image (white = known, black = missing): text, scratches, holes."
    primary = "path"

    class Params(Params):
        path: str = Field(..., description="mask image file, same width and height as the image")
        invert: bool = Field(False, description="treat white as missing instead")

    def make_mask(self, shape, rng, mode):
        from restorekit.io import read_mask

        self.notes = []  # the run shows these (a thresholded grey mask, a multi-page file)
        m = read_mask(self.params.path, tuple(shape[1:]), notes=self.notes)
        return ~m if self.params.invert else m


class Box(_Masked):
    name = "box"
    summary = "A rectangular hole; centred and a quarter of each side unless placed."
    primary = "size"

    class Params(Params):
        size: float = Field(0.25, gt=0, lt=1, description="hole side as a fraction of the image side")
        width: int | None = Field(None, ge=1, description="hole width in pixels (overrides size)")
        height: int | None = Field(None, ge=1, description="hole height in pixels (overrides size)")
        x: int | None = Field(None, ge=0, description="left column of the hole (default: centred)")
        y: int | None = Field(None, ge=0, description="top row of the hole (default: centred)")

    def make_mask(self, shape, rng, mode):
        p = self.params
        _, h, w = shape
        bw = p.width if p.width is not None else max(1, round(w * p.size))
        bh = p.height if p.height is not None else max(1, round(h * p.size))
        x0 = p.x if p.x is not None else (w - bw) // 2
        y0 = p.y if p.y is not None else (h - bh) // 2
        if x0 + bw > w or y0 + bh > h:
            raise UsageError(
                f"box: a {bw}x{bh} hole at ({x0}, {y0}) does not fit in the {w}x{h} image"
            )
        mask = np.ones((h, w), dtype=bool)
        mask[y0 : y0 + bh, x0 : x0 + bw] = False
        return mask


class Text(_Masked):
    name = "text"
    summary = "Text written over the image (the pixels under the letters are lost)."
    primary = "text"

    class Params(Params):
        text: str = Field("restorekit", min_length=1, description="the text, repeated over the image")
        font_size: int = Field(0, ge=0, le=1000, description="letter height in pixels (0: a tenth of the height)")
        stroke: int = Field(0, ge=0, le=20, description="extra stroke width in pixels")

    def make_mask(self, shape, rng, mode):
        from PIL import Image, ImageDraw, ImageFont

        _, h, w = shape
        size = self.params.font_size or max(6, h // 10)
        font = ImageFont.load_default(size=size)
        canvas = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(canvas)
        step = int(size * 1.6)
        line = (self.params.text + "  ") * (w // max(1, size // 2) + 1)
        for i, top in enumerate(range(step // 3, h, step)):
            draw.text((-(i * size) % (2 * size) - size, top), line, fill=255, font=font,
                      stroke_width=self.params.stroke, stroke_fill=255)
        return np.asarray(canvas) < 128


# ---------------------------------------------------------------------------
# resolution loss
# ---------------------------------------------------------------------------
def resample_kernel(factor: int, kind: str) -> np.ndarray:
    """A 1-D anti-aliasing kernel for downsampling by ``factor`` (half-pixel phase)."""
    if kind == "box":
        return np.full(factor, 1.0 / factor)
    support = {"lanczos2": 2, "lanczos3": 3, "bicubic": 2}[kind]
    n = 2 * support * factor
    t = (np.arange(n) - (n - 1) / 2) / factor
    if kind == "bicubic":
        a, at = -0.5, np.abs(t)
        k = np.where(
            at <= 1,
            (a + 2) * at**3 - (a + 3) * at**2 + 1,
            np.where(at < 2, a * at**3 - 5 * a * at**2 + 8 * a * at - 4 * a, 0.0),
        )
    else:
        k = np.sinc(t) * np.sinc(t / support) * (np.abs(t) < support)
    return k / k.sum()


class Downsample(Degradation):
    name = "downsample"
    summary = "Downsampling by an integer factor with an anti-aliasing kernel (super-resolution)."
    primary = "factor"
    noise_free = True
    task = "sr"

    class Params(Params):
        factor: int = Field(4, ge=2, le=16, description="downsampling factor per axis")
        kernel: Literal["lanczos2", "lanczos3", "bicubic", "box"] = Field(
            "lanczos2", description="anti-aliasing kernel (the DIP authors use lanczos2)"
        )

    _weight = None

    def scale_factor(self):
        return self.params.factor

    def forward(self, x):
        import torch
        import torch.nn.functional as F

        f = self.params.factor
        if self._weight is None or self._weight.device != x.device or self._weight.dtype != x.dtype:
            k = resample_kernel(f, self.params.kernel)
            k2 = torch.as_tensor(np.outer(k, k), dtype=x.dtype, device=x.device)
            self._weight = k2[None, None]
        c = x.shape[1]
        n = self._weight.shape[-1]
        total = n - f
        lo, hi = total // 2, total - total // 2
        if total > 0:
            x = F.pad(x, (lo, hi, lo, hi), mode="replicate")
        weight = self._weight.expand(c, 1, n, n)
        return F.conv2d(x, weight, stride=f, groups=c)


class RealNoise(Degradation):
    name = "noise"
    summary = ("Real noise of unknown level (camera, microscope): a Poisson-Gaussian, spatially and "
               "cross-channel correlated model estimated from the image itself; the default in --mode restore.")
    task = "denoise"
    simulated = False

    def prepare(self, shape, rng, mode):
        if mode == "benchmark":
            raise UsageError("degradation 'noise' is estimated from a real noisy image (--mode restore); to "
                             "simulate noise on a clean image use gaussian:SIGMA or poisson:PEAK")
        return super().prepare(shape, rng, mode)

    class Params(Params):
        cap: bool = Field(
            True, description="lower the estimate to at most 2.5x the noise-level network's reading (the flattest "
            "parts of a clean textured photo hold texture, not noise); false: keep the statistical estimate")

    def estimate_noise(self, observation):
        """The noise model of the (C, H, W) observation (:func:`restorekit.noise.estimate`), its level capped by
        the noise-level network's reading (:func:`restorekit.noise.level.cap`) unless ``cap=false``.  The notes
        give the statistical estimate first, then the level used where the cap lowered it."""
        from restorekit.noise import estimate
        from restorekit.noise.level import cap

        model = estimate(observation)
        self.notes = [model.summary()]
        if not self.params.cap:
            return model
        used, capped = cap(model, observation)
        if capped:
            self.notes.append(capped + " (keep the estimate: --degrade noise:cap=false)")
        return used


BUILTIN_DEGRADATIONS = [NoDegradation, Gaussian, Poisson, SaltPepper, Periodic, RealNoise, Bernoulli, Mask, Box, Text, Downsample]


@hookimpl
def restorekit_register_degradations(registry):
    for cls in BUILTIN_DEGRADATIONS:
        registry.add(cls)
