"""Ground-truth-free checks of a denoised result against the estimated noise model."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, sobel

from .model import NoiseModel


def _normalised_removed(noisy: np.ndarray, out: np.ndarray, model: NoiseModel) -> np.ndarray:
    """The removed part ``noisy - out`` per channel over the model's noise level at ``out``; the level's floor
    is half the channel's RMS (a fitted read noise of 0 would blow up dark pixels)."""
    return np.stack([(noisy[k] - out[k]) / np.maximum(model.std(np.clip(out[k], 0, 1), k), 0.5 * model.rms[k] + 1e-6)
                     for k in range(out.shape[0])])


def structure_ratio(noisy: np.ndarray, out: np.ndarray, model: NoiseModel) -> float:
    """How much more of the removed part (``noisy - out``, normalised by the model's noise level at
    ``out``) lies on the result's edges and texture than on its flat parts.

    Noise is independent of the image: removing only noise leaves a residual whose normalised energy is
    the same on edges as on flat ground (a denoiser that spares edges leaves less there: the ratio is
    at most about 1).  A denoiser told too high a noise level also removes texture and edges, which
    raises the ratio.  The noise model's overall level cancels out, so a wrong level does not hide it.
    """
    r = _normalised_removed(noisy, out, model)
    energy = gaussian_filter((r**2).mean(0), 2.0)
    lum = out.mean(0)
    grad = gaussian_filter(np.hypot(sobel(lum, 0), sobel(lum, 1)), 1.0)
    lo, hi = np.quantile(grad, [0.5, 0.85])
    if hi < 0.5 * float(np.mean(model.rms)):
        # no structure to tell apart (a flat image: its result's strongest gradients are leftover noise, 0.2
        # noise levels for white noise on a flat 16-bit frame; photos' are 6-9, test scenes' 1.3)
        return 1.0
    flat, edges = energy[grad <= lo], energy[grad >= hi]
    if flat.size == 0 or edges.size == 0:
        return 1.0
    return float(edges.mean() / max(flat.mean(), 1e-12))


#: a denoised result passes when the removed part's normalised energy on edges is at most this many times
#: its energy on flat ground.  On 10 real-noise crops (cc15, 256 px) every result whose noise level was
#: over-estimated 1.5-2.8x scored 1.11-1.23 at the estimate, and those with the level within 1.3x scored
#: 0.70-1.04 (docs/real-noise.md)
STRUCTURE_LIMIT = 1.1


def correlation_ratio(noisy: np.ndarray, out: np.ndarray, model: NoiseModel) -> float | None:
    """The neighbour correlation of the removed part (``noisy - out``, normalised as in
    :func:`structure_ratio`) over the model's (:attr:`NoiseModel.lag1`); None where the model's is below
    :data:`CORRELATED` (white noise: a ratio of two small numbers says nothing).

    The model's correlation was measured on the image's flattest blocks.  Where those hold noise, a denoiser
    told the model removes noise of that correlation (the part it leaves is the noise's coarsest, most
    correlated part, so the ratio is somewhat below 1).  Where they hold the image's own fine texture (a
    clean photo), the denoiser removes the finest, least correlated part of the texture, and the ratio
    falls far below 1.
    """
    if model.lag1 < CORRELATED:
        return None
    r = _normalised_removed(noisy, out, model)
    lag = []
    for k in range(r.shape[0]):
        c = r[k] - r[k].mean()
        power = float(np.mean(c * c))
        if power <= 1e-12:
            continue
        lag.append((float(np.mean(c[:, :-1] * c[:, 1:])) + float(np.mean(c[:-1] * c[1:]))) / 2 / power)
    return None if not lag else float(np.mean(lag)) / model.lag1


#: :func:`correlation_ratio` is computed only where the model's neighbour correlation is at least this
CORRELATED = 0.2
#: a denoised result whose removed part has less than this fraction of the model's neighbour correlation
#: removed the image's texture, not noise: the input is returned.  On 15 real-noise crops (cc15, 256 px) the
#: ratio was 0.72-0.87; on clean photos read as noisy 0.18-0.80 (Set5 head 0.18, Set14 baboon 0.31, man
#: 0.58, lena 0.45: benchmarks/clean.py)
CORRELATION_LIMIT = 0.6
