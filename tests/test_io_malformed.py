"""restorekit.io against malformed, hostile and unusual image files.

Every case must end in a valid :class:`Image` or a one-line
:class:`UsageError`, never another exception.  The files are built here, in
memory, and kept tiny; the "bombs" declare a huge size in their header but
hold almost no data, so a reader that trusts the header before checking it
would try to allocate gigabytes.
"""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from restorekit.errors import UsageError
from restorekit.io import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, Image, max_pixels, read_image

BOMB = (20000, 20000)  # 400 million pixels, as in the reliability report


def _one_line_error(path: Path) -> str:
    """read_image(path) must raise UsageError with a one-line message; return it."""
    with pytest.raises(UsageError) as excinfo:
        read_image(path)
    message = str(excinfo.value)
    assert message and message.splitlines() == [message], repr(message)
    assert path.name in message, message
    return message


# --------------------------------------------------------------------------
# Building files by hand


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_bytes(
    width: int, height: int, *, depth: int = 8, colour: int = 0, rows: int | None = None
) -> bytes:
    """A PNG whose IHDR says width x height; IDAT holds ``rows`` zero rows.

    With ``rows`` below ``height`` the zlib stream stops early (sync flush, no
    end): a header-only bomb when the size is huge.
    """
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    row = b"\x00" + bytes((width * channels * depth + 7) // 8)  # filter byte + samples
    n = height if rows is None else rows
    packer = zlib.compressobj(9)
    payload = b"".join(packer.compress(row) for _ in range(n))
    payload += packer.flush(zlib.Z_FINISH if n == height else zlib.Z_SYNC_FLUSH)
    chunks = [_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))]
    if colour == 3:
        chunks.append(_chunk(b"PLTE", bytes(3 * 4)))
    chunks += [_chunk(b"IDAT", payload), _chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def tiff_bytes(
    width: int,
    height: int,
    *,
    bits: int = 8,
    samples: int = 1,
    compression: int = 1,
    photometric: int = 1,
    data: bytes = b"\x00" * 64,
    tile: tuple[int, int] | None = None,
) -> bytes:
    """A little-endian one-page TIFF with one strip (or tile) holding ``data``."""
    entries: list[tuple[int, int, int]] = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, bits),
        (259, 3, compression),
        (262, 3, photometric),
        (277, 3, samples),
    ]
    count = len(entries) + 3
    offset = 8 + 2 + 12 * count + 4  # the data follows the IFD
    if tile is None:
        entries += [(273, 4, offset), (278, 4, height), (279, 4, len(data))]
    else:
        entries += [(322, 4, tile[0]), (323, 4, tile[1]), (324, 4, offset)]
        entries += [(325, 4, len(data))]
        count += 1
        offset += 12
        entries = [(t, k, offset if t == 324 else v) for t, k, v in entries]
    ifd = struct.pack("<H", count)
    for tag, kind, value in sorted(entries):
        if kind == 3:
            ifd += struct.pack("<HHIHH", tag, kind, 1, value, 0)
        else:
            ifd += struct.pack("<HHII", tag, kind, 1, value)
    ifd += struct.pack("<I", 0)
    head = b"II*\x00" + struct.pack("<I", 8) + ifd
    assert len(head) == offset
    return head + data


def jpeg_bytes(width: int, height: int, *, mode: str = "L") -> bytes:
    """A real 8x8 JPEG whose SOF0 header is patched to say width x height."""
    buf = io.BytesIO()
    PILImage.new(mode, (8, 8), 128 if mode == "L" else (128,) * len(mode)).save(
        buf, format="JPEG", quality=90
    )
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------
# Decompression bombs: one pixel limit, checked from the header


