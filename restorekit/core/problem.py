"""What the restoration pipeline (:mod:`restorekit.run`) hands its plugins: :class:`Problem`,
:class:`Geometry`, and the :class:`LoopOptions` a prior asks the fitting loop for.

The pipeline builds them (:func:`restorekit.run.problem.build_problem`); they
live here, in the core, because the plugin interfaces receive them
(``Prior.solve(problem)``, ``Prior.loop_options()``) and the core imports no
pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .degradation import Degradation

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["LoopOptions", "Geometry", "Problem"]


@dataclass
class LoopOptions:
    """Settings of the optimisation loop that a prior may ask for."""

    #: exponential moving average of outputs (0 = off; the authors use 0.99)
    ema: float = 0.0
    #: restore the last good weights when the fit to the observation drops by
    #: more than this many dB between two checks (0 = off)
    backtrack_db: float = 0.0
    #: check every this many iterations (0: every one except multiples of 100, as the
    #: authors' denoising notebook does)
    backtrack_every: int = 0
    #: fit with Stein's unbiased risk estimate instead of the squared error (denoising with
    #: a known Gaussian sigma, the observation as the network input)
    sure: bool = False
    #: return the observed pixels as observed where the forward model is a noise-free mask (inpainting,
    #: detected impulses): only the missing pixels come from the fit
    keep_known: bool = False


@dataclass(frozen=True)
class Geometry:
    """Where the image sits on the generator's canvas, and what the user gets back.

    ``image_shape`` ``(C, H, W)`` is the size the forward model was prepared
    for: every degradation sees exactly this size, never padding.
    ``canvas_shape`` ``(C, H', W')`` is what a generator produces (its sides
    a multiple of the generator's stride); the image is the region ``crop``
    ``(top, left, H, W)`` of it, and the fitting loop crops the canvas before
    applying the forward model.  ``result_size`` ``(H0, W0)`` is the top-left
    part of the image returned to the user (smaller than ``H, W`` only when a
    clean image was extended to a multiple of a downsampling factor).
    """

    image_shape: tuple[int, int, int]
    canvas_shape: tuple[int, int, int]
    crop: tuple[int, int, int, int]
    result_size: tuple[int, int]

    @classmethod
    def identity(cls, image_shape: tuple[int, int, int]) -> "Geometry":
        """No padding: the canvas is the image and the result is all of it."""
        c, h, w = (int(v) for v in image_shape)
        return cls((c, h, w), (c, h, w), (0, 0, h, w), (h, w))

    @property
    def padded(self) -> bool:
        return self.canvas_shape != self.image_shape

    def to_image(self, x):
        """The image region ``(..., H, W)`` of a canvas-sized array or tensor."""
        top, left, h, w = self.crop
        return x[..., top : top + h, left : left + w]

    def to_result(self, x):
        """The user's result ``(..., H0, W0)`` from an image-sized array or tensor."""
        h0, w0 = self.result_size
        return x[..., :h0, :w0]

    def pad_to_canvas(self, x):
        """An image-sized ``(C, H, W)`` or ``(N, C, H, W)`` array or tensor extended to the canvas
        by reflection (edge replication for a side of one pixel)."""
        if not self.padded:
            return x
        import numpy as np

        top, left, h, w = self.crop
        _, hh, ww = self.canvas_shape
        pads = ((top, hh - h - top), (left, ww - w - left))
        mode = "reflect" if min(h, w) > 1 else "edge"
        if isinstance(x, np.ndarray):
            lead = ((0, 0),) * (x.ndim - 2)
            return np.pad(x, lead + pads, mode=mode)
        import torch

        a = np.pad(x.detach().cpu().numpy(), ((0, 0),) * (x.dim() - 2) + pads, mode=mode)
        return torch.from_numpy(np.ascontiguousarray(a)).to(device=x.device, dtype=x.dtype)


@dataclass
class Problem:
    """One restoration problem, as solvers and the fitting loop see it.

    ``observation`` is ``(1, C, h, w)``; ``forward`` the prepared forward
    model ``A`` (a callable on ``(N, C, H, W)`` tensors); ``mask``
    ``(1, 1, h, w)`` (1 = observed) or ``None``; ``image_shape`` the
    ``(C, H, W)`` of the image to recover; ``init`` the starting estimate of
    that shape: the observation with its missing pixels filled (biharmonic
    inpainting, a normalised convolution for very large holes) and low
    resolution upsampled (bicubic), or the result of a solver prior that
    guides the fit (:func:`restorekit.run.problem.initial_estimate`).  ``sigma`` is the Gaussian noise level in
    [0, 1] units where a degradation knows it.  ``geometry`` says where the
    image sits on a generator's canvas (no padding by default); ``reference``
    is the clean image at the result's size ``(1, C, H0, W0)`` when known —
    the fitting loop reports PSNR against it, and a solver never receives it.
    Built by :func:`restorekit.run.problem.build_problem`.
    """

    observation: "torch.Tensor"
    forward: Any
    mask: "torch.Tensor | None"
    image_shape: tuple[int, int, int]
    init: "torch.Tensor"
    degradations: list[Degradation] = field(default_factory=list)
    sigma: float | None = None
    seed: int = 0
    device: Any = "cpu"
    geometry: Geometry | None = None
    reference: "torch.Tensor | None" = None
    mode: str = "restore"
    task: str = "denoise"
    #: the estimated noise model (:class:`restorekit.noise.NoiseModel`) where a degradation estimates one
    #: from the observation (``noise``); ``sigma`` is then its white-noise equivalent
    noise: Any = None

    def __post_init__(self) -> None:
        if self.geometry is None:
            self.geometry = Geometry.identity(self.image_shape)

    @property
    def scale(self) -> int:
        """Image pixels per observed pixel, per axis (super-resolution factor)."""
        return max(1, self.image_shape[1] // max(1, int(self.observation.shape[-2])))
