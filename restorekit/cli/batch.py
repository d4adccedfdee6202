"""The ``batch`` command: restore a whole folder, resumably, locally or on Dask.

Each image is exactly a ``restorekit run`` (:mod:`restorekit.batch.job`); this
module turns options into the batch's settings, checks every input and side
input before starting, runs the driver with a progress bar, and prints a
summary (``--json``: the summary as JSON).  ``--status OUT_DIR`` only reads
the manifest.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ..run.settings import DEFAULTS
from .common import _error, _host, err_console, guard, out_console
from .run import Mode, Precision

BATCH_EXAMPLES = """
[bold]Examples[/bold]

[dim]# inpaint every image with its own mask (masks/NAME.png beside the images' names)[/dim]
restorekit batch scans/ restored/ --mode restore --degrade "mask:masks/{stem}.png"

[dim]# denoise a folder with 2 worker processes[/dim]
restorekit batch tiles/ out/ --mode restore --degrade gaussian:25 --workers 2

[dim]# after a crash or Ctrl-C: finished images are kept, the rest run[/dim]
restorekit batch tiles/ out/ --mode restore --degrade gaussian:25 --workers 2 --resume

[dim]# on a Dask cluster (pip install 'restorekit[dask]')[/dim]
restorekit batch tiles/ out/ --degrade gaussian:25 --scheduler tcp://head:8786

