"""The ``list`` and ``plugins`` commands: what is installed, as tables or ``--json``.

``list`` shows the components (degradations, priors, generators, metrics,
stopping rules, decompositions, networks) with their parameters, one component in full, or the
presets; ``plugins`` shows the installed plugins and how they loaded.
Neither imports torch.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from .common import _host, guard, out_console

KIND_ALIASES = {
    "degradation": "degradation", "degradations": "degradation", "degrade": "degradation",
    "prior": "prior", "priors": "prior",
    "generator": "generator", "generators": "generator", "net": "generator", "nets": "generator",
    "metric": "metric", "metrics": "metric",
    "stopping rule": "stopping rule", "stopping rules": "stopping rule", "stopping": "stopping rule",
    "stop": "stopping rule",
    "decomposition": "decomposition", "decompositions": "decomposition", "segment": "decomposition",
    "network": "network", "networks": "network",
}


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
    kind: Annotated[Optional[str], typer.Argument(help="degradations, priors, generators (nets), metrics, stopping (the stopping rules of --stop), decompositions (segment/decompose methods), networks (invert/visualize) or presets; all components if omitted.", show_default=False)] = None,
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
            raise UsageError(f"unknown kind '{kind}'{hint} (valid: degradations, priors, generators, metrics, presets, stopping, decompositions, networks)")
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
