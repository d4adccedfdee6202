"""The one gradient-descent loop of restorekit's per-image fits (see the package's docstring)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Ended", "run_loop", "every", "predicted_time_limit", "ExponentialAverage"]


@dataclass
class Ended:
    """How a :func:`run_loop` ended.

    ``iteration``: the last step begun (0 when none was; with ``reason ==
    "interrupted"`` that step may not have finished); ``reason``:
    ``"iterations"`` (all of them ran), ``"time limit"``, ``"interrupted"``
    (Ctrl-C, or SIGTERM inside :func:`restorekit.session.signals.run_signals`),
    or the string the ``stop`` hook returned.
    """

    iteration: int
    reason: str

    @property
    def interrupted(self) -> bool:
        return self.reason == "interrupted"


def run_loop(
    forward: Callable[[int], Any],
    iterations: int,
    *,
    update: Callable[[int], None] | None = None,
    reporting: Callable[[int], bool] | None = None,
    report: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
    stop: Callable[[int, bool], str | None] | None = None,
    out_of_time: Callable[[int], bool] | None = None,
    after: Callable[[int], None] | None = None,
) -> Ended:
    """Run steps ``1 .. iterations``; each step calls, in this order:

    1. ``loss = forward(i)``: zero the gradients and compute the loss (a scalar tensor);
    2. ``loss.backward()`` (the loop's own: no fit calls it elsewhere);
    3. ``update(i)``: the optimiser step and whatever follows it (backtracking, averaging, the
       stopping rule's bookkeeping, projections);
    4. ``report(i)`` when ``reporting(i)`` says this is a reporting step (the history; reading values
       from the device happens only here);
    5. ``progress(i)``: the progress callback, every step;
    6. ``stop(i, reporting)``: a string ends the loop with that reason (a stopping rule);
    7. ``out_of_time(i)``: True ends the loop with ``"time limit"``;
    8. ``after(i)``: the step's last word (e.g. dropping the finished members of a stack).

    A ``KeyboardInterrupt`` anywhere in a step ends the loop with ``"interrupted"``; the caller
    keeps what it has.  Returns :class:`Ended`.
    """
    i = 0
    try:
        for i in range(1, iterations + 1):
            loss = forward(i)
            loss.backward()
            if update is not None:
                update(i)
            due = reporting(i) if reporting is not None else False
            if due and report is not None:
                report(i)
            if progress is not None:
                progress(i)
            if stop is not None:
                reason = stop(i, due)
                if reason:
                    return Ended(i, reason)
            if out_of_time is not None and out_of_time(i):
                return Ended(i, "time limit")
            if after is not None:
                after(i)
    except KeyboardInterrupt:
        return Ended(i, "interrupted")
    return Ended(i, "iterations")


def every(n: int, iterations: int, *, first: bool = False) -> Callable[[int], bool]:
    """The usual reporting schedule: every ``n`` steps and the last one (and the first, with ``first``)."""

    def due(i: int) -> bool:
        return i % n == 0 or i == iterations or (first and i == 1)

    return due


def predicted_time_limit(limit: float | None, start: float, iterations: int) -> Callable[[int], bool] | None:
    """The time limit of a fit that began at ``start`` (``time.perf_counter()``): true before a step
    that would end past ``limit`` seconds, judged by the mean step time so far (never after the last
    step).  None without a limit."""
    if limit is None:
        return None

    def out_of_time(i: int) -> bool:
        # stop before a step that would end past the limit (steps take about the mean so far)
        return i < iterations and (time.perf_counter() - start) * (i + 1) / i > limit

    return out_of_time


class ExponentialAverage:
    """The exponential moving average (EMA) of a fit's outputs, ``avg = w * avg + (1 - w) * out``.

    ``value`` is None until the first :meth:`update` (which copies the output), and stays None with
    ``weight <= 0`` (no averaging).  ``keep`` (optional, a boolean tensor broadcastable against the
    output) marks entries that keep their old average this step (a collapsed member's output is not
    averaged).
    """

    def __init__(self, weight: float) -> None:
        self.weight = weight
        self.value: Any = None

    def update(self, out: Any, keep: Any = None) -> None:
        import torch

        w = self.weight
        if w <= 0:
            return
        if self.value is None:
            self.value = out.clone()
            return
        new = self.value * w + out * (1 - w)
        self.value = new if keep is None else torch.where(keep, self.value, new)
