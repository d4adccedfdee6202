"""The networks of ``restorekit train``, under their old import path.

They live in :mod:`restorekit.nets.learned`, with every other network and
the one table of the architectures model.json names (:data:`ARCHITECTURES`);
this module re-exports them so ``from restorekit.learn.nets import ResUNet``
and ``build`` keep working.
"""

from __future__ import annotations

from ..nets.learned import ARCHITECTURES, ResUNet, st_clamp
from ..nets.learned import build_architecture as build
from ..nets.learned import register_architecture as register

__all__ = ["ARCHITECTURES", "ResUNet", "build", "register", "st_clamp"]
