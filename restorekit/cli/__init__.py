"""The ``restorekit`` command line: one module per job.

* :mod:`.app` — the Typer app: :func:`get_app` (commands, plugin commands
  included), :func:`main` (the ``restorekit`` script), ``--version``, the
  examples, and wrong options or commands reported as one ``error:`` line;
* :mod:`.run` — the ``run`` command: options to settings, inputs checked,
  output folder reserved, :func:`restorekit.run.pipeline.run` with a
  progress bar, the summary or run.json;
* :mod:`.listing` — the ``list`` command (components, one component in
  full, presets) and the ``plugins`` command;
* :mod:`.common` — what every command shares: the stdout and stderr
  consoles, :func:`~.common.guard` (errors to one line and an exit code),
  the plugin host with its warnings printed once;
* :mod:`.__main__` — ``python -m restorekit.cli``.

Dependencies go one way: ``app`` -> ``run``, ``listing`` -> ``common``.
``--help``, ``list`` and ``plugins`` import no torch: the run pipeline is
imported inside the ``run`` command.
"""

from .app import get_app, main

__all__ = ["get_app", "main"]
