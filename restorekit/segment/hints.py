"""``--hint`` values: ``box:x,y,w,h`` and ``scribbles:FILE`` -> :class:`restorekit.Hint` (torch-free).

A scribble file is an image of the same size as the one segmented:
colour: red marks the object, green or blue the background; gray: white
marks the object, mid-gray the background; black (and transparent) pixels
are unmarked.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..components import Hint
from ..errors import UsageError

__all__ = ["parse_hints", "read_scribbles"]

_BOX = re.compile(r"^\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*$")


def read_scribbles(path: str | Path, shape_hw: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` int8: 1 object, 2 background, 0 unmarked (see the module's docstring)."""
    from ..io import read_image

    img = read_image(path)
    h, w = shape_hw
    if (img.height, img.width) != (h, w):
        raise UsageError(f"scribbles '{path}' are {img.width}x{img.height} but the image is {w}x{h} (W x H): "
                         "draw them on a copy of the image's size")
    d = img.data
    visible = np.ones((h, w), bool) if img.alpha is None else img.alpha >= 0.5
    out = np.zeros((h, w), np.int8)
    if d.shape[0] >= 3:
        r, g, b = d[0], d[1], d[2]
        out[(r >= 0.5) & (g < 0.4) & (b < 0.4) & visible] = 1
        out[((g >= 0.5) | (b >= 0.5)) & (r < 0.4) & visible] = 2
    else:
        v = d[0]
        out[(v >= 0.75) & visible] = 1
        out[(v >= 0.25) & (v < 0.75) & visible] = 2
    if not out.any():
        raise UsageError(f"scribbles '{path}' mark no pixel: red (or white) marks the object, green or blue "
                         "(or mid-gray) the background, black is unmarked")
    return out


def parse_hints(values: list[str] | None, shape_hw: tuple[int, int]) -> Hint | None:
    """The hints given as ``--hint`` (each ``box:x,y,w,h`` or ``scribbles:FILE``, at most one of each)."""
    if not values:
        return None
    h, w = shape_hw
    box = scribbles = None
    for raw in values:
        kind, sep, value = raw.partition(":")
        kind = kind.strip().lower()
        if not sep or kind not in ("box", "scribbles"):
            raise UsageError(f"--hint {raw!r}: write box:x,y,w,h or scribbles:FILE")
        if kind == "box":
            if box is not None:
                raise UsageError("--hint box given twice; give one box")
            m = _BOX.match(value)
            if not m:
                raise UsageError(f"--hint {raw!r}: a box is box:x,y,w,h (left, top, width, height in pixels, "
                                 "e.g. box:10,20,64,48)")
            x, y, bw, bh = (int(v) for v in m.groups())
            if bw <= 0 or bh <= 0:
                raise UsageError(f"--hint {raw!r}: the box's width and height must be positive")
            if x < 0 or y < 0 or x + bw > w or y + bh > h:
                raise UsageError(f"--hint {raw!r}: the box reaches outside the {w}x{h} image")
            if bw * bh >= w * h:
                raise UsageError(f"--hint {raw!r}: the box covers the whole image, so it says nothing")
            box = (x, y, bw, bh)
        else:
            if scribbles is not None:
                raise UsageError("--hint scribbles given twice; give one file")
            if not value.strip():
                raise UsageError(f"--hint {raw!r}: name the scribble image, scribbles:FILE")
            scribbles = read_scribbles(value, (h, w))
    return Hint(box=box, scribbles=scribbles)
