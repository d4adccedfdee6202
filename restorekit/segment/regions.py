"""Two-region models of one image: texture features, per-region mixtures, a smoothed assignment (torch-free).

The refinement of double-dip's starting split (:func:`restorekit.segment.doubledip.initial_split`): a
GrabCut-like alternation (Rother, Kolmogorov, Blake 2004) on texture features
instead of colours, with a mean-field Potts smoothing (Krähenbühl and Koltun 2011, on a 3x3 neighbourhood)
in place of the graph cut:

1. per-pixel features (:func:`texture_features`): the colour, and at several scales the local mean and
   standard deviation of the luminance, the structure tensor (local energy of the horizontal, vertical and
   diagonal gradients) and the energy of the Laplacian;
2. a start: given (double-dip's k-means split), or the hint's unknown pixels as the object;
3. a few rounds of: a diagonal Gaussian mixture per region fitted to its pixels; each pixel's log-likelihood
   ratio of the two; a smoothed assignment (:func:`smooth_assign`); the hint's pixels set to what it says.
"""

from __future__ import annotations

import numpy as np

__all__ = ["texture_features", "RegionModel", "smooth_assign", "grabcut", "snap_boundary"]


def texture_features(image: np.ndarray, scales: tuple[float, ...] = (1.5, 3.0, 6.0)) -> np.ndarray:
    """Per-pixel features ``(H*W, D)``, each standardised (zero mean, unit variance): colour (CIELAB, or the
    values), and at each scale (a Gaussian sigma in pixels) the local mean and standard deviation of the
    luminance, the log local energies of its gradient along x, y and the two diagonals, and of its
    Laplacian."""
    from scipy import ndimage

    from .baselines import features, gray

    h, w = image.shape[1:]
    g = gray(image)
    gx, gy = ndimage.sobel(g, 1) / 8, ndimage.sobel(g, 0) / 8
    d1, d2 = (gx + gy) / np.sqrt(2), (gx - gy) / np.sqrt(2)
    lap = ndimage.laplace(ndimage.gaussian_filter(g, 0.7))
    cols = [features(image)]
    for sigma in scales:
        mu = ndimage.gaussian_filter(g, sigma)
        var = ndimage.gaussian_filter(g * g, sigma) - mu * mu
        stats = [mu, np.sqrt(np.maximum(var, 0))]
        for e in (gx * gx, gy * gy, d1 * d1, d2 * d2, lap * lap):
            stats.append(np.log(ndimage.gaussian_filter(e, sigma) + 1e-5))
        cols.append(np.stack(stats, -1).reshape(h * w, -1))
    f = np.concatenate(cols, 1)
    return (f - f.mean(0)) / (f.std(0) + 1e-8)


