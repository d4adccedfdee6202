"""Writing images: an array out to a PNG, TIFF or JPEG file, atomically.

:func:`write_stack` writes a stack of pages as one multi-page TIFF.
:func:`write_image` picks the codec by the file's suffix, checks the target
(:mod:`.files`) before spending time on encoding, encodes (:mod:`.codecs`)
and hands the bytes to :func:`~restorekit.io.files.atomic_write_bytes`.
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
    _check_write_array,
    _encode_jpeg,
    _encode_png,
    _encode_tiff,
    _encode_tiff_pages,
)
from .files import _check_target, atomic_write_bytes
from .messages import _one_line, _quote


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


def write_stack(
    path: str | os.PathLike[str], pages: np.ndarray, *, overwrite: bool = False,
    calibration: dict | None = None,
) -> Path:
    """Atomically write a stack, ``N x H x W`` or ``N x H x W x C`` (C = 1..4),
    as a multi-page TIFF: one page per item, in order (what
    :func:`~restorekit.io.read_pages` reads back).  The suffix must be
    ``.tif`` or ``.tiff``; the samples uint8, uint16 or float32.  Passing an
    array of another shape or type raises ValueError; another suffix or an
    existing target (without ``overwrite``) raises :class:`UsageError`.
    ``calibration`` (:func:`~restorekit.io.read_tiff_calibration` of the source) keeps its pixel size
    and ImageJ axes and calibration, or its OME-XML where that describes ``pages``
    (:func:`~restorekit.io.ome_difference`).
    """
    target = Path(path)
    if target.suffix.lower() not in _TIFF_SUFFIXES:
        raise UsageError(
            f"cannot write {_quote(target)}: a stack of pages is written as TIFF; use .tif or .tiff"
        )
    _check_target(target, overwrite)
    stack = np.asarray(pages)
    if stack.ndim not in (3, 4) or stack.shape[0] == 0:
        raise ValueError(f"write_stack: expected N x H x W or N x H x W x C, got {stack.shape}")
    arrays = [_check_write_array(page) for page in stack]
    return atomic_write_bytes(target, _encode_tiff_pages(arrays, calibration), overwrite=overwrite)
