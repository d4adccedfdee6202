"""Training data: a folder of clean images, cut into random patches, read from disk as needed.

:class:`ImageFolder` lists the images (recursively, hidden files skipped),
splits them into train / validation / test by a seeded shuffle, and serves
batches of random crops with random flips and rotations.  Images are read
on demand through a bounded cache, so a folder larger than memory works (it
is then read again as batches need it).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError

SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


def list_images(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"training folder '{folder}' does not exist or is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise UsageError(f"no images (PNG, JPEG, TIFF, BMP, WebP) in '{folder}'")
    return files


@dataclass(frozen=True)
class Split:
    train: list[Path]
    val: list[Path]
    test: list[Path]


def split(files: list[Path], fractions: tuple[float, float, float], seed: int) -> Split:
    """A seeded shuffle cut by ``fractions`` (train, validation, test); every part gets at least one
    image when there are three or more, validation at least one when there are two."""
    if len(files) < 2:
        raise UsageError(f"training needs at least 2 images (one to validate on); found {len(files)}")
    order = np.random.default_rng(seed).permutation(len(files))
    n = len(files)
    n_val = max(1, round(fractions[1] * n))
    n_test = max(1 if n >= 3 and fractions[2] > 0 else 0, round(fractions[2] * n))
    n_train = n - n_val - n_test
    if n_train < 1:
        n_test = max(0, n - n_val - 1)
        n_train = n - n_val - n_test
    picked = [files[i] for i in order]
    return Split(train=picked[:n_train], val=picked[n_train:n_train + n_val], test=picked[n_train + n_val:])


def digest(files: list[Path]) -> str:
    """A short digest of the file names and sizes (what the model was trained on, for model.json)."""
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(str(f.stat().st_size).encode())
    return h.hexdigest()[:16]


class ImageFolder:
    """Random patches of the images in ``files`` as (B, C, P, P) float32 arrays in [0, 1]."""

    def __init__(self, files: list[Path], channels: int, cache_mb: float = 512.0) -> None:
        self.files, self.channels = list(files), channels
        self.cache: OrderedDict[Path, np.ndarray] = OrderedDict()
        self.cache_bytes, self.limit = 0, int(cache_mb * 2**20)

    def image(self, path: Path) -> np.ndarray:
        """(C, H, W) float32 in [0, 1] in the model's channel count (colour to gray by luma)."""
        if path in self.cache:
            self.cache.move_to_end(path)
            return self.cache[path]
        from ..io import read_image

        try:
            data = read_image(path).data.astype(np.float32)
        except Exception as exc:  # noqa: BLE001 - name the file
            raise UsageError(f"cannot read training image '{path}': {exc}") from None
        if self.channels == 1 and data.shape[0] >= 3:
            data = (0.299 * data[0] + 0.587 * data[1] + 0.114 * data[2])[None]
        elif self.channels == 3 and data.shape[0] == 1:
            data = np.repeat(data, 3, axis=0)
        data = np.ascontiguousarray(data[: self.channels])
        self.cache[path] = data
        self.cache_bytes += data.nbytes
        while self.cache_bytes > self.limit and len(self.cache) > 1:
            _, old = self.cache.popitem(last=False)
            self.cache_bytes -= old.nbytes
        return data

    def batch(self, rng: np.random.Generator, size: int, patch: int) -> np.ndarray:
        out = np.empty((size, self.channels, patch, patch), np.float32)
        for i in range(size):
            img = self.image(self.files[rng.integers(len(self.files))])
            _, h, w = img.shape
            if h < patch or w < patch:
                img = np.pad(img, ((0, 0), (0, max(0, patch - h)), (0, max(0, patch - w))), mode="reflect")
                _, h, w = img.shape
            t, l = rng.integers(h - patch + 1), rng.integers(w - patch + 1)
            p = img[:, t:t + patch, l:l + patch]
            p = np.rot90(p, rng.integers(4), axes=(1, 2))
            if rng.random() < 0.5:
                p = p[:, :, ::-1]
            out[i] = p
        return out

    def centre_crops(self, patch: int) -> np.ndarray:
        """One centre crop per image (the validation batch: the same every time)."""
        crops = []
        for f in self.files:
            img = self.image(f)
            _, h, w = img.shape
            s = min(patch, h, w) // 4 * 4
            t, l = (h - s) // 2, (w - s) // 2
            crops.append(img[:, t:t + s, l:l + s])
        side = min(c.shape[-1] for c in crops)
        return np.stack([c[:, :side, :side] for c in crops])
