"""A blind noise model for real images, estimated from the image alone.

Camera and microscope noise is not white: its variance grows with the signal
(photon shot noise: Poisson-Gaussian), differs per channel, and demosaicking,
denoising in the camera and JPEG correlate it across neighbouring pixels and
across colours.  A white-noise estimator (wavelet MAD) sees only its finest
scale: on real photos it finds a fifth of the noise.

:func:`estimate` fits, from the flattest blocks of the image itself:

- a **noise-level function** per channel, ``var(x) = a x + b`` (image units,
  [0, 1]), from the lower quantile of plane-removed block variances in
  intensity bins (texture only adds variance), corrected for the quantile's
  bias under the noise's own correlation;
- the **spatio-chromatic autocorrelation** of the noise after variance
  stabilisation, for lags up to :data:`LAGS` pixels and every pair of
  channels.  From it follow the cross-channel correlation, the noise's power
  spectrum in any colour space (what BM3D's correlated-noise mode takes), and
  the white-noise level a white-noise denoiser needs.

Arrays are ``(C, H, W)`` float in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: side of the blocks the statistics are taken on
BLOCK = 16
#: the largest lag of the autocorrelation kept (pixels)
LAGS = 4
#: intensity bins of the noise-level function
BINS = 8
#: the lower quantile of block variances taken in each bin
QUANTILE = 0.2
#: intensities this close to 0 or 1 are left out (clipping hides the noise there)
CLIP_MARGIN = 0.02


@dataclass
class NoiseModel:
    """Estimated noise: ``var_c(x) = a[c] x + b[c]`` and the stabilised noise's autocorrelation."""

    a: np.ndarray  #: (C,) signal-dependent variance slope, image units
    b: np.ndarray  #: (C,) constant variance, image units
    acf: np.ndarray  #: (C, C, 2L+1, 2L+1) correlation of the stabilised noise; acf[c, c, L, L] == 1
    rms: np.ndarray  #: (C,) the noise's standard deviation over the image, image units
    blocks: int = 0  #: how many blocks the estimate rests on

    @property
    def channels(self) -> int:
        return len(self.a)

    def std(self, x: np.ndarray, c: int) -> np.ndarray:
        return np.sqrt(np.maximum(self.a[c] * x + self.b[c], 1e-12))

    @property
    def cross_channel(self) -> np.ndarray:
        L = self.acf.shape[-1] // 2
        return self.acf[:, :, L, L]

    @property
    def lag1(self) -> float:
        """Mean correlation of horizontally and vertically adjacent pixels."""
        L = self.acf.shape[-1] // 2
        d = np.arange(self.channels)
        return float(np.mean([self.acf[d, d, L, L + 1], self.acf[d, d, L + 1, L]]))

    def power(self, transform: np.ndarray | None = None) -> np.ndarray:
        """The stabilised noise's autocovariance per channel after the colour ``transform`` (K x C):
        (K, 2L+1, 2L+1)."""
        t = np.eye(self.channels) if transform is None else np.asarray(transform, float)
        return np.einsum("kc,kd,cdyx->kyx", t, t, self.acf)

    def white_sigma(self) -> float:
        """The level of white noise whose power matches this noise's where it is strongest: the
        stabilised spectrum's peak times the mean RMS (what a white-noise denoiser must be told to
        remove the noise's low-frequency part), image units."""
        spec = np.stack([_spectrum(k, 64) for k in self.power()])
        return float(np.sqrt(spec.mean(0).max()) * float(np.mean(self.rms)))

    def record(self) -> dict[str, Any]:
        """What run.json keeps (0-255 units for levels)."""
        return {
            "model": "poisson-gaussian, spatially and cross-channel correlated",
            "a_255": [round(float(v) * 255, 4) for v in self.a],
            "b_255": [round(float(v) * 255**2, 4) for v in self.b],
            "rms_255": [round(float(v) * 255, 3) for v in self.rms],
            "lag1_correlation": round(self.lag1, 3),
            "cross_channel_correlation": np.round(self.cross_channel, 3).tolist(),
            "white_sigma_255": round(self.white_sigma() * 255, 3),
            "blocks": int(self.blocks),
        }

    def summary(self) -> str:
        rms = "/".join(f"{v * 255:.2g}" for v in self.rms)
        return (f"noise estimated: RMS {rms} (0-255, per channel), variance {self.a.mean() * 255:.3g}*x + "
                f"{self.b.mean() * 255**2:.3g}, neighbour correlation {self.lag1:.2f}")


def _spectrum(acf: np.ndarray, n: int) -> np.ndarray:
    """The power spectrum on an n x n grid of a (2L+1) x (2L+1) autocovariance (mean = acf's centre),
    tapered so that it stays non-negative."""
    L = acf.shape[-1] // 2
    w = 1 - np.abs(np.arange(-L, L + 1)) / (L + 1)
    a = acf * np.outer(w, w)
    grid = np.zeros((n, n))
    for dy in range(-L, L + 1):
        for dx in range(-L, L + 1):
            grid[dy % n, dx % n] = a[dy + L, dx + L]
    return np.maximum(np.fft.fft2(grid).real, 0)


