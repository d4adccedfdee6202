"""The ``compare`` command: several priors on one image, side by side, into one reserved folder.

Each method is one run of :func:`restorekit.run.pipeline.run`
(:mod:`restorekit.run.compare`); this module turns options into the shared
settings, reserves the folder, draws compare.png, writes compare.json and
prints the table.
"""

from __future__ import annotations

import contextlib
import math
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..run.settings import DEFAULTS, describe_default
from .common import _error, _host, deprecated, dim_line, err_console, guard, out_console
from .run import Mode

COMPARE_EXAMPLES = """
[bold]Examples[/bold]

[dim]# a real noisy photo: the default (auto), the deep image prior and every installed classical solver on it[/dim]
restorekit compare noisy.png

[dim]# benchmark: one noisy draw (sigma 25) of a clean photo, three chosen priors, the fit capped at 60 seconds[/dim]
restorekit compare photo.png --mode benchmark --degrade gaussian:25 --prior dip --prior bm3d --prior "nlm:h=0.8" --time-limit 60

[dim]# inpainting benchmark: DIP against biharmonic inpainting, compare.json on stdout[/dim]
restorekit compare photo.png --mode benchmark --degrade bernoulli:0.5 --prior dip --prior biharmonic --json
"""


def compare(
    image: Annotated[Optional[Path], typer.Argument(help="Image (observed in restore mode, the default; clean in benchmark mode). Omit for the embedded default image (a benchmark).", show_default=False)] = None,
    prior: Annotated[Optional[list[str]], typer.Option("--prior", "-p", help="One prior spec per contender (dip, nlm, bm3d:sigma=25, tv:0.1, ...); repeat for each. Default: auto (what run does by default), dip and every installed solver prior that applies to the task.", show_default=False)] = None,
    degrade: Annotated[Optional[list[str]], typer.Option("--degrade", "-d", help="Degradation spec; repeat to chain. Every prior sees the same observation.", show_default=describe_default("degrade"))] = None,
    net: Annotated[Optional[str], typer.Option("--net", "-n", help="Generator for the priors that fit (auto: skip for dip, identity for penalties).", show_default=DEFAULTS["net"])] = None,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", "-m", help="Metric spec; repeatable. The table is sorted by the first.", show_default=", ".join(DEFAULTS["metrics"]))] = None,
    mode: Annotated[Optional[Mode], typer.Option("--mode", help="restore: IMAGE is the observation (already degraded). benchmark: IMAGE is clean and degraded once with --seed.", show_default=describe_default("mode"))] = None,
    reference: Annotated[Optional[Path], typer.Option("--reference", help="Clean image to score against in --mode restore.", show_default=False)] = None,
    iters: Annotated[Optional[int], typer.Option("--iters", "-i", help="Iterations of the priors that fit.", show_default=False)] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Adam learning rate of the priors that fit.", show_default=str(DEFAULTS["lr"]))] = None,
    time_limit: Annotated[Optional[float], typer.Option("--time-limit", help="Stop each fit after this many seconds.", show_default=False)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the degradation draw (shared by all priors) and the fits.")] = DEFAULTS["seed"],
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = DEFAULTS["device"],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder, missing or empty, or --overwrite for an earlier compare (default: runs/<image>-compare-NNN, never reused).", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an earlier compare's results in --out (only a folder compare wrote).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print compare.json to stdout.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    method: Annotated[Optional[list[str]], typer.Option("--method", hidden=True)] = None,
) -> None:
    """Run several priors on one image and show them side by side: quality and cost.

    Each --prior is one restorekit run (same degradation draw, same seed)
    whose outputs go into its own subfolder; as for run, IMAGE is taken as
    already degraded unless --mode benchmark (without IMAGE, the embedded
    image is a benchmark); the folder also gets
    compare.png (degraded | each prior | reference), compare.json and
    degraded.*.  A prior that fails gets a row with its error and the
    others still run (exit 1).  Without --prior: auto (run's default), dip
    and every installed solver prior; those that refuse the task are listed as skipped.
    """
    if method:
        deprecated("--method", "--prior")
    method = list(prior or []) + list(method or [])
    with guard(debug):
        from ..run.compare import compare as run_methods
        from ..run.compare import finish_compare, plan_compare
        from ..run.settings import input_paths
        from ..session.outdir import default_stem, prepare_output
        from ..session.signals import deferred_signals, exit_code_for, hold, run_signals

        host = _host()
        registry = host.registry
        shared = dict(
            image=image, degrade=degrade, net=net, metrics=metric, mode=mode.value if mode else None,
            reference=reference, iters=iters, lr=lr, seed=seed, device=device, time_limit=time_limit,
        )
        # every value is checked before any work; a misspelt method is refused (exit 2) before any method runs
        plan = plan_compare(method, shared, registry)
        methods, checked, metric_objs = plan.methods, plan.settings, plan.metrics
        per_method = plan.per_method
        stem = default_stem(Path(checked.image) if checked.image is not None else None)
        paths = [p for s in per_method for p in input_paths(s)]
        spinner = _Spinner(show=not json_out and err_console.is_terminal)
        log = None if json_out else spinner.log
        # with --json, stdout carries only compare.json: anything a component prints goes to stderr
        quiet_stdout = contextlib.redirect_stdout(sys.stderr) if json_out else contextlib.nullcontext()
        folder = None
        try:
            with deferred_signals():  # reserved whole: a signal during it arrives once it can be undone
                folder = prepare_output(out, source=Path(f"{stem}-compare"), inputs=paths, overwrite=overwrite)
            with quiet_stdout, spinner:
                rows, notes, signum = run_methods(methods, shared, registry, folder.staging, defaults=plan.defaults,
                                                  log=log)
            with run_signals() as late:
                hold()  # results exist: Ctrl-C and SIGTERM now wait until they are written
                rows, text = finish_compare(folder, rows, notes, plan)
            signum = signum if signum is not None else late.signum
        except BaseException:
            if folder is not None:
                folder.abandon()
            raise
        if json_out:
            sys.stdout.write(text)
        else:
            _print_table(rows, [m.label for m in metric_objs], folder.path)
        for n in notes:
            err_console.print(f"note: {n}", highlight=False, markup=False, soft_wrap=True)
        if signum is not None:
            err_console.print("interrupted: wrote the methods run so far", highlight=False)
            raise typer.Exit(exit_code_for(signum))
        failed = [r for r in rows if r.status == "failed"]
        if failed:
            _error(f"{len(failed)} of {len(rows)} method(s) failed: {', '.join(r.method for r in failed)}")
            raise typer.Exit(1)
        if not any(r.status == "complete" for r in rows):
            _error("no method applies to this task (see compare.json); name one with --prior")
            raise typer.Exit(1)


def _fmt(v) -> str:
    return "" if v is None or not math.isfinite(v) else f"{v:.4f}"


class _Spinner:
    """On a terminal, a spinner with the method running and its elapsed time (a direct solver such as BM3D
    says nothing for many seconds); its lines ("bm3d ...", "bm3d: complete (17.6 s)") print above it.
    Off a terminal (or with ``show`` false) only the lines; the spinner leaves nothing behind."""

    def __init__(self, show: bool) -> None:
        self.bar = self.task = None
        if show:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), TimeElapsedColumn(),
                                console=err_console, transient=True)

    def log(self, message: str) -> None:
        dim_line(message)
        if self.bar is not None and message.endswith(" ..."):  # a method starts: its name, its clock from 0
            if self.task is not None:
                self.bar.remove_task(self.task)
            from rich.markup import escape

            self.task = self.bar.add_task(escape(message[: -len(" ...")]), total=None)

    def __enter__(self) -> "_Spinner":
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _print_table(rows, labels: list[str], out_dir: Path) -> None:
    from rich.markup import escape

    table = Table(box=None, pad_edge=False)
    table.add_column("method")
    for label in labels:
        table.add_column(label, justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("status")
    for r in rows:
        status = r.status if r.error is None else f"{r.status}: {r.error}"
        table.add_row(escape(r.method), *[_fmt(r.metrics.get(k)) for k in labels],
                      f"{r.wall_s:.1f}" if r.status != "skipped" else "", escape(status))
    out_console.print(table)
    out_console.print(f"compared: {out_dir / 'compare.png'}", highlight=False, markup=False)
    out_console.print(f"record:   {out_dir / 'compare.json'}", highlight=False, markup=False)
