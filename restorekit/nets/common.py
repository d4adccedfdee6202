"""Building blocks shared by the generator networks (conv, activation, Concat)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

PAD_MODES = ("reflection", "zero")
DOWNSAMPLE_MODES = ("stride", "avg", "max")
ACTIVATIONS = ("leakyrelu", "relu", "elu", "none")


def conv(
    in_ch: int,
    out_ch: int,
    kernel: int,
    stride: int = 1,
    bias: bool = True,
    pad: str = "reflection",
    downsample: str = "stride",
) -> nn.Module:
    """A 2-D convolution that keeps the spatial size (up to ``stride``).

    ``pad="reflection"`` puts ``nn.ReflectionPad2d((kernel - 1) // 2)`` before an
    unpadded conv; ``pad="zero"`` uses the conv's own zero padding. With
    ``stride > 1`` and ``downsample`` "avg" or "max" the conv runs at stride 1
    and is followed by a ``stride`` x ``stride`` average or max pool.
    """
    if pad not in PAD_MODES:
        raise ValueError(f"pad must be one of {PAD_MODES}, got {pad!r}")
    if downsample not in DOWNSAMPLE_MODES:
        raise ValueError(f"downsample must be one of {DOWNSAMPLE_MODES}, got {downsample!r}")
    if kernel < 1 or stride < 1:
        raise ValueError(f"kernel and stride must be >= 1, got {kernel} and {stride}")

    pool: nn.Module | None = None
    if stride != 1 and downsample != "stride":
        pool = nn.AvgPool2d(stride, stride) if downsample == "avg" else nn.MaxPool2d(stride, stride)
        stride = 1

    amount = (kernel - 1) // 2
    layers: list[nn.Module] = []
    if pad == "reflection":
        if amount > 0:
            layers.append(nn.ReflectionPad2d(amount))
        layers.append(nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=0, bias=bias))
    else:
        layers.append(nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=amount, bias=bias))
    if pool is not None:
        layers.append(pool)
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)


def activation(name: str) -> nn.Module:
    """``"leakyrelu"`` (slope 0.2), ``"relu"``, ``"elu"`` or ``"none"`` (identity)."""
    key = name.lower()
    if key == "leakyrelu":
        return nn.LeakyReLU(0.2)
    if key == "relu":
        return nn.ReLU()
    if key == "elu":
        return nn.ELU()
    if key == "none":
        return nn.Identity()
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


def center_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Crop the centre ``height`` x ``width`` window of an NCHW tensor."""
    top = (x.shape[-2] - height) // 2
    left = (x.shape[-1] - width) // 2
    return x[..., top : top + height, left : left + width]


class Concat(nn.Module):
    """Run every branch on the same input, centre-crop the results to the
    smallest height/width and concatenate them on channels (first branch first)."""

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        if not branches:
            raise ValueError("Concat needs at least one branch")
        for i, branch in enumerate(branches):
            self.add_module(str(i), branch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [branch(x) for branch in self.children()]
        return concat_cropped(outs)


def concat_cropped(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate NCHW tensors on channels after centre-cropping to the smallest H/W."""
    height = min(t.shape[-2] for t in tensors)
    width = min(t.shape[-1] for t in tensors)
    cropped = [
        t if (t.shape[-2] == height and t.shape[-1] == width) else center_crop(t, height, width)
        for t in tensors
    ]
    return torch.cat(cropped, dim=1)
