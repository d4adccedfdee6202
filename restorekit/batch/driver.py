"""The batch loop: hand items to an executor, record each result as it comes, resume, retry.

The manifest is written only here, by the client, one transaction per
change, so it always matches the files: an item is ``done`` only after its
folder was written and checksummed by the worker.  On ``--resume``:

* ``done`` items whose files still match their checksum are skipped (never
  recomputed, never overwritten); a ``done`` item whose files are gone or
  changed is run again;
* items left ``running`` by a killed batch, ``pending`` ones and ``failed``
  ones with attempts left are run; a complete folder that a killed attempt
  wrote before it could be recorded is adopted (same input and seed), not
  recomputed (only for an item that was handed out before: a folder that
  predates the batch is never taken for its result);
* the hidden staging folders that killed attempts left beside the output
  folders are removed first;
* a stack (a multi-page TIFF) continues from its first page not finished:
  each finished page is kept beside its output folder (``.<name>.rk-pages``,
  :mod:`restorekit.run.kept`) until the stack is written, and removed with
  the item once it is done;
* a worker that dies mid-image (killed, out of memory) loses only that
  attempt: the item goes back in the queue while it has attempts left.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .inputs import Item
from .job import adoptable
from .manifest import Manifest, output_checksum
from .stack import completed, make_groups, submit

#: attempts per image (a first try and two retries), over every run of the batch
DEFAULT_ATTEMPTS = 3


@dataclass
class Summary:
    """What a batch run did."""

    total: int
    done: int = 0  #: finished in this run
    skipped: int = 0  #: finished earlier (resume), files verified
    adopted: int = 0  #: found complete on disk from a killed attempt, recorded without recomputing
    failed: int = 0
    retried: int = 0  #: attempts lost with their worker and queued again
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def images_per_hour(self) -> float | None:
        return 3600.0 * self.done / self.seconds if self.seconds > 0 and self.done else None

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["failures"] = [{"key": k, "error": e} for k, e in self.failures]
        d["images_per_hour"] = self.images_per_hour
        return d


Event = Callable[[str, Item, dict[str, Any] | None], Any]


def plan_work(items: Sequence[Item], manifest: Manifest, options: dict[str, Any], attempts: int,
              summary: Summary) -> list[Item]:
    """The items this run must compute; the rest are skipped or adopted (and recorded)."""
    from ..run.kept import discard_kept
    from .job import item_inputs
    from ..session.outdir import clean_stale

    for parent in sorted({os.path.dirname(item.out) for item in items}):
        clean_stale(Path(parent))  # staging folders of processes that no longer run (a killed batch's)
    manifest.reset_running()
    rows = {r.key: r for r in manifest.rows()}
    todo: list[Item] = []
    for item in items:
        row = rows[item.key]
        if row.status == "done":
            if row.checksum and output_checksum(item.out) == row.checksum:
                summary.skipped += 1
                discard_kept(item.out, item_inputs(item))  # pages a kill left after the commit
                continue
        elif row.status == "failed" and row.attempts >= attempts:
            summary.failed += 1
            summary.failures.append((item.key, f"{row.error} (gave up after {row.attempts} attempts)"))
            continue
        found = adoptable(item, options) if row.status != "done" and row.attempts > 0 else None
        if found is not None:
            manifest.finish(item.key, found)
            summary.adopted += 1
            discard_kept(item.out, item_inputs(item))
            continue
        todo.append(item)
    return todo


def in_flight_limit(executor: Any) -> int:
    """How many items are handed out at once: the executor's ``max_in_flight`` when it has one (Dask: one
    per worker thread, so no image waits on a worker that may die), else twice the workers (a local pool
    starts the next image while the client records the last one)."""
    cap = getattr(executor, "max_in_flight", None)
    if cap is not None:
        return max(1, int(cap))
    workers = executor.workers
    return workers * 2 if workers > 1 else 1


def run_batch(items: Sequence[Item], manifest: Manifest, executor: Any, options: dict[str, Any], *,
              attempts: int = DEFAULT_ATTEMPTS, on_event: Event | None = None, stack: int = 1) -> Summary:
    """Run every item not finished yet; returns the :class:`Summary` (Ctrl-C propagates, the
    manifest keeps what finished and leaves in-flight items ``running`` for ``--resume``).
    ``stack`` > 1: same-size items are fitted up to that many at a time (:mod:`.stack`)."""
    start = time.perf_counter()
    summary = Summary(total=len(items))
    queue = deque(make_groups(plan_work(items, manifest, options, attempts, summary), options, stack))
    tries = {r.key: r.attempts for r in manifest.rows()}
    inflight: dict[Any, list[Item]] = {}
    emit = on_event or (lambda *a: None)
    emit("planned", None, {"todo": sum(len(g) for g in queue), "summary": summary})
    while queue or inflight:
        limit = in_flight_limit(executor)  # each round: a Dask cluster that scales up gets more
        while queue and len(inflight) < limit:
            group = queue.popleft()
            for item in group:
                manifest.start(item.key)
                tries[item.key] = tries.get(item.key, 0) + 1
            inflight[submit(executor, group, options)] = group
            for item in group:
                emit("started", item, None)
        handle, results = next(completed(executor, list(inflight)))
        for item, result in zip(inflight.pop(handle), results):
            if result.get("lost") and tries[item.key] < attempts:
                summary.retried += 1
                queue.append([item])  # the manifest shows it running until its next attempt records it
                emit("retry", item, result)
                continue
            result = {k: v for k, v in result.items() if k != "lost"}
            manifest.finish(item.key, result)
            if result["status"] == "done":
                summary.done += 1
            else:
                summary.failed += 1
                summary.failures.append((item.key, result.get("error") or "failed"))
            emit("finished", item, result)
    summary.seconds = time.perf_counter() - start
    return summary
