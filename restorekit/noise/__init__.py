"""Real noise: a blind noise model estimated from the image (:mod:`.model`) and the denoisers that use it."""

from .model import NoiseModel, estimate

__all__ = ["NoiseModel", "estimate"]