def spectrum(acf: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The power spectrum of an autocovariance on an ``shape`` grid (mean = the variance)."""
    L = acf.shape[-1] // 2
    w = 1 - np.abs(np.arange(-L, L + 1)) / (L + 1)
    a = acf * np.outer(w, w)
    grid = np.zeros(shape)
    for dy in range(-L, L + 1):
        for dx in range(-L, L + 1):
            grid[dy % shape[0], dx % shape[1]] = a[dy + L, dx + L]
    return np.maximum(np.fft.fft2(grid).real, 0)


def _blocks(image: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping b x b blocks with a plane removed per channel: residuals (N, C, b, b), means (N, C)."""
    c, h, w = image.shape
    ny, nx = h // b, w // b
    blk = image[:, : ny * b, : nx * b].reshape(c, ny, b, nx, b).transpose(1, 3, 0, 2, 4).reshape(-1, c, b, b)
    yy, xx = np.mgrid[0:b, 0:b] / (b - 1) - 0.5
    design = np.stack([np.ones(b * b), yy.ravel(), xx.ravel()], 1)
    pinv = np.linalg.pinv(design)
    flat = blk.reshape(len(blk), c, b * b)
    coef = flat @ pinv.T
    resid = flat - coef @ design.T
    return resid.reshape(blk.shape), blk.mean(axis=(2, 3))


def _correlation(res: np.ndarray, L: int) -> np.ndarray:
    """Mean spatio-chromatic correlation (C, C, 2L+1, 2L+1) of unit-variance residual blocks (N, C, b, b)."""
    n, c, b, _ = res.shape
    out = np.zeros((c, c, 2 * L + 1, 2 * L + 1))
    for dy in range(-L, L + 1):
        for dx in range(-L, L + 1):
            y0, y1 = max(0, -dy), b - max(0, dy)
            x0, x1 = max(0, -dx), b - max(0, dx)
            p = res[:, :, y0:y1, x0:x1]
            q = res[:, :, y0 + dy:y1 + dy, x0 + dx:x1 + dx]
            out[:, :, dy + L, dx + L] = np.einsum("ncyx,ndyx->cd", p, q) / (n * (y1 - y0) * (x1 - x0))
    d = np.sqrt(np.diag(out[:, :, L, L]))
    return out / np.maximum(np.outer(d, d), 1e-12)[:, :, None, None]


def _dof(acf: np.ndarray, b: int) -> float:
    """Effective degrees of freedom of a plane-removed b x b block variance under correlation ``acf``."""
    L = acf.shape[-1] // 2
    rho = np.mean([acf[k, k] for k in range(acf.shape[0])], axis=0)
    lag = np.arange(-L, L + 1)
    overlap = np.outer(1 - np.abs(lag) / b, 1 - np.abs(lag) / b)
    return max(3.0, b * b / float(np.sum(rho**2 * overlap)) - 3)


def estimate(image: np.ndarray) -> NoiseModel:
    """The noise model of ``image`` (C, H, W) in [0, 1] (see the module docstring)."""
    from scipy.stats import chi2

    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    c, h, w = x.shape
    b = BLOCK if min(h, w) >= 4 * BLOCK else max(6, min(h, w) // 4)
    L = min(LAGS, b // 3)
    res, mu = _blocks(x, b)
    var = res.var(axis=(2, 3))  # (N, C)
    keep = np.all((mu > CLIP_MARGIN) & (mu < 1 - CLIP_MARGIN), axis=1)
    if keep.sum() < 8:
        keep = np.ones(len(mu), bool)
    res, mu, var = res[keep], mu[keep], var[keep]
    # a first shape of the correlation from the flattest quarter, to size the quantile's bias
    flat = np.argsort(var.sum(1))[: max(4, len(var) // 4)]
    acf0 = _correlation(res[flat] / np.sqrt(np.maximum(var[flat], 1e-12))[:, :, None, None], L)
    dof = _dof(acf0, b)
    bias = chi2.ppf(QUANTILE, dof) / dof
    a = np.zeros(c)
    bb = np.zeros(c)
    for k in range(c):
        order = np.argsort(mu[:, k])
        groups = [g for g in np.array_split(order, min(BINS, max(1, len(order) // 8))) if len(g)]
        m = np.array([mu[g, k].mean() for g in groups])
        v = np.array([np.quantile(var[g, k], QUANTILE) / bias for g in groups])
        a[k], bb[k] = _fit_line(m, v, np.array([len(g) for g in groups], float))
    model = NoiseModel(a=a, b=bb, acf=acf0, rms=np.zeros(c), blocks=int(len(var)))
    # the correlation again, on the stabilised residuals of the flatter half of the blocks
    std = np.stack([model.std(mu[:, k], k) for k in range(c)], 1)  # (N, C)
    z = var / std**2
    flat = np.argsort(z.mean(1))[: max(4, len(z) // 2)]
    model.acf = _correlation(res[flat] / std[flat][:, :, None, None], L)
    model.rms = np.array([float(np.sqrt(np.mean(model.a[k] * np.clip(x[k], 0, 1) + model.b[k]))) for k in range(c)])
    return model


def _fit_line(m: np.ndarray, v: np.ndarray, wts: np.ndarray) -> tuple[float, float]:
    """var = a m + b with a, b >= 0, least squares weighted by the bins' sizes."""
    from scipy.optimize import nnls

    s = np.sqrt(wts)
    if len(m) < 2 or np.ptp(m) < 0.05:
        return 0.0, float(np.average(v, weights=wts))
    sol, _ = nnls(np.stack([m, np.ones_like(m)], 1) * s[:, None], v * s)
    return float(sol[0]), float(sol[1])
