"""Tests for restorekit.io: reading, writing, arrays and masks."""

from __future__ import annotations

import errno
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import png
import pytest
import tifffile
from PIL import Image as PILImage

from restorekit.io import files as rio_files
from restorekit.errors import RestoreError, UsageError
from restorekit.io import (
    Image,
    atomic_write_bytes,
    atomic_write_text,
    check_input_file,
    image_from_array,
    output_suffix,
    read_image,
    read_mask,
    to_array,
    write_image,
)

H, W = 5, 7  # odd, non-square: catches transposed axes


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _random(shape: tuple[int, ...], dtype: type, seed: int = 0) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return _rng(seed).random(shape, dtype=np.float32)
    return _rng(seed).integers(0, np.iinfo(dtype).max + 1, size=shape, dtype=dtype)


def _back(image: Image) -> np.ndarray:
    return to_array(image.data, image.alpha, image.dtype)


def _usage_error(excinfo: pytest.ExceptionInfo, name: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and "\r" not in message, message
    assert name in message, message
    return message


def _png_bit_depth(path: Path) -> int:
    data = path.read_bytes()
    assert data[12:16] == b"IHDR"
    return data[24]


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


SHAPES = {
    "gray": (H, W),
    "gray+alpha": (H, W, 2),
    "rgb": (H, W, 3),
    "rgba": (H, W, 4),
}


# --------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("kind", list(SHAPES))
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_round_trip_exact(tmp_path: Path, kind: str, dtype: type) -> None:
    arr = _random(SHAPES[kind], dtype)
    path = write_image(tmp_path / "x.png", arr)
    assert path == tmp_path / "x.png"
    assert _png_bit_depth(path) == (16 if dtype is np.uint16 else 8)

    image = read_image(path)
    assert image.format == "png"
    assert image.dtype == np.dtype(dtype)
    assert image.bit_depth == (16 if dtype is np.uint16 else 8)
    assert image.path == path
    assert image.data.dtype == np.float32
    assert image.data.shape == (3 if kind.startswith("rgb") else 1, H, W)
    assert (image.height, image.width) == (H, W)
    assert (image.alpha is not None) == (kind in ("gray+alpha", "rgba"))
    if image.alpha is not None:
        assert image.alpha.shape == (H, W) and image.alpha.dtype == np.float32
    assert 0.0 <= image.data.min() and image.data.max() <= 1.0
    np.testing.assert_array_equal(_back(image), arr)


def test_png16_readable_by_other_decoders(tmp_path: Path) -> None:
    arr = _random((H, W, 3), np.uint16)
    path = write_image(tmp_path / "x.png", arr)
    width, height, rows, info = png.Reader(bytes=path.read_bytes()).read()
    assert (width, height, info["bitdepth"], info["planes"]) == (W, H, 16, 3)
    np.testing.assert_array_equal(np.vstack([np.asarray(r) for r in rows]).reshape(H, W, 3), arr)


def test_png16_interlaced(tmp_path: Path) -> None:
    arr = _random((H, W, 4), np.uint16)
    with open(tmp_path / "i.png", "wb") as fh:
        writer = png.Writer(W, H, greyscale=False, alpha=True, bitdepth=16, interlace=True)
        writer.write(fh, arr.reshape(H, W * 4).tolist())
    np.testing.assert_array_equal(_back(read_image(tmp_path / "i.png")), arr)


def test_png16_written_by_pillow_with_filters(tmp_path: Path) -> None:
    y, x = np.mgrid[:H, :W]
    arr = (x * 9000 + y * 700).astype(np.uint16)
    PILImage.fromarray(arr).save(tmp_path / "g.png")
    image = read_image(tmp_path / "g.png")
    assert image.dtype == np.uint16 and image.channels == 1
    np.testing.assert_array_equal(_back(image), arr)


def test_png16_trns_becomes_alpha(tmp_path: Path) -> None:
    arr = _random((H, W), np.uint16)
    arr[1, 2] = 1234
    with open(tmp_path / "t.png", "wb") as fh:
        png.Writer(W, H, greyscale=True, bitdepth=16, transparent=1234).write(fh, arr.tolist())
    image = read_image(tmp_path / "t.png")
    assert image.channels == 1 and image.alpha is not None
    assert image.alpha[1, 2] == 0.0
    assert np.count_nonzero(image.alpha == 0) == np.count_nonzero(arr == 1234)
    np.testing.assert_array_equal(to_array(image.data, None, np.uint16), arr)


@pytest.mark.parametrize("kind", list(SHAPES))
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiff_round_trip_exact(tmp_path: Path, kind: str, dtype: type) -> None:
    arr = _random(SHAPES[kind], dtype)
    path = write_image(tmp_path / "x.tif", arr)
    image = read_image(path)
    assert image.format == "tiff"
    assert image.dtype == np.dtype(dtype)
    assert (image.alpha is not None) == (kind in ("gray+alpha", "rgba"))
    back = _back(image)
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, arr)
    # tifffile agrees on what was written
    np.testing.assert_array_equal(tifffile.imread(path), arr)


def test_tiff_suffix_variants(tmp_path: Path) -> None:
    arr = _random((H, W, 3), np.uint8)
    for name in ("a.tiff", "b.TIF"):
        np.testing.assert_array_equal(_back(read_image(write_image(tmp_path / name, arr))), arr)


