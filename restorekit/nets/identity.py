"""The identity parameterisation: the image is the parameter."""

from __future__ import annotations

import torch
from torch import nn


class ImageParameter(nn.Module):
    """Holds a ``(1, C, H, W)`` image as its only parameter; ignores its input."""

    required_stride = 1

    def __init__(self, init: torch.Tensor) -> None:
        super().__init__()
        if init is None:
            raise ValueError("the identity generator needs an initial image")
        self.image = nn.Parameter(init.detach().clone().float())

    def forward(self, z: torch.Tensor | None = None) -> torch.Tensor:
        return self.image
