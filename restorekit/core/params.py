"""Parameter schemas: the :class:`Params` base, its validation from spec values, and its description.

Every component's ``Params`` is a strict pydantic model (unknown keys are
errors, values are frozen).  :func:`validate_params` turns the raw values of
a spec (text, or already typed) into one, with a one-line :class:`SpecError`
naming the parameter when they do not fit; :func:`describe_params` and
:func:`format_range` render a schema for ``restorekit list`` and the
component reference (docs/plugins/components.md).  Nothing here imports torch.
"""

from __future__ import annotations

import decimal
import math
import typing
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

import pydantic
from pydantic import BaseModel, ConfigDict

from ..errors import SpecError
from ..spec import QuotedStr, format_value

if TYPE_CHECKING:  # pragma: no cover
    from .component import Component

__all__ = ["Params", "describe_params", "format_range", "validate_params", "all_defaults"]


class Params(BaseModel):
    """Base of every parameter schema: unknown keys are errors, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _admits_none(annotation: Any) -> bool:
    if annotation is None or annotation is type(None):
        return True
    origin = get_origin(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", object)):
        return any(_admits_none(a) for a in get_args(annotation))
    return False


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return "choice"
    if origin in (list, tuple):
        args = get_args(annotation)
        return f"list[{_type_name(args[0])}]" if args else "list"
    if origin is not None and get_args(annotation):
        names = [_type_name(a) for a in get_args(annotation) if a is not type(None)]
        return " | ".join(dict.fromkeys(names))
    if annotation is type(None):
        return "none"
    return getattr(annotation, "__name__", str(annotation))


def _choices(annotation: Any) -> list[Any] | None:
    origin = get_origin(annotation)
    if origin is Literal:
        return list(get_args(annotation))
    if origin is not None:
        for a in get_args(annotation):
            c = _choices(a)
            if c:
                return c
    return None


def describe_params(params_cls: type[BaseModel]) -> list[dict[str, Any]]:
    """One dict per parameter: name, type, default, range, choices, help."""
    rows = []
    for fname, f in params_cls.model_fields.items():
        rng = {}
        for m in f.metadata:
            for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
                v = getattr(m, attr, None)
                if v is not None:
                    rng[sym] = v
        default = None if f.is_required() else f.get_default(call_default_factory=True)
        rows.append(
            {
                "name": fname,
                "type": _type_name(f.annotation),
                "default": default,
                "required": f.is_required(),
                "range": rng,
                "choices": _choices(f.annotation),
                "help": f.description or "",
            }
        )
    return rows


def format_range(rng: dict[str, Any]) -> str:
    if not rng:
        return ""
    lo = next(((s, v) for s, v in rng.items() if s in (">=", ">")), None)
    hi = next(((s, v) for s, v in rng.items() if s in ("<=", "<")), None)
    if lo and hi:
        left = "[" if lo[0] == ">=" else "("
        right = "]" if hi[0] == "<=" else ")"
        return f"{left}{lo[1]}, {hi[1]}{right}"
    s, v = lo or hi
    return f"{s} {v}"


def all_defaults(params_cls: type[BaseModel]) -> bool:
    """Whether every parameter of the schema has a default (``Params()`` needs no argument)."""
    return all(not f.is_required() for f in params_cls.model_fields.values())


def _pydantic_message(kind: str, name: str, err: dict[str, Any], fields: dict) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ())) or "?"
    msg = err.get("msg", "invalid value")
    if err.get("type") == "value_error" and msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]  # a field validator's own message
    got = err.get("input")
    where = f"{kind} '{name}': parameter '{loc}'"
    if err.get("type") == "missing":
        return f"{where} is required"
    return f"{where}: {msg[0].lower() + msg[1:]} (got {got!r})"


def _plain(value: Any) -> Any:
    """Quoted spec strings as plain ``str`` (also inside lists) for pydantic."""
    if isinstance(value, QuotedStr):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


#: pydantic errors of number bounds (and of allow_inf_nan=False), which nan and inf may fail
_BOUND_ERRORS = frozenset(
    {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "multiple_of", "finite_number"}
)


def _nonfinite_text(value: Any) -> bool:
    """True for a float, or the text of one, that is nan or infinite."""
    if isinstance(value, bool) or not isinstance(value, (str, float, int)):
        return False
    try:
        return not math.isfinite(float(value))
    except (ValueError, OverflowError):
        return False


def _finite_message(cls: type["Component"], key: str, raw: Any) -> str:
    return f"{cls.kind} '{cls.name}': parameter '{key}' must be a finite number (got {format_value(raw)!r})"


def _all_finite(value: Any) -> bool:
    """False if ``value`` is, or contains (lists, tuples, dicts, models), a nan or inf float."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, decimal.Decimal):
        return value.is_finite()
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(_all_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    if isinstance(value, BaseModel):
        return all(_all_finite(getattr(value, k, None)) for k in type(value).model_fields)
    return True


def validate_params(cls: type["Component"], raw: dict[str, Any]) -> Params:
    """Validate raw (string or typed) values into ``cls.Params`` (what :meth:`Component.validate` does).

    Raises :class:`SpecError` with a one-line message naming the parameter
    and what it accepts.
    """
    fields = cls.Params.model_fields
    unknown = [k for k in raw if k not in fields]
    if unknown:
        from ..suggest import did_you_mean

        valid = ", ".join(fields) or "(none)"
        key = unknown[0]
        raise SpecError(
            f"{cls.kind} '{cls.name}' has no parameter '{key}'{did_you_mean(key, fields)} (valid: {valid})"
        )
    cleaned = {}
    for k, v in raw.items():
        if (
            isinstance(v, str)
            and not isinstance(v, QuotedStr)  # a quoted 'none' is the text none
            and v.strip().lower() in ("none", "null")
            and _admits_none(fields[k].annotation)
        ):
            v = None
        cleaned[k] = _plain(v)
    try:
        params = cls.Params(**cleaned)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        key = (first.get("loc") or ("?",))[0]
        if first.get("type") in _BOUND_ERRORS and _nonfinite_text(first.get("input")) and key in raw:
            # nan fails every bound; say what is wrong with it rather than "must be >= 0"
            raise SpecError(_finite_message(cls, str(key), raw[key])) from None
        raise SpecError(_pydantic_message(cls.kind, cls.name, first, fields)) from None
    # Every float the user set must be finite, whatever the schema says: a
    # bound such as ``ge=0`` lets inf through, and ``1e309`` reads as inf.
    # The validated values are checked (not the raw text), so a str
    # parameter may still be the text "inf".
    for k in raw:
        if not _all_finite(getattr(params, k, None)):
            raise SpecError(_finite_message(cls, k, raw[k]))
    return params
