"""Packages that are also API functions: ``restorekit.segment``, ``restorekit.decompose`` and ``restorekit.batch``.

``restorekit.segment`` is the package restorekit/segment/ (importing
``restorekit.segment.pipeline`` makes it the attribute, whatever was there)
and the function :func:`restorekit.api.segment`; the package's module object
is made callable, so ``restorekit.segment(image, ...)`` calls the function
whichever was imported first.  Importing the package imports nothing heavy.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class CallableModule(types.ModuleType):
    """A package module that calls one :mod:`restorekit.api` function when called."""

    api_name: str = ""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from . import api

        return getattr(api, self.api_name)(*args, **kwargs)


def make_callable(module_name: str, api_name: str) -> None:
    """Let the module ``module_name`` (already in ``sys.modules``) be called as ``restorekit.api.<api_name>``."""
    module = sys.modules[module_name]
    module.__class__ = CallableModule
    module.api_name = api_name
