"""Networks for learned restoration (``restorekit train``), also usable as deep-image-prior generators.

* :class:`DenseAutoencoder`: fully connected, image -> code -> image, for one
  fixed image size (the canvas it is built for);
* :class:`ConvAutoencoder`: conv + batch norm + max-pool down, upsample +
  conv up, sigmoid out; ``skips`` joins each scale of the encoder to the
  decoder (a U-Net) -- the comparison users make;
* :class:`DnCNN`: the residual denoiser of Zhang et al. (2017): a plain
  stack of conv + batch norm + ReLU predicting the noise;
* :class:`ResUNet`: the residual denoiser ``restorekit train`` makes by default
  and restorekit ships (``--prior learned``): a three-scale U-Net that predicts
  the noise and subtracts it (residual learning, as DnCNN), optionally told
  the noise level by an extra input channel filled with sigma (as FFDNet), so
  one model serves every noise level it was trained on.  Its scales make it
  cheap per pixel for its receptive field (about 60 pixels): roughly 0.2
  MFLOP per pixel forward at the default width, against DnCNN's 1.1.

Image-to-image networks (``in_channels == out_channels``) of the residual kind
return ``x - f(x)``; every network returns values in [0, 1] through a clamp
whose gradient is the identity (a "straight-through" clamp), so a residual
net's training signal is not cut off at the ends of the range.

Each is also a deep-image-prior generator through the generator registry
(``resunet``, ``dncnn``, ``conv-autoencoder``, ``dense-autoencoder`` in
:mod:`restorekit.builtins.generators`), which is how model.json names a
network (``"net"``: a generator spec).  :data:`ARCHITECTURES` is the one other
name -> class table, and holds only what model.json names by
``"architecture"`` instead: the noise-level-aware ResUNet (``noise_map``),
which no generator spec builds.  :mod:`restorekit.learn.nets` re-exports all
of this under its old names.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["st_clamp", "DenseAutoencoder", "ConvAutoencoder", "DnCNN", "ResUNet", "ARCHITECTURES",
           "register_architecture", "build_architecture"]

#: architectures by the name model.json records under "architecture" (the networks no generator spec builds)
ARCHITECTURES: dict[str, type[nn.Module]] = {}


def register_architecture(cls):
    """Class decorator: list ``cls`` in :data:`ARCHITECTURES` under its lowercase class name."""
    ARCHITECTURES[cls.__name__.lower()] = cls
    return cls


def build_architecture(arch: str, config: dict[str, Any]) -> nn.Module:
    """The network model.json names by ``"architecture"`` and ``"config"`` (its keyword arguments)."""
    try:
        cls = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(sorted(ARCHITECTURES))})") from None
    return cls(**config)


def st_clamp(y: torch.Tensor) -> torch.Tensor:
    """``y`` clamped to [0, 1] in the forward pass, unclamped in the backward pass."""
    return y + (y.clamp(0, 1) - y).detach()


class DenseAutoencoder(nn.Module):
    """``depth`` fully connected layers down to ``code`` numbers and back, for (C, H, W) inputs."""

    #: takes images of one size only (``size``): restorekit's model loader tiles larger ones
    fixed_size = True

    def __init__(self, in_channels: int, out_channels: int, size: tuple[int, int], code: int = 64,
                 depth: int = 2, width: int = 256) -> None:
        super().__init__()
        h, w = size
        self.size, self.out_channels = (h, w), out_channels
        n_in, n_out = in_channels * h * w, out_channels * h * w
        widths = [max(code, width // 2**i) for i in range(depth - 1)]
        enc: list[nn.Module] = []
        prev = n_in
        for k in widths:
            enc += [nn.Linear(prev, k), nn.ReLU(inplace=True)]
            prev = k
        enc.append(nn.Linear(prev, code))
        self.encoder = nn.Sequential(nn.Flatten(), *enc)
        dec: list[nn.Module] = []
        prev = code
        for k in reversed(widths):
            dec += [nn.Linear(prev, k), nn.ReLU(inplace=True)]
            prev = k
        dec.append(nn.Linear(prev, n_out))
        self.decoder = nn.Sequential(*dec)
        self.code_shape: tuple[int, ...] = (code,)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        h, w = self.size
        return torch.sigmoid(self.decoder(code)).reshape(code.shape[0], self.out_channels, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.size:
            raise ValueError(f"this dense autoencoder takes {self.size[0]}x{self.size[1]} images, "
                             f"not {x.shape[-2]}x{x.shape[-1]}")
        return self.decode(self.encode(x))


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect"), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class ConvAutoencoder(nn.Module):
    """``levels`` blocks of conv + BN + ReLU + 2x2 max-pool, then as many of upsample + conv + BN + ReLU.

    The code is the bottleneck map (``channels * 2**(levels-1)`` channels at
    1/2**levels of the size).  ``skips``: each decoder block also sees the
    encoder's features at its scale (concatenated), which lets detail bypass
    the code -- better restorations, and no code that explains the image alone.
    """

    def __init__(self, in_channels: int, out_channels: int, channels: int = 32, levels: int = 2,
                 skips: bool = False) -> None:
        super().__init__()
        self.levels, self.skips = levels, skips
        widths = [channels * 2**i for i in range(levels)]
        self.down = nn.ModuleList()
        prev = in_channels
        for k in widths:
            self.down.append(nn.Sequential(*_conv_bn(prev, k), *_conv_bn(k, k)))
            prev = k
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = nn.Sequential(*_conv_bn(prev, prev))
        self.up = nn.ModuleList()
        for k in reversed(widths):
            cin = prev + (k if skips else 0)
            self.up.append(nn.Sequential(*_conv_bn(cin, k), *_conv_bn(k, k)))
            prev = k
        self.out = nn.Conv2d(prev, out_channels, 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.down:
            x = self.pool(block(x))
        return self.bottleneck(x)

    def decode(self, code: torch.Tensor, features: list[torch.Tensor] | None = None) -> torch.Tensor:
        x = code
        for i, block in enumerate(self.up):
            x = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
            if self.skips:
                if features is None:
                    raise ValueError("a convolutional autoencoder with skips decodes only with its encoder's features")
                x = torch.cat([x, features[-1 - i]], 1)
            x = block(x)
        return torch.sigmoid(self.out(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = []
        for block in self.down:
            x = block(x)
            features.append(x)
            x = self.pool(x)
        return self.decode(self.bottleneck(x), features)


class DnCNN(nn.Module):
    """``depth`` 3x3 conv layers (``channels`` wide; batch norm in the middle ones) predicting the residual."""

    def __init__(self, in_channels: int, out_channels: int, depth: int = 17, channels: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(channels, out_channels, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.residual = in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return st_clamp(x - y) if self.residual else torch.sigmoid(y)


def _block(cin: int, cout: int, n: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


@register_architecture
class ResUNet(nn.Module):
    """``out = x - f(x, sigma)``: a U-Net over three scales predicting the residual.

    ``channels`` is the width at full resolution (doubled at each scale);
    ``noise_map``: an extra input channel holding sigma (0-1 units).
    Input sides must be multiples of 4 (:func:`restorekit.learn.model.apply` pads).
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

