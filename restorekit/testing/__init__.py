"""Contract checks and pytest fixtures for restorekit components and plugins.

The core runs these checks on every registered component (built-ins and
installed plugins alike, ``tests/test_contract.py``); a plugin author runs
them from the plugin's own test suite::

    import restorekit_myplugin
    from restorekit.testing import check_plugin

    def test_contract():
        check_plugin(restorekit_myplugin, specs={"mynet": "mynet:channels=8"})

Each ``check_*`` function raises :class:`ContractError` (an
``AssertionError``, so pytest shows it as a plain test failure) naming the
component, its spec and the check that failed, and returns the names of the
checks that passed.  The first argument is a component class or a spec
string (``"gaussian:sigma=10"``) resolved through a registry.

This package is also a pytest plugin, loaded by pytest on its own wherever
restorekit is installed (the ``restorekit`` entry point of the ``pytest11``
group), so its two fixtures need no ``conftest.py``.  Do not list it in
``pytest_plugins`` or pass ``-p restorekit.testing`` as well: pytest then
stops with "Plugin already registered under a different name".  With
plugin autoloading disabled (``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``), load it
by its entry-point name, ``pytest -p restorekit`` (which works with
autoloading on too), or import the fixtures by name into a test module.
The fixtures:

``restorekit_host``
    a fresh :class:`~restorekit.plugins.PluginHost` holding only the
    built-in plugins, installed as the process-wide host for the test:
    :func:`restorekit.plugins.get_host`, :func:`restorekit.restore` and the
    in-process CLI see it and nothing installed.
``restorekit_register``
    a factory ``register(plugin, name=None, version=None)`` that registers
    a plugin module or object on that host and returns its
    :class:`~restorekit.plugins.PluginInfo`; a plugin that fails to register
    fails the test with the host's message.

Outside pytest, :func:`registered` does the same as a context manager.
Torch is imported only inside the checks that need it.

One job per module; import from the package, which re-exports them all:

:mod:`~restorekit.testing.contract`
    :class:`ContractError`, the ``check_*`` functions (one per component
    kind, ``check_component`` for any, ``check_plugin`` for a plugin's
    components) and their defaults ``DEFAULT_SHAPES`` and ``PRIOR_TASKS``.
:mod:`~restorekit.testing.problems`
    :func:`make_test_image` and :func:`make_problem`: small synthetic inputs.
:mod:`~restorekit.testing.hosts`
    :func:`fresh_host`, :func:`register_plugin` and :func:`registered`:
    plugin hosts for tests, installed with :func:`restorekit.plugins.use_host`.
:mod:`~restorekit.testing.fixtures`
    the pytest fixtures; imported here (when pytest is installed) because
    pytest looks for them on this package.
"""

from __future__ import annotations

from .contract import (
    DEFAULT_SHAPES,
    PRIOR_TASKS,
    UNDER_TEST,
    ContractError,
    check_component,
    check_degradation,
    check_generator,
    check_metric,
    check_plugin,
    check_prior,
    check_stopping_rule,
    check_decomposition,
    check_network,
)
from .hosts import fresh_host, register_plugin, registered
from .problems import make_problem, make_test_image

__all__ = [
    "ContractError",
    "DEFAULT_SHAPES",
    "PRIOR_TASKS",
    "check_component",
    "check_degradation",
    "check_prior",
    "check_generator",
    "check_metric",
    "check_stopping_rule",
    "check_decomposition",
    "check_network",
    "check_plugin",
    "make_test_image",
    "make_problem",
    "fresh_host",
    "register_plugin",
    "registered",
]

# the fixtures must be attributes of this package: pytest loads it as the plugin
try:
    from .fixtures import restorekit_host, restorekit_register
except ModuleNotFoundError as exc:  # pytest is not installed: the rest works without it
    if exc.name != "pytest":
        raise
else:
    __all__ += ["restorekit_host", "restorekit_register"]
