"""The ResNet generator from the Deep Image Prior code (no down-sampling)."""

from __future__ import annotations

import torch
from torch import nn

from .common import activation, conv


class ResidualBlock(nn.Module):
    """``x + BN(conv(act(BN(conv(x)))))`` with bias-free 3x3 convs."""

    def __init__(self, channels: int, act: str = "leakyrelu", pad: str = "reflection") -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(channels, channels, 3, bias=False, pad=pad),
            nn.BatchNorm2d(channels),
            activation(act),
            conv(channels, channels, 3, bias=False, pad=pad),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def build_resnet(
    in_channels: int,
    out_channels: int,
    blocks: int = 8,
    channels: int = 32,
    act: str = "leakyrelu",
    pad: str = "reflection",
    need_sigmoid: bool = True,
) -> nn.Module:
    """conv(in->C, 3)-act, ``blocks`` residual blocks, conv(C->C, 3)-BN,
    conv(C->out, 3), sigmoid. Keeps the spatial size (``required_stride`` 1).

    ``build_resnet(1, 3, 8, 32)`` has 158,979 parameters.
    """
    if in_channels < 1 or out_channels < 1 or channels < 1 or blocks < 0:
        raise ValueError("channel counts must be positive and blocks >= 0")
    layers: list[nn.Module] = [conv(in_channels, channels, 3, bias=True, pad=pad), activation(act)]
    layers += [ResidualBlock(channels, act=act, pad=pad) for _ in range(blocks)]
    layers += [
        conv(channels, channels, 3, bias=True, pad=pad),
        nn.BatchNorm2d(channels),
        conv(channels, out_channels, 3, bias=True, pad=pad),
    ]
    if need_sigmoid:
        layers.append(nn.Sigmoid())
    model = nn.Sequential(*layers)
    model.required_stride = 1
    return model
