"""The component kinds and what every component has in common: the stable public facade of :mod:`restorekit.core`.

Plugin authors and the docs import these names from here (or from
``restorekit``); they are defined in the core, one module per job:

==============================================  =====================================
name                                            defined in
==============================================  =====================================
Params, describe_params, format_range           :mod:`restorekit.core.params`
Component                                       :mod:`restorekit.core.component`
Degradation                                     :mod:`restorekit.core.degradation`
Prior                                           :mod:`restorekit.core.prior`
Generator                                       :mod:`restorekit.core.generator`
Metric                                          :mod:`restorekit.core.metric`
StoppingRule                                    :mod:`restorekit.core.stopping_rule`
Decomposition                                   :mod:`restorekit.core.decomposition`
Network                                         :mod:`restorekit.core.network`
Problem, Geometry, LoopOptions                  :mod:`restorekit.core.problem` (the restoration pipeline's values)
Hint, Budget, Decomposed, DECOMPOSITION_TASKS   :mod:`restorekit.core.decomposed` (the decomposition pipeline's values)
KINDS                                           :mod:`restorekit.core` (kind -> base class)
==============================================  =====================================

A component is a class with a unique lowercase ``name``, a one-line
``summary``, a parameter schema ``Params`` (a strict pydantic model) and an
optional ``primary`` parameter that a spec may give without its key.
Plugins subclass one of :class:`Degradation`, :class:`Prior`,
:class:`Generator`, :class:`Metric`, :class:`StoppingRule`,
:class:`Decomposition` or :class:`Network` and register the class through
the matching hook (:data:`KINDS` names them).  Nothing here imports torch: listing components stays fast.
Tensors are ``(N, C, H, W)`` float tensors in ``[0, 1]``; NumPy images are
``(C, H, W)`` float arrays in ``[0, 1]`` unless stated otherwise.
"""

from __future__ import annotations

from .core import (
    DECOMPOSITION_TASKS,
    KINDS,
    Budget,
    Component,
    Decomposed,
    Decomposition,
    Degradation,
    Generator,
    Geometry,
    Hint,
    LoopOptions,
    Metric,
    Network,
    Params,
    Prior,
    Problem,
    StoppingRule,
    describe_params,
    format_range,
)

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
]
