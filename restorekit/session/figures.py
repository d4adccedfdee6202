"""Figures: the pictures commands draw beside their results (compare.png, curves.png, ...).

A picture is never essential: :func:`figure` draws one and turns a failure into a note for the
record, so a plotting problem costs the picture, not the results.  :func:`to_rgb` makes a
``(C, H, W)`` image in [0, 1] displayable; :func:`pyplot` is matplotlib's pyplot on the Agg
backend (files, no display), imported when a drawing function asks for it, not here.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import one_line

__all__ = ["figure", "to_rgb", "pyplot"]


def pyplot():
    """matplotlib.pyplot, drawing into files (the Agg backend, forced: no display is needed or used)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def to_rgb(a: np.ndarray) -> np.ndarray:
    """(C, H, W) float -> (H, W, 3) for display."""
    a = np.clip(a, 0, 1)
    if a.shape[0] == 1:
        a = np.repeat(a, 3, axis=0)
    return np.moveaxis(a[:3], 0, -1)


def figure(kind: str, draw: Callable[..., Any], path: Path, *args: Any) -> tuple[bool, str | None]:
    """Draw one picture with ``draw(path, *args)``; a failure costs the picture, not the run.

    Returns (drawn?, note): ``draw`` returning ``False`` means there was nothing to draw; the note
    (``"<kind> was not drawn: <why>"``) is set when drawing failed, and the half-written file is removed.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # matplotlib's layout warnings name its source files
            drawn = draw(path, *args)
        return drawn is not False, None
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - a plot must not lose the restored image
        with contextlib.suppress(OSError):
            path.unlink()
        return False, f"{kind} was not drawn: {one_line(exc)}"
