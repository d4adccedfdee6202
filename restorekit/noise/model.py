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

#: side of the blocks the noise's level is taken on (small: they fit between textures)
SMALL_BLOCK = 8
#: side of the blocks its correlation is taken on
BLOCK = 16
#: the largest lag of the autocorrelation kept (pixels)
LAGS = 4
#: intensity bins of the noise-level function
BINS = 8
#: the lower quantile of block variances taken in each bin
QUANTILE = 0.1
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
    #: (C,) the noise-level network's reading of the image (:mod:`.level`), image units; None where not read
    learned: np.ndarray | None = None

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
        spec = np.stack([spectrum(k, (64, 64)) for k in self.power()])
        return float(np.sqrt(spec.mean(0).max()) * float(np.mean(self.rms)))

    def scaled(self, s: float) -> "NoiseModel":
        """The same noise with its variance multiplied by ``s``."""
        return NoiseModel(a=self.a * s, b=self.b * s, acf=self.acf, rms=self.rms * np.sqrt(s), blocks=self.blocks,
                          learned=self.learned)

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
            "learned_rms_255": None if self.learned is None else [
                None if not np.isfinite(v) else round(float(v) * 255, 3) for v in self.learned],
        }

    def summary_counts(self, full: int) -> str:
        """The levels in the image's own units (0-``full``: 65535 for 16-bit images)."""
        rms = "/".join(f"{v * full:.4g}" for v in self.rms)
        return (f"noise in the image's own units (0-{full}): RMS {rms}, variance {self.a.mean() * full:.3g}*X + "
                f"{self.b.mean() * full**2:.4g} (X in counts)")

    def summary(self) -> str:
        rms = "/".join(f"{v * 255:.2g}" for v in self.rms)
        return (f"noise estimated: RMS {rms} (0-255, per channel), variance {self.a.mean() * 255:.3g}*x + "
                f"{self.b.mean() * 255**2:.3g}, neighbour correlation {self.lag1:.2f}")


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