def test_tiff_planar_is_transposed(tmp_path: Path) -> None:
    arr = _random((3, H, W), np.uint16)
    tifffile.imwrite(tmp_path / "p.tif", arr, photometric="rgb", planarconfig="separate")
    image = read_image(tmp_path / "p.tif")
    assert image.data.shape == (3, H, W)
    np.testing.assert_array_equal(_back(image), np.moveaxis(arr, 0, -1))


def test_tiff_multipage_takes_first_page(tmp_path: Path) -> None:
    stack = _random((5, H, W), np.uint8)
    tifffile.imwrite(tmp_path / "m.tif", stack, photometric="minisblack")
    image = read_image(tmp_path / "m.tif")
    assert image.data.shape == (1, H, W)
    np.testing.assert_array_equal(_back(image), stack[0])
    assert image.notes == ["the TIFF holds 5 pages; restorekit used the first"]


def test_tiff_pages_written_one_by_one_are_counted(tmp_path: Path) -> None:
    with tifffile.TiffWriter(tmp_path / "m.tif") as tif:
        tif.write(_random((H, W, 3), np.uint16), photometric="rgb")
        tif.write(_random((2, 2), np.uint8))
    assert read_image(tmp_path / "m.tif").notes == [
        "the TIFF holds 2 pages; restorekit used the first"
    ]


def test_multipage_tiff_via_pillow_fallback_has_the_note(tmp_path: Path) -> None:
    frames = [PILImage.fromarray(_random((H, W), np.uint8, seed=s)) for s in (1, 2, 3)]
    frames[0].save(tmp_path / "l.tif", compression="tiff_lzw", save_all=True,
                   append_images=frames[1:])
    image = read_image(tmp_path / "l.tif")
    np.testing.assert_array_equal(_back(image), np.asarray(frames[0]))
    assert image.notes == ["the TIFF holds 3 pages; restorekit used the first"]


@pytest.mark.parametrize("name", ["x.png", "x.tif", "x.jpg"])
def test_single_frame_files_have_no_notes(tmp_path: Path, name: str) -> None:
    assert read_image(write_image(tmp_path / name, _random((H, W, 3), np.uint8))).notes == []
    assert image_from_array(_random((H, W), np.uint8)).notes == []


def test_tiff_miniswhite_is_inverted(tmp_path: Path) -> None:
    arr = _random((H, W), np.uint8)
    tifffile.imwrite(tmp_path / "w.tif", arr, photometric="miniswhite")
    np.testing.assert_array_equal(_back(read_image(tmp_path / "w.tif")), 255 - arr)


def test_tiff_palette(tmp_path: Path) -> None:
    index = (np.arange(H * W) % 4).astype(np.uint8).reshape(H, W)
    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 128, 0], [10, 20, 30]], dtype=np.uint16)
    cmap = np.zeros((3, 256), dtype=np.uint16)
    cmap[:, :4] = colours.T * 257
    tifffile.imwrite(tmp_path / "p.tif", index, photometric="palette", colormap=cmap)
    image = read_image(tmp_path / "p.tif")
    assert image.channels == 3 and image.dtype == np.uint8
    np.testing.assert_array_equal(_back(image), colours[index].astype(np.uint8))


def test_tiff_associated_alpha_is_unpremultiplied(tmp_path: Path) -> None:
    arr = np.zeros((H, W, 4), dtype=np.uint8)
    arr[..., :3] = 64  # colour 0.5 premultiplied by alpha ~0.5
    arr[..., 3] = 128
    arr[0, 0] = 0  # fully transparent
    tifffile.imwrite(tmp_path / "pm.tif", arr, photometric="rgb", extrasamples=["assocalpha"])
    image = read_image(tmp_path / "pm.tif")
    assert image.alpha is not None
    np.testing.assert_allclose(image.data[:, 1:, :], 0.5, atol=1e-6)
    assert (image.data[:, 0, 0] == 0).all()


def test_tiff_lzw_8bit_via_pillow_fallback(tmp_path: Path) -> None:
    arr = _random((H, W, 3), np.uint8)
    PILImage.fromarray(arr).save(tmp_path / "l.tif", compression="tiff_lzw")
    image = read_image(tmp_path / "l.tif")
    assert image.format == "tiff"
    np.testing.assert_array_equal(_back(image), arr)


def test_tiff_float_out_of_range(tmp_path: Path) -> None:
    arr = _random((H, W), np.float32) * 255
    tifffile.imwrite(tmp_path / "f.tif", arr)
    with pytest.raises(UsageError) as excinfo:
        read_image(tmp_path / "f.tif")
    message = _usage_error(excinfo, "f.tif")
    assert "[0, 1]" in message


def test_tiff_float_nan(tmp_path: Path) -> None:
    arr = _random((H, W), np.float32)
    arr[0, 0] = np.nan
    tifffile.imwrite(tmp_path / "n.tif", arr)
    with pytest.raises(UsageError) as excinfo:
        read_image(tmp_path / "n.tif")
    assert "NaN" in _usage_error(excinfo, "n.tif")


