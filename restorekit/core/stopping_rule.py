"""The :class:`StoppingRule` kind: when to stop a fit without the clean image (``--stop``).

The built-in rules are in :mod:`restorekit.builtins.stopping` (the shared
helpers in :mod:`restorekit.stopping`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .component import Component
from .params import Params

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["StoppingRule"]


class StoppingRule(Component):
    """When to stop a fit without the clean image (``--stop``), and which iteration to keep.

    :meth:`update` sees every output ``x`` (``(1, C, H, W)``; ``average`` is
    the running average when the prior keeps one) and must not synchronise
    with the device; :meth:`should_stop` is asked on reporting iterations
    only.  The base class tracks the best iteration by a score that
    :meth:`_track` receives (lower is better) and stops ``params.patience``
    iterations after it (give ``Params`` a ``patience``, or override
    :meth:`should_stop`).
    """

    kind: ClassVar[str] = "stopping rule"

    def __init__(self, params: Params | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.reset()

    def reset(self) -> None:
        """Forget everything seen (a new fit)."""
        self.best_output = None
        self.best_average = None
        self._best_score = None
        self._best_it = None

    def update(self, x: "torch.Tensor", iteration: int, average: "torch.Tensor | None" = None) -> None:
        raise NotImplementedError  # pragma: no cover - interface

    def should_stop(self, iteration: int) -> bool:
        if self._best_it is None:
            return False
        return iteration - int(self._best_it.item()) >= self.params.patience

    def chosen_iteration(self) -> int | None:
        """The iteration whose output to keep (``best_output``), if any yet."""
        return None if self._best_it is None else int(self._best_it.item())

    def _track(self, score: "torch.Tensor", x: "torch.Tensor", iteration: int, average: "torch.Tensor | None") -> None:
        """Keep ``x`` (and ``average``) if ``score`` is the lowest so far, without a host sync."""
        import torch

        if self._best_score is None:
            self._best_score = score.detach().clone()
            self._best_it = torch.tensor(iteration, device=x.device)
            self.best_output = x.detach().clone()
            self.best_average = None if average is None else average.detach().clone()
            return
        better = score < self._best_score
        self._best_score = torch.where(better, score, self._best_score)
        self._best_it = torch.where(better, torch.tensor(iteration, device=x.device), self._best_it)
        self.best_output = torch.where(better, x, self.best_output)
        if average is not None:
            self.best_average = torch.where(better, average, self.best_average)
