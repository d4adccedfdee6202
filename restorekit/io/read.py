"""Reading images and masks: a path in, an :class:`~restorekit.io.Image` out.

:func:`read_image` ties the other io modules together: the file checks and
the bytes come from :mod:`.files`, the pixel limit and the decoding from
:mod:`.codecs`, the conversion to an :class:`Image` from :mod:`.image`.
:func:`read_pages` reads every page of a multi-page TIFF (a stack).
:func:`read_mask` reads a file the same way and thresholds it into the bool
known/missing mask of an inpainting run.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import UsageError
from .codecs import _decode, _decode_frames, max_pixels
from .files import _as_path, _read_file_bytes
from .image import _FILE_FLOAT_SLACK, Image, _array_to_image, _unpremultiply
from .messages import _quote

# Rec. 601 luma, as Pillow's "L" conversion uses.
_LUMA = (0.299, 0.587, 0.114)


# --------------------------------------------------------------------------
# Images


def read_image(path: str | os.PathLike[str]) -> Image:
    """Read a PNG, TIFF or JPEG file (the first frame of multi-frame files).

    Anything read differently from the whole file (the first page of a
    multi-page TIFF, the first frame of an animated PNG) is described in
    :attr:`Image.notes`.  Raises :class:`UsageError` with a one-line message
    for anything wrong with the file itself, and for an image over
    :func:`max_pixels`.
    """
    return _read(path, "image")


def read_pages(path: str | os.PathLike[str]) -> list[Image]:
    """Every page of an image file: one :class:`Image` per page of a
    multi-page TIFF (a z-stack, a time series), else a one-item list.

    The pages of a stack share their size, channels and sample type (a file
    whose pages differ is refused in one line, naming two of them); pages
    marked reduced-resolution (thumbnails, pyramid levels) are left out
    with a note.  The pixel limit (:func:`max_pixels`) holds the pages
    together.  Each page's :attr:`Image.page` is its place in the stack
    (0-based) and its :attr:`Image.notes` the file's notes.  A file that is not a
    multi-page TIFF reads as :func:`read_image` reads it (its first frame).
    Raises :class:`UsageError` as :func:`read_image` does.
    """
    p = _as_path(path, "image")
    limit = max_pixels()
    data = _read_file_bytes(p, "image")
    notes: list[str] = []
    frames, fmt = _decode_frames(data, p, "image", limit, notes, every_page=True)
    images = []
    for index, (arr, premultiplied) in enumerate(frames):
        where = f" (page {index + 1} of {len(frames)})" if len(frames) > 1 else ""
        image = _array_to_image(
            arr, fmt, p, slack=_FILE_FLOAT_SLACK, prefix=f"cannot read image {_quote(p)}{where}: "
        )
        image.notes.extend(notes)
        if premultiplied and image.alpha is not None:
            _unpremultiply(image)
        if len(frames) > 1:
            image.page = index
        images.append(image)
    return images


def _read(path: str | os.PathLike[str], what: str) -> Image:
    p = _as_path(path, what)
    limit = max_pixels()
    data = _read_file_bytes(p, what)
    notes: list[str] = []
    arr, fmt, premultiplied = _decode(data, p, what, limit, notes)
    image = _array_to_image(
        arr, fmt, p, slack=_FILE_FLOAT_SLACK, prefix=f"cannot read {what} {_quote(p)}: "
    )
    image.notes.extend(notes)
    if premultiplied and image.alpha is not None:
        _unpremultiply(image)
    return image


# --------------------------------------------------------------------------
# Masks


def read_mask(
    path: str | os.PathLike[str],
    shape_hw: tuple[int, int],
    *,
    notes: list[str] | None = None,
) -> np.ndarray:
    """Read an inpainting mask as bool ``(H, W)``: True marks a known pixel.

    White (nonzero) is known, black is missing; colour masks use their
    Rec. 601 luminance, and alpha composites over black (transparent =
    missing).  The threshold is half the full range.  The mask must match
    ``shape_hw`` exactly, otherwise :class:`UsageError`.

    With a ``notes`` list, remarks for the run record are appended to it: the
    mask file's own :attr:`Image.notes`, and how many pixels were neither
    black nor white (anti-aliased edges, gray levels, colours) and so were
    decided by the threshold.
    """
    p = _as_path(path, "mask")
    image = _read(p, "mask")
    height, width = (int(n) for n in shape_hw)
    if (image.height, image.width) != (height, width):
        raise UsageError(
            f"mask {_quote(p)} is {image.width}x{image.height} but the image is "
            f"{width}x{height} (W x H): resize the mask to the image"
        )
    if image.channels == 3:
        r, g, b = image.data
        value = _LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b
    else:
        value = image.data[0]
    if image.alpha is not None:
        value = value * image.alpha
    known = np.asarray(value >= 0.5, dtype=bool)
    if notes is not None:
        notes.extend(f"mask {_quote(p)}: {note}" for note in image.notes)
        note = _mask_gray_note(image, known)
        if note:
            notes.append(f"mask {_quote(p)}: {note}")
    return known


def _mask_gray_note(image: Image, known: np.ndarray) -> str | None:
    """Describe the pixels that are neither pure black nor pure white."""
    black = np.all(image.data == 0.0, axis=0)
    white = np.all(image.data == 1.0, axis=0)
    if image.alpha is not None:
        black |= image.alpha == 0.0
        white &= image.alpha == 1.0
    gray = ~(black | white)
    count = int(gray.sum())
    if count == 0:
        return None
    total = gray.size
    share = 100.0 * count / total
    percent = f"{share:.1f}%" if share >= 0.1 else "under 0.1%"
    kept = int(known[gray].sum())
    return (
        f"{count} of {total} pixels ({percent}) are neither black nor white; they were "
        f"thresholded at half the range (>= 0.5 is known): {kept} known, {count - kept} missing"
    )
