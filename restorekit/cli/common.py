"""What every command shares: the two consoles, one-line errors with their exit codes, the plugin host.

* :data:`out_console` (stdout: results, tables) and :data:`err_console`
  (stderr: progress, notes, warnings, errors);
* :func:`guard` turns what a command raises into one ``error:`` line and
  an exit code: 2 for the user's mistakes, 1 for internal errors, 130
  for Ctrl-C (``--debug`` or ``RESTOREKIT_DEBUG`` adds the traceback);
* :func:`_host` gets the plugin host and prints its load warnings once;
* :func:`reserve_fit_write` is the life of a command that fits and writes
  (run, segment, decompose, invert, visualize): the output folder reserved
  first, the fit, the files, and Ctrl-C handled at each stage.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import typer
from rich.console import Console

from ..errors import RestoreKitError

err_console = Console(stderr=True, highlight=False)


def dim_line(message: str) -> None:
    """One dim log line on stderr, as written (a file name's brackets are not read as rich markup),
    wrapped by the terminal rather than broken by rich."""
    from rich.text import Text

    err_console.print(Text(message, style="dim"), highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True)


def _debug_enabled(flag: bool) -> bool:
    return flag or os.environ.get("RESTOREKIT_DEBUG", "") not in ("", "0")


def _error(msg: str) -> None:
    from rich.markup import escape

    # the message is text, not markup: 'restorekit[dask]' or a file name with brackets prints as written
    err_console.print(f"[bold red]error:[/bold red] {escape(msg)}", markup=True, highlight=False, soft_wrap=True)


#: deprecation notes of the command being run (old option names): printed when it ends, or folded into its
#: one error line when it fails (stderr keeps one line for a mistake)
_DEPRECATIONS: list[str] = []


def _pending_notes() -> str:
    notes = "; ".join(_DEPRECATIONS)
    _DEPRECATIONS.clear()
    return notes


@contextmanager
def guard(debug: bool = False) -> Iterator[None]:
    """User mistakes: one line and exit 2; runtime failures: exit 1; Ctrl-C: 130."""
    try:
        yield
    except typer.Exit:
        _flush_notes()
        raise
    except RestoreKitError as exc:
        if _debug_enabled(debug):
            traceback.print_exc()
        line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        notes = _pending_notes()
        _error(f"{line} (note: {notes})" if notes else line)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        # a fit that had started returns its result and never gets here
        _error("interrupted before there was a result; nothing was written")
        raise typer.Exit(130) from None
    except Exception as exc:
        if _debug_enabled(debug):
            traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else ""
        _pending_notes()
        _error(f"internal error: {type(exc).__name__}: {first} (rerun with --debug for the traceback)")
        raise typer.Exit(1) from None
    _flush_notes()


def _flush_notes() -> None:
    notes = _pending_notes()
    if notes:
        err_console.print(f"note: {notes}", highlight=False, markup=False, soft_wrap=True)


def _host():
    from ..plugins import get_host

    host = get_host()
    if not getattr(host, "_warned", False):
        for w in host.warnings:
            err_console.print(f"[yellow]warning:[/yellow] {w}", markup=True, highlight=False, soft_wrap=True)
        host._warned = True
    return host


@dataclass
class Written:
    """What :func:`reserve_fit_write` leaves: the folder (committed), the fit's result, what ``write``
    returned, and the signals that came (``signals.held``, ``signals.signum`` for the exit code)."""

    folder: Any
    result: Any
    files: Any
    signals: Any


def reserve_fit_write(*, out: Path | None, source: Path | None, inputs: Sequence[Path], overwrite: bool = False,
                      bar: Any = None, json_out: bool = False, fit: Callable[[], Any],
                      write: Callable[[Any, Any], Any]) -> Written:
    """Reserve the output folder, run ``fit()``, then ``write(folder, result)``; the shared life of every
    command that fits and writes.

    The folder is checked and reserved before any work (a location that cannot take the results fails
    now, not after the fit; a parallel run cannot pick it), whole: a signal during the reservation
    arrives once it can be undone.  During the fit SIGINT and SIGTERM raise KeyboardInterrupt (the fit
    keeps its result so far and returns); from the end of the fit they are only recorded until the files
    are written.  Any failure abandons the folder; a Ctrl-C before there is a result is one line and exit
    130 (143 for SIGTERM).  With ``json_out`` anything printed to stdout goes to stderr, so stdout carries
    only the record the caller prints.
    """
    from ..session.outdir import prepare_output
    from ..session.signals import deferred_signals, exit_code_for, hold, run_signals

    quiet = contextlib.redirect_stdout(sys.stderr) if json_out else contextlib.nullcontext()
    folder = None
    try:
        with run_signals() as signals, quiet:
            with deferred_signals():
                folder = prepare_output(out, source=source, overwrite=overwrite, inputs=list(inputs))
            try:
                if bar is not None:
                    bar.start()
                result = fit()
            finally:
                if bar is not None:
                    bar.stop()
            hold()  # a result exists: from here a signal waits until the files are written
            files = write(folder, result)
    except BaseException as exc:
        if folder is not None:
            folder.abandon()
        if isinstance(exc, KeyboardInterrupt) and signals.stopped_by is not None:
            _error("interrupted before there was a result; nothing was written")
            raise typer.Exit(exit_code_for(signals.stopped_by)) from None
        raise
    return Written(folder, result, files, signals)


def deprecated(old: str, new: str) -> None:
    """The one-line note an old option name prints on stderr (it still works, for one release): when the
    command ends, or inside its error line when it fails."""
    _DEPRECATIONS.append(f"{old} is deprecated, use {new}")


#: what an option's value is called in the help, by its long name (the rest: by type)
METAVARS = {
    "--degrade": "SPEC", "--prior": "SPEC", "--net": "SPEC", "--metric": "SPEC", "--method": "SPEC",
    "--stop": "SPEC", "--hint": "HINT", "--include": "GLOB", "--exclude": "GLOB", "--out": "PATH",
    "--reference": "FILE", "--second": "FILE", "--device": "DEVICE", "--seed": "N", "--iters": "N",
    "--iters-per-epoch": "N", "--time-limit": "SECONDS", "--lr": "RATE", "--layer": "NAME", "--unit": "K",
    "--shape": "C,H,W", "--count": "N", "--limit": "N", "--workers": "N", "--threads": "N", "--stack": "N",
    "--attempts": "N", "--ensemble": "N", "--report-every": "N", "--epochs": "N", "--batch": "N",
    "--patch": "N", "--channels": "N", "--scheduler": "ADDRESS", "--dataset": "NAME", "--preset": "NAME",
    "--data": "DIR", "--pairs": "LOW HIGH", "--init": "DIR", "--task": "TASK", "--sigma-range": "LO,HI",
    "--split": "A,B,C", "--loss": "NAME", "--shard": "K/N",
}

#: options that must carry [required] in the help although the command checks them itself (one-line error)
REQUIRED_IN_HELP = {("train", "--out")}


def _tidy_params(command_name: str, params) -> None:
    """Help that reads like a mature CLI: flags with no value shown, values named (SPEC, N, PATH), lists
    marked (repeatable), nothing typed as <bool> or <list[str]>."""
    for p in params:
        if getattr(p, "_tidied", False):
            continue
        p._tidied = True
        if type(p).__name__ == "TyperArgument":
            if p.metavar is None:
                p.metavar = p.name.upper()
            p.display_type_rich = lambda ctx: None  # the name says it: IMAGE, FOLDER, MODEL
            if " " in p.metavar:  # several values under one name (batch's IN OUT): the usage shows them so
                p._usage_display_name = lambda p=p: p.metavar
            continue
        if getattr(p, "is_flag", False):
            p.metavar = ""
            continue
        longs = [o for o in p.opts if o.startswith("--")]
        name = longs[0] if longs else p.opts[0]
        desc = getattr(p, "type_descriptor", None)
        if p.metavar is None and not getattr(desc, "is_choice", False):
            bare = getattr(getattr(p, "type_descriptor", None), "annotation", None)
            typed = {int: "N", float: "X", str: "TEXT"}.get(bare if isinstance(bare, type) else None, "VALUE")
            p.metavar = METAVARS.get(name, typed)
        if getattr(p, "multiple", False) and p.help and "repeat" not in p.help.lower():
            p.help = p.help.rstrip() + " (repeatable)"
        if (command_name, name) in REQUIRED_IN_HELP and p.help and "required]" not in p.help:
            p.help = p.help.rstrip() + " \\[required]"  # escaped: the help is rich markup