def test_tiff_float64_becomes_float32(tmp_path: Path) -> None:
    arr = _random((H, W), np.float32).astype(np.float64)
    tifffile.imwrite(tmp_path / "d.tif", arr)
    image = read_image(tmp_path / "d.tif")
    assert image.dtype == np.float32
    np.testing.assert_allclose(image.data[0], arr, rtol=0, atol=1e-7)


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_jpeg_read_approximately(tmp_path: Path, mode: str) -> None:
    y, x = np.mgrid[:H, :W]
    smooth = (x * 20 + y * 10 + 40).astype(np.uint8)
    arr = smooth if mode == "L" else np.stack([smooth, smooth[::-1], 255 - smooth], axis=-1)
    PILImage.fromarray(arr).save(tmp_path / "x.jpg", quality=98, subsampling=0)
    image = read_image(tmp_path / "x.jpg")
    assert image.format == "jpeg" and image.dtype == np.uint8 and image.alpha is None
    assert image.channels == (1 if mode == "L" else 3)
    assert np.abs(_back(image).astype(int) - arr.astype(int)).max() <= 8
    assert output_suffix(image) == ".png"


def test_jpeg_exif_orientation_is_applied(tmp_path: Path) -> None:
    arr = np.zeros((H, W, 3), dtype=np.uint8)
    arr[0, 0] = 255  # top-left marker
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    PILImage.fromarray(arr).save(tmp_path / "o.jpg", quality=100, exif=exif)
    image = read_image(tmp_path / "o.jpg")
    assert (image.height, image.width) == (W, H)
    assert image.data[:, 0, -1].mean() > 0.5  # the marker moved to the top-right


def test_jpeg_write_and_read(tmp_path: Path) -> None:
    arr = np.full((H, W, 3), 120, dtype=np.uint8)
    path = write_image(tmp_path / "x.jpeg", arr)
    assert np.abs(_back(read_image(path)).astype(int) - 120).max() <= 2


def test_content_decides_not_suffix(tmp_path: Path) -> None:
    arr = _random((H, W), np.uint8)
    PILImage.fromarray(arr).save(tmp_path / "really_png.jpg", format="PNG")
    image = read_image(tmp_path / "really_png.jpg")
    assert image.format == "png"
    np.testing.assert_array_equal(_back(image), arr)


def test_palette_png(tmp_path: Path) -> None:
    rgb = _random((H, W, 3), np.uint8) // 64 * 64  # few colours: exact palette
    PILImage.fromarray(rgb).convert("P", palette=PILImage.Palette.ADAPTIVE, colors=64).save(
        tmp_path / "p.png"
    )
    image = read_image(tmp_path / "p.png")
    assert image.channels == 3 and image.alpha is None and image.dtype == np.uint8
    np.testing.assert_array_equal(_back(image), rgb)


def test_palette_png_with_transparency(tmp_path: Path) -> None:
    index = (np.arange(H * W) % 3).astype(np.uint8).reshape(H, W)
    im = PILImage.frombytes("P", (W, H), index.tobytes())
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    im.save(tmp_path / "pt.png", transparency=1)
    image = read_image(tmp_path / "pt.png")
    assert image.channels == 3 and image.alpha is not None
    np.testing.assert_array_equal(image.alpha == 0, index == 1)
    np.testing.assert_array_equal(image.data[2] == 1.0, index == 2)


def test_gray_trns_png_becomes_gray_alpha(tmp_path: Path) -> None:
    arr = _random((H, W), np.uint8)
    arr[0, 0] = 7
    PILImage.fromarray(arr).save(tmp_path / "t.png", transparency=7)
    image = read_image(tmp_path / "t.png")
    assert image.channels == 1 and image.alpha is not None
    np.testing.assert_array_equal(image.alpha == 0, arr == 7)


def test_one_bit_png(tmp_path: Path) -> None:
    bits = (np.arange(H * W).reshape(H, W) % 3 == 0).astype(int)
    with open(tmp_path / "b.png", "wb") as fh:
        png.Writer(W, H, greyscale=True, bitdepth=1).write(fh, bits.tolist())
    image = read_image(tmp_path / "b.png")
    assert image.channels == 1 and image.dtype == np.uint8
    np.testing.assert_array_equal(image.data[0], bits.astype(np.float32))


def test_gray_stored_as_rgb_stays_rgb(tmp_path: Path) -> None:
    gray = _random((H, W), np.uint8)
    write_image(tmp_path / "g.png", np.stack([gray] * 3, axis=-1))
    image = read_image(tmp_path / "g.png")
    assert image.channels == 3


def test_animated_png_takes_first_frame(tmp_path: Path) -> None:
    frames = [PILImage.fromarray(np.full((H, W, 3), v, dtype=np.uint8)) for v in (10, 200, 90)]
    frames[0].save(tmp_path / "a.png", save_all=True, append_images=frames[1:])
    image = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(_back(image), np.full((H, W, 3), 10, dtype=np.uint8))
    assert image.notes == ["the PNG is animated (3 frames); restorekit used the first"]


def test_animated_16bit_png_has_the_note(tmp_path: Path) -> None:
    # pypng ignores APNG chunks: splice an acTL (4 frames) in after the IHDR.
    data = write_image(tmp_path / "still.png", _random((H, W), np.uint16)).read_bytes()
    actl = _chunk(b"acTL", struct.pack(">II", 4, 0))
    (tmp_path / "a16.png").write_bytes(data[:33] + actl + data[33:])
    image = read_image(tmp_path / "a16.png")
    assert image.dtype == np.uint16
    assert image.notes == ["the PNG is animated (4 frames); restorekit used the first"]


