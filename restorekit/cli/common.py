"""What every command shares: the two consoles, one-line errors with their exit codes, the plugin host.

* :data:`out_console` (stdout: results, tables) and :data:`err_console`
  (stderr: progress, notes, warnings, errors);
* :func:`guard` turns what a command raises into one ``error:`` line and
  an exit code: 2 for the user's mistakes, 1 for internal errors, 130
  for Ctrl-C (``--debug`` or ``RESTOREKIT_DEBUG`` adds the traceback);
* :func:`_host` gets the plugin host and prints its load warnings once.
"""

from __future__ import annotations

import os
import traceback
from contextlib import contextmanager
from typing import Iterator

import typer
from rich.console import Console

from ..errors import RestoreKitError

err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False, soft_wrap=True)


def _debug_enabled(flag: bool) -> bool:
    return flag or os.environ.get("RESTOREKIT_DEBUG", "") not in ("", "0")


def _error(msg: str) -> None:
    from rich.markup import escape

    # the message is text, not markup: 'restorekit[dask]' or a file name with brackets prints as written
    err_console.print(f"[bold red]error:[/bold red] {escape(msg)}", markup=True, highlight=False, soft_wrap=True)


@contextmanager
def guard(debug: bool = False) -> Iterator[None]:
    """User mistakes: one line and exit 2; runtime failures: exit 1; Ctrl-C: 130."""
    try:
        yield
    except typer.Exit:
        raise
    except RestoreKitError as exc:
        if _debug_enabled(debug):
            traceback.print_exc()
        _error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        # a fit that had started returns its result and never gets here
        _error("interrupted before there was a result; nothing was written")
        raise typer.Exit(130) from None
    except Exception as exc:
        if _debug_enabled(debug):
            traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else ""
        _error(f"internal error: {type(exc).__name__}: {first} (rerun with --debug for the traceback)")
        raise typer.Exit(1) from None


def _host():
    from ..plugins import get_host

    host = get_host()
    if not getattr(host, "_warned", False):
        for w in host.warnings:
            err_console.print(f"[yellow]warning:[/yellow] {w}", markup=True, highlight=False, soft_wrap=True)
        host._warned = True
    return host
