"""Restore whole folders: ``restorekit batch IN_DIR OUT_DIR``, resumable, local or on Dask.

A batch item is exactly a ``restorekit run`` of one image (the run pipeline,
:mod:`restorekit.run`), written into ``OUT_DIR/<relative path>/`` with the same
files; the batch adds one manifest for all of them.

* :mod:`.inputs` — which images (a folder, recursively, with include/exclude
  globs; a list file; stdin), per-image side inputs by pattern (``{stem}``,
  ``{name}``, ``{relpath}``), and output folders that cannot escape OUT_DIR;
* :mod:`.manifest` — the SQLite manifest, one row per image, written by the
  client only, atomically, readable while the batch runs;
* :mod:`.start` — what a batch checks before anything is written (inputs,
  outputs, side inputs, options, ``--shard``), shared by the command and
  :func:`restorekit.batch`;
* :mod:`.job` — one item, as a worker runs it (picklable, no shared state);
* :mod:`.stack` — ``--stack K``: same-size items fitted together in one
  stacked optimisation, each still with its own run folder;
* :mod:`.executors` — where items run: in this process, a local process pool
  sized to the machine, or a Dask cluster;
* :mod:`.driver` — the loop that hands out items, records results, resumes,
  retries and reports progress;
* :mod:`.report` — ``OUT_DIR/index.html``, a static page to watch and sort.

The package is also callable: ``restorekit.batch(source, out, ...)`` is
:func:`restorekit.api.batch`.
"""

# restorekit.batch(source, out, ...) calls restorekit.api.batch (the Python API of ``restorekit batch``).
from ..callable_module import make_callable  # noqa: E402

make_callable(__name__, "batch")
del make_callable
