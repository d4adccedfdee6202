"""Build the plugin manager: built-ins and entry points, one at a time.

Every plugin, the built-in ones included, is a module (or object) with
``@hookimpl`` functions, found through the ``restorekit`` entry-point
group.  A plugin that fails to import, implements an unknown hook, clashes
with another plugin's component name or raises in a registration hook is
reported (one warning line and a ``failed`` row in ``restorekit plugins``)
and the rest keep working; ``RESTOREKIT_STRICT_PLUGINS=1`` turns such
failures into errors.  Any exception counts, ``SystemExit`` (a plugin calling
``sys.exit()``) and other ``BaseException`` subclasses included; only
``KeyboardInterrupt`` propagates.  What a plugin prints while it is imported
or registered goes to stderr, so that stdout carries only a command's data.

Environment, read when the manager is built:

``RESTOREKIT_LOAD_PLUGINS``     comma-separated third-party plugins to load
                                (empty: none); unset: all installed
``RESTOREKIT_DISABLE_PLUGINS``  comma-separated plugins not to load
``RESTOREKIT_STRICT_PLUGINS``   ``1``: a broken plugin is an error
``RESTOREKIT_TRACE_HOOKS``      ``1``: print every hook call to stderr
``RESTOREKIT_PLUGINS_DIR``      folders (separated by ``os.pathsep``) whose
                                ``*.py`` files are loaded as one-file plugins
                                (``restorekit --plugins-dir DIR`` sets it)

A one-file plugin is a module with ``@hookimpl`` functions, named after its
file (``blur.py`` is plugin ``blur``); it is loaded after the installed
plugins and isolated the same way.  :func:`register_plugin` registers a
plugin object in this process (a notebook, a script).

A name in either list that no installed plugin has (entry-point or
distribution name) gets a warning naming the closest installed one.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import io
import json
import logging
import os
import pkgutil
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import pluggy

from . import hookspecs
from .components import KINDS
from .errors import RegistryError, RestoreKitError
from .registry import ComponentRegistry, Registry
from .suggest import did_you_mean

log = logging.getLogger("restorekit")
log.addHandler(logging.NullHandler())  # the CLI prints host.warnings itself

ENTRY_POINT_GROUP = "restorekit"
PROJECT = "restorekit"


# -- the built-in plugins: restorekit's own entry points ------------------------------
def _this_package() -> Path:
    return Path(__file__).resolve().parent


def _describes_this_package(dist: md.Distribution) -> bool:
    """Whether ``dist`` is the installation of the restorekit package running now.

    Not so when restorekit runs from a source checkout (``PYTHONPATH=.``, a
    second git worktree) while another copy is installed: that copy's entry
    points may be older or newer than these modules.
    """
    here = _this_package()
    try:  # an ordinary install, or an egg-link/.egg-info one
        if Path(dist.locate_file(f"{PROJECT}/__init__.py")).resolve() == here / "__init__.py":
            return True
    except Exception:
        pass
    try:  # an editable install (PEP 660): direct_url.json names the source folder
        url = json.loads(dist.read_text("direct_url.json") or "{}").get("url", "")
    except Exception:
        return False
    if not url.startswith("file:"):
        return False
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    source = Path(url2pathname(urlparse(url).path)).resolve()
    return here.is_relative_to(source)


def _scanned_builtins() -> list[md.EntryPoint]:
    """The entry points pyproject.toml declares, derived from the modules in restorekit/builtins/.

    pyproject.toml names each module ``restorekit.builtins.<m>`` as entry
    point ``restorekit.<m>`` (tests/test_facts.py holds it to that).
    """
    from . import builtins

    return [
        md.EntryPoint(name=f"{PROJECT}.{m.name}", value=f"{builtins.__name__}.{m.name}", group=ENTRY_POINT_GROUP)
        for m in pkgutil.iter_modules(builtins.__path__)
        if not m.name.startswith("_")
    ]


def builtin_entry_points() -> tuple[list[md.EntryPoint], str | None]:
    """The built-in plugins, and a warning when restorekit's metadata is out of date.

    The one list of them is ``[project.entry-points.restorekit]`` in
    pyproject.toml, read here from the installed distribution's metadata (a
    built-in is an entry point of the ``restorekit`` distribution).  Where
    there is no metadata of this copy of restorekit (a source checkout run
    without installing it, or beside another installed copy) the list is
    derived from the modules in ``restorekit/builtins/`` instead; where the
    metadata names other modules than that folder holds (pyproject.toml
    changed since the install) the folder wins and the warning says to
    reinstall.
    """
    try:
        dist = md.distribution(PROJECT)
    except md.PackageNotFoundError:
        dist = None
    scanned = _scanned_builtins()
    if dist is None or not _describes_this_package(dist):
        log.debug("restorekit's metadata is not this copy's: built-in plugins from restorekit/builtins/")
        return scanned, None
    declared = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
    found = {ep.value for ep in scanned}
    if {ep.value for ep in declared} == found:
        return declared, None
    missing = sorted(found - {ep.value for ep in declared})
    extra = sorted({ep.value for ep in declared} - found)
    parts = []
    if missing:
        parts.append("it lacks " + ", ".join(missing))
    if extra:
        parts.append("it names " + ", ".join(extra) + ", which restorekit/builtins/ lacks")
    what = "; ".join(parts)
    return scanned, (
        f"restorekit's installed entry points are out of date ({what}): reinstall restorekit "
        "(pip install -e . in a checkout); using the modules in restorekit/builtins/ meanwhile"
    )


def __getattr__(name: str) -> Any:
    if name == "BUILTIN_PLUGINS":
        #: entry-point name -> module of the built-in plugins (derived: see builtin_entry_points)
        return {ep.name: ep.value for ep in builtin_entry_points()[0]}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _register_hooks() -> dict[str, str]:
    """Component kind -> its registration hook, read from :mod:`restorekit.hookspecs`.

    The hook of kind ``k`` is the spec named ``restorekit_register_<k>s``
    (spaces as ``_``: ``stopping rule`` -> ``restorekit_register_stopping_rules``);
    a kind in :data:`~restorekit.components.KINDS` without one is a bug in
    restorekit, caught here when the module is imported.
    """
    prefix = f"{PROJECT}_register_"
    kinds = {}
    for name, fn in vars(hookspecs).items():
        if name.startswith(prefix) and hasattr(fn, f"{PROJECT}_spec"):
            kinds[name[len(prefix):].removesuffix("s").replace("_", " ")] = name
    missing = [k for k in KINDS if k not in kinds]
    if missing:
        raise ImportError(
            f"restorekit.hookspecs has no registration hook for the component kind(s) {missing} "
            f"(expected: {', '.join(prefix + k.replace(' ', '_') + 's' for k in missing)})"
        )
    return {k: kinds[k] for k in KINDS}


#: component kind -> the hook that registers it, in the order of KINDS (derived from hookspecs)
REGISTER_HOOKS = _register_hooks()


class PluginError(RestoreKitError):
    """A plugin failed to load while RESTOREKIT_STRICT_PLUGINS is set."""

    exit_code = 1


@dataclass
class PluginInfo:
    """One row of ``restorekit plugins``."""

    name: str
    module: str
    dist: str | None = None
    version: str | None = None
    builtin: bool = False
    status: str = "loaded"  # loaded | failed | disabled
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    components: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "dist": self.dist,
            "version": self.version,
            "builtin": self.builtin,
            "status": self.status,
            "error": self.error,
            "hooks": list(self.hooks),
            "components": [{"kind": k, "name": n} for k, n in self.components],
        }


def _env_list(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return [p.strip() for p in raw.split(",") if p.strip()]


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}): the plugin tried to end the process"
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send what plugin code prints while it loads to stderr.

    stdout carries only a command's data (``list --json``, ``plugins
    --json``, ``run --json``); plugins are imported and their registration
    hooks run before the command, so a plugin's ``print`` would end up in it.
    """
    target = sys.stderr if sys.stderr is not None else io.StringIO()
    with contextlib.redirect_stdout(target):
        yield


