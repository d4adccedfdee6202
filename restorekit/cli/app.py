"""The ``restorekit`` command line: run, list, plugins (and plugin commands)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup
from rich.table import Table

from ..errors import RestoreKitError
from ..run.settings import DEFAULTS, MODES, PRECISIONS
from .common import _error, _host, err_console, guard, out_console

EXAMPLES = """
[bold]Examples[/bold]

[dim]# the embedded image with half of its pixels lost, restored by the deep image prior[/dim]
restorekit run --degrade bernoulli:0.5 --prior dip --net skip

[dim]# benchmark: add Gaussian noise (sigma 25) to a clean photo, denoise, score[/dim]
restorekit run photo.png --degrade gaussian:25

[dim]# restore: a photo that is already noisy; nothing is added[/dim]
restorekit run noisy.png --mode restore --degrade gaussian:25

[dim]# inpaint the pixels a mask marks black (white = keep)[/dim]
restorekit run damaged.png --mode restore --degrade mask:damage_mask.png

[dim]# 4x super-resolution of a small image[/dim]
restorekit run small.png --mode restore --degrade downsample:4

[dim]# the paper's F16 denoising settings (restorekit list presets shows them all)[/dim]
restorekit run --preset denoise --data ../shared/data/dip

[dim]# stop without ground truth (ES-WMV), average 3 independent fits[/dim]
restorekit run photo.png --stop eswmv --ensemble 3

[dim]# every component and its parameters[/dim]
restorekit list
"""

KIND_ALIASES = {
    "degradation": "degradation", "degradations": "degradation", "degrade": "degradation",
    "prior": "prior", "priors": "prior",
    "generator": "generator", "generators": "generator", "net": "generator", "nets": "generator",
    "metric": "metric", "metrics": "metric",
    "stopping rule": "stopping rule", "stopping rules": "stopping rule", "stopping": "stopping rule",
    "stop": "stopping rule",
}


def _choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A typer choice type from the settings' one list of values."""
    return Enum(name, {v: v for v in values}, type=str)  # type: ignore[return-value]


Mode = _choices("Mode", MODES)
Precision = _choices("Precision", PRECISIONS)


