"""Writing images: an array out to a PNG, TIFF or JPEG file, atomically.

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