class _PluginProxy:
    """Stands in for a plugin object that cannot be hashed (pluggy keeps plugins in sets).

    It carries the object's ``@hookimpl`` methods (and anything else named
    ``restorekit_*``), bound to the object, so pluggy finds the same hooks.
    """

    def __init__(self, target: Any) -> None:
        self.__wrapped__ = target
        self.__name__ = getattr(target, "__name__", None) or type(target).__name__
        marker = f"{PROJECT}_impl"
        for name in dir(target):
            if name.startswith("__"):
                continue
            try:
                value = getattr(target, name)
            except Exception:
                continue
            if callable(value) and (name.startswith("restorekit_") or hasattr(value, marker)):
                setattr(self, name, value)

    def __repr__(self) -> str:
        return f"<plugin {self.__wrapped__!r}>"


def _hashable(plugin: Any) -> Any:
    try:
        hash(plugin)
    except TypeError:
        return _PluginProxy(plugin)
    return plugin


class PluginHost:
    """The plugin manager, the component registry and the plugin table."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.plugins: list[PluginInfo] = []
        self.warnings: list[str] = []
        self.strict = _truthy("RESTOREKIT_STRICT_PLUGINS")
        #: plugin name -> why it is not loaded (pluggy blocks the name: pm.is_blocked)
        self._blocked: dict[str, str] = {}
        if _truthy("RESTOREKIT_TRACE_HOOKS"):
            self.pm.trace.root.setwriter(sys.stderr.write)
            self.pm.enable_tracing()

    # -- loading -------------------------------------------------------------
    def _fail(self, info: PluginInfo, message: str) -> None:
        prefix = f"plugin '{info.name}': "
        if message.startswith(prefix):
            message = message[len(prefix):]
        info.status = "failed"
        info.error = message
        line = f"plugin '{info.name}' failed to load: {message}"
        if self.strict:
            raise PluginError(line + " (RESTOREKIT_STRICT_PLUGINS is set)")
        self._warn(line)

    def register(self, plugin: Any, info: PluginInfo) -> bool:
        """Register one plugin object and its components; report failures."""
        with _stdout_to_stderr():
            return self._register(plugin, info)

    def _register(self, plugin: Any, info: PluginInfo) -> bool:
        self.plugins.append(info)
        try:
            plugin = _hashable(plugin)  # an instance of a class with __eq__ but no __hash__, say
            if self.pm.register(plugin, name=info.name) is None:  # pm.set_blocked(info.name)
                info.status = "disabled"
                info.error = self._blocked.get(info.name, "blocked")
                return False
        except pluggy.PluginValidationError as exc:
            self._fail(info, _validation_message(self.pm, plugin, exc))
            return False
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # duplicate plugin names; sys.exit() in a plugin's __getattr__
            self._fail(info, _one_line(exc))
            return False
        try:
            try:
                # an implementation of no hook (a misspelled name, mostly) unless marked optionalhook;
                # the plugins registered before this one have passed, so it is this one's
                self.pm.check_pending()
            except pluggy.PluginValidationError as exc:
                raise RegistryError(_unknown_hook_message(self.pm, exc)) from None
            callers = self.pm.get_hookcallers(plugin) or []
            info.hooks = sorted(hc.name for hc in callers)
            staged: list[ComponentRegistry] = []
            for kind, hook_name in REGISTER_HOOKS.items():
                reg = ComponentRegistry(kind, info.name, info.version)
                caller = self._only(hook_name, plugin)
                caller(registry=reg)
                staged.append(reg)
            entries = [e for reg in staged for e in reg.staged]
            probe = Registry()
            for e in self.registry.entries():
                probe.add(e)
            for e in entries:
                probe.add(e)  # raises on a clash, before anything is committed
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit and the like from a hook fail the plugin only
            self.pm.unregister(plugin)
            self._fail(info, str(exc) if isinstance(exc, RestoreKitError) else _one_line(exc))
            return False
        for e in entries:
            self.registry.add(e)
        info.components = [(e.kind, e.name) for e in entries]
        return True

    def _only(self, hook_name: str, plugin: Any):
        others = [p for p in self.pm.get_plugins() if p is not plugin]
        return self.pm.subset_hook_caller(hook_name, remove_plugins=others)

    def load(self, entry_points: Iterable[md.EntryPoint] | None = None) -> "PluginHost":
        """Load the built-ins, then every third-party entry point.

        What the plugins print meanwhile goes to stderr.
        """
        with _stdout_to_stderr():
            return self._load(entry_points)

    def _load(self, entry_points: Iterable[md.EntryPoint] | None) -> "PluginHost":
        discovered = entry_points is None
        if entry_points is None:
            entry_points = list(md.entry_points(group=ENTRY_POINT_GROUP))
        entry_points = list(entry_points)
        self._load_builtins()
        allow = _env_list("RESTOREKIT_LOAD_PLUGINS")
        deny_list = _env_list("RESTOREKIT_DISABLE_PLUGINS") or []
        deny = set(deny_list)
        third = sorted(
            (ep for ep in entry_points if _dist_name(ep) != PROJECT), key=lambda ep: ep.name
        )
        if discovered:  # a list passed in (tests, fresh_host) is not what is installed
            self._check_names("RESTOREKIT_LOAD_PLUGINS", allow or [], third)
            self._check_names("RESTOREKIT_DISABLE_PLUGINS", deny_list, third)
        for ep in third:
            dist = _dist_name(ep)
            info = PluginInfo(name=ep.name, module=ep.value, dist=dist, version=_dist_version(ep))
            if ep.name in deny or (dist and dist in deny):
                self._block(info, "RESTOREKIT_DISABLE_PLUGINS")
                continue
            if allow is not None and ep.name not in allow and dist not in allow:
                self._block(info, "not in RESTOREKIT_LOAD_PLUGINS")
                continue
            try:
                obj = ep.load()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # sys.exit() on import too: isolate it like any failure
                self.plugins.append(info)
                self._fail(info, _one_line(exc))
                continue
            self.register(obj, info)
        for path in plugin_files():
            self._load_file(path, deny, allow)
        return self

    def _load_file(self, path: Path, deny: set[str], allow: list[str] | None) -> None:
        """One ``*.py`` of a plugins folder, imported under its own module name and registered."""
        import importlib.util

        info = PluginInfo(name=path.stem, module=str(path))
        if path.stem in deny:
            self._block(info, "RESTOREKIT_DISABLE_PLUGINS")
            return
        if allow is not None and path.stem not in allow:
            self._block(info, "not in RESTOREKIT_LOAD_PLUGINS")
            return
        module_name = f"restorekit_plugins_dir_{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}"  # importable: picklable
        try:
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import '{path}'")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a broken file is a failed row, like a broken entry point
            sys.modules.pop(module_name, None)
            self.plugins.append(info)
            self._fail(info, _one_line(exc))
            return
        self.register(module, info)

    def _load_builtins(self) -> None:
        """restorekit's own entry points, in the order of the kinds they register (KINDS)."""
        eps, stale = builtin_entry_points()
        if stale:
            self._warn(stale)
        version = _version()
        loaded: list[tuple[PluginInfo, Any]] = []
        for ep in eps:
            info = PluginInfo(name=ep.name, module=ep.value, dist=PROJECT, version=version, builtin=True)
            try:
                loaded.append((info, ep.load()))
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                loaded.append((info, exc))
        # the metadata lists entry points alphabetically; rows and registration follow the kinds
        loaded.sort(key=lambda pair: (_first_kind(pair[1]), pair[0].name))
        for info, obj in loaded:
            if isinstance(obj, BaseException):
                self.plugins.append(info)
                self._fail(info, _one_line(obj))
            else:
                self.register(obj, info)

    def _block(self, info: PluginInfo, reason: str) -> None:
        """Leave a plugin out, unimported; pluggy refuses its name from now on."""
        self.pm.set_blocked(info.name)
        self._blocked[info.name] = reason
        info.status = "disabled"
        info.error = reason
        self.plugins.append(info)

    def _check_names(self, var: str, names: list[str], third: list[md.EntryPoint]) -> None:
        """Warn about a name in a plugin list that no installed plugin has (a typo, most often)."""
        known: list[str] = []
        for ep in third:
            for n in (ep.name, _dist_name(ep)):
                if n and n not in known:
                    known.append(n)
        builtin = {p.name for p in self.plugins if p.builtin} | {PROJECT}
        for name in dict.fromkeys(names):
            if name in known:
                continue
            if name in builtin:
                if var == "RESTOREKIT_DISABLE_PLUGINS":
                    self._warn(f"{var} names '{name}', a built-in plugin; the built-in plugins always load")
                continue
            hint = did_you_mean(name, known)
            if not hint and third:
                hint = " (installed: " + ", ".join(
                    ep.name + (f" ({d})" if (d := _dist_name(ep)) and d != ep.name else "") for ep in third
                ) + ")"
            elif not hint:
                hint = " (no third-party plugin is installed)"
            self._warn(f"{var} names '{name}', which is not installed{hint}")

    def _warn(self, line: str) -> None:
        self.warnings.append(line)
        log.warning(line)

    # -- queries -----------------------------------------------------------------
    def plugin(self, name: str) -> PluginInfo | None:
        return next((p for p in self.plugins if p.name == name), None)

    def register_commands(self, app: Any) -> None:
        """Let every plugin add its commands to ``app``; what they print goes to stderr."""
        with _stdout_to_stderr():
            self._register_commands(app)

    def _register_commands(self, app: Any) -> None:
        for impl in self.pm.hook.restorekit_register_commands.get_hookimpls():
            info = self.plugin(impl.plugin_name)
            try:
                self._only("restorekit_register_commands", impl.plugin)(app=app)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                if info is not None:
                    self._fail(info, f"while adding commands: {_one_line(exc)}")
                else:
                    raise


