"""The in-memory image and its conversion to and from NumPy arrays.

:class:`Image` holds float32 ``(C, H, W)`` samples in ``[0, 1]`` (``C`` 1 or
3) plus an optional alpha plane, and remembers the source's sample type
(uint8, uint16, float32) so the result can be written back at that depth.

* :func:`_array_to_image` turns a decoded or user-given ``(H, W[, C])``
  array into an :class:`Image`, refusing odd shapes, channel counts and
  floats outside ``[0, 1]`` (:func:`_check_float_range`) with a one-line
  :class:`~restorekit.errors.UsageError`; :func:`image_from_array` is its
  public front for in-memory arrays.
* :func:`to_array` goes back: ``(C, H, W)`` floats (+ alpha) to an array
  ready to write.  :func:`output_suffix` picks the file type that keeps the
  source's depth; :func:`_unpremultiply` undoes associated alpha.

Nothing here reads or writes files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from .messages import _detail

_UINT8 = np.dtype(np.uint8)
_UINT16 = np.dtype(np.uint16)
_FLOAT32 = np.dtype(np.float32)
_BIT_DEPTH = {_UINT8: 8, _UINT16: 16, _FLOAT32: 32}
_SCALE = {_UINT8: 255.0, _UINT16: 65535.0}

# Float TIFF samples may exceed [0, 1] by rounding noise only; arrays handed
# to image_from_array may overshoot a little more (e.g. a network's output).
_FILE_FLOAT_SLACK = 1e-3
_ARRAY_FLOAT_SLACK = 0.05

_CHANNELS_HINT = (
    "restorekit reads 1 to 4 (gray, gray+alpha, RGB, RGBA): drop the extra channels"
)


# --------------------------------------------------------------------------
# The in-memory image


@dataclass
class Image:
    """A decoded image: float32 ``(C, H, W)`` samples in ``[0, 1]``.

    ``data`` has 1 (gray) or 3 (RGB) channels; transparency, when the source
    has it, lives in ``alpha`` as float32 ``(H, W)``.  ``dtype`` is the sample
    type of the source (uint8, uint16 or float32) and ``format`` what the file
    was read as ("png", "tiff", "jpeg"; "array" for in-memory arrays).
    ``notes`` are one-line remarks on what was read differently from the whole
    file, e.g. "the TIFF holds 5 pages; restorekit used the first".  ``page``
    is the page's place (0-based) in a TIFF stack read by
    :func:`~restorekit.io.read_pages`, else None.
    """

    data: np.ndarray
    alpha: np.ndarray | None
    dtype: np.dtype
    format: str
    path: Path | None = None
    notes: list[str] = field(default_factory=list)
    page: int | None = None

    def __post_init__(self) -> None:
        self.dtype = np.dtype(self.dtype)
        if self.path is not None and not isinstance(self.path, Path):
            self.path = Path(self.path)

    @property
    def channels(self) -> int:
        """Colour channels in ``data`` (1 or 3); alpha is not counted."""
        return int(self.data.shape[0])

    @property
    def height(self) -> int:
        return int(self.data.shape[1])

    @property
    def width(self) -> int:
        return int(self.data.shape[2])

    @property
    def bit_depth(self) -> int:
        """Bits per sample of the source: 8, 16 or 32 (float)."""
        return _BIT_DEPTH[self.dtype]


# --------------------------------------------------------------------------
# Arrays <-> Image


def _array_to_image(
    arr: np.ndarray, fmt: str, path: Path | None, *, slack: float, prefix: str
) -> Image:
    """(H, W[, C]) uint8/uint16/float32 -> Image; problems raise UsageError."""
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise UsageError(
            f"{prefix}unexpected array shape {tuple(arr.shape)}; expected H x W or H x W x C"
        )
    height, width, channels = arr.shape
    if height == 0 or width == 0:
        raise UsageError(f"{prefix}the image is empty ({width}x{height} pixels)")
    if channels == 0 or channels > 4:
        raise UsageError(f"{prefix}it has {channels} channels; {_CHANNELS_HINT}")
    dtype = arr.dtype
    if dtype == _FLOAT32:
        _check_float_range(arr, slack, prefix)
    planes = np.empty((channels, height, width), dtype=np.float32)
    moved = np.moveaxis(arr, -1, 0)
    if dtype in _SCALE:
        np.divide(moved, np.float32(_SCALE[dtype]), out=planes, casting="unsafe")
    else:
        np.clip(moved, 0.0, 1.0, out=planes)
    if channels in (2, 4):
        data, alpha = planes[:-1], planes[-1].copy()
        data = np.ascontiguousarray(data)
    else:
        data, alpha = planes, None
    return Image(data=data, alpha=alpha, dtype=dtype, format=fmt, path=path)


def _check_float_range(arr: np.ndarray, slack: float, prefix: str) -> None:
    finite = np.isfinite(arr)
    if not finite.all():
        raise UsageError(
            f"{prefix}it contains NaN or infinite values; restorekit expects floats in [0, 1]"
        )
    low, high = float(arr.min()), float(arr.max())
    if low < -slack or high > 1.0 + slack:
        raise UsageError(
            f"{prefix}float values range from {low:.4g} to {high:.4g}, but restorekit "
            "expects floats in [0, 1]: rescale the image to [0, 1]"
        )


def image_from_array(arr: np.ndarray) -> Image:
    """Wrap an ``HxW`` / ``HxWxC`` (C = 1..4) array as an :class:`Image`.

    uint8 and uint16 are scaled by their full range; floats must already be
    in ``[0, 1]`` (values slightly outside are clipped, values far outside
    raise :class:`UsageError`); bool arrays become 0/1 with dtype uint8.
    Two channels are gray+alpha, four RGBA.
    """
    prefix = "invalid image array: "
    try:
        a = np.asarray(arr)
    except Exception as exc:  # noqa: BLE001 - ragged lists and friends
        raise UsageError(f"{prefix}cannot convert it to an array ({_detail(exc)})") from None
    if a.ndim not in (2, 3) or (a.ndim == 3 and not 1 <= a.shape[2] <= 4):
        hint = ""
        if a.ndim == 3 and 1 <= a.shape[0] <= 4:
            hint = " (for a C x H x W array pass arr.transpose(1, 2, 0))"
        raise UsageError(
            f"{prefix}shape {tuple(a.shape)} is not H x W or H x W x C with C in 1..4{hint}"
        )
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * np.uint8(255)
    elif a.dtype.kind == "f":
        a = a.astype(np.float32, copy=False)
    elif a.dtype not in (_UINT8, _UINT16):
        raise UsageError(
            f"{prefix}dtype {a.dtype} is not supported; pass uint8, uint16 or floats "
            "in [0, 1] (e.g. arr.astype(np.uint8))"
        )
    return _array_to_image(a, "array", None, slack=_ARRAY_FLOAT_SLACK, prefix=prefix)


def to_array(data: np.ndarray, alpha: np.ndarray | None, dtype: Any) -> np.ndarray:
    """``(C, H, W)`` float in ``[0, 1]`` (+ alpha) -> an array ready to write.

    Returns ``HxW`` for one channel without alpha, otherwise ``HxWxC`` with the
    alpha appended as the last channel.  Values are clipped to ``[0, 1]``;
    integer types are scaled and rounded to nearest (NaN becomes 0).
    """
    dt = np.dtype(dtype)
    if dt not in (_UINT8, _UINT16, _FLOAT32):
        raise ValueError(f"to_array: dtype must be uint8, uint16 or float32, not {dt}")
    data = np.asarray(data)
    if data.ndim != 3 or data.shape[0] not in (1, 3):
        raise ValueError(f"to_array: data must be (C, H, W) with C 1 or 3, got {data.shape}")
    channels, height, width = data.shape
    total = channels
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.shape != (height, width):
            raise ValueError(
                f"to_array: alpha must be {(height, width)} to match data, got {alpha.shape}"
            )
        total += 1
    out = np.empty((height, width, total), dtype=np.float32)
    out[..., :channels] = np.moveaxis(data, 0, -1)
    if alpha is not None:
        out[..., channels] = alpha
    np.nan_to_num(out, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(out, 0.0, 1.0, out=out)
    if dt != _FLOAT32:
        out *= np.float32(_SCALE[dt])
        np.rint(out, out=out)
        out = out.astype(dt)
    return out[..., 0] if total == 1 else out


def _unpremultiply(image: Image) -> None:
    alpha = image.alpha
    assert alpha is not None
    with np.errstate(divide="ignore", invalid="ignore"):
        data = np.where(alpha > 0, image.data / alpha, 0.0)
    image.data = np.clip(data, 0.0, 1.0).astype(np.float32)


def output_suffix(image: Image) -> str:
    """``.tif`` for TIFF sources and float data, else ``.png`` (JPEG -> lossless PNG)."""
    if image.format == "tiff" or np.dtype(image.dtype) == _FLOAT32:
        return ".tif"
    return ".png"


def native_scale(dtype: Any) -> float | None:
    """The image's own full scale where it is not 0-255: 65535 for 16-bit samples, else None."""
    return 65535.0 if np.dtype(dtype) == np.dtype(np.uint16) else None
