"""What every component has in common: :class:`Component`.

A component is a class with a unique lowercase ``name``, a one-line
``summary``, a parameter schema ``Params`` (a strict pydantic model, see
:mod:`restorekit.core.params`) and an optional ``primary`` parameter that a
spec may give without its key.  Each kind of component subclasses it (one
module per kind in :mod:`restorekit.core`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import SpecError
from ..spec import Spec, format_spec, parse_spec
from .params import Params, describe_params, validate_params

__all__ = ["Component"]


class Component:
    """Common base: name, summary, parameter schema, primary parameter."""

    kind: ClassVar[str] = "component"
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params
    primary: ClassVar[str | None] = None

    def __init__(self, params: Params | None = None, **kwargs: Any) -> None:
        if params is None:
            params = type(self).validate(kwargs)
        elif kwargs:
            raise TypeError("pass either a Params instance or keyword arguments, not both")
        self.params = params

    # -- construction from specs -------------------------------------------
    @classmethod
    def validate(cls, raw: dict[str, Any]) -> Params:
        """Validate raw (string or typed) values into ``cls.Params``.

        Raises :class:`SpecError` with a one-line message naming the
        parameter and what it accepts.
        """
        return validate_params(cls, raw)

    @classmethod
    def from_spec(cls, spec: str | Spec) -> "Component":
        if isinstance(spec, str):
            spec = parse_spec(spec)
        raw = dict(spec.params)
        if spec.positional is not None:
            if cls.primary is None:
                raise SpecError(
                    f"{cls.kind} '{cls.name}' has no primary parameter; "
                    f"write {cls.name}:key=value (see: restorekit list {cls.kind} {cls.name})"
                )
            if cls.primary in raw:
                raise SpecError(f"parameter {cls.primary!r} given twice in {spec.text!r}")
            raw = {cls.primary: spec.positional, **raw}
        return cls(cls.validate(raw))

    # -- description ---------------------------------------------------------
    @property
    def spec(self) -> str:
        """Canonical spec with every parameter filled in."""
        return format_spec(self.name, self.params.model_dump())

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "kind": cls.kind,
            "name": cls.name,
            "summary": cls.summary,
            "primary": cls.primary,
            "params": describe_params(cls.Params),
        }

    def __repr__(self) -> str:
        return f"<{self.kind} {self.spec}>"