def _blocks(image: np.ndarray, b: int, step: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """b x b blocks every ``step`` pixels (default b: no overlap) with a plane removed per channel:
    residuals (N, C, b, b), means (N, C)."""
    from numpy.lib.stride_tricks import sliding_window_view

    step = step or b
    c = image.shape[0]
    win = sliding_window_view(image, (b, b), axis=(1, 2))[:, ::step, ::step]  # (C, ny, nx, b, b)
    blk = win.reshape(c, -1, b, b).transpose(1, 0, 2, 3)
    flat = blk.reshape(len(blk), c, b * b)
    design = _design(b)
    coef = flat @ np.linalg.pinv(design).T
    resid = flat - coef @ design.T
    return resid.reshape(blk.shape), blk.mean(axis=(2, 3))


def _design(b: int) -> np.ndarray:
    yy, xx = np.mgrid[0:b, 0:b] / (b - 1) - 0.5
    return np.stack([np.ones(b * b), yy.ravel(), xx.ravel()], 1)


def _correlation(res: np.ndarray, L: int) -> np.ndarray:
    """Mean spatio-chromatic correlation (C, C, 2L+1, 2L+1) of residual blocks (N, C, b, b)."""
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


def _variance_law(acf: np.ndarray, b: int) -> tuple[float, float]:
    """For noise of unit variance and correlation ``acf`` (averaged over channels), a plane-removed b x b
    block's variance: its mean and its degrees of freedom (Satterthwaite: v ~ mean * chi2(dof) / dof)."""
    L = acf.shape[-1] // 2
    rho = _spatial(acf)
    yy, xx = np.mgrid[0:b, 0:b]
    dy = yy.ravel()[:, None] - yy.ravel()[None, :]
    dx = xx.ravel()[:, None] - xx.ravel()[None, :]
    inside = (np.abs(dy) <= L) & (np.abs(dx) <= L)
    R = np.where(inside, rho[np.clip(dy + L, 0, 2 * L), np.clip(dx + L, 0, 2 * L)], 0.0)
    X = _design(b)
    A = np.eye(b * b) - X @ np.linalg.pinv(X)
    AR = A @ R
    n = b * b
    mean = np.trace(AR) / n
    var = 2 * np.trace(AR @ AR) / n**2
    return float(mean), float(max(2 * mean**2 / max(var, 1e-12), 1.0))


#: an image whose values span less than this part of [0, 1] (a dim micrograph in a 16-bit range) is
#: stretched to its own range for the estimate, and the model mapped back
DIM = 0.5


def estimate(image: np.ndarray) -> NoiseModel:
    """The noise model of ``image`` (C, H, W) in [0, 1] (see the module docstring)."""
    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    lo, hi = (float(v) for v in np.percentile(x, [0.1, 99.9]))
    span = hi - lo
    if 1e-6 < span < DIM:
        # the intensity bins, the line's extent and the clipping margin are fractions of the range: on a dim
        # image they would see one bin; estimate on the image stretched to its own range, then map back
        # (var_x = s^2 var_y, y = (x - lo) / s: a_x = a_y s, b_x = b_y s^2 - a_y s lo)
        m = _estimate((x - lo) / span)
        a, b = m.a * span, m.b * span**2 - m.a * span * lo
        for k in np.flatnonzero(b < 0):
            # the line's intercept does not reach black: no read noise, if that keeps the level at the median
            # intensity; else the slope was fitted to a narrow range (a flat image): that level, constant
            x_med = float(np.median(x[k]))
            level = span**2 * (m.a[k] * (x_med - lo) / span + m.b[k])
            if a[k] * x_med <= 1.5 * level:
                b[k] = 0.0
            else:
                a[k], b[k] = 0.0, level
        out = NoiseModel(a=a, b=b, acf=m.acf, rms=np.zeros_like(a), blocks=m.blocks)
        out.rms = _rms(x, a, b)
        return out
    return _estimate(x)


def _estimate(x: np.ndarray) -> NoiseModel:
    from scipy.stats import chi2

    c, h, w = x.shape
    side = min(h, w)
    b = SMALL_BLOCK if side >= 4 * SMALL_BLOCK else max(4, side // 4)
    B = BLOCK if side >= 4 * BLOCK else b
    L = min(LAGS, B // 3)
    res, mu = _blocks(x, b, max(1, b // 2))  # small overlapping blocks: the level
    var = res.var(axis=(2, 3))  # (N, C)
    big, bmu = _blocks(x, B, max(1, B // 2))  # larger blocks: the correlation
    bvar = big.var(axis=(2, 3))
    inside = np.all((mu > CLIP_MARGIN) & (mu < 1 - CLIP_MARGIN), axis=1)
    if inside.sum() >= 8:
        res, mu, var = res[inside], mu[inside], var[inside]
    inside = np.all((bmu > CLIP_MARGIN) & (bmu < 1 - CLIP_MARGIN), axis=1)
    if inside.sum() >= 4:
        big, bmu, bvar = big[inside], bmu[inside], bvar[inside]
    flat = np.argsort(bvar.sum(1))[: max(4, len(bvar) // 10)]
    acf = _correlation(big[flat], L)
    model = NoiseModel(a=np.zeros(c), b=np.zeros(c), acf=acf, rms=np.zeros(c), blocks=int(len(var)))
    for _ in range(2):
        mean, dof = _variance_law(model.acf, b)
        bias = mean * chi2.ppf(QUANTILE, dof) / dof
        for k in range(c):
            order = np.argsort(mu[:, k])
            groups = [g for g in np.array_split(order, min(BINS, max(1, len(order) // 16))) if len(g)]
            m = np.array([mu[g, k].mean() for g in groups])
            v = np.array([np.quantile(var[g, k], QUANTILE) / bias for g in groups])
            model.a[k], model.b[k] = _fit_line(m, v, np.array([len(g) for g in groups], float))
        # the correlation again, on the stabilised residuals of the flatter third of the larger blocks
        std = np.stack([model.std(bmu[:, k], k) for k in range(c)], 1)
        flat = np.argsort((bvar / std**2).mean(1))[: max(4, len(bvar) // 3)]
        model.acf = _correlation(big[flat], L)
    model.rms = _rms(x, model.a, model.b)
    # texture adds to both the block variances and the high-pass, but not alike: per channel, the lower
    # of the two levels (cc15, 60 crops: over-estimates by 1.5x or more in 9 % of channels, against 19 %
    # from the blocks alone and 11 % from the high-pass alone)
    hp_a, hp_b = _highpass_levels(x, model.acf)
    hp_rms = _rms(x, hp_a, hp_b)
    for k in range(c):
        if hp_rms[k] < model.rms[k]:
            model.a[k], model.b[k], model.rms[k] = hp_a[k], hp_b[k], hp_rms[k]
    for k in range(c):  # the noise cannot vary more than the image does (a line fitted to few blocks can)
        cap = float(x[k].std())
        if model.rms[k] > cap:
            f = (cap / model.rms[k]) ** 2
            model.a[k], model.b[k], model.rms[k] = model.a[k] * f, model.b[k] * f, cap
    return model


#: the high-pass the second level estimate is read through (Immerkaer's: it cancels planes and
#: quadratics; white noise of variance s^2 comes out with variance 36 s^2)
HIGHPASS = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])


def _highpass_levels(x: np.ndarray, acf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The noise-level line per channel from the median absolute high-pass in intensity bins (robust
    to edges), with the high-pass's gain for noise of correlation ``acf``."""
    from scipy.ndimage import convolve, uniform_filter

    L = acf.shape[-1] // 2
    rho = _spatial(acf)
    n = HIGHPASS.shape[0]
    gain = 0.0
    for i in range(n):
        for j in range(n):
            for p in range(n):
                for q in range(n):
                    dy, dx = i - p, j - q
                    if abs(dy) <= L and abs(dx) <= L:
                        gain += HIGHPASS[i, j] * HIGHPASS[p, q] * rho[dy + L, dx + L]
    gain = max(gain, 1e-3)
    c = x.shape[0]
    a, b = np.zeros(c), np.zeros(c)
    for k in range(c):
        hp = convolve(x[k], HIGHPASS, mode="reflect")[2:-2, 2:-2]
        mu = uniform_filter(x[k], 5)[2:-2, 2:-2]
        keep = (mu > CLIP_MARGIN) & (mu < 1 - CLIP_MARGIN)
        if keep.sum() < 64:
            keep = np.ones_like(mu, bool)
        hp, mu = hp[keep], mu[keep]
        groups = [g for g in np.array_split(np.argsort(mu), BINS) if len(g)]
        m = np.array([mu[g].mean() for g in groups])
        v = np.array([(np.median(np.abs(hp[g])) / 0.6745) ** 2 / gain for g in groups])
        a[k], b[k] = _fit_line(m, v, np.array([len(g) for g in groups], float))
    return a, b


def _rms(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per channel, the RMS over the image ``x`` (C, H, W) of noise with variance ``a x + b``."""
    return np.array([float(np.sqrt(np.mean(np.maximum(a[k] * np.clip(x[k], 0, 1) + b[k], 0))))
                     for k in range(len(a))])


def _spatial(acf: np.ndarray) -> np.ndarray:
    """The spatial correlation (2L+1, 2L+1), averaged over the channels."""
    return np.mean([acf[k, k] for k in range(acf.shape[0])], axis=0)


def _fit_line(m: np.ndarray, v: np.ndarray, wts: np.ndarray) -> tuple[float, float]:
    """var = a m + b with a, b >= 0, least squares weighted by the bins' sizes."""
    from scipy.optimize import nnls

    s = np.sqrt(wts)
    if len(m) < 2 or np.ptp(m) < 0.05:
        return 0.0, float(np.average(v, weights=wts))
    sol, _ = nnls(np.stack([m, np.ones_like(m)], 1) * s[:, None], v * s)
    return float(sol[0]), float(sol[1])
