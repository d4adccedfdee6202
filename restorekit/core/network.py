"""The :class:`Network` kind: a trained network to look inside (``restorekit invert``, ``visualize``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from .component import Component

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Network"]


class Network(Component):
    """A trained network to look inside (``restorekit invert``, ``restorekit visualize``).

    :meth:`load` returns the ``torch.nn.Module`` with its weights loaded, in
    eval mode, on the CPU; :meth:`input_shape` the ``(C, H, W)`` it expects,
    or None when any size works.
    """

    kind: ClassVar[str] = "network"

    def load(self) -> "torch.nn.Module":
        raise NotImplementedError

    def input_shape(self) -> tuple[int, int, int] | None:
        return None
