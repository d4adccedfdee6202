"""Bytes <-> pixels: the PNG, TIFF and JPEG codecs, and the pixel limit.

* :func:`_decode` sniffs the format from the magic bytes (naming well-known
  formats restorekit does not read, :func:`_sniff_other`) and turns the bytes
  into an ``(H, W[, C])`` array.  16-bit PNGs go through ``pypng`` (Pillow
  squeezes 16-bit RGB to 8 bits), 1-8 bit PNGs and JPEGs through Pillow,
  TIFFs through ``tifffile`` (Pillow as a fallback for 8-bit TIFFs whose
  compression tifffile cannot decode without ``imagecodecs``).  Multi-frame
  files give their first frame and say so in the ``notes`` list;
  :func:`_decode_frames` with ``every_page`` gives every page of a TIFF
  stack (:func:`_decode_tiff_pages`).
* Every decoder checks the pixel count its header declares against one limit,
  :func:`max_pixels` (:data:`MAX_PIXELS_ENV`, default
  :data:`DEFAULT_MAX_PIXELS`), before it decodes anything; deflate/LZMA
  streams that pypng and tifffile would inflate whole are first checked
  against the header's size (:func:`_inflates_past`).  Pillow's own limit is
  switched off meanwhile (:func:`_pillow_limit_off`) and decoder warnings and
  log lines are kept off the terminal (:func:`_quiet_decoders`).
* Decoder problems are raised inside as :class:`_Problem` and leave
  :func:`_decode` as a one-line :class:`~restorekit.errors.UsageError`.
* :func:`_encode_png`, :func:`_encode_tiff` and :func:`_encode_jpeg` turn an
  array checked by :func:`_check_write_array` into the file's bytes.

Nothing here touches the file system.
"""

from __future__ import annotations

import contextlib
import io as _io
import logging
import math
import os
import re
import struct
import threading
import uuid
import warnings
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RestoreError, UsageError
from .image import _CHANNELS_HINT, _FLOAT32, _UINT8, _UINT16
from .messages import _detail, _one_line, _quote

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

_PNG_SUFFIXES = (".png",)
_TIFF_SUFFIXES = (".tif", ".tiff")
_JPEG_SUFFIXES = (".jpg", ".jpeg")


#: The most pixels (width x height) an input image may declare; see
#: :func:`max_pixels`.  It is Pillow's own error threshold (2 x its
#: ``MAX_IMAGE_PIXELS`` of 89.5 million), about 13380 x 13380: a
#: 20000 x 20000 bomb (400 million) is refused, a 100-150 megapixel photo is
#: not.  At this size the float32 RGB planes alone take 2 GiB and a deep
#: image prior fit needs many times that, so nothing realistic is turned away.
DEFAULT_MAX_PIXELS = 178_956_970

#: The environment variable that overrides :data:`DEFAULT_MAX_PIXELS`.
MAX_PIXELS_ENV = "RESTOREKIT_MAX_PIXELS"


class _Problem(Exception):
    """Internal: a decoding problem, turned into a UsageError by the caller."""


# --------------------------------------------------------------------------
# The pixel limit (decompression bombs)


