"""The ``batch`` command: restore a whole folder, resumably, locally or on Dask.

Each image is exactly a ``restorekit run`` (:mod:`restorekit.batch.job`); this
module turns options into the batch's settings, checks every input and side
input before starting, runs the driver with a progress bar, and prints a
summary (``--json``: the summary as JSON).  ``--status OUT_DIR`` only reads
the manifest.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ..batch.driver import DEFAULT_ATTEMPTS
from ..run.settings import DEFAULTS, default_degrade, describe_default
from .common import _error, _host, err_console, guard, out_console
from .run import Mode, Precision, Save

BATCH_EXAMPLES = """
[bold]Examples[/bold]

[dim]# inpaint every image with its own mask: masks/a.png for scans/a.png, masks/sub/b.png for scans/sub/b.png[/dim]
restorekit batch scans/ restored/ --degrade "mask:masks/{relpath}.png"

[dim]# denoise a folder of real noisy micrographs (each image's noise estimated from it) with 2 worker processes[/dim]
restorekit batch tiles/ out/ --workers 2

[dim]# after a crash or Ctrl-C: finished images are kept, the rest run (an OUT with no batch yet: it starts one)[/dim]
restorekit batch tiles/ out/ --workers 2 --resume

[dim]# a Slurm job array of 8 tasks (--array=1-8), each its share of the sorted inputs into its own OUT, resumable[/dim]
restorekit batch tiles/ "out/part-$SLURM_ARRAY_TASK_ID" --shard "$SLURM_ARRAY_TASK_ID/8" --resume --save restored

[dim]# benchmark the clean PNGs of a folder tree but its drafts (noise sigma 25 added), 500 iterations each, seed 1[/dim]
restorekit batch photos/ bench/ --mode benchmark --include "*.png" --exclude "drafts/*" --iters 500 --seed 1

[dim]# on a Dask cluster (pip install 'restorekit\\[dask]')[/dim]
restorekit batch tiles/ out/ --degrade gaussian:25 --scheduler tcp://head:8786

[dim]# the files a list names, or the paths find prints[/dim]
restorekit batch @todo.txt out/ --degrade gaussian:25
find scans/ -name "*.tif" | restorekit batch - out/ --degrade gaussian:15

