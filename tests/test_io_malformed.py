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


# --------------------------------------------------------------------------
# A corpus of malformed and unusual files: an Image or a one-line UsageError


def _outcome(path: Path) -> Image | str:
    """read_image(path): a checked Image, or the UsageError's (one-line) message.

    Any other exception propagates and fails the test.
    """
    try:
        image = read_image(path)
    except UsageError as exc:
        message = str(exc)
        assert message.splitlines() == [message] and message.isprintable(), repr(message)
        assert message.startswith("cannot read image "), message
        assert " object at 0x" not in message, message  # no repr of Python objects
        return message
    assert isinstance(image, Image)
    assert image.data.dtype == np.float32 and image.data.ndim == 3
    assert image.channels in (1, 3) and image.height >= 1 and image.width >= 1
    assert np.isfinite(image.data).all()
    assert image.data.min() >= 0.0 and image.data.max() <= 1.0
    if image.alpha is not None:
        assert image.alpha.shape == (image.height, image.width)
        assert image.alpha.min() >= 0.0 and image.alpha.max() <= 1.0
    assert image.dtype in (np.uint8, np.uint16, np.float32)
    assert all(isinstance(n, str) and n.splitlines() == [n] for n in image.notes)
    return image


def _pillow(mode: str, fmt: str, size: tuple[int, int] = (7, 5), **save: object) -> bytes:
    rng = np.random.default_rng(len(mode) + len(fmt))
    bands = len(PILImage.new(mode, (1, 1)).getbands())
    arr = rng.integers(0, 256, size=(size[1], size[0], bands), dtype=np.uint8)
    im = PILImage.fromarray(arr[..., 0] if bands == 1 else arr, mode="RGB" if bands == 3 else None)
    if im.mode != mode:
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **save)
    return buf.getvalue()


def _tifffile(arr: np.ndarray, **options: object) -> bytes:
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, **options)
    return buf.getvalue()


def _png16(shape: tuple[int, ...]) -> bytes:
    import png

    arr = np.random.default_rng(3).integers(0, 65536, size=shape, dtype=np.uint16)
    planes = 1 if arr.ndim == 2 else arr.shape[2]
    buf = io.BytesIO()
    png.Writer(shape[1], shape[0], greyscale=planes in (1, 2), alpha=planes in (2, 4),
               bitdepth=16).write(buf, arr.reshape(shape[0], -1).tolist())
    return buf.getvalue()


def _float_tiff(value: float) -> bytes:
    arr = np.full((5, 7), 0.5, dtype=np.float32)
    arr[2, 3] = value
    return _tifffile(arr)


def _tiff_ifd_loop() -> bytes:
    data = bytearray(tiff_bytes(4, 4, data=bytes(16)))
    count = struct.unpack("<H", data[8:10])[0]
    data[10 + 12 * count : 14 + 12 * count] = struct.pack("<I", 8)  # next IFD: itself
    return bytes(data)


FULL = {  # tiny valid files of each kind, the seeds of the truncations
    "png8": lambda: _pillow("RGB", "PNG"),
    "png16": lambda: _png16((5, 7, 3)),
    "tiff8": lambda: _tifffile(np.arange(105, dtype=np.uint8).reshape(5, 7, 3),
                               photometric="rgb", compression="zlib"),
    "tiff16": lambda: _tifffile(np.arange(35, dtype=np.uint16).reshape(5, 7) * 1000),
    "jpeg": lambda: _pillow("RGB", "JPEG"),
}

