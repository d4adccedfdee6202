"""The "did you mean" hint that every unknown-name message ends with.

One helper, so that a misspelled component, parameter, kind, preset, hook or
plugin name gets the same suggestion everywhere::

    raise SpecError(f"unknown preset '{name}'{did_you_mean(name, PRESETS)} (valid: ...)")
"""

from __future__ import annotations

import difflib
from typing import Iterable


def closest(word: str, choices: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The choice most like ``word`` (``difflib`` ratio of at least ``cutoff``), or ``None``."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return matches[0] if matches else None


def did_you_mean(word: str, choices: Iterable[str], *, cutoff: float = 0.6) -> str:
    """``"; did you mean 'x'?"`` for the closest choice, or ``""`` when none is close."""
    match = closest(word, choices, cutoff=cutoff)
    return f"; did you mean '{match}'?" if match is not None else ""


__all__ = ["closest", "did_you_mean"]