[dim]# what is done, failed and left (the manifest only: nothing starts)[/dim]
restorekit batch --status out/
"""


def batch(
    paths: Annotated[Optional[list[str]], typer.Argument(metavar="IN OUT", help="The input (a folder, @LIST.txt, or - for paths on stdin) and the output folder; with --status, only OUT.", show_default=False)] = None,
    degrade: Annotated[Optional[list[str]], typer.Option("--degrade", "-d", help="Degradation spec, as for run; {stem}, {name}, {relpath}, {relname} stand for each image (mask:masks/{stem}.png).", show_default=describe_default("degrade"))] = None,
    prior: Annotated[Optional[list[str]], typer.Option("--prior", "-p", help="Prior spec, as for run; patterns as for --degrade.", show_default=", ".join(DEFAULTS["prior"]))] = None,
    net: Annotated[Optional[str], typer.Option("--net", "-n", help="Generator spec, as for run.", show_default=DEFAULTS["net"])] = None,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", "-m", help="Metric spec; repeatable.", show_default=", ".join(DEFAULTS["metrics"]))] = None,
    mode: Annotated[Optional[Mode], typer.Option("--mode", help="restore (images are already degraded: real photos, scans, micrographs) or benchmark (images are clean; the degradation is added with --seed and the result scored against them).", show_default=DEFAULTS["mode"]["image"])] = None,
    reference: Annotated[Optional[str], typer.Option("--reference", help="Clean image to score against in --mode restore: one file, or one per image by pattern (refs/{stem}.png).", show_default=False)] = None,
    include: Annotated[Optional[list[str]], typer.Option("--include", help="Only inputs whose relative path matches this glob; repeatable.", show_default=False)] = None,
    exclude: Annotated[Optional[list[str]], typer.Option("--exclude", help="Skip inputs whose relative path matches this glob; repeatable.", show_default=False)] = None,
    iters: Annotated[Optional[int], typer.Option("--iters", "-i", help="Iterations per image.", show_default=False)] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Adam learning rate.", show_default=str(DEFAULTS["lr"]))] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every image's run (the same for all, so a rerun gives the same outputs).")] = DEFAULTS["seed"],
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps (local workers with GPUs get one GPU each).")] = DEFAULTS["device"],
    stop: Annotated[str, typer.Option("--stop", help="Stopping rule, as for run.")] = DEFAULTS["stop"],
    ensemble: Annotated[int, typer.Option("--ensemble", help="Average this many independent fits per image.")] = DEFAULTS["ensemble"],
    precision: Annotated[Precision, typer.Option("--precision", help="auto, fp32 or bf16, as for run.")] = Precision(DEFAULTS["precision"]),
    time_limit: Annotated[Optional[float], typer.Option("--time-limit", help="Seconds of fitting per image.", show_default=False)] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", "-w", help="Worker processes on this machine (1: in this process). Default: sized to the machine, one per GPU, else one per core (at most one per image). With --dask, the LocalCluster's size.", show_default=False)] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="Torch threads per worker (default: the machine's cores divided among the workers).", show_default=False)] = None,
    stack: Annotated[int, typer.Option("--stack", help="Fit up to this many images of the same size together, in one stacked optimisation per worker (network priors, no --ensemble; each image's result is its fit alone up to rounding). 1: one at a time.")] = 1,
    dask: Annotated[bool, typer.Option("--dask", help="Run on a Dask LocalCluster of --workers processes (needs the dask extra).")] = False,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="Run on the Dask cluster at this address (tcp://host:8786).", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the batch in OUT, with the same options: finished images are kept as they are, the rest run (a stack from its first page not finished). An OUT with no batch yet starts one, so one command serves every run of a job script.")] = False,
    shard: Annotated[Optional[str], typer.Option("--shard", help="Only the K-th of N deterministic shares of the sorted inputs (every N-th from the K-th; 1 <= K <= N), e.g. a Slurm job array's task; give each share its own OUT.", show_default=False)] = None,
    save: Annotated[Save, typer.Option("--save", help="all: every output file of each image, as run writes them; restored: only the restored image and run.json.")] = Save("all"),
    attempts: Annotated[int, typer.Option("--attempts", help="Attempts per image over every run of the batch (each time it is handed out counts one): a failed image is tried again on --resume until it has had this many.")] = DEFAULT_ATTEMPTS,
    status: Annotated[bool, typer.Option("--status", help="Print what is done, failed and left in OUT, and start nothing.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary (or the status) as JSON on stdout.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Restore every image of a folder: each one exactly as `run` would, with one manifest for the batch.

    Every input is an image, so each is taken as already degraded (--mode
    restore; without --degrade, real noise estimated from each image);
    --mode benchmark treats them as clean and adds the degradation.

    Outputs mirror the input tree (OUT/sub/a/ for IN/sub/a.png) and hold what
    `run` writes; OUT/manifest.sqlite has one row per image and OUT/index.html
    shows them.  Every input, side input and output folder is checked before
    anything starts.  Ctrl-C or SIGTERM stops (exit 130 or 143); --resume
    continues without recomputing or overwriting finished images.  Exit 1
    when an image failed (the others are done).
    """
    with guard(debug):
        from ..errors import UsageError

        paths = list(paths or [])
        if status:
            if len(paths) != 1:
                raise UsageError("--status takes one folder: restorekit batch --status OUT")
            _print_status(Path(paths[0]), json_out)
            return
        if len(paths) != 2:
            raise UsageError("give the input and the output folder: restorekit batch IN OUT (see --help)")
        if attempts < 1:
            raise UsageError(f"--attempts must be at least 1 (got {attempts})")
        if workers is not None and workers < 1:
            raise UsageError(f"--workers must be at least 1 (got {workers})")
        if stack < 1:
            raise UsageError(f"--stack must be at least 1 (got {stack})")
        if dask or scheduler:
            from ..batch.executors import dask_missing

            why = dask_missing()  # before anything is read or written
            if why:
                raise UsageError(why)
            if scheduler and workers not in (None, 1):
                raise UsageError("--workers sizes a LocalCluster (--dask); with --scheduler the cluster's own "
                                 "workers run the images")
        share = None
        if shard is not None:
            from ..batch.inputs import parse_shard

            share = parse_shard(shard)
        in_src, out_dir = paths[0], Path(paths[1])
        # every input is an image: each is already degraded unless --mode benchmark says it is clean
        mode_value = mode.value if mode else DEFAULTS["mode"]["image"]
        options = {
            "metrics": metric, "mode": mode_value, "iters": iters, "lr": lr, "seed": seed,
            "device": device, "stop": stop, "ensemble": ensemble, "precision": precision.value,
            "time_limit": time_limit,
        }
        if save.value != "all":  # recorded only when asked: a batch started before --save resumes as it was
            options["save"] = save.value
        if share is not None:
            options["shard"] = f"{share[0]}/{share[1]}"
        _run_batch(in_src, out_dir, degrade or list(default_degrade(mode_value)), prior or list(DEFAULTS["prior"]), net,
                   reference, include or [], exclude or [], options, workers=workers, threads=threads, dask=dask,
                   scheduler=scheduler, resume=resume, attempts=attempts, json_out=json_out, stack=stack,
                   share=share)


