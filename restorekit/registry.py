"""Name -> component class, one table per kind, with the plugin behind each.

Plugins receive a :class:`ComponentRegistry` bound to one kind and to their
own plugin name and call :meth:`ComponentRegistry.add`; the class is checked
there, so a broken component fails with the plugin's name in the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel

from .core import KINDS, Component
from .errors import RegistryError
from .spec import Spec, parse_spec
from .suggest import did_you_mean

_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


@dataclass(frozen=True)
class Entry:
    """A registered component class and who provided it."""

    cls: type[Component]
    plugin: str
    version: str | None = None

    @property
    def name(self) -> str:
        return self.cls.name

    @property
    def kind(self) -> str:
        return self.cls.kind


def check_component(cls: Any, kind: str, plugin: str) -> None:
    """Raise :class:`RegistryError` unless ``cls`` is a well-formed component of ``kind``."""
    base = KINDS[kind]
    what = f"plugin '{plugin}'"
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise RegistryError(f"{what}: {cls!r} is not a subclass of restorekit.{base.__name__}")
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryError(
            f"{what}: {cls.__name__}.name must be lowercase letters, digits and '-' (got {name!r})"
        )
    summary = getattr(cls, "summary", "")
    if not isinstance(summary, str) or not summary.strip() or "\n" in summary.strip():
        raise RegistryError(f"{what}: {kind} '{name}' needs a one-line summary")
    params = getattr(cls, "Params", None)
    if not (isinstance(params, type) and issubclass(params, BaseModel)):
        raise RegistryError(f"{what}: {kind} '{name}'.Params must be a pydantic model")
    if params.model_config.get("extra") != "forbid":
        raise RegistryError(
            f"{what}: {kind} '{name}'.Params must forbid unknown keys (subclass restorekit.Params)"
        )
    if cls.primary is not None and cls.primary not in params.model_fields:
        raise RegistryError(
            f"{what}: {kind} '{name}' names primary parameter '{cls.primary}', which Params lacks"
        )


class Registry:
    """Every registered component, per kind."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}

    def add(self, entry: Entry) -> None:
        table = self._tables[entry.kind]
        other = table.get(entry.name)
        if other is not None:
            if other.cls is entry.cls:
                return
            raise RegistryError(
                f"{entry.kind} '{entry.name}' is provided by both plugin '{other.plugin}' "
                f"and plugin '{entry.plugin}'; uninstall or disable one "
                f"(RESTOREKIT_DISABLE_PLUGINS={entry.plugin})"
            )
        table[entry.name] = entry

    def names(self, kind: str) -> list[str]:
        return sorted(self._tables[kind])

    def entries(self, kind: str | None = None) -> list[Entry]:
        kinds = [kind] if kind else list(KINDS)
        return [self._tables[k][n] for k in kinds for n in sorted(self._tables[k])]

    def get(self, kind: str, name: str) -> Entry:
        if kind not in self._tables:
            raise RegistryError(f"unknown component kind {kind!r} (valid: {', '.join(KINDS)})")
        table = self._tables[kind]
        if name in table:
            return table[name]
        valid = ", ".join(sorted(table)) or "(none registered)"
        hint = did_you_mean(name, table, cutoff=0.5)
        raise RegistryError(f"unknown {kind} '{name}'{hint} (valid: {valid})")

    def create(self, kind: str, spec: str | Spec) -> Component:
        """Parse ``spec`` and build the component instance it names."""
        if isinstance(spec, str):
            spec = parse_spec(spec)
        return self.get(kind, spec.name).cls.from_spec(spec)

    def provider(self, component: Component) -> Entry:
        return self.get(component.kind, component.name)


class ComponentRegistry:
    """What a registration hook receives: ``registry.add(MyComponent)``.

    Bound to one kind and one plugin; additions are staged and committed
    together when the hook returns, so a plugin that fails half-way leaves
    nothing behind.
    """

    def __init__(self, kind: str, plugin: str, version: str | None = None) -> None:
        self.kind = kind
        self.plugin = plugin
        self.version = version
        self.staged: list[Entry] = []

    def add(self, cls: type[Component]) -> type[Component]:
        """Register ``cls``; returns it, so it also works as a class decorator."""
        check_component(cls, self.kind, self.plugin)
        if any(e.cls.name == cls.name for e in self.staged):
            raise RegistryError(f"plugin '{self.plugin}' registers {self.kind} '{cls.name}' twice")
        self.staged.append(Entry(cls=cls, plugin=self.plugin, version=self.version))
        return cls


def call_accepting(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` with only the keywords ``fn`` accepts (a plugin written before a
    keyword existed keeps working, as pluggy lets hook implementations take fewer arguments)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(*args, **kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn(*args, **kwargs)
    return fn(*args, **{k: v for k, v in kwargs.items() if k in params})
