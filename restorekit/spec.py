"""Component specs: ``name``, ``name:value`` and ``name:key=value,key=value``.

A spec names a component and sets some of its parameters.  The first item
after the colon may omit its key; it then sets the component's *primary*
parameter (``bernoulli:0.5`` is ``bernoulli:fraction=0.5``).  Values are
strings here; the component's parameter schema validates and converts them.
Commas inside brackets do not split, so lists read ``channels=[16,32,64]``.
Numeric fractions such as ``1/30`` are accepted wherever a number is.

A value in single or double quotes is taken literally: ``,``, ``=``, ``:``
and brackets inside it are ordinary characters (``mask:'my,file.png'``,
``mask:path="a=b.png"``, ``text:"Hello, world",font_size=20``), a quoted
``1/2`` stays the text ``1/2`` and a quoted ``'none'`` the text ``none``.  A
quote opens a quoted value only as the first character of a value (a
parameter value, the primary value or a list entry); elsewhere it is an
ordinary character (``text:it's``).  Inside quotes the quote character is
written twice (``'it''s'``).  Backslashes are never special, so Windows paths
need no escaping.  :func:`format_value` quotes exactly the strings that would
not read back unchanged, so ``parse_spec(format_spec(name, params))`` gives
``params`` back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_KEY = re.compile(r"^[a-z_][a-z0-9_]*$")
_FRACTION = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*/\s*(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*$")
_QUOTES = "'\""
#: characters that make an unquoted string read differently: formatted strings
#: containing any of them are quoted
_SPECIAL = frozenset(",=[]()'\"")


class QuotedStr(str):
    """A value that was quoted in the spec: taken literally (never ``none``)."""

    __slots__ = ()


@dataclass(frozen=True)
class Spec:
    """A parsed spec: the component name and its raw parameters."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    positional: Any = None  # the value given without a key, if any
    text: str = ""

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.text or format_spec(self.name, self.params)


class _Reader:
    """A cursor over the text after ``name:`` that reads items and values."""

    def __init__(self, text: str, full: str) -> None:
        self.text = text
        self.full = full
        self.i = 0

    def error(self, what: str) -> SpecError:
        return SpecError(f"{what} in {self.full!r}")

    def peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def skip_space(self) -> None:
        while self.i < len(self.text) and self.text[self.i].isspace():
            self.i += 1

    def value(self, in_list: bool) -> Any:
        """A quoted string, a ``[...]`` list or an unquoted scalar, up to a separator."""
        self.skip_space()
        ch = self.peek()
        if ch and ch in _QUOTES:
            result: Any = self.quoted()
        elif ch == "[":
            result = self.list()
        else:
            return self.scalar(in_list)
        self.skip_space()
        nxt = self.peek()
        if nxt and nxt != "," and not (in_list and nxt == "]"):
            closing = "']'" if ch == "[" else "closing quote"
            if nxt in "])":
                raise self.error(f"unbalanced bracket after {closing}")
            raise self.error(
                f"unexpected {nxt!r} after {closing} (a quoted value or list must be the whole value)"
            )
        return result

    def quoted(self) -> QuotedStr:
        quote = self.text[self.i]
        start = self.i
        self.i += 1
        out = []
        while True:
            j = self.text.find(quote, self.i)
            if j < 0:
                raise self.error(
                    f"unterminated quote: the {quote} before {self.text[start + 1:start + 13]!r} is never "
                    f"closed (inside quotes write {quote} as {quote}{quote})"
                )
            out.append(self.text[self.i:j])
            self.i = j + 1
            if self.peek() == quote:  # a doubled quote is one literal quote
                out.append(quote)
                self.i += 1
                continue
            return QuotedStr("".join(out))

    def list(self) -> list[Any]:
        self.i += 1  # '['
        items: list[Any] = []
        self.skip_space()
        if self.peek() == "]":
            self.i += 1
            return items
        while True:
            items.append(self.value(in_list=True))
            ch = self.peek()
            if ch == ",":
                self.i += 1
            elif ch == "]":
                self.i += 1
                return items
            else:
                raise self.error("unbalanced bracket")

    def scalar(self, in_list: bool) -> str:
        """Unquoted text up to a ',' (or a list's ']') outside any brackets."""
        start, depth = self.i, 0
        while self.i < len(self.text):
            ch = self.text[self.i]
            if ch in "[(":
                depth += 1
            elif ch in "])":
                if depth == 0 and in_list and ch == "]":
                    break
                depth -= 1
                if depth < 0:
                    raise self.error("unbalanced bracket")
            elif ch == "," and depth == 0:
                break
            self.i += 1
        if depth:
            raise self.error("unbalanced bracket")
        raw = self.text[start:self.i].strip()
        m = _FRACTION.match(raw)
        if m:
            den = float(m.group(2))
            if den == 0:
                raise self.error(f"division by zero in value {raw!r}")
            return repr(float(m.group(1)) / den)
        return raw


