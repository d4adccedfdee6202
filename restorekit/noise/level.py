"""A learned second opinion on the noise level: a small CNN that reads, from a patch alone, how much of its
variation is noise.

:func:`~.model.estimate` takes the flattest blocks of an image to hold noise.  On a clean photo textured
everywhere (water, foliage, fur, a stone wall) its flattest blocks hold texture, and it reads 10-26 grey
levels of "noise" where there is none (docs/benchmarks.md, "Clean photos").  Statistics of the blocks alone
do not tell fine texture from camera noise; a network trained on both does.

The network sees one channel of a 64x64 patch, normalised to zero mean and unit spread, and predicts the
log of the noise's share of that spread; times the patch's spread that is the noise's RMS there.  It is
trained (:func:`train`) on the colour photos of ``cbsd432`` (every 20th left out: ``benchmarks/clean.py``'s
check set) with noise made the way a camera makes it (:func:`simulate`: Poisson-Gaussian noise on the linear raw mosaic,
demosaicking, sometimes in-camera smoothing, the tone curve, JPEG), or white Gaussian noise, or none.

The image's level per channel is the lower quartile of its patches' levels (noise is everywhere, fine
texture is not).  It is used as a cap (:func:`cap`): the statistical estimate is kept unless its mean over
the channels is more than :data:`CAP` times the learned level's.  On cc15 (15 photos, whole and in 4 crops)
the true RMS is 1.1-3.4 times the learned level (median 1.8: the network under-reads real noise, whose
spatial correlation is stronger than the simulation's); on the dev photos, whole, the statistical estimate
is 1.3-33 times it (median 5.2).

The weights (``restorekit/data/noise-level``) are reproduced by::

    python -m restorekit.noise.level ../shared/data/train/cbsd432 --out restorekit/data/noise-level --overwrite
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .model import NoiseModel

#: side of the patches the network reads
PATCH = 64
#: at most this many patches per channel are read (a regular grid, thinned on large images)
MAX_PATCHES = 400
#: the statistical estimate's mean over the channels is capped at this many times the learned level's.  On the
#: 60 cc15 crops (benchmarks/real.py --crops all; mean 36.777 dB, worst crop -1.03 dB against its noisy input
#: without a cap) this lowered 8 levels: mean 36.762, worst crop -0.61.  The median reading with a cap of 2
#: did about as well there (36.769, -0.26) but kept Set14 zebra, whole, at 32.7 dB (benchmarks/clean.py --whole)
CAP = 2.5
#: the image's level is this quantile of its patches' levels: noise is everywhere, fine texture is not (a
#: zebra's grass read 4.3 grey levels at the median over the whole photo, and kept it at 32.7 dB)
QUANTILE = 0.25
#: log of the smallest noise share the network is trained to report (a noise-free patch)
FLOOR = math.log(0.01)
FORMAT = "restorekit-noise-level"
FOLDER = "noise-level"


# -- simulated camera noise --------------------------------------------------------------------------------
def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, 1)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


_K_G = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]]) / 4.0
_K_RB = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 4.0


def _bayer(lin: np.ndarray) -> np.ndarray:
    """RGGB sampling of ``lin`` (H, W, 3) and bilinear demosaicking."""
    from scipy.ndimage import convolve

    h, w, _ = lin.shape
    mask = np.zeros((h, w, 3))
    mask[0::2, 0::2, 0] = 1
    mask[0::2, 1::2, 1] = mask[1::2, 0::2, 1] = 1
    mask[1::2, 1::2, 2] = 1
    return np.stack([convolve(lin[..., c] * mask[..., c], k, mode="mirror")
                     for c, k in ((0, _K_RB), (1, _K_G), (2, _K_RB))], -1)


def _jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)).save(buf, "JPEG", quality=int(quality))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())), np.float64) / 255


def simulate(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A clean sRGB crop ``x`` (H, W, 3) in [0, 1] through a simulated camera: (noisy, the same without
    noise).  15 %: no noise; 20 %: white Gaussian noise (0.5-20 grey levels); else Poisson-Gaussian noise on
    the linear RGGB mosaic (white balance undone, shot 1e-4-5e-2, read 1e-7-3e-4 variance), bilinear
    demosaicking, in 60 % smoothing of up to 1.6 pixels (in-camera noise reduction), the tone curve.  80 %
    of all are then JPEG-compressed at quality 70-98 (both outputs alike)."""
    from scipy.ndimage import gaussian_filter

    kind = rng.random()
    quality = int(rng.integers(70, 99)) if rng.random() < 0.8 else None

    def finish(a: np.ndarray) -> np.ndarray:
        return a if quality is None else _jpeg(a, quality)

    if kind < 0.15:
        ref = finish(x)
        return ref, ref
    if kind < 0.35:
        s = math.exp(rng.uniform(math.log(0.5), math.log(20))) / 255
        return finish(np.clip(x + rng.normal(0, s, x.shape), 0, 1)), finish(x)
    gains = np.array([rng.uniform(1.5, 2.4), 1.0, rng.uniform(1.3, 2.0)])
    raw = _srgb_to_linear(x) / gains
    shot = math.exp(rng.uniform(math.log(1e-4), math.log(5e-2)))
    read = math.exp(rng.uniform(math.log(1e-7), math.log(3e-4)))
    noisy = raw + rng.normal(0, 1, raw.shape) * np.sqrt(np.maximum(shot * raw + read, 0))
    pair = [_bayer(noisy), _bayer(raw)]
    blur = rng.uniform(0, 1.6) if rng.random() < 0.6 else 0.0
    if blur > 0.1:
        pair = [np.stack([gaussian_filter(a[..., c], blur) for c in range(3)], -1) for a in pair]
    return finish(_linear_to_srgb(pair[0] * gains)), finish(_linear_to_srgb(pair[1] * gains))


