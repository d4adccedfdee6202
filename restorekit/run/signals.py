"""Kept for compatibility: Ctrl-C and SIGTERM handling lives in :mod:`restorekit.session.signals`.

Code written against ``restorekit.run.signals`` keeps working; new code imports
from :mod:`restorekit.session.signals`.
"""

from __future__ import annotations

from ..session.signals import RunSignals, deferred_signals, exit_code_for, hold, run_signals  # noqa: F401

__all__ = ["RunSignals", "run_signals", "hold", "deferred_signals", "exit_code_for"]
