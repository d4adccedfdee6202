"""The ``restorekit`` command line (see :mod:`.app`)."""

from .app import get_app, main

__all__ = ["get_app", "main"]
