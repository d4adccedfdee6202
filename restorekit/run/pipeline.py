"""The stages in order: one restoration from settings to a :class:`Result`.

settings -> plan -> problem -> schedule -> solve -> record; the outputs
(files) are written by the caller (:func:`restorekit.run.outputs.write_outputs`)
into a folder it reserved before calling :func:`run`.  The CLI,
:func:`restorekit.restore` and the benchmarks all come through here.
:func:`run` is :func:`prepare` (up to the problem), :func:`~.solve.solve`,
then :func:`finish` (the record): ``restorekit batch --stack`` prepares
several images, solves them together (:func:`~.solve.solve_many`) and
finishes each; a multi-page TIFF is restored page by page
(:mod:`restorekit.run.pages`), each page prepared, solved and finished on
its own.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ComponentFailure, UsageError
from ..io import Image, image_from_array, native_scale, read_image, to_array
from ..registry import Registry
from ..session.signals import hold as hold_signals
from .auto import fit_colour, fit_image
from .plan import Plan, make_plan, schedule, solver_label
from .problem import ForwardModel, build_problem
from .record import RunRecord, build_record, score
from .settings import RunSettings, default_image_path
from .solve import solve


@dataclass
class Result:
    """What a run returns."""

    image: np.ndarray  #: the restored image, same layout and dtype as the input
    restored: np.ndarray  #: (C, H, W) float32 in [0, 1]
    degraded: np.ndarray  #: (C, h, w) float32: the observation
    reference: np.ndarray | None  #: (C, H, W) clean image when known
    mask: np.ndarray | None  #: (h, w) bool, True = observed pixel (masking degradations)
    metrics: dict[str, float]  #: final metrics of the restored image
    baseline: dict[str, float]  #: the same metrics for the degraded input (upsampled for SR)
    record: RunRecord  #: everything run.json holds (sections also read by key: record["result"])
    source: Image  #: the input as read
    interrupted: bool = False
    history: dict[str, list] = field(default_factory=dict)
    #: a multi-page TIFF (a stack, :mod:`.pages`): each restored page's own Result, in order (fewer than
    #: the stack's pages when interrupted); ``image`` is then the stack (N, H, W[, C]), ``restored``,
    #: ``degraded`` and ``reference`` (N, C, H, W), ``mask`` (N, h, w), the scores the pages' means and
    #: ``record`` the stack's.  Empty for a single image
    pages: list["Result"] = field(default_factory=list)


def load_input(image: Any) -> Image:
    """A path, an array, an :class:`Image`, or None (the embedded default image) as an :class:`Image`."""
    if image is None:
        return read_image(default_image_path())
    if isinstance(image, Image):
        return image
    if isinstance(image, (str, Path)):
        return read_image(image)
    if isinstance(image, np.ndarray):
        return image_from_array(image)
    raise UsageError(f"image must be a path or a NumPy array (got {type(image).__name__})")


@dataclass
class Prepared:
    """A run up to the fit: its plan, problem and inputs (:func:`prepare`), waiting for a solution."""

    plan: Plan
    problem: Any
    source: Image
    reference: Image | None
    started: float  #: perf_counter() when the run started
    logged: int = 0  #: notes already passed to the log


def prepare(settings: RunSettings, registry: Registry, *, log: Callable[[str], Any] | None = None) -> Prepared:
    """The stages before the fit: plan, inputs, problem, schedule; ``log`` receives the notes and the plan."""
    started = time.perf_counter()
    plan = make_plan(settings, registry)
    src = load_input(settings.image)
    ref_img = load_input(settings.reference) if settings.reference is not None else None
    if ref_img is not None and ref_img.data.shape[0] != src.data.shape[0]:
        raise UsageError(f"reference has {ref_img.data.shape[0]} channel(s) but the image has {src.data.shape[0]}")
    fit_image(plan, registry, src.data.shape)  # auto's network, shrunk for a small image
    fit_colour(plan, registry, src.data.shape)  # auto's learned denoiser in more colour spaces
    try:
        problem = build_problem(
            src.data, ForwardModel(plan.degradations), mode=settings.mode, seed=settings.seed,
            stride=plan.stride, reference=None if ref_img is None else ref_img.data,
        )
    except ComponentFailure as exc:
        raise exc.with_plugin(registry.provider(exc.component).plugin) from exc.cause
    plan.notes.extend(getattr(src, "notes", None) or [])
    for d in plan.degradations:  # what a stage noticed while preparing (a thresholded mask, ...)
        plan.notes.extend(getattr(d, "notes", None) or [])
    full = native_scale(src.dtype)
    if getattr(problem, "noise", None) is not None and full is not None:
        plan.notes.append(problem.noise.summary_counts(int(full)))  # a 16-bit image: its levels in counts too
    schedule(plan, problem)
    logged = len(plan.notes)
    if log is not None:
        _log_plan(log, plan, problem)
    return Prepared(plan, problem, src, ref_img, started, logged)


def finish(prepared: Prepared, solution: Any, registry: Registry, *,
           log: Callable[[str], Any] | None = None) -> Result:
    """The stages after the fit: scores, the record, and the result in the input's own layout."""
    p = prepared
    return _finish(p.plan, p.problem, solution, p.source, p.reference, registry, p.started, log, p.logged)


