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