def _unknown_hook_message(pm: pluggy.PluginManager, exc: pluggy.PluginValidationError) -> str:
    """pluggy's "unknown hook 'x' in plugin <module ...>" as "unknown hook 'x'; did you mean 'y'?"."""
    m = re.match(r"unknown hook '([^']+)'", str(exc))
    if m is None:
        return _one_line(exc)
    known = [n for n in dir(pm.hook) if n.startswith(f"{PROJECT}_") and getattr(pm.hook, n).has_spec()]
    return f"unknown hook '{m[1]}'{did_you_mean(m[1], known)}"


def _validation_message(pm: pluggy.PluginManager, plugin: Any, exc: Exception) -> str:
    """Say which argument of which hook is wrong (pluggy's first line names neither)."""
    import inspect

    for name in dir(plugin):
        if not name.startswith("restorekit_"):
            continue
        hook = getattr(pm.hook, name, None)
        if hook is None or not hook.has_spec():
            continue
        try:
            params = list(inspect.signature(getattr(plugin, name)).parameters)
        except (TypeError, ValueError):
            continue
        allowed = list(hook.spec.argnames)
        extra = [p for p in params if p not in allowed]
        if extra:
            return (
                f"hook '{name}' takes argument(s) {', '.join(repr(e) for e in extra)} that the hook "
                f"does not have (it has: {', '.join(allowed)})"
            )
    return _one_line(exc)


