"""Ground-truth-free stopping rules for the optimisation loop: ``--stop SPEC``.

Stopping rules are components like the others: subclasses of
:class:`~restorekit.StoppingRule` that plugins register through the
``restorekit_register_stopping_rules`` hook; restorekit's own (``eswmv``,
``esemv``) are in :mod:`restorekit.builtins.stopping`.  ``restorekit list
stopping`` shows them all.  This module turns a ``--stop`` value into one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .components import StoppingRule
from .errors import SpecError
from .spec import parse_spec
from .suggest import did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    from .registry import Registry

#: the ``--stop`` value that means no rule
NONE = "none"


def make_stopping_rule(spec: str | None, *, registry: "Registry | None" = None) -> StoppingRule | None:
    """``None``/``"none"`` -> no rule; else the registered rule ``name[:value|:k=v,...]``.

    ``registry`` defaults to the process-wide one (built-ins and installed plugins).
    """
    if spec is None:
        return None
    parsed = parse_spec(spec)
    if parsed.name == NONE and not parsed.params and parsed.positional is None:
        return None
    if registry is None:
        from .plugins import get_registry

        registry = get_registry()
    kind = StoppingRule.kind
    names = registry.names(kind)
    if parsed.name not in names:
        hint = did_you_mean(parsed.name, names + [NONE])
        raise SpecError(f"unknown {kind} '{parsed.name}'{hint} (valid: {', '.join(names + [NONE])})")
    return registry.create(kind, parsed)


__all__ = ["StoppingRule", "make_stopping_rule"]
