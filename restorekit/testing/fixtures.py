"""The pytest fixtures ``restorekit_host`` and ``restorekit_register``.

pytest finds them as attributes of the package :mod:`restorekit.testing`
(it imports them from here): the module that the ``restorekit`` entry
point of the ``pytest11`` group names, that ``-p restorekit`` loads, and
that a test module may import them from by name.  Each installs its host
with :func:`restorekit.plugins.use_host` for the duration of the test.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import pytest

from ..plugins import PluginHost, PluginInfo, use_host
from .hosts import fresh_host, register_plugin


@pytest.fixture
def restorekit_host() -> Iterator[PluginHost]:
    """A fresh host with the built-in plugins only, returned by ``get_host()`` during the test."""
    with use_host(fresh_host()) as host:
        yield host


@pytest.fixture
def restorekit_register(request) -> Iterator[Any]:
    """``register(plugin, name=None, version=None) -> PluginInfo`` on the test's fresh host.

    The host is the ``restorekit_host`` fixture's where that fixture is
    visible (else one made the same way), so ``get_host()``,
    ``restorekit.restore`` and the in-process CLI see the plugin until
    the test ends; ``register.host`` is that host.
    """
    try:  # that fixture installs the host and takes it down
        installed = contextlib.nullcontext(request.getfixturevalue("restorekit_host"))
    except pytest.FixtureLookupError:  # only this fixture was imported by name
        installed = use_host(fresh_host())
    with installed as host:

        def register(plugin: Any, name: str | None = None, version: str | None = None) -> PluginInfo:
            return register_plugin(host, plugin, name, version)

        register.host = host  # type: ignore[attr-defined]
        yield register
