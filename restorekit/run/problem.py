"""From an image and a degradation chain to the one :class:`~restorekit.Problem` of a run.

:class:`ForwardModel` chains degradations: ``A = A_n o ... o A_1``; the
observation of a clean image is ``y = c_n(A_n(... c_1(A_1(x))))`` where
``c_i`` adds stage i's noise.  :func:`build_problem` synthesises (benchmark
mode) or takes (restore mode) the observation and builds the problem: the
observation, forward model, mask, initial estimate and the geometry of the
generator's canvas.  No degradation ever sees the canvas: the fitting loop
crops it to the image before applying the forward model.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..components import Degradation, Geometry, Problem
from ..errors import ComponentFailure, RestoreKitError, UsageError
from .settings import MODES

#: the tasks restorekit knows, most specific first (a chain's task is its first match)
TASK_ORDER = ("sr", "inpaint", "deblur", "denoise")


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


def pad_amounts(size: int, total: int) -> tuple[int, int]:
    """How a pad of ``total`` pixels is split (before, after): centred."""
    return total // 2, total - total // 2


def canvas_geometry(
    image_shape: tuple[int, int, int], observed_hw: tuple[int, int], scale: int, stride: int,
    result_size: tuple[int, int] | None = None,
) -> Geometry:
    """The canvas a generator of ``stride`` needs around an image of ``image_shape``.

    The observation (``observed_hw``, ``scale`` times smaller) is extended,
    centred, to a multiple of ``stride / gcd(stride, scale)``; the canvas is
    that times ``scale``, so the image sits on whole observed pixels.
    """
    c, H, W = image_shape
    h, w = observed_hw
    unit = stride // math.gcd(stride, scale)
    (t, b), (l, r) = pad_amounts(h, (-h) % unit), pad_amounts(w, (-w) % unit)
    canvas = (c, (h + t + b) * scale, (w + l + r) * scale)
    return Geometry(
        image_shape=(c, H, W), canvas_shape=canvas, crop=(t * scale, l * scale, H, W),
        result_size=result_size or (H, W),
    )


def infer_task(stages: Sequence[Degradation]) -> str:
    """The task of a chain: what its stages declare (sr over inpaint over deblur over denoise), else inferred."""
    declared = [getattr(s, "task", None) for s in stages]
    for task in TASK_ORDER:
        if task in declared:
            return task
    other = next((t for t in declared if t), None)
    if other:
        return other
    if math.prod(s.scale_factor() for s in stages) > 1:
        return "sr"
    if any(s.mask is not None for s in stages):
        return "inpaint"
    return "denoise"


#: masks with at most this many missing pixels are filled by biharmonic inpainting in the initial
#: estimate; larger ones by a cheaper multi-scale normalised convolution (biharmonic's sparse solve
#: grows too large)
BIHARMONIC_MAX_MISSING = 300_000


def initial_estimate(observation, mask, scale: int):
    """The observation with its missing pixels filled (biharmonic inpainting, or a multi-scale
    normalised convolution for very large holes), then upsampled (bicubic), in [0, 1].

    It starts the identity parameterisation, is the network input of
    ``dip:input=observation`` (which ``--prior auto`` uses for missing pixels:
    a fit from this estimate beat the fit from noise and biharmonic inpainting
    itself in cpu-256), and the super-resolution baseline.
    """
    import torch
    import torch.nn.functional as F

    x = observation.clone()
    if mask is not None:
        known = (mask[0, 0] > 0).cpu().numpy()
        if not known.all():
            x = torch.from_numpy(fill_missing(x[0].cpu().numpy(), known))[None].to(observation.dtype)
    if scale > 1:
        x = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
    return x.clamp(0, 1)


def fill_missing(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """A (C, H, W) image with the pixels where ``known`` (H, W) is False filled from the others."""
    missing = ~known
    if missing.sum() <= BIHARMONIC_MAX_MISSING:
        from skimage.restoration import inpaint_biharmonic

        out = inpaint_biharmonic(np.moveaxis(image.astype(np.float64), 0, -1), missing, channel_axis=-1)
        return np.ascontiguousarray(np.moveaxis(out, -1, 0), dtype=np.float32)
    from scipy.ndimage import gaussian_filter

    out = image.astype(np.float64) * known
    filled = known.copy()
    weight = known.astype(np.float64)
    sigma = 1.0
    while not filled.all() and sigma < 4 * max(known.shape):
        den = gaussian_filter(weight, sigma)
        new = ~filled & (den > 1e-6)
        for c in range(out.shape[0]):
            num = gaussian_filter(out[c] * weight, sigma)
            out[c][new] = num[new] / den[new]
        filled |= new
        sigma *= 2
    if not filled.all():  # nothing known nearby at all: the mean of the known pixels
        out[:, ~filled] = (image[:, known].mean(axis=1)[:, None] if known.any() else 0.5)
    return out.astype(np.float32)


def build_problem(
    image: np.ndarray,
    forward: ForwardModel,
    *,
    mode: str,
    seed: int,
    stride: int = 1,
    reference: np.ndarray | None = None,
) -> Problem:
    """The one :class:`~restorekit.Problem` of a run.

    ``image`` is (C, H, W) float in [0, 1]: the clean image in benchmark mode
    (it is degraded here with ``seed``), the observation in restore mode.
    The forward model is prepared for the image's own size; ``stride`` (the
    generator's) only sets the canvas in ``problem.geometry``.
    """
    import torch

    if mode not in MODES:  # users' modes are checked in the settings; this guards direct callers
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    s = forward.scale
    c = image.shape[0]
    if mode == "benchmark":
        H0, W0 = image.shape[1:]
        # a clean image whose side is not a multiple of the scale: extend it
        # (reflect) so the observation is whole; the result is cut back to H0 x W0
        ph, pw = (-H0) % s, (-W0) % s
        clean = np.pad(image, ((0, 0), (0, ph), (0, pw)), mode="reflect") if (ph or pw) else image
        forward.prepare(clean.shape, seed, mode)
        degraded = forward.synthesize(clean, seed)
        ref = image
        image_shape = tuple(int(v) for v in clean.shape)
    else:
        h, w = image.shape[1:]
        H0, W0 = h * s, w * s
        image_shape = (c, H0, W0)
        forward.prepare(image_shape, seed, mode)
        degraded = image.astype(np.float32)
        ref = None
        if reference is not None:
            if reference.shape[1:] != (H0, W0):
                raise UsageError(
                    f"reference is {reference.shape[2]}x{reference.shape[1]} but the result will be "
                    f"{W0}x{H0}; pass the clean image at the restored size"
                )
            if reference.shape[0] != c:
                raise UsageError(f"reference has {reference.shape[0]} channel(s) but the image has {c}")
            ref = reference
    h, w = degraded.shape[1:]
    lost = [v for v in (_call(stage, "detect_lost", degraded) for stage in forward.stages
                        if callable(getattr(stage, "detect_lost", None))) if v is not None]
    if lost:
        # noise that replaced pixels outright (impulses): those pixels are missing, as a mask's are
        known = ~np.any([np.asarray(v, dtype=bool) for v in lost], axis=0)
        if known.shape != (h, w):
            raise UsageError(f"detected pixels are {known.shape[1]}x{known.shape[0]} but the observation is {w}x{h}")
        if not known.any():
            raise UsageError("every pixel of the observation looks like impulse noise; nothing is left to fit")
        forward.mask = known if forward.mask is None else (forward.mask & known)
    noise = None
    for stage in forward.stages:  # a blind noise model, estimated from the observation (degradation 'noise')
        if callable(getattr(stage, "estimate_noise", None)):
            noise = _call(stage, "estimate_noise", degraded)
    mask = forward.mask
    if mask is not None and mask.shape != (h, w):
        raise UsageError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the observation is {w}x{h}")
    observation = torch.from_numpy(np.ascontiguousarray(degraded, dtype=np.float32))[None]
    mask_t = forward.mask_tensor()
    return Problem(
        observation=observation,
        forward=forward,
        mask=mask_t,
        image_shape=image_shape,
        init=initial_estimate(observation, mask_t, s),
        degradations=list(forward.stages),
        sigma=forward.noise_sigma() if noise is None else noise.white_sigma(),
        noise=noise,
        seed=seed,
        geometry=canvas_geometry(image_shape, (h, w), s, stride, (H0, W0)),
        reference=None if ref is None else torch.from_numpy(np.ascontiguousarray(ref, dtype=np.float32))[None],
        mode=mode,
        task=infer_task(forward.stages),
    )
