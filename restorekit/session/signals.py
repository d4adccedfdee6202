"""Signals: Ctrl-C and SIGTERM around a command's work: stop the fit, never lose a result that exists.

Every command that fits and writes (run, compare, segment, invert, train, eval; batch's images) uses
these; :func:`deferred_signals` also keeps an output folder's commit
(:mod:`restorekit.session.outdir`) whole.

Inside :func:`run_signals` (the CLI's ``run`` uses it), SIGINT and SIGTERM
both raise :class:`KeyboardInterrupt`, so ``kill`` stops a fit the way
Ctrl-C does and the fit returns the result so far.  Once a result exists,
the pipeline calls :func:`hold`: from then on a signal is only recorded, the
results are written, and the caller exits with :func:`exit_code_for` the
first signal held.  Outside the block, and outside the main thread (where
Python cannot install handlers), :func:`hold` does nothing and signals keep
their usual behaviour.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["RunSignals", "run_signals", "hold", "deferred_signals", "exit_code_for"]

_HANDLED = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)


@dataclass
class RunSignals:
    """What happened to signals during a run."""

    holding: bool = False
    #: the signal that stopped the fit (raised as KeyboardInterrupt), if any
    stopped_by: int | None = None
    #: signals received after :func:`hold`, in order
    held: list[int] = field(default_factory=list)

    @property
    def signum(self) -> int | None:
        """The first signal that arrived: the one the exit code reports."""
        return self.stopped_by if self.stopped_by is not None else (self.held[0] if self.held else None)


_ACTIVE: RunSignals | None = None


@contextmanager
def run_signals() -> Iterator[RunSignals]:
    """SIGINT/SIGTERM raise KeyboardInterrupt until :func:`hold`, then are recorded."""
    global _ACTIVE
    state = RunSignals()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        if state.holding:
            state.held.append(signum)
            return
        if state.stopped_by is None:
            state.stopped_by = signum
        raise KeyboardInterrupt

    old = {}
    previous, _ACTIVE = _ACTIVE, state
    try:
        for s in _HANDLED:
            old[s] = signal.signal(s, handler)
        yield state
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _ACTIVE = previous


def hold() -> None:
    """A result exists: from now on, signals inside :func:`run_signals` are recorded, not raised."""
    if _ACTIVE is not None:
        _ACTIVE.holding = True


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Inside the block, SIGINT and SIGTERM wait; the first one that came is delivered again right after.

    For work that must happen whole or not at all (an output folder's commit, a batch image's write):
    whatever handler was in force before the block (Ctrl-C's default, :func:`run_signals`'s) then acts
    on it as usual.  Does nothing outside the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    old = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in _HANDLED}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if held:
            signal.raise_signal(held[0])


def exit_code_for(signum: int | None) -> int:
    """The shell's convention: 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + int(signum) if signum else 130
