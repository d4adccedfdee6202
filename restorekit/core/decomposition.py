"""The :class:`Decomposition` kind: splits one image into parts, with no training data
(``restorekit segment``, ``restorekit decompose``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from .component import Component
from .decomposed import Budget, Decomposed, Hint

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["Decomposition"]


class Decomposition(Component):
    """Splits one image into parts, with no training data: a segmentation or a layer decomposition.

    ``tasks`` names what it can do (of :data:`DECOMPOSITION_TASKS` or a
    plugin's own word): ``"segment"`` (object / background, or K segments),
    ``"transparency"`` (two images mixed), ``"watermark"`` (an image and a
    watermark), ``"dehaze"`` (a haze-free image, a transmission map and an
    airlight).  ``hints`` lists the :class:`Hint` parts it uses (``"box"``,
    ``"scribbles"``); ``needs_hint`` says it cannot work without one
    (random walker).  ``iterative`` methods honour ``Budget.iterations``
    and ``Budget.time_limit``.

    :meth:`decompose` takes the image as a ``(C, H, W)`` float array in
    [0, 1] and returns a :class:`Decomposed`; it may refuse an image or task
    it cannot handle by raising :class:`~restorekit.UsageError` with one line.
    """

    kind: ClassVar[str] = "decomposition"
    tasks: ClassVar[tuple[str, ...]] = ("segment",)
    hints: ClassVar[tuple[str, ...]] = ()
    needs_hint: ClassVar[bool] = False
    iterative: ClassVar[bool] = False

    def requires_hint(self, task: str) -> bool:
        """Whether ``task`` cannot be done without a hint (checked before any work); ``needs_hint`` by default."""
        return bool(self.needs_hint)

    def decompose(
        self,
        image: "np.ndarray",
        task: str = "segment",
        *,
        hint: Hint | None = None,
        seed: int = 0,
        budget: Budget | None = None,
        others: tuple["np.ndarray", ...] = (),
    ) -> Decomposed:
        """Split ``image``; ``others`` are further images of the same scene (a second mixture for
        ``transparency``), passed only when the user gives some: omit the argument if you take none."""
        raise NotImplementedError
