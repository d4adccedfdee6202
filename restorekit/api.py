"""The Python API: :func:`restore` runs one restoration, no CLI needed; :func:`compare`,
:func:`segment`, :func:`decompose`, :func:`batch`, :func:`train` and :func:`evaluate` are the other
commands as functions, each calling what its command calls and returning a dataclass (docs/api.md).

>>> from restorekit import restore
>>> r = restore("noisy.png")                          # a real noisy photo, restored      # doctest: +SKIP
>>> r = restore("photo.png", mode="benchmark", degrade="bernoulli:0.5", prior="dip", net="skip", iters=500)  # doctest: +SKIP
>>> r.metrics["psnr"], r.image.shape                  # the benchmark's scores             # doctest: +SKIP

:func:`restore` builds :class:`~restorekit.run.settings.RunSettings` and runs
the pipeline (:mod:`restorekit.run`); the names below it are re-exported
from the stages for code written against earlier versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .errors import UsageError
from .registry import Registry
from .run.pipeline import Result, load_input
from .run.plan import (
    AUTO_STOP,
    CPU_ITERATION_CAP,
    IDENTITY_ITERATIONS,
    PAPER_ITERATIONS,
    auto_stop_spec,
    check_precision,
    cpu_has_native_bf16,
    is_noise_free,
    pick_device,
    resolve_components,
)
from .run.settings import MAX_SEED, check_seed, default_image_path, make_settings

__all__ = [
    "restore", "Result", "compare", "CompareResult", "CompareRow", "segment", "decompose", "SegmentResult",
    "batch", "BatchResult", "train", "TrainResult", "evaluate", "EvaluateResult", "pick_device", "resolve_components", "auto_stop_spec", "is_noise_free",
    "cpu_has_native_bf16", "check_precision", "check_seed", "default_image_path", "load_input",
    "AUTO_STOP", "CPU_ITERATION_CAP", "IDENTITY_ITERATIONS", "PAPER_ITERATIONS", "MAX_SEED",
]


def restore(
    image: Any = None,
    *,
    degrade: str | Sequence[str] | None = None,
    prior: str | Sequence[str] | None = None,
    net: str | None = None,
    metrics: str | Sequence[str] | None = None,
    mode: str | None = None,
    reference: Any = None,
    iters: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    device: str = "auto",
    report_every: int | None = None,
    stop: str | None = "auto",
    ensemble: int = 1,
    ensemble_batched: bool | None = None,
    precision: str = "auto",
    time_limit: float | None = None,
    preset: str | None = None,
    data: Any = None,
    callback: Callable[[Any], Any] | None = None,
    registry: Registry | None = None,
    log: Callable[[str], Any] | None = None,
    pages: bool = False,
) -> Result:
    """Restore one image, or a stack of them page by page.

    ``image`` is a path, an array (HxW, HxWxC; uint8, uint16 or float in
    [0, 1]) or ``None`` for the embedded default image.  A path to a
    multi-page TIFF (a z-stack, a time series) is restored page by page,
    each page with these settings and ``seed`` (its own noise estimate):
    ``result.image`` is the stack, ``(N, H, W[, C])`` in the input's sample
    type, and ``result.pages`` each restored page's own :class:`Result`
    (fewer than N when interrupted; ``reference`` is then a stack of N
    pages).  ``pages=True`` says that ``image`` is a stack whose first axis
    is its pages, held in memory: an array (or a list of arrays) ``(N, H,
    W)`` or ``(N, H, W, C)``, restored page by page as a TIFF stack is (the
    result's ``image`` is ``(N, H, W[, C])`` in the input's sample type; a
    path gives every page of its file, one for a single-page file, and the
    result is a stack all the same).  Without it an array is always one
    image (``(H, W, 3)`` is RGB).  ``reference`` is then a stack of N pages
    too (an array whose first axis is the pages, a list, or a path).  An
    image given is
    taken as already degraded: ``mode`` defaults to ``restore``, where
    ``degrade`` only describes the forward model (default ``noise``: real
    noise of unknown level, estimated from the image; ``none``: no
    degradation), nothing is added, and the metrics are computed only
    against ``reference`` if given.  ``mode="benchmark"`` takes the image as
    clean: ``degrade`` (default ``gaussian:25``) is applied to it with
    ``seed`` and the metrics (default psnr and ssim) compare the result with
    it.  Without an image the embedded (clean) image is a benchmark.
    ``prior`` defaults to ``auto`` and ``net`` to ``auto`` (skip for dip,
    identity otherwise).  ``preset`` (with ``data``, the folder of the
    paper's images) fills whatever is not given from one of the paper's
    configurations, its mode included.

    ``stop`` is a ground-truth-free stopping rule (``eswmv``, ``esemv``,
    ``none``); ``auto`` uses ES-WMV when ``iters`` is not given (the default
    iteration count is then a cap) and the forward model adds noise: a
    ``noise_free`` one (pixel loss, downsampling) has no noise to overfit,
    and runs the default count.  ``ensemble`` averages that many
    independent fits (different network seeds, same observation); they are
    fitted together as one batched problem (``torch.func``) when
    ``ensemble_batched`` is true, or by default on a GPU, else one after the
    other.

    ``prior`` ``None`` is ``auto``: the method measured best for the task on
    this device (:mod:`restorekit.run.auto`; ``result.record.auto`` says
    what it chose and why).  ``precision`` ``auto`` is bf16 where ``auto``
    fits on a CPU with bfloat16 instructions, fp32 otherwise.

    ``precision`` ``bf16`` runs the network in bfloat16 autocast: faster
    where the hardware has bfloat16 arithmetic (recent x86 CPUs with
    AVX512-BF16 or AMX, NVIDIA Ampere and later), slower where it is
    emulated.  ``time_limit`` (seconds of fitting) ends the fit early, with
    the output it has then (the average, if one is kept); a sequential
    ensemble gives each member an equal share.
    """
    from .run.pipeline import run

    if registry is None:
        from .plugins import get_registry

        registry = get_registry()
    settings = make_settings(
        registry, image=image, degrade=degrade, prior=prior, net=net, metrics=metrics, mode=mode,
        reference=reference, iters=iters, lr=lr, seed=seed, device=device, report_every=report_every,
        stop=stop, ensemble=ensemble, ensemble_batched=ensemble_batched, precision=precision,
        time_limit=time_limit, preset=preset, data=data,
    )
    if not pages:
        _refuse_stack_array(image)
        return run(settings, registry, callback=callback, log=log)
    return _restore_pages(settings, registry, image, reference, callback, log)


def _refuse_stack_array(image: Any) -> None:
    """An array that can only be a stack of pages, given without ``pages=True``: one line that says so."""
    if not isinstance(image, np.ndarray):
        return
    shape = tuple(image.shape)
    if len(shape) == 4 or (len(shape) == 3 and not 1 <= shape[2] <= 4):
        chw = " if it is C x H x W, pass arr.transpose(1, 2, 0);" if len(shape) == 3 and shape[0] <= 4 else ""
        raise UsageError(f"invalid image array: shape {shape} is not H x W or H x W x C with C in 1..4;{chw} "
                         f"if its first axis is pages (a stack of {shape[0]}), pass pages=True")


def _restore_pages(settings: Any, registry: Registry, image: Any, reference: Any, callback: Any, log: Any) -> Result:
    """``restore(..., pages=True)``: the stack's pages restored one by one (:func:`~.run.pages.run_pages`)."""
    from dataclasses import replace

    from .run.pages import run_pages, stack_pages

    stack = stack_pages(image)
    if isinstance(reference, np.ndarray):
        reference = list(reference)  # a stack of references: one per page, along the first axis
    result = run_pages(replace(settings, reference=reference), registry, stack, callback=callback, log=log)
    if isinstance(image, np.ndarray) and image.ndim == 4 and image.shape[-1] == 1 and result.image.ndim == 3:
        result.image = result.image[..., None]  # (N, H, W, 1) in, (N, H, W, 1) out
    return result


# -- the other commands as functions: each calls what its CLI command calls ---------------------------------
def _registry(registry: Registry | None) -> Registry:
    if registry is not None:
        return registry
    from .plugins import get_registry

    return get_registry()


def _specs(value: str | Sequence[str] | None) -> list[str] | None:
    """One spec or several, as the CLI's repeatable options take them."""
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _path(value: Any) -> Any:
    return Path(value) if isinstance(value, str) else value


@dataclass
class CompareRow:
    """One prior's row of :func:`compare` (compare.json's entry): its scores, cost and restored image."""

    prior: str
    status: str  #: complete, interrupted, failed or skipped (a default solver that refuses the task)
    error: str | None
    metrics: dict[str, float]
    seconds: float  #: the pipeline run (plan, fit or solve, scores)
    image: np.ndarray | None  #: the restored image, same layout and dtype as the input (None: no result)
    result: Result | None  #: the prior's whole run, as :func:`restore` returns it
    folder: Path | None  #: its outputs (what ``restorekit run`` writes) when ``out`` was given


@dataclass
class CompareResult:
    """What :func:`compare` returns: the rows in table order (best first by the first metric)."""

    rows: list[CompareRow]
    degraded: np.ndarray | None  #: (C, h, w) float32: the observation every prior saw
    baseline: dict[str, float]  #: the metrics of the degraded input
    notes: list[str]
    record: dict[str, Any]  #: compare.json
    out: Path | None  #: the folder written (None: ``out`` not given, nothing kept)

    def row(self, prior: str) -> CompareRow:
        """The row of ``prior`` as given (``UsageError`` if none)."""
        for r in self.rows:
            if r.prior == prior:
                return r
        raise UsageError(f"no row for prior '{prior}' (rows: {', '.join(r.prior for r in self.rows)})")


def compare(
    image: Any = None,
    *,
    prior: str | Sequence[str] | None = None,
    degrade: str | Sequence[str] | None = None,
    net: str | None = None,
    metrics: str | Sequence[str] | None = None,
    mode: str | None = None,
    reference: Any = None,
    iters: int | None = None,
    lr: float | None = None,
    time_limit: float | None = None,
    seed: int = 0,
    device: str = "auto",
    out: str | Path | None = None,
    overwrite: bool = False,
    registry: Registry | None = None,
    log: Callable[[str], Any] | None = None,
) -> CompareResult:
    """Several priors on one image, as ``restorekit compare``: the same observation, one row each.

    ``image`` and ``reference`` are what :func:`restore` takes (a path, an
    array, ``None`` for the embedded image).  ``prior`` is one spec or a list
    (default: auto, dip and every installed solver prior, those that refuse
    the task ``skipped``).  A prior that fails gets a ``failed`` row with its
    error; the others still run.  ``out`` keeps the folder ``compare`` writes
    (compare.json, compare.png, one run folder per prior); without it nothing
    is kept.  A misspelt prior or option raises :class:`UsageError` before
    any prior runs.

    >>> r = restorekit.compare("photo.png", mode="benchmark", prior=["dip", "tv"], iters=200)  # doctest: +SKIP
    >>> [(row.prior, row.metrics["psnr"]) for row in r.rows]                                # doctest: +SKIP
    """
    import json
    import shutil
    import tempfile

    from .run.compare import compare as run_priors
    from .run.compare import finish_compare, plan_compare
    from .run.settings import input_paths
    from .session.outdir import prepare_output

    registry = _registry(registry)
    shared = dict(image=_path(image), degrade=_specs(degrade), net=net, metrics=_specs(metrics), mode=mode,
                  reference=_path(reference), iters=iters, lr=lr, seed=seed, device=device, time_limit=time_limit)
    plan = plan_compare(_specs(prior), shared, registry)
    scratch = Path(tempfile.mkdtemp(prefix="restorekit-compare-")) if out is None else None
    try:
        target = Path(out) if out is not None else scratch / "compare"
        given = [p for settings in plan.per_method for p in input_paths(settings)]
        folder = prepare_output(target, overwrite=overwrite, inputs=given)  # never over an input
        try:
            rows, notes, _ = run_priors(plan.methods, shared, registry, folder.staging, defaults=plan.defaults, log=log)
            rows, text = finish_compare(folder, rows, notes, plan)
        except BaseException:
            folder.abandon()
            raise
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    record = json.loads(text)
    if out is None:
        record["out"] = None  # the folder was a scratch one, removed
    ran = next((r.result for r in rows if r.result is not None), None)
    return CompareResult(
        rows=[CompareRow(prior=r.method, status=r.status, error=r.error, metrics=dict(r.metrics), seconds=r.wall_s,
                         image=None if r.result is None else r.result.image, result=r.result,
                         folder=None if out is None or r.folder is None else folder.path / r.folder)
              for r in rows],
        degraded=None if ran is None else ran.degraded, baseline={} if ran is None else dict(ran.baseline),
        notes=list(notes), record=record, out=None if out is None else folder.path,
    )


@dataclass
class SegmentResult:
    """What :func:`segment` and :func:`decompose` return (run.json's record, and the arrays)."""

    mask: np.ndarray | None  #: (H, W) float in [0, 1]: the object's share (object where >= 0.5)
    labels: np.ndarray | None  #: (H, W) int: segment numbers
    layers: dict[str, np.ndarray]  #: name -> (C, H, W) float layer (or an airlight colour)
    metrics: dict[str, float]  #: IoU, Dice, boundary F against ``reference`` (empty without one)
    iterations: int
    stopped: str  #: done, time limit or interrupted
    seconds: float
    record: dict[str, Any]  #: run.json
    out: Path | None  #: the folder written (None: ``out`` not given)
    files: dict[str, str]  #: what was written there


def _split(request: Any, registry: Registry | None, progress: Callable[[int, int, float], None] | None
           ) -> SegmentResult:
    """prepare, decompose and (with ``out``) write: what the segment and decompose commands run."""
    from .segment.pipeline import decompose as run_method
    from .segment.pipeline import input_paths, prepare, write

    outcome = prepare(request, _registry(registry))
    folder = None
    if request.out is not None:  # reserved before the fit: a folder that cannot take the results fails now
        from .session.outdir import prepare_output

        source = request.image if isinstance(request.image, Path) else None
        folder = prepare_output(request.out, source=source, overwrite=request.overwrite, inputs=input_paths(request))
    try:
        run_method(outcome, progress=progress)
        if folder is not None:
            write(outcome, folder)
    except BaseException:
        if folder is not None:
            folder.abandon()
        raise
    r = outcome.result
    return SegmentResult(
        mask=None if r.mask is None else np.asarray(r.mask), labels=None if r.labels is None else np.asarray(r.labels),
        layers={k: np.asarray(v) for k, v in r.layers.items()}, metrics=dict(outcome.metrics),
        iterations=int(r.iterations), stopped=r.stopped, seconds=outcome.seconds, record=outcome.record,
        out=None if folder is None else folder.path, files=dict(outcome.files),
    )


def _check_split(image: Any, iters: int | None, time_limit: float | None) -> None:
    if image is None:
        raise UsageError("give an image to split (a path or an array)")
    if iters is not None and iters < 1:
        raise UsageError(f"iters must be at least 1 (got {iters})")
    if time_limit is not None and not time_limit > 0:
        raise UsageError(f"time_limit must be positive (got {time_limit})")


def segment(
    image: Any,
    *,
    method: str | None = None,
    hint: str | Sequence[str] | None = None,
    reference: Any = None,
    iters: int | None = None,
    time_limit: float | None = None,
    seed: int = 0,
    device: str | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    registry: Registry | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> SegmentResult:
    """Split one image into object and background (or K segments), as ``restorekit segment``.

    ``image`` is a path or an array (as :func:`restore` takes).  ``method``
    is a decomposition spec (``double-dip``, ``clustering:k=8``, ``otsu``,
    ...; ``restorekit list decompositions``; default: the measured best,
    :func:`restorekit.segment.defaults.default_method`, as the command's);
    ``device`` where double-dip and clustering run (as ``--device``); ``hint`` ``box:x,y,w,h`` or
    ``scribbles:FILE``.  ``reference`` is the true mask (a path, or an array
    where white = object): ``result.metrics`` then has IoU, Dice and
    boundary F.  ``out`` writes mask.png, labels.png, layers, overlay.png and
    run.json there (``overwrite``: replace an earlier result).

    >>> r = restorekit.segment("photo.png", method="otsu", reference="mask.png")  # doctest: +SKIP
    >>> r.metrics["iou"], r.mask.shape                                          # doctest: +SKIP
    """
    from .segment.defaults import default_method
    from .segment.pipeline import Request

    _check_split(image, iters, time_limit)
    hints = _specs(hint) or []
    request = Request(image=_path(image), task="segment", method=method or default_method("segment", "segment", hints),
                      hints=hints, truth=_path(reference), out=_path(out), overwrite=overwrite, seed=seed, iters=iters,
                      time_limit=time_limit, command="segment", device=device)
    return _split(request, registry, progress)


def decompose(
    image: Any,
    *,
    task: str,
    method: str | None = None,
    hint: str | Sequence[str] | None = None,
    second: Any = None,
    iters: int | None = None,
    time_limit: float | None = None,
    seed: int = 0,
    device: str | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    registry: Registry | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> SegmentResult:
    """Split one image into layers, as ``restorekit decompose``: ``task`` transparency, watermark, dehaze.

    ``second`` is a second mixture of the same two images (transparency),
    a path or an array; the rest is as for :func:`segment`.

    >>> r = restorekit.decompose("hazy.png", task="dehaze", iters=300)  # doctest: +SKIP
    >>> sorted(r.layers)                                                # doctest: +SKIP
    """
    from .segment.defaults import default_method
    from .segment.pipeline import Request

    _check_split(image, iters, time_limit)
    task = str(task).strip().lower()
    hints = _specs(hint) or []
    request = Request(image=_path(image), task=task, method=method or default_method("decompose", task, hints),
                      hints=hints, second=_path(second), out=_path(out), overwrite=overwrite, seed=seed, iters=iters,
                      time_limit=time_limit, command="decompose", device=device)
    return _split(request, registry, progress)


@dataclass
class BatchResult:
    """What :func:`batch` returns: the counts, one row per image (the manifest's) and the summary."""

    out: Path
    counts: dict[str, int]  #: done, failed, pending, running over the whole batch (resumes included)
    rows: list[Any]  #: the manifest's rows (key, status, attempts, metrics, seconds, error, ...)
    summary: Any  #: this run's :class:`restorekit.batch.driver.Summary` (done now, skipped, failed, seconds)

    @property
    def failed(self) -> list[str]:
        return [r.key for r in self.rows if r.status == "failed"]


def batch(
    source: str | Path,
    out: str | Path,
    *,
    degrade: str | Sequence[str] | None = None,
    prior: str | Sequence[str] | None = None,
    net: str | None = None,
    metrics: str | Sequence[str] | None = None,
    mode: str | None = None,
    reference: str | None = None,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    iters: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    device: str = "auto",
    stop: str = "auto",
    ensemble: int = 1,
    precision: str = "auto",
    time_limit: float | None = None,
    workers: int = 1,
    threads: int | None = None,
    stack: int = 1,
    resume: bool = False,
    attempts: int | None = None,
    shard: tuple[int, int] | str | None = None,
    save: str = "all",
    registry: Registry | None = None,
    on_event: Callable[[str, Any, Any], Any] | None = None,
) -> BatchResult:
    """Restore every image of a folder (or an ``@LIST.txt``), as ``restorekit batch SOURCE OUT``.

    Each image is exactly a :func:`restore` (a run folder under ``out``,
    mirroring the input tree), with one manifest (``out/manifest.sqlite``)
    and ``out/index.html``.  Every input is taken as already degraded unless
    ``mode="benchmark"``; specs may hold ``{stem}``, ``{name}``, ``{relpath}``
    patterns (``degrade="mask:masks/{stem}.png"``).  ``workers`` > 1 uses a
    local process pool; ``resume`` continues a batch in ``out`` (or starts
    one where ``out`` holds none, as ``--resume`` does).  ``shard``
    ``(K, N)`` (or ``"K/N"``) takes only the K-th of N deterministic shares
    of the sorted inputs, as ``--shard K/N`` (give each share its own
    ``out``); ``save="restored"`` writes only each image's restored image and
    run.json, as ``--save restored``.  A failed image is a row
    (``result.failed``), not an exception; bad options and inputs raise
    :class:`UsageError` before anything is written.

    >>> r = restorekit.batch("scans/", "restored/", degrade="gaussian:25", iters=300)  # doctest: +SKIP
    >>> r.counts["done"], r.failed                                                    # doctest: +SKIP
    """
    from .batch.driver import DEFAULT_ATTEMPTS
    from .batch.inputs import parse_shard
    from .batch.start import check_batch, close_executor, lock_batch, make_executor, recorded_settings, starts_fresh
    from .run.outputs import SAVE_CHOICES
    from .run.settings import DEFAULTS
    from .run.settings import default_degrade

    attempts = DEFAULT_ATTEMPTS if attempts is None else attempts
    for name, value in (("workers", workers), ("stack", stack), ("attempts", attempts)):
        if value < 1:
            raise UsageError(f"{name} must be at least 1 (got {value})")
    if save not in SAVE_CHOICES:
        raise UsageError(f"save must be one of {', '.join(SAVE_CHOICES)} (got {save!r})")
    share = None if shard is None else parse_shard(shard if isinstance(shard, str) else "/".join(map(str, shard)))
    registry = _registry(registry)
    mode = mode or DEFAULTS["mode"]["image"]
    degrade_specs = _specs(degrade) or list(default_degrade(mode))
    prior_specs = _specs(prior) or list(DEFAULTS["prior"])
    options = {"metrics": _specs(metrics), "mode": mode, "iters": iters, "lr": lr, "seed": seed, "device": device,
               "stop": stop, "ensemble": ensemble, "precision": precision, "time_limit": time_limit}
    if save != "all":  # recorded only when asked, as the command does (batch/start.py's NOT_SETTINGS)
        options["save"] = save
    if share is not None:
        options["shard"] = f"{share[0]}/{share[1]}"
    src, out_dir = str(source), Path(out)
    given = dict(degrade=degrade_specs, prior=prior_specs, net=net, reference=None if reference is None else str(reference),
                 include=_specs(include) or [], exclude=_specs(exclude) or [], options=options)
    resume = resume and not starts_fresh(out_dir, resume)  # as the command: resume=True where none is starts one
    items = check_batch(src, out_dir, registry=registry, resume=resume, share=share, **given)
    executor = make_executor(workers, threads)
    lock = lock_batch(out_dir, executor)
    try:
        summary, counts, rows = _drive_batch(items, out_dir, executor, recorded_settings(src, **given), options,
                                             resume=resume, attempts=attempts, stack=stack, on_event=on_event)
    finally:
        close_executor(executor)
        lock.release()
    return BatchResult(out=out_dir, counts=counts, rows=rows, summary=summary)


def _drive_batch(items: list[Any], out_dir: Path, executor: Any, recorded: dict[str, Any], options: dict[str, Any], *,
                 resume: bool, attempts: int, stack: int, on_event: Callable[[str, Any, Any], Any] | None):
    """The manifest opened (or resumed), the items run, index.html kept up to date: (summary, counts, rows)."""
    from .batch.driver import run_batch
    from .batch.manifest import open_or_create, sweep_temporary
    from .batch.report import ReportWriter
    from .batch.start import close_executor

    manifest = open_or_create(out_dir, recorded, resume)
    try:
        sweep_temporary(out_dir)
        manifest.add(items)
        report = ReportWriter(out_dir, manifest)

        def event(kind: str, item: Any, result: Any) -> None:
            if kind in ("finished", "planned"):
                report.update(force=kind == "planned")
            if on_event is not None:
                on_event(kind, item, result)

        try:
            summary = run_batch(items, manifest, executor, {k: v for k, v in options.items() if v is not None},
                                attempts=attempts, on_event=event, stack=stack)
        except KeyboardInterrupt:  # as the command does: the images in flight are pending again
            close_executor(executor, cancel=True)
            manifest.reset_running()
            report.update(force=True)
            raise
        report.update(force=True)
        return summary, manifest.counts(), manifest.rows()
    finally:
        manifest.close()


@dataclass
class TrainResult:
    """What :func:`train` returns: the model folder (for ``prior="learned:model=OUT"``) and how it went."""

    out: Path  #: the model folder: model.safetensors, model.json, train.json, curves.png, checkpoint
    model: Path  #: out / model.safetensors (the best by validation PSNR)
    best_val_psnr: float
    best_epoch: int
    epochs: int  #: epochs run
    iters: int  #: optimiser iterations run
    seconds: float
    stopped_by: str  #: epochs, iters, time limit or a signal
    history: dict[str, list]  #: per epoch: step, loss, val_loss, val_psnr, time


def train(
    folder: str | Path | None = None,
    *,
    out: str | Path,
    pairs: tuple[str | Path, str | Path] | None = None,
    dataset: str | None = None,
    degrade: str | Sequence[str] | None = None,
    net: str = "resunet",
    sigma_range: tuple[float, float] = (0.0, 55.0),
    channels: int = 1,
    epochs: int = 20,
    iters: int | None = None,
    iters_per_epoch: int | None = None,
    batch: int = 32,
    patch: int | None = None,
    loss: str = "mse",
    lr: float = 1e-3,
    seed: int = 0,
    split: tuple[float, float, float] = (0.7, 0.2, 0.1),
    time_limit: float | None = None,
    precision: str = "auto",
    device: str = "auto",
    resume: bool = False,
    init: str | Path | None = None,
    log: Callable[[str], Any] | None = None,
    progress: Callable[..., Any] | None = None,
) -> TrainResult:
    """Train an image-to-image network on examples, as ``restorekit train``; the model folder is ``out``.

    One source of examples: ``folder`` (clean images, degraded with
    ``degrade`` or Gaussian noise from ``sigma_range``), ``pairs``
    ``(low_dir, high_dir)`` or ``dataset`` (faces, photos, digits).
    ``iters`` is the total of optimiser iterations (instead of ``epochs``).
    The model is then ``prior=f"learned:model={out}"`` in :func:`restore`,
    and :func:`evaluate` scores it.

    >>> r = restorekit.train(dataset="faces", net="dncnn", iters=200, out="model/")  # doctest: +SKIP
    >>> restorekit.restore("noisy.png", degrade="gaussian:25", prior=f"learned:model={r.out}")  # doctest: +SKIP
    """
    from .learn.train import TrainSettings
    from .learn.train import train as run_training

    if len(tuple(sigma_range)) != 2:
        raise UsageError(f"sigma_range takes two numbers (got {sigma_range!r})")
    if len(tuple(split)) != 3:
        raise UsageError(f"split takes three fractions (got {split!r})")
    settings = TrainSettings(
        folder=_path(folder), out=Path(out), pairs=None if pairs is None else (Path(pairs[0]), Path(pairs[1])),
        dataset=dataset, degrade=tuple(_specs(degrade) or ()), net=net,
        sigma_range=tuple(float(v) for v in sigma_range), channels=channels, epochs=epochs,
        steps_per_epoch=iters_per_epoch, steps=iters, batch=batch, patch=patch, loss=loss, lr=lr, seed=seed,
        split=tuple(float(v) for v in split), time_limit=time_limit, precision=precision, device=device,
        resume=resume, init=_path(init),
    )
    report = run_training(settings, log=log, progress=progress)
    return TrainResult(out=Path(out), model=Path(out) / "model.safetensors", best_val_psnr=report.best_val_psnr,
                       best_epoch=report.best_epoch, epochs=report.epochs_run, iters=report.steps_run,
                       seconds=report.seconds, stopped_by=report.stopped_by, history=report.history)


@dataclass
class EvaluateResult:
    """What :func:`evaluate` returns: per prior (``input`` the degraded input, ``model``, each baseline)
    and metric (psnr, ssim, mse, mae), the per-image scores and their means."""

    model: str
    degrade: list[str]
    images: list[str]
    priors: list[str]  #: the table's rows: input, model, then the baseline priors that ran
    scores: dict[str, dict[str, list[float]]]  #: prior -> metric -> per image
    means: dict[str, dict[str, float]]  #: prior -> metric -> mean
    seconds: dict[str, float]  #: prior -> seconds over all images
    skipped: dict[str, str]  #: baseline -> why it did not run
    out: Path | None  #: eval.json and compare.png written there, when ``out`` was given

    @property
    def psnr(self) -> dict[str, float]:
        """prior -> mean PSNR (dB): the table's first column."""
        return {p: m["psnr"] for p, m in self.means.items()}


def evaluate(
    model: str | Path,
    folder: str | Path,
    *,
    degrade: str | Sequence[str] | None = None,
    prior: str | Sequence[str] | None = None,
    seed: int = 0,
    limit: int | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    log: Callable[[str], Any] | None = None,
) -> EvaluateResult:
    """Score a trained model against the degraded input and classical priors, as ``restorekit eval``.

    ``model`` is a model folder (:func:`train`'s ``out``) or a shipped
    model's name; ``folder`` holds clean test images.  ``degrade`` defaults
    to the one the model was trained on; ``prior`` names the solver priors to
    compare with (default: every installed one).  Image ``i`` is degraded
    with ``seed + i``.  ``out`` writes eval.json and compare.png.

    >>> r = restorekit.evaluate("model/", "test_dir/", degrade="gaussian:25", prior="bm3d")  # doctest: +SKIP
    >>> r.psnr                               # {'input': 20.2, 'model': 29.1, 'bm3d': 29.6}  # doctest: +SKIP
    """
    from .learn.evaluate import METRICS, check_out, write_results
    from .learn.evaluate import evaluate as run_eval

    if limit is not None and limit < 1:
        raise UsageError(f"limit must be at least 1 (got {limit})")
    model_path, test = Path(model), Path(folder)

    def fit():
        return run_eval(model_path, test, degrade=_specs(degrade), baselines=_specs(prior), seed=seed, limit=limit,
                        log=log, keep=4 if out is not None else 0)

    written = None
    if out is None:
        result, _ = fit()
    else:
        from .session.outdir import prepare_output

        check_out(Path(out), test, model_path)
        written = prepare_output(Path(out), overwrite=overwrite,
                                 inputs=[p for p in (test, model_path) if p.exists()])
        try:
            result, kept = fit()
            write_results(written, result, kept)
        except BaseException:
            written.abandon()
            raise
    return EvaluateResult(
        model=result.model, degrade=list(result.degrade), images=list(result.images), priors=list(result.methods),
        scores=result.scores, means={m: {k: result.mean(m, k) for k in METRICS} for m in result.methods},
        seconds=dict(result.seconds), skipped=dict(result.skipped), out=None if written is None else written.path,
    )
