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
    from .api import (
        BatchResult,
        CompareResult,
        EvaluateResult,
        Result,
        SegmentResult,
        TrainResult,
        batch,
        compare,
        decompose,
        evaluate,
        restore,
        segment,
        train,
    )
    from .plugins import register_plugin

#: the Python API (restorekit/api.py), imported on first use: importing restorekit imports no torch
_API = ("restore", "Result", "compare", "CompareResult", "segment", "decompose", "SegmentResult", "batch",
        "BatchResult", "train", "TrainResult", "evaluate", "EvaluateResult")

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
    "compare",
    "CompareResult",
    "segment",
    "decompose",
    "SegmentResult",
    "batch",
    "BatchResult",
    "train",
    "TrainResult",
    "evaluate",
    "EvaluateResult",
    "register_plugin",
    "RestoreKitError",
    "UsageError",
    "RestoreError",
    "RegistryError",
    "SpecError",
]


def __getattr__(name: str) -> Any:
    if name in ("segment", "batch"):  # also packages (restorekit/segment/, restorekit/batch/): callable ones
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    if name in _API:
        from . import api

        return getattr(api, name)
    if name == "register_plugin":
        from .plugins import register_plugin

        return register_plugin
    raise AttributeError(f"module 'restorekit' has no attribute {name!r}")
