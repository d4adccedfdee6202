"""Plain helpers shared by the CLI tests (fixtures live in conftest.py).

Import as ``from tests.helpers import invoke, one_line_error`` (the suite runs
as ``python -m pytest`` from the repository root, like tests/test_golden.py's
``from tests.golden.cases import ...``).
"""

from __future__ import annotations

from collections.abc import Iterable

from typer.testing import CliRunner

from restorekit import cli


def invoke(args: Iterable[object], input: str | None = None):
    """Run the restorekit CLI in this process; every argument is passed through ``str``.

    Exceptions propagate (``catch_exceptions=False``) so a traceback fails the test.
    """
    return CliRunner().invoke(cli.get_app(), [str(a) for a in args], input=input, catch_exceptions=False)


def one_line_error(result, fragment: str, code: int = 2) -> None:
    """The command exited with ``code`` and printed exactly one ``error:`` line containing ``fragment``."""
    assert result.exit_code == code, result.output
    text = result.stderr.strip()
    assert "Traceback" not in result.output
    assert text.count("\n") == 0, text
    assert text.startswith("error:"), text
    assert fragment in text, text


def digests(*paths) -> dict[str, str]:
    """SHA-256 of every file under ``paths`` (files, or folders walked recursively, hidden files included),
    keyed by path: compare before and after a command to show it changed nothing there."""
    import hashlib
    from pathlib import Path

    out: dict[str, str] = {}
    for root in map(Path, paths):
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def signal_on_call(monkeypatch, owner, name: str, call: int, signum=None) -> list[int]:
    """Replace ``owner.name`` (a module's function) by one that sends ``signum`` (default SIGINT) to this
    process at its ``call``-th call, before calling the original: a signal at a chosen moment of a command
    run in-process.  Returns the call counter (a one-item list)."""
    import os
    import signal
    import time

    real = getattr(owner, name)
    calls = [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == call:
            os.kill(os.getpid(), signal.SIGINT if signum is None else signum)
            time.sleep(0.2)  # the handler runs before the original does
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls
