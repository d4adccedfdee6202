"""Classical single-image restoration methods as restorekit solver priors.

The baselines the deep image prior is compared against, each a
``role = "solver"`` prior that restores the image directly (no generator,
no optimisation loop):

============== ===================================================== =================
prior          method                                                from
============== ===================================================== =================
nlm            non-local means                                       scikit-image
tv-chambolle   total-variation denoising (Chambolle's projection)    scikit-image
wavelet        wavelet shrinkage (BayesShrink or VisuShrink)         scikit-image
biharmonic     biharmonic inpainting of the missing pixels           scikit-image
bm3d           block-matching and 3-D filtering                      bm3d
median         median filter (impulse noise)                         scipy
notch          Fourier notch filter (periodic stripes)               numpy
bicubic        bicubic upsampling (super-resolution baseline)        restorekit
============== ===================================================== =================

How the denoisers (nlm, tv-chambolle, wavelet, bm3d, median, notch) treat each task:

* **denoising**: the observation is denoised.  The noise level is the
  ``sigma`` parameter if given, else the one the degradation knows
  (``gaussian:25``), else estimated from the image
  (``skimage.restoration.estimate_sigma``).
* **missing pixels** (a mask: bernoulli, mask, box, text): the missing
  pixels are first filled by biharmonic inpainting, then the result is
  denoised — "biharmonic + <denoiser>".
* **super-resolution** (the observation is smaller than the image): the
  bicubic upsample ``problem.init`` is denoised, with the noise level
  estimated on it (interpolation changes the noise, so a known ``sigma``
  of the observation no longer applies) — "bicubic + <denoiser>".
  Super-resolution combined with missing pixels is refused (UsageError).

``biharmonic`` only inpaints: without a mask, or with super-resolution, it
refuses with a UsageError.  scikit-image, PyWavelets and bm3d are imported
inside ``solve()``, so ``restorekit list`` does not pay for them.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from restorekit import Params, Prior, UsageError, hookimpl

__version__ = "0.1.0"

_SIGMA_HELP = "noise standard deviation in 0-255 units (none: the degradation's, else estimated)"


# ---------------------------------------------------------------------------
# shared plumbing: Problem -> (H, W, C) float64 image -> (1, C, H, W) tensor
# ---------------------------------------------------------------------------
def _to_hwc(t: Any) -> np.ndarray:
    return np.moveaxis(t[0].detach().cpu().double().numpy(), 0, -1)


def _biharmonic(image: np.ndarray, missing: np.ndarray, split: bool = False) -> np.ndarray:
    """Fill the ``missing`` (H, W) pixels of an (H, W, C) image."""
    from skimage.restoration import inpaint_biharmonic

    if not missing.any():
        return image
    return inpaint_biharmonic(image, missing, split_into_regions=split, channel_axis=-1)


def _observed(problem: Any, name: str) -> tuple[np.ndarray, bool]:
    """The image a denoiser works on, and whether the problem's sigma still applies.

    See the module docstring: the observation; the observation with its
    missing pixels inpainted; or the bicubic upsample for super-resolution.
    """
    c, h, w = problem.image_shape
    obs = problem.observation
    sr = tuple(obs.shape[-2:]) != (h, w)
    if sr:
        if problem.mask is not None:
            raise UsageError(
                f"prior '{name}' does not handle super-resolution combined with missing pixels; "
                "use --prior dip for that"
            )
        return _to_hwc(problem.init), False
    image = _to_hwc(obs)
    if problem.mask is not None:
        missing = problem.mask[0, 0].detach().cpu().numpy() < 0.5
        image = _biharmonic(image, missing)
    return image, True


def _sigma(params_sigma: float | None, problem: Any, image: np.ndarray, known_applies: bool) -> float:
    """Noise sigma in [0, 1] units: given, known from the degradation, or estimated."""
    if params_sigma is not None:
        return params_sigma / 255.0
    if known_applies and problem.sigma:
        return float(problem.sigma)
    from skimage.restoration import estimate_sigma

    est = estimate_sigma(image, channel_axis=-1, average_sigmas=True)
    return float(max(est, 1e-3))


def _gray_or_color(image: np.ndarray) -> tuple[np.ndarray, int | None]:
    """scikit-image wants 2-D gray images with channel_axis=None."""
    if image.shape[-1] == 1:
        return image[..., 0], None
    return image, -1


def _result(out: np.ndarray, problem: Any) -> Any:
    import torch

    out = np.asarray(out, dtype=np.float64)
    if out.ndim == 2:
        out = out[..., None]
    out = np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)
    t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(out, -1, 0), dtype=np.float32))[None]
    return t.to(problem.device)


class _Denoiser(Prior):
    """A solver prior that denoises the observation (see the module docstring)."""

    role = "solver"

    def solve(self, problem):
        image, known = _observed(problem, self.name)
        sigma = _sigma(self.params.sigma, problem, image, known)
        return _result(self.denoise(image, sigma), problem)

    def denoise(self, image: np.ndarray, sigma: float) -> np.ndarray:  # (H, W, C) -> (H, W, C)
        raise NotImplementedError


# ---------------------------------------------------------------------------
# the priors
# ---------------------------------------------------------------------------
class NLMeans(_Denoiser):
    name = "nlm"
    summary = "Non-local means denoising (scikit-image); biharmonic fill first if pixels are missing."
    primary = "h"

    class Params(Params):
        h: float | None = Field(
            None, gt=0, le=255,
            description="filter strength in 0-255 units (none: 0.6 x sigma, sigma being subtracted)",
        )
        sigma: float | None = Field(None, ge=0, le=255, description=_SIGMA_HELP)
        patch_size: int = Field(5, ge=1, le=15, description="side of the compared patches")
        patch_distance: int = Field(6, ge=1, le=32, description="search radius in pixels")
        fast_mode: bool = Field(True, description="the fast, uniformly weighted patch distance")

    def denoise(self, image, sigma):
        from skimage.restoration import denoise_nl_means

        p = self.params
        h = p.h / 255.0 if p.h is not None else 0.6 * sigma
        img, axis = _gray_or_color(image)
        return denoise_nl_means(
            img, patch_size=p.patch_size, patch_distance=p.patch_distance, h=h,
            fast_mode=p.fast_mode, sigma=sigma, channel_axis=axis,
        )


class TVChambolle(_Denoiser):
    name = "tv-chambolle"
    summary = "Total-variation denoising by Chambolle's projection (scikit-image); solves directly."
    primary = "weight"

    class Params(Params):
        weight: float | None = Field(
            None, gt=0, description="TV weight in [0, 1] image units (none: 0.8 x sigma)"
        )
        sigma: float | None = Field(None, ge=0, le=255, description=_SIGMA_HELP)
        eps: float = Field(2e-4, gt=0, description="stop when the relative change of the cost is below this")
        max_iter: int = Field(200, ge=1, le=10000, description="most iterations")

    def denoise(self, image, sigma):
        from skimage.restoration import denoise_tv_chambolle

        p = self.params
        weight = p.weight if p.weight is not None else 0.8 * sigma
        img, axis = _gray_or_color(image)
        return denoise_tv_chambolle(img, weight=weight, eps=p.eps, max_num_iter=p.max_iter, channel_axis=axis)


class Wavelet(_Denoiser):
    name = "wavelet"
    summary = "Wavelet shrinkage denoising, BayesShrink or VisuShrink (scikit-image + PyWavelets)."
    primary = "method"

    class Params(Params):
        method: Literal["bayes", "visu"] = Field("bayes", description="BayesShrink (per sub-band) or VisuShrink (universal)")
        wavelet: str = Field("db1", description="a discrete PyWavelets wavelet: db1 (Haar), db2, sym4, coif1, ...")
        mode: Literal["soft", "hard"] = Field("soft", description="soft or hard thresholding")
        levels: int | None = Field(None, ge=1, le=10, description="decomposition levels (none: 3 fewer than the maximum)")
        ycbcr: bool = Field(True, description="denoise colour images in YCbCr (ignored for gray)")
        sigma: float | None = Field(None, ge=0, le=255, description=_SIGMA_HELP)

    def denoise(self, image, sigma):
        import pywt
        from skimage.restoration import denoise_wavelet

        p = self.params
        if p.wavelet not in pywt.wavelist(kind="discrete"):
            import difflib

            close = difflib.get_close_matches(p.wavelet, pywt.wavelist(kind="discrete"), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError(f"prior 'wavelet': unknown wavelet '{p.wavelet}'{hint} (see pywt.wavelist(kind='discrete'))")
        img, axis = _gray_or_color(image)
        return denoise_wavelet(
            img, sigma=sigma, wavelet=p.wavelet, mode=p.mode, wavelet_levels=p.levels,
            convert2ycbcr=p.ycbcr and axis is not None and img.shape[-1] == 3,
            method="BayesShrink" if p.method == "bayes" else "VisuShrink",
            rescale_sigma=True, channel_axis=axis,
        )


def _bm3d() -> Any:
    """The bm3d package, or a one-line UsageError saying how to install it."""
    try:
        import bm3d
    except ImportError:
        raise UsageError(
            "prior 'bm3d' needs the bm3d package: pip install bm3d (in the environment of restorekit)"
        ) from None
    return bm3d


class BM3D(_Denoiser):
    name = "bm3d"
    summary = "BM3D denoising (the bm3d package; colour images in the opponent colour space)."
    primary = "sigma"

    class Params(Params):
        sigma: float | None = Field(None, ge=0, le=255, description=_SIGMA_HELP)
        profile: Literal["np", "refilter", "vn", "vn_old", "high", "deb"] = Field(
            "np", description="bm3d parameter profile ('np': normal; 'vn': very noisy; 'high': best quality)"
        )
        colorspace: Literal["opp", "YCbCr"] = Field("opp", description="colour transform of RGB images")
        white_mean: bool = Field(
            True, description="with an estimated real-noise model (--degrade noise): average the result with BM3D "
            "told the model's white-noise equivalent (on cc15: +0.23 dB and a better worst crop; twice the time)")

    def real_noise_partner(self, image, noise):
        """The second estimate the real-noise safeguard averages with this prior's accepted result (None:
        none): BM3D of ``image`` (C, H, W) told ``noise``'s white-noise equivalent
        (restorekit.noise.denoise.bm3d_white)."""
        if not self.params.white_mean or self.params.sigma is not None:
            return None
        _bm3d()
        from restorekit.noise.denoise import bm3d_white

        return bm3d_white(image, noise, profile=self.params.profile, colorspace=self.params.colorspace)

    def solve(self, problem):
        noise = getattr(problem, "noise", None)
        if noise is None or self.params.sigma is not None:
            return super().solve(problem)
        # an estimated real-noise model (degradation 'noise'): BM3D told the noise's level per intensity
        # and its spatial and cross-channel correlation (restorekit.noise.denoise.bm3d_colored)
        image, known = _observed(problem, self.name)
        if not known:
            return super().solve(problem)
        _bm3d()
        from restorekit.noise.denoise import bm3d_colored

        out = bm3d_colored(np.moveaxis(image, -1, 0), noise, profile=self.params.profile)
        return _result(np.moveaxis(out, 0, -1), problem)

    def denoise(self, image, sigma):
        _bm3d()
        from restorekit.noise.denoise import bm3d_gaussian

        # in tiles for a large image, channel by channel for a grey image stored as RGB
        p = self.params
        return np.moveaxis(bm3d_gaussian(np.moveaxis(image, -1, 0), sigma, p.profile, p.colorspace), 0, -1)


class Biharmonic(Prior):
    name = "biharmonic"
    summary = "Biharmonic inpainting of the missing pixels (scikit-image); needs a mask, does not denoise."
    role = "solver"

    class Params(Params):
        split_regions: bool = Field(False, description="inpaint each connected hole separately (faster on large images)")

    def solve(self, problem):
        c, h, w = problem.image_shape
        if tuple(problem.observation.shape[-2:]) != (h, w):
            raise UsageError("prior 'biharmonic' inpaints at the observed size and does not super-resolve")
        if problem.mask is None:
            raise UsageError(
                "prior 'biharmonic' fills missing pixels, but no degradation masks any; "
                "add --degrade bernoulli:0.5 (or mask:FILE, box, text)"
            )
        missing = problem.mask[0, 0].detach().cpu().numpy() < 0.5
        return _result(_biharmonic(_to_hwc(problem.observation), missing, self.params.split_regions), problem)


class Median(_Denoiser):
    name = "median"
    summary = "Median filter (scipy): the classical answer to impulse (salt-and-pepper) noise."
    primary = "size"

    class Params(Params):
        size: int = Field(3, ge=1, le=31, description="side of the square window, in pixels (odd)")
        sigma: float | None = Field(None, ge=0, le=255, description="unused; accepted like the other denoisers'")

    def denoise(self, image, sigma):  # noqa: ARG002 - the median needs no noise level
        from scipy.ndimage import median_filter

        if self.params.size % 2 == 0:
            raise UsageError(f"prior 'median': size must be odd (got {self.params.size})")
        return median_filter(image, size=(self.params.size, self.params.size, 1), mode="reflect")


def notch_filter(image: np.ndarray, threshold: float = 8.0, keep_radius: float = 0.08, width: float = 1.5) -> np.ndarray:
    """Remove periodic patterns from an (H, W, C) image by notching peaks of its spectrum.

    The peaks are the frequencies, away from the lowest ones (``keep_radius``,
    in cycles per pixel), whose magnitude in the channel-mean spectrum is more
    than ``threshold`` times the median magnitude at the same radius; each is
    removed with a Gaussian notch of ``width`` frequency bins, in every channel.
    """
    h, w, _ = image.shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    radius = np.sqrt(fy**2 + fx**2)
    spectra = np.fft.fft2(image - image.mean(axis=(0, 1)), axes=(0, 1))
    mag = np.abs(spectra).mean(axis=-1)
    rings = np.minimum((radius * min(h, w)).astype(int), min(h, w))
    ring_median = np.zeros(rings.max() + 1)
    for r in np.unique(rings):
        ring_median[r] = np.median(mag[rings == r])
    peaks = (mag > threshold * np.maximum(ring_median[rings], 1e-12)) & (radius > keep_radius)
    gain = np.ones((h, w))
    iy, ix = np.nonzero(peaks)
    # bin distances on the periodic frequency grid
    dy = np.minimum(np.abs(np.arange(h)[:, None, None] - iy), h - np.abs(np.arange(h)[:, None, None] - iy))
    dx = np.minimum(np.abs(np.arange(w)[None, :, None] - ix), w - np.abs(np.arange(w)[None, :, None] - ix))
    for k in range(len(iy)):
        gain *= 1 - np.exp(-(dy[:, :, k] ** 2 + dx[:, :, k] ** 2) / (2 * width**2))
    out = np.fft.ifft2(spectra * gain[..., None], axes=(0, 1)).real
    return out + image.mean(axis=(0, 1))


class Notch(_Denoiser):
    name = "notch"
    summary = "Fourier notch filter: removes periodic stripes by notching the peaks of the spectrum."
    primary = "threshold"

    class Params(Params):
        threshold: float = Field(8.0, gt=1, description="a peak is this many times the median magnitude at its radius")
        keep_radius: float = Field(0.08, ge=0, le=0.5, description="frequencies below this (cycles/pixel) are kept")
        width: float = Field(1.5, gt=0, le=20, description="notch width in frequency bins (Gaussian sigma)")
        sigma: float | None = Field(None, ge=0, le=255, description="unused; accepted like the other denoisers'")

    def denoise(self, image, sigma):  # noqa: ARG002 - the notch needs no noise level
        p = self.params
        return notch_filter(image, p.threshold, p.keep_radius, p.width)


class Bicubic(Prior):
    name = "bicubic"
    summary = "Bicubic upsampling of the observation: the super-resolution baseline (no prior at all)."
    role = "solver"

    class Params(Params):
        pass

    def solve(self, problem):
        c, h, w = problem.image_shape
        if tuple(problem.observation.shape[-2:]) == (h, w):
            raise UsageError("prior 'bicubic' upsamples, but the observation already has the image's size; "
                             "add --degrade downsample:4")
        if problem.mask is not None:
            raise UsageError("prior 'bicubic' does not fill missing pixels; use --prior dip for that")
        # problem.init of a super-resolution problem is the bicubic upsample of the observation
        return _result(_to_hwc(problem.init), problem)


PRIORS = [NLMeans, TVChambolle, Wavelet, Biharmonic, BM3D, Median, Notch, Bicubic]


@hookimpl
def restorekit_register_priors(registry):
    for cls in PRIORS:
        registry.add(cls)
