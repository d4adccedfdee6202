"""Looking inside a trained network: feature inversion and activation maximisation (``restorekit invert``,
``restorekit visualize``; docs/inspection.md).

``model``
    MODEL -> :class:`~restorekit.inspect.model.Inspected`: a TorchScript file (checked to be one; a pickle is
    refused, never unpickled), a restorekit model folder (safetensors) or a registered network; its layers by
    name and a differentiable function for each (forward hooks, or the TorchScript graph cut at the layer).
``optimize``
    :func:`~restorekit.inspect.optimize.invert` and :func:`~restorekit.inspect.optimize.visualize`: Adam on
    the image, parameterised by the prior's role (``dip``: a generator's output; ``tv``: pixels + penalty;
    ``none``: pixels).
``outputs``
    the output folder's files (one image per prior, the side-by-side picture, the loss curves, ``inspect.json``).
``record``
    ``inspect.json``'s layout (:class:`~restorekit.inspect.record.InvertRecord`,
    :class:`~restorekit.inspect.record.VisualizeRecord`), published in docs/inspect-record.md.
``faces``
    the built-in ``faces`` network: a tiny CNN trained in seconds on scikit-image's bundled ``lfw_subset``.

Nothing here imports torch at import time of the package.
"""