BOMBS = {
    "bomb8.png": lambda: png_bytes(*BOMB, depth=8, rows=8),
    "bomb16.png": lambda: png_bytes(*BOMB, depth=16, rows=8),
    "bomb16rgba.png": lambda: png_bytes(*BOMB, depth=16, colour=6, rows=2),
    "bomb-palette.png": lambda: png_bytes(*BOMB, depth=8, colour=3, rows=8),
    "bomb.tif": lambda: tiff_bytes(*BOMB, bits=16, compression=8, data=zlib.compress(bytes(4000))),
    "bomb-raw.tif": lambda: tiff_bytes(*BOMB),
    "bomb-lzw.tif": lambda: tiff_bytes(*BOMB, compression=5),  # Pillow fallback path
    "bomb-tile.tif": lambda: tiff_bytes(16, 16, tile=(65536, 65536), compression=8,
                                        data=zlib.compress(bytes(4000))),
    "bomb.jpg": lambda: jpeg_bytes(*BOMB),
    "bomb-rgb.jpg": lambda: jpeg_bytes(*BOMB, mode="RGB"),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_bomb_is_refused_from_the_header(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    path = _write(tmp_path, name, BOMBS[name]())
    assert path.stat().st_size < 100_000
    tracemalloc.start()
    try:
        message = _one_line_error(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "decompression bomb" in message and MAX_PIXELS_ENV in message, message
    assert "over the limit of 179.0 million" in message, message
    if "tile" in name:
        assert "a tile of 65536x65536 = 4295.0 million pixels" in message, message
    else:
        assert "20000x20000 = 400.0 million pixels" in message, message
    assert peak < 32 * 2**20, f"{peak / 2**20:.0f} MiB allocated before refusing"


# A small header with a stream that inflates far past it: the pixel limit
# cannot see these; pypng and tifffile inflate a chunk or strip whole.

_ZEROS = 24 * 2**20  # inflated bytes; about 24 KB deflated


def _deflated_zeros(level: int = 9) -> bytes:
    packer = zlib.compressobj(level)
    return b"".join(packer.compress(bytes(2**20)) for _ in range(_ZEROS // 2**20)) + packer.flush()


def _png16_inflate_bomb(split: int = 1) -> bytes:
    stream = _deflated_zeros()
    step = -(-len(stream) // split)
    idats = [_chunk(b"IDAT", stream[i : i + step]) for i in range(0, len(stream), step)]
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", 10, 10, 16, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + ihdr + b"".join(idats) + _chunk(b"IEND", b"")


def _lzma_zeros() -> bytes:
    import lzma

    packer = lzma.LZMACompressor(preset=0)
    return b"".join(packer.compress(bytes(2**20)) for _ in range(_ZEROS // 2**20)) + packer.flush()


INFLATE_BOMBS = {
    "inflate16.png": _png16_inflate_bomb,
    "inflate16-split.png": lambda: _png16_inflate_bomb(split=7),
    "inflate.tif": lambda: tiff_bytes(10, 10, bits=16, compression=8, data=_deflated_zeros()),
    "inflate-old.tif": lambda: tiff_bytes(10, 10, compression=32946, data=_deflated_zeros(1)),
    "inflate-lzma.tif": lambda: tiff_bytes(10, 10, compression=34925, data=_lzma_zeros()),
    "inflate-tile.tif": lambda: tiff_bytes(16, 16, tile=(16, 16), compression=8,
                                           data=_deflated_zeros()),
}


@pytest.mark.parametrize("name", list(INFLATE_BOMBS))
def test_inflate_bomb_is_refused_without_inflating_it(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MAX_PIXELS_ENV, "none")  # not a matter of the pixel limit
    path = _write(tmp_path, name, INFLATE_BOMBS[name]())
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    try:
        message = _one_line_error(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "inflates to more" in message and "decompression bomb" in message, message
    assert peak < 8 * 2**20, f"{peak / 2**20:.0f} MiB allocated before refusing"


@pytest.mark.parametrize(
    "name,options",
    [
        ("deflate.tif", {"compression": "zlib"}),
        ("deflate-strips.tif", {"compression": "zlib", "rowsperstrip": 3}),
        ("deflate-tiles.tif", {"compression": "zlib", "tile": (16, 16)}),
        ("deflate-planar.tif", {"compression": "zlib", "planarconfig": "separate"}),
        ("lzma.tif", {"compression": "lzma"}),
        ("predictor.tif", {"compression": "zlib", "predictor": True}),
    ],
)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_compressed_tiffs_still_read(
    tmp_path: Path, name: str, options: dict, dtype: type
) -> None:
    import tifffile

    rng = np.random.default_rng(5)
    arr = (rng.random((37, 21, 3)) * (1 if dtype is np.float32 else np.iinfo(dtype).max))
    arr = arr.astype(dtype)
    if "predictor" in options and dtype is np.float32:
        pytest.skip("tifffile needs imagecodecs for the floating-point predictor")
    planar = options.get("planarconfig") == "separate"
    tifffile.imwrite(tmp_path / name, np.moveaxis(arr, -1, 0) if planar else arr,
                     photometric="rgb", **options)
    image = read_image(tmp_path / name)
    from restorekit.io import to_array

    np.testing.assert_array_equal(to_array(image.data, image.alpha, image.dtype), arr)


def test_default_limit_is_well_between_photos_and_bombs() -> None:
    assert 150_000_000 <= DEFAULT_MAX_PIXELS < BOMB[0] * BOMB[1] // 2


@pytest.mark.parametrize(
    "name,data",
    [
        ("small8.png", lambda: png_bytes(20, 20)),
        ("small16.png", lambda: png_bytes(20, 20, depth=16, colour=2)),
        ("small.tif", lambda: tiff_bytes(20, 20, data=bytes(400))),
        ("small-lzw.tif", lambda: _pillow_lzw_tiff(20, 20)),
        ("small.jpg", lambda: _real_jpeg(20, 20)),
    ],
)
def test_limit_follows_the_environment(
    tmp_path: Path, name: str, data, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, name, data())
    monkeypatch.setenv(MAX_PIXELS_ENV, "399")
    message = _one_line_error(path)
    assert "20x20 = 400 pixels is over the limit of 399" in message, message
    for value in ("400", "1_000", "none", "None", "0", " 400 ", ""):
        monkeypatch.setenv(MAX_PIXELS_ENV, value)
        image = read_image(path)
        assert (image.height, image.width) == (20, 20)


def _pillow_lzw_tiff(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    PILImage.new("L", (width, height), 7).save(buf, format="TIFF", compression="tiff_lzw")
    return buf.getvalue()


def _real_jpeg(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (width, height), (9, 99, 199)).save(buf, format="JPEG")
    return buf.getvalue()


def test_max_pixels_reads_the_environment_each_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    assert max_pixels() == DEFAULT_MAX_PIXELS
    monkeypatch.setenv(MAX_PIXELS_ENV, "250000000")
    assert max_pixels() == 250_000_000
    monkeypatch.setenv(MAX_PIXELS_ENV, "250_000_000")
    assert max_pixels() == 250_000_000
    for off in ("0", "none", "NONE", " none "):
        monkeypatch.setenv(MAX_PIXELS_ENV, off)
        assert max_pixels() is None
    monkeypatch.setenv(MAX_PIXELS_ENV, "  ")
    assert max_pixels() == DEFAULT_MAX_PIXELS


@pytest.mark.parametrize(
    "value", ["lots", "-1", "1.5e8", "2e8", "\uff11\uff10\uff10", "12 34", "inf", "9 px"]
)
def test_invalid_limit_is_a_usage_error(
    tmp_path: Path, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, "ok.png", png_bytes(4, 4))
    monkeypatch.setenv(MAX_PIXELS_ENV, value)
    for call in (max_pixels, lambda: read_image(path)):
        with pytest.raises(UsageError) as excinfo:
            call()
        message = str(excinfo.value)
        assert message.splitlines() == [message], repr(message)
        assert MAX_PIXELS_ENV in message and "'none'" in message, message


@pytest.mark.parametrize(
    "name,data",
    [
        ("p.png", lambda: png_bytes(20, 20)),
        ("p.jpg", lambda: _real_jpeg(20, 20)),
        ("p.tif", lambda: _pillow_lzw_tiff(20, 20)),
    ],
)
def test_pillow_limit_does_not_second_guess_ours(
    tmp_path: Path, name: str, data, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pillow refuses above 2 x MAX_IMAGE_PIXELS on its own; restorekit's limit
    # is the only one that counts while it decodes, and Pillow's is put back.
    path = _write(tmp_path, name, data())
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 50)
    image = read_image(path)
    assert isinstance(image, Image) and image.width == 20
    assert PILImage.MAX_IMAGE_PIXELS == 50
    monkeypatch.setenv(MAX_PIXELS_ENV, "100")
    assert "over the limit of 100" in _one_line_error(path)
    assert PILImage.MAX_IMAGE_PIXELS == 50