# ---------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------
def run(
    image: Annotated[Optional[Path], typer.Argument(help="Image to restore (PNG, TIFF, JPEG; 8/16-bit; gray, RGB, RGBA). Omit for the embedded default image.", show_default=False)] = None,
    degrade: Annotated[Optional[list[str]], typer.Option("--degrade", "-d", help="Degradation spec NAME[:VALUE|:key=value,...]; repeat to chain. See: restorekit list degradations.", show_default=", ".join(DEFAULTS["degrade"]))] = None,
    prior: Annotated[Optional[list[str]], typer.Option("--prior", "-p", help="Prior spec; repeat to combine (e.g. --prior dip --prior tv:0.01). See: restorekit list priors.", show_default=", ".join(DEFAULTS["prior"]))] = None,
    net: Annotated[Optional[str], typer.Option("--net", "-n", help="Generator spec; 'auto' is skip for dip, identity otherwise. See: restorekit list generators.", show_default=DEFAULTS["net"])] = None,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", "-m", help="Metric spec; repeatable. See: restorekit list metrics.", show_default=", ".join(DEFAULTS["metrics"]))] = None,
    mode: Annotated[Optional[Mode], typer.Option("--mode", help="benchmark: IMAGE is clean, the degradation is synthesised with --seed and metrics use IMAGE as reference. restore: IMAGE is already degraded, --degrade only describes the forward model.", show_default=DEFAULTS["mode"])] = None,
    preset: Annotated[Optional[str], typer.Option("--preset", help="One of the paper's task configurations (restorekit list presets); other options override it.", show_default=False)] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="Folder of the paper's images, for --preset without IMAGE (default: $RESTOREKIT_DATA, ./shared/data/dip, ../shared/data/dip).", show_default=False)] = None,
    stop: Annotated[str, typer.Option("--stop", help="Ground-truth-free stopping: eswmv[:patience=N,window=W], esemv[:alpha=A], none. auto: eswmv when --iters is not given and the degradation adds noise (not for pure pixel loss or downsampling).")] = DEFAULTS["stop"],
    ensemble: Annotated[int, typer.Option("--ensemble", help="Average this many independent fits (different network seeds).")] = DEFAULTS["ensemble"],
    time_limit: Annotated[Optional[float], typer.Option("--time-limit", help="Stop fitting after this many seconds and keep the result so far (the average, when kept).", show_default=False)] = None,
    precision: Annotated[Precision, typer.Option("--precision", help="Network arithmetic: fp32, or bf16 (autocast; faster on CPUs with AVX512-BF16/AMX and on Ampere+ GPUs, slower where emulated).")] = Precision(DEFAULTS["precision"]),
    reference: Annotated[Optional[Path], typer.Option("--reference", help="Clean image to score against in --mode restore.", show_default=False)] = None,
    iters: Annotated[Optional[int], typer.Option("--iters", "-i", help="Optimisation steps (default: the paper's for the task; capped on a CPU).", show_default=False)] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Adam learning rate.", show_default=str(DEFAULTS["lr"]))] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the degradation draw, the input code and the weights.")] = DEFAULTS["seed"],
    device: Annotated[str, typer.Option("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.")] = DEFAULTS["device"],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default: runs/<image>-NNN, never reused).", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an earlier restorekit result in --out (never a folder holding other files or an input).")] = False,
    report_every: Annotated[Optional[int], typer.Option("--report-every", help="Record loss and metrics every N steps.", show_default=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print run.json to stdout; no progress bar.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Restore one image: degrade (benchmark) or take it as observed (restore), fit, write results.

    Writes restored.*, degraded.*, compare.png, curves.png and run.json into
    the output folder, atomically; the folder is checked and reserved before
    the fit.  Ctrl-C (or SIGTERM) stops early and keeps the result so far
    (run.json says "interrupted"; exit code 130, 143 for SIGTERM).
    """
    with guard(debug):
        from ..run.outdir import prepare_output
        from ..run.outputs import record_json, write_outputs
        from ..run.signals import exit_code_for, run_signals

        host = _host()
        from ..run.settings import make_settings

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
        # check and reserve the output folder before any work: a location that cannot take the
        # results fails now, not after the fit, and a parallel run cannot pick the same folder
        folder = prepare_output(out, source=settings.image, overwrite=overwrite, inputs=_input_paths(settings))
        from ..run.pipeline import run as run_pipeline

        show = not json_out and err_console.is_terminal
        progress_cb, progress = _progress(show)
        log = (lambda msg: err_console.print(f"[dim]{msg}[/dim]", markup=True, highlight=False, soft_wrap=True)) if not json_out else None
        # with --json, stdout carries only the record: anything a component prints goes to stderr
        quiet_stdout = contextlib.redirect_stdout(sys.stderr) if json_out else contextlib.nullcontext()
        try:
            with run_signals() as signals, quiet_stdout:
                try:
                    if progress is not None:
                        progress.start()
                    result = run_pipeline(settings, host.registry, callback=progress_cb, log=log)
                finally:
                    if progress is not None:
                        progress.stop()
                # Ctrl-C and SIGTERM are held from the end of the fit until the results are written
                files = write_outputs(result, folder)
        except BaseException as exc:
            folder.abandon()
            if isinstance(exc, KeyboardInterrupt) and signals.stopped_by is not None:
                _error("interrupted before there was a result; nothing was written")
                raise typer.Exit(exit_code_for(signals.stopped_by)) from None
            raise
        if json_out:
            sys.stdout.write(record_json(result.record))
        else:
            _print_summary(result, folder.path, files)
        if result.interrupted or signals.held:
            err_console.print("interrupted: wrote the result so far" if result.interrupted
                              else "interrupted: the fit had finished; wrote the result", highlight=False)
            raise typer.Exit(exit_code_for(signals.signum))


def _input_paths(settings) -> list[Path]:
    """Every path the run reads: the image, the reference, the data folder, and file values in component specs."""
    from ..spec import parse_spec

    paths = [Path(p) for p in (settings.image, settings.reference, settings.data)
             if isinstance(p, (str, os.PathLike))]
    for text in (*settings.degrade, *settings.prior, settings.net, *settings.metrics):
        try:
            spec = parse_spec(text)
        except Exception:  # noqa: BLE001 - the run reports spec errors itself
            continue
        values = list(spec.params.values()) + ([spec.positional] if spec.positional is not None else [])
        for v in values:
            for item in (v if isinstance(v, list) else [v]):
                if isinstance(item, str) and item.strip():
                    paths.append(Path(item))
    return paths


def _progress(show: bool):
    if not show:
        return None, None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("[bold]fitting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )
    task = progress.add_task("fit", total=None, info="")

    def cb(p):
        info = f"loss {p.loss:.2e}" if p.loss == p.loss else ""
        if p.psnr is not None:
            info += f"  psnr {p.psnr:.2f}"
        if p.psnr_avg is not None:
            info += f"  avg {p.psnr_avg:.2f}"
        progress.update(task, total=p.iterations, completed=p.iteration, info=info)

    return cb, progress


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
    out_console.print(
        f"restored: {out_dir / files['restored']}  [{how}, {rec.timings.total_s:.1f} s on {rec.settings.device}]",
        highlight=False, markup=False,
    )
    out_console.print(f"record:   {out_dir / 'run.json'}", highlight=False, markup=False)


# ---------------------------------------------------------------------------
# list
# ---------------------------------------------------------------------------
def _fmt_default(v: Any) -> str:
    from ..spec import format_value

    return format_value(v)


def _param_summary(params: list[dict]) -> str:
    parts = []
    for p in params:
        d = p["default"]
        shown = f"{d:.6g}" if isinstance(d, float) else _fmt_default(d)
        parts.append(p["name"] + ("" if p["required"] else "=" + shown))
    return ", ".join(parts)


def list_components(
    kind: Annotated[Optional[str], typer.Argument(help="degradations, priors, generators (nets), metrics, stopping (--stop rules) or presets; all components if omitted.", show_default=False)] = None,
    name: Annotated[Optional[str], typer.Argument(help="One component: show its parameters in full.", show_default=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """List the components every plugin provides, with their parameters."""
    with guard(debug):
        from ..components import KINDS, format_range
        from ..errors import UsageError

        if kind is not None and kind.lower() in ("preset", "presets"):
            _list_presets(name, json_out)
            return
        reg = _host().registry
        if kind is not None and kind.lower() not in KIND_ALIASES:
            from ..suggest import did_you_mean

            hint = did_you_mean(kind.lower(), list(KIND_ALIASES) + ["presets"])
            raise UsageError(f"unknown kind '{kind}'{hint} (valid: degradations, priors, generators, metrics, presets, stopping)")
        kinds = [KIND_ALIASES[kind.lower()]] if kind else list(KINDS)
        if name is not None:
            entry = reg.get(kinds[0], name)
            info = entry.cls.describe() | {"plugin": entry.plugin, "plugin_version": entry.version}
            if json_out:
                sys.stdout.write(json.dumps(info, indent=2, default=str) + "\n")
                return
            out_console.print(f"[bold]{info['kind']} {info['name']}[/bold] — {info['summary']}", highlight=False)
            out_console.print(f"provided by {entry.plugin} {entry.version or ''}".rstrip(), highlight=False, markup=False)
            if info["primary"]:
                out_console.print(f"primary parameter: {info['primary']} ({info['name']}:VALUE)", highlight=False, markup=False)
            table = Table(box=None, pad_edge=False)
            for col in ("parameter", "type", "default", "allowed", "meaning"):
                table.add_column(col)
            for p in info["params"]:
                allowed = "|".join(map(str, p["choices"])) if p["choices"] else format_range(p["range"])
                table.add_row(p["name"], p["type"], "(required)" if p["required"] else _fmt_default(p["default"]), allowed, p["help"])
            if info["params"]:
                out_console.print(table)
            else:
                out_console.print("no parameters", highlight=False)
            return
        data = {
            k: [e.cls.describe() | {"plugin": e.plugin, "plugin_version": e.version} for e in reg.entries(k)]
            for k in kinds
        }
        if json_out:
            sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
            return
        for k in kinds:
            table = Table(title=f"{k}s", title_justify="left", title_style="bold", show_lines=False, expand=False)
            table.add_column("name", no_wrap=True, style="cyan")
            table.add_column("summary")
            table.add_column("parameters")
            table.add_column("plugin", no_wrap=True)
            for d in data[k]:
                table.add_row(d["name"], d["summary"], _param_summary(d["params"]), d["plugin"])
            out_console.print(table)


def _list_presets(name: Optional[str], json_out: bool) -> None:
    from ..presets import PRESETS, get_preset

    items = [get_preset(name)] if name else list(PRESETS.values())
    if json_out:
        sys.stdout.write(json.dumps([p.as_dict() for p in items], indent=2) + "\n")
        return
    table = Table(title="presets (--preset)", title_justify="left", title_style="bold")
    for col in ("name", "task", "settings"):
        table.add_column(col)
    for p in items:
        settings = " ".join(
            [f"--degrade {d}" for d in p.degrade] + [f"--prior {q}" for q in p.prior]
            + ([f"--net {p.net}"] if p.net else []) + [f"--iters {p.iters}", f"--lr {p.lr}"]
            + ([f"--mode {p.mode}"] if p.mode != "benchmark" else [])
        )
        table.add_row(p.name, p.summary + (f" [{p.image}]" if p.image else ""), settings)
    out_console.print(table)


# ---------------------------------------------------------------------------
# plugins
# ---------------------------------------------------------------------------
def plugins(
    all_: Annotated[bool, typer.Option("--all", help="Include the built-in plugins.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Installed plugins: version, hooks, components and load status."""
    with guard(debug):
        host = _host()
        rows = [p for p in host.plugins if all_ or not p.builtin]
        if json_out:
            sys.stdout.write(json.dumps([p.as_dict() for p in rows], indent=2) + "\n")
            return
        if not rows:
            out_console.print("no third-party plugins installed (restorekit plugins --all shows the built-ins)", highlight=False)
            return
        table = Table(show_lines=False)
        for col in ("plugin", "version", "status", "hooks", "components"):
            table.add_column(col)
        for p in rows:
            status = p.status if p.status == "loaded" else f"{p.status}: {p.error}"
            hooks = ", ".join(h.replace("restorekit_", "") for h in p.hooks)
            comps = ", ".join(f"{k}:{n}" for k, n in p.components)
            ver = p.version or ""
            table.add_row(p.name + ("" if not p.dist or p.dist == p.name else f" ({p.dist})"), ver, status, hooks, comps)
        out_console.print(table)


# ---------------------------------------------------------------------------
# the app
# ---------------------------------------------------------------------------
def _version_cb(value: bool) -> None:
    if value:
        from .. import __version__

        out_console.print(f"restorekit {__version__}", highlight=False)
        raise typer.Exit()


def _is_click_error(exc: BaseException) -> bool:
    """Typer's (vendored click's) usage errors, recognised without importing click."""
    return any(c.__name__ == "ClickException" for c in type(exc).__mro__) and hasattr(exc, "format_message")


def _click_error_line(exc: BaseException) -> str:
    """One line for a wrong option, wrong value or wrong command, with where to look."""
    msg = " ".join(str(exc.format_message()).split()).replace("Value error, ", "")
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None) or "restorekit"
    return f"{msg[:1].lower() + msg[1:]} (see: {path} --help)"


class _OneLineErrors(TyperGroup):
    """Wrong options, values and commands print one ``error:`` line (exit 2) like every other mistake."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except Exception as exc:
            if not _is_click_error(exc):
                raise
            if type(exc).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
                _error(_click_error_line(exc))
            sys.exit(getattr(exc, "exit_code", 2))
        except KeyboardInterrupt:
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)


def get_app() -> typer.Typer:
    """Build the Typer app, plugin commands included."""
    app = typer.Typer(
        name="restorekit",
        cls=_OneLineErrors,
        help="Restore a single image by optimisation (Deep Image Prior, TV, ...), with plugins.",
        epilog=EXAMPLES,
        rich_markup_mode="rich",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )

    @app.callback()
    def _root(
        version: Annotated[bool, typer.Option("--version", callback=_version_cb, is_eager=True, help="Print the version.")] = False,
    ) -> None:
        """Restore a single image by optimisation (Deep Image Prior, TV, ...), with plugins."""

    app.command("run", epilog=EXAMPLES)(run)
    app.command("list")(list_components)
    app.command("plugins")(plugins)
    try:
        host = _host()
        seen = len(host.warnings)
        host.register_commands(app)
        for w in host.warnings[seen:]:  # a plugin whose commands hook failed
            err_console.print(f"[yellow]warning:[/yellow] {w}", markup=True, highlight=False, soft_wrap=True)
    except RestoreKitError as exc:
        _error(str(exc))
        raise SystemExit(exc.exit_code) from None
    return app


def main() -> None:
    app = get_app()
    app()