def _run_batch(in_src: str, out_dir: Path, degrade: list[str], prior: list[str], net: str | None,
               reference: str | None, include: list[str], exclude: list[str], options: dict[str, Any], *,
               workers: int | None, threads: int | None, dask: bool, scheduler: str | None, resume: bool,
               attempts: int,
               json_out: bool, stack: int = 1, share: tuple[int, int] | None = None) -> None:
    from ..batch.manifest import open_or_create, sweep_temporary
    from ..batch.start import check_batch, lock_batch, recorded_settings, starts_fresh

    host = _host()
    # everything is checked before anything is written: the inputs, where they go, every side input, and
    # the options (on the first image's specs, patterns filled in)
    out_dir = Path(out_dir)
    if starts_fresh(out_dir, resume):
        resume = False  # --resume on an OUT with no batch starts one: the same command for every run
        if not json_out:
            err_console.print(f"note: '{out_dir}' holds no batch yet; starting one", highlight=False,
                              markup=False, soft_wrap=True)
    items = check_batch(in_src, out_dir, degrade=degrade, prior=prior, net=net, reference=reference, include=include,
                        exclude=exclude, options=options, registry=host.registry, resume=resume, share=share)
    # the executor before anything is written: a cluster that cannot start or a scheduler out of reach
    # leaves no batch behind (a rerun needs no --resume)
    if workers is None and not scheduler:
        from ..batch.executors import auto_workers

        workers = auto_workers(len(items), device=options.get("device") or "auto")
    executor = _executor(workers or 1, threads, dask, scheduler)
    lock = lock_batch(out_dir, executor)
    try:
        recorded = recorded_settings(in_src, degrade=degrade, prior=prior, net=net, reference=reference,
                                     include=include, exclude=exclude, options=options)
        manifest = open_or_create(out_dir, recorded, resume)
        try:
            sweep_temporary(out_dir)
            manifest.add(items)
        except BaseException:
            manifest.close()
            raise
        _drive(items, manifest, lambda: executor, options, out_dir, attempts=attempts, json_out=json_out,
               stack=stack)
    finally:
        _close(executor)  # idempotent: after Ctrl-C it was closed with cancel=True already
        lock.release()


