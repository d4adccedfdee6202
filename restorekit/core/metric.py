"""The :class:`Metric` kind: a score of a result against the clean image (``--metric``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from .component import Component
from .params import all_defaults

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["Metric"]


class Metric(Component):
    """A score of ``image_test`` against ``image_true`` (scikit-image order).

    Images are ``(H, W, C)`` float64 arrays; ``data_range`` is explicit; an
    optional boolean ``mask`` of shape ``(H, W)`` restricts the score to
    those pixels (inpainting: the missing ones).
    """

    kind: ClassVar[str] = "metric"
    higher_is_better: ClassVar[bool] = True
    unit: ClassVar[str] = ""

    def compute(
        self,
        image_true: "np.ndarray",
        image_test: "np.ndarray",
        *,
        data_range: float = 1.0,
        mask: "np.ndarray | None" = None,
    ) -> float:
        raise NotImplementedError

    @property
    def label(self) -> str:
        """The key this metric's value is stored under in results."""
        defaults = type(self).Params().model_dump() if all_defaults(type(self).Params) else None
        if defaults is not None and defaults == self.params.model_dump():
            return self.name
        return self.spec