def test_mpo_jpeg_takes_first_image(tmp_path: Path) -> None:
    left = PILImage.new("RGB", (W, H), (200, 30, 30))
    right = PILImage.new("RGB", (W, H), (30, 30, 200))
    try:
        left.save(tmp_path / "s.jpg", format="MPO", save_all=True, append_images=[right])
    except (KeyError, OSError, ValueError):
        pytest.skip("this Pillow cannot write MPO")
    image = read_image(tmp_path / "s.jpg")
    assert image.format == "jpeg"
    assert abs(int(_back(image)[0, 0, 0]) - 200) <= 3
    assert image.notes == ["the JPEG holds 2 images (MPO); restorekit used the first"]


# --------------------------------------------------------------------------
# Read errors


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as excinfo:
        read_image(tmp_path / "nope.png")
    assert "file not found" in _usage_error(excinfo, "nope.png")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(UsageError) as excinfo:
        read_image(tmp_path / "dir.png")
    assert "directory" in _usage_error(excinfo, "dir.png")


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "locked.png", _random((H, W), np.uint8))
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):  # root ignores the mode bits: simulate
            def deny(*args: object, **kwargs: object) -> None:
                raise PermissionError(13, "Permission denied", str(path))

            monkeypatch.setattr(rio_files, "open", deny, raising=False)
        with pytest.raises(UsageError) as excinfo:
            read_image(path)
        assert "permission denied" in _usage_error(excinfo, "locked.png")
    finally:
        path.chmod(0o644)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(UsageError) as excinfo:
        read_image(tmp_path / "empty.png")
    assert "empty" in _usage_error(excinfo, "empty.png")


# check_input_file and read_image refuse odd paths with the same one-line
# UsageError; check_input_file does not read the bytes.

READERS = {
    "check_input_file": lambda path: check_input_file(path),
    "read_image": read_image,
}


def _refusal(reader: str, path: object) -> str:
    with pytest.raises(UsageError) as excinfo:
        READERS[reader](path)  # type: ignore[operator]
    message = str(excinfo.value)
    assert message.splitlines() == [message] and message.isprintable(), repr(message)
    assert message.startswith("cannot read image "), message
    return message


def test_check_input_file_does_not_decode(tmp_path: Path) -> None:
    path = tmp_path / "junk.png"
    path.write_bytes(b"not an image")
    assert check_input_file(path) == path
    assert check_input_file(str(path), what="mask") == path
    with pytest.raises(UsageError, match="^cannot read mask .*nope.png': file not found$"):
        check_input_file(tmp_path / "nope.png", what="mask")


@pytest.mark.parametrize("reader", list(READERS))
def test_symlink_loop(tmp_path: Path, reader: str) -> None:
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    assert "a.png': symbolic link loop" in _refusal(reader, tmp_path / "a.png")
    (tmp_path / "self.png").symlink_to("self.png")
    assert "symbolic link loop" in _refusal(reader, tmp_path / "self.png")
    assert "symbolic link loop" in _refusal(reader, tmp_path / "self.png" / "x.png")


@pytest.mark.parametrize("reader", list(READERS))
def test_broken_symlink(tmp_path: Path, reader: str) -> None:
    (tmp_path / "dangling.png").symlink_to(tmp_path / "gone.png")
    message = _refusal(reader, tmp_path / "dangling.png")
    assert message.endswith("file not found (a broken symbolic link)"), message


@pytest.mark.parametrize("reader", list(READERS))
def test_file_name_too_long(tmp_path: Path, reader: str) -> None:
    assert "file name too long" in _refusal(reader, tmp_path / ("x" * 300 + ".png"))
    assert "file name too long" in _refusal(reader, "/".join(["d" * 200] * 30) + ".png")


@pytest.mark.parametrize("reader", list(READERS))
def test_parent_is_a_file(tmp_path: Path, reader: str) -> None:
    write_image(tmp_path / "f.png", _random((H, W), np.uint8))
    message = _refusal(reader, tmp_path / "f.png" / "x.png")
    assert "a parent of it is not a directory" in message, message


@pytest.mark.parametrize("reader", list(READERS))
def test_nul_byte_in_name(tmp_path: Path, reader: str) -> None:
    message = _refusal(reader, str(tmp_path / "a\0b.png"))
    expected = f"'{tmp_path}/a\\x00b.png': the file name contains a NUL character"
    assert message.endswith(expected), message


@pytest.mark.parametrize("reader", list(READERS))
def test_unencodable_name(tmp_path: Path, reader: str) -> None:
    message = _refusal(reader, str(tmp_path / "a\ud800.png"))
    assert "a\\ud800.png'" in message and "cannot be encoded" in message, message


