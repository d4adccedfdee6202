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
  frame, and say so in :attr:`Image.notes`; :func:`read_pages` reads every
  page of a TIFF stack (pages of one size and type) and :func:`write_stack`
  writes one.
* Writes are atomic: a hidden temporary file in the target directory is
  written, fsynced and moved over the target with :func:`os.replace`.

The package, one job per module (each imports only those above it):

``messages``
    one-line user-facing messages: quoting paths, squeezing exception texts.
``files``
    the file system: :func:`check_input_file`, reading an input's bytes,
    :func:`atomic_write_bytes` / :func:`atomic_write_text` (temporary file,
    fsync, :func:`os.replace`), the checks on a write target.
``image``
    the in-memory :class:`Image` and array conversion:
    :func:`image_from_array`, :func:`to_array`, :func:`output_suffix`, the
    shape, channel and float-range checks.
``codecs``
    bytes <-> arrays for PNG, TIFF and JPEG: format sniffing, decoders and
    encoders, the pixel limit (:func:`max_pixels`,
    :data:`DEFAULT_MAX_PIXELS`, :data:`MAX_PIXELS_ENV`; and
    :func:`check_declared_size` for sizes that are not images' own), the inflate bounds,
    quieting the decoders.
``read``
    :func:`read_image`, :func:`read_pages` and :func:`read_mask`: files + codecs + image.
``write``
    :func:`write_image` and :func:`write_stack`: codecs + files.

This ``__init__`` only re-exports the public names (``__all__``); import
them from ``restorekit.io``.  Private helpers live in (and are patched in)
the module that defines them.  This package does not import torch.
"""

from __future__ import annotations

from .codecs import (DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, check_declared_size, max_pixels, ome_difference,
                     read_tiff_calibration)
from .files import atomic_write_bytes, atomic_write_text, check_input_file
from .image import Image, image_from_array, native_scale, output_suffix, to_array
from .read import read_image, read_mask, read_pages
from .write import write_image, write_stack

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "Image",
    "check_declared_size",
    "check_input_file",
    "max_pixels",
    "native_scale",
    "read_image",
    "read_pages",
    "image_from_array",
    "to_array",
    "write_image",
    "write_stack",
    "atomic_write_bytes",
    "atomic_write_text",
    "output_suffix",
    "read_mask",
    "read_tiff_calibration",
    "ome_difference",
]
