"""One-line, printable messages: how restorekit.io names paths and problems.

Every :class:`~restorekit.errors.UsageError` the io package raises is one
line; these helpers quote paths with control characters escaped, squeeze
third-party exception texts onto a line and put OS errors in a few words.
They import nothing from the rest of restorekit.
"""

from __future__ import annotations

import os
import re
from typing import Any


def _quote(path: Any) -> str:
    """``'path'`` on one printable line: control characters and undecodable
    bytes (surrogate escapes) are shown as backslash escapes."""
    text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if not text.isprintable():
        text = "".join(
            c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
        )
    return "'" + text + "'"


def _one_line(text: object, limit: int = 160) -> str:
    line = " ".join(str(text).split())
    if not line.isprintable():  # control characters, lone surrogates
        line = "".join(
            c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in line
        )
    if len(line) > limit:
        line = line[: limit - 3].rstrip() + "..."
    return line


def _detail(exc: BaseException) -> str:
    name = type(exc).__name__
    # Pillow names the stream it could not identify: "<_io.BytesIO object at 0x...>"
    text = _one_line(re.sub(r"\s*<[\w.]+ object at 0x[0-9a-fA-F]+>", "", str(exc)))
    if text.startswith(name):  # pypng puts the class name in the message
        return text
    return f"{name}: {text}" if text else name


def _os_reason(exc: BaseException) -> str:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return _one_line(reason).lower()
