"""The core: what a component is, the seven kinds of component, and the values they exchange.

A component is a class with a unique lowercase ``name``, a one-line
``summary``, a parameter schema ``Params`` (a strict pydantic model) and an
optional ``primary`` parameter that a spec may give without its key.
Plugins subclass one of the kinds below and register the class through the
matching hook (:data:`KINDS` names them; :mod:`restorekit.hookspecs` has
the hooks, :mod:`restorekit.registry` the tables they fill).

params.py         Params, the base of every schema; validation of spec values; describe_params, format_range
component.py      Component: name, summary, Params, primary, from_spec, spec, describe
degradation.py    Degradation      a forward model y = noise(A(x))                      (--degrade)
prior.py          Prior            what we believe about the image: network, penalty, solver (--prior)
generator.py      Generator        a network G(z) -> image, or a pixel parameterisation  (--net)
metric.py         Metric           a score against the clean image                       (--metric)
stopping_rule.py  StoppingRule     when to stop a fit without the clean image            (--stop)
decomposition.py  Decomposition    splits one image into parts             (restorekit segment, decompose)
network.py        Network          a trained network to look inside         (restorekit invert, visualize)
problem.py        Problem, Geometry, LoopOptions: the restoration pipeline's (restorekit.run) values
decomposed.py     Hint, Budget, Decomposed, DECOMPOSITION_TASKS: the decomposition pipeline's values

The pipelines build these values; they live here because the interfaces
receive them, and the core imports no pipeline.  Nothing here imports torch
at import time (listing components stays fast).  Tensors are
``(N, C, H, W)`` float tensors in ``[0, 1]``; NumPy images are ``(C, H, W)`` float arrays in
``[0, 1]`` unless stated otherwise.  Plugin authors import all of it from
``restorekit`` (or :mod:`restorekit.components`, the same names).
"""

from __future__ import annotations

from .component import Component
from .decomposed import DECOMPOSITION_TASKS, Budget, Decomposed, Hint
from .decomposition import Decomposition
from .degradation import Degradation
from .generator import Generator
from .metric import Metric
from .network import Network
from .params import Params, describe_params, format_range
from .prior import Prior
from .problem import Geometry, LoopOptions, Problem
from .stopping_rule import StoppingRule

__all__ = [
    "Params",
    "Component",
    "Degradation",
    "Prior",
    "Generator",
    "Metric",
    "StoppingRule",
    "Decomposition",
    "Decomposed",
    "Hint",
    "Budget",
    "DECOMPOSITION_TASKS",
    "Network",
    "LoopOptions",
    "Geometry",
    "Problem",
    "KINDS",
    "describe_params",
    "format_range",
]

#: kind -> base class; each kind's registration hook is restorekit_register_<kind>s (spaces as _)
KINDS: dict[str, type[Component]] = {
    "degradation": Degradation,
    "prior": Prior,
    "generator": Generator,
    "metric": Metric,
    "stopping rule": StoppingRule,
    "decomposition": Decomposition,
    "network": Network,
}