#: the signal that stopped the batch (SIGINT unless SIGTERM came)
_STOPPED_BY: list[int] = []


def _raise_interrupt(signum, frame):  # noqa: ARG001
    _STOPPED_BY.append(signum)
    raise KeyboardInterrupt


def _drive(items, manifest, make_executor, options: dict[str, Any], out_dir: Path, *, attempts: int,
           json_out: bool, stack: int = 1) -> None:
    """Run the batch with its progress bar; Ctrl-C or SIGTERM (from the executor's start on) stops it
    with a line saying what is done and left, and exit 130 (143 for SIGTERM)."""
    from ..batch.driver import run_batch
    from ..batch.report import ReportWriter

    progress = _BatchProgress(len(items), show=not json_out and err_console.is_terminal)
    report = ReportWriter(out_dir, manifest)

    def on_event(kind, item, result):
        progress.event(kind, item, result)
        if kind in ("finished", "planned"):
            report.update(force=kind == "planned")

    import threading

    handled = [s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None]
    if threading.current_thread() is not threading.main_thread():
        handled = []  # Python installs handlers in the main thread only
    previous = {s: signal.signal(s, _raise_interrupt) for s in handled}
    _STOPPED_BY.clear()
    executor = None
    try:
        executor = make_executor()
        from rich.markup import escape

        err_console.print(f"[dim]batch of {len(items)} image(s) on {escape(executor.name)}; manifest "
                          f"{escape(str(out_dir / 'manifest.sqlite'))}[/dim]", markup=True, highlight=False,
                          soft_wrap=True)
        progress.start()
        summary = run_batch(items, manifest, executor, {k: v for k, v in options.items() if v is not None},
                            attempts=attempts, on_event=on_event, stack=stack)
    except KeyboardInterrupt:
        for s in handled:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(s, signal.SIG_IGN)
        progress.stop()
        if executor is not None:
            _close(executor, cancel=True)
        manifest.reset_running()  # nothing runs any more: the images in flight are pending (attempts kept)
        report.update(force=True)
        c = manifest.counts()
        manifest.close()
        signum = _STOPPED_BY[0] if _STOPPED_BY else getattr(signal, "SIGINT", 2)
        name = "SIGTERM" if signum == getattr(signal, "SIGTERM", None) else "Ctrl-C"
        _error(f"interrupted ({name}): {c['done']} done, {c['failed']} failed, {c['pending'] + c['running']} left; "
               "rerun the same command with --resume to continue")
        raise typer.Exit(128 + int(signum)) from None
    except BaseException:
        progress.stop()
        if executor is not None:
            _close(executor, cancel=True)
        manifest.close()
        raise
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    progress.stop()
    _close(executor)
    report.update(force=True)
    counts = manifest.counts()
    manifest.close()
    if json_out:
        sys.stdout.write(json.dumps({**summary.as_dict(), "counts": counts, "out": str(out_dir)}, indent=2) + "\n")
    else:
        _print_summary(summary, counts, out_dir)
    if summary.failed:
        raise typer.Exit(1)


def _close(executor, cancel: bool = False) -> None:
    from ..batch.start import close_executor

    close_executor(executor, cancel=cancel)


def _executor(workers: int, threads: int | None, dask: bool, scheduler: str | None):
    from ..batch.start import make_executor

    return make_executor(workers, threads, dask=dask, scheduler=scheduler)


