"""Built-in generators: the DIP skip network and its relatives, identity, and the networks of learned restoration.

The networks themselves live in :mod:`restorekit.nets` and are imported only
when a network is built, so listing components does not import torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from restorekit import Generator, Params, hookimpl

Act = Literal["leakyrelu", "relu", "elu", "none"]
Pad = Literal["reflection", "zero"]


def _per_level(value, levels: int, what: str) -> list[int]:
    if isinstance(value, int):
        return [value] * levels
    if len(value) != levels:
        raise ValueError(f"{what} lists {len(value)} values for {levels} levels")
    return list(value)


def _odd_kernel(value):
    """Kernel sizes must be odd: the networks pad (k - 1) // 2 on each side to keep
    the size, which only works with a centre pixel (an even kernel loses a pixel
    per convolution and the skip concatenations stop matching)."""
    if isinstance(value, list):
        even = [k for k in value if k % 2 == 0]
        if even:
            raise ValueError(f"must be odd numbers ({even[0]} is even): 'same' padding needs a centre pixel")
    elif value % 2 == 0:
        raise ValueError("must be an odd number: 'same' padding needs a centre pixel")
    return value


class _SkipParams(Params):
    levels: int = Field(5, ge=1, le=8, description="number of scales (the image side must be a multiple of 2**levels)")
    channels: int | list[int] = Field(128, description="channels per level, down and up path (an int or a list)")
    channels_up: int | list[int] | None = Field(None, description="channels per level on the up path (default: channels)")
    kernel_down: int | list[int] = Field(3, description="kernel size of the down convolutions")
    kernel_up: int | list[int] = Field(3, description="kernel size of the up convolutions")
    upsample: Literal["bilinear", "nearest"] = Field("bilinear", description="upsampling mode")
    downsample: Literal["stride", "avg", "max"] = Field("stride", description="strided conv, or conv + 2x2 pooling")
    pad: Pad = Field("reflection", description="padding of every convolution")
    act: Act = Field("leakyrelu", description="activation (LeakyReLU slope 0.2)")
    need1x1_up: bool = Field(True, description="a 1x1 conv after each up conv (the authors' default)")

    @field_validator("channels", "channels_up", "kernel_down", "kernel_up")
    @classmethod
    def _positive(cls, v):
        vals = v if isinstance(v, list) else [v]
        if v is not None and any(x < 1 for x in vals):
            raise ValueError("must be positive")
        return v

    @field_validator("kernel_down", "kernel_up")
    @classmethod
    def _kernels_odd(cls, v):
        return _odd_kernel(v)

    def lists(self, skip) -> dict:
        n = self.levels
        down = _per_level(self.channels, n, "channels")
        up = down if self.channels_up is None else _per_level(self.channels_up, n, "channels_up")
        return {
            "channels_down": down,
            "channels_up": up,
            "channels_skip": _per_level(skip, n, "skip"),
            "kernel_down": _per_level(self.kernel_down, n, "kernel_down"),
            "kernel_up": _per_level(self.kernel_up, n, "kernel_up"),
        }


class Skip(Generator):
    name = "skip"
    summary = "The DIP U-Net with skip connections (default: the paper's denoising net, 2.2M params)."
    primary = "channels"

    class Params(_SkipParams):
        skip: int | list[int] = Field(4, description="skip-connection channels per level (0: none)")
        kernel_skip: int = Field(1, ge=1, description="kernel size of the skip convolutions")

        @field_validator("skip")
        @classmethod
        def _nonneg(cls, v):
            if any(x < 0 for x in (v if isinstance(v, list) else [v])):
                raise ValueError("must be >= 0")
            return v

        @field_validator("kernel_skip")
        @classmethod
        def _kernel_skip_odd(cls, v):
            return _odd_kernel(v)

    def stride(self):
        return 2**self.params.levels

    def skip_channels(self):
        return self.params.skip

    def build(self, in_channels, out_channels, *, init=None):
        from restorekit.nets.skip import build_skip

        p = self.params
        try:
            lists = p.lists(self.skip_channels())
        except ValueError as exc:
            from restorekit.errors import SpecError

            raise SpecError(f"generator '{self.name}': {exc}") from None
        return build_skip(
            in_channels, out_channels, lists["channels_down"], lists["channels_up"], lists["channels_skip"],
            kernel_down=lists["kernel_down"], kernel_up=lists["kernel_up"],
            kernel_skip=getattr(p, "kernel_skip", 1), upsample=p.upsample, downsample=p.downsample,
            pad=p.pad, act=p.act, need1x1_up=p.need1x1_up,
        )


class EncoderDecoder(Skip):
    name = "encoder-decoder"
    summary = "The skip network without skip connections (an hourglass)."

    class Params(_SkipParams):
        pass

    def skip_channels(self):
        return 0


class ResNet(Generator):
    name = "resnet"
    summary = "A full-resolution residual network (no down-sampling)."
    primary = "blocks"

    class Params(Params):
        blocks: int = Field(8, ge=1, le=64, description="residual blocks")
        channels: int = Field(32, ge=1, le=1024, description="channels of every block")
        act: Act = Field("leakyrelu", description="activation")
        pad: Pad = Field("reflection", description="padding")

    def build(self, in_channels, out_channels, *, init=None):
        from restorekit.nets.resnet import build_resnet

        p = self.params
        return build_resnet(in_channels, out_channels, blocks=p.blocks, channels=p.channels, act=p.act, pad=p.pad)


class UNet(Generator):
    name = "unet"
    summary = "A classic U-Net: max-pool down blocks, upsampling blocks joined to cropped skips."
    primary = "levels"

    class Params(Params):
        levels: int = Field(4, ge=1, le=6, description="number of down/up blocks")
        feature_scale: int = Field(4, ge=1, le=64, description="divides the widths 64, 128, 256, ...")
        upsample: Literal["deconv", "bilinear", "nearest"] = Field("deconv", description="upsampling")
        norm: Literal["instance", "batch", "none"] = Field("instance", description="normalisation layer")
        pad: Pad = Field("zero", description="padding")

    def stride(self):
        return 2**self.params.levels

    def build(self, in_channels, out_channels, *, init=None):
        from restorekit.nets.unet import build_unet

        p = self.params
        return build_unet(
            in_channels, out_channels, feature_scale=p.feature_scale, levels=p.levels,
            upsample=p.upsample, pad=p.pad, norm=p.norm,
        )


class Identity(Generator):
    name = "identity"
    summary = "The pixels themselves are the parameters (classical optimisation; no network prior)."
    needs_input = False

    def build(self, in_channels, out_channels, *, init=None):
        from restorekit.nets.identity import ImageParameter

        return ImageParameter(init)


# -- the networks of learned restoration (restorekit train); each is also a DIP generator ------------------
class ResUNetGen(Generator):
    name = "resunet"
    summary = "A 3-scale residual U-Net denoiser (restorekit train's default; the shipped model's net)."
    primary = "channels"

    class Params(Params):
        channels: int = Field(32, ge=1, le=512, description="width at full resolution (doubled at each scale)")

    def stride(self):
        return 4

    def build(self, in_channels, out_channels, *, init=None):
        from restorekit.nets.learned import ResUNet

        return ResUNet(image_channels=in_channels, channels=self.params.channels, noise_map=False,
                       out_channels=out_channels)


class DnCNNGen(Generator):
    name = "dncnn"
    summary = "DnCNN (Zhang et al. 2017): conv + batch norm + ReLU layers predicting the noise (residual)."
    primary = "depth"

    class Params(Params):
        depth: int = Field(17, ge=3, le=64, description="convolution layers")
        channels: int = Field(64, ge=1, le=512, description="width of the hidden layers")

    def build(self, in_channels, out_channels, *, init=None):
        from restorekit.nets.learned import DnCNN

        return DnCNN(in_channels, out_channels, depth=self.params.depth, channels=self.params.channels)


class ConvAutoencoderGen(Generator):
    name = "conv-autoencoder"
    summary = "A convolutional autoencoder: conv + batch norm + max-pool down, upsample up, sigmoid out."
    primary = "channels"

    class Params(Params):
        channels: int = Field(32, ge=1, le=512, description="width of the first level (doubled per level)")
        levels: int = Field(2, ge=1, le=6, description="max-pool levels (the side must be a multiple of 2**levels)")
        skips: bool = Field(False, description="join each encoder level to the decoder (a U-Net: no code alone)")

    def stride(self):
        return 2**self.params.levels

    def build(self, in_channels, out_channels, *, init=None):
        from restorekit.nets.learned import ConvAutoencoder

        p = self.params
        return ConvAutoencoder(in_channels, out_channels, channels=p.channels, levels=p.levels, skips=p.skips)


class DenseAutoencoderGen(Generator):
    name = "dense-autoencoder"
    summary = "A fully connected autoencoder for one image size: image -> code -> image, sigmoid out."
    primary = "code"

    class Params(Params):
        code: int = Field(64, ge=1, le=65536, description="numbers in the code")
        depth: int = Field(2, ge=1, le=8, description="linear layers on each side of the code")
        width: int = Field(256, ge=1, le=65536, description="width of the first hidden layer (halved per layer)")

    #: weights above this refuse to build (a dense layer over a large canvas explodes)
    MAX_WEIGHTS = 64_000_000

    def build(self, in_channels, out_channels, *, init=None, canvas=None):
        from restorekit.errors import SpecError
        from restorekit.nets.learned import DenseAutoencoder

        if canvas is None:
            if init is None:
                raise SpecError("generator 'dense-autoencoder' needs the image size it is built for")
            canvas = tuple(init.shape[-2:])
        p = self.params
        first = max(p.code, p.width) if p.depth > 1 else p.code
        weights = (in_channels + out_channels) * canvas[0] * canvas[1] * first
        if weights > self.MAX_WEIGHTS:
            raise SpecError(f"generator 'dense-autoencoder': a {canvas[0]}x{canvas[1]} image needs {weights:,} "
                            f"weights in its first and last layers (limit {self.MAX_WEIGHTS:,}); "
                            "use it on small images (or conv-autoencoder)")
        return DenseAutoencoder(in_channels, out_channels, tuple(canvas), code=p.code, depth=p.depth, width=p.width)


@hookimpl
def restorekit_register_generators(registry):
    for cls in (Skip, EncoderDecoder, ResNet, UNet, Identity, ResUNetGen, DnCNNGen, ConvAutoencoderGen,
                DenseAutoencoderGen):
        registry.add(cls)
