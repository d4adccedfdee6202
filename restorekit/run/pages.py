"""A multi-page TIFF (a z-stack, a time series) restored page by page: :func:`run_pages`.

Every page is a run of its own through the pipeline's stages
(:func:`~.pipeline.prepare`, :func:`~.solve.solve`, :func:`~.pipeline.finish`)
with the run's settings and seed: its own noise estimate, its own choice by
``--prior auto``, its own time budget, exactly what a run on that page alone
gives.  :func:`run_pages` puts the pages back together into one
:class:`~.pipeline.Result`: ``image`` is the stack, ``(N, H, W[, C])`` in the
input's sample type, ``pages`` each restored page's own Result (with its own
record), and ``record`` the stack's record (see :func:`stack_record`).

Ctrl-C or SIGTERM during a page stops the stack: a fit keeps its result so
far (as a single run does), the pages after it are not started and stand in
the stack as they were read (brought to the result's size where it differs),
and the record says which pages were restored.  A signal while a finished
page is scored and recorded waits until it is (:func:`~.signals.deferred_signals`);
one before the first page has a result is raised, as for a single image.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import UsageError
from ..io import Image, native_scale, read_pages, to_array
from ..registry import Registry
from ..session.signals import deferred_signals
from ..session.signals import hold as hold_signals
from .pipeline import Result, finish, prepare
from .settings import RunSettings
from .solve import solve

__all__ = ["run_pages", "stack_record", "native_scale"]


def run_pages(
    settings: RunSettings,
    registry: Registry,
    pages: Sequence[Image],
    *,
    callback: Callable[[Any], Any] | None = None,
    log: Callable[[str], Any] | None = None,
    store: Any = None,
) -> Result:
    """Restore each page of a stack as its own image; the stack's :class:`~.pipeline.Result`.

    ``pages`` are the stack's pages (:func:`~restorekit.io.read_pages`).  ``log``
    receives "page k/N" before each page, the notes a page adds to those page 1
    printed, and one line per page restored.  ``callback`` gets each page's
    progress with a ``page`` attribute ("page k/N").  ``settings.reference``,
    when given, is a stack of as many pages (a path or a list of images).
    ``store`` (a :class:`~.kept.PageStore`) keeps each finished page on disk as it is done, and gives
    back the pages an earlier, interrupted attempt finished instead of restoring them again.
    """
    n = len(pages)
    if n < 1:
        raise ValueError("run_pages needs a stack of one page or more")
    started = time.perf_counter()
    references = _reference_pages(settings.reference, n)
    results: list[Result] = []
    interrupted = False
    printed: set[str] = set()
    finished = set(store.begin(n)) if store is not None else set()
    try:
        for k, page in enumerate(pages):
            label = f"page {k + 1}/{n}"
            kept = store.load(k + 1, page) if k + 1 in finished else None
            if kept is not None:
                results.append(kept)
                if log is not None:
                    log(f"{page_line(k, n, kept)} (kept from an earlier attempt)")
                continue
            if log is not None:
                log(label)
            page_log = None if log is None else _once(log, printed)
            prepared = prepare(replace(settings, image=page, reference=references[k]), registry, log=page_log)
            solution = solve(prepared.plan, prepared.problem, registry, _labelled(callback, label))
            try:
                with deferred_signals():  # a page that has a result is scored and recorded whole
                    result = finish(prepared, solution, registry, log=page_log)
                    if store is not None and not solution.interrupted:
                        store.save(k + 1, result)  # whole or not at all: a kill leaves no half page
                    results.append(result)
                    if log is not None:
                        log(page_line(k, n, result))
            except KeyboardInterrupt:
                interrupted = k + 1 < n or solution.interrupted
                break
            if solution.interrupted:
                interrupted = True
                break
    except KeyboardInterrupt:
        interrupted = True
    if not results:
        raise KeyboardInterrupt  # no page has a result: as a single image interrupted before its fit
    hold_signals()  # a result exists: from here a signal waits until it is written
    return _assemble(settings, pages, references, results, interrupted, started,
                     [] if store is None else store.loaded)


def stack_pages(image: Any) -> list[Image]:
    """A stack given as pages (``restorekit.restore(..., pages=True)``): an array or a sequence of arrays
    whose first axis is the pages, ``(N, H, W)`` or ``(N, H, W, C)`` (each page as
    :func:`~restorekit.io.image_from_array` takes it), an :class:`~restorekit.io.Image` list, or a path
    (every page of the file, :func:`~restorekit.io.read_pages`: one for a single-page file).  Raises
    :class:`UsageError` (one line) for anything else."""
    from ..io import image_from_array

    if isinstance(image, (str, os.PathLike)):
        return list(read_pages(image))
    if isinstance(image, (list, tuple)) and image and all(isinstance(p, Image) for p in image):
        return list(image)
    try:
        stack = np.asarray(image)
    except Exception:  # noqa: BLE001 - ragged lists: the shape check below says so
        stack = np.asarray(None)
    if stack.ndim not in (3, 4) or stack.shape[0] == 0:
        raise UsageError(f"pages=True takes a stack whose first axis is its pages, (N, H, W) or (N, H, W, C) "
                         f"(got {'an object' if stack.ndim == 0 else f'shape {tuple(stack.shape)}'})"
                         f"{'; drop pages=True for one image' if stack.ndim == 2 else ''}")
    out = []
    for k, page in enumerate(stack):
        try:
            img = image_from_array(page)
        except UsageError as exc:
            raise UsageError(f"page {k + 1} of {len(stack)}: {exc}") from None
        img.page = k
        out.append(img)
    return out


def _spans(numbers: Sequence[int]) -> str:
    """"page 3", "pages 1-4, 7": page numbers (1-based, sorted) in runs."""
    runs: list[list[int]] = []
    for k in sorted(numbers):
        if runs and k == runs[-1][1] + 1:
            runs[-1][1] = k
        else:
            runs.append([k, k])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
    return f"page {text}" if len(numbers) == 1 else f"pages {text}"


def _once(log: Callable[[str], Any], printed: set[str]) -> Callable[[str], Any]:
    """``log`` for one page: a line the pages before it printed is not printed again."""

    def page_log(message: str) -> None:
        if message not in printed:
            printed.add(message)
            log(message)

    return page_log


def _labelled(callback: Callable[[Any], Any] | None, label: str) -> Callable[[Any], Any] | None:
    if callback is None:
        return None

    def cb(progress: Any) -> Any:
        q = copy.copy(progress)
        q.page = label
        return callback(q)

    return cb


def _reference_pages(reference: Any, n: int) -> list[Any]:
    """A stack's reference, one per page: a path to a stack of ``n`` pages, or a list of ``n`` images."""
    if reference is None:
        return [None] * n
    if isinstance(reference, (str, os.PathLike)):
        refs: list[Any] = list(read_pages(reference))
    elif isinstance(reference, (list, tuple)):
        refs = list(reference)
    else:
        refs = [reference]
    if len(refs) != n:
        raise UsageError(f"the image is a stack of {n} pages but the reference has {len(refs)}: give a "
                         f"reference stack of {n} pages, in the same order")
    return refs