def parse_value(raw: str) -> Any:
    """Turn one raw value into str, list or float-as-string (for fractions).

    A quoted value comes back without its quotes (as :class:`QuotedStr`).
    """
    reader = _Reader(raw, raw)
    value = reader.value(in_list=False)
    if reader.peek():
        raise reader.error(f"unexpected {reader.peek()!r} (quote values that contain ',')")
    return value


def parse_spec(text: str) -> Spec:
    """Parse ``name[:value|:key=value,...]`` into a :class:`Spec`.

    >>> parse_spec("gaussian:sigma=25").params
    {'sigma': '25'}
    >>> parse_spec("bernoulli:0.5").positional
    '0.5'
    >>> parse_spec("mask:'my,file.png'").positional
    'my,file.png'
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
    if not rest.strip():
        return Spec(name=name, params=params, positional=positional, text=text)
    reader = _Reader(rest, text)
    index = 0
    while True:
        reader.skip_space()
        if reader.peek() in ("", ","):
            raise SpecError(f"empty item in {text!r} (two commas in a row?)")
        # a key is the text before an '=' that comes before any quote, bracket or ','
        start = reader.i
        j = start
        while j < len(rest) and rest[j] not in "=,[]()'\"":
            j += 1
        if j < len(rest) and rest[j] == "=":
            key = rest[start:j].strip().replace("-", "_")
            if not _KEY.match(key):
                raise SpecError(f"invalid parameter name {key!r} in {text!r}")
            if key in params:
                raise SpecError(f"parameter {key!r} given twice in {text!r}")
            reader.i = j + 1
            params[key] = reader.value(in_list=False)
        else:
            value = reader.value(in_list=False)
            if index != 0:
                item = rest[start:reader.i].strip()
                raise SpecError(
                    f"{item!r} in {text!r} has no key: only the first value may omit "
                    "'key=' (it sets the primary parameter); quote a value that contains "
                    f"',' or '=': {name}:'a,b' (on a shell command line: \"{name}:'a,b'\")"
                )
            positional = value
        index += 1
        if not reader.peek():
            break
        reader.i += 1  # the ','
    return Spec(name=name, params=params, positional=positional, text=text)


def _quote(text: str) -> str:
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    return "'" + text.replace("'", "''") + "'"


def _needs_quotes(text: str) -> bool:
    return (
        not text
        or text != text.strip()
        or any(ch in _SPECIAL for ch in text)
        or _FRACTION.match(text) is not None  # would read as a number
        or text.lower() in ("none", "null")  # would read as "no value" for optional parameters
    )


def format_value(value: Any) -> str:
    """The spec text of one value; strings that would not read back unchanged are quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    if value is None:
        return "none"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    return _quote(text) if _needs_quotes(text) else text


def format_spec(name: str, params: dict[str, Any]) -> str:
    """The canonical text form: ``name:key=value,...`` (``name`` if no params)."""
    if not params:
        return name
    return name + ":" + ",".join(f"{k}={format_value(v)}" for k, v in params.items())
