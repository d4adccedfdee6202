"""Exceptions that carry a one-line, user-facing message.

The CLI turns :class:`UsageError` into exit code 2 and :class:`RestoreError`
into exit code 1, printing only the message (``--debug`` adds the traceback).
"""

from __future__ import annotations


class RestoreKitError(Exception):
    """Base class for every error restorekit raises on purpose."""

    exit_code = 1


class UsageError(RestoreKitError):
    """The user asked for something invalid: bad spec, missing file, ..."""

    exit_code = 2


class RestoreError(RestoreKitError):
    """A runtime failure that is not the user's fault in the request itself."""

    exit_code = 1


class RegistryError(UsageError):
    """Unknown or duplicate component names, invalid component classes."""


class SpecError(UsageError):
    """A component spec (``name:key=value``) that does not parse or validate."""


class ComponentFailure(RestoreError):
    """A component's own code raised while the run called it (a plugin bug, not the user's).

    ``component`` is the instance and ``method`` the method that failed;
    the message names them, and the pipeline adds the plugin that provides
    the component before it reaches the user.
    """

    def __init__(self, component: object, method: str, exc: BaseException) -> None:
        self.component = component
        self.method = method
        self.cause = exc
        super().__init__(f"{describe_component(component)} failed in {method}(): {one_line(exc)}")

    def with_plugin(self, plugin: str | None) -> "ComponentFailure":
        if plugin:
            self.args = (
                f"{describe_component(self.component)} from plugin '{plugin}' failed in "
                f"{self.method}(): {one_line(self.cause)}",
            )
        return self


def describe_component(component: object) -> str:
    return f"{getattr(component, 'kind', 'component')} '{getattr(component, 'name', type(component).__name__)}'"


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` for an exception."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def error_line(exc: BaseException) -> str:
    """The one line a user is shown for a failure that does not stop the others (a batch image, a
    compared method): restorekit's own message, or ``internal error: Type: message`` for anything else."""
    if isinstance(exc, RestoreKitError):
        lines = str(exc).strip().splitlines()
        return lines[0] if lines else type(exc).__name__
    return f"internal error: {one_line(exc)}"
