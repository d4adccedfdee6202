"""Real noise: a blind noise model estimated from the image (:mod:`.estimate`) and the denoisers that use it."""

from .estimate import NoiseModel, estimate

__all__ = ["NoiseModel", "estimate"]
