"""Dehazing by the dark channel prior (He, Sun, Tang, CVPR 2009 / TPAMI 2011), NumPy and SciPy only.

A hazy image follows the atmospheric scattering model ``I = J t + A (1 - t)``:
``J`` the scene, ``t`` the transmission, ``A`` the airlight.  In haze-free
outdoor images most patches have a pixel that is dark in some colour channel
(the *dark channel prior*); haze lifts those pixels towards ``A``, so the dark
channel measures the haze.

* :func:`dark_channel`: the minimum over the channels, then over a square patch;
* :func:`estimate_airlight`: among the brightest 0.1 % of the dark channel,
  the brightest input pixel (He et al.'s rule; ``mode="mean"``: their mean
  colour);
* the transmission ``t = 1 - omega * dark(I / A)`` (``omega`` keeps a little
  haze for the sense of depth), refined by :func:`guided_filter` with the gray
  image as the guide (He, Sun, Tang, ECCV 2010 / TPAMI 2013 — in place of the
  2009 paper's soft matting);
* the scene ``J = (I - A) / max(t, t0) + A``, clipped to [0, 1].

:func:`dark_channel_dehaze` does all of it.  Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["T0", "default_patch", "dark_channel", "estimate_airlight", "box_mean", "guided_filter", "recover_scene",
           "DehazeResult", "dark_channel_dehaze"]

#: the least transmission the scene is recovered with (He et al.'s t0): where t -> 0 it is unconstrained
T0 = 0.1


def default_patch(h: int, w: int) -> int:
    """The dark channel's patch side for an ``h x w`` image: ``min(h, w) // 16`` made odd (``| 1``), between 3
    and He et al.'s 15 (reached at 224 pixels): 7 at 96x96, 9 at 128x128 — the patch double-dip's dehazing
    starts its airlight from."""
    return int(max(3, min(15, (min(h, w) // 16) | 1)))


def dark_channel(image: np.ndarray, patch: int) -> np.ndarray:
    """The dark channel of a ``(C, H, W)`` image: the minimum over the channels, then over a ``patch x
    patch`` square (edges replicated)."""
    from scipy import ndimage

    return ndimage.minimum_filter(np.asarray(image).min(0), size=int(patch), mode="nearest")


def estimate_airlight(image: np.ndarray, dark: np.ndarray, fraction: float = 0.001, mode: str = "brightest") -> np.ndarray:
    """The airlight ``(C,)`` of ``image`` ``(C, H, W)`` from its dark channel ``dark`` ``(H, W)``.

    The candidates are the ``fraction`` (at least one pixel) of pixels with the brightest dark channel —
    the most haze-opaque ones, not merely the brightest objects.  ``mode="brightest"`` (He et al.): the
    input colour of the candidate with the highest intensity (channel mean); ``"mean"``: the candidates'
    mean colour."""
    c = image.shape[0]
    flat = dark.ravel()
    k = max(1, int(round(fraction * flat.size)))
    idx = np.argpartition(flat, flat.size - k)[flat.size - k:]
    pixels = image.reshape(c, -1)[:, idx]
    if mode == "mean":
        a = pixels.mean(1)
    elif mode == "brightest":
        a = pixels[:, int(np.argmax(pixels.mean(0)))]
    else:
        raise ValueError(f"unknown airlight mode {mode!r} (brightest or mean)")
    return np.asarray(a, np.float64)


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """The mean of ``x`` ``(H, W)`` over the ``(2r+1) x (2r+1)`` window around each pixel, the window cut at
    the image's edges (the mean of the pixels inside it, as He et al.'s box filter divided by the counts)."""
    from scipy import ndimage

    size = 2 * int(radius) + 1
    x = np.asarray(x, np.float64)
    num = ndimage.uniform_filter(x, size=size, mode="constant", cval=0.0)
    den = ndimage.uniform_filter(np.ones_like(x), size=size, mode="constant", cval=0.0)
    return num / den


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float = 1e-3) -> np.ndarray:
    """He, Sun, Tang's guided filter (ECCV 2010) with a gray guide: ``q = mean(a) * I + mean(b)``, where in
    each window ``a = cov(I, p) / (var(I) + eps)`` and ``b = mean(p) - a * mean(I)``.  Edges of the guide
    are kept, flat parts of it smooth ``src`` like a box filter of radius ``radius``; a constant ``src``
    comes back unchanged."""
    guide = np.asarray(guide, np.float64)
    src = np.asarray(src, np.float64)
    mean_i = box_mean(guide, radius)
    mean_p = box_mean(src, radius)
    cov_ip = box_mean(guide * src, radius) - mean_i * mean_p
    var_i = box_mean(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (np.maximum(var_i, 0.0) + eps)
    b = mean_p - a * mean_i
    return box_mean(a, radius) * guide + box_mean(b, radius)


@dataclass
class DehazeResult:
    """The dark channel prior's estimates: the scene ``dehazed`` ``(C, H, W)``, the ``airlight`` ``(C,)``,
    the refined ``transmission`` ``(H, W)`` in [0, 1] (before the floor ``t0``), the coarse one, and the
    patch and guided filter radius used."""

    dehazed: np.ndarray
    airlight: np.ndarray
    transmission: np.ndarray
    coarse: np.ndarray
    patch: int
    radius: int


def recover_scene(image: np.ndarray, transmission: np.ndarray, airlight: np.ndarray, t0: float = T0) -> np.ndarray:
    """The scene ``J = (I - A) / max(t, t0) + A`` of ``image`` ``(C, H, W)`` through the scattering model,
    clipped to [0, 1]: ``transmission`` ``(H, W)``, ``airlight`` of shape ``(C,)`` or ``(C, 1, 1)``."""
    img = np.asarray(image, np.float64)
    a = np.asarray(airlight, np.float64).reshape(-1, 1, 1)
    j = (img - a) / np.maximum(np.asarray(transmission, np.float64), t0)[None] + a
    return np.clip(j, 0, 1).astype(np.float32)


def dark_channel_dehaze(
    image: np.ndarray,
    *,
    patch: int | None = None,
    omega: float = 0.95,
    t0: float = T0,
    radius: int | None = None,
    eps: float = 1e-3,
    fraction: float = 0.001,
    airlight: str = "brightest",
    refine: bool = True,
) -> DehazeResult:
    """Dehaze ``image`` ``(C, H, W)`` in [0, 1] by the dark channel prior (see the module's docstring).

    ``patch``: the dark channel's patch (None: :func:`default_patch`); ``radius``: the guided filter's
    (None: four times the patch, as He et al.'s 60 for 15); ``refine=False`` keeps the patchy coarse
    transmission."""
    from ..segment.baselines import gray

    img = np.asarray(image, np.float64)
    c, h, w = img.shape
    p = int(patch) if patch else default_patch(h, w)
    r = int(radius) if radius else 4 * p
    dark = dark_channel(img, p)
    a = estimate_airlight(img, dark, fraction, airlight)
    a_safe = np.maximum(a, 1e-3)
    coarse = 1.0 - omega * dark_channel(img / a_safe[:, None, None], p)
    t = guided_filter(gray(img), coarse, r, eps) if refine else coarse
    t = np.clip(t, 0.0, 1.0)
    return DehazeResult(
        dehazed=recover_scene(img, t, a, t0),
        airlight=np.clip(a, 0, 1).astype(np.float32),
        transmission=t.astype(np.float32),
        coarse=np.clip(coarse, 0, 1).astype(np.float32),
        patch=p,
        radius=r,
    )
