"""The Deep Image Prior "skip" generator (a U-Net-like hourglass with 1x1 skips)
and the encoder-decoder ("hourglass") special case without skips."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .common import Concat, activation, conv

UPSAMPLE_MODES = ("bilinear", "nearest")


def _per_level(value: int | Sequence[int], levels: int, name: str) -> list[int]:
    """Broadcast an int to ``levels`` entries, or check a per-level list's length."""
    if isinstance(value, int):
        return [value] * levels
    values = [int(v) for v in value]
    if len(values) != levels:
        raise ValueError(f"{name} has {len(values)} entries, expected one per level ({levels})")
    return values


def _upsample(mode: str) -> nn.Module:
    if mode == "bilinear":
        return nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
    if mode == "nearest":
        return nn.Upsample(scale_factor=2)
    raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {mode!r}")


def build_skip(
    in_channels: int,
    out_channels: int,
    channels_down: Sequence[int],
    channels_up: Sequence[int],
    channels_skip: Sequence[int],
    kernel_down: int | Sequence[int] = 3,
    kernel_up: int | Sequence[int] = 3,
    kernel_skip: int | Sequence[int] = 1,
    upsample: str | Sequence[str] = "bilinear",
    downsample: str = "stride",
    pad: str = "reflection",
    act: str = "leakyrelu",
    need_sigmoid: bool = True,
    need_bias: bool = True,
    need1x1_up: bool = True,
) -> nn.Module:
    """Build the DIP skip network (REFERENCE.md section 2).

    Per level i (0 = full resolution) with ``c_in`` input channels::

        deeper = conv(c_in->d[i], stride 2)-BN-act, conv(d[i]->d[i])-BN-act,
                 [level i+1], upsample x2
        y = Concat(conv1x1(c_in->s[i])-BN-act, deeper)  if s[i] > 0 else deeper
        y -> BN -> conv(s[i]+k -> u[i], k_up)-BN-act [-> conv1x1(u[i]->u[i])-BN-act]

    with ``k = d[i]`` at the deepest level, else ``u[i+1]``; the output is
    ``sigmoid(conv1x1(u[0] -> out_channels))``. Inputs should be a multiple of
    ``model.required_stride`` (``2 ** levels``); otherwise Concat centre-crops.
    """
    down = [int(c) for c in channels_down]
    up = [int(c) for c in channels_up]
    skip = [int(c) for c in channels_skip]
    levels = len(down)
    if levels == 0:
        raise ValueError("channels_down must have at least one level")
    if len(up) != levels or len(skip) != levels:
        raise ValueError(
            "channels_down, channels_up and channels_skip must have the same length, "
            f"got {len(down)}, {len(up)} and {len(skip)}"
        )
    if min(down + up) < 1 or min(skip) < 0 or in_channels < 1 or out_channels < 1:
        raise ValueError("channel counts must be positive (skip channels may be 0)")
    k_down = _per_level(kernel_down, levels, "kernel_down")
    k_up = _per_level(kernel_up, levels, "kernel_up")
    k_skip = _per_level(kernel_skip, levels, "kernel_skip")
    for name, kernels in (("kernel_down", k_down), ("kernel_up", k_up), ("kernel_skip", k_skip)):
        if any(k < 1 or k % 2 == 0 for k in kernels):
            # padding (k - 1) // 2 keeps the size only for odd k; an even kernel
            # loses a pixel per conv and the levels no longer line up
            raise ValueError(f"{name} must be odd positive numbers, got {kernels}")
    modes = [upsample] * levels if isinstance(upsample, str) else list(upsample)
    if len(modes) != levels:
        raise ValueError(f"upsample has {len(modes)} entries, expected one per level ({levels})")
    for mode in modes:
        _upsample(mode)  # validate early
    activation(act)

    def cbr(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
        return [
            conv(c_in, c_out, kernel, stride, bias=need_bias, pad=pad, downsample=downsample),
            nn.BatchNorm2d(c_out),
            activation(act),
        ]

    def level(i: int, c_in: int) -> nn.Sequential:
        deeper: list[nn.Module] = cbr(c_in, down[i], k_down[i], stride=2)
        deeper += cbr(down[i], down[i], k_down[i])
        if i < levels - 1:
            deeper.append(level(i + 1, down[i]))
            k = up[i + 1]
        else:
            k = down[i]
        deeper.append(_upsample(modes[i]))
        deeper_branch = nn.Sequential(*deeper)

        body: nn.Module
        if skip[i] > 0:
            body = Concat(nn.Sequential(*cbr(c_in, skip[i], k_skip[i])), deeper_branch)
        else:
            body = deeper_branch
        layers: list[nn.Module] = [body, nn.BatchNorm2d(skip[i] + k)]
        layers += cbr(skip[i] + k, up[i], k_up[i])
        if need1x1_up:
            layers += cbr(up[i], up[i], 1)
        return nn.Sequential(*layers)

    model_layers: list[nn.Module] = [
        level(0, in_channels),
        conv(up[0], out_channels, 1, bias=need_bias, pad=pad),
    ]
    if need_sigmoid:
        model_layers.append(nn.Sigmoid())
    model = nn.Sequential(*model_layers)
    model.required_stride = 2**levels
    return model


def build_encoder_decoder(
    in_channels: int,
    out_channels: int,
    channels_down: Sequence[int],
    channels_up: Sequence[int],
    kernel_down: int | Sequence[int] = 3,
    kernel_up: int | Sequence[int] = 3,
    kernel_skip: int | Sequence[int] = 1,
    upsample: str | Sequence[str] = "bilinear",
    downsample: str = "stride",
    pad: str = "reflection",
    act: str = "leakyrelu",
    need_sigmoid: bool = True,
    need_bias: bool = True,
    need1x1_up: bool = True,
) -> nn.Module:
    """The hourglass encoder-decoder: :func:`build_skip` with every skip channel 0.

    ``kernel_skip`` is accepted for signature parity and has no effect.
    """
    return build_skip(
        in_channels,
        out_channels,
        channels_down,
        channels_up,
        [0] * len(channels_down),
        kernel_down=kernel_down,
        kernel_up=kernel_up,
        kernel_skip=kernel_skip,
        upsample=upsample,
        downsample=downsample,
        pad=pad,
        act=act,
        need_sigmoid=need_sigmoid,
        need_bias=need_bias,
        need1x1_up=need1x1_up,
    )