CASES: dict[str, tuple[object, str | None]] = {
    # name: (bytes factory, expected: "image", a substring of the error, or None = either)
    "empty.png": (lambda: b"", "the file is empty (0 bytes)"),
    "magic-only.png": (lambda: b"\x89PNG\r\n\x1a\n", "corrupt PNG file"),
    "magic-only.tif": (lambda: b"II*\x00", "corrupt or truncated TIFF file"),
    "magic-only.jpg": (lambda: b"\xff\xd8\xff", "corrupt or truncated JPEG file"),
    "zero-width.png": (lambda: png_bytes(0, 5), "the image is empty (0x5 pixels)"),
    "zero-height.png": (lambda: png_bytes(5, 0), "the image is empty (5x0 pixels)"),
    "zero-width16.png": (lambda: png_bytes(0, 5, depth=16), "the image is empty"),
    "zero-width.tif": (lambda: tiff_bytes(0, 5), "the image is empty"),
    "zero-height.tif": (lambda: tiff_bytes(5, 0), "the image is empty"),
    "zero-height.jpg": (lambda: jpeg_bytes(8, 0), None),
    "zero-width.jpg": (lambda: jpeg_bytes(0, 8), None),
    "palette.png": (lambda: _pillow("P", "PNG"), "image"),
    "palette-trns.png": (lambda: _pillow("P", "PNG", transparency=3), "image"),
    "palette-4bit.png": (lambda: _pillow("P", "PNG", bits=4), "image"),
    "gray.png": (lambda: _pillow("L", "PNG"), "image"),
    "gray-alpha.png": (lambda: _pillow("LA", "PNG"), "image"),
    "gray-trns.png": (lambda: _pillow("L", "PNG", transparency=9), "image"),
    "gray-1bit.png": (lambda: _pillow("1", "PNG"), "image"),
    "gray16.png": (lambda: _png16((5, 7)), "image"),
    "gray-alpha16.png": (lambda: _png16((5, 7, 2)), "image"),
    "rgba16.png": (lambda: _png16((5, 7, 4)), "image"),
    "interlaced.png": (lambda: _pillow("RGB", "PNG", interlace=1), None),
    "cmyk.jpg": (lambda: _pillow("CMYK", "JPEG"), "image"),
    "cmyk.tif": (lambda: _tifffile(np.zeros((5, 7, 4), np.uint8), photometric="separated"),
                 "CMYK (separated) TIFFs are not supported; convert it to RGB"),
    "cmyk-pillow.tif": (lambda: _pillow("CMYK", "TIFF"), "CMYK (separated) TIFFs"),
    "multipage.tif": (lambda: _tifffile(np.zeros((4, 5, 7), np.uint8), photometric="minisblack"),
                      "image"),
    "bigtiff.tif": (lambda: _tifffile(np.zeros((5, 7), np.uint16), bigtiff=True), "image"),
    "big-endian.tif": (lambda: _tifffile(np.zeros((5, 7), ">u2"), byteorder=">"), "image"),
    "ifd-loop.tif": (_tiff_ifd_loop, None),
    "no-ifd.tif": (lambda: b"II*\x00" + bytes(12), None),
    "nan.tif": (lambda: _float_tiff(float("nan")), "NaN or infinite"),
    "inf.tif": (lambda: _float_tiff(float("inf")), "NaN or infinite"),
    "minus-inf.tif": (lambda: _float_tiff(float("-inf")), "NaN or infinite"),
    "float-out-of-range.tif": (lambda: _float_tiff(7.0), "rescale the image to [0, 1]"),
    "five-channels.tif": (lambda: _tifffile(np.zeros((5, 7, 5), np.uint8),
                                            photometric="minisblack", planarconfig="contig"),
                          "it has 5 channels"),
    "int16.tif": (lambda: _tifffile(np.zeros((5, 7), np.int16)), "int16"),
    # 20 pixels, 65535 samples each: 2.6 MB per pixel at 16 bits
    "many-samples.tif": (lambda: tiff_bytes(4, 5, bits=16, samples=65535),
                         "it has 65535 channels"),
    "garbage.png": (lambda: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3, "corrupt PNG file"),
    "garbage.tif": (lambda: b"MM\x00*" + bytes(range(255, -1, -1)) * 3, None),
    "garbage.jpg": (lambda: b"\xff\xd8\xff\xe0" + bytes(range(256)) * 3, None),
    "gif-named.png": (lambda: b"GIF89a" + bytes(40), "GIF files are not supported"),
    "text.png": (lambda: b"hello\n" * 20, "not a PNG/TIFF/JPEG image"),
}
for _kind, _make in FULL.items():
    CASES[f"{_kind}-valid"] = (_make, "image")
    for _cut in (1, 8, 12, 16, 30, 33, 50, 0.25, 0.5, 0.75, -16, -12, -1):
        CASES[f"{_kind}-cut{_cut}"] = (
            lambda make=_make, cut=_cut: (data := make())[
                : int(len(data) * cut) if isinstance(cut, float) else cut
            ],
            None,
        )
for _name, _bomb in {**BOMBS, **INFLATE_BOMBS}.items():
    CASES[f"corpus-{_name}"] = (_bomb, "decompression bomb")


