"""Kept for compatibility: output folders live in :mod:`restorekit.session.outdir`.

Code written against ``restorekit.run.outdir`` keeps working; new code imports
from :mod:`restorekit.session.outdir`.  (Patch the session module, not this one:
its functions look their helpers up there.)
"""

from __future__ import annotations

from ..session.outdir import (  # noqa: F401 - re-exported
    LOCK_NAME,
    RECORDS,
    RESULT_FILES,
    OutputFolder,
    clean_stale,
    default_stem,
    host_tag,
    not_replaceable,
    pid_alive,
    prepare_output,
)

_host_tag = host_tag  # the old private name (tests build staging names with it)

__all__ = ["OutputFolder", "prepare_output", "RESULT_FILES", "LOCK_NAME", "clean_stale", "not_replaceable"]
