"""The ``run`` command: settings from the options, the output folder reserved, the pipeline, a summary.

The work itself is :func:`restorekit.run.pipeline.run`; this module turns
options into settings, checks the inputs, reserves the output folder
before the fit, shows progress on a terminal, and prints the summary (or
run.json with ``--json``).  Ctrl-C and SIGTERM keep the result so far.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..run.outputs import SAVE_CHOICES
from ..run.settings import DEFAULTS, MODES, PRECISION_CHOICES, describe_default
from .common import _host, dim_line, err_console, guard, out_console, reserve_fit_write


def _choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A typer choice type from the settings' one list of values."""
    return Enum(name, {v: v for v in values}, type=str)  # type: ignore[return-value]


Mode = _choices("Mode", MODES)
Precision = _choices("Precision", PRECISION_CHOICES)
Save = _choices("Save", SAVE_CHOICES)


def run(
    image: Annotated[Optional[Path], typer.Argument(help="Image to restore (PNG, TIFF, JPEG; 8/16-bit; gray, RGB, RGBA). Omit for the embedded default image.", show_default=False)] = None,
    degrade: Annotated[Optional[list[str]], typer.Option("--degrade", "-d", help="Degradation spec NAME[:VALUE|:key=value,...]; repeat to chain. In restore mode it describes the image's damage (noise: real noise of unknown level, estimated from the image); in benchmark mode it is applied. none: no degradation. See: restorekit list degradations.", show_default=describe_default("degrade"))] = None,
    prior: Annotated[Optional[list[str]], typer.Option("--prior", "-p", help="Prior spec; repeat to combine (e.g. --prior dip --prior tv:0.01). auto: the prior measured best for the task on this device (for Gaussian noise: BM3D and the shipped learned denoiser, combined with weights from SURE, an error estimate that needs no reference; a CPU-sized deep image prior for missing pixels; run.json says what and why). See: restorekit list priors.", show_default=", ".join(DEFAULTS["prior"]))] = None,
    net: Annotated[Optional[str], typer.Option("--net", "-n", help="Generator spec; 'auto' is skip for dip, identity otherwise. See: restorekit list generators.", show_default=DEFAULTS["net"])] = None,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", "-m", help="Metric spec; repeatable. See: restorekit list metrics.", show_default=", ".join(DEFAULTS["metrics"]))] = None,
    mode: Annotated[Optional[Mode], typer.Option("--mode", help="restore: IMAGE is already degraded (a real photo or micrograph), --degrade only describes the forward model, nothing is added. benchmark: IMAGE is clean, the degradation is synthesised with --seed and metrics use IMAGE as reference.", show_default=describe_default("mode"))] = None,
    preset: Annotated[Optional[str], typer.Option("--preset", help="One of the paper's task configurations (restorekit list presets); other options override it.", show_default=False)] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="Folder of the paper's images, for --preset without IMAGE (default: $RESTOREKIT_DATA, ./shared/data/dip, ../shared/data/dip).", show_default=False)] = None,
    stop: Annotated[str, typer.Option("--stop", help="Stopping rule (needs no reference): eswmv[:patience=N,window=W], esemv[:alpha=A], none. auto: eswmv when --iters is not given and the degradation adds noise (not for pure pixel loss or downsampling). See: restorekit list stopping.")] = DEFAULTS["stop"],
    ensemble: Annotated[int, typer.Option("--ensemble", help="Average this many independent fits (different network seeds).")] = DEFAULTS["ensemble"],
    time_limit: Annotated[Optional[float], typer.Option("--time-limit", help="Stop fitting after this many seconds and keep the result so far (the average, when kept).", show_default=False)] = None,
    precision: Annotated[Precision, typer.Option("--precision", help="Network arithmetic: fp32, or bf16 (autocast; faster on CPUs with AVX512-BF16/AMX and on Ampere+ GPUs, slower where emulated). auto: bf16 when --prior auto fits on a CPU with bfloat16 instructions, else fp32.")] = Precision(DEFAULTS["precision"]),
    reference: Annotated[Optional[Path], typer.Option("--reference", help="Clean image to score against in --mode restore.", show_default=False)] = None,
    iters: Annotated[Optional[int], typer.Option("--iters", "-i", help="Iterations (default: the paper's for the task, capped on a CPU; --prior auto fits for a time budget instead).", show_default=False)] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Adam learning rate.", show_default=str(DEFAULTS["lr"]))] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the degradation draw, the input code and the weights.")] = DEFAULTS["seed"],
    device: Annotated[str, typer.Option("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.")] = DEFAULTS["device"],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default: runs/<image>-NNN, never reused). A stack's finished pages are kept beside a named one: the same command again continues it.", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an earlier restorekit result in --out (never a folder holding other files or an input).")] = False,
    report_every: Annotated[Optional[int], typer.Option("--report-every", help="Record loss and metrics every N iterations.", show_default=False)] = None,
    save: Annotated[Save, typer.Option("--save", help="all: every output file; restored: only the restored image and run.json.")] = Save("all"),
    json_out: Annotated[bool, typer.Option("--json", help="Print run.json to stdout; no progress bar.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Restore one image: take it as observed (restore, the default for IMAGE) or degrade it (benchmark), fit, write results.

    Given IMAGE, the run takes it as already degraded (--mode restore) and,
    without --degrade, as carrying real noise of unknown level (noise,
    estimated from the image).  --mode benchmark treats IMAGE as clean:
    the degradation (gaussian:25 unless --degrade) is added with --seed and
    the result scored against IMAGE.  Without IMAGE, the embedded test
    image is a benchmark.

    Writes restored.*, degraded.*, compare.png, curves.png and run.json into
    the output folder, atomically; the folder is checked and reserved before
    the fit.  Ctrl-C (or SIGTERM) stops early and keeps the result so far
    (run.json says "interrupted"; exit code 130, 143 for SIGTERM).  A
    multi-page TIFF (z-stack, time series) is restored page by page, each
    page on its own with the same settings, into a TIFF of as many pages.
    """
    with guard(debug):
        from ..run.outputs import write_outputs
        from ..session.record import record_json
        from ..session.signals import exit_code_for

        host = _host()
        from ..run.settings import input_paths, make_settings

        settings = make_settings(
            host.registry, image=image, degrade=degrade, prior=prior, net=net, metrics=metric,
            mode=mode.value if mode else None, reference=reference, iters=iters, lr=lr, seed=seed,
            device=device, report_every=report_every, stop=stop, ensemble=ensemble,
            precision=precision.value, time_limit=time_limit, preset=preset, data=data,
        )
        from ..io import check_input_file

        if settings.image is not None:
            check_input_file(settings.image, "image")
        if reference is not None:
            check_input_file(reference, "reference")
        from ..run.pipeline import run as run_pipeline

        show = not json_out and err_console.is_terminal
        progress_cb, progress = _progress(show)
        log = None if json_out else _logger(progress)
        store = _page_store(out, settings)

        def write(folder, result):
            files = write_outputs(result, folder, save=save.value)
            if store is not None and not result.interrupted:
                store.discard()  # the whole stack is written: its pages are in it
            return files

        # the folder reserved before the fit; with --json anything a component prints goes to stderr
        done = reserve_fit_write(out=out, source=settings.image, inputs=input_paths(settings), overwrite=overwrite,
                                 bar=progress, json_out=json_out,
                                 fit=lambda: run_pipeline(settings, host.registry, callback=progress_cb, log=log,
                                                          store=store),
                                 write=write)
        result = done.result
        if json_out:
            sys.stdout.write(record_json(result.record))
        else:
            _print_summary(result, done.folder.path, done.files)
        # a stack's last page can be scored while a signal waits (stopped_by): the result is whole
        if result.interrupted or done.signals.held or done.signals.stopped_by is not None:
            what = "interrupted: wrote the result so far" if result.interrupted else (
                "interrupted: the fit had finished; wrote the result")
            if result.pages:  # a stack: which pages the result holds restored, and which as read
                what += "".join(f" ({n})" for n in result.record.notes if n.startswith("interrupted at page "))
                if store is not None and any(store.folder.glob("page-*.npz")):
                    what += "; its finished pages are kept: the same command with --overwrite continues"
            err_console.print(what, highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(exit_code_for(done.signals.signum))


def _page_store(out: Path | None, settings):
    """Where a stack restored into a named --out keeps its finished pages (run/kept.py): the same command
    again after a kill or Ctrl-C (with --overwrite where the folder was written) restores only the others.
    None without --out (a new numbered folder each time: nothing would find them again)."""
    if out is None:
        return None
    from ..run.kept import PageStore, kept_folder, run_identity
    from ..run.settings import input_paths

    return PageStore(kept_folder(out), run_identity(settings), [p for p in input_paths(settings) if p.is_file()])


def _progress(show: bool):
    if not show:
        return None, None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[count]}"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )
    task = progress.add_task("fitting", total=None, info="", count="")

    def cb(p):
        info = f"loss {p.loss:.2e}" if p.loss == p.loss else ""
        page = getattr(p, "page", None)  # a stack's page: "page k/N"
        if page:
            info = f"{page}  {info}"
        if p.psnr is not None:
            info += f"  psnr {p.psnr:.2f}"
        if p.psnr_avg is not None:
            info += f"  avg {p.psnr_avg:.2f}"
        limit = getattr(p, "time_limit", None)
        if limit is not None and limit < p.elapsed * p.iterations / max(p.iteration, 1):
            # the time limit ends this fit long before its iterations (--prior auto's budget): a bar of time
            progress.update(task, total=limit, completed=min(p.elapsed, limit), info=info,
                            count=f"{p.iteration} it, {p.elapsed:.0f}/{limit:g} s")
        else:
            progress.update(task, total=p.iterations, completed=p.iteration, info=info,
                            count=f"{p.iteration}/{p.iterations}")

    return cb, progress


def _logger(progress):
    """The run's notes and plan on stderr; on a terminal, a direct solver's bar (no iterations to count: it
    pulses, with the elapsed time, while BM3D and the like work) is labelled "solving", a fit's "fitting"."""

    def log(msg: str) -> None:
        if progress is not None and msg.startswith(("solving with ", "fitting ")):  # before the line redraws it
            progress.update(progress.task_ids[0], description="solving" if msg.startswith("solving") else "fitting")
        dim_line(msg)

    return log


def _print_summary(result, out_dir: Path, files: dict[str, str]) -> None:
    rec = result.record  # a RunRecord
    r = rec.result
    if result.metrics:
        table = Table(title=None, box=None, pad_edge=False)
        table.add_column("metric")
        table.add_column(r.baseline_kind or "degraded", justify="right")
        table.add_column("restored", justify="right")
        for k, v in result.metrics.items():
            b = result.baseline.get(k)
            table.add_row(k, "" if b is None else f"{b:.4f}", f"{v:.4f}")
        out_console.print(table)
    how = f"iteration {r.iteration} ({r.output})" if r.output != "solver" else "direct solver"
    if r.stop_reason in ("rule", "time limit"):
        how += f", stopped by the {'stopping rule' if r.stop_reason == 'rule' else 'time limit'}"
    if result.pages:  # a stack: how many of its pages, and page 1's account
        total, done = len(result.image), len(result.pages)
        pages = f"{total} pages" if done == total else f"{done} of {total} pages restored"
        how = f"{pages}; page 1: {how}"
    out_console.print(
        f"restored: {out_dir / files['restored']}  [{how}, {rec.timings.total_s:.1f} s on {rec.settings.device}]",
        highlight=False, markup=False,
    )
    out_console.print(f"record:   {out_dir / 'run.json'}", highlight=False, markup=False)
