"""The hooks a restorekit plugin may implement.

Every hook is a registration hook: restorekit calls it once when the plugin
manager is built, passing a :class:`~restorekit.registry.ComponentRegistry`
(or the CLI app).  Implement only the hooks you need, with
``@restorekit.hookimpl``; pluggy lets an implementation take fewer
arguments than the spec.  The classes registered subclass the kinds in
:mod:`restorekit.core` (one module per kind; :data:`restorekit.core.KINDS`
maps each kind to its base class and so to its hook).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import typer

    from .registry import ComponentRegistry

hookspec = pluggy.HookspecMarker("restorekit")
hookimpl = pluggy.HookimplMarker("restorekit")


@hookspec
def restorekit_register_degradations(registry: "ComponentRegistry") -> None:
    """Add :class:`~restorekit.Degradation` subclasses (forward models).

    Example::

        @hookimpl
        def restorekit_register_degradations(registry):
            registry.add(JpegDegradation)
    """


@hookspec
def restorekit_register_priors(registry: "ComponentRegistry") -> None:
    """Add :class:`~restorekit.Prior` subclasses (network, penalty or solver priors).

    Example::

        @hookimpl
        def restorekit_register_priors(registry):
            registry.add(TikhonovPrior)
    """


@hookspec
def restorekit_register_generators(registry: "ComponentRegistry") -> None:
    """Add :class:`~restorekit.Generator` subclasses (the networks behind ``--net``).

    Example::

        @hookimpl
        def restorekit_register_generators(registry):
            registry.add(TinyConvNet)
    """


@hookspec
def restorekit_register_metrics(registry: "ComponentRegistry") -> None:
    """Add :class:`~restorekit.Metric` subclasses (scores against a reference).

    Example::

        @hookimpl
        def restorekit_register_metrics(registry):
            registry.add(SharpnessMetric)
    """


@hookspec
def restorekit_register_stopping_rules(registry: "ComponentRegistry") -> None:
    """Add :class:`~restorekit.StoppingRule` subclasses (ground-truth-free stopping for ``--stop``).

    Example::

        @hookimpl
        def restorekit_register_stopping_rules(registry):
            registry.add(LossPlateau)
    """


@hookspec
def restorekit_register_decompositions(registry: "ComponentRegistry") -> None:
    """Add :class:`~restorekit.Decomposition` subclasses (``restorekit segment`` and ``decompose`` methods).

    Example::

        @hookimpl
        def restorekit_register_decompositions(registry):
            registry.add(MeanThreshold)
    """


@hookspec
def restorekit_register_networks(registry: "ComponentRegistry") -> None:
    """Add :class:`~restorekit.Network` subclasses (trained networks for ``invert`` and ``visualize``).

    Example::

        @hookimpl
        def restorekit_register_networks(registry):
            registry.add(MyClassifier)
    """


@hookspec
def restorekit_register_commands(app: "typer.Typer") -> None:
    """Add commands to the ``restorekit`` command line.

    Example::

        @hookimpl
        def restorekit_register_commands(app):
            @app.command()
            def hello(name: str = "world"):
                print(f"hello {name}")
    """
