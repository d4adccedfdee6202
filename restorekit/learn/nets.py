"""Networks trained on examples (``restorekit train``): image in, image out.

:class:`ResUNet` is a residual denoiser: a three-scale U-Net that predicts
the noise and subtracts it (residual learning, as DnCNN), optionally told
the noise level by an extra input channel filled with sigma (as FFDNet), so
one model serves every noise level it was trained on.  Its scales make it
cheap per pixel for its receptive field (about 60 pixels): roughly 0.2
MFLOP per pixel forward at the default width, against DnCNN's 1.1.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..nets.learned import st_clamp

#: architectures by name, as model.json records them
ARCHITECTURES: dict[str, type[nn.Module]] = {}


def register(cls):
    ARCHITECTURES[cls.__name__.lower()] = cls
    return cls


def _block(cin: int, cout: int, n: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


@register
class ResUNet(nn.Module):
    """``out = x - f(x, sigma)``: a U-Net over three scales predicting the residual.

    ``channels`` is the width at full resolution (doubled at each scale);
    ``noise_map``: an extra input channel holding sigma (0-1 units).
    Input sides must be multiples of 4 (:func:`apply` pads).
    """

    stride = 4

    def __init__(self, image_channels: int = 1, channels: int = 32, noise_map: bool = True,
                 out_channels: int | None = None) -> None:
        super().__init__()
        c = channels
        self.config = {"image_channels": image_channels, "channels": channels, "noise_map": noise_map}
        # another output channel count (the 'resunet' generator as a DIP net, fed a code): no residual
        out_channels = image_channels if out_channels is None else out_channels
        self.residual = out_channels == image_channels
        self.image_channels, self.noise_map = image_channels, noise_map
        cin = image_channels + (1 if noise_map else 0)
        self.enc1 = _block(cin, c, 2)
        self.down1 = nn.Sequential(nn.Conv2d(c, 2 * c, 2, stride=2), nn.ReLU(inplace=True))
        self.enc2 = _block(2 * c, 2 * c, 2)
        self.down2 = nn.Sequential(nn.Conv2d(2 * c, 4 * c, 2, stride=2), nn.ReLU(inplace=True))
        self.mid = _block(4 * c, 4 * c, 3)
        self.up2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2)
        self.dec2 = _block(2 * c, 2 * c, 2)
        self.up1 = nn.ConvTranspose2d(2 * c, c, 2, stride=2)
        self.dec1 = _block(c, c, 1)
        self.out = nn.Conv2d(c, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        inp = x
        if self.noise_map:
            if sigma is None:
                raise ValueError("this model needs the noise level (sigma)")
            s = sigma.reshape(-1, 1, 1, 1).to(x.dtype).expand(x.shape[0], 1, *x.shape[-2:])
            inp = torch.cat([x, s], 1)
        e1 = self.enc1(inp)
        e2 = self.enc2(self.down1(e1))
        m = self.mid(self.down2(e2))
        d2 = self.dec2(self.up2(m) + e2)
        d1 = self.dec1(self.up1(d2) + e1)
        y = self.out(d1)
        # clamped to [0, 1] forward, identity backward: the residual's gradient is not cut at the range's ends
        return st_clamp(x - y) if self.residual else torch.sigmoid(y)


def build(arch: str, config: dict[str, Any]) -> nn.Module:
    try:
        cls = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(sorted(ARCHITECTURES))})") from None
    return cls(**config)
