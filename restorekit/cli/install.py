"""The ``install`` command: pip-install a plugin package into restorekit's own environment, then show it loaded.

``restorekit install NAME`` runs ``python -m pip install NAME`` with the
Python that runs restorekit (``sys.executable``), so the plugin lands where
restorekit finds it whatever ``pip`` is first on PATH; then it shows the
installed plugins' rows of ``restorekit plugins``, read by a fresh process
(a plugin installed now is not importable in this one).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Annotated, Optional

import typer

from .common import _error, err_console, guard, out_console

INSTALL_EXAMPLES = """
[bold]Examples[/bold]

[dim]# a plugin from PyPI, then a newer version of it[/dim]
restorekit install restorekit-classic
restorekit install --upgrade restorekit-classic

[dim]# a plugin you are writing, editable: changes to its source apply without reinstalling[/dim]
restorekit install -e ./plugins/restorekit-example
"""


def pip_argv(names: list[str], *, upgrade: bool = False, editable: list[str] | None = None) -> list[str]:
    """The pip command ``install`` runs: this Python's pip, so the packages land beside restorekit."""
    argv = [sys.executable, "-m", "pip", "install"]
    if upgrade:
        argv.append("--upgrade")
    for path in editable or []:
        argv += ["-e", path]
    return argv + list(names)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project_name(target: str) -> str | None:
    """The distribution name of a project folder (its pyproject.toml's [project] name), else None."""
    from pathlib import Path

    try:
        import tomllib
    except ImportError:  # Python 3.10
        return None
    pyproject = Path(target) / "pyproject.toml"
    try:
        return tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {}).get("name")
    except (OSError, ValueError):
        return None


def _last_line(text: str) -> str:
    """pip's message, in one line: its last ``ERROR:`` line, else its last line."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    line = (errors or lines or ["no output"])[-1]
    return line.removeprefix("ERROR:").strip()


def _plugin_rows() -> list[dict]:
    """``restorekit plugins --json`` from a fresh process (it sees what was just installed)."""
    proc = subprocess.run([sys.executable, "-m", "restorekit.cli", "plugins", "--json"], capture_output=True,
                          text=True)
    try:
        return json.loads(proc.stdout or "[]")
    except ValueError:
        return []


def _status(text: str):
    """A spinner on a terminal while pip works (nothing when stderr is a file or a pipe)."""
    import contextlib

    if not err_console.is_terminal:
        return contextlib.nullcontext()
    return err_console.status(text)


def install(
    names: Annotated[Optional[list[str]], typer.Argument(metavar="NAME", help="Plugin packages: names on PyPI, paths, URLs (anything pip install takes).", show_default=False)] = None,
    upgrade: Annotated[bool, typer.Option("--upgrade", "-U", help="Upgrade the packages to their newest versions.")] = False,
    editable: Annotated[Optional[list[str]], typer.Option("--editable", "-e", metavar="PATH", help="Install the plugin project in this folder in editable mode (its source is used in place); repeatable.", show_default=False)] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Install plugin packages into restorekit's environment (python -m pip install), then show whether they load."""
    with guard(debug):
        from ..errors import UsageError

        names, editable = list(names or []), list(editable or [])
        if not names and not editable:
            raise UsageError("name a plugin package to install: restorekit install NAME (or -e PATH)")
        before = {(r["name"], r.get("version")) for r in _plugin_rows()}
        argv = pip_argv(names, upgrade=upgrade, editable=editable)
        try:
            with _status(f"installing {' '.join(argv[4:])} with pip ..."):
                proc = subprocess.run(argv, capture_output=True, text=True)
        except OSError as exc:
            _error(f"could not run pip: {exc.strerror or exc}")
            raise typer.Exit(1) from None
        if proc.returncode != 0:
            what = ", ".join(names + [f"-e {p}" for p in editable])
            _error(f"pip could not install {what}: {_last_line(proc.stderr or proc.stdout)}")
            raise typer.Exit(1)
        # the plugins of what was named (a folder by its project's name), and any plugin new since
        wanted = {_norm(_project_name(n) or n) for n in names + editable}
        rows = [r for r in _plugin_rows() if not r.get("builtin") and (
            (r["name"], r.get("version")) not in before or _norm(r.get("dist") or "") in wanted
            or _norm(r["name"]) in wanted)]
        if not rows:
            out_console.print("installed; no new restorekit plugin in it (a plugin declares a 'restorekit' "
                              "entry point; see: restorekit plugins)", highlight=False, markup=False)
            return
        failed = False
        for r in rows:
            status = r["status"] if r["status"] == "loaded" else f"{r['status']}: {r.get('error')}"
            failed |= r["status"] == "failed"
            comps = ", ".join(f"{c['kind']}:{c['name']}" for c in r.get("components", []))
            out_console.print(f"{r['name']} {r.get('version') or ''}: {status}" + (f" ({comps})" if comps else ""),
                              highlight=False, markup=False)
        if failed:
            raise typer.Exit(1)
