"""Built-in priors: none, total variation and the deep image prior."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from restorekit import LoopOptions, Params, Prior, hookimpl


class NoPrior(Prior):
    name = "none"
    summary = "No prior: fit the observation directly (use with --net identity)."
    role = "none"


def total_variation(x, isotropic: bool = True, eps: float = 1e-8):
    """Mean total variation of a ``(N, C, H, W)`` tensor."""
    dx = x[..., :, 1:] - x[..., :, :-1]
    dy = x[..., 1:, :] - x[..., :-1, :]
    if isotropic:
        return (dx[..., :-1, :] ** 2 + dy[..., :, :-1] ** 2 + eps).sqrt().mean()
    return dx.abs().mean() + dy.abs().mean()


class TV(Prior):
    name = "tv"
    summary = "Total-variation penalty: favours piecewise-smooth images; combines with dip."
    primary = "weight"
    role = "penalty"

    class Params(Params):
        weight: float = Field(0.1, ge=0, description="weight of the mean TV against the mean squared error")
        isotropic: bool = Field(True, description="isotropic (sqrt(dx^2+dy^2)) or anisotropic (|dx|+|dy|) TV")

    def penalty(self, x):
        return self.params.weight * total_variation(x, self.params.isotropic)


class DeepImagePrior(Prior):
    name = "dip"
    summary = "Deep image prior: the image is G(z) for a randomly initialised network G."
    primary = "input"
    role = "network"

    class Params(Params):
        input: Literal["noise", "meshgrid"] = Field(
            "noise", description="input code: uniform noise, or 2 channels of x/y coordinates"
        )
        input_depth: int = Field(32, ge=1, le=1024, description="channels of the noise code (meshgrid: 2)")
        input_scale: float = Field(0.1, gt=0, description="noise code drawn from U[0, input_scale)")
        reg_noise_std: float = Field(
            1 / 30, ge=0, description="std of fresh noise added to the code every step (0: off)"
        )
        ema: float = Field(0.99, ge=0, lt=1, description="exponential averaging of outputs (0: off)")
        backtrack: float = Field(
            5.0, ge=0, description="restore the last good weights when the fit drops by this many dB (0: off)"
        )

    def input_channels(self):
        return 2 if self.params.input == "meshgrid" else self.params.input_depth

    def input_code(self, height, width, rng, init=None):
        import torch

        if self.params.input == "meshgrid":
            ys = torch.linspace(0, 1, height)
            xs = torch.linspace(0, 1, width)
            gy, gx = torch.meshgrid(ys, xs, indexing="ij")
            return torch.stack([gx, gy])[None]
        z = torch.rand((1, self.params.input_depth, height, width), generator=rng)
        return z * self.params.input_scale

    def perturb(self, z):
        import torch

        s = self.params.reg_noise_std
        return z if s <= 0 else z + s * torch.randn_like(z)

    def loop_options(self):
        return LoopOptions(ema=self.params.ema, backtrack_db=self.params.backtrack)


@hookimpl
def restorekit_register_priors(registry):
    for cls in (NoPrior, TV, DeepImagePrior):
        registry.add(cls)