@pytest.mark.parametrize("reader", list(READERS))
def test_undecodable_name_is_shown_escaped(tmp_path: Path, reader: str) -> None:
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes on a UTF-8 system
    message = _refusal(reader, tmp_path / name)
    assert "caf\\udce9.png': file not found" in message, message


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize(
    "error,needle",
    [
        (PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
        (OSError(errno.EINVAL, "Invalid argument"), "invalid argument"),
        (OSError(errno.EIO, "Input/output error"), "input/output error"),
        (OSError(errno.ELOOP, "Too many levels of symbolic links"), "symbolic link loop"),
        (OSError(errno.ENAMETOOLONG, "File name too long"), "file name too long"),
        (OSError(errno.ENOTDIR, "Not a directory"), "not a directory"),
        (ValueError("embedded null byte"), "NUL character"),
    ],
)
def test_any_stat_error_is_a_usage_error(
    tmp_path: Path, reader: str, error: BaseException, needle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_image(tmp_path / "x.png", _random((H, W), np.uint8))

    def fail(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(rio_files.os, "stat", fail)
    assert needle in _refusal(reader, path)


@pytest.mark.parametrize("reader", list(READERS))
def test_open_error_is_a_usage_error(
    tmp_path: Path, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_image(tmp_path / "x.png", _random((H, W), np.uint8))

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(rio_files, "open", fail, raising=False)
    assert "input/output error" in _refusal(reader, path)


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="POSIX, not root")
@pytest.mark.parametrize("reader", list(READERS))
def test_unreadable_parent_directory(tmp_path: Path, reader: str) -> None:
    (tmp_path / "d").mkdir()
    path = write_image(tmp_path / "d" / "x.png", _random((H, W), np.uint8))
    (tmp_path / "d").chmod(0)
    try:
        assert "permission denied" in _refusal(reader, path)
    finally:
        (tmp_path / "d").chmod(0o755)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("reader", list(READERS))
def test_fifo_is_not_opened(tmp_path: Path, reader: str) -> None:
    os.mkfifo(tmp_path / "pipe.png")  # opening it would block
    assert "not a regular file" in _refusal(reader, tmp_path / "pipe.png")


@pytest.mark.parametrize("reader", list(READERS))
def test_not_a_path(reader: str) -> None:
    assert "not a file path" in _refusal(reader, 12)
    assert "not a file path" in _refusal(reader, b"x.png")


def test_empty_file_is_refused_before_reading(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(UsageError) as excinfo:
        check_input_file(tmp_path / "empty.png")
    assert "the file is empty (0 bytes)" in _usage_error(excinfo, "empty.png")


def test_garbage_file(tmp_path: Path) -> None:
    (tmp_path / "junk.png").write_bytes(b"this is not an image at all\n" * 10)
    with pytest.raises(UsageError) as excinfo:
        read_image(tmp_path / "junk.png")
    assert "not a PNG/TIFF/JPEG image" in _usage_error(excinfo, "junk.png")


@pytest.mark.parametrize(
    "name,dtype,keep",
    [
        ("t8.png", np.uint8, 0.6),
        ("t16.png", np.uint16, 0.6),
        ("t16b.png", np.uint16, 0.2),
        ("t.tif", np.uint16, 0.5),
        ("t.tif", np.uint16, 0.05),
        ("t.jpg", np.uint8, 0.5),
    ],
)
def test_truncated_file(tmp_path: Path, name: str, dtype: type, keep: float) -> None:
    arr = _random((40, 30, 3), dtype)
    full = write_image(tmp_path / ("full" + Path(name).suffix), arr)
    data = full.read_bytes()
    (tmp_path / name).write_bytes(data[: max(1, int(len(data) * keep))])
    with pytest.raises(UsageError) as excinfo:
        read_image(tmp_path / name)
    _usage_error(excinfo, name)


def test_corrupt_tiff_prints_nothing(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    tifffile.imwrite(tmp_path / "full.tif", _random((H, W, 3), np.uint16))
    data = (tmp_path / "full.tif").read_bytes()
    (tmp_path / "half.tif").write_bytes(data[: len(data) // 2])
    with pytest.raises(UsageError) as excinfo:
        read_image(tmp_path / "half.tif")
    _usage_error(excinfo, "half.tif")
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_png_with_bad_crc(tmp_path: Path) -> None:
    data = bytearray(write_image(tmp_path / "ok.png", _random((H, W), np.uint8)).read_bytes())
    data[30] ^= 0xFF  # inside the IHDR CRC
    (tmp_path / "crc.png").write_bytes(bytes(data))
    with pytest.raises(UsageError) as excinfo:
        read_image(tmp_path / "crc.png")
    _usage_error(excinfo, "crc.png")


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "WEBP"])
def test_unsupported_format(tmp_path: Path, fmt: str) -> None:
    name = f"x.{fmt.lower()}"
    try:
        PILImage.fromarray(_random((H, W, 3), np.uint8)).save(tmp_path / name, format=fmt)
    except (KeyError, OSError):
        pytest.skip(f"Pillow cannot write {fmt} here")
    with pytest.raises(UsageError) as excinfo:
        read_image(tmp_path / name)
    assert "not supported" in _usage_error(excinfo, name)


def test_zero_size_png(tmp_path: Path) -> None:
    ihdr = struct.pack(">IIBBBBB", 0, H, 8, 0, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b""))
        + _chunk(b"IEND", b"")
    )
    (tmp_path / "zero.png").write_bytes(data)
    with pytest.raises(UsageError) as excinfo:
        read_image(tmp_path / "zero.png")
    assert "empty" in _usage_error(excinfo, "zero.png")


def test_zero_size_tiff(tmp_path: Path) -> None:
    with pytest.warns(UserWarning):
        tifffile.imwrite(tmp_path / "zero.tif", np.zeros((0, W), dtype=np.uint8))
    with pytest.raises(UsageError) as excinfo:
        read_image(tmp_path / "zero.tif")
    _usage_error(excinfo, "zero.tif")


def test_too_many_channels(tmp_path: Path) -> None:
    tifffile.imwrite(
        tmp_path / "five.tif",
        _random((H, W, 5), np.uint8),
        photometric="minisblack",
        planarconfig="contig",
    )
    with pytest.raises(UsageError) as excinfo:
        read_image(tmp_path / "five.tif")
    assert "5 channels" in _usage_error(excinfo, "five.tif")


def test_many_samples_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A damaged SamplesPerPixel (65535) multiplies the memory of every pixel;
    # more than 4 channels are refused anyway, so refuse them from the header.
    tifffile.imwrite(tmp_path / "many.tif", np.zeros((2, 3, 500), np.uint16),
                     photometric="minisblack", planarconfig="contig")

    def decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded")

    monkeypatch.setattr(tifffile.TiffPage, "asarray", decode)
    with pytest.raises(UsageError) as excinfo:
        read_image(tmp_path / "many.tif")
    assert "it has 500 channels" in _usage_error(excinfo, "many.tif")


def test_unsupported_tiff_sample_type(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "i16.tif", np.zeros((H, W), dtype=np.int16))
    with pytest.raises(UsageError) as excinfo:
        read_image(tmp_path / "i16.tif")
    assert "int16" in _usage_error(excinfo, "i16.tif")


def test_path_with_newline_stays_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as excinfo:
        read_image(tmp_path / "bad\nname.png")
    _usage_error(excinfo, "bad\\nname.png")


# --------------------------------------------------------------------------
# Arrays


@pytest.mark.parametrize("shape", [(H, W), (H, W, 1), (H, W, 2), (H, W, 3), (H, W, 4)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_array_round_trip_exact(shape: tuple[int, ...], dtype: type) -> None:
    arr = _random(shape, dtype)
    image = image_from_array(arr)
    assert image.format == "array" and image.path is None and image.dtype == np.dtype(dtype)
    back = _back(image)
    expected = arr[..., 0] if shape == (H, W, 1) else arr
    np.testing.assert_array_equal(back, expected)
    again = image_from_array(back)
    np.testing.assert_array_equal(again.data, image.data)
    if image.alpha is not None:
        np.testing.assert_array_equal(again.alpha, image.alpha)


def test_every_uint16_value_round_trips() -> None:
    arr = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    np.testing.assert_array_equal(_back(image_from_array(arr)), arr)


def test_every_uint8_value_round_trips() -> None:
    arr = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(_back(image_from_array(arr)), arr)


def test_array_float_and_bool() -> None:
    f = _random((H, W, 3), np.float32).astype(np.float64)
    image = image_from_array(f)
    assert image.dtype == np.float32 and image.channels == 3
    np.testing.assert_allclose(image.data, np.moveaxis(f, -1, 0), atol=1e-7)
    assert output_suffix(image) == ".tif"

    b = np.zeros((H, W), dtype=bool)
    b[1:3, 2:5] = True
    image = image_from_array(b)
    assert image.data.dtype == np.float32
    np.testing.assert_array_equal(image.data[0], b.astype(np.float32))

    slightly = np.full((H, W), 1.01, dtype=np.float32)
    assert image_from_array(slightly).data.max() == 1.0


@pytest.mark.parametrize(
    "arr,needle",
    [
        (np.full((H, W), 255.0), "[0, 1]"),
        (np.full((H, W), -1.0), "[0, 1]"),
        (np.full((H, W), np.nan), "NaN"),
        (np.zeros((H, W), dtype=np.int64), "int64"),
        (np.zeros((3, H, W), dtype=np.uint8), "transpose"),
        (np.zeros((H, W, 5), dtype=np.uint8), "C in 1..4"),
        (np.zeros((2, H, W, 3), dtype=np.uint8), "shape"),
        (np.zeros((0, W), dtype=np.uint8), "empty"),
    ],
)
def test_array_errors(arr: np.ndarray, needle: str) -> None:
    with pytest.raises(UsageError) as excinfo:
        image_from_array(arr)
    message = str(excinfo.value)
    assert "\n" not in message and needle in message, message


def test_to_array_rounds_and_clips() -> None:
    data = np.array([[[0.4 / 255, 0.6 / 255, 1.49 / 255, -0.2, 1.7, np.nan]]], dtype=np.float32)
    np.testing.assert_array_equal(to_array(data, None, np.uint8), [[0, 1, 1, 0, 255, 0]])
    f = to_array(data, None, np.float32)
    assert f.dtype == np.float32 and f.min() >= 0 and f.max() <= 1
    assert to_array(np.full((1, 2, 2), 0.5, np.float32), None, "uint16")[0, 0] == 32768


def test_to_array_layouts() -> None:
    gray = np.zeros((1, H, W), np.float32)
    rgb = np.zeros((3, H, W), np.float32)
    alpha = np.ones((H, W), np.float32)
    assert to_array(gray, None, np.uint8).shape == (H, W)
    assert to_array(gray, alpha, np.uint8).shape == (H, W, 2)
    assert to_array(rgb, None, np.uint8).shape == (H, W, 3)
    out = to_array(rgb, alpha, np.uint16)
    assert out.shape == (H, W, 4) and out.dtype == np.uint16 and (out[..., 3] == 65535).all()
    with pytest.raises(ValueError):
        to_array(np.zeros((2, H, W), np.float32), None, np.uint8)
    with pytest.raises(ValueError):
        to_array(gray, None, np.int32)


def test_image_properties() -> None:
    image = image_from_array(np.zeros((H, W, 4), dtype=np.uint16))
    assert (image.channels, image.height, image.width, image.bit_depth) == (3, H, W, 16)
    assert image.alpha is not None and output_suffix(image) == ".png"


def test_output_suffix() -> None:
    data = np.zeros((1, H, W), np.float32)
    assert output_suffix(Image(data, None, np.dtype(np.uint8), "png")) == ".png"
    assert output_suffix(Image(data, None, np.dtype(np.uint8), "jpeg")) == ".png"
    assert output_suffix(Image(data, None, np.dtype(np.uint16), "png")) == ".png"
    assert output_suffix(Image(data, None, np.dtype(np.uint8), "tiff")) == ".tif"
    assert output_suffix(Image(data, None, np.dtype(np.float32), "array")) == ".tif"


# --------------------------------------------------------------------------
# Writing


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    first = _random((H, W), np.uint8, seed=1)
    second = _random((H, W), np.uint8, seed=2)
    path = write_image(tmp_path / "out.png", first)
    with pytest.raises(UsageError) as excinfo:
        write_image(path, second)
    assert "--overwrite" in _usage_error(excinfo, "out.png")
    np.testing.assert_array_equal(_back(read_image(path)), first)

    write_image(path, second, overwrite=True)
    np.testing.assert_array_equal(_back(read_image(path)), second)
    assert _leftovers(tmp_path) == []


def test_write_failure_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        seen.extend(n for n in os.listdir(tmp_path) if n.endswith(".tmp"))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(RestoreError) as excinfo:
        write_image(tmp_path / "out.png", _random((H, W), np.uint8))
    assert "\n" not in str(excinfo.value) and "out.png" in str(excinfo.value)
    monkeypatch.setattr(os, "fsync", real_fsync)

    assert len(seen) == 1 and seen[0].startswith(".") and seen[0].endswith(".tmp")
    assert list(tmp_path.iterdir()) == []


def test_replace_failure_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = atomic_write_bytes(tmp_path / "keep.bin", b"old")

    def boom(src: object, dst: object) -> None:
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(RuntimeError):
        atomic_write_bytes(path, b"new", overwrite=True)
    assert path.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_atomic_write_text_and_bytes(tmp_path: Path) -> None:
    path = atomic_write_text(tmp_path / "notes.txt", "héllo\nworld\n")
    assert path.read_text(encoding="utf-8") == "héllo\nworld\n"
    with pytest.raises(UsageError) as excinfo:
        atomic_write_text(path, "again")
    _usage_error(excinfo, "notes.txt")
    atomic_write_bytes(path, b"\x00\x01", overwrite=True)
    assert path.read_bytes() == b"\x00\x01"
    assert _leftovers(tmp_path) == []


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_new_files_get_normal_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    path = atomic_write_bytes(tmp_path / "new.bin", b"x")  # not mkstemp's 0o600
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    path.chmod(0o640)
    atomic_write_bytes(path, b"y", overwrite=True)  # an overwrite keeps the mode
    assert path.stat().st_mode & 0o777 == 0o640


def test_write_into_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as excinfo:
        write_image(tmp_path / "no" / "such" / "out.png", np.zeros((H, W), np.uint8))
    assert "does not exist" in _usage_error(excinfo, "out.png")


def test_write_onto_directory(tmp_path: Path) -> None:
    (tmp_path / "d.png").mkdir()
    with pytest.raises(UsageError) as excinfo:
        write_image(tmp_path / "d.png", np.zeros((H, W), np.uint8), overwrite=True)
    _usage_error(excinfo, "d.png")


def test_write_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as excinfo:
        write_image(tmp_path / "out.bmp", np.zeros((H, W), np.uint8))
    assert ".png" in _usage_error(excinfo, "out.bmp")


@pytest.mark.parametrize(
    "name,arr",
    [
        ("f.png", np.zeros((H, W), np.float32)),
        ("a.jpg", np.zeros((H, W, 4), np.uint8)),
        ("s.jpg", np.zeros((H, W), np.uint16)),
        ("i.png", np.zeros((H, W), np.int32)),
        ("c.png", np.zeros((H, W, 5), np.uint8)),
    ],
)
def test_write_programming_errors(tmp_path: Path, name: str, arr: np.ndarray) -> None:
    with pytest.raises(ValueError):
        write_image(tmp_path / name, arr)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------
# Masks


def test_mask_threshold_and_polarity(tmp_path: Path) -> None:
    values = np.array([[0, 1, 127, 128, 200, 255, 0]] * H, dtype=np.uint8)
    write_image(tmp_path / "m.png", values)
    mask = read_mask(tmp_path / "m.png", (H, W))
    assert mask.dtype == bool and mask.shape == (H, W)
    np.testing.assert_array_equal(mask[0], [False, False, False, True, True, True, False])


def test_mask_mostly_black_is_not_inverted(tmp_path: Path) -> None:
    values = np.zeros((H, W), dtype=np.uint8)
    values[2, 3] = 255  # a single known pixel: no guessing about polarity
    write_image(tmp_path / "m.png", values)
    mask = read_mask(tmp_path / "m.png", (H, W))
    assert mask.sum() == 1 and mask[2, 3]


def test_mask_16bit_and_float(tmp_path: Path) -> None:
    values = np.array([[0, 32767, 32768, 65535, 1, 40000, 20000]] * H, dtype=np.uint16)
    write_image(tmp_path / "m16.png", values)
    expected = [False, False, True, True, False, True, False]
    np.testing.assert_array_equal(read_mask(tmp_path / "m16.png", (H, W))[0], expected)
    write_image(tmp_path / "mf.tif", (values / 65535).astype(np.float32))
    np.testing.assert_array_equal(read_mask(tmp_path / "mf.tif", (H, W))[0], expected)


def test_mask_colour_uses_luminance(tmp_path: Path) -> None:
    rgb = np.zeros((H, W, 3), dtype=np.uint8)
    rgb[:, 0] = (255, 255, 255)  # white: known
    rgb[:, 1] = (0, 255, 0)  # green, luma 0.587: known
    rgb[:, 2] = (255, 0, 0)  # red, luma 0.299: missing
    rgb[:, 3] = (0, 0, 255)  # blue, luma 0.114: missing
    write_image(tmp_path / "c.png", rgb)
    mask = read_mask(tmp_path / "c.png", (H, W))
    np.testing.assert_array_equal(mask[0], [True, True, False, False, False, False, False])


def test_mask_alpha_composites_over_black(tmp_path: Path) -> None:
    la = np.zeros((H, W, 2), dtype=np.uint8)
    la[..., 0] = 255
    la[:, :3, 1] = 255  # opaque white: known
    la[:, 3:, 1] = 0  # transparent: missing
    write_image(tmp_path / "a.png", la)
    mask = read_mask(tmp_path / "a.png", (H, W))
    np.testing.assert_array_equal(mask[0], [True] * 3 + [False] * 4)


def test_mask_size_mismatch(tmp_path: Path) -> None:
    write_image(tmp_path / "m.png", np.zeros((80, 100), dtype=np.uint8))
    with pytest.raises(UsageError) as excinfo:
        read_mask(tmp_path / "m.png", (128, 128))
    message = _usage_error(excinfo, "m.png")
    assert message == (
        f"mask '{tmp_path / 'm.png'}' is 100x80 but the image is 128x128 (W x H): "
        "resize the mask to the image"
    )


def test_mask_read_errors_say_mask(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as excinfo:
        read_mask(tmp_path / "gone.png", (H, W))
    message = _usage_error(excinfo, "gone.png")
    assert message.startswith("cannot read mask")


def test_mask_gray_pixels_are_noted(tmp_path: Path) -> None:
    values = np.zeros((H, W), dtype=np.uint8)
    values[:, 4:] = 255
    values[0, :4] = [0, 100, 128, 255]  # an anti-aliased edge: 100 -> missing, 128 -> known
    values[1, 5] = 254
    path = write_image(tmp_path / "edge.png", values)
    notes: list[str] = []
    mask = read_mask(path, (H, W), notes=notes)
    assert mask.dtype == bool and mask.shape == (H, W)
    np.testing.assert_array_equal(mask, values >= 128)
    assert notes == [
        f"mask '{path}': 3 of 35 pixels (8.6%) are neither black nor white; they were "
        "thresholded at half the range (>= 0.5 is known): 2 known, 1 missing"
    ]
    assert read_mask(path, (H, W)).dtype == bool  # no notes list: nothing to say


@pytest.mark.parametrize(
    "name,arr",
    [
        ("bw.png", np.where(np.arange(H * W).reshape(H, W) % 3, 255, 0).astype(np.uint8)),
        ("bw16.png", np.where(np.arange(H * W).reshape(H, W) % 2, 65535, 0).astype(np.uint16)),
        ("bwf.tif", np.where(np.arange(H * W).reshape(H, W) % 2, 1.0, 0.0).astype(np.float32)),
        ("rgb.png", np.repeat(np.array([[[0], [255]]] * H, dtype=np.uint8), 3, axis=-1)),
        # transparent pixels are black whatever their colour
        ("la.png", np.dstack([np.full((H, W), 77, np.uint8), np.zeros((H, W), np.uint8)])),
    ],
)
def test_binary_masks_have_no_notes(tmp_path: Path, name: str, arr: np.ndarray) -> None:
    path = write_image(tmp_path / name, arr)
    notes: list[str] = []
    read_mask(path, arr.shape[:2], notes=notes)
    assert notes == []


def test_mask_colour_and_alpha_count_as_gray(tmp_path: Path) -> None:
    rgba = np.zeros((H, W, 4), dtype=np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = 255
    rgba[0, 0] = (255, 0, 0, 255)  # red: neither black nor white -> missing
    rgba[0, 1] = (255, 255, 255, 200)  # half-transparent white -> known (0.78)
    path = write_image(tmp_path / "c.png", rgba)
    notes: list[str] = []
    mask = read_mask(path, (H, W), notes=notes)
    assert not mask[0, 0] and mask[0, 1] and mask.sum() == H * W - 1
    assert len(notes) == 1
    assert "2 of 35 pixels (5.7%)" in notes[0] and "1 known, 1 missing" in notes[0]


def test_mask_file_notes_are_passed_on(tmp_path: Path) -> None:
    stack = np.zeros((2, H, W), dtype=np.uint8)
    stack[0, :, :3] = 255
    tifffile.imwrite(tmp_path / "m.tif", stack, photometric="minisblack")
    notes: list[str] = []
    mask = read_mask(tmp_path / "m.tif", (H, W), notes=notes)
    assert mask.sum() == 3 * H
    path = tmp_path / "m.tif"
    assert notes == [f"mask '{path}': the TIFF holds 2 pages; restorekit used the first"]


def test_mask_gray_note_tiny_share(tmp_path: Path) -> None:
    values = np.full((40, 30), 255, dtype=np.uint8)
    values[0, 0] = 1
    notes: list[str] = []
    read_mask(write_image(tmp_path / "m.png", values), (40, 30), notes=notes)
    assert "1 of 1200 pixels (under 0.1%)" in notes[0] and "0 known, 1 missing" in notes[0]
