"""The Typer app: its commands, the root options, and wrong options or commands as one ``error:`` line."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from ..errors import RestoreKitError
from .common import _error, _host, _tidy_params, err_console, out_console
from .listing import list_components, plugins
from .batch import BATCH_EXAMPLES, batch
from .compare import COMPARE_EXAMPLES, compare
from .run import run
from .segment import DECOMPOSE_EXAMPLES, SEGMENT_EXAMPLES, decompose, segment
from .inspect import INVERT_EXAMPLES, VISUALIZE_EXAMPLES, invert, visualize
from .models import EVAL_EXAMPLES, SAMPLE_EXAMPLES, eval_model, models, sample
from .train import TRAIN_EXAMPLES, train
from .install import INSTALL_EXAMPLES, install

EXAMPLES = """
[bold]Examples[/bold]

[dim]# a real noisy photo or micrograph: its noise is estimated from it, nothing is added (--mode restore is the default for an image)[/dim]
restorekit run noisy.png

[dim]# the embedded image with half of its pixels lost, restored by the deep image prior (no image: a benchmark)[/dim]
restorekit run --degrade bernoulli:0.5 --prior dip --net skip

[dim]# benchmark: add Gaussian noise (sigma 25) to a clean photo, denoise, score[/dim]
restorekit run photo.png --mode benchmark --degrade gaussian:25

[dim]# a photo with noise of known level (sigma 25)[/dim]
restorekit run noisy.png --degrade gaussian:25

[dim]# inpaint the pixels a mask marks black (white = keep)[/dim]
restorekit run damaged.png --degrade mask:damage_mask.png

[dim]# 4x super-resolution of a small image[/dim]
restorekit run small.png --degrade downsample:4

[dim]# the paper's F16 denoising settings (restorekit list presets shows them all)[/dim]
restorekit run --preset denoise --data ../shared/data/dip

[dim]# the ES-WMV stopping rule (needs no reference), average 3 independent fits[/dim]
restorekit run noisy.png --stop eswmv --ensemble 3

[dim]# the deep image prior against every installed classical method, side by side, on one synthetic noisy draw[/dim]
restorekit compare photo.png --mode benchmark --degrade gaussian:25

[dim]# every component and its parameters[/dim]
restorekit list
"""


def _version_cb(value: bool) -> None:
    if value:
        from .. import __version__

        out_console.print(f"restorekit {__version__}", highlight=False)
        raise typer.Exit()


def _is_click_error(exc: BaseException) -> bool:
    """Typer's (vendored click's) usage errors, recognised without importing click."""
    return any(c.__name__ == "ClickException" for c in type(exc).__mro__) and hasattr(exc, "format_message")


#: short flags that were dropped because they meant two things: (command, flag) -> what to use instead
_DROPPED_SHORT = {("segment", "-m"): "--method", ("decompose", "-m"): "--method"}


def _click_error_line(exc: BaseException) -> str:
    """One line for a wrong option, wrong value or wrong command, with where to look."""
    msg = " ".join(str(exc.format_message()).split()).replace("Value error, ", "")
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None) or "restorekit"
    command = getattr(getattr(ctx, "command", None), "name", None)
    flag = getattr(exc, "option_name", None)
    if flag and (command, flag) in _DROPPED_SHORT:
        use = _DROPPED_SHORT[(command, flag)]
        return f"{command} has no {flag}: use {use} (-m means --metric in every command)"
    return f"{msg[:1].lower() + msg[1:]} (see: {path} --help)"


class _Command(TyperCommand):
    """A command whose help names values (SPEC, N, PATH) instead of types, and flags with none."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        _tidy_params(self.name, params)
        return params


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
        context_settings={"help_option_names": ["-h", "--help"]},
        pretty_exceptions_enable=False,
        add_completion=False,
    )

    @app.callback()
    def _root(
        version: Annotated[bool, typer.Option("--version", callback=_version_cb, is_eager=True, help="Print the version.")] = False,
        plugins_dir: Annotated[Optional[list[Path]], typer.Option("--plugins-dir", metavar="DIR", help="Load every *.py in this folder as a plugin (repeatable; also $RESTOREKIT_PLUGINS_DIR).", show_default=False)] = None,
    ) -> None:
        """Restore a single image by optimisation (Deep Image Prior, TV, ...), with plugins."""
        if plugins_dir:  # main() applied them before the plugins loaded; an app built otherwise loads again
            _use_plugins_dirs([str(d) for d in plugins_dir])

    app.command("run", epilog=EXAMPLES, cls=_Command)(run)
    app.command("list", cls=_Command)(list_components)
    app.command("plugins", cls=_Command)(plugins)
    app.command("batch", epilog=BATCH_EXAMPLES, cls=_Command)(batch)
    app.command("compare", epilog=COMPARE_EXAMPLES, cls=_Command)(compare)
    app.command("train", epilog=TRAIN_EXAMPLES, cls=_Command)(train)
    app.command("segment", epilog=SEGMENT_EXAMPLES, cls=_Command)(segment)
    app.command("decompose", epilog=DECOMPOSE_EXAMPLES, cls=_Command)(decompose)
    app.command("invert", epilog=INVERT_EXAMPLES, cls=_Command)(invert)
    app.command("visualize", epilog=VISUALIZE_EXAMPLES, cls=_Command)(visualize)
    app.command("eval", epilog=EVAL_EXAMPLES, cls=_Command)(eval_model)
    app.command("models", cls=_Command)(models)
    app.command("sample", epilog=SAMPLE_EXAMPLES, cls=_Command)(sample)
    app.command("install", epilog=INSTALL_EXAMPLES, cls=_Command)(install)
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


def plugins_dirs_from_argv(argv: list[str]) -> list[str]:
    """The ``--plugins-dir`` folders given before the command (the plugins load before typer parses)."""
    dirs: list[str] = []
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        if arg == "--plugins-dir" and i + 1 < len(argv):
            dirs.append(argv[i + 1])
            i += 1
        elif arg.startswith("--plugins-dir="):
            dirs.append(arg.partition("=")[2])
        i += 1
    return dirs


def _use_plugins_dirs(dirs: list[str]) -> None:
    """Add plugins folders to $RESTOREKIT_PLUGINS_DIR (so batch's worker processes load them too); a plugin
    host built without them is dropped, and the next one loads them."""
    from ..plugins import PLUGINS_DIR_ENV, reset_host

    given = [d for d in os.environ.get(PLUGINS_DIR_ENV, "").split(os.pathsep) if d]
    new = [d for d in dirs if d not in given]
    if new:
        os.environ[PLUGINS_DIR_ENV] = os.pathsep.join(new + given)
        reset_host()


def main() -> None:
    """The ``restorekit`` console script (pyproject) and ``python -m restorekit.cli``."""
    dirs = plugins_dirs_from_argv(sys.argv[1:])
    if dirs:  # before the app is built: the folders' plugins can add commands too
        _use_plugins_dirs(dirs)
    app = get_app()
    app()
