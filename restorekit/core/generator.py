"""The :class:`Generator` kind: a network ``G`` mapping an input code to an image (``--net``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from .component import Component

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Generator"]


class Generator(Component):
    """A network ``G`` that maps an input code to an image.

    :meth:`build` returns a ``torch.nn.Module`` taking ``(1, in_channels, H,
    W)`` and returning ``(1, out_channels, H, W)`` in ``[0, 1]``.  ``H, W`` is
    the canvas (``canvas=(H, W)`` is passed to :meth:`build` when it takes
    that keyword): the image padded to multiples of :meth:`stride`; the
    fitting loop crops the canvas to the image, so the generator never needs
    to know the image's own size.

    ``needs_input``: the network prior (``dip``) makes the input code.
    ``owns_input``: the network holds its own input (the Deep Decoder's fixed
    small tensor) and is called with ``None``; it still counts as a network,
    so ``dip`` accepts it.  Neither (``identity``): a parameterisation of the
    pixels themselves, for the penalty priors.
    """

    kind: ClassVar[str] = "generator"
    #: False for parameterisations that ignore their input (identity)
    needs_input: ClassVar[bool] = True
    #: True for networks that make their own input (called with None)
    owns_input: ClassVar[bool] = False

    @classmethod
    def is_network(cls) -> bool:
        """A trainable network (the prior is its structure), as opposed to a pixel parameterisation."""
        return bool(cls.needs_input or cls.owns_input)

    def stride(self) -> int:
        """H and W of the canvas must be multiples of this."""
        return 1

    def build(self, in_channels: int, out_channels: int, *, init: "torch.Tensor | None" = None) -> "torch.nn.Module":
        """The network; ``init`` is the initial estimate on the canvas (``(1, C, H, W)``).

        Add ``canvas: tuple[int, int] | None = None`` to the signature to be told the canvas size.
        """
        raise NotImplementedError