[dim]# what is done, failed and left[/dim]
restorekit batch --status out/
"""


def batch(
    paths: Annotated[Optional[list[str]], typer.Argument(help="IN OUT: the input (a folder, @LIST.txt, or - for paths on stdin) and the output folder; with --status, only OUT.", show_default=False)] = None,
    degrade: Annotated[Optional[list[str]], typer.Option("--degrade", "-d", help="Degradation spec, as for run; {stem}, {name}, {relpath}, {relname} stand for each image (mask:masks/{stem}.png).", show_default=", ".join(DEFAULTS["degrade"]))] = None,
    prior: Annotated[Optional[list[str]], typer.Option("--prior", "-p", help="Prior spec, as for run (patterns allowed).", show_default=", ".join(DEFAULTS["prior"]))] = None,
    net: Annotated[Optional[str], typer.Option("--net", "-n", help="Generator spec, as for run.", show_default=DEFAULTS["net"])] = None,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", "-m", help="Metric spec; repeatable.", show_default=", ".join(DEFAULTS["metrics"]))] = None,
    mode: Annotated[Optional[Mode], typer.Option("--mode", help="benchmark (images are clean) or restore (images are already degraded).", show_default=DEFAULTS["mode"])] = None,
    reference: Annotated[Optional[str], typer.Option("--reference", help="Clean image per input in --mode restore, by pattern (refs/{stem}.png).", show_default=False)] = None,
    include: Annotated[Optional[list[str]], typer.Option("--include", help="Only inputs whose relative path matches this glob; repeatable.", show_default=False)] = None,
    exclude: Annotated[Optional[list[str]], typer.Option("--exclude", help="Skip inputs whose relative path matches this glob; repeatable.", show_default=False)] = None,
    iters: Annotated[Optional[int], typer.Option("--iters", "-i", help="Optimisation steps per image.", show_default=False)] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Adam learning rate.", show_default=str(DEFAULTS["lr"]))] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every image's run (the same for all, so a rerun gives the same outputs).")] = DEFAULTS["seed"],
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps (local workers with GPUs get one GPU each).")] = DEFAULTS["device"],
    stop: Annotated[str, typer.Option("--stop", help="Stopping rule, as for run.")] = DEFAULTS["stop"],
    ensemble: Annotated[int, typer.Option("--ensemble", help="Average this many independent fits per image.")] = DEFAULTS["ensemble"],
    precision: Annotated[Precision, typer.Option("--precision", help="fp32 or bf16, as for run.")] = Precision(DEFAULTS["precision"]),
    time_limit: Annotated[Optional[float], typer.Option("--time-limit", help="Seconds of fitting per image.", show_default=False)] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", help="Worker processes on this machine (1: in this process). With --dask, the LocalCluster's size.")] = 1,
    threads: Annotated[Optional[int], typer.Option("--threads", help="Torch threads per worker (default: the machine's cores divided among the workers).", show_default=False)] = None,
    stack: Annotated[int, typer.Option("--stack", help="Fit up to this many images of the same size together, in one stacked optimisation per worker (network priors, no --ensemble; each image's result is its fit alone up to rounding). 1: one at a time.")] = 1,
    dask: Annotated[bool, typer.Option("--dask", help="Run on a Dask LocalCluster of --workers processes (needs the dask extra).")] = False,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="Run on the Dask cluster at this address (tcp://host:8786).", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the batch in OUT: finished images are kept, the rest run.")] = False,
    attempts: Annotated[int, typer.Option("--attempts", help="Attempts per image, over every run of the batch (a lost worker or a failure counts one).")] = 3,
    status: Annotated[bool, typer.Option("--status", help="Print what is done, failed and left in OUT, and start nothing.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary (or the status) as JSON on stdout.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Restore every image of a folder: each one exactly as `run` would, with one manifest for the batch.

    Outputs mirror the input tree (OUT/sub/a/ for IN/sub/a.png) and hold what
    `run` writes; OUT/manifest.sqlite has one row per image and OUT/index.html
    shows them.  Ctrl-C stops; --resume continues without recomputing or
    overwriting finished images.
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
        if workers < 1:
            raise UsageError(f"--workers must be at least 1 (got {workers})")
        if stack < 1:
            raise UsageError(f"--stack must be at least 1 (got {stack})")
        in_src, out_dir = paths[0], Path(paths[1])
        options = {
            "metrics": metric, "mode": mode.value if mode else None, "iters": iters, "lr": lr, "seed": seed,
            "device": device, "stop": stop, "ensemble": ensemble, "precision": precision.value,
            "time_limit": time_limit,
        }
        _run_batch(in_src, out_dir, degrade or list(DEFAULTS["degrade"]), prior or list(DEFAULTS["prior"]), net,
                   reference, include or [], exclude or [], options, workers=workers, threads=threads, dask=dask,
                   scheduler=scheduler, resume=resume, attempts=attempts, json_out=json_out, stack=stack)


def _run_batch(in_src: str, out_dir: Path, degrade: list[str], prior: list[str], net: str | None,
               reference: str | None, include: list[str], exclude: list[str], options: dict[str, Any], *,
               workers: int, threads: int | None, dask: bool, scheduler: str | None, resume: bool, attempts: int,
               json_out: bool, stack: int = 1) -> None:
    from ..batch.driver import run_batch
    from ..batch.inputs import discover, make_items
    from ..batch.manifest import open_or_create
    from ..run.settings import make_settings
    from ..spec import parse_spec

    host = _host()
    # every value checked once, on the first image's specs (patterns filled in), before any work
    root, found = discover([in_src], include=include, exclude=exclude)
    out_dir = Path(out_dir)
    real_in = Path(os.path.realpath(root))
    real_out = Path(os.path.realpath(out_dir))
    if real_out == real_in or real_in in real_out.parents or real_out in real_in.parents:
        from ..errors import UsageError

        raise UsageError(f"the output folder '{out_dir}' and the input '{in_src}' must not contain each other")
    for text in (*degrade, *prior, *([net] if net else [])):
        parse_spec(text)  # a syntax error is the user's, whatever the image
    items = make_items(root, found, out_dir, degrade=degrade, prior=prior, net=net, reference=reference)
    from ..run.plan import make_plan

    first = items[0]
    # the components valid together, the loop's options valid for them: the first image's plan
    make_plan(make_settings(host.registry, image=first.input, degrade=first.degrade, prior=first.prior,
                            net=first.net, reference=first.reference,
                            **{k: v for k, v in options.items() if v is not None}), host.registry)
    out_dir.mkdir(parents=True, exist_ok=True)
    recorded = {"input": str(in_src), "degrade": degrade, "prior": prior, "net": net, "reference": reference,
                "include": include, "exclude": exclude, **{k: v for k, v in options.items() if k != "device"}}
    manifest = open_or_create(out_dir, recorded, resume)
    manifest.add(items)
    executor = _executor(workers, threads, dask, scheduler)
    progress = _BatchProgress(len(items), show=not json_out and err_console.is_terminal)
    from ..batch.report import write_report

    def on_event(kind, item, result):
        progress.event(kind, item, result)
        if kind in ("finished", "planned"):
            write_report(out_dir, manifest)

    err_console.print(f"[dim]batch of {len(items)} image(s) on {executor.name}; manifest {out_dir / 'manifest.sqlite'}[/dim]",
                      markup=True, highlight=False, soft_wrap=True)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if hasattr(signal, "SIGTERM") else None
    try:
        progress.start()
        summary = run_batch(items, manifest, executor, {k: v for k, v in options.items() if v is not None},
                            attempts=attempts, on_event=on_event, stack=stack)
    except KeyboardInterrupt:
        progress.stop()
        executor.close(cancel=True)
        write_report(out_dir, manifest)
        c = manifest.counts()
        _error(f"interrupted: {c['done']} done, {c['failed']} failed, {c['pending'] + c['running']} left; "
               "rerun with --resume to continue")
        manifest.close()
        raise typer.Exit(130) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    progress.stop()
    executor.close()
    write_report(out_dir, manifest)
    counts = manifest.counts()
    manifest.close()
    if json_out:
        sys.stdout.write(json.dumps({**summary.as_dict(), "counts": counts, "out": str(out_dir)}, indent=2) + "\n")
    else:
        _print_summary(summary, counts, out_dir)
    if summary.failed:
        raise typer.Exit(1)


def _raise_interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


def _executor(workers: int, threads: int | None, dask: bool, scheduler: str | None):
    from ..batch import executors

    if scheduler or dask:
        return executors.DaskExecutor(workers=workers, scheduler=scheduler, threads=threads)
    if workers == 1:
        return executors.InProcess(threads)
    return executors.LocalPool(workers, threads, gpus=executors.local_gpus())


class _BatchProgress:
    """An overall bar (done / failed / left, images per hour, ETA) and the images in flight."""

    def __init__(self, total: int, show: bool) -> None:
        self.total, self.show = total, show
        self.done = self.failed = 0
        self.inflight: list[str] = []
        self.t0 = time.perf_counter()
        self.bar = None
        if show:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[info]}"), TextColumn("eta"), TimeRemainingColumn(),
                                console=err_console)
            self.task = self.bar.add_task("batch", total=total, info="")

    def start(self) -> None:
        if self.bar is not None:
            self.bar.start()

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()

    def event(self, kind: str, item, result) -> None:
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
                    err_console.print(f"[yellow]failed:[/yellow] {item.key}: {result.get('error')}", markup=True,
                                      highlight=False, soft_wrap=True)
            else:
                err_console.print(f"[yellow]retrying[/yellow] {item.key}: {result.get('error')}", markup=True,
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
    from ..batch.manifest import Manifest

    m = Manifest.open(out_dir)
    try:
        counts = m.counts()
        rows = m.rows()
    finally:
        m.close()
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
