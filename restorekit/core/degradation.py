"""The :class:`Degradation` kind: a forward model ``y = noise(A(x))`` (``--degrade``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import SpecError
from .component import Component

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

__all__ = ["Degradation"]


class Degradation(Component):
    """A forward model ``y = noise(A(x))``.

    The random part (a mask draw, a noise draw) is separated from the
    deterministic operator ``A`` that the loss differentiates through:

    * :meth:`prepare` is called once with the shape of the image entering
      this stage, a seeded NumPy generator and the mode; it draws any random
      operator state (a Bernoulli mask) and returns the output shape.
    * :meth:`forward` applies ``A`` to a torch tensor; deterministic and
      differentiable.
    * :meth:`corrupt` adds the random noise to ``A(x)`` when a clean image
      is degraded on purpose (benchmark mode); it works on NumPy arrays so
      the draw is the same on every device.
    * :attr:`mask` holds the observed pixels (1 = known) at the output size,
      or ``None`` when every pixel is observed.
    """

    kind: ClassVar[str] = "degradation"
    #: how many image pixels one observed pixel covers, per axis
    scale: ClassVar[int] = 1
    #: True when the observation is exactly ``A(x)``: :meth:`corrupt` adds no
    #: noise (pixel loss, downsampling). A fit of such a problem has no noise
    #: to overfit, so ``--stop auto`` does not stop it early. Leave it False
    #: when noise is added or unknown.
    noise_free: ClassVar[bool] = False
    #: the task this stage makes of a restoration: "denoise", "inpaint", "sr",
    #: "deblur", or a plugin's own word; None lets restorekit infer it (a
    #: mask: inpaint, a scale: sr, otherwise denoise)
    task: ClassVar[str | None] = None
    #: False for a degradation that only describes a real observation (``noise``: estimated from the image,
    #: never drawn): its :meth:`prepare` refuses benchmark mode with a UsageError, and the contract kit
    #: checks it in restore mode
    simulated: ClassVar[bool] = True

    mask: "np.ndarray | None" = None

    def adds_noise(self) -> bool:
        """Whether this instance adds noise (``gaussian:0`` does not); by default ``not noise_free``."""
        return not self.noise_free

    def scale_factor(self) -> int:
        return self.scale

    def prepare(self, shape: tuple[int, int, int], rng: "np.random.Generator", mode: str) -> tuple[int, int, int]:
        """Draw the random operator state for an input of ``shape`` (C, H, W)."""
        c, h, w = shape
        s = self.scale_factor()
        if h % s or w % s:
            raise SpecError(f"{self.name}: image size {w}x{h} is not a multiple of {s}")
        return (c, h // s, w // s)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        """The deterministic forward operator A(x); identity by default."""
        return x

    def corrupt(self, y: "np.ndarray", rng: "np.random.Generator") -> "np.ndarray":
        """Add this stage's noise to ``y`` (C, H, W); no noise by default."""
        return y

    def noise_sigma(self) -> float | None:
        """Standard deviation of additive Gaussian noise in [0, 1] units, if known."""
        return None

    def detect_lost(self, observation: "np.ndarray") -> "np.ndarray | None":
        """The pixels of the final (C, H, W) observation that this stage's noise left with no information,
        found from the observation itself ((H, W) bool, True = lost), or None.

        For noise that replaces pixels outright (impulse noise): the run then treats them as missing,
        exactly as a mask's, so every prior fits and keeps only the pixels that carry the image.
        """
        return None

    def mask_tensor(self, device: Any = None) -> "torch.Tensor | None":
        if self.mask is None:
            return None
        import torch

        return torch.as_tensor(self.mask, dtype=torch.float32, device=device)[None, None]