def max_pixels() -> int | None:
    """The most pixels an input image may have; ``None`` means no limit.

    :data:`DEFAULT_MAX_PIXELS` unless the environment variable
    ``RESTOREKIT_MAX_PIXELS`` says otherwise (read on every call): a whole
    number of pixels (``250000000`` or ``250_000_000``), or ``0`` / ``none``
    for no limit.  Anything else raises :class:`UsageError`.  An empty value
    counts as unset.
    """
    raw = os.environ.get(MAX_PIXELS_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_MAX_PIXELS
    text = raw.strip()
    if text.lower() == "none":
        return None
    try:
        value = int(text) if text.isascii() else -1
    except ValueError:
        value = -1
    if value < 0:
        raise UsageError(
            f"{MAX_PIXELS_ENV}={_one_line(repr(raw), 60)} is not valid: give a whole number "
            "of pixels (e.g. 250000000), or 0 or 'none' for no limit"
        )
    return value or None


def _count(pixels: int) -> str:
    if pixels >= 100_000:
        return f"{pixels / 1e6:.1f} million"
    return str(pixels)


def _check_pixels(size: tuple[int, ...], limit: int | None, what: str = "") -> None:
    """Refuse a declared size over the limit, before anything is decoded."""
    pixels = 1
    for n in size:
        pixels *= max(1, int(n))
    if limit is None or pixels <= limit:
        return
    shape = "x".join(str(int(n)) for n in size)
    raise _Problem(
        f"{what}{shape} = {_count(pixels)} pixels is over the limit of {_count(limit)} "
        f"(a decompression bomb?); set {MAX_PIXELS_ENV} to raise it"
    )


def check_declared_size(size: tuple[int, ...], what: str) -> None:
    """Refuse, as a one-line :class:`UsageError`, a size that a file or an option *declares* (a model's
    canvas, ``--shape``) before anything of that size is allocated: its pixels (the product of ``size``,
    height by width) are held to the same :func:`max_pixels` as the pixels of an input image."""
    limit = max_pixels()
    pixels = 1
    for n in size:
        pixels *= max(1, int(n))
    if limit is not None and pixels > limit:
        shape = "x".join(str(int(n)) for n in size)
        raise UsageError(f"{what} is {shape} = {_count(pixels)} pixels, over the limit of {_count(limit)}; "
                         f"set {MAX_PIXELS_ENV} to raise it")


_PIL_LIMIT_LOCK = threading.Lock()
_pil_limit_users = 0
_pil_saved_limit: int | None = None


@contextlib.contextmanager
def _pillow_limit_off() -> Iterator[None]:
    """Switch Pillow's own bomb check off while restorekit decodes.

    The decoders check :func:`max_pixels` from the header themselves; a second
    limit in Pillow (``PIL.Image.MAX_IMAGE_PIXELS``) would refuse images that
    ``RESTOREKIT_MAX_PIXELS`` allows.  The previous value is put back when the
    last concurrent decode ends.
    """
    global _pil_limit_users, _pil_saved_limit
    from PIL import Image as PILImage

    with _PIL_LIMIT_LOCK:
        if _pil_limit_users == 0:
            _pil_saved_limit = PILImage.MAX_IMAGE_PIXELS
            PILImage.MAX_IMAGE_PIXELS = None
        _pil_limit_users += 1
    try:
        yield
    finally:
        with _PIL_LIMIT_LOCK:
            _pil_limit_users -= 1
            if _pil_limit_users == 0:
                PILImage.MAX_IMAGE_PIXELS = _pil_saved_limit


# --------------------------------------------------------------------------
# Decoding


def _sniff_other(data: bytes) -> str | None:
    """Name a well-known format we do not read, for a friendlier message."""
    head = data[:32]
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"BM") and head[6:10] == b"\x00\x00\x00\x00":
        return "BMP"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WebP"
    if head.startswith(b"8BPS"):
        return "Photoshop (PSD)"
    if head.startswith(b"\x76\x2f\x31\x01"):
        return "OpenEXR"
    if head.startswith((b"\x00\x00\x00\x0cjP  ", b"\xff\x4f\xff\x51")):
        return "JPEG 2000"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"):
        return "HEIF/HEIC"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return "AVIF"
    if head.startswith(b"\x93NUMPY"):
        return "NumPy .npy"
    return None


def _decode(
    data: bytes, path: Path, what: str, limit: int | None, notes: list[str]
) -> tuple[np.ndarray, str, bool]:
    """Bytes -> (H, W) or (H, W, C) array, the format name, premultiplied alpha?

    The first page or frame of a multi-frame file.  Remarks for
    :attr:`Image.notes` are appended to ``notes``.
    """
    frames, fmt = _decode_frames(data, path, what, limit, notes, every_page=False)
    arr, premultiplied = frames[0]
    return arr, fmt, premultiplied


def _decode_frames(
    data: bytes, path: Path, what: str, limit: int | None, notes: list[str], *, every_page: bool
) -> tuple[list[tuple[np.ndarray, bool]], str]:
    """Bytes -> [(array, premultiplied alpha?)] and the format name.

    With ``every_page``, a multi-page TIFF gives every full-resolution page
    (:func:`_decode_tiff_pages`: a stack, pages of one size and sample type);
    otherwise, and for every other format, the list holds the first page or
    frame only.
    """
    where = f"cannot read {what} {_quote(path)}"
    if data.startswith(_PNG_MAGIC):
        fmt, decoder = "png", _decode_png
    elif data.startswith(_TIFF_MAGICS):
        fmt, decoder = "tiff", _decode_tiff
    elif data.startswith(_JPEG_MAGIC):
        fmt, decoder = "jpeg", _decode_jpeg
    else:
        other = _sniff_other(data)
        if other is not None:
            raise UsageError(
                f"{where}: {other} files are not supported; convert it to PNG, TIFF or JPEG"
            )
        raise UsageError(f"{where}: not a PNG/TIFF/JPEG image (corrupt or unsupported)")
    try:
        with _quiet_decoders():
            if fmt == "tiff" and every_page:
                frames = _decode_tiff_pages(data, limit, notes)
            else:
                frames = [decoder(data, limit, notes)]
    except _Problem as exc:
        raise UsageError(f"{where}: {exc}") from None
    except UsageError:
        raise
    except MemoryError:
        raise RestoreError(f"{where}: not enough memory to decode it") from None
    except Exception as exc:  # noqa: BLE001 - decoders raise anything on bad input
        name = {"png": "PNG", "tiff": "TIFF", "jpeg": "JPEG"}[fmt]
        if type(exc).__name__ == "DecompressionBombError":
            raise UsageError(
                f"{where}: the image is too large to decode safely ({_one_line(exc)})"
            ) from None
        raise UsageError(
            f"{where}: corrupt or truncated {name} file ({_detail(exc)}); re-export the image"
        ) from None
    return frames, fmt


