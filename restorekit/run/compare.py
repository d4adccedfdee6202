"""``restorekit compare``: several methods on one observation, each one run through the pipeline.

A *method* is one ``--prior`` spec (``dip``, ``nlm:h=0.8``, ``tv:0.1``);
everything else (degradation, seed, mode, network, iterations) is shared.
Each method is an ordinary :func:`restorekit.run.pipeline.run` with the same
settings but its prior, so in benchmark mode every method sees the same
observation: the pipeline draws the degradation from ``--seed`` alone.
Each method's outputs are what ``restorekit run`` writes
(:func:`~.outputs.write_outputs`), in one subfolder of the compare folder,
so a method can be inspected (run.json, curves.png) exactly like a run.

This module writes into the staging folder of a reserved
:class:`~.outdir.OutputFolder`; the caller commits it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import UsageError, error_line
from ..registry import Registry
from ..session.figures import pyplot, to_rgb

#: the compare.json format version
COMPARE_VERSION = 1
#: what a method's row says when it ran, failed, was skipped (a default solver that refuses the task)
STATUSES = ("complete", "interrupted", "failed", "skipped")


@dataclass
class Outcome:
    """One method's row: what compare.json and the table show."""

    method: str
    status: str = "complete"
    error: str | None = None
    folder: str | None = None  #: the subfolder holding the run's outputs (None when nothing was written)
    metrics: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0  #: the pipeline run: plan, problem, solve and scores (not writing the files)
    fit_s: float | None = None  #: the fit or the solver alone (run.json's timings.fit_s)
    observation: str | None = None  #: sha256 of the observation the method saw
    result: Any = None  #: the pipeline's Result (not written)

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method, "status": self.status, "error": self.error, "folder": self.folder,
            "metrics": {k: _finite(v) for k, v in self.metrics.items()},
            "wall_s": round(self.wall_s, 4), "fit_s": None if self.fit_s is None else round(self.fit_s, 4),
            "observation_sha256": self.observation,
        }


