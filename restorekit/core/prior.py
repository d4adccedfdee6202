"""The :class:`Prior` kind: what we believe about the image (``--prior``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from .component import Component
from .problem import LoopOptions, Problem

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Prior"]


class Prior(Component):
    """What we believe about the image.

    A prior plays one role (``role``):

    * ``"network"`` — the image is the output of a trainable generator
      ``G(z)`` (the deep image prior): :meth:`input_code` makes ``z``,
      :meth:`perturb` jitters it each step, :meth:`loop_options` asks for
      output averaging and backtracking.  At most one per run.
    * ``"penalty"`` — adds :meth:`penalty` to the data-fit loss (TV); may be
      combined with a network prior or stand alone with ``--net identity``.
    * ``"solver"`` — solves the problem directly in :meth:`solve` (no
      optimisation loop): NL-means, BM3D, ...  Stands alone.
    * ``"none"`` — no prior at all: fit the observation with the identity
      parameterisation.
    """

    kind: ClassVar[str] = "prior"
    role: ClassVar[Literal["network", "penalty", "solver", "none"]] = "penalty"

    def input_channels(self) -> int:
        """Depth of the generator's input code (network priors); 0: the image's channel count."""
        return 0

    def input_code(self, height: int, width: int, rng: "torch.Generator", init: "torch.Tensor | None" = None) -> "torch.Tensor | None":
        """The generator's input ``z`` as a ``(1, D, H, W)`` tensor (network priors)."""
        return None

    def perturb(self, z: "torch.Tensor") -> "torch.Tensor":
        """The input actually fed at each step (e.g. ``z + std * N(0, 1)``)."""
        return z

    def penalty(self, x: "torch.Tensor") -> "torch.Tensor | None":
        """A differentiable penalty added to the loss (penalty priors)."""
        return None

    def loop_options(self) -> LoopOptions:
        return LoopOptions()

    def solve(self, problem: Problem) -> "torch.Tensor":
        """Return the restored image ``(1, C, H, W)`` (solver priors)."""
        raise NotImplementedError(f"prior '{self.name}' is not a direct solver")
