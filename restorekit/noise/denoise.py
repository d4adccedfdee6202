"""Denoisers for an estimated :class:`~.model.NoiseModel`: variance stabilisation per channel, a
decorrelating colour transform, and BM3D told the noise's power spectrum (its correlated-noise mode,
Maekinen, Azzari and Foi, 2020)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .model import NoiseModel, spectrum

#: the opponent colour transform BM3D's colour mode uses (rows: luminance, two chroma), orthonormal
OPP = np.array([[1 / 3, 1 / 3, 1 / 3], [0.5, 0, -0.5], [0.25, -0.5, 0.25]])
OPP = OPP / np.linalg.norm(OPP, axis=1, keepdims=True)


#: a slope whose variance at full scale is below this fraction of the constant variance is taken as 0: the
#: Anscombe transform of a tiny slope (2/a sqrt(a x + b)) has huge values and loses the noise to rounding
#: (a slope of 1e-9 turned a cc15 crop into 19.8 dB)
NEGLIGIBLE_SLOPE = 1e-3


def _shot(model: NoiseModel, c: int) -> bool:
    return float(model.a[c]) > NEGLIGIBLE_SLOPE * max(float(model.b[c]), 1e-12)


def _gat(x: np.ndarray, a: float, b: float) -> np.ndarray:
    return 2 / a * np.sqrt(np.maximum(a * x + 3 / 8 * a * a + b, 0))


def stabilise(x: np.ndarray, model: NoiseModel) -> np.ndarray:
    """Per channel, the generalised Anscombe transform of var = a x + b, less its value at 0.5: noise of
    unit variance, values of the order of the noise's range in levels."""
    out = np.empty_like(x, dtype=np.float64)
    for c in range(x.shape[0]):
        a, b = float(model.a[c]), float(model.b[c])
        if not _shot(model, c):
            out[c] = (x[c] - 0.5) / np.sqrt(max(b + 0.5 * max(a, 0.0), 1e-12))
        else:
            out[c] = _gat(x[c], a, b) - _gat(np.float64(0.5), a, b)
    return out


def unstabilise(y: np.ndarray, model: NoiseModel) -> np.ndarray:
    """The algebraic inverse of :func:`stabilise`."""
    out = np.empty_like(y)
    for c in range(y.shape[0]):
        a, b = float(model.a[c]), float(model.b[c])
        if not _shot(model, c):
            out[c] = y[c] * np.sqrt(max(b + 0.5 * max(a, 0.0), 1e-12)) + 0.5
        else:
            g = y[c] + _gat(np.float64(0.5), a, b)
            out[c] = ((a * g / 2) ** 2 - 3 / 8 * a * a - b) / a
    return out


#: images with more pixels than TILE x TILE go through BM3D in overlapping tiles of at most that side,
#: blended by linear ramps over OVERLAP pixels.  BM3D's memory grows with the image (1.5 GB peak for a
#: 1024x1024 photo whole, the process included), a tile's does not; BM3D is local (its search window is 39
#: pixels), so the seams do not show.  Images of up to TILE x TILE pixels are denoised whole, as before
TILE, OVERLAP = 1024, 64


def bm3d_colored(x: np.ndarray, model: NoiseModel, profile: str = "np") -> np.ndarray:
    """BM3D of ``x`` (C, H, W) in [0, 1] for the correlated noise ``model`` (``model.scaled(s)`` for a
    milder or stronger one); a large image in overlapping tiles (:data:`TILE`)."""
    return _tiled(x, lambda tile: _bm3d_colored(tile, model, profile))


def bm3d_white(x: np.ndarray, model: NoiseModel, profile: str = "np", colorspace: str = "opp") -> np.ndarray:
    """BM3D of ``x`` (C, H, W) in [0, 1] told white noise at the ``model``'s white-noise equivalent
    (:meth:`~.model.NoiseModel.white_sigma`): :func:`bm3d_gaussian`.  The default averages it with
    :func:`bm3d_colored` (the BM3D prior's ``white_mean``): told the whole model, BM3D leaves part of the
    noise's coarse, colour-correlated part that a white-noise denoiser told its peak level removes, and the
    white-noise denoiser removes fine detail the model spares."""
    return bm3d_gaussian(x, model.white_sigma(), profile, colorspace)


