"""Classical baselines from scikit-image, run on the same observation as DIP.

Every function takes the observation as ``(C, H, W)`` float32 in [0, 1] (and
what the method needs: the known sigma, the mask) and returns the estimate in
the same layout, clipped to [0, 1].  Where a method takes the noise level,
it is given the *known* sigma of the synthetic noise (an advantage DIP does
not get); ``nlm-est`` instead uses ``estimate_sigma``.

Settings (fixed, not tuned on the benchmark images):

* ``tv``: ``denoise_tv_chambolle`` with ``weight = TV_WEIGHT_PER_SIGMA * sigma``
  (sigma in [0, 1] units).  The factor was picked once on restorekit's
  embedded default image (not a benchmark image), see ``docs/benchmarks.md``.
* ``nlm``: ``denoise_nl_means`` fast mode, patch 5, distance 6,
  ``h = 0.8 * sigma``, ``sigma = sigma`` (scikit-image's documented recipe).
* ``nlm-est``: the same with sigma from ``estimate_sigma`` (averaged over channels).
* ``wavelet``: ``denoise_wavelet``, BayesShrink, soft thresholds, db2,
  in YCbCr for colour images, ``sigma = sigma``, ``rescale_sigma=True``;
  needs PyWavelets.  (db2 + YCbCr and the TV factor 0.75 were the best of a
  few settings tried on restorekit's embedded default image, not on a
  benchmark image.)
* ``biharmonic``: ``inpaint_biharmonic`` on the missing pixels.
"""

from __future__ import annotations

import numpy as np

TV_WEIGHT_PER_SIGMA = 0.75


def _hwc(x: np.ndarray) -> np.ndarray:
    return np.moveaxis(np.asarray(x, dtype=np.float64), 0, -1)


def _chw(x: np.ndarray, channels: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x[..., None]
    return np.clip(np.moveaxis(x, -1, 0), 0.0, 1.0).reshape(channels, *x.shape[:2])


def available(method: str) -> tuple[bool, str]:
    """Whether ``method`` can run here, and why not."""
    if method == "wavelet":
        try:
            import pywt  # noqa: F401
        except ImportError:
            return False, "PyWavelets is not installed (pip install PyWavelets)"
    return True, ""


def tv(y: np.ndarray, sigma: float) -> tuple[np.ndarray, dict]:
    from skimage.restoration import denoise_tv_chambolle

    w = TV_WEIGHT_PER_SIGMA * sigma
    out = denoise_tv_chambolle(_hwc(y), weight=w, channel_axis=-1)
    return _chw(out, y.shape[0]), {"weight": w, "sigma_given": sigma}


def _nlm(y: np.ndarray, sigma: float) -> np.ndarray:
    from skimage.restoration import denoise_nl_means

    return denoise_nl_means(
        _hwc(y), patch_size=5, patch_distance=6, h=0.8 * sigma, sigma=sigma, fast_mode=True, channel_axis=-1
    )


def nlm(y: np.ndarray, sigma: float) -> tuple[np.ndarray, dict]:
    return _chw(_nlm(y, sigma), y.shape[0]), {"sigma_given": sigma, "h": 0.8 * sigma}


def nlm_estimated(y: np.ndarray) -> tuple[np.ndarray, dict]:
    from skimage.restoration import estimate_sigma

    s = float(np.mean(estimate_sigma(_hwc(y), channel_axis=-1)))
    return _chw(_nlm(y, s), y.shape[0]), {"sigma_estimated": s, "h": 0.8 * s}


def wavelet(y: np.ndarray, sigma: float) -> tuple[np.ndarray, dict]:
    from skimage.restoration import denoise_wavelet

    colour = y.shape[0] == 3
    out = denoise_wavelet(
        _hwc(y), sigma=sigma, wavelet="db2", mode="soft", method="BayesShrink", rescale_sigma=True,
        convert2ycbcr=colour, channel_axis=-1,
    )
    return _chw(out, y.shape[0]), {"sigma_given": sigma, "wavelet": "db2", "ycbcr": colour}


def biharmonic(y: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, dict]:
    from skimage.restoration import inpaint_biharmonic

    out = inpaint_biharmonic(_hwc(y), ~np.asarray(mask, dtype=bool), channel_axis=-1)
    return _chw(out, y.shape[0]), {}
