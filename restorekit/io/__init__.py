"""Image files in and out: PNG (1-16 bit), TIFF (uint8/uint16/float32) and JPEG.

Everything inside restorekit works on :class:`Image`: float32 samples in
``[0, 1]`` laid out ``(C, H, W)`` with ``C`` 1 (gray) or 3 (RGB), plus an
optional separate alpha plane.  The source sample type is remembered so the
result can be written back at the same depth.

* 16-bit PNGs are read and written with ``pypng`` (Pillow squeezes 16-bit RGB
  to 8 bits); 1-8 bit PNGs and JPEGs go through Pillow; TIFFs through
  ``tifffile`` (Pillow as a fallback for 8-bit TIFFs whose compression
  tifffile cannot decode without ``imagecodecs``).
* Every problem a user can cause (missing, unreadable, empty, corrupt or
  unsupported file, odd channel counts, floats outside ``[0, 1]``, an image
  larger than :func:`max_pixels`) raises
  :class:`~restorekit.errors.UsageError` with a one-line message.
* Every decoder checks the pixel count its header declares against one limit,
  :func:`max_pixels` (``RESTOREKIT_MAX_PIXELS``), before it decodes anything,
  so a small file that declares a huge image (a decompression bomb) is refused
  at once instead of filling the memory; deflate/LZMA streams that pypng and
  tifffile would inflate whole are first checked against the header's size.
* :func:`check_input_file` runs the file checks of :func:`read_image` (exists,
  regular, not empty, readable) without reading the file.
* Multi-frame files (multi-page TIFF, animated PNG, MPO JPEG) give their first
  frame, and say so in :attr:`Image.notes`.
* Writes are atomic: a hidden temporary file in the target directory is
  written, fsynced and moved over the target with :func:`os.replace`.

This module does not import torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .codecs import (
    _JPEG_SUFFIXES,
    _PNG_SUFFIXES,
    _TIFF_SUFFIXES,
    DEFAULT_MAX_PIXELS,
    MAX_PIXELS_ENV,
    _check_write_array,
    _decode,
    _encode_jpeg,
    _encode_png,
    _encode_tiff,
    max_pixels,
)
from .files import (
    _as_path,
    _check_target,
    _read_file_bytes,
    atomic_write_bytes,
    atomic_write_text,
    check_input_file,
)
from .image import (
    _FILE_FLOAT_SLACK,
    Image,
    _array_to_image,
    _unpremultiply,
    image_from_array,
    output_suffix,
    to_array,
)
from .messages import _one_line, _quote

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "Image",
    "check_input_file",
    "max_pixels",
    "read_image",
    "image_from_array",
    "to_array",
    "write_image",
    "atomic_write_bytes",
    "atomic_write_text",
    "output_suffix",
    "read_mask",
]


# Rec. 601 luma, as Pillow's "L" conversion uses.
_LUMA = (0.299, 0.587, 0.114)


# --------------------------------------------------------------------------
# Reading


def read_image(path: str | os.PathLike[str]) -> Image:
    """Read a PNG, TIFF or JPEG file (the first frame of multi-frame files).

    Anything read differently from the whole file (the first page of a
    multi-page TIFF, the first frame of an animated PNG) is described in
    :attr:`Image.notes`.  Raises :class:`UsageError` with a one-line message
    for anything wrong with the file itself, and for an image over
    :func:`max_pixels`.
    """
    return _read(path, "image")


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
# Writing


def write_image(
    path: str | os.PathLike[str], array: np.ndarray, *, overwrite: bool = False
) -> Path:
    """Atomically write ``HxW`` / ``HxWxC`` (C = 1..4) to ``path``; format by suffix.

    PNG takes uint8 (Pillow) or uint16 (pypng); TIFF takes uint8, uint16 or
    float32; JPEG takes uint8 gray or RGB.  Passing an array the format cannot
    hold raises ValueError; an unknown suffix or an existing target (without
    ``overwrite``) raises :class:`UsageError`.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in _PNG_SUFFIXES + _TIFF_SUFFIXES + _JPEG_SUFFIXES:
        raise UsageError(
            f"cannot write {_quote(target)}: unsupported output format "
            f"'{_one_line(suffix) or '(no suffix)'}'; use .png, .tif/.tiff or .jpg/.jpeg"
        )
    _check_target(target, overwrite)  # fail before spending time on encoding
    arr = _check_write_array(array)
    if suffix in _PNG_SUFFIXES:
        payload = _encode_png(arr)
    elif suffix in _TIFF_SUFFIXES:
        payload = _encode_tiff(arr)
    else:
        payload = _encode_jpeg(arr)
    return atomic_write_bytes(target, payload, overwrite=overwrite)


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
