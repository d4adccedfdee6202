"""A U-Net generator (max-pool encoder, upsample/deconv decoder with cropped skips)."""

from __future__ import annotations

import torch
from torch import nn

from .common import concat_cropped, conv

UNET_UPSAMPLE = ("deconv", "bilinear", "nearest")
UNET_NORMS = ("instance", "batch", "none")


def _norm(name: str, channels: int) -> nn.Module:
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {UNET_NORMS}, got {name!r}")


def _double_conv(c_in: int, c_out: int, norm: str, pad: str) -> nn.Sequential:
    """Two conv3x3-norm-ReLU (norm "none" gives conv-ReLU)."""
    return nn.Sequential(
        conv(c_in, c_out, 3, pad=pad),
        _norm(norm, c_out),
        nn.ReLU(),
        conv(c_out, c_out, 3, pad=pad),
        _norm(norm, c_out),
        nn.ReLU(),
    )


class UNetDown(nn.Module):
    """2x2 max-pool, then two conv-norm-ReLU."""

    def __init__(self, c_in: int, c_out: int, norm: str, pad: str) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2, 2)
        self.conv = _double_conv(c_in, c_out, norm, pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


class UNetUp(nn.Module):
    """Upsample ``c_in -> c_out`` channels, concatenate with the centre-cropped
    skip (``c_out`` channels), then two conv-ReLU without normalisation."""

    def __init__(self, c_in: int, c_out: int, upsample: str, pad: str) -> None:
        super().__init__()
        if upsample == "deconv":
            self.up: nn.Module = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)
        elif upsample == "bilinear":
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                conv(c_in, c_out, 3, pad=pad),
            )
        elif upsample == "nearest":
            self.up = nn.Sequential(nn.Upsample(scale_factor=2), conv(c_in, c_out, 3, pad=pad))
        else:
            raise ValueError(f"upsample must be one of {UNET_UPSAMPLE}, got {upsample!r}")
        self.conv = _double_conv(2 * c_out, c_out, "none", pad)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(concat_cropped([skip, self.up(x)]))


class UNet(nn.Module):
    """U-Net with ``levels`` down/up blocks; see :func:`build_unet`."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        filters: list[int],
        upsample: str,
        pad: str,
        norm: str,
        need_sigmoid: bool,
    ) -> None:
        super().__init__()
        levels = len(filters) - 1
        self.start = _double_conv(in_channels, filters[0], norm, pad)
        self.down = nn.ModuleList(
            UNetDown(filters[i], filters[i + 1], norm, pad) for i in range(levels)
        )
        self.up = nn.ModuleList(
            UNetUp(filters[i + 1], filters[i], upsample, pad) for i in range(levels)
        )
        self.final = conv(filters[0], out_channels, 1, pad=pad)
        self.out_act: nn.Module = nn.Sigmoid() if need_sigmoid else nn.Identity()
        self.required_stride = 2**levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [self.start(x)]
        for block in self.down:
            feats.append(block(feats[-1]))
        y = feats.pop()
        for i in reversed(range(len(self.up))):
            y = self.up[i](y, feats[i])
        return self.out_act(self.final(y))


def build_unet(
    in_channels: int,
    out_channels: int,
    feature_scale: int = 4,
    levels: int = 4,
    upsample: str = "deconv",
    pad: str = "zero",
    norm: str = "instance",
    need_sigmoid: bool = True,
) -> nn.Module:
    """Build a U-Net with filters ``[64, 128, 256, 512, 1024][: levels + 1]``
    divided by ``feature_scale`` (widths keep doubling when ``levels > 4``).

    Start block: two conv3x3-norm-ReLU. Each of ``levels`` down blocks: 2x2
    max-pool, two conv-norm-ReLU. Each up block: ``ConvTranspose2d(k=4, s=2,
    p=1)`` (``upsample="deconv"``) or upsample + conv3x3, halving the channels,
    concatenated with the centre-cropped skip, then two conv-ReLU (no norm).
    Final 1x1 conv and sigmoid. ``norm="instance"`` uses affine InstanceNorm.
    ``required_stride`` is ``2 ** levels``.
    """
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    if feature_scale < 1:
        raise ValueError(f"feature_scale must be >= 1, got {feature_scale}")
    if upsample not in UNET_UPSAMPLE:
        raise ValueError(f"upsample must be one of {UNET_UPSAMPLE}, got {upsample!r}")
    _norm(norm, 1)
    # 64, 128, 256, 512, 1024 for levels <= 4; the doubling continues beyond.
    filters = [max(1, (64 << i) // feature_scale) for i in range(levels + 1)]
    return UNet(in_channels, out_channels, filters, upsample, pad, norm, need_sigmoid)
