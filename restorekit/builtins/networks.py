"""Built-in networks to inspect (``restorekit invert``, ``restorekit visualize``).

A :class:`restorekit.Network` loads a trained ``torch.nn.Module`` (weights
loaded, eval mode, CPU) and may say the ``(C, H, W)`` it expects.
"""

from __future__ import annotations

from pydantic import Field

from restorekit import Network, Params, hookimpl


class Faces(Network):
    name = "faces"
    summary = ("A tiny face/non-face CNN on 25x25 gray images, trained in seconds on scikit-image's bundled "
               "lfw_subset on first use (cached in memory).")
    primary = "seed"

    class Params(Params):
        seed: int = Field(0, ge=0, description="seed of the training split, the weights and the steps")

    def load(self):
        from restorekit.inspect.faces import load_faces

        return load_faces(self.params.seed).net

    def input_shape(self):
        from restorekit.inspect.faces import SHAPE

        return SHAPE


@hookimpl
def restorekit_register_networks(registry):
    registry.add(Faces)