def training_set(files: list[Path], per_image: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Normalised one-channel patches (N, 1, PATCH, PATCH) float32 and their targets: the log of the noise's
    RMS over the patch's spread, at least :data:`FLOOR`."""
    from PIL import Image

    side = PATCH + 16  # a margin, so that demosaicking and JPEG see the patch's surroundings
    xs, ts = [], []
    for f in files:
        with Image.open(f) as im:
            img = np.asarray(im.convert("RGB"), np.float64) / 255
        h, w, _ = img.shape
        if min(h, w) <= side:
            continue
        for _ in range(per_image):
            y0, x0 = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
            noisy, ref = simulate(img[y0:y0 + side, x0:x0 + side], rng)
            noisy, ref = noisy[8:-8, 8:-8], ref[8:-8, 8:-8]
            for c in range(3):
                p = noisy[..., c]
                spread = float(p.std())
                if spread < 1e-3:
                    continue
                xs.append(((p - p.mean()) / spread).astype(np.float32))
                ts.append(max(math.log(max(float((p - ref[..., c]).std()), 1e-12) / spread), FLOOR))
    return np.stack(xs)[:, None], np.asarray(ts, np.float32)


# -- the network -------------------------------------------------------------------------------------------
def build(channels: int = 32) -> Any:
    """Seven 3x3 convolutions (two of stride 2), ReLU, a 1x1 head; the output's spatial mean."""
    import torch.nn as nn

    c = channels

    class LevelNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(1, c, 3, padding=1), nn.ReLU(),
                nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
                nn.Conv2d(c, c, 3, padding=1, stride=2), nn.ReLU(),
                nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
                nn.Conv2d(c, c, 3, padding=1, stride=2), nn.ReLU(),
                nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
                nn.Conv2d(c, 1, 1))

        def forward(self, x: Any) -> Any:
            return self.body(x).mean(dim=(1, 2, 3))

    return LevelNet()


def train(folder: Path, out: Path, per_image: int = 60, steps: int = 4000, batch: int = 64, lr: float = 1e-3,
          seed: int = 0, skip_every: int = 20, log: Any = print) -> dict[str, Any]:
    """Train the level network on the photos in ``folder`` (every ``skip_every``-th in name order left out)
    and write ``model.safetensors`` and ``model.json`` into ``out``.  Returns the card."""
    import torch
    import torch.nn.functional as F

    from ..learn.loop import fit
    from ..learn.model import save

    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".tif"))
    left_out = set(files[::skip_every]) if skip_every else set()
    files = [f for f in files if f not in left_out]
    t0 = time.perf_counter()
    xs, ts = training_set(files, per_image, np.random.default_rng(seed))
    n_val = min(2000, len(xs) // 10)
    x, t = torch.from_numpy(xs), torch.from_numpy(ts)
    xv, tv, xt, tt = x[:n_val], t[:n_val], x[n_val:], t[n_val:]
    log(f"{len(xs)} patches from {len(files)} photos ({time.perf_counter() - t0:.0f} s)")
    torch.manual_seed(seed)
    net = build()
    opt = torch.optim.Adam(net.parameters(), lr)
    gen = torch.Generator().manual_seed(seed)
    scores: list[float] = []

    def draw() -> tuple[tuple, Any]:
        idx = torch.randint(len(xt), (batch,), generator=gen)
        return (torch.rot90(xt[idx], int(torch.randint(4, (1,), generator=gen)), (2, 3)),), tt[idx]

    def report(epoch: int, step: int, loss: float) -> None:
        with torch.no_grad():
            scores.append(float((net(xv) - tv).abs().median()))
        log(f"step {step}: loss {loss:.3f}, validation median |log error| {scores[-1]:.3f} "
            f"({time.perf_counter() - t0:.0f} s)")

    fit(net, opt, draw, lambda out, target: F.smooth_l1_loss(out, target, beta=0.2), total=steps,
        schedule=torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps), epoch=500, on_epoch=report)
    val = scores[-1]
    card = {"architecture": "levelnet", "channels": 32, "patch": PATCH,
            "trained": {"folder": str(folder), "photos": len(files), "left_out_every": skip_every,
                        "patches": int(len(xs)), "per_image": per_image, "steps": steps, "batch": batch,
                        "lr": lr, "seed": seed, "seconds": round(time.perf_counter() - t0)},
            "val_median_abs_log_error": round(val, 4)}
    save(net, card, Path(out), fmt=FORMAT)
    return card


