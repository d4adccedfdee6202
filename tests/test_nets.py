"""Tests for restorekit.nets: parameter counts against REFERENCE.md, shapes,
output range, gradients, cropping, options and determinism."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from restorekit.nets import (  # noqa: E402
    Concat,
    activation,
    build_encoder_decoder,
    build_resnet,
    build_skip,
    build_unet,
    conv,
)

D128 = [128] * 5
SMALL = [8, 8, 8]  # 3 levels of 8 channels for fast forward passes


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# REFERENCE.md section 2, "Check yours against these" (every row, written out).
SKIP_COUNTS: list[tuple[str, dict[str, Any], int]] = [
    (
        "denoising-sr",
        dict(in_channels=32, out_channels=3, channels_down=D128, channels_up=D128,
             channels_skip=[4] * 5, kernel_down=3, kernel_up=3, kernel_skip=1,
             upsample="bilinear", pad="reflection"),
        2_217_831,
    ),
    (
        "restoration-barbara",
        dict(in_channels=32, out_channels=1, channels_down=D128, channels_up=D128,
             channels_skip=[4] * 5, upsample="bilinear"),
        2_217_573,
    ),
    (
        "inpainting-kate",
        dict(in_channels=32, out_channels=3, channels_down=D128, channels_up=D128,
             channels_skip=[128] * 5, upsample="nearest"),
        3_002_627,
    ),
    (
        "inpainting-vase",
        dict(in_channels=2, out_channels=3, channels_down=D128, channels_up=D128,
             channels_skip=[0] * 5, upsample="nearest"),
        2_157_955,
    ),
    (
        "restoration-kate",
        dict(in_channels=32, out_channels=3, channels_down=[16, 32, 64, 128, 128],
             channels_up=[16, 32, 64, 128, 128], channels_skip=[0] * 5,
             downsample="avg", upsample="bilinear"),
        1_027_379,
    ),
    (
        "sr-prior-effect-flash",
        dict(in_channels=3, out_channels=3, channels_down=D128, channels_up=D128,
             channels_skip=[4] * 5),
        2_184_307,
    ),
    (
        "activation-maximisation",
        dict(in_channels=32, out_channels=3, channels_down=[16, 32, 64, 128, 128, 128],
             channels_up=[16, 32, 64, 128, 128, 128], channels_skip=[0, 4, 4, 4, 4, 4],
             kernel_down=[5, 3, 5, 5, 3, 5], kernel_up=[5, 3, 5, 3, 5, 3]),
        2_948_567,
    ),
]


@pytest.mark.parametrize("kwargs,expected", [(k, e) for _, k, e in SKIP_COUNTS],
                         ids=[name for name, _, _ in SKIP_COUNTS])
def test_skip_parameter_counts(kwargs: dict[str, Any], expected: int) -> None:
    assert n_params(build_skip(**kwargs)) == expected


def test_skip_default_configuration() -> None:
    model = build_skip(32, 3, D128, D128, [4] * 5)
    assert n_params(model) == 2_217_831
    assert model.required_stride == 32


def test_encoder_decoder_is_skip_without_skips() -> None:
    model = build_encoder_decoder(2, 3, D128, D128, upsample="nearest")
    assert n_params(model) == 2_157_955
    assert model.required_stride == 32
    assert not any(isinstance(m, Concat) for m in model.modules())


def test_resnet_parameter_count() -> None:
    model = build_resnet(1, 3, 8, 32)
    assert n_params(model) == 158_979
    assert model.required_stride == 1


def test_count_independent_of_pad_and_downsample() -> None:
    base = n_params(build_skip(32, 3, D128, D128, [4] * 5))
    for pad, down in itertools.product(("reflection", "zero"), ("stride", "avg", "max")):
        assert n_params(build_skip(32, 3, D128, D128, [4] * 5, pad=pad, downsample=down)) == base


def test_need_bias_and_need1x1_up() -> None:
    model = build_skip(4, 3, SMALL, SMALL, [2] * 3, need_bias=False)
    assert all(m.bias is None for m in model.modules() if isinstance(m, nn.Conv2d))
    with_1x1 = n_params(build_skip(4, 3, SMALL, SMALL, [2] * 3))
    without = n_params(build_skip(4, 3, SMALL, SMALL, [2] * 3, need1x1_up=False))
    assert with_1x1 - without == 3 * (8 * 8 + 8 + 2 * 8)


# ----------------------------------------------------------------- forward passes


def _check_output(out: torch.Tensor, shape: tuple[int, ...]) -> None:
    assert tuple(out.shape) == shape
    assert torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1


def test_skip_forward_shape_and_range() -> None:
    torch.manual_seed(0)
    model = build_skip(32, 3, [8, 8, 8, 8], [8, 8, 8, 8], [4] * 4)
    assert model.required_stride == 16
    _check_output(model(torch.rand(1, 32, 32, 32) * 0.1), (1, 3, 32, 32))


def test_unet_forward_shape_and_range() -> None:
    torch.manual_seed(0)
    model = build_unet(3, 2, feature_scale=16, levels=4)
    assert model.required_stride == 16
    _check_output(model(torch.rand(1, 3, 32, 32)), (1, 2, 32, 32))


def test_resnet_forward_shape_and_range() -> None:
    torch.manual_seed(0)
    model = build_resnet(1, 3, blocks=2, channels=8)
    _check_output(model(torch.rand(1, 1, 16, 16)), (1, 3, 16, 16))


def test_no_sigmoid_option() -> None:
    assert not any(isinstance(m, nn.Sigmoid) for m in
                   build_skip(4, 3, SMALL, SMALL, [2] * 3, need_sigmoid=False).modules())
    assert not any(isinstance(m, nn.Sigmoid) for m in
                   build_resnet(1, 3, 1, 8, need_sigmoid=False).modules())
    assert not any(isinstance(m, nn.Sigmoid) for m in
                   build_unet(1, 3, 16, 2, need_sigmoid=False).modules())


@pytest.mark.parametrize(
    "make,shape",
    [
        (lambda: build_skip(4, 3, SMALL, SMALL, [2, 0, 2]), (1, 4, 16, 16)),
        (lambda: build_encoder_decoder(4, 3, SMALL, SMALL), (1, 4, 16, 16)),
        (lambda: build_resnet(2, 3, blocks=2, channels=8), (1, 2, 16, 16)),
        (lambda: build_unet(2, 3, feature_scale=16, levels=3, norm="instance"), (1, 2, 32, 32)),
        (lambda: build_unet(2, 3, feature_scale=16, levels=3, norm="batch"), (1, 2, 32, 32)),
        (lambda: build_unet(2, 3, feature_scale=16, levels=3, norm="none",
                            upsample="bilinear"), (1, 2, 32, 32)),
    ],
    ids=["skip", "encoder-decoder", "resnet", "unet-instance", "unet-batch", "unet-none"],
)
def test_gradient_reaches_every_parameter(make: Any, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = make()
    model.train()
    out = model(torch.rand(*shape))
    loss = nn.functional.mse_loss(out, torch.rand_like(out))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"zero gradient for {name}"


# --------------------------------------------------------------------- cropping


@pytest.mark.parametrize("size", [(40, 40), (36, 36), (37, 45), (33, 50)])
def test_skip_crops_sizes_not_multiple_of_stride(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = build_skip(4, 3, [8] * 4, [8] * 4, [2] * 4)  # stride 16; 40 -> 3 at the bottom
    assert size[0] % model.required_stride or size[1] % model.required_stride
    out = model(torch.rand(1, 4, *size))
    # A level-0 skip branch keeps full resolution, so the crop restores the input size.
    _check_output(out, (1, 3, *size))


def test_avg_downsample_odd_size_crops() -> None:
    torch.manual_seed(0)
    model = build_skip(4, 3, SMALL, SMALL, [2] * 3, downsample="avg")
    out = model(torch.rand(1, 4, 37, 37))
    assert out.shape[:2] == (1, 3) and out.shape[-1] <= 37 and out.shape[-2] <= 37


def test_unet_widths() -> None:
    convs = [m for m in build_unet(3, 3, feature_scale=4, levels=4).modules()
             if isinstance(m, nn.Conv2d)]
    assert sorted({c.out_channels for c in convs}) == [3, 16, 32, 64, 128, 256]
    deep = build_unet(1, 1, feature_scale=64, levels=6)
    assert deep.required_stride == 64
    assert max(m.out_channels for m in deep.modules() if isinstance(m, nn.Conv2d)) == 64


def test_unet_odd_size_does_not_crash() -> None:
    torch.manual_seed(0)
    model = build_unet(3, 3, feature_scale=16, levels=3)
    out = model(torch.rand(1, 3, 36, 44))
    assert out.shape[:2] == (1, 3)


def test_concat_centre_crops_and_keeps_order() -> None:
    class Const(nn.Module):
        def __init__(self, value: float, c: int, h: int, w: int) -> None:
            super().__init__()
            self.value, self.shape = value, (c, h, w)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            t = torch.arange(self.shape[1] * self.shape[2], dtype=torch.float32)
            t = t.reshape(1, 1, self.shape[1], self.shape[2])
            t = t.repeat(x.shape[0], self.shape[0], 1, 1)
            return t + self.value

    cat = Concat(Const(1000.0, 1, 5, 6), Const(0.0, 2, 7, 8))
    out = cat(torch.zeros(2, 1, 1, 1))
    assert out.shape == (2, 3, 5, 6)
    assert out[0, 0, 0, 0] == 1000.0  # first branch first, uncropped
    assert out[0, 1, 0, 0] == 1 * 8 + 1  # second branch cropped by (1, 1)


# ---------------------------------------------------------------------- options


@pytest.mark.parametrize(
    "pad,downsample,upsample,act",
    list(itertools.product(("reflection", "zero"), ("stride", "avg", "max"),
                           ("bilinear", "nearest"), ("leakyrelu", "relu", "elu", "none"))),
)
def test_skip_options_build_and_run(pad: str, downsample: str, upsample: str, act: str) -> None:
    torch.manual_seed(0)
    model = build_skip(3, 2, [4, 4], [4, 4], [2, 2], kernel_down=[3, 5], kernel_up=[5, 3],
                       pad=pad, downsample=downsample, upsample=upsample, act=act)
    _check_output(model(torch.rand(1, 3, 16, 16)), (1, 2, 16, 16))


@pytest.mark.parametrize(
    "upsample,pad,norm",
    list(itertools.product(("deconv", "bilinear", "nearest"), ("zero", "reflection"),
                           ("instance", "batch", "none"))),
)
def test_unet_options_build_and_run(upsample: str, pad: str, norm: str) -> None:
    torch.manual_seed(0)
    model = build_unet(2, 3, feature_scale=16, levels=2, upsample=upsample, pad=pad, norm=norm)
    assert model.required_stride == 4
    _check_output(model(torch.rand(1, 2, 16, 16)), (1, 3, 16, 16))


@pytest.mark.parametrize("act,pad", list(itertools.product(("leakyrelu", "relu", "elu", "none"),
                                                           ("reflection", "zero"))))
def test_resnet_options_build_and_run(act: str, pad: str) -> None:
    torch.manual_seed(0)
    model = build_resnet(1, 3, blocks=1, channels=4, act=act, pad=pad)
    _check_output(model(torch.rand(1, 1, 12, 12)), (1, 3, 12, 12))


def test_common_helpers() -> None:
    assert isinstance(activation("none"), nn.Identity)
    assert isinstance(activation("leakyrelu"), nn.LeakyReLU)
    assert activation("leakyrelu").negative_slope == 0.2
    reflect = conv(2, 3, 5)
    assert isinstance(reflect[0], nn.ReflectionPad2d) and reflect[0].padding == (2, 2, 2, 2)
    assert conv(2, 3, 3, pad="zero").padding == (1, 1)
    pooled = conv(2, 3, 3, stride=2, downsample="max")
    assert pooled[1].stride == (1, 1) and isinstance(pooled[2], nn.MaxPool2d)
    assert conv(2, 3, 3, stride=2, pad="zero", downsample="avg")[0].stride == (1, 1)
    x = torch.rand(1, 2, 10, 10)
    for c in (conv(2, 3, 3, 2), conv(2, 3, 3, 2, downsample="avg"), conv(2, 3, 3, 2, pad="zero")):
        assert c(x).shape == (1, 3, 5, 5)


@pytest.mark.parametrize(
    "call",
    [
        lambda: build_skip(3, 3, [8, 8], [8], [0, 0]),
        lambda: build_skip(3, 3, [8, 8], [8, 8], [0, 0], kernel_down=[3, 3, 3]),
        lambda: build_skip(3, 3, [8], [8], [0], upsample="bicubic"),
        lambda: build_skip(3, 3, [8], [8], [0], pad="replicate"),
        lambda: build_skip(3, 3, [8], [8], [0], downsample="conv"),
        lambda: build_skip(3, 3, [8], [8], [0], act="gelu"),
        lambda: build_unet(3, 3, norm="group"),
        lambda: build_unet(3, 3, upsample="pixelshuffle"),
        lambda: build_unet(3, 3, levels=0),
    ],
)
def test_invalid_options_raise(call: Any) -> None:
    with pytest.raises(ValueError):
        call()


# ------------------------------------------------------------------ determinism


@pytest.mark.parametrize(
    "make",
    [
        lambda: build_skip(4, 3, SMALL, SMALL, [2] * 3),
        lambda: build_resnet(1, 3, blocks=2, channels=8),
        lambda: build_unet(1, 3, feature_scale=16, levels=2),
    ],
    ids=["skip", "resnet", "unet"],
)
def test_same_seed_gives_identical_nets(make: Any) -> None:
    torch.manual_seed(123)
    a = make()
    torch.manual_seed(123)
    b = make()
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    x = torch.rand(1, next(a.parameters()).shape[1], 16, 16)
    assert torch.equal(a(x), b(x))
    torch.manual_seed(124)
    c = make()
    assert any(not torch.equal(sa[k], c.state_dict()[k]) for k in sa)


@pytest.mark.parametrize("param", ["kernel_down", "kernel_up", "kernel_skip"])
@pytest.mark.parametrize("value", [4, [3, 2]])
def test_skip_rejects_even_kernels(param: str, value: Any) -> None:
    # padding (k - 1) // 2 keeps the size only for odd k
    with pytest.raises(ValueError, match=f"{param} must be odd"):
        build_skip(3, 3, [8, 8], [8, 8], [2, 2], **{param: value})


# ------------------------------------------------------------------ TV penalty
# (the penalty that the tv prior adds to the loss; it runs on the generator's output)


@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (1, 3, 1, 9), (1, 3, 9, 1), (1, 1, 1, 2), (2, 3, 2, 1)])
@pytest.mark.parametrize("isotropic", [True, False])
def test_tv_is_finite_on_one_pixel_wide_images(shape: tuple[int, ...], isotropic: bool) -> None:
    from restorekit.builtins.priors import TV, total_variation

    x = torch.rand(shape, requires_grad=True)
    tv = TV.from_spec(f"tv:weight=0.5,isotropic={str(isotropic).lower()}")
    value = tv.penalty(x)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()
    if shape[-2] == shape[-1] == 1:
        assert value.item() == 0 and not x.grad.any()
    # the missing axis adds 0: a row's TV is that of its horizontal differences alone
    row = torch.tensor([[[[0.0, 0.5, 0.25]]]])
    expected = (0.5 + 0.25) / 2  # mean |dx|, and mean sqrt(dx^2 + eps) up to eps
    assert total_variation(row, isotropic).item() == pytest.approx(expected)
    assert total_variation(row.transpose(-1, -2), isotropic).item() == pytest.approx(expected)


def test_tv_gradient_is_finite_where_the_image_is_flat() -> None:
    from restorekit.builtins.priors import total_variation

    for eps in (1e-8, 0.0):
        for dtype in (torch.float32, torch.float16):
            x = torch.full((1, 1, 4, 5), 0.5, dtype=dtype, requires_grad=True)
            total_variation(x, eps=eps).float().backward()
            assert torch.isfinite(x.grad).all(), (eps, dtype)


def test_tv_unchanged_on_ordinary_images() -> None:
    from restorekit.builtins.priors import total_variation

    torch.manual_seed(0)
    x = torch.rand(1, 3, 6, 7)
    dx = x[..., :, 1:] - x[..., :, :-1]
    dy = x[..., 1:, :] - x[..., :-1, :]
    iso = (dx[..., :-1, :] ** 2 + dy[..., :, :-1] ** 2 + 1e-8).sqrt().mean()
    assert total_variation(x).item() == pytest.approx(iso.item(), rel=1e-6)
    assert total_variation(x, False).item() == pytest.approx((dx.abs().mean() + dy.abs().mean()).item(), rel=1e-6)
