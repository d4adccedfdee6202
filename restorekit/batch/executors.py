"""Where batch items run: this process, a local process pool, or a Dask cluster.

Every executor has the same small interface: ``submit(item, options)`` returns
a handle, ``completed(handles)`` yields ``(handle, result)`` as items finish
(a result is :func:`~.job.run_item`'s dict; a worker that died gives a
``failed`` result with ``lost`` set, which the driver retries), ``workers``,
and ``close(cancel=False)`` (safe to call twice).  An executor may also have
``max_in_flight``, how many items the driver hands it at once (Dask: one per
worker thread); without it the driver hands out twice ``workers``.

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


def auto_workers(images: int, device: str = "auto") -> int:
    """Workers sized to the machine: one per GPU when the run uses CUDA, else one per core; never more
    than there are images.  Measured on 2 cores: 2 processes of 1 thread give 1.79x one process of 1
    thread, and 1.76x one of 2 threads (docs/benchmarks.md, "restorekit batch")."""
    from ..session.device import may_use_cuda

    gpus = local_gpus() if may_use_cuda(device) else None
    n = len(gpus) if gpus else cpu_count()
    return max(1, min(n, images))


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


def dask_missing() -> str | None:
    """Why ``--dask``/``--scheduler`` cannot run here (Dask is not installed), or None.

    Only this function and :class:`DaskExecutor` import Dask, and only when a
    batch asks for it: the rest of restorekit runs without it.
    """
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:
        return (f"--dask and --scheduler need Dask ({exc.name or 'distributed'} is not installed): "
                "pip install 'restorekit[dask]'")
    return None


class _QuietDistributed:
    """While a Dask executor lives, distributed's own log lines stay off the CLI's stderr.

    distributed logs a worker restart as a WARNING and a task whose worker died
    as an ERROR; the batch reports both itself (``retrying KEY: the worker was
    lost``), so its stderr handlers are raised to ERROR and that one ERROR is
    dropped.  Everything is put back on :meth:`restore`.
    """

    _DROPPED = ("Task %s marked as failed because",)

    def __init__(self, level: int) -> None:
        import logging

        self.saved: list[tuple[Any, int]] = []
        self.filtered: list[Any] = []
        for name in ("distributed", "bokeh", "tornado"):
            for h in logging.getLogger(name).handlers:
                if isinstance(h, logging.StreamHandler):
                    self.saved.append((h, h.level))
                    h.setLevel(max(h.level, level))
                    h.addFilter(self._keep)
                    self.filtered.append(h)

    @classmethod
    def _keep(cls, record: Any) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(cls._DROPPED))

    def restore(self) -> None:
        for h, level in self.saved:
            h.setLevel(level)
        for h in self.filtered:
            h.removeFilter(self._keep)
        self.saved, self.filtered = [], []


class DaskExecutor:
    """A Dask cluster: a LocalCluster of ``workers`` processes, or an existing scheduler's.

    * ``scheduler`` is an address (``tcp://head:8786``) or a scheduler file
      (the JSON that ``dask scheduler --scheduler-file`` and dask-jobqueue write).
    * Threads: a LocalCluster's workers get ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``
      in their environment (the nanny sets them before any task imports torch;
      Dask's own default is 1), and every item sets torch's thread count from
      the ``threads`` option in :func:`~.job.run_item`, which also holds on an
      existing cluster whose workers were started elsewhere (``--threads``).
    * A worker that dies mid-image: on the LocalCluster the scheduler gives up on
      the task at once (``allowed-failures`` 0), so the driver, not Dask, retries it
      and the manifest counts the attempt; an existing scheduler first retries on
      its own (its ``distributed.scheduler.allowed-failures``, 3 by default) and
      reports ``KilledWorker`` after that.  Either way the item comes back ``lost``.
    * Task keys are ``("restorekit-<batch>", item key, n)``: unique per attempt
      (a retry is a new task, never the failed one's cached result) and per batch
      (two batches on one scheduler never share a task); ``pure=False`` as well.
    * In flight: one image per worker thread (:attr:`max_in_flight`), counted
      again every few seconds, so a cluster that scales up gets more.
    """

    def __init__(self, workers: int | None = None, scheduler: str | None = None, threads: int | None = None) -> None:
        import logging

        why = dask_missing()
        if why:
            raise UsageError(why)
        import dask
        from distributed import Client, LocalCluster

        self.cluster = None
        self.client = None
        self.threads = threads
        self._batch = f"restorekit-{os.urandom(4).hex()}"
        self._n = 0
        self._workers_seen: tuple[float | None, int] = (None, 1)
        self._quiet = _QuietDistributed(logging.ERROR)
        try:
            if scheduler:
                kind, target = ("scheduler_file", scheduler) if os.path.isfile(scheduler) else ("address", scheduler)
                try:
                    self.client = Client(**{kind: target})
                except (OSError, TimeoutError, ValueError) as exc:
                    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise UsageError(f"cannot reach the Dask scheduler at {scheduler}: {first}") from None
                self.name = f"the Dask cluster at {self.client.scheduler.address}"
            else:
                workers = workers or max(1, cpu_count())
                self.threads = threads or max(1, cpu_count() // workers)
                env = {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
                # allowed-failures 0: the driver, not Dask, retries (and counts) an image whose worker died
                with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                    self.cluster = LocalCluster(
                        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                        env=env, silence_logs=logging.ERROR,
                    )
                self.client = Client(self.cluster)
                self.name = f"Dask LocalCluster, {workers} processes x {self.threads} thread(s)"
        except BaseException:
            self.close()
            raise

    @property
    def workers(self) -> int:
        """Tasks the cluster runs at once (its worker threads), asked again every few seconds:
        a cluster that scales (dask-jobqueue, adaptive) gets more items in flight as it grows."""
        import time

        when, n = self._workers_seen
        now = time.monotonic()
        if when is None or now - when > 5.0:
            try:
                info = self.client.scheduler_info(n_workers=-1)
                n = sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()) or 1
            except Exception:  # noqa: BLE001 - keep the last count
                pass
            self._workers_seen = (now, n)
        return n

    @property
    def max_in_flight(self) -> int:
        # one image per worker thread: an image handed out is running, never queued behind another on a
        # worker (Dask assigns small task groups to workers at once), so a worker that dies loses only the
        # images it was running, and only those count an attempt
        return self.workers

    def submit(self, item: Item, options: dict[str, Any]):
        self._n += 1
        if self.threads:
            options = {**options, "threads": self.threads}
        fut = self.client.submit(run_item, item, options, pure=False, key=(self._batch, item.key, self._n))
        fut.item = item  # type: ignore[attr-defined]
        return fut

    def completed(self, handles: Iterable[Any]) -> Iterator[tuple[Any, dict[str, Any]]]:
        from concurrent.futures import CancelledError

        from distributed import KilledWorker
        from distributed import wait as dask_wait

        done, _ = dask_wait(list(handles), return_when="FIRST_COMPLETED")
        for fut in done:
            try:
                result = fut.result()
            except KilledWorker:  # its worker died (killed, out of memory) while running it
                result = _lost(fut.item, "KilledWorker (the worker process running it died)")
            except CancelledError as exc:  # the scheduler dropped it (lost connection, scheduler restart)
                result = _lost(fut.item, f"{type(exc).__name__}: {_first_line(exc)}")
            except Exception as exc:  # noqa: BLE001 - the task could not run at all (e.g. restorekit missing there)
                result = {"key": fut.item.key, "status": "failed",
                          "error": f"the Dask worker could not run it: {type(exc).__name__}: {_first_line(exc)}"}
            yield fut, result

    def close(self, cancel: bool = False) -> None:
        try:
            if self.client is not None:
                self.client.close()  # releases this batch's tasks; a cluster it did not start keeps running
        finally:
            try:
                if self.cluster is not None:
                    self.cluster.close()
            finally:
                self.client = self.cluster = None
                self._quiet.restore()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else ""