class RegionModel:
    """A diagonal Gaussian mixture of ``components`` (k-means seeded) fitted to the rows of ``x`` (``(N, D)``)."""

    def __init__(self, x: np.ndarray, components: int = 4, *, seed: int = 0, floor: float = 0.05) -> None:
        from .baselines import kmeans

        x = np.asarray(x, np.float64)
        k = max(1, min(components, len(x) // 8 or 1))
        lab = kmeans(x, k, seed=seed, iters=20) if k > 1 else np.zeros(len(x), np.int64)
        mus, vars_, ws = [], [], []
        for j in range(k):
            sel = x[lab == j]
            if len(sel) < 2:
                continue
            mus.append(sel.mean(0))
            vars_.append(sel.var(0) + floor)
            ws.append(len(sel))
        if not mus:
            mus, vars_, ws = [x.mean(0)], [x.var(0) + floor], [1]
        self.mu, self.var = np.array(mus), np.array(vars_)
        self.logw = np.log(np.array(ws, float) / sum(ws))

    def loglik(self, x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """``(N,)`` log-density of each row of ``x`` (each dimension's term times ``weights``, if given)."""
        x = np.asarray(x, np.float64)
        per_dim = (((x[:, None, :] - self.mu[None]) ** 2) / self.var[None]) + np.log(2 * np.pi * self.var)[None]
        if weights is not None:
            per_dim = per_dim * np.asarray(weights, np.float64)[None, None]
        ll = -0.5 * per_dim.sum(-1)
        ll = ll + self.logw[None]
        top = ll.max(1, keepdims=True)
        return (top + np.log(np.exp(ll - top).sum(1, keepdims=True)))[:, 0]


def smooth_assign(unary: np.ndarray, *, beta: float = 2.0, rounds: int = 10, q0: np.ndarray | None = None) -> np.ndarray:
    """The object's share ``(H, W)`` in [0, 1] from a log-likelihood ratio ``unary`` (object over
    background, ``(H, W)``): mean-field updates of a Potts model on the 8-neighbourhood, ``beta`` the
    pairwise weight per neighbour that disagrees."""
    from scipy import ndimage

    u = np.clip(unary, -30, 30)
    q = 1 / (1 + np.exp(-u)) if q0 is None else np.asarray(q0, np.float64)
    kernel = np.ones((3, 3))
    kernel[1, 1] = 0
    for _ in range(rounds):
        agree = ndimage.convolve(2 * q - 1, kernel, mode="nearest")  # sum over neighbours of (q - (1 - q))
        q = 1 / (1 + np.exp(-np.clip(u + beta * agree, -30, 30)))
    return q


def grabcut(
    image: np.ndarray,
    seeds: np.ndarray | None = None,
    start: np.ndarray | None = None,
    *,
    rounds: int = 5,
    components: int = 4,
    beta: float = 2.0,
    temperature: float = 1.0,
    seed: int = 0,
    feats: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    colour: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Alternate region models and a smoothed assignment (see the module's docstring).

    ``seeds`` ``(H, W)``: 1 object, 2 background, 0 unknown (a box's outside is 2); ``start`` the first
    split (bool ``(H, W)``; default: the seeds' unknown pixels as the object).  Returns the object's share
    ``(H, W)`` and the last log-likelihood ratio (object over background, divided by ``temperature``).
    ``weights`` (one per feature) scale each feature's log-likelihood term; by default the colour block
    counts ``colour`` times as much as all the texture statistics together.
    """
    from .baselines import features

    h, w = image.shape[1:]
    f = texture_features(image) if feats is None else feats
    if weights is None:
        ncol = features(image).shape[1]
        weights = np.ones(f.shape[1])
        weights[:ncol] = colour * (f.shape[1] - ncol) / ncol
    s = np.zeros((h, w), np.int8) if seeds is None else np.asarray(seeds)
    obj = (s != 2) if start is None else np.asarray(start, bool).copy()
    obj[s == 1] = True
    obj[s == 2] = False
    q = obj.astype(np.float64)
    unary = np.zeros((h, w))
    for r in range(rounds):
        fo, bo = obj.ravel(), ~obj.ravel()
        if fo.sum() < 8 or bo.sum() < 8:
            break
        mo = RegionModel(f[fo], components, seed=seed + r)
        mb = RegionModel(f[bo], components, seed=seed + r)
        unary = ((mo.loglik(f, weights) - mb.loglik(f, weights)) / temperature).reshape(h, w)
        unary[s == 1] = 30
        unary[s == 2] = -30
        q = smooth_assign(unary, beta=beta)
        new = q >= 0.5
        if np.array_equal(new, obj):
            break
        obj = new
    return q, unary


def snap_boundary(image: np.ndarray, obj: np.ndarray, band: int, *, seeds: np.ndarray | None = None,
                  beta: float = 130.0) -> np.ndarray:
    """Move the boundary of the split ``obj`` (bool ``(H, W)``) onto the image's edges within ``band``
    pixels of it: the pixels farther than ``band`` inside and outside are the seeds of Grady's random
    walker (scikit-image, ``beta`` its edge sensitivity) on the image ``(C, H, W)``, which labels the band
    between them; ``seeds`` (1 object, 2 background, as a hint's) are added.  A split with no pixel
    farther than ``band`` from the boundary on one side is returned as it is.

    A split made from local statistics (regions, features, a coupled fit's mask) is only accurate to
    the statistics' scale, while the boundary of an object is usually an edge of the image.
    """
    from scipy import ndimage

    from .baselines import random_walker

    obj = np.asarray(obj, bool)
    if band < 1:
        return obj
    labels = np.zeros(obj.shape, np.int32)
    labels[ndimage.binary_erosion(obj, iterations=band)] = 1
    labels[ndimage.binary_erosion(~obj, iterations=band, border_value=1)] = 2
    if seeds is not None:
        s = np.asarray(seeds)
        labels[s == 1] = 1
        labels[s == 2] = 2
    if not (labels == 1).any() or not (labels == 2).any() or (labels > 0).all():
        return obj
    return random_walker(image, labels, beta=beta) == 1