@contextlib.contextmanager
def _quiet_decoders() -> Iterator[None]:
    """Keep decoder chatter (warnings, tifffile's log lines) off the terminal.

    Whatever matters ends up in the one-line error message instead.
    """
    logger = logging.getLogger("tifffile")
    drop = _DropAll()
    logger.addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.removeFilter(drop)


class _DropAll(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


def _decode_png(data: bytes, limit: int | None, notes: list[str]) -> tuple[np.ndarray, bool]:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise _Problem("corrupt PNG file (no IHDR header); re-export the image")
    width, height, depth, colour_type = struct.unpack(">IIBB", data[16:26])
    if width == 0 or height == 0:
        raise _Problem(f"the image is empty ({width}x{height} pixels)")
    _check_pixels((width, height), limit)
    frames = _png_frames(data)
    if frames > 1:
        notes.append(f"the PNG is animated ({frames} frames); restorekit used the first")
    if depth == 16:
        # pypng inflates each IDAT chunk whole: bound the stream first.
        channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour_type, 4)
        raw = height * (1 + (width * channels * depth + 7) // 8)
        budget = raw + 16 * height + 4096  # Adam7 passes add filter bytes
        if _inflates_past(_png_idat(data), "zlib", budget):
            raise _Problem(
                "corrupt PNG file: its image data inflates to more than the header's "
                f"{width}x{height} pixels hold (a decompression bomb?)"
            )
        return _decode_png16(data), False
    return _decode_pillow(data, "PNG", limit, notes), False


def _png_idat(data: bytes) -> Iterator[memoryview]:
    """The payloads of a PNG's IDAT chunks, as far as the chunk layout is sound."""
    view = memoryview(data)
    pos = 8
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IDAT":
            yield view[pos + 8 : min(pos + 8 + length, len(data))]
        elif kind == b"IEND":
            return
        pos += 12 + length


def _inflates_past(streams: Iterable[memoryview], codec: str, budget: int) -> bool:
    """Whether the zlib or LZMA stream split over ``streams`` inflates to more
    than ``budget`` bytes.  Inflates in 1 MiB pieces that are thrown away, so
    memory stays small whatever the stream holds; a broken stream counts as
    not too long (the decoder reports it)."""
    import lzma

    step = 1 << 20
    total = 0
    inflater: Any = zlib.decompressobj() if codec == "zlib" else lzma.LZMADecompressor()
    try:
        for stream in streams:
            if codec == "zlib":
                buf: Any = stream
                while buf and not inflater.eof:
                    total += len(inflater.decompress(buf, step))
                    if total > budget:
                        return True
                    buf = inflater.unconsumed_tail
            else:
                piece = inflater.decompress(stream, step)
                while True:
                    total += len(piece)
                    if total > budget:
                        return True
                    if inflater.eof or inflater.needs_input:
                        break
                    piece = inflater.decompress(b"", step)
            if inflater.eof:
                break
        if codec == "zlib":
            total += len(inflater.flush())
    except (zlib.error, lzma.LZMAError, EOFError, ValueError):
        return False
    return total > budget


def _png_frames(data: bytes) -> int:
    """How many frames an animated PNG declares (acTL); 1 for a still PNG.

    Looks at the chunks before the image data only, and never raises: a
    damaged file is the decoder's to report.
    """
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"acTL":
            if length >= 8 and pos + 12 <= len(data):
                return max(1, struct.unpack(">I", data[pos + 8 : pos + 12])[0])
            return 1
        if kind in (b"IDAT", b"IEND"):
            return 1
        pos += 12 + length
    return 1


def _decode_png16(data: bytes) -> np.ndarray:
    import png  # pypng

    reader = png.Reader(bytes=data)
    width, height, rows, info = reader.read()
    planes = int(info["planes"])
    out = np.empty((height, width * planes), dtype=np.uint16)
    count = 0
    for row in rows:
        if count >= height:
            raise _Problem("corrupt PNG file (more rows than the header says); re-export the image")
        out[count] = np.frombuffer(row, dtype=np.uint16)  # array('H'): native order
        count += 1
    if count != height:
        raise _Problem("truncated PNG file (missing rows); re-export the image")
    arr = out.reshape(height, width, planes)
    key = info.get("transparent")
    if key is not None and not info.get("alpha"):
        # tRNS on a 16-bit gray/RGB image: one colour is fully transparent.
        hit = np.all(arr == np.asarray(key, dtype=np.uint16), axis=-1)
        alpha = np.where(hit, np.uint16(0), np.uint16(65535)).astype(np.uint16)
        arr = np.concatenate([arr, alpha[..., None]], axis=-1)
    return arr


def _decode_pillow(
    data: bytes, fmt: str, limit: int | None, notes: list[str], frame: int = 0
) -> np.ndarray:
    from PIL import Image as PILImage
    from PIL import ImageOps

    with _pillow_limit_off(), PILImage.open(_io.BytesIO(data), formats=[fmt]) as im:
        _check_pixels(im.size, limit)  # opening reads the header only
        frames = int(getattr(im, "n_frames", 1) or 1)
        if fmt == "JPEG" and frames > 1:  # MPO: stereo pairs, camera previews
            notes.append(f"the JPEG holds {frames} images (MPO); restorekit used the first")
        if frame:
            im.seek(frame)  # a later page of a multi-page TIFF (read_pages)
            _check_pixels(im.size, limit)
        im.load()  # first frame of APNG / MPO
        if fmt == "JPEG":
            # The written result carries no EXIF, so bake the orientation in.
            im = ImageOps.exif_transpose(im)
        return _pillow_to_array(im)


def _pillow_to_array(im: Any) -> np.ndarray:
    mode = im.mode
    has_trns = "transparency" in im.info
    if mode == "1":
        im = im.convert("L")
    elif mode == "P":
        im = im.convert("RGBA" if has_trns else "RGB")
    elif mode == "PA":
        im = im.convert("RGBA")
    elif mode == "L" and has_trns:
        im = im.convert("LA")
    elif mode == "RGB" and has_trns:
        im = im.convert("RGBA")
    elif mode == "La":
        im = im.convert("LA")
    elif mode == "RGBa":
        im = im.convert("RGBA")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        im = im.convert("RGB")
    elif mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.array(im, dtype=np.uint16)
    elif mode == "F":
        return np.array(im, dtype=np.float32)
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        raise _Problem(f"unsupported pixel mode {mode!r}; convert it to 8-bit gray or RGB(A)")
    return np.array(im, dtype=np.uint8)


def _decode_jpeg(data: bytes, limit: int | None, notes: list[str]) -> tuple[np.ndarray, bool]:
    return _decode_pillow(data, "JPEG", limit, notes), False


def _decode_tiff(data: bytes, limit: int | None, notes: list[str]) -> tuple[np.ndarray, bool]:
    """The first page of a TIFF (a note says when it holds more)."""
    import tifffile

    with tifffile.TiffFile(_io.BytesIO(data)) as tif:
        pages = len(tif.pages)
        if pages == 0:
            raise _Problem("the TIFF file holds no image")
        arr, premultiplied = _tiff_page(tif.pages.get(0), 0, data, limit, notes)
    if pages > 1:
        notes.append(f"the TIFF holds {pages} pages; restorekit used the first")
    return arr, premultiplied


def _decode_tiff_pages(data: bytes, limit: int | None, notes: list[str]) -> list[tuple[np.ndarray, bool]]:
    """Every full-resolution page of a TIFF: a z-stack or time series, pages of one size, channel count
    and sample type (anything else is refused in one line before a page is decoded).  Reduced-resolution
    pages (thumbnails, pyramid levels: NewSubfileType bit 0) are left out, with a note.  The pixel limit
    holds the pages together: a stack's pixels are held in memory at once."""
    import tifffile

    with tifffile.TiffFile(_io.BytesIO(data)) as tif:
        count = len(tif.pages)
        if count == 0:
            raise _Problem("the TIFF file holds no image")
        pages = [(i, tif.pages.get(i)) for i in range(count)]
        full = [(i, p) for i, p in pages if not getattr(p, "is_reduced", False)] or pages[:1]
        if len(full) < count:
            skipped = count - len(full)
            notes.append(f"the TIFF holds {count} pages; {skipped} reduced-resolution "
                         f"page{'s' if skipped > 1 else ''} (a thumbnail or pyramid level) left out")
        first = _page_kind(full[0][1])
        for i, page in full[1:]:
            kind = _page_kind(page)
            if kind != first:
                raise _Problem(
                    f"its pages differ (page {full[0][0] + 1} is {_describe_kind(first)} and page {i + 1} "
                    f"{_describe_kind(kind)}); restorekit restores a stack of pages of one size, channel count "
                    "and sample type: split the file"
                )
        if len(full) > 1:
            width, height = int(full[0][1].imagewidth), int(full[0][1].imagelength)
            _check_pixels((width, height, len(full)), limit, f"a stack of {len(full)} pages: ")
        out = [_tiff_page(page, i, data, limit, notes) for i, page in full]
    shapes = {(a.shape, a.dtype) for a, _ in out}
    if len(shapes) > 1:  # the headers agreed; the decoded pages did not (an odd layout)
        raise _Problem("its pages decode to arrays of different shapes or types; split the file")
    return out


def _page_kind(page: Any) -> tuple:
    """What pages of one stack share: width, height, samples, bits, sample format, photometric."""
    return (int(page.imagewidth), int(page.imagelength), int(page.samplesperpixel), int(page.bitspersample),
            int(getattr(page, "sampleformat", 1) or 1), int(page.photometric))


def _describe_kind(kind: tuple) -> str:
    width, height, samples, bits, sampleformat, _ = kind
    sort = {1: "uint", 2: "int", 3: "float"}.get(sampleformat, f"sample format {sampleformat} ")
    return f"{width}x{height} with {samples} channel{'s' if samples > 1 else ''} of {sort}{bits}"


def _tiff_page(page: Any, index: int, data: bytes, limit: int | None, notes: list[str]) -> tuple[np.ndarray, bool]:
    """One TIFF page (``index`` in the file) -> (H, W) or (H, W, C) array, premultiplied alpha?"""
    width, height = int(page.imagewidth), int(page.imagelength)
    if width == 0 or height == 0:
        raise _Problem(f"the image is empty ({width}x{height} pixels)")
    depth = int(getattr(page, "imagedepth", 1) or 1)
    _check_pixels((width, height) if depth == 1 else (width, height, depth), limit)
    if page.is_tiled:  # each tile is decoded whole, even past the image's edge
        tile = (int(page.tilewidth), int(page.tilelength))
        tile_depth = int(getattr(page, "tiledepth", 1) or 1)
        _check_pixels(tile if tile_depth == 1 else (*tile, tile_depth), limit, "a tile of ")
    photometric = int(page.photometric)
    bits = int(page.bitspersample)
    extras = tuple(int(e) for e in (page.extrasamples or ()))
    samples = int(page.samplesperpixel)
    if samples > 4:  # refused after decoding anyway; 65535 of them fill the memory
        raise _Problem(f"it has {samples} channels; {_CHANNELS_HINT}")
    _check_tiff_streams(page, data)
    try:
        arr = page.asarray()
    except Exception as exc:
        if "imagecodecs" not in str(exc):
            raise
        # tifffile needs imagecodecs for LZW, PackBits, JPEG, ... Pillow
        # (libtiff) decodes those losslessly at 1 and 8 bits per sample.
        if bits in (1, 8):
            return _decode_pillow(data, "TIFF", limit, notes, frame=index), False
        name = getattr(page.compression, "name", str(page.compression))
        raise _Problem(
            f"{name}-compressed {bits}-bit TIFF needs the 'imagecodecs' package "
            "(pip install imagecodecs), or re-save it uncompressed or with deflate"
        ) from None
    axes = str(page.axes)
    colormap = page.colormap if photometric == 3 else None

    arr = _tiff_layout(arr, axes)
    # Photometric interpretations (TIFF 6.0): 0 min-is-white, 1 min-is-black,
    # 2 RGB, 3 palette, 5 separated (CMYK), 6 YCbCr.
    if photometric == 0:
        arr = _invert_first_channel(arr)
    elif photometric == 3:
        arr = _apply_colormap(arr, colormap)
    elif photometric == 5:
        raise _Problem("CMYK (separated) TIFFs are not supported; convert it to RGB")
    elif photometric == 6:
        pass  # tifffile hands out RGB for JPEG-compressed YCbCr
    elif photometric not in (1, 2):
        raise _Problem(
            f"TIFF photometric interpretation {photometric} is not supported; "
            "convert it to gray or RGB"
        )

    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * np.uint8(255)
    elif arr.dtype.kind == "f" and arr.dtype != _FLOAT32:
        arr = arr.astype(np.float32)
    elif arr.dtype not in (_UINT8, _UINT16, _FLOAT32):
        raise _Problem(
            f"TIFF samples of type {arr.dtype} are not supported; "
            "restorekit reads uint8, uint16 and float32: convert the image"
        )
    premultiplied = bool(extras) and extras[0] == 1  # 1 = associated alpha
    return arr, premultiplied


# TIFF compressions tifffile inflates with the standard library, each strip
# or tile whole: Adobe deflate, old-style deflate, LZMA.
_TIFF_INFLATE = {8: "zlib", 32946: "zlib", 34925: "lzma"}


def _check_tiff_streams(page: Any, data: bytes) -> None:
    """Refuse a deflate or LZMA strip (or tile) that inflates past its size.

    A few megabytes of deflated zeros inflate to gigabytes, even in a strip of
    a small image; the header check cannot see that.
    """
    codec = _TIFF_INFLATE.get(int(page.compression))
    if codec is None:
        return
    try:
        budget = math.prod(int(n) for n in page.chunks) * np.dtype(page.dtype).itemsize + 4096
        segments = list(zip(page.dataoffsets, page.databytecounts))
    except (AttributeError, TypeError, ValueError):
        return  # tifffile cannot say: let it decode (or fail) as before
    view = memoryview(data)
    for offset, count in segments:
        offset, count = int(offset), int(count)
        if count <= 0 or not 0 <= offset < len(data):
            continue
        if _inflates_past([view[offset : offset + count]], codec, budget):
            raise _Problem(
                "corrupt TIFF file: a strip or tile inflates to more data than the "
                "header allows (a decompression bomb?)"
            )


def _tiff_layout(arr: np.ndarray, axes: str) -> np.ndarray:
    """Reduce a page's array to (H, W) or (H, W, S)."""
    if len(axes) == arr.ndim and "Y" in axes and "X" in axes:
        index = tuple(slice(None) if a in "YXS" else 0 for a in axes)
        arr = arr[index]
        kept = [a for a in axes if a in "YXS"]
        return np.transpose(arr, [kept.index(a) for a in "YXS" if a in kept])
    # Unexpected axes: planar (C, H, W) with few channels -> (H, W, C).
    if arr.ndim == 3 and arr.shape[0] <= 4 < arr.shape[2]:
        return np.moveaxis(arr, 0, -1)
    return arr


def _invert_first_channel(arr: np.ndarray) -> np.ndarray:
    arr = np.array(arr)
    colour = arr if arr.ndim == 2 else arr[..., 0]
    if arr.dtype == np.bool_:
        colour[...] = ~colour
    elif arr.dtype.kind == "u":
        colour[...] = np.iinfo(arr.dtype).max - colour
    elif arr.dtype.kind == "f":
        colour[...] = 1.0 - colour
    else:
        raise _Problem(f"min-is-white TIFF with {arr.dtype} samples is not supported")
    return arr


def _apply_colormap(arr: np.ndarray, colormap: np.ndarray | None) -> np.ndarray:
    if colormap is None or arr.ndim != 2 or arr.dtype.kind != "u":
        raise _Problem("unsupported palette TIFF; convert it to RGB")
    cmap = np.asarray(colormap)
    if cmap.ndim != 2 or cmap.shape[0] != 3 or int(arr.max()) >= cmap.shape[1]:
        raise _Problem("corrupt palette TIFF (colour index outside the palette)")
    rgb = np.moveaxis(cmap[:, arr], 0, -1).astype(np.uint16)
    if int(cmap.max()) <= 255:  # writers that ignore the 16-bit convention
        return rgb.astype(np.uint8)
    if not np.any(cmap % 257):
        return (rgb // 257).astype(np.uint8)
    if not np.any(cmap % 256):
        return (rgb >> 8).astype(np.uint8)
    return rgb


# --------------------------------------------------------------------------
# Encoding


def _check_write_array(array: np.ndarray) -> np.ndarray:
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (2, 3, 4)):
        raise ValueError(f"write_image: expected H x W or H x W x C (C 1..4), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"write_image: cannot write an empty image {arr.shape}")
    if arr.dtype not in (_UINT8, _UINT16, _FLOAT32):
        raise ValueError(f"write_image: dtype must be uint8, uint16 or float32, not {arr.dtype}")
    return np.ascontiguousarray(arr)


def _encode_png(arr: np.ndarray) -> bytes:
    if arr.dtype == _FLOAT32:
        raise ValueError("write_image: PNG cannot hold float32 samples; write .tif or convert")
    buf = _io.BytesIO()
    if arr.dtype == _UINT16:
        import png  # pypng: Pillow mangles 16-bit RGB(A)

        height, width = arr.shape[:2]
        channels = 1 if arr.ndim == 2 else arr.shape[2]
        writer = png.Writer(
            width=width,
            height=height,
            greyscale=channels in (1, 2),
            alpha=channels in (2, 4),
            bitdepth=16,
            compression=6,
        )
        packed = arr.astype(">u2").reshape(height, width * channels)
        writer.write_packed(buf, (row.tobytes() for row in packed))
    else:
        from PIL import Image as PILImage

        PILImage.fromarray(arr).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _tiff_options(arr: np.ndarray) -> dict[str, Any]:
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    options: dict[str, Any] = {
        "photometric": "minisblack" if channels in (1, 2) else "rgb",
        "compression": "zlib",  # deflate: stdlib, lossless, read everywhere
        "metadata": None,
    }
    if channels > 1:
        options["planarconfig"] = "contig"
    if channels in (2, 4):
        options["extrasamples"] = ["unassalpha"]
    return options


def _encode_tiff(arr: np.ndarray) -> bytes:
    return _encode_tiff_pages([arr])


def _encode_tiff_pages(pages: list[np.ndarray], calibration: dict[str, Any] | None = None) -> bytes:
    """Pages checked by :func:`_check_write_array` -> one TIFF, a page each (BigTIFF past 4 GB).

    ``calibration`` (:func:`read_tiff_calibration`'s) puts back the source's OME-XML where it describes
    the pages (:func:`ome_difference`; then nothing of ImageJ's), the source's pixel size and, where the
    pages can be an ImageJ stack (under 4 GB; uint8, uint16 or float32, colour only as uint8 RGB),
    its ImageJ axes and calibration (spacing, unit, frame interval); such a file is written
    uncompressed, as ImageJ writes it."""
    import tifffile

    big = sum(a.nbytes for a in pages) > 2**32 - 2**25
    cal = _resized_calibration(calibration or {}, pages[0].shape[:2])
    res = {k: cal[k] for k in ("resolution", "resolutionunit") if cal.get(k) is not None}
    buf = _io.BytesIO()
    if cal.get("ome") and ome_difference(cal, pages) is None:
        # the source's OME-XML, which describes these pages exactly (a new UUID: another file), on page 1
        description = _OME_UUID.sub(f'\\1"urn:uuid:{uuid.uuid4()}"', cal["ome"], count=1)
        with tifffile.TiffWriter(buf, bigtiff=big) as tif:
            for k, arr in enumerate(pages):
                tif.write(arr, **_tiff_options(arr), **res, description=description.encode("utf-8") if k == 0 else None)
        return buf.getvalue()
    imagej = cal.get("imagej")
    if imagej and not big and _imagej_writable(pages, imagej.get("axes", "")):
        colour = pages[0].ndim == 3
        meta = {**imagej, "axes": imagej.get("axes", "ZYX") + ("S" if colour else "")}
        with tifffile.TiffWriter(buf, imagej=True) as tif:
            tif.write(np.stack(pages), photometric="rgb" if colour else "minisblack", metadata=meta, **res)
        return buf.getvalue()
    with tifffile.TiffWriter(buf, bigtiff=big) as tif:
        for arr in pages:
            tif.write(arr, **_tiff_options(arr), **res)
    return buf.getvalue()


def _resized_calibration(cal: dict[str, Any], shape: tuple[int, int]) -> dict[str, Any]:
    """``cal`` for pages of ``shape`` (H, W): where the source's pages had another size (super-resolution, or
    the low-resolution observation of a benchmark), its pixels per unit (resolution tags) and ImageJ's
    origin in pixels scaled with the side, so that a pixel's size in microns stays true."""
    size = cal.get("size")
    if not size or tuple(size) == tuple(shape):
        return cal
    fy, fx = shape[0] / size[0], shape[1] / size[1]
    out = dict(cal)
    if cal.get("resolution") is not None:
        out["resolution"] = tuple(_number(v) * f for v, f in zip(cal["resolution"], (fx, fy)))
    if cal.get("imagej"):
        meta = dict(cal["imagej"])
        for key, f in (("xorigin", fx), ("yorigin", fy)):
            if isinstance(meta.get(key), (int, float)):
                meta[key] = meta[key] * f
        out["imagej"] = meta
    return out


def _number(value: Any) -> float:
    """A TIFF rational (numerator, denominator) or a number, as a float."""
    if isinstance(value, (tuple, list)):
        return float(value[0]) / float(value[1]) if float(value[1]) else 0.0
    return float(value)


_OME_UUID = re.compile(r'(<OME\b[^>]*?\bUUID=)"[^"]*"')
#: OME pixel types restorekit writes, by NumPy dtype
_OME_TYPES = {"uint8": "uint8", "uint16": "uint16", "float32": "float"}


def ome_difference(calibration: dict[str, Any] | None, pages: Any) -> str | None:
    """Why the source's OME-XML (``calibration["ome"]``, :func:`read_tiff_calibration`) does not describe
    ``pages`` (a stack, or a list of ``(H, W[, C])`` arrays) as they will be written, one page per plane:
    another size, sample type or count of planes, several images, planes in other files.  None when it
    describes them (or there is none), and the XML can go with them as it is."""
    import xml.etree.ElementTree as ET

    xml = (calibration or {}).get("ome")
    if not xml:
        return None
    try:
        root = ET.fromstring(xml.encode("utf-8") if isinstance(xml, str) else xml)
    except ET.ParseError:
        return "the input's OME-XML cannot be read"
    local = [(el.tag.rsplit("}", 1)[-1], el) for el in root.iter()]
    pixels = [el for tag, el in local if tag == "Pixels"]
    if len(pixels) != 1:
        return f"the input's OME-XML describes {len(pixels)} images"
    if any(tag == "UUID" and el.get("FileName") for tag, el in local):
        return "the input's OME-XML places planes in other files"
    px = pixels[0]
    first = np.asarray(pages[0])
    height, width = first.shape[:2]
    samples = 1 if first.ndim == 2 else int(first.shape[2])
    try:
        size = {k: int(px.get(k, "1")) for k in ("SizeX", "SizeY", "SizeC", "SizeZ", "SizeT")}
    except ValueError:
        return "the input's OME-XML has a size that is not a number"
    if (size["SizeX"], size["SizeY"]) != (width, height):
        return f"it describes {size['SizeX']}x{size['SizeY']} pixels and the result is {width}x{height}"
    kind = _OME_TYPES.get(str(first.dtype))
    if px.get("Type") != kind:
        return f"it describes {px.get('Type')} samples and the result holds {first.dtype}"
    planes = size["SizeZ"] * size["SizeT"] * size["SizeC"]
    if size["SizeC"] % samples or planes // samples != len(pages):
        return f"it describes {planes} planes ({samples} sample(s) a pixel) and the result has {len(pages)} pages"
    return None


#: the ImageJ entries a restored stack keeps: its axes and calibration (not display ranges, LUTs or ROIs)
IMAGEJ_KEYS = ("spacing", "unit", "finterval", "fps", "xorigin", "yorigin", "zorigin", "loop")


def read_tiff_calibration(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The calibration of a TIFF stack: its pixel size (resolution tags), for an ImageJ file its stack axis
    and :data:`IMAGEJ_KEYS`, for an OME-TIFF its OME-XML (``ome``: pixel sizes, axes, channel names and
    the rest, kept where it still describes the result, :func:`ome_difference`); None for a file that is
    not a readable TIFF or has none of these.
    A restored stack is written with it (:func:`~restorekit.io.write_stack`), so that the voxel size
    and frame interval a microscope recorded survive the restoration."""
    import tifffile

    try:
        with _quiet_decoders(), tifffile.TiffFile(os.fspath(path)) as tif:
            page = tif.pages.first
            tags = page.tags
            out: dict[str, Any] = {}
            if "XResolution" in tags and "YResolution" in tags:
                out["resolution"] = (tags["XResolution"].value, tags["YResolution"].value)
                unit = tags.get("ResolutionUnit")
                out["resolutionunit"] = None if unit is None else int(unit.value)
            if tif.is_ome and tif.ome_metadata:
                out["ome"] = tif.ome_metadata  # written back where it describes the result (ome_difference)
            meta = tif.imagej_metadata
            axes = tif.series[0].axes if tif.series else ""
            if meta and len(axes.replace("S", "")) == 3 and axes[0] in "ZTCQI":
                # one stack axis (z, time or channel): a hyperstack (ZCYX, TZYX, ...) is read as a flat list
                # of pages, so only its pixel size is kept
                kept = {k: meta[k] for k in IMAGEJ_KEYS if k in meta}
                out["imagej"] = {"axes": axes[0].replace("Q", "Z").replace("I", "Z") + "YX", **kept}
            if out:
                out["size"] = (int(page.imagelength), int(page.imagewidth))  # the pages the pixel size is for
    except Exception:  # noqa: BLE001 - calibration is kept when it can be read; the pixels were read already
        return None
    return out or None


def _imagej_writable(pages: list[np.ndarray], axes: str) -> bool:
    dtype = pages[0].dtype
    if pages[0].ndim == 3:  # colour: ImageJ holds RGB as uint8 only, no alpha
        return dtype == _UINT8 and pages[0].shape[2] == 3
    return dtype in (_UINT8, _UINT16, _FLOAT32) and len(axes) == 3


def _encode_jpeg(arr: np.ndarray) -> bytes:
    if arr.dtype != _UINT8:
        raise ValueError(f"write_image: JPEG holds uint8 samples only, not {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        raise ValueError("write_image: JPEG cannot hold alpha; write .png or drop the alpha")
    from PIL import Image as PILImage

    buf = _io.BytesIO()
    PILImage.fromarray(arr).save(buf, format="JPEG", quality=95, subsampling=0)
    return buf.getvalue()
