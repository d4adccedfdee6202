"""``restorekit batch --stack K``: fit up to K same-size images together, in one stacked optimisation.

Many small images leave a device mostly idle one at a time: K networks
stacked with ``torch.func`` (as the batched ensemble does) step in one
batched call.  Each image still gets exactly what ``run`` gives it: its own
run folder (restored image, run.json, pictures) and manifest record, built
through the run pipeline's stages (:func:`~restorekit.run.pipeline.prepare`,
:func:`~restorekit.run.solve.solve_many`,
:func:`~restorekit.run.pipeline.finish`); its pixels are its fit alone up
to floating-point rounding (the stacked convolutions sum in another order),
and its run.json says it was stacked.

* :func:`make_groups` — pending items in groups of at most K: same image
  size and pixel mode, same prior and net specs, a network prior, no
  ensemble; everything else alone (a group of one runs exactly as without
  ``--stack``);
* :func:`run_group` — a worker's job for a group (picklable, no state), one
  result per item as :func:`~.job.run_item` gives; items whose prepared
  problems turn out not to fit together run alone, and a group whose
  stacked fit fails as a whole runs its items one at a time;
* :func:`submit` / :func:`completed` — a group through any executor
  (:mod:`.executors`): a group of one is the executor's own ``submit``; a
  larger one goes to its workers as one call of :func:`run_group`.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..errors import error_line
from .inputs import Item
from .job import ITEM_OPTIONS, _specs, run_item, worker_name
from .manifest import output_checksum


# -- grouping -----------------------------------------------------------------------------------
def _image_key(path: str) -> tuple | None:
    """(width, height, mode) from the file's header (no decoding); None when it cannot be read."""
    try:
        from PIL import Image as PILImage

        with PILImage.open(path) as im:
            return (*im.size, im.mode, getattr(im, "n_frames", 1))
    except Exception:  # noqa: BLE001 - an unreadable image runs alone and fails its own record
        return None


def _has_network_prior(item: Item, options: dict[str, Any], registry: Any) -> bool:
    """Whether ``item``'s run fits a network (what --prior auto chooses included)."""
    from ..run.plan import make_plan
    from ..run.settings import make_settings

    try:
        # the item's image (not read): its mode and default degradation are the ones its run gets
        settings = make_settings(registry, image=item.input, degrade=item.degrade or None, prior=item.prior or None,
                                 net=item.net, **{k: v for k, v in options.items() if k in ITEM_OPTIONS})
        return make_plan(settings, registry).network is not None
    except Exception:  # noqa: BLE001 - a bad spec fails in its own run
        return False


def stack_key(item: Item, options: dict[str, Any], registry: Any) -> tuple | None:
    """Items with equal keys may be fitted together; None: this item runs alone."""
    if int(options.get("ensemble") or 1) != 1 or not _has_network_prior(item, options, registry):
        return None
    size = _image_key(item.input)
    if size is None or size[3] > 1:  # a multi-page TIFF is restored page by page (run.pages), alone
        return None
    return (size, item.prior, item.net)


def make_groups(items: Sequence[Item], options: dict[str, Any], k: int, registry: Any = None) -> list[list[Item]]:
    """``items`` in groups of at most ``k`` that may be fitted together, in the items' order (a group
    where its first item was).  Items of one key are split into groups of near-equal size (10
    items with k = 8: 5 and 5, not 8 and 2).  ``k`` = 1: every item alone."""
    if k <= 1:
        return [[it] for it in items]
    if registry is None:
        from ..plugins import get_registry

        registry = get_registry()
    buckets: dict[tuple, list[int]] = {}
    alone: list[int] = []
    for n, item in enumerate(items):
        key = stack_key(item, options, registry)
        if key is None:
            alone.append(n)
        else:
            buckets.setdefault(key, []).append(n)
    groups: list[list[int]] = [[n] for n in alone]
    for members in buckets.values():
        count = math.ceil(len(members) / k)
        size, extra = divmod(len(members), count)
        at = 0
        for g in range(count):
            take = size + (1 if g < extra else 0)
            groups.append(members[at : at + take])
            at += take
    groups.sort(key=lambda g: g[0])
    return [[items[n] for n in g] for g in groups]


# -- the job ------------------------------------------------------------------------------------
def run_group(items: Sequence[Item], options: dict[str, Any]) -> list[dict[str, Any]]:
    """Restore ``items`` into their output folders, fitted together where they can be; one result
    per item, in order, as :func:`~.job.run_item` returns it (only Ctrl-C goes through)."""
    items = list(items)
    if len(items) == 1:
        return [run_item(items[0], options)]
    from ..plugins import get_registry
    from ..run.pipeline import prepare
    from ..run.solve import stack_key as solve_key
    from ..session.outdir import prepare_output
    from ..session.signals import deferred_signals

    t0 = time.perf_counter()
    worker = worker_name()
    bases = [{"key": it.key, "worker": worker, "seed": options.get("seed", 0)} for it in items]
    results: list[dict[str, Any] | None] = [None] * len(items)
    ready: dict[int, tuple[Any, Any]] = {}  # item index -> (prepared run, reserved folder)

    def failed(n: int, exc: BaseException) -> None:
        results[n] = {**bases[n], "status": "failed", "error": error_line(exc),
                      "seconds": round(time.perf_counter() - t0, 3)}

    try:
        registry = get_registry()
        from ..run.settings import make_settings

        for n, item in enumerate(items):
            folder = None
            try:
                settings = make_settings(
                    registry, image=item.input, degrade=item.degrade or None, prior=item.prior or None,
                    net=item.net, reference=item.reference, **{k: v for k, v in options.items() if k in ITEM_OPTIONS},
                )
                inputs = [Path(p) for p in (item.input, item.reference, *item.side_inputs) if p]
                # as run_item: a folder left by a killed attempt is replaced (restorekit's own folders only)
                with deferred_signals():  # reserved whole; a signal arrives once `folder` can be abandoned
                    folder = prepare_output(Path(item.out), source=Path(item.input), overwrite=True, inputs=inputs)
                ready[n] = (prepare(settings, registry), folder)
            except KeyboardInterrupt:
                if folder is not None:
                    folder.abandon()
                raise
            except Exception as exc:  # noqa: BLE001 - one image's failure is recorded, the others go on
                if folder is not None:
                    folder.abandon()
                failed(n, exc)
        together: dict[tuple, list[int]] = {}
        for n, (prep, _) in ready.items():
            key = solve_key(prep.plan, prep.problem)
            together.setdefault(key if key is not None else ("alone", n), []).append(n)
        for members in together.values():
            _solve_and_write(items, members, ready, registry, bases, results, failed, t0,
                             save=options.get("save") or "all")
    except BaseException:
        for n, (_, folder) in ready.items():
            if results[n] is None:
                folder.abandon()
        raise
    return results  # type: ignore[return-value]


