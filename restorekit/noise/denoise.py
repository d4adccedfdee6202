"""Denoisers for an estimated :class:`~.model.NoiseModel`: variance stabilisation per channel, a
decorrelating colour transform, and BM3D told the noise's power spectrum (its correlated-noise mode,
Maekinen, Azzari and Foi, 2020)."""

from __future__ import annotations

import numpy as np

from .model import NoiseModel, spectrum

#: the opponent colour transform BM3D's colour mode uses (rows: luminance, two chroma), orthonormal
OPP = np.array([[1 / 3, 1 / 3, 1 / 3], [0.5, 0, -0.5], [0.25, -0.5, 0.25]])
OPP = OPP / np.linalg.norm(OPP, axis=1, keepdims=True)


def stabilise(x: np.ndarray, model: NoiseModel) -> np.ndarray:
    """Per channel, the generalised Anscombe transform of var = a x + b: unit-variance noise."""
    out = np.empty_like(x, dtype=np.float64)
    for c in range(x.shape[0]):
        a, b = float(model.a[c]), float(model.b[c])
        if a <= 1e-9 * max(b, 1e-12):
            out[c] = x[c] / np.sqrt(max(b, 1e-12))
        else:
            out[c] = 2 / a * np.sqrt(np.maximum(a * x[c] + 3 / 8 * a * a + b, 0))
    return out


def unstabilise(y: np.ndarray, model: NoiseModel) -> np.ndarray:
    """The algebraic inverse of :func:`stabilise`."""
    out = np.empty_like(y)
    for c in range(y.shape[0]):
        a, b = float(model.a[c]), float(model.b[c])
        if a <= 1e-9 * max(b, 1e-12):
            out[c] = y[c] * np.sqrt(max(b, 1e-12))
        else:
            out[c] = ((a * y[c] / 2) ** 2 - 3 / 8 * a * a - b) / a
    return out


def bm3d_colored(x: np.ndarray, model: NoiseModel, profile: str = "np", scale: float = 1.0) -> np.ndarray:
    """BM3D of ``x`` (C, H, W) in [0, 1] for the correlated noise ``model``; ``scale`` multiplies the
    noise's variance BM3D is told."""
    import bm3d

    _numpy_trapz()
    c, h, w = x.shape
    z = stabilise(x, model)
    t = OPP if c == 3 else np.eye(c)
    zt = np.einsum("kc,chw->khw", t, z)
    psd = np.stack([spectrum(k, (h, w)) * h * w * scale for k in model.power(t)], -1)
    y = bm3d.bm3d(np.moveaxis(zt, 0, -1), psd, profile=profile)
    y = np.moveaxis(np.atleast_3d(y), -1, 0)
    y = np.einsum("ck,khw->chw", np.linalg.inv(t), y)
    return np.clip(unstabilise(y, model), 0, 1)


def _numpy_trapz() -> None:
    """bm3d's correlated-noise path (its bm4d dependency, 4.2) calls ``np.trapz``, which NumPy 2.4
    removed; give it the same function under its new name."""
    if not hasattr(np, "trapz") and hasattr(np, "trapezoid"):
        np.trapz = np.trapezoid  # type: ignore[attr-defined]
