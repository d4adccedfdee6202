"""From an image and a degradation chain to the problem the engine solves.

:class:`ForwardModel` chains degradations: ``A = A_n o ... o A_1``; the
observation of a clean image is ``y = c_n(A_n(... c_1(A_1(x))))`` where
``c_i`` adds stage i's noise.  :func:`build_problem` synthesises (benchmark
mode) or takes (restore mode) the observation, pads it by reflection so the
image side is a multiple of the generator's stride, and remembers how to
crop the result back so that no pixel is lost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..components import Degradation
from ..errors import ComponentFailure, RestoreKitError, UsageError

MODES = ("benchmark", "restore")


class ForwardModel:
    """A chain of prepared degradations acting as one operator."""

    def __init__(self, stages: Sequence[Degradation]) -> None:
        self.stages = list(stages)
        self.mask: np.ndarray | None = None

    @property
    def scale(self) -> int:
        return math.prod(s.scale_factor() for s in self.stages)

    def prepare(self, image_shape: tuple[int, int, int], seed: int, mode: str) -> tuple[int, int, int]:
        shape = image_shape
        mask = None
        for i, stage in enumerate(self.stages):
            if mask is not None and stage.scale_factor() != 1:
                raise UsageError(
                    f"degradation '{stage.name}' changes the size after a masking stage; "
                    "put downsample before bernoulli/mask/box/text in --degrade"
                )
            shape = _call(stage, "prepare", shape, np.random.default_rng([seed, i, 0]), mode)
            if stage.mask is not None:
                mask = stage.mask if mask is None else (mask & stage.mask)
        self.mask = mask
        return shape

    def forward(self, x):
        for stage in self.stages:
            try:
                x = stage.forward(x)
            except (RestoreKitError, KeyboardInterrupt):
                raise
            except (Exception, SystemExit) as exc:
                raise ComponentFailure(stage, "forward", exc) from exc
        return x

    __call__ = forward

    def synthesize(self, x: np.ndarray, seed: int) -> np.ndarray:
        """Degrade a clean (C, H, W) image: operators and their seeded noise."""
        import torch

        y = x.astype(np.float32)
        for i, stage in enumerate(self.stages):
            with torch.no_grad():
                y = _call(stage, "forward", torch.from_numpy(np.ascontiguousarray(y))[None])[0].numpy()
            y = np.asarray(_call(stage, "corrupt", y, np.random.default_rng([seed, i, 1]))).astype(np.float32)
        return y

    def noise_sigma(self) -> float | None:
        sig = [s.noise_sigma() for s in self.stages]
        known = [v for v in sig if v]
        return math.sqrt(sum(v * v for v in known)) if known else None

    def mask_tensor(self, device=None):
        if self.mask is None:
            return None
        import torch

        return torch.as_tensor(self.mask, dtype=torch.float32, device=device)[None, None]


def _call(component, method: str, *args):
    """``component.method(*args)``; its own failures name it (restorekit's errors pass through)."""
    try:
        return getattr(component, method)(*args)
    except (RestoreKitError, KeyboardInterrupt):
        raise
    except (Exception, SystemExit) as exc:
        raise ComponentFailure(component, method, exc) from exc


@dataclass
class PaddedProblem:
    """The observation as the engine sees it, and how to undo the padding."""

    observation: np.ndarray  # (C, h', w') padded
    mask: np.ndarray | None  # (h', w') bool, padded
    reference: np.ndarray | None  # (C, H', W') padded clean image, or None
    degraded: np.ndarray  # (C, h, w) observation before padding (what the user sees)
    image_shape: tuple[int, int, int]  # padded (C, H', W')
    crop: tuple[int, int, int, int]  # top, left, height, width of the result in image space
    obs_crop: tuple[int, int, int, int]  # the same in observation space
    forward: ForwardModel
    scale: int


def crop_region(a, crop: tuple[int, int, int, int] | None):
    """``a[..., top:top+h, left:left+w]`` for ``crop = (top, left, h, w)`` (an array or a tensor); None: ``a``."""
    if crop is None:
        return a
    top, left, h, w = crop
    return a[..., top : top + h, left : left + w]


def _pad_amounts(size: int, multiple: int) -> tuple[int, int]:
    total = (-size) % multiple
    return pad_amounts(size, total)


def pad_amounts(size: int, total: int) -> tuple[int, int]:
    """How a pad of ``total`` pixels is split (before, after): centred, as the engine pads."""
    return total // 2, total - total // 2


def build_problem(
    image: np.ndarray,
    forward: ForwardModel,
    *,
    mode: str,
    seed: int,
    stride: int,
    reference: np.ndarray | None = None,
) -> PaddedProblem:
    """Prepare the observation for a generator needing sides divisible by ``stride``.

    ``image`` is (C, H, W) float in [0, 1]: the clean image in benchmark mode
    (it is degraded here with ``seed``), the observation in restore mode.
    """
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r} (valid: {', '.join(MODES)})")
    s = forward.scale
    c = image.shape[0]
    if mode == "benchmark":
        reference = image
        H, W = image.shape[1:]
        # a clean image whose side is not a multiple of the scale: extend it
        # (reflect) so the observation is whole, and crop back at the end
        ph, pw = (-H) % s, (-W) % s
        clean = np.pad(image, ((0, 0), (0, ph), (0, pw)), mode="reflect") if (ph or pw) else image
        forward.prepare(clean.shape, seed, mode)
        degraded = forward.synthesize(clean, seed)
        ref_full = clean
    else:
        h, w = image.shape[1:]
        H, W = h * s, w * s
        forward.prepare((c, H, W), seed, mode)
        degraded = image.astype(np.float32)
        ref_full = None
        if reference is not None:
            if reference.shape[1:] != (H, W):
                raise UsageError(
                    f"reference is {reference.shape[2]}x{reference.shape[1]} but the result will be "
                    f"{W}x{H}; pass the clean image at the restored size"
                )
            if reference.shape[0] != c:
                raise UsageError(
                    f"reference has {reference.shape[0]} channels but the image has {c}"
                )
            ref_full = reference
    h, w = degraded.shape[1:]
    mask = forward.mask
    if mask is not None and mask.shape != (h, w):
        raise UsageError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the observation is {w}x{h}")
    # pad the observation so that the image side is a multiple of the stride
    unit = stride // math.gcd(stride, s)
    (t, b), (l, r) = _pad_amounts(h, unit), _pad_amounts(w, unit)
    obs = np.stack([_pad2d(ch, (t, b), (l, r)) for ch in degraded])
    padded = bool(t or b or l or r)
    if padded:
        # masking stages must see the padded observation's mask
        for stage in forward.stages:
            if stage.mask is not None:
                stage.mask = _pad2d(stage.mask, (t, b), (l, r))
                if hasattr(stage, "_mask_t"):
                    stage._mask_t = None
        forward.mask = None if mask is None else _pad2d(mask, (t, b), (l, r))
    pmask = forward.mask
    ref_pad = None
    if ref_full is not None:
        ref_pad = np.stack([_pad2d(ch, (t * s, b * s), (l * s, r * s)) for ch in ref_full])
    image_shape = (c, obs.shape[1] * s, obs.shape[2] * s)
    return PaddedProblem(
        observation=obs.astype(np.float32),
        mask=pmask,
        reference=None if ref_pad is None else ref_pad.astype(np.float32),
        degraded=degraded,
        image_shape=image_shape,
        crop=(t * s, l * s, H, W),
        obs_crop=(t, l, h, w),
        forward=forward,
        scale=s,
    )


def _pad2d(a: np.ndarray, tb: tuple[int, int], lr: tuple[int, int]) -> np.ndarray:
    if not any(tb) and not any(lr):
        return a
    mode = "reflect" if min(a.shape) > 1 else "edge"
    return np.pad(a, (tb, lr), mode=mode)