def bm3d_gaussian(x: np.ndarray, sigma: float, profile: str = "np", colorspace: str = "opp") -> np.ndarray:
    """BM3D of ``x`` (C, H, W) in [0, 1] told white Gaussian noise of ``sigma`` (0-1 units): colour (three
    channels) in ``colorspace`` (``opp`` or ``YCbCr``, the bm3d package's colour mode), other images channel
    by channel; a large image in overlapping tiles (:data:`TILE`)."""
    import bm3d

    def one(tile: np.ndarray) -> np.ndarray:
        opp = np.einsum("kc,chw->khw", OPP, tile) if tile.shape[0] == 3 else None
        # bm3d_rgb scales each colour channel by its range: a flat colour difference (a grey image stored as
        # RGB) gave NaN; such an image goes channel by channel
        if opp is not None and (opp.max(axis=(1, 2)) - opp.min(axis=(1, 2)) > 1e-9).all():
            out = bm3d.bm3d_rgb(np.moveaxis(tile, 0, -1), sigma, profile=profile, colorspace=colorspace)
            return np.moveaxis(out, -1, 0)
        return np.stack([bm3d.bm3d(c, sigma, profile=profile) for c in tile])

    return np.clip(_tiled(x, one), 0, 1)


def _tiled(x: np.ndarray, fn: Any) -> np.ndarray:
    """``fn`` of ``x`` (C, H, W) whole, or of overlapping tiles of it blended where it has more than
    TILE x TILE pixels."""
    from ..tiling import blend_tiles

    _, h, w = x.shape
    if h * w <= TILE * TILE:
        return fn(x)
    return blend_tiles(x, fn, tile_spans(h), tile_spans(w), OVERLAP)


def tile_spans(size: int) -> list[tuple[int, int]]:
    """(start, length) of the fewest equal tiles of at most :data:`TILE` pixels that cover a side of
    ``size`` pixels, neighbours overlapping by at least :data:`OVERLAP`."""
    if size <= TILE:
        return [(0, size)]
    n = -(-(size - OVERLAP) // (TILE - OVERLAP))
    side = -(-(size + (n - 1) * OVERLAP) // n)
    starts = [round(k * (size - side) / (n - 1)) for k in range(n)]
    return [(s0, side) for s0 in starts]


def _bm3d_colored(x: np.ndarray, model: NoiseModel, profile: str) -> np.ndarray:
    import bm3d

    _numpy_trapz()
    c, h, w = x.shape
    z = stabilise(x, model)
    t = OPP if c == 3 else np.eye(c)
    zt = np.einsum("kc,chw->khw", t, z)
    psd = np.stack([spectrum(k, (h, w)) * h * w for k in model.power(t)], -1)
    # a channel with no noise power (the colour differences of a grey image stored as RGB) gets a floor: BM3D
    # normalises each channel's spectrum and returned NaN for an all-zero one
    psd = np.maximum(psd, 1e-4 * max(float(psd.mean()), 1e-12))
    y = bm3d.bm3d(np.moveaxis(zt, 0, -1), psd, profile=profile)
    y = np.moveaxis(np.atleast_3d(y), -1, 0)
    y = np.einsum("ck,khw->chw", np.linalg.inv(t), y)
    return np.clip(unstabilise(y, model), 0, 1)


def _numpy_trapz() -> None:
    """bm3d's correlated-noise path (its bm4d dependency, 4.2) calls ``np.trapz``, which NumPy 2.4
    removed; give it the same function under its new name."""
    if not hasattr(np, "trapz") and hasattr(np, "trapezoid"):
        np.trapz = np.trapezoid  # type: ignore[attr-defined]