def _first_kind(plugin: Any) -> int:
    """Position in KINDS of the first kind ``plugin`` registers (past the end: none)."""
    hooks = list(REGISTER_HOOKS.values())
    return next((i for i, hook in enumerate(hooks) if hasattr(plugin, hook)), len(hooks))


def _dist_name(ep: md.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None
    try:
        return dist.metadata["Name"]
    except Exception:
        return getattr(dist, "name", None)


def _dist_version(ep: md.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return getattr(dist, "version", None) if dist is not None else None


def _version() -> str:
    from . import __version__

    return __version__


#: the environment variable naming the plugins folders (os.pathsep-separated)
PLUGINS_DIR_ENV = "RESTOREKIT_PLUGINS_DIR"


def plugin_files() -> list[Path]:
    """The ``*.py`` files of the folders in ``$RESTOREKIT_PLUGINS_DIR``, each folder's sorted by name
    (files starting with ``_`` left out; a folder that does not exist is skipped)."""
    files: list[Path] = []
    for folder in os.environ.get(PLUGINS_DIR_ENV, "").split(os.pathsep):
        if folder.strip() and Path(folder).is_dir():
            files += sorted(p for p in Path(folder).glob("*.py") if not p.name.startswith("_") and p.is_file())
    return files


_HOST: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, built on first use."""
    global _HOST
    if _HOST is None:
        _HOST = PluginHost().load()
    return _HOST


def reset_host() -> None:
    """Forget the process-wide host (tests; after installing a plugin)."""
    global _HOST
    _HOST = None


@contextlib.contextmanager
def use_host(host: PluginHost) -> Iterator[PluginHost]:
    """Make ``host`` the process-wide plugin host inside a ``with`` block.

    ``with use_host(host):`` — inside, :func:`get_host` returns ``host``, so
    :func:`get_registry`, :func:`restorekit.restore` and the in-process CLI
    use its plugins and components; on leaving the block (normally or by an
    exception) the previous host is back, or none if none had been built
    yet (the next :func:`get_host` then loads one as usual).  The block
    yields ``host``.  Blocks nest: each restores what was current when it
    began, so leave them in the reverse order of entering (as ``with``
    does).  The host is process-wide, not per thread.  This is how
    :mod:`restorekit.testing` installs its hosts (``registered``, the
    ``restorekit_host`` fixture); the slot it sets is private to this module.
    """
    if not isinstance(host, PluginHost):
        raise TypeError(f"use_host() takes a PluginHost, not {type(host).__name__}")
    global _HOST
    previous = _HOST
    _HOST = host
    try:
        yield host
    finally:
        _HOST = previous


def get_registry() -> Registry:
    return get_host().registry


def register_plugin(plugin: Any, name: str | None = None, version: str | None = None) -> PluginInfo:
    """Register ``plugin`` (a module, class or object with ``@hookimpl`` functions) in this process.

    From then on :func:`restorekit.restore`, the other API functions and
    ``restorekit list`` in this process see its components, as if it were
    installed.  ``name`` defaults to its module name.  A plugin that fails
    (an unknown hook, a component name another plugin has) raises
    :class:`~restorekit.errors.RegistryError` and leaves the others as they were.

    >>> import restorekit, my_priors
    >>> restorekit.register_plugin(my_priors)                       # doctest: +SKIP
    >>> restorekit.restore("noisy.png", prior="my-prior")           # doctest: +SKIP
    """
    name = name or str(getattr(plugin, "__name__", None) or type(plugin).__name__).split(".")[0]
    host = get_host()
    if host.plugin(name) is not None and host.plugin(name).status == "loaded":
        raise RegistryError(f"a plugin named '{name}' is registered already; pass another name=")
    info = PluginInfo(name=name, module=getattr(plugin, "__name__", repr(plugin)), version=version)
    warned = len(host.warnings)
    try:
        ok = host.register(plugin, info)
    except PluginError as exc:  # RESTOREKIT_STRICT_PLUGINS is set
        ok, info.error = False, str(exc)
    if not ok:  # nothing changes: no failed row, no warning (the exception says it)
        if info in host.plugins:
            host.plugins.remove(info)
        del host.warnings[warned:]
        raise RegistryError(f"plugin '{name}' failed to load: {info.error}")
    return info


__all__ = [
    "ENTRY_POINT_GROUP",
    "BUILTIN_PLUGINS",
    "PluginHost",
    "PluginInfo",
    "PluginError",
    "get_host",
    "get_registry",
    "reset_host",
    "use_host",
    "register_plugin",
    "plugin_files",
    "PLUGINS_DIR_ENV",
    "KINDS",
]