# -- reading an image's level ------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _shipped() -> Any:
    import torch
    from safetensors.torch import load_file

    path = Path(str(resources.files("restorekit") / "data" / FOLDER / "model.safetensors"))
    if not path.is_file():
        return None
    net = build()
    net.load_state_dict(load_file(str(path)))
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _grid(size: int, count: int) -> list[int]:
    """``count`` patch origins spread evenly over ``size`` pixels (the last one flush with the end)."""
    last = size - PATCH
    if count <= 1 or last <= 0:
        return [max(last, 0) // 2]
    return sorted({round(i * last / (count - 1)) for i in range(count)})


def levels(image: np.ndarray, net: Any = None) -> np.ndarray | None:
    """Per channel, the learned noise RMS of ``image`` (C, H, W) in its own units: the lower quartile
    (:data:`QUANTILE`) over a grid of patches (at most :data:`MAX_PATCHES`) of the predicted share times each
    patch's spread.  None where the
    image is smaller than a patch or no network is installed; NaN for a channel with no texture at all."""
    import torch

    net = net if net is not None else _shipped()
    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if net is None or min(x.shape[-2:]) < PATCH:
        return None
    h, w = x.shape[-2:]
    per_side = max(1, int(math.sqrt(MAX_PATCHES)))
    ys = _grid(h, min(per_side, max(1, 2 * (h - PATCH) // PATCH + 1)))
    xs = _grid(w, min(per_side, max(1, 2 * (w - PATCH) // PATCH + 1)))
    out = np.full(x.shape[0], np.nan)
    for k in range(x.shape[0]):
        patches = np.stack([x[k, i:i + PATCH, j:j + PATCH] for i in ys for j in xs])
        spread = patches.std(axis=(1, 2))
        keep = spread > 1e-9
        if not keep.any():
            continue
        z = (patches[keep] - patches[keep].mean(axis=(1, 2), keepdims=True)) / spread[keep, None, None]
        with torch.inference_mode():
            share = torch.exp(net(torch.from_numpy(z[:, None].astype(np.float32)))).double().numpy()
        out[k] = float(np.quantile(share * spread[keep], QUANTILE))
    return out


def cap(model: NoiseModel, image: np.ndarray, net: Any = None) -> tuple[NoiseModel, str | None]:
    """``model`` with its level lowered, in every channel alike, until its mean RMS over the channels is at
    most :data:`CAP` times the learned one, and a note saying so (None where nothing was lowered).  The mean
    over the channels: one channel's learned level can be far off (a dark, featureless blue channel read 0.7
    grey levels of noise where there were 5.7), the mean of three is steadier."""
    learned = levels(image, net)
    if learned is None:
        return model, None
    read = learned[np.isfinite(learned)]
    limit = CAP * float(read.mean()) if len(read) else math.inf
    level = float(np.mean(model.rms))
    if not level > limit:
        return replace(model, learned=learned), None
    out = replace(model.scaled((limit / level) ** 2), learned=learned)
    before = "/".join(f"{v * 255:.2g}" for v in model.rms)
    note = (f"noise level lowered to {CAP:g}x the noise-level network's reading (RMS {before} -> "
            f"{'/'.join(f'{v * 255:.2g}' for v in out.rms)}, 0-255): the flattest parts of the image look like "
            "texture to it, not noise")
    return out, note


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(prog="python -m restorekit.noise.level", description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="clean colour photos (../shared/data/train/cbsd432)")
    p.add_argument("--out", type=Path, required=True, help="model folder to write")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--per-image", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    a = p.parse_args(argv)
    if (a.out / "model.safetensors").exists() and not a.overwrite:
        p.exit(2, f"error: {a.out} already holds a model; add --overwrite to replace it\n")
    train(a.folder, a.out, per_image=a.per_image, steps=a.steps, seed=a.seed)


if __name__ == "__main__":
    main()