def _finite(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def default_methods(registry: Registry) -> list[str]:
    """``auto`` (what ``restorekit run`` does by default), the built-in ``dip`` and every installed solver
    prior (those that do not apply are skipped later)."""
    solvers = [e.name for e in registry.entries("prior") if getattr(e.cls, "role", None) == "solver"]
    return ["auto", "dip"] + [n for n in solvers if n not in ("dip", "auto")]


def folder_names(methods: Sequence[str]) -> list[str]:
    """One distinct, file-system-safe subfolder name per method (``nlm:h=0.8`` -> ``nlm_h_0.8``)."""
    names: list[str] = []
    for m in methods:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", m).strip("._")[:60] or "method"
        name, n = base, 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.append(name)
    return names


def observation_digest(degraded: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(degraded, dtype=np.float32).tobytes()).hexdigest()


#: the shared options that belong to a fitting loop: a solver prior runs without them
FIT_OPTIONS = ("net", "iters", "lr", "time_limit")


def method_settings(method: str, shared: dict[str, Any], registry: Registry):
    """The :class:`~.settings.RunSettings` of one method: the shared settings with ``prior=(method,)``.

    ``--net/--iters/--lr/--time-limit`` are for the methods that fit; a
    solver prior (nlm, bm3d, ...) gets them unset, as ``restorekit run
    --prior nlm`` would need.
    """
    from .settings import make_settings

    given = dict(shared)
    if method.strip().lower() != "auto" and registry.create("prior", method).role == "solver":
        given.update({k: None for k in FIT_OPTIONS})
    return make_settings(registry, prior=(method,), **given)


def run_method(method: str, shared: dict[str, Any], registry: Registry, target: Path, *,
               skip_refusal: bool = False) -> Outcome:
    """One method through the pipeline, its outputs written to ``target`` (a new folder).

    A failure is the row's error, never an exception (Ctrl-C excepted).
    With ``skip_refusal`` a :class:`UsageError` (a default solver that
    refuses the task, such as inpainting without a mask) is ``skipped``.
    """
    from ..session.outdir import prepare_output
    from .outputs import write_outputs
    from .pipeline import run as run_pipeline

    row = Outcome(method=method)
    started = time.perf_counter()
    try:
        settings = method_settings(method, shared, registry)
        result = run_pipeline(settings, registry, pages=False)  # a stack's first page, as noted
        row.wall_s = time.perf_counter() - started
        row.result = result
        row.metrics = dict(result.metrics)
        row.fit_s = result.record.timings.fit_s
        row.observation = observation_digest(result.degraded)
        row.status = "interrupted" if result.interrupted else "complete"
        write_outputs(result, prepare_output(target))
        row.folder = target.name
    except KeyboardInterrupt:
        raise
    except UsageError as exc:
        row.status, row.error = ("skipped" if skip_refusal else "failed"), error_line(exc)
    except Exception as exc:  # noqa: BLE001 - one method's crash is its row, the others still run
        row.status, row.error = "failed", error_line(exc)
    if row.result is None:
        row.wall_s = time.perf_counter() - started
    return row


def sort_rows(rows: list[Outcome], metric: str | None, higher_is_better: bool = True) -> list[Outcome]:
    """Results first, best by ``metric`` first; then failed, then skipped rows (each in the given order)."""
    def key(item: tuple[int, Outcome]):
        i, r = item
        if r.status in ("failed", "skipped"):
            return (1 + (r.status == "skipped"), 0.0, i)
        v = r.metrics.get(metric) if metric else None
        if v is None or not math.isfinite(v):
            return (0, math.inf, i)
        return (0, -v if higher_is_better else v, i)

    return [r for _, r in sorted(enumerate(rows), key=key)]


def compare_record(rows: list[Outcome], *, settings: Any, metric: str | None,
                   baseline: dict[str, float], files: dict[str, str], out: Path) -> dict[str, Any]:
    """compare.json: the shared settings, the degraded input's scores and one entry per method (table order)."""
    from .. import __version__

    return {
        "restorekit": __version__,
        "format": COMPARE_VERSION,
        "image": None if settings.image is None else str(settings.image),
        "mode": settings.mode,
        "degrade": list(settings.degrade),
        "seed": settings.seed,
        "sorted_by": metric,
        "baseline": {k: _finite(v) for k, v in baseline.items()},
        "methods": [r.as_json() for r in rows],
        "out": str(out),
        "files": files,
    }


def write_json(path: Path, record: dict[str, Any]) -> str:
    text = json.dumps(record, indent=2) + "\n"
    path.write_text(text, encoding="utf-8")
    return text


def panels(rows: list[Outcome], metric: str | None) -> list[tuple[str, np.ndarray | None]]:
    """The grid's panels: degraded | each method that ran or failed | reference (when known)."""
    first = next((r.result for r in rows if r.result is not None), None)
    if first is None:
        return []
    label = metric or "psnr"
    base = first.baseline.get(label)
    out: list[tuple[str, np.ndarray | None]] = [
        ("degraded" + (f"\n{label} {base:.2f}" if base is not None and math.isfinite(base) else ""), first.degraded)
    ]
    for r in rows:
        if r.status == "skipped":
            continue
        if r.result is None:
            out.append((f"{r.method}\nfailed", None))
            continue
        v = r.metrics.get(label)
        score = f"{label} {v:.2f}, " if v is not None and math.isfinite(v) else ""
        out.append((f"{r.method}\n{score}{r.wall_s:.1f} s", r.result.restored))
    if first.reference is not None:
        out.append(("reference", first.reference))
    return out


def draw_grid(path: Path, tiles: list[tuple[str, np.ndarray | None]], columns: int = 6) -> None:
    """compare.png: the panels side by side (rows of at most ``columns``), each titled."""
    plt = pyplot()

    shape = next(img.shape for _, img in tiles if img is not None)
    h, w = shape[1:]
    ncol = min(columns, len(tiles))
    nrow = math.ceil(len(tiles) / ncol)
    size = 2.6
    fig, axes = plt.subplots(nrow, ncol, figsize=(size * ncol, (size * h / w + 0.6) * nrow), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, img) in zip(axes.flat, tiles):
        if img is None:
            ax.imshow(np.full((h, w, 3), 0.85), extent=(0, w, h, 0))
        else:
            ax.imshow(to_rgb(img), interpolation="nearest", extent=(0, w, h, 0))
        ax.set_title(title, fontsize=9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    plt.close(fig)


def compare(methods: Sequence[str], shared: dict[str, Any], registry: Registry, staging: Path, *,
            defaults: bool = False, log: Callable[[str], Any] | None = None,
            ) -> tuple[list[Outcome], list[str], int | None]:
    """Run each method into its subfolder of ``staging``; returns the rows (given order), notes and a signal.

    Ctrl-C or SIGTERM stops the compare after the method it arrived in: that
    method keeps its result so far (``interrupted``, as ``restorekit run``
    would), or gets an ``interrupted`` row without one when none existed yet;
    the methods after it do not run.  The signal's number is returned (None
    when none came) for the exit code.
    """
    from ..session.signals import run_signals

    rows: list[Outcome] = []
    notes: list[str] = []
    signum: int | None = None
    for method, name in zip(methods, folder_names(methods)):
        if log is not None:
            log(f"{method} ...")
        with run_signals() as signals:  # one per method: each run holds signals once its result exists
            try:
                row = run_method(method, shared, registry, staging / name, skip_refusal=defaults)
            except KeyboardInterrupt:
                row = Outcome(method=method, status="interrupted", error="interrupted before there was a result")
        rows.append(row)
        if log is not None:
            what = row.status if row.error is None else f"{row.status}: {row.error}"
            log(f"{method}: {what} ({row.wall_s:.1f} s)")
        if row.status == "interrupted" or signals.signum is not None:
            signum = signals.signum or 2  # SIGINT when the run saw a KeyboardInterrupt outside run_signals
            later = len(methods) - len(rows)
            notes.append(f"interrupted during {method}" + (f"; the {later} method(s) after it did not run" if later else ""))
            break
    digests = {r.observation for r in rows if r.observation is not None}
    if len(digests) > 1:  # the pipeline draws the observation from the seed alone; this would be a bug
        notes.append("the methods did not all see the same observation (see observation_sha256)")
    return rows, notes, signum


@dataclass
class ComparePlan:
    """A compare checked before any work: the methods, the shared settings, the metrics, each method's settings."""

    methods: list[str]
    defaults: bool  #: no method was named: the default ones (a refusing solver is skipped, not failed)
    settings: Any  #: the shared settings (checked with prior dip)
    metrics: list[Any]  #: the metric objects; the table is sorted by the first
    per_method: list[Any]  #: each method's RunSettings

    @property
    def metric(self) -> str | None:
        return self.metrics[0].label if self.metrics else None


def plan_compare(methods: Sequence[str] | None, shared: dict[str, Any], registry: Registry) -> ComparePlan:
    """Check every value before any work: the shared ones once, then each method (a misspelt one is the
    user's mistake, :class:`UsageError`), and the input files (paths; arrays are read already)."""
    import os

    from ..io import check_input_file
    from .settings import make_settings

    defaults = not methods
    names = default_methods(registry) if defaults else list(methods or ())
    checked = make_settings(registry, prior=("dip",), **shared)
    metric_objs = [registry.create("metric", s) for s in checked.metrics]
    per_method = [method_settings(spec, shared, registry) for spec in names]
    if isinstance(checked.image, (str, os.PathLike)):
        check_input_file(checked.image, "image")
    if isinstance(shared.get("reference"), (str, os.PathLike)):
        check_input_file(shared["reference"], "reference")
    return ComparePlan(names, defaults, checked, metric_objs, per_method)


def finish_compare(folder: Any, rows: list[Outcome], notes: list[str], plan: ComparePlan) -> tuple[list[Outcome], str]:
    """The rows in table order, and compare.json's text once the folder is written and committed."""
    first = plan.metrics[0] if plan.metrics else None
    rows = sort_rows(rows, plan.metric, first.higher_is_better if first else True)
    return rows, write_summary(folder, rows, notes, plan.settings, plan.metric)


def write_summary(folder: Any, rows: list[Outcome], notes: list[str], settings: Any, metric: str | None) -> str:
    """degraded.*, compare.png and compare.json into the staging folder, then the folder into place."""
    from ..io import output_suffix, to_array, write_image

    files: dict[str, str] = {}
    ran = next((r.result for r in rows if r.result is not None), None)
    if ran is not None:
        name = f"degraded{output_suffix(ran.source)}"
        write_image(folder.staging / name, to_array(ran.degraded, None, ran.source.dtype))
        files["degraded"] = name
        try:
            draw_grid(folder.staging / "compare.png", panels(rows, metric))
            files["compare"] = "compare.png"
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - the picture must not lose the results
            notes.append(f"compare.png was not drawn: {type(exc).__name__}: {exc}")
    files["record"] = "compare.json"
    record = compare_record(rows, settings=settings, metric=metric, baseline=ran.baseline if ran is not None else {},
                            files=files, out=folder.path)
    record["notes"] = notes
    text = write_json(folder.staging / "compare.json", record)
    folder.commit()
    return text
