"""What the decomposition pipeline (:mod:`restorekit.segment`, ``restorekit segment`` / ``decompose``) hands
its plugins and takes back: the tasks, :class:`Hint`, :class:`Budget` and :class:`Decomposed`.

They live here, in the core, because the :class:`~restorekit.Decomposition`
interface receives and returns them, and the core imports no pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["DECOMPOSITION_TASKS", "Hint", "Budget", "Decomposed"]

#: what a decomposition may be asked to do (``restorekit segment``: "segment"; ``restorekit decompose
#: --task``: the others)
DECOMPOSITION_TASKS: tuple[str, ...] = ("segment", "transparency", "watermark", "dehaze")


@dataclass(frozen=True)
class Hint:
    """What the user marked on the image (``--hint``), for a decomposition that takes hints.

    ``box`` is ``(x, y, w, h)`` in pixels around the object (left, top, width,
    height; the object is inside, everything outside is background).
    ``scribbles`` is an ``(H, W)`` int array: 1 on pixels marked as the
    object, 2 on pixels marked as background, 0 elsewhere.
    """

    box: tuple[int, int, int, int] | None = None
    scribbles: "np.ndarray | None" = None

    def seeds(self, height: int, width: int) -> "np.ndarray":
        """``(H, W)`` int8 labels: 1 object, 2 background, 0 unknown (a box: outside is background)."""
        import numpy as np

        out = np.zeros((height, width), dtype=np.int8)
        if self.box is not None:
            x, y, w, h = self.box
            out[:] = 2
            out[max(y, 0) : y + h, max(x, 0) : x + w] = 0
        if self.scribbles is not None:
            s = np.asarray(self.scribbles)
            out[s == 1] = 1
            out[s == 2] = 2
        return out

    def describe(self) -> str:
        parts = []
        if self.box is not None:
            parts.append("box:" + ",".join(str(int(v)) for v in self.box))
        if self.scribbles is not None:
            s = self.scribbles
            parts.append(f"scribbles ({int((s == 1).sum())} object, {int((s == 2).sum())} background pixels)")
        return "; ".join(parts) or "none"


@dataclass
class Budget:
    """How long an iterative decomposition may work, and whom it tells.

    ``iterations`` overrides the method's own count where given;
    ``time_limit`` (seconds) ends the fit early, keeping the result so far;
    ``progress(iteration, total, loss)`` is called on reporting iterations.
    A Ctrl-C (``KeyboardInterrupt``) inside :meth:`Decomposition.decompose`
    should end the loop and return the best result so far, with
    ``stopped="interrupted"``.
    """

    iterations: int | None = None
    time_limit: float | None = None
    progress: Any = None
    started: float = field(default_factory=lambda: __import__("time").perf_counter())

    def elapsed(self) -> float:
        import time

        return time.perf_counter() - self.started

    def out_of_time(self) -> bool:
        return self.time_limit is not None and self.elapsed() >= self.time_limit

    def report(self, iteration: int, total: int, loss: float) -> None:
        if self.progress is not None:
            self.progress(iteration, total, loss)


@dataclass
class Decomposed:
    """What a decomposition returns.

    ``mask``: ``(H, W)`` float in [0, 1], the object's (layer 1's) share of
    each pixel, or None; ``labels``: ``(H, W)`` int segment numbers from 0
    (for a two-way split, 1 = the object), or None; ``layers``: name ->
    ``(C, H, W)`` float image in [0, 1] (the layers that add up to the
    image; a dehazing's ``"airlight"`` may be ``(C, 1, 1)``);
    ``history``: the loss per reported iteration; ``stopped``: ``"done"``,
    ``"time limit"`` or ``"interrupted"``.
    """

    mask: "np.ndarray | None" = None
    labels: "np.ndarray | None" = None
    layers: dict[str, "np.ndarray"] = field(default_factory=dict)
    iterations: int = 0
    history: dict[str, list] = field(default_factory=lambda: {"iteration": [], "loss": []})
    stopped: str = "done"
    notes: list[str] = field(default_factory=list)
