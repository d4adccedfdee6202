"""``restorekit sample``: decode random codes of a trained autoencoder into a grid of images.

Codes are drawn per element from a normal distribution with the mean and
spread of the model's codes over its training images (``code.safetensors``,
written by ``restorekit train``), so the samples look like the training data
rather than like the decoder's response to arbitrary numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import UsageError


def sample_images(model_path: Path, count: int, seed: int, device: str | None = None) -> np.ndarray:
    """(count, C, H, W) decoded samples in [0, 1]; ``device``: where the decoder runs (None: the CPU; the
    codes are drawn on the CPU either way, so a seed gives the same codes everywhere)."""
    import torch

    from .model import code_stats, load, resolve

    path = resolve(str(model_path))
    model = load(path)
    decode = getattr(model.net, "decode", None)
    if decode is None or getattr(model.net, "skips", False):
        raise UsageError(f"the model in '{path}' ({model.card.get('net', model.card.get('architecture'))}) is not an "
                         "autoencoder with a code of its own; sample needs --net dense-autoencoder or "
                         "conv-autoencoder (without skips)")
    stats = code_stats(path)
    if stats is None:
        raise UsageError(f"'{path}' has no code.safetensors (the code statistics restorekit train writes)")
    mean, std = stats
    declared = model.card.get("code_shape")
    if declared is not None and list(mean.shape) != declared:
        raise UsageError(f"the codes in '{path / 'code.safetensors'}' have shape {list(mean.shape)}, but model.json "
                         f"says {declared}: the folder's files do not belong together")
    g = torch.Generator().manual_seed(seed)
    codes = mean + std * torch.randn((count, *mean.shape), generator=g)
    codes = codes.float()
    if device is not None:
        from ..session.device import pick_device

        dev = pick_device(device)
        if dev.type != "cpu":
            model.net.to(dev)
            codes = codes.to(dev)
    try:
        with torch.no_grad():
            imgs = decode(codes).cpu()
    except RuntimeError as exc:  # codes of another network
        raise UsageError(f"the codes in '{path / 'code.safetensors'}' do not fit the network in '{path}' "
                         f"({str(exc).splitlines()[0][:160]})") from None
    h, w = model.card.get("sample_size") or imgs.shape[-2:]
    return imgs[..., :h, :w].clamp(0, 1).numpy()


def grid(images: np.ndarray, gap: int = 1) -> np.ndarray:
    """(C, H', W'): the images in a near-square grid, ``gap`` pixels of white between them."""
    n, c, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    out = np.ones((c, rows * (h + gap) - gap, cols * (w + gap) - gap), np.float32)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        out[:, r * (h + gap):r * (h + gap) + h, k * (w + gap):k * (w + gap) + w] = img
    return out


def sample_grid(model_path: Path, count: int, seed: int, out: Path, overwrite: bool = False,
                device: str | None = None) -> None:
    """Write ``count`` samples as one PNG grid (atomically; magnified so small images stay visible)."""
    from ..io import write_image

    g = grid(sample_images(model_path, count, seed, device=device))
    scale = max(1, 128 // max(g.shape[1:]) + 1) if max(g.shape[1:]) < 256 else 1
    if scale > 1:
        g = np.repeat(np.repeat(g, scale, axis=1), scale, axis=2)
    img = (np.moveaxis(g, 0, -1) * 255).round().astype(np.uint8)
    write_image(out, img[..., 0] if img.shape[-1] == 1 else img, overwrite=overwrite)
