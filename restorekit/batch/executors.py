"""Where batch items run: this process, a local process pool, or a Dask cluster.

Every executor has the same small interface: ``submit(item, options)`` returns
a handle, ``completed(handles)`` yields ``(handle, result)`` as items finish
(a result is :func:`~.job.run_item`'s dict; a worker that died gives a
``failed`` result with ``lost`` set, which the driver retries), ``workers``,
and ``close()``.

Threads: torch on a CPU uses every core by default, and two processes that
each do so on the same cores run many times slower than one.  The local pool
gives each worker ``cores // workers`` threads (at least 1); with GPUs, one
worker per GPU, each seeing only its own device.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Iterable, Iterator

from ..errors import UsageError
from .inputs import Item
from .job import run_item


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def local_gpus() -> list[str] | None:
    """The CUDA devices a local pool spreads its workers over (CUDA_VISIBLE_DEVICES is respected)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [v.strip() for v in visible.split(",") if v.strip()]
        return ids or None
    try:
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - no usable CUDA: CPU workers
        n = 0
    return [str(i) for i in range(n)] or None


def _lost(item: Item, why: str) -> dict[str, Any]:
    return {"key": item.key, "status": "failed", "lost": True, "error": f"the worker was lost: {why}"}


class _Deferred:
    """An item submitted to :class:`InProcess`: it runs when its result is asked for."""

    def __init__(self, item: Item, options: dict[str, Any]) -> None:
        self.item, self.options = item, options


class InProcess:
    """Items run one after the other in this process (``--workers 1``): no start-up cost."""

    workers = 1
    name = "this process"

    def __init__(self, threads: int | None = None) -> None:
        if threads:
            import torch

            torch.set_num_threads(threads)

    def submit(self, item: Item, options: dict[str, Any]) -> "_Deferred":
        return _Deferred(item, options)

    def completed(self, handles: Iterable[Any]) -> Iterator[tuple[Any, dict[str, Any]]]:
        for h in list(handles):
            yield h, run_item(h.item, h.options)

    def close(self, cancel: bool = False) -> None:
        pass


def _init_worker(threads: int, devices: list[str] | None, counter: Any) -> None:
    """In each pool worker, before torch loads: its thread count and, with GPUs, its one device."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    if devices:
        with counter.get_lock():
            slot = counter.value
            counter.value += 1
        os.environ["CUDA_VISIBLE_DEVICES"] = devices[slot % len(devices)]
    import torch

    torch.set_num_threads(threads)


class LocalPool:
    """A process pool on this machine (``--workers N``, without Dask)."""

    def __init__(self, workers: int, threads: int | None = None, gpus: list[str] | None = None) -> None:
        import multiprocessing as mp

        self.workers = workers
        self.threads = threads or max(1, cpu_count() // workers)
        self.gpus = gpus
        self.name = f"{workers} local processes x {self.threads} thread(s)" + (f", GPUs {','.join(gpus)}" if gpus else "")
        self._ctx = mp.get_context("spawn")  # no fork of a process that may hold torch threads
        self._counter = self._ctx.Value("i", 0)
        self._new_pool()

    def _new_pool(self) -> None:
        self.pool = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=self._ctx, initializer=_init_worker,
            initargs=(self.threads, self.gpus, self._counter),
        )

    def submit(self, item: Item, options: dict[str, Any]) -> Future:
        try:
            fut = self.pool.submit(run_item, item, options)
        except BrokenProcessPool:
            # a worker died (killed, out of memory): the pool is unusable and every item that was in it
            # comes back lost (completed()); its remaining processes are ended and a new pool takes over
            self.pool.shutdown(wait=False, cancel_futures=True)
            self._new_pool()
            fut = self.pool.submit(run_item, item, options)
        fut.item = item  # type: ignore[attr-defined]
        return fut

    def completed(self, handles: Iterable[Future]) -> Iterator[tuple[Future, dict[str, Any]]]:
        pending = set(handles)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    result = fut.result()
                except Exception as exc:  # BrokenProcessPool: a worker died (killed, out of memory)
                    result = _lost(fut.item, type(exc).__name__)
                yield fut, result

    def close(self, cancel: bool = False) -> None:
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)


class DaskExecutor:
    """A Dask cluster: a LocalCluster of ``workers`` processes, or an existing scheduler's."""

    def __init__(self, workers: int | None = None, scheduler: str | None = None, threads: int | None = None) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise UsageError(
                "Dask is not installed: pip install 'restorekit[dask]' (or run without --scheduler/--dask)"
            ) from None
        self.cluster = None
        if scheduler:
            self.client = Client(scheduler)
            self.name = f"Dask scheduler {scheduler}"
        else:
            workers = workers or max(1, cpu_count())
            threads = threads or max(1, cpu_count() // workers)
            self.cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                env={"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)},
            )
            self.client = Client(self.cluster)
            self.name = f"Dask LocalCluster, {workers} processes x {threads} thread(s)"
        self.workers = len(self.client.scheduler_info().get("workers", {})) or (workers or 1)

    def submit(self, item: Item, options: dict[str, Any]):
        # pure=False: a retried item is a new task; Dask re-runs a task whose worker died (allowed-failures)
        fut = self.client.submit(run_item, item, options, pure=False, key=f"restorekit-{item.key}-{os.urandom(4).hex()}")
        fut.item = item  # type: ignore[attr-defined]
        return fut

    def completed(self, handles: Iterable[Any]) -> Iterator[tuple[Any, dict[str, Any]]]:
        from distributed import as_completed

        for fut in as_completed(list(handles)):
            try:
                result = fut.result()
            except Exception as exc:  # KilledWorker after too many deaths, or a lost connection
                result = _lost(fut.item, f"{type(exc).__name__}: {exc}")
            yield fut, result

    def close(self, cancel: bool = False) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()
