"""Masks and label images: which part is the object, and how well a mask matches the truth.

Torch-free.  A *mask* is an ``(H, W)`` bool (or a float share in [0, 1],
thresholded at 0.5); a *label image* an ``(H, W)`` int array of segment
numbers.  The metrics take ``truth, test`` in that order (scikit-image's).
"""

from __future__ import annotations

import numpy as np

from ..components import Hint

__all__ = ["background_region", "object_segments", "orient", "iou", "dice", "boundary_f", "scores"]


def background_region(shape: tuple[int, int], hint: Hint | None = None, ring: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(background, object)`` bool maps of what is known to be either.

    Without a hint, the image border (a ring of ``ring`` pixels, by default
    3 % of the shorter side, at least 1) stands for the background and nothing
    for the object: an object is taken to touch the border less than its
    background does.  A box makes its outside the background; scribbles mark
    both.
    """
    h, w = shape
    bg = np.zeros((h, w), bool)
    fg = np.zeros((h, w), bool)
    if hint is not None and (hint.box is not None or hint.scribbles is not None):
        seeds = hint.seeds(h, w)
        bg[seeds == 2] = True
        fg[seeds == 1] = True
        return bg, fg
    r = ring or max(1, round(0.03 * min(h, w)))
    bg[:r] = bg[-r:] = True
    bg[:, :r] = bg[:, -r:] = True
    return bg, fg


def object_segments(labels: np.ndarray, hint: Hint | None = None, under: float = 1.0) -> np.ndarray:
    """The mask of the segments that make the object: those over-represented in the known object
    pixels, or under-represented in the known background (the border without a hint): their share of
    it below ``under`` times their share of the image."""
    labels = np.asarray(labels)
    bg, fg = background_region(labels.shape, hint)
    ids, inverse = np.unique(labels, return_inverse=True)
    inverse = inverse.reshape(labels.shape)
    area = np.bincount(inverse.ravel(), minlength=len(ids)).astype(float)
    share = area / area.sum()
    in_bg = np.bincount(inverse[bg], minlength=len(ids)).astype(float)
    in_fg = np.bincount(inverse[fg], minlength=len(ids)).astype(float)
    if in_fg.sum() > 0 and in_bg.sum() > 0:  # scribbles on both: the side each segment leans to
        obj = in_fg / in_fg.sum() > in_bg / in_bg.sum()
    elif in_fg.sum() > 0:
        obj = in_fg / in_fg.sum() > share
    else:
        obj = in_bg / max(in_bg.sum(), 1.0) < under * share
    if not obj.any():  # everything touches the background as much: the least present one
        obj[np.argmin(in_bg / np.maximum(area, 1))] = True
    if obj.all():
        obj[np.argmax(in_bg / np.maximum(area, 1))] = False
    return obj[inverse]


def orient(mask: np.ndarray, hint: Hint | None = None) -> np.ndarray:
    """A two-way split with the object as True (:func:`object_segments` decides which side it is)."""
    m = np.asarray(mask)
    m = m >= 0.5 if m.dtype.kind == "f" else m.astype(bool)
    if m.all() or not m.any():
        return m
    return object_segments(m.astype(np.int8), hint)


def _binary(mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)
    return m >= 0.5 if m.dtype.kind == "f" else m.astype(bool)


def iou(truth: np.ndarray, test: np.ndarray) -> float:
    """Intersection over union of the two masks (1 when both are empty)."""
    t, p = _binary(truth), _binary(test)
    union = np.logical_or(t, p).sum()
    return 1.0 if union == 0 else float(np.logical_and(t, p).sum() / union)


def dice(truth: np.ndarray, test: np.ndarray) -> float:
    """2 |T ∩ P| / (|T| + |P|) (1 when both are empty)."""
    t, p = _binary(truth), _binary(test)
    total = t.sum() + p.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(t, p).sum() / total)


def _boundary(m: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return m & ~ndimage.binary_erosion(m, border_value=1)


def boundary_f(truth: np.ndarray, test: np.ndarray, tolerance: float | None = None) -> float:
    """The boundary F-score (Csurka et al. 2013, the BF score of DAVIS's F): precision and recall of the
    test mask's boundary pixels lying within ``tolerance`` pixels of the true boundary (default 0.75 %
    of the image diagonal, at least 1)."""
    from scipy import ndimage

    t, p = _binary(truth), _binary(test)
    if tolerance is None:
        tolerance = max(1.0, 0.0075 * float(np.hypot(*t.shape)))
    bt, bp = _boundary(t), _boundary(p)
    if not bt.any() and not bp.any():
        return 1.0
    if not bt.any() or not bp.any():
        return 0.0
    dist_to_t = ndimage.distance_transform_edt(~bt)
    dist_to_p = ndimage.distance_transform_edt(~bp)
    precision = float((dist_to_t[bp] <= tolerance).mean())
    recall = float((dist_to_p[bt] <= tolerance).mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def scores(truth: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """IoU, Dice and boundary F of ``test`` against ``truth``."""
    return {"iou": iou(truth, test), "dice": dice(truth, test), "boundary_f": boundary_f(truth, test)}
