"""A function of an image run on overlapping tiles of it and blended back: bounded memory for large images.

Used by the learned denoiser (:func:`restorekit.learn.model._run`) and by BM3D for real noise
(:func:`restorekit.noise.denoise.bm3d_colored`).  Arrays are ``(C, H, W)``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def blend_tiles(image: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], rows: Sequence[tuple[int, int]],
                cols: Sequence[tuple[int, int]], ramp: int) -> np.ndarray:
    """``fn`` of each tile of ``image`` (rows x cols, each a (start, length) along its side; ``fn`` keeps a
    tile's shape), blended: each tile weighted by its pixels' distance to its own edge (1 on the edge) up
    to ``ramp``, so that overlapping tiles fade into each other.  Float64."""
    _, h, w = image.shape
    out = np.zeros(image.shape, np.float64)
    weight = np.zeros((1, h, w), np.float64)
    for top, height in rows:
        for left, width in cols:
            tile = image[:, top:top + height, left:left + width]
            th, tw = tile.shape[1:]  # a span past the image's edge is cut there
            ramp_h = np.minimum(np.arange(1, th + 1), np.arange(th, 0, -1)).astype(float)
            ramp_w = np.minimum(np.arange(1, tw + 1), np.arange(tw, 0, -1)).astype(float)
            wgt = np.minimum(np.minimum.outer(ramp_h, ramp_w), ramp)[None]
            out[:, top:top + th, left:left + tw] += fn(tile) * wgt
            weight[:, top:top + th, left:left + tw] += wgt
    return out / weight
