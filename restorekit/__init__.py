"""restorekit: single-image restoration by optimisation (Deep Image Prior and friends).

Importing restorekit does not import torch; :func:`restore` does.

>>> import restorekit
>>> result = restorekit.restore("noisy.png")  # an image is taken as degraded: its noise is estimated  # doctest: +SKIP
>>> result = restorekit.restore("photo.png", mode="benchmark", degrade="bernoulli:0.5", prior="dip", net="skip")  # doctest: +SKIP
>>> result.metrics["psnr"]  # the benchmark scores against the clean photo  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .components import (
    Budget,
    Decomposed,
    Decomposition,
    Degradation,
    Generator,
    Geometry,
    LoopOptions,
    Hint,
    Metric,
    Network,
    Params,
    Prior,
    Problem,
    StoppingRule,
)
from .errors import RegistryError, RestoreError, RestoreKitError, SpecError, UsageError
from .hookspecs import hookimpl

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from .api import Result, restore

__all__ = [
    "__version__",
    "hookimpl",
    "Params",
    "Degradation",
    "Prior",
    "Generator",
    "Metric",
    "StoppingRule",
    "Decomposition",
    "Decomposed",
    "Hint",
    "Budget",
    "Network",
    "LoopOptions",
    "Problem",
    "Geometry",
    "restore",
    "Result",
    "RestoreKitError",
    "UsageError",
    "RestoreError",
    "RegistryError",
    "SpecError",
]


def __getattr__(name: str) -> Any:
    if name in ("restore", "Result"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'restorekit' has no attribute {name!r}")
