"""The run pipeline: one restoration, in stages that every front end calls.

settings -> plan -> problem -> solve -> record -> outputs

* :mod:`.settings` — what the user asked for, typed and validated once
  (defaults and presets resolved there);
* :mod:`.plan` — the components, iteration count, stopping rule, device,
  precision and the notes shown to the user;
* :mod:`.problem` — the one :class:`~restorekit.Problem`: observation,
  forward model, mask, initial estimate and geometry;
* :mod:`.solve` — a network or penalty prior's fit (:mod:`.engine`, on the
  fitting loop of :mod:`restorekit.fit`), K of them stacked (:mod:`.multi`),
  ensembles, or a direct solver;
* :mod:`.record` — the typed, versioned :class:`~.record.RunRecord`;
* :mod:`.outputs` — the files, into a folder checked and reserved by
  :mod:`restorekit.session.outdir` before the fit, with
  :mod:`restorekit.session.signals` holding Ctrl-C back while a result is
  written.

The toolkit every command shares (output folders, signals, the commit of
results, the record base and ``record_json``, device choice, figures) is
:mod:`restorekit.session`; ``run.outdir`` and ``run.signals`` are kept as
re-exports of it for compatibility.

:func:`.pipeline.run` runs the stages in order; :func:`restorekit.restore`,
the CLI and the benchmarks call it.
"""
