"""The shared toolkit of every command: what run, batch, compare, segment, decompose, invert,
visualize, train and eval all need around their own work.

* :mod:`.outdir` — output folders: check and reserve where the results go, before any work;
* :mod:`.signals` — Ctrl-C and SIGTERM: stop the fit, never lose a result that exists;
* :mod:`.commit` — write the results into the reserved folder, all or nothing;
* :mod:`.record` — the base of every typed record section, and the one ``record_json``;
* :mod:`.device` — what ``--device`` means;
* :mod:`.figures` — the pictures drawn beside the results, never at the results' cost.

The submodules are imported where they are used (none of them imports torch at import time);
this package imports none of them.
"""
