"""Component specs: ``name``, ``name:value`` and ``name:key=value,key=value``.

A spec names a component and sets some of its parameters.  The first item
after the colon may omit its key; it then sets the component's *primary*
parameter (``bernoulli:0.5`` is ``bernoulli:fraction=0.5``).  Values are
strings here; the component's parameter schema validates and converts them.
Commas inside brackets do not split, so lists read ``channels=[16,32,64]``.
Numeric fractions such as ``1/30`` are accepted wherever a number is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_FRACTION = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*/\s*(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Spec:
    """A parsed spec: the component name and its raw parameters."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    positional: Any = None  # the value given without a key, if any
    text: str = ""

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.text or format_spec(self.name, self.params)


def _split_top_level(text: str, sep: str = ",") -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
            if depth < 0:
                raise SpecError(f"unbalanced bracket in {text!r}")
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise SpecError(f"unbalanced bracket in {text!r}")
    parts.append("".join(cur))
    return parts


def parse_value(raw: str) -> Any:
    """Turn one raw value into str, list or float-as-string (for fractions)."""
    raw = raw.strip()
    if raw.startswith("[") and raw.endswith("]"):
        inner = raw[1:-1].strip()
        return [] if not inner else [parse_value(v) for v in _split_top_level(inner)]
    m = _FRACTION.match(raw)
    if m:
        den = float(m.group(2))
        if den == 0:
            raise SpecError(f"division by zero in value {raw!r}")
        return repr(float(m.group(1)) / den)
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


def parse_spec(text: str) -> Spec:
    """Parse ``name[:value|:key=value,...]`` into a :class:`Spec`.

    >>> parse_spec("gaussian:sigma=25").params
    {'sigma': '25'}
    >>> parse_spec("bernoulli:0.5").positional
    '0.5'
    """
    if not isinstance(text, str) or not text.strip():
        raise SpecError("empty component spec; expected NAME or NAME:key=value")
    text = text.strip()
    name, sep, rest = text.partition(":")
    name = name.strip().lower()
    if not _NAME.match(name):
        raise SpecError(
            f"invalid component name {name!r} in {text!r}: use lowercase letters, digits, '-' or '_'"
        )
    params: dict[str, Any] = {}
    positional = None
    if sep and not rest.strip():
        raise SpecError(f"nothing after ':' in {text!r}; write {name} or {name}:key=value")
    if rest.strip():
        for i, item in enumerate(_split_top_level(rest)):
            item = item.strip()
            if not item:
                raise SpecError(f"empty item in {text!r} (two commas in a row?)")
            key, eq, value = item.partition("=")
            if not eq:
                if i != 0 or "=" in item:
                    raise SpecError(
                        f"{item!r} in {text!r} has no key: only the first value may omit "
                        "'key=' (it sets the primary parameter)"
                    )
                positional = parse_value(item)
                continue
            key = key.strip().replace("-", "_")
            if not re.match(r"^[a-z_][a-z0-9_]*$", key):
                raise SpecError(f"invalid parameter name {key!r} in {text!r}")
            if key in params:
                raise SpecError(f"parameter {key!r} given twice in {text!r}")
            params[key] = parse_value(value)
    return Spec(name=name, params=params, positional=positional, text=text)


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    if value is None:
        return "none"
    return str(value)


def format_spec(name: str, params: dict[str, Any]) -> str:
    """The canonical text form: ``name:key=value,...`` (``name`` if no params)."""
    if not params:
        return name
    return name + ":" + ",".join(f"{k}={format_value(v)}" for k, v in params.items())