def page_line(k: int, n: int, result: Result) -> str:
    """What a restored page says: its status, its noise estimate (in the image's own units too, for
    16-bit images), its scores against a reference, its time."""
    rec = result.record
    how = ("interrupted: its result so far" if result.interrupted else "restored")
    parts = [f"page {k + 1}/{n} {how} in {rec.timings.total_s:.1f} s"]
    noise = rec.noise
    if noise is not None:
        rms = "/".join(f"{v:.3g}" for v in noise.rms_255)
        text = f"noise RMS {rms} (0-255)"
        scale = native_scale(result.source.dtype)
        if scale is not None:
            own = "/".join(f"{v / 255 * scale:.4g}" for v in noise.rms_255)
            text += f" = {own} (0-{scale:.0f}, the image's own units)"
        parts.append(text)
    if rec.safeguard is not None and rec.safeguard.action != "kept":
        parts.append(f"safeguard: {rec.safeguard.action}")
    for key, value in result.metrics.items():
        parts.append(f"{key} {value:.4g}")
    return "; ".join(parts)


def _page_record(k: int, result: Result) -> Any:
    """A restored page's :class:`~.record.PageRecord`, from its own record."""
    from .record import PageRecord

    rec = result.record
    return PageRecord(
        page=k, status="interrupted" if result.interrupted else "complete", noise=rec.noise,
        safeguard=rec.safeguard, iteration=rec.result.iteration, iterations_run=rec.result.iterations_run,
        output=rec.result.output, stop_reason=rec.result.stop_reason, metrics=dict(rec.result.metrics),
        baseline=dict(rec.result.baseline), seconds=rec.timings.total_s)