class _BatchProgress:
    """An overall bar (done / failed / left, images per hour, ETA) and the images in flight."""

    def __init__(self, total: int, show: bool) -> None:
        self.total, self.show = total, show
        self.done = self.failed = 0
        self.inflight: list[str] = []
        self.t0 = time.perf_counter()
        self.bar = None
        if show:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                        TimeElapsedColumn, TimeRemainingColumn)

            # the spinner and the elapsed time move while an image is worked on (a BM3D solve says nothing
            # for half a minute; the bar itself moves only when an image finishes)
            self.bar = Progress(SpinnerColumn(), TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"),
                                TimeRemainingColumn(), console=err_console)
            self.task = self.bar.add_task("batch", total=total, info="")

    def start(self) -> None:
        if self.bar is not None:
            self.bar.start()

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()

    def event(self, kind: str, item, result) -> None:
        from rich.markup import escape

        if kind == "planned":
            s = result["summary"]
            self.done = s.skipped + s.adopted
            self.failed = s.failed
        elif kind == "started":
            self.inflight.append(item.key)
        elif kind in ("finished", "retry"):
            if item.key in self.inflight:
                self.inflight.remove(item.key)
            if kind == "finished":
                if result["status"] == "done":
                    self.done += 1
                else:
                    self.failed += 1
                    err_console.print(f"[yellow]failed:[/yellow] {escape(item.key)}: {escape(str(result.get('error')))}", markup=True,
                                      highlight=False, soft_wrap=True)
            else:
                err_console.print(f"[yellow]retrying[/yellow] {escape(item.key)}: {escape(str(result.get('error')))}", markup=True,
                                  highlight=False, soft_wrap=True)
        if self.bar is not None:
            hours = (time.perf_counter() - self.t0) / 3600
            rate = f"{self.done / hours:.0f}/h" if hours > 0 and self.done else "-"
            left = self.total - self.done - self.failed
            flight = ", ".join(self.inflight[:3]) + (" ..." if len(self.inflight) > 3 else "")
            self.bar.update(self.task, completed=self.done + self.failed,
                            info=f"done {self.done}  failed {self.failed}  left {left}  {rate}  [{flight}]")


def _print_summary(summary, counts: dict[str, int], out_dir: Path) -> None:
    table = Table(box=None, pad_edge=False)
    for col in ("images", "done now", "done before", "adopted", "failed", "retried", "images/hour", "wall"):
        table.add_column(col, justify="right")
    rate = summary.images_per_hour
    table.add_row(str(summary.total), str(summary.done), str(summary.skipped), str(summary.adopted),
                  str(summary.failed), str(summary.retried), "-" if rate is None else f"{rate:.0f}",
                  f"{summary.seconds:.1f} s")
    out_console.print(table)
    for key, error in summary.failures[:10]:
        out_console.print(f"failed: {key}: {error}", highlight=False, markup=False)
    if len(summary.failures) > 10:
        out_console.print(f"... and {len(summary.failures) - 10} more (restorekit batch --status {out_dir})",
                          highlight=False, markup=False)
    out_console.print(f"manifest: {out_dir / 'manifest.sqlite'}   report: {out_dir / 'index.html'}",
                      highlight=False, markup=False)


def _print_status(out_dir: Path, json_out: bool) -> None:
    from ..batch.manifest import Manifest, batch_running

    m = Manifest.open(out_dir, readonly=True)
    try:
        counts = m.counts()
        rows = m.rows()
    finally:
        m.close()
    if counts["running"] and not batch_running(out_dir):
        # left 'running' by a batch that was killed: nothing runs them; --resume will
        counts = {**counts, "pending": counts["pending"] + counts["running"], "running": 0}
        for r in rows:
            r.status = "pending" if r.status == "running" else r.status
    if json_out:
        sys.stdout.write(json.dumps({"counts": counts, "items": [r.as_dict() for r in rows]}, indent=2) + "\n")
        return
    out_console.print("  ".join(f"{k} {v}" for k, v in counts.items()), highlight=False, markup=False)
    table = Table(box=None, pad_edge=False)
    for col in ("image", "status", "attempts", "psnr", "seconds", "error"):
        table.add_column(col)
    for r in rows:
        psnr = (r.metrics or {}).get("psnr")
        table.add_row(r.key, r.status, str(r.attempts), "" if psnr is None else f"{psnr:.2f}",
                      "" if r.seconds is None else f"{r.seconds:.1f}", r.error or "")
    out_console.print(table)
