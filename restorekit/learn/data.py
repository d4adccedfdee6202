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


def to_channels(data: np.ndarray, channels: int) -> np.ndarray:
    """(C, H, W) in the model's channel count: colour to gray by luma, gray repeated to colour."""
    if channels == 1 and data.shape[0] >= 3:
        data = (0.299 * data[0] + 0.587 * data[1] + 0.114 * data[2])[None]
    elif channels == 3 and data.shape[0] == 1:
        data = np.repeat(data, 3, axis=0)
    return np.ascontiguousarray(data[:channels], dtype=np.float32)


class ImageFolder:
    """Random patches of the images in ``files`` as (B, C, P, P) float32 arrays in [0, 1]."""

    #: random 90-degree rotations and flips of the patches (natural images have no up)
    augment = True

    def __init__(self, files: list[Path], channels: int, cache_mb: float = 512.0) -> None:
        self.files, self.channels = list(files), channels
        self.cache: OrderedDict[Path, np.ndarray] = OrderedDict()
        self.cache_bytes, self.limit = 0, int(cache_mb * 2**20)

    def __len__(self) -> int:
        return len(self.files)

    def item(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Image ``i`` as (clean, degraded or None)."""
        return self.image(self.files[i]), None

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
        data = to_channels(data, self.channels)
        self.cache[path] = data
        self.cache_bytes += data.nbytes
        while self.cache_bytes > self.limit and len(self.cache) > 1:
            _, old = self.cache.popitem(last=False)
            self.cache_bytes -= old.nbytes
        return data

    def batch(self, rng: np.random.Generator, size: int, patch: int | None) -> np.ndarray:
        """Random patches of the clean images (the old interface; see :func:`draw`)."""
        return draw(self, rng, size, patch)[0]

    def centre_crops(self, patch: int) -> np.ndarray:
        """One centre crop per image (the validation batch: the same every time)."""
        return centre_crops(self, patch)[0]


def _crop_pair(clean: np.ndarray, low: np.ndarray | None, patch: int | None, rng: np.random.Generator | None):
    if patch is None:
        return clean, low
    c, h, w = clean.shape
    if h < patch or w < patch:
        pad = ((0, 0), (0, max(0, patch - h)), (0, max(0, patch - w)))
        clean = np.pad(clean, pad, mode="reflect")
        low = None if low is None else np.pad(low, pad, mode="reflect")
        _, h, w = clean.shape
    if rng is None:
        t, l = (h - patch) // 2, (w - patch) // 2
    else:
        t, l = int(rng.integers(h - patch + 1)), int(rng.integers(w - patch + 1))
    cut = (slice(None), slice(t, t + patch), slice(l, l + patch))
    return clean[cut], None if low is None else low[cut]


def draw(source, rng: np.random.Generator, size: int, patch: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """``size`` random (clean, degraded-or-None) patches of ``source``'s items, augmented when the source
    allows it; ``patch=None``: the whole items (which must then share one size)."""
    cleans, lows = [], []
    for _ in range(size):
        clean, low = source.item(int(rng.integers(len(source))))
        clean, low = _crop_pair(clean, low, patch, rng)
        k, flip = int(rng.integers(4)), bool(rng.random() < 0.5)
        if source.augment:
            clean = np.rot90(clean, k, axes=(1, 2))
            low = None if low is None else np.rot90(low, k, axes=(1, 2))
        if flip and source.augment is not False:
            clean = clean[:, :, ::-1]
            low = None if low is None else low[:, :, ::-1]
        cleans.append(clean)
        lows.append(low)
    out = np.ascontiguousarray(np.stack(cleans), dtype=np.float32)
    if lows[0] is None:
        return out, None
    return out, np.ascontiguousarray(np.stack(lows), dtype=np.float32)


def centre_crops(source, patch: int | None, limit: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """One centre crop of every item (the first ``limit``), cut to the smallest side among them (a
    multiple of 4); ``patch=None``: the items whole.  The same validation batch every time."""
    pairs = []
    for i in range(len(source) if limit is None else min(limit, len(source))):
        clean, low = source.item(i)
        if patch is None:
            pairs.append((clean, low))
            continue
        _, h, w = clean.shape
        s = min(patch, h, w)
        s = s // 4 * 4 or s
        pairs.append(_crop_pair(clean, low, s, None))
    side_h = min(p[0].shape[-2] for p in pairs)
    side_w = min(p[0].shape[-1] for p in pairs)
    clean = np.stack([p[0][:, :side_h, :side_w] for p in pairs]).astype(np.float32)
    if pairs[0][1] is None:
        return clean, None
    return clean, np.stack([p[1][:, :side_h, :side_w] for p in pairs]).astype(np.float32)


class PairFolder(ImageFolder):
    """Degraded and clean images matched by name (a microscope's fast and slow scans, say)."""

    def __init__(self, pairs: list[tuple[Path, Path]], channels: int, cache_mb: float = 512.0) -> None:
        super().__init__([hi for _, hi in pairs], channels, cache_mb)
        self.pairs = list(pairs)

    def item(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        low_path, high_path = self.pairs[i]
        low, high = self.image(low_path), self.image(high_path)
        if low.shape != high.shape:
            raise UsageError(f"the pair '{low_path.name}' is {low.shape[2]}x{low.shape[1]} in the degraded folder "
                             f"and {high.shape[2]}x{high.shape[1]} in the clean one; pairs must have one size")
        return high, low


def match_pairs(low_dir: Path, high_dir: Path) -> list[tuple[Path, Path]]:
    """(degraded, clean) files matched by their path relative to the folders, without the suffix."""
    low = {p.relative_to(low_dir).with_suffix("").as_posix(): p for p in list_images(low_dir)}
    high = {p.relative_to(high_dir).with_suffix("").as_posix(): p for p in list_images(high_dir)}
    only_low, only_high = sorted(set(low) - set(high)), sorted(set(high) - set(low))
    if only_low or only_high:
        parts = []
        if only_low:
            parts.append(f"only in '{low_dir}': {', '.join(only_low[:5])}" + (" ..." if len(only_low) > 5 else ""))
        if only_high:
            parts.append(f"only in '{high_dir}': {', '.join(only_high[:5])}" + (" ..." if len(only_high) > 5 else ""))
        raise UsageError(f"--pairs: {len(only_low) + len(only_high)} unmatched file(s) ({'; '.join(parts)}); "
                         "pairs are matched by name")
    return [(low[k], high[k]) for k in sorted(high)]


class ArraySet:
    """Images held in memory (the bundled data sets): an (N, C, H, W) float32 array in [0, 1]."""

    def __init__(self, images: np.ndarray, augment: bool | None) -> None:
        self.images, self.augment = images, augment

    def __len__(self) -> int:
        return len(self.images)

    def item(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        return self.images[i], None

    def subset(self, index) -> "ArraySet":
        return ArraySet(self.images[np.asarray(index, dtype=int)], self.augment)


#: photos bundled with scikit-image (cameraman is left out: it is in Set12, a test set here)
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "coins", "moon", "page", "clock", "brick", "grass", "gravel")
DATASETS = {
    "faces": "scikit-image's lfw_subset: 200 gray 25x25 crops (100 faces, 100 non-faces)",
    "photos": "64x64 tiles of scikit-image's bundled photos (no cameraman: it is in Set12)",
    "digits": "scikit-learn's 8x8 handwritten digits (1797; the offline MNIST stand-in; needs scikit-learn)",
}


def dataset(name: str, channels: int) -> ArraySet:
    """A bundled data set by name (:data:`DATASETS`), in the model's channel count; nothing is downloaded.

    ``augment``: photos get rotations and flips, faces left-right flips only, digits none.
    """
    if name == "faces":
        from skimage.data import lfw_subset

        gray = lfw_subset().astype(np.float32)[:, None]
        return ArraySet(np.stack([to_channels(g, channels) for g in gray]), augment=None)
    if name == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise UsageError("--dataset digits needs scikit-learn: pip install 'restorekit[learn]'") from None
        gray = (load_digits().images / 16.0).astype(np.float32)[:, None]
        return ArraySet(np.stack([to_channels(g, channels) for g in gray]), augment=False)
    if name == "photos":
        import skimage.data

        tiles = []
        for photo in PHOTOS:
            try:
                img = np.asarray(getattr(skimage.data, photo)(), dtype=np.float32)
            except Exception:  # noqa: BLE001 - a photo this scikit-image lacks offline is skipped
                continue
            img = img / (255.0 if img.max() > 1 else 1.0)
            img = img[None] if img.ndim == 2 else np.moveaxis(img[..., :3], -1, 0)
            img = to_channels(img, channels)
            _, h, w = img.shape
            for t in range(0, h - 63, 64):
                for l in range(0, w - 63, 64):
                    tiles.append(img[:, t:t + 64, l:l + 64])
        return ArraySet(np.stack(tiles), augment=True)
    from ..suggest import did_you_mean

    raise UsageError(f"unknown --dataset '{name}'{did_you_mean(name, DATASETS)} (valid: {', '.join(DATASETS)})")