def _solve_and_write(items: list[Item], members: list[int], ready: dict[int, tuple[Any, Any]], registry: Any,
                     bases: list[dict[str, Any]], results: list, failed: Any, t0: float, save: str = "all") -> None:
    """Solve the prepared runs ``members`` (together when more than one) and write each one's folder."""
    from ..run.pipeline import finish
    from ..run.solve import solve, solve_many
    from ..session.signals import deferred_signals
    from ..session.signals import hold as hold_signals

    preps = [ready[n][0] for n in members]
    solutions: list[Any] = []
    if len(members) > 1:
        try:
            solutions = solve_many([p.plan for p in preps], [p.problem for p in preps], registry)
        except KeyboardInterrupt:
            raise
        except Exception:  # noqa: BLE001 - the group as a whole failed (out of memory, a component): one by one
            solutions = []
        else:
            for p in preps:
                p.plan.notes.append(
                    f"fitted together with {len(members) - 1} other image(s) of the same size in one stacked "
                    "optimisation (restorekit batch --stack): the result is this image's fit alone up to "
                    "floating-point rounding; the fit's time is the group's"
                )
    if not solutions:
        for p in preps:
            try:
                solutions.append(solve(p.plan, p.problem, registry))
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001
                solutions.append(exc)
    hold_signals()
    if any(getattr(s, "interrupted", False) for s in solutions):  # Ctrl-C inside the fit: the batch stops
        raise KeyboardInterrupt
    from ..run.outputs import write_outputs

    for n, prep, solution in zip(members, preps, solutions):
        folder = ready[n][1]
        try:
            if isinstance(solution, BaseException):
                raise solution
            result = finish(prep, solution, registry)
            with deferred_signals():  # as run_item: a signal stops the batch after this image's write
                write_outputs(result, folder, save=save)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001
            folder.abandon()
            failed(n, exc)
            continue
        results[n] = {**bases[n], "status": "done", "specs": _specs(result.record), "metrics": result.metrics,
                      "seconds": round(time.perf_counter() - t0, 3), "checksum": output_checksum(items[n].out)}


# -- executors ----------------------------------------------------------------------------------
class _GroupCall:
    """A group given to an executor that runs items in this process (no pool, no cluster)."""

    def __init__(self, items: list[Item], options: dict[str, Any]) -> None:
        self.items, self.options = items, options
        self.item = items[0]


def submit(executor: Any, group: Sequence[Item], options: dict[str, Any]) -> Any:
    """Hand ``group`` to ``executor``; a handle for :func:`completed`.

    A group of one is ``executor.submit(item, options)``, exactly as without
    ``--stack``.  A larger group is one call of :func:`run_group` on the
    executor's workers: through ``executor.submit_call(fn, *args)`` where the
    executor has it, else its Dask client, its process pool, or (neither)
    this process when its results are asked for.
    """
    group = list(group)
    if len(group) == 1:
        return executor.submit(group[0], options)
    call = getattr(executor, "submit_call", None)
    client = getattr(executor, "client", None)
    pool = getattr(executor, "pool", None)
    if call is not None:
        fut = call(run_group, group, options)
    elif client is not None:  # Dask: a retried group is a new task
        fut = client.submit(run_group, group, options, pure=False,
                            key=f"restorekit-group-{group[0].key}-{os.urandom(4).hex()}")
    elif pool is not None:  # the local process pool
        try:
            fut = pool.submit(run_group, group, options)
        except Exception:  # a broken pool (a worker died): the executor starts a new one on its next submit
            renew = getattr(executor, "_new_pool", None)
            if renew is None:
                raise
            renew()
            fut = executor.pool.submit(run_group, group, options)
    else:
        return _GroupCall(group, options)
    fut.item = group[0]  # what the executor names when the worker is lost
    fut.group = group
    return fut


def completed(executor: Any, handles: Iterable[Any]) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    """``(handle, results)`` as submissions finish: one result per item of the handle's group, in
    order.  A lost worker loses its whole group: every item gets the ``lost`` result (the driver
    queues each one again, alone)."""
    handles = list(handles)
    here = [h for h in handles if isinstance(h, _GroupCall)]
    for h in here:
        yield h, run_group(h.items, h.options)
    others = [h for h in handles if not isinstance(h, _GroupCall)]
    if not others:
        return
    for h, result in executor.completed(others):
        group = getattr(h, "group", None)
        if group is None:
            yield h, [result]
        elif isinstance(result, dict):  # the executor's "lost" result, made for the group's first item
            yield h, [{**result, "key": it.key} for it in group]
        else:
            yield h, list(result)
