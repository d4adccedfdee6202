"""Layer decompositions of one image (``restorekit decompose --task``): the methods that split an image into
layers rather than segments.

dehaze.py     the dark channel prior's dehazing (He, Sun, Tang 2009/2010): scene, transmission, airlight
              (NumPy and SciPy only; the ``dark-channel`` decomposition, and double-dip's start for ``dehaze``)

The ``restorekit segment`` / ``decompose`` pipeline, the segmentation methods
and Double-DIP are in :mod:`restorekit.segment`; the decompositions are
registered in :mod:`restorekit.builtins.decompositions`.
"""

# restorekit.decompose(image, ...) calls restorekit.api.decompose (the Python API of ``restorekit decompose``).
from ..callable_module import make_callable  # noqa: E402

make_callable(__name__, "decompose")
del make_callable
