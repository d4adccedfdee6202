"""The ``restorekit`` command line: one module per job.

* :mod:`.app` — the Typer app: :func:`get_app` (commands, plugin commands
  included), :func:`main` (the ``restorekit`` script), ``--version``, the
  examples, and wrong options or commands reported as one ``error:`` line;
* :mod:`.run` — the ``run`` command: options to settings, inputs checked,
  output folder reserved, :func:`restorekit.run.pipeline.run` with a
  progress bar, the summary or run.json;
* :mod:`.batch`, :mod:`.compare`, :mod:`.segment` (``segment`` and
  ``decompose``), :mod:`.inspect` (``invert`` and ``visualize``),
  :mod:`.train`, :mod:`.models` (``eval``, ``models``, ``sample``),
  :mod:`.install` — the other commands, each the same way: options to the
  work of its package (:mod:`restorekit.batch`, :mod:`restorekit.segment`,
  :mod:`restorekit.learn`, ...), output folders through
  :mod:`restorekit.session`;
* :mod:`.listing` — the ``list`` command (components, one component in
  full, presets) and the ``plugins`` command;
* :mod:`.common` — what every command shares: the stdout and stderr
  consoles, :func:`~.common.guard` (errors to one line and an exit code),
  the plugin host with its warnings printed once;
* :mod:`.__main__` — ``python -m restorekit.cli``.

Dependencies go one way: ``app`` -> the command modules (``batch`` and
``compare`` reuse ``run``'s options) -> ``common``.  ``--help``, ``list``
and ``plugins`` import no torch: each command imports the work that needs
it inside the command.
"""

from .app import get_app, main

__all__ = ["get_app", "main"]