def run(
    settings: RunSettings,
    registry: Registry,
    *,
    callback: Callable[[Any], Any] | None = None,
    log: Callable[[str], Any] | None = None,
    pages: bool = True,
    store: Any = None,
) -> Result:
    """One restoration, every stage; ``log`` receives the notes and the one-line plan.

    An image file holding a stack (a multi-page TIFF: z-stack, time series) is restored page by page
    (:func:`~.pages.run_pages`; ``store``, a :class:`~.kept.PageStore`, keeps its finished pages on disk
    and gives back those an earlier attempt finished); with ``pages`` false, its first page only, as
    :func:`load_input` reads it.
    """
    if pages and isinstance(settings.image, (str, os.PathLike)):
        from ..io import read_pages

        read = read_pages(settings.image)
        if len(read) > 1:
            from .pages import run_pages

            return run_pages(settings, registry, read, callback=callback, log=log, store=store)
        settings = replace(settings, image=read[0])  # read once
    prepared = prepare(settings, registry, log=log)
    solution = solve(prepared.plan, prepared.problem, registry, callback)
    # a result exists: inside the CLI's run, Ctrl-C and SIGTERM now wait until it is written
    hold_signals()
    return finish(prepared, solution, registry, log=log)


def _log_plan(log: Callable[[str], Any], plan: Plan, problem: Any) -> None:
    for n in plan.notes:
        log(n)
    _, h, w = problem.geometry.canvas_shape
    budget = plan.auto is not None and plan.auto.budgeted
    solvers = [] if plan.solver is None else [plan.solver, *plan.more_solvers]
    what = f"solving with {' + '.join(solver_label(p) for p in solvers)}" if solvers else (
        f"fitting for {plan.settings.time_limit:g} s" if budget else
        f"fitting {plan.iterations} iterations" + (f" x {plan.ensemble} runs" if plan.ensemble > 1 else "")
    )
    log(f"{what} on {plan.device} ({problem.task}, {w}x{h} after padding)")


def _finish(plan: Plan, problem: Any, solution: Any, src: Image, ref_img: Image | None, registry: Registry,
            started: float, log: Callable[[str], Any] | None, logged: int) -> Result:
    """Scores, the record, and the result in the input's own layout."""
    geo = problem.geometry
    restored = solution.output[0].numpy().astype(np.float32)
    reference_np = None if problem.reference is None else problem.reference[0].numpy()
    degraded = problem.observation[0].numpy()
    mask_obs = problem.forward.mask
    missing = ~mask_obs if (mask_obs is not None and problem.scale == 1) else None
    metric_values: dict[str, float] = {}
    baseline: dict[str, float] = {}
    if reference_np is not None:
        failed: set[str] = set()
        metric_values = score(plan.metrics, reference_np, restored, missing, registry, plan.notes, failed)
        base_img = degraded if problem.scale == 1 else geo.to_result(problem.init[0].numpy())
        baseline = score(plan.metrics, reference_np, base_img, missing, registry, plan.notes, failed)
        baseline = {k: v for k, v in baseline.items() if k in metric_values}
    if log is not None:
        for n in plan.notes[logged:]:
            log(n)
    alpha = src.alpha
    if alpha is not None and plan.settings.mode == "restore" and problem.scale > 1:
        from PIL import Image as PILImage

        a8 = PILImage.fromarray(alpha.astype(np.float32), mode="F")
        alpha = np.asarray(a8.resize((restored.shape[2], restored.shape[1]), PILImage.BICUBIC)).clip(0, 1)
    record = build_record(plan=plan, problem=problem, solution=solution, source=src, reference=ref_img,
                          registry=registry, metrics=metric_values, baseline=baseline, started=started)
    return Result(
        image=to_array(restored, alpha, src.dtype), restored=restored, degraded=degraded, reference=reference_np,
        mask=mask_obs, metrics=metric_values, baseline=baseline, record=record, source=src,
        interrupted=solution.interrupted, history=record.history.model_dump(),
    )
