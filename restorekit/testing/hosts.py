"""Plugin hosts for tests: fresh ones, plugins registered on them, one installed meanwhile.

Built on the public API of :mod:`restorekit.plugins` only: a host is a
:class:`~restorekit.plugins.PluginHost`, made the process-wide one with
:func:`~restorekit.plugins.use_host`.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from ..errors import RestoreKitError
from ..plugins import PluginHost, PluginInfo, use_host
from .contract import ContractError


def fresh_host(builtins: bool = True) -> PluginHost:
    """A new plugin host: the built-in plugins only (or nothing), no entry points."""
    host = PluginHost()
    return host.load(entry_points=[]) if builtins else host


def _plugin_name(plugin: Any) -> str:
    name = getattr(plugin, "__name__", None) or type(plugin).__name__
    return str(name).split(".")[0]


def register_plugin(host: PluginHost, plugin: Any, name: str | None = None, version: str | None = None) -> PluginInfo:
    """Register ``plugin`` on ``host`` as an installed plugin would be; raise if it fails."""
    name = name or _plugin_name(plugin)
    info = PluginInfo(name=name, module=getattr(plugin, "__name__", repr(plugin)), version=version)
    try:
        ok = host.register(plugin, info)
    except RestoreKitError as exc:  # RESTOREKIT_STRICT_PLUGINS is set
        raise ContractError(str(exc)) from None
    if not ok:
        raise ContractError(f"plugin '{name}' failed to load: {info.error}")
    return info


@contextlib.contextmanager
def registered(*plugins: Any, name: str | None = None, builtins: bool = True) -> Iterator[PluginHost]:
    """Register plugins on a fresh host and make it the process-wide host meanwhile.

    ``with registered(my_plugin) as host:`` — inside, ``get_host()``,
    ``restorekit.restore`` and the in-process CLI see the built-ins and
    ``my_plugin``; the previous host is back afterwards.  ``name`` names a
    single plugin (default: its module name).
    """
    if name is not None and len(plugins) != 1:
        raise TypeError("name= names a single plugin")
    host = fresh_host(builtins)
    for p in plugins:
        register_plugin(host, p, name)
    with use_host(host):
        yield host
