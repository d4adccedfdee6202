"""Built-in metrics: PSNR, SSIM, MSE and MAE, optionally on a region.

Images are ``(H, W, C)`` float arrays; ``data_range`` is always explicit.
``channel=y`` scores the luma (ITU-R BT.601, as super-resolution papers do)
and ``border`` drops that many pixels on every side first.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from restorekit import Metric, Params, hookimpl
from restorekit.errors import UsageError


class _RegionParams(Params):
    channel: Literal["all", "y"] = Field("all", description="score all channels, or the BT.601 luma")
    border: int = Field(0, ge=0, description="pixels dropped on every side before scoring")


def _prepare(image_true, image_test, mask, params):
    a = np.asarray(image_true, dtype=np.float64)
    b = np.asarray(image_test, dtype=np.float64)
    if a.shape != b.shape:
        raise UsageError(f"reference is {a.shape} but the result is {b.shape}; they must match")
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if params.channel == "y" and a.shape[-1] == 3:
        w = np.array([65.481, 128.553, 24.966]) / 255.0
        a = (a @ w + 16 / 255.0)[..., None]
        b = (b @ w + 16 / 255.0)[..., None]
    k = params.border
    if k:
        if 2 * k >= min(a.shape[0], a.shape[1]):
            raise UsageError(f"border {k} leaves nothing of a {a.shape[1]}x{a.shape[0]} image")
        a, b = a[k:-k, k:-k], b[k:-k, k:-k]
        mask = None if mask is None else mask[k:-k, k:-k]
    return a, b, mask


def _masked_mean(values: np.ndarray, mask) -> float:
    if mask is None:
        return float(values.mean())
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return float("nan")
    return float(values[m].mean())


class PSNR(Metric):
    name = "psnr"
    summary = "Peak signal-to-noise ratio in dB (higher is better)."
    unit = "dB"

    Params = _RegionParams

    def compute(self, image_true, image_test, *, data_range=1.0, mask=None):
        a, b, mask = _prepare(image_true, image_test, mask, self.params)
        mse = _masked_mean(((a - b) ** 2).mean(axis=-1), mask)
        if mse == 0:
            return float("inf")
        return float(10 * np.log10(data_range**2 / mse))


class SSIM(Metric):
    name = "ssim"
    summary = "Structural similarity (Wang et al. 2004), 7x7 windows, mean over channels."

    Params = _RegionParams

    def compute(self, image_true, image_test, *, data_range=1.0, mask=None):
        from skimage.metrics import structural_similarity

        a, b, mask = _prepare(image_true, image_test, mask, self.params)
        side = min(a.shape[0], a.shape[1])
        win = min(7, side if side % 2 else side - 1)
        if win < 3:
            raise UsageError(f"ssim needs an image of at least 3x3 pixels (got {a.shape[1]}x{a.shape[0]})")
        _, smap = structural_similarity(
            a, b, data_range=data_range, channel_axis=-1, win_size=win, full=True
        )
        return _masked_mean(smap.mean(axis=-1), mask)


class MSE(Metric):
    name = "mse"
    summary = "Mean squared error (lower is better)."
    higher_is_better = False
    Params = _RegionParams

    def compute(self, image_true, image_test, *, data_range=1.0, mask=None):
        a, b, mask = _prepare(image_true, image_test, mask, self.params)
        return _masked_mean(((a - b) ** 2).mean(axis=-1), mask)


class MAE(Metric):
    name = "mae"
    summary = "Mean absolute error (lower is better)."
    higher_is_better = False
    Params = _RegionParams

    def compute(self, image_true, image_test, *, data_range=1.0, mask=None):
        a, b, mask = _prepare(image_true, image_test, mask, self.params)
        return _masked_mean(np.abs(a - b).mean(axis=-1), mask)


@hookimpl
def restorekit_register_metrics(registry):
    for cls in (PSNR, SSIM, MSE, MAE):
        registry.add(cls)