def _resize(planes: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(C, h, w) or (h, w) float in [0, 1] resized (bicubic, antialiased) to ``hw``; unchanged if it has that size."""
    hw = (int(hw[0]), int(hw[1]))
    if tuple(planes.shape[-2:]) == hw:
        return planes
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(planes, dtype=np.float32))
    flat = t[None, None] if t.ndim == 2 else t[None]
    out = F.interpolate(flat, size=hw, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    return (out[0, 0] if t.ndim == 2 else out[0]).numpy()


def _mean(values: list[dict[str, float]]) -> dict[str, float]:
    """The mean of each score every page has."""
    if not values:
        return {}
    keys = [k for k in values[0] if all(k in v for v in values[1:])]
    return {k: float(np.mean([v[k] for v in values])) for k in keys}


def _assemble(settings: RunSettings, pages: Sequence[Image], references: list[Any], results: list[Result],
              interrupted: bool, started: float, kept: Sequence[int] = ()) -> Result:
    """The stack's Result: the restored pages, then the pages not reached as they were read."""
    first = results[0]
    n, done = len(pages), len(results)
    hw = first.restored.shape[1:]
    obs_hw = first.degraded.shape[1:]
    restored = [r.restored for r in results]
    images = [r.image for r in results]
    degraded = [r.degraded for r in results]
    for page in pages[done:]:
        data = _resize(page.data, hw)
        restored.append(data)
        alpha = None if page.alpha is None else _resize(page.alpha, hw)
        images.append(to_array(data, alpha, page.dtype))
        degraded.append(_resize(page.data, obs_hw))
    reference = None
    if all(r.reference is not None for r in results):
        refs = [r.reference for r in results]
        for k in range(done, n):
            ref = references[k]
            if ref is None and settings.mode == "benchmark":
                ref = pages[k]
            if ref is None:
                break
            refs.append(ref.data if isinstance(ref, Image) else np.asarray(ref))
        if len(refs) == n and len({r.shape for r in refs}) == 1:
            reference = np.stack(refs)
    mask = None
    if any(r.mask is not None for r in results):
        ones = np.ones(obs_hw, dtype=bool)
        mask = np.stack([r.mask if r.mask is not None else ones for r in results] + [ones] * (n - done))
    metrics = _mean([r.metrics for r in results])
    baseline = _mean([r.baseline for r in results])
    record = stack_record(pages, results, interrupted, metrics, baseline, started, kept=kept)
    return Result(
        image=np.stack(images), restored=np.stack(restored), degraded=np.stack(degraded), reference=reference,
        mask=mask, metrics=metrics, baseline=baseline, record=record, source=first.source,
        interrupted=interrupted, history=first.history, pages=list(results),
    )


def stack_record(pages: Sequence[Image], results: list[Result], interrupted: bool, metrics: dict[str, float],
                 baseline: dict[str, float], started: float, *, kept: Sequence[int] = ()):
    """The stack's run.json: page 1's record (its input, components, settings, noise, safeguard, result and
    history), with the stack's status and times, the scores' means over the pages restored, the pages'
    total of iterations, notes that say what each page did (and which pages, ``kept``, 1-based, an earlier
    attempt restored), ``input.pages`` and every page's own :class:`~.record.PageRecord` in ``pages``."""
    from .record import PageRecord, TimingsRecord

    first = results[0]
    n, done = len(pages), len(results)
    src = first.source
    rec = first.record.model_copy(deep=True)
    shape = f"{src.width}x{src.height}"
    channels = {1: "gray", 3: "RGB"}.get(src.channels, f"{src.channels} channels") + (
        " + alpha" if src.alpha is not None else "")
    holder = {"tiff": "the TIFF holds", "array": "the array is"}.get(src.format, "the image is")
    many = f"{n} page{'s' if n > 1 else ''}"
    notes = [f"{holder} a stack of {many} of {shape} ({channels}, {np.dtype(src.dtype)}); each page was restored "
             f"as an image of its own, with the same settings and seed, and the result is a stack of {many} in "
             "the same order"]
    notes += [note for note in first.record.notes if note not in notes]
    seen = set(first.record.notes)
    for k, r in enumerate(results[1:], 2):
        notes += [f"page {k}/{n}: {note}" for note in r.record.notes if note not in seen]
    notes += [page_line(k, n, r) for k, r in enumerate(results)]
    if kept:
        notes.append(f"{_spans(kept)} of {n} {'was' if len(kept) == 1 else 'were'} restored by an earlier attempt "
                     "that was stopped, and kept: their results, records and times are that attempt's")
    if interrupted:
        last = results[-1]
        what = (f"page {done}'s fit was interrupted and kept its result so far" if last.interrupted
                else "page 1 was restored" if done == 1 else f"pages 1-{done} were restored")
        later = f"page {n} was" if done + 1 == n else f"pages {done + 1}-{n} were"
        resized = tuple(pages[-1].data.shape[1:]) != tuple(first.restored.shape[1:])
        rest = (f"{later} not started: the result holds {'it' if done + 1 == n else 'them'} as read"
                + (" (resized to the result's size)" if resized else "")
                if done < n else "every page has a result")
        notes.append(f"interrupted at page {done}/{n}: {what}; {rest}")
    notes.append("run.json's noise, safeguard, result and history are page 1's, and pages holds every page's "
                 f"own; result.metrics and baseline are the means over the {done} page{'s' if done > 1 else ''} "
                 "restored, result.iterations_run and timings.fit_s the pages' totals")
    rec.notes = notes
    rec.input = rec.input.model_copy(update={"pages": n})
    rec.pages = [_page_record(k, r) for k, r in enumerate(results, 1)] + [
        PageRecord(page=k, status="not started") for k in range(done + 1, n + 1)]
    rec.status = "interrupted" if interrupted or any(r.interrupted for r in results) else "complete"
    fit_s = sum(r.record.timings.fit_s for r in results)
    iterations = sum(r.record.result.iterations_run for r in results)
    rec.timings = TimingsRecord(total_s=round(time.perf_counter() - started, 3), fit_s=round(fit_s, 3),
                                per_iteration_s=round(fit_s / iterations, 5) if iterations else None)
    rec.result = rec.result.model_copy(update={"metrics": dict(metrics), "baseline": dict(baseline),
                                               "iterations_run": iterations})
    return rec