@pytest.mark.parametrize("name", list(CASES))
def test_corpus(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    make, expected = CASES[name]
    data = make()  # type: ignore[operator]
    suffix = ".tif" if "tif" in name else ".jpg" if "jp" in name else ".png"
    path = _write(tmp_path, "case" + suffix, data)
    result = _outcome(path)
    if expected == "image":
        assert isinstance(result, Image), result
    elif expected is not None:
        assert isinstance(result, str) and expected in result, result


def test_corpus_truncations_are_refused_somewhere(tmp_path: Path) -> None:
    # Cutting a file in half must not silently give an image.
    for kind, make in FULL.items():
        data = make()
        result = _outcome(_write(tmp_path, f"{kind}.bin", data[: len(data) // 2]))
        assert isinstance(result, str), (kind, result)


def test_cmyk_jpeg_is_read_as_rgb(tmp_path: Path) -> None:
    image = _outcome(_write(tmp_path, "c.jpg", _pillow("CMYK", "JPEG")))
    assert isinstance(image, Image)
    assert image.channels == 3 and image.alpha is None and image.dtype == np.uint8


def test_palette_png_with_transparency_has_alpha(tmp_path: Path) -> None:
    image = _outcome(_write(tmp_path, "p.png", _pillow("P", "PNG", transparency=3)))
    assert isinstance(image, Image) and image.channels == 3 and image.alpha is not None
    image = _outcome(_write(tmp_path, "q.png", _pillow("P", "PNG")))
    assert isinstance(image, Image) and image.channels == 3 and image.alpha is None


def test_multipage_corpus_file_has_a_note(tmp_path: Path) -> None:
    make = CASES["multipage.tif"][0]
    image = _outcome(_write(tmp_path, "m.tif", make()))  # type: ignore[operator]
    assert isinstance(image, Image)
    assert image.notes == ["the TIFF holds 4 pages; restorekit used the first"]


# --------------------------------------------------------------------------
# Properties (hypothesis)

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from restorekit.io import to_array, write_image  # noqa: E402

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    database=None,  # nothing written into the worktree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _shapes() -> st.SearchStrategy[tuple[int, ...]]:
    side = st.integers(1, 12)
    return st.one_of(
        st.tuples(side, side),
        st.tuples(side, side, st.integers(1, 4)),
    )


def _int_arrays() -> st.SearchStrategy[np.ndarray]:
    return st.sampled_from([np.uint8, np.uint16]).flatmap(
        lambda dtype: hnp.arrays(dtype, _shapes(), elements=st.integers(0, np.iinfo(dtype).max))
    )


def _round_trip(tmp_path: Path, name: str, arr: np.ndarray) -> None:
    path = write_image(tmp_path / name, arr, overwrite=True)
    image = read_image(path)
    expected = arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr
    assert image.dtype == arr.dtype and image.notes == []
    np.testing.assert_array_equal(to_array(image.data, image.alpha, image.dtype), expected)


@PROPERTY
@given(arr=_int_arrays())
def test_png_round_trip_is_exact(tmp_path: Path, arr: np.ndarray) -> None:
    _round_trip(tmp_path, "r.png", arr)


@PROPERTY
@given(arr=_int_arrays())
def test_tiff_round_trip_is_exact(tmp_path: Path, arr: np.ndarray) -> None:
    _round_trip(tmp_path, "r.tif", arr)


@PROPERTY
@given(arr=hnp.arrays(np.float32, _shapes(), elements=st.floats(0.0, 1.0, width=32)))
def test_float_tiff_round_trip_is_exact(tmp_path: Path, arr: np.ndarray) -> None:
    _round_trip(tmp_path, "f.tif", arr)


MAGICS = {
    "png": b"\x89PNG\r\n\x1a\n",
    "png-ihdr": png_bytes(3, 2, depth=8, colour=2)[:33],
    "png16-ihdr": png_bytes(3, 2, depth=16, colour=6)[:33],
    "tiff-le": b"II*\x00",
    "tiff-le-ifd": b"II*\x00\x08\x00\x00\x00",
    "tiff-be": b"MM\x00*",
    "bigtiff": b"II+\x00\x08\x00\x00\x00",
    "jpeg": b"\xff\xd8\xff",
    "jpeg-app0": _real_jpeg(4, 4)[:20],
}


# A damaged header may declare any size up to the pixel limit, and a decoder
# may then fill that many pixels with zeros (a 385-byte TIFF gave 1.4 GB in
# 45 s at the default limit): keep the fuzzing cheap with a low limit.
FUZZ_LIMIT = "1000000"


@PROPERTY
@given(magic=st.sampled_from(sorted(MAGICS)), tail=st.binary(max_size=300))
def test_random_bytes_after_a_magic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, magic: str, tail: bytes
) -> None:
    monkeypatch.setenv(MAX_PIXELS_ENV, FUZZ_LIMIT)
    _outcome(_write(tmp_path, "fuzz.img", MAGICS[magic] + tail))


SEEDS = {name: make() for name, make in FULL.items()}
SEEDS["png-palette"] = _pillow("P", "PNG", transparency=3)
SEEDS["tiff-lzw"] = _pillow_lzw_tiff(7, 5)
SEEDS["tiff-float"] = _float_tiff(0.25)


@PROPERTY
@given(
    seed=st.sampled_from(sorted(SEEDS)),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
    cut=st.one_of(st.none(), st.integers(1, 10_000)),
)
def test_damaged_valid_files(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    seed: str,
    edits: list[tuple[int, int]],
    cut: int | None,
) -> None:
    monkeypatch.setenv(MAX_PIXELS_ENV, FUZZ_LIMIT)
    data = bytearray(SEEDS[seed])
    for pos, value in edits:
        data[pos % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data) + 1]
    _outcome(_write(tmp_path, "damaged.img", bytes(data)))
