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
