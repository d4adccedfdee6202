"""The commit of results: write a command's files into its reserved folder, all or nothing.

A command reserves its folder first (:func:`restorekit.session.outdir.prepare_output`), then writes
everything inside :func:`committing`: the files go into the hidden staging folder, which becomes
the result folder in one move when the block ends.  Any failure leaves nothing half-written.
run, compare, segment, decompose, invert, visualize and eval write through it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Iterator

from ..errors import RestoreError, RestoreKitError, one_line
from .outdir import OutputFolder

__all__ = ["committing"]


@contextlib.contextmanager
def committing(folder: OutputFolder, rescue: Callable[[], str] | None = None) -> Iterator[Path]:
    """Write into the reserved ``folder``'s staging folder inside the block; commit it at the end.

    Any failure abandons the folder (nothing half-written stays): Ctrl-C is
    raised again, anything else becomes one :class:`RestoreError` naming the
    folder, with ``rescue()``'s text (where the essentials were saved) added.
    Every command that writes results (run, segment, invert) writes through it.
    """
    tmp = folder.staging
    if tmp is None:
        raise ValueError("the output folder was committed or abandoned already")
    try:
        yield tmp
        folder.commit()
    except BaseException as exc:
        folder.abandon()
        if isinstance(exc, KeyboardInterrupt):
            raise
        reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else (
            str(exc) if isinstance(exc, RestoreKitError) else one_line(exc))
        where = rescue() if rescue is not None else ""
        raise RestoreError(f"cannot write results to '{folder.path}': {reason}{where}") from exc
