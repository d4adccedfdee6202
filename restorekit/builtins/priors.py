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
    """Mean total variation of a ``(N, C, H, W)`` tensor.

    Isotropic: the mean of ``sqrt(dx^2 + dy^2 + eps)`` over the pixels that have
    both a right and a lower neighbour; anisotropic: ``mean|dx| + mean|dy|``.
    An image one pixel high (wide) has no vertical (horizontal) differences:
    that term is 0, so the penalty and its gradient stay finite (a 1x1 image
    has TV 0). ``eps`` (at least the dtype's smallest normal number) keeps the
    square root's derivative finite where the image is flat.
    """
    import torch

    h, w = x.shape[-2], x.shape[-1]
    dx = x[..., :, 1:] - x[..., :, :-1]
    dy = x[..., 1:, :] - x[..., :-1, :]
    if isotropic:
        if h > 1 and w > 1:
            sq = dx[..., :-1, :] ** 2 + dy[..., :, :-1] ** 2
        elif w > 1:
            sq = dx**2
        elif h > 1:
            sq = dy**2
        else:
            return (x * 0).sum()  # a single pixel: no variation, gradient 0
        tiny = torch.finfo(sq.dtype).tiny if sq.dtype.is_floating_point else 0.0
        return (sq + max(eps, tiny)).sqrt().mean()
    zero = (x * 0).sum()
    tv_x = dx.abs().mean() if w > 1 else zero
    tv_y = dy.abs().mean() if h > 1 else zero
    return tv_x + tv_y


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
        input: Literal["noise", "meshgrid", "image", "observation"] = Field(
            "noise",
            description="input code: uniform noise, 2 channels of x/y coordinates, the guide image, "
            "or the observation itself: missing pixels filled by biharmonic inpainting (above 300,000 "
            "missing, a multi-scale normalised convolution), upsampled bicubically for super-resolution "
            "(with a solver prior beside it, that prior's result instead)",
        )
        guide: str | None = Field(None, description="guide image for input=image (e.g. the flash photo)")
        input_depth: int = Field(32, ge=1, le=1024, description="channels of the noise code (meshgrid: 2)")
        input_scale: float = Field(0.1, gt=0, description="noise code drawn from U[0, input_scale)")
        reg_noise_std: float = Field(
            1 / 30, ge=0, description="std of fresh noise added to the code every step (0: off)"
        )
        ema: float = Field(0.99, ge=0, lt=1, description="exponential averaging of outputs (0: off)")
        backtrack: float = Field(
            5.0, ge=0, description="restore the last good weights when the fit drops by this many dB (0: off)"
        )
        backtrack_every: int = Field(
            0, ge=0, description="check for a collapse every N steps (0: every step except multiples of 100)"
        )
        sure: bool = Field(
            False,
            description="experimental: fit Stein's unbiased risk estimate instead of the squared error "
            "(Gaussian denoising with known sigma; needs input=observation)",
        )
        keep_known: bool = Field(
            False,
            description="return the observed pixels unchanged where the observation is a noise-free mask "
            "(inpainting, detected impulses): only the missing pixels come from the network",
        )

    def input_channels(self):
        if self.params.input == "image":
            return self._guide().shape[0]
        if self.params.input == "observation":
            return 0  # as many as the image has: known when input_code sees it
        return 2 if self.params.input == "meshgrid" else self.params.input_depth

    _guide_cache = None

    def _guide(self):
        if self._guide_cache is None:
            from restorekit.errors import UsageError
            from restorekit.io import read_image

            if not self.params.guide:
                raise UsageError("dip:input=image needs a guide image: dip:input=image,guide=flash.png")
            self._guide_cache = read_image(self.params.guide).data
        return self._guide_cache

    def input_code(self, height, width, rng, init=None, geometry=None):
        import torch

        if self.params.input == "image":
            import numpy as np

            from restorekit.errors import UsageError

            g = self._guide()
            if geometry is not None:
                _, ih, iw = geometry.image_shape
                if tuple(g.shape[1:]) == tuple(geometry.result_size) != (ih, iw):
                    # the image was extended (reflect, bottom/right) to a multiple of the scale: so is the guide
                    rh, rw = geometry.result_size
                    g = np.pad(g, ((0, 0), (0, ih - rh), (0, iw - rw)), mode="reflect")
                if tuple(g.shape[1:]) != (ih, iw):
                    h, w = geometry.result_size
                    raise UsageError(
                        f"guide image is {g.shape[2]}x{g.shape[1]} but the image to restore is {w}x{h}; "
                        "give a guide of the image's size"
                    )
                # the guide sits on the canvas exactly as the image does
                g = geometry.pad_to_canvas(g)
            elif tuple(g.shape[1:]) != (height, width):
                raise UsageError(
                    f"guide image is {g.shape[2]}x{g.shape[1]} but the canvas is {width}x{height}; "
                    "give a guide of the image's size"
                )
            return torch.from_numpy(np.ascontiguousarray(g))[None].float()
        if self.params.input == "observation":
            if init is None:
                raise RuntimeError("dip:input=observation needs the observation (init) from the engine")
            return init.detach().clone().float()
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
        return LoopOptions(
            ema=self.params.ema, backtrack_db=self.params.backtrack, backtrack_every=self.params.backtrack_every,
            sure=self.params.sure, keep_known=self.params.keep_known,
        )


class Learned(Prior):
    name = "learned"
    summary = "A network trained on example images (restorekit train); 'gaussian' is the shipped denoiser."
    primary = "model"
    role = "solver"

    class Params(Params):
        model: str = Field("gaussian", description="a model folder written by restorekit train, or a shipped "
                           "model: gaussian (a Gaussian denoiser for sigma 0-55: on gray images gaussian-gray, "
                           "trained on BSD400; on colour images gaussian-colour, that model fine-tuned on the "
                           "colour channels of CBSD432's photos)")
        sigma: float | None = Field(None, ge=0, le=255, description="noise sigma in 0-255 units (none: the "
                                    "degradation's, else estimated from the image)")
        weight: float = Field(0.0, ge=0, description="beside a fitted prior (--prior dip --prior learned): the "
                              "weight of mean((x - the model's result)^2) in the loss; 0: the result only starts "
                              "the fit")
        colour: Literal["opponent", "pca", "rgb"] = Field(
            "opponent", description="a gray model on a colour image denoises it channel by channel in this colour "
            "space: opponent (luminance, two colour differences), pca (the image's own principal colour axes) or "
            "rgb")

    def solve(self, problem):
        import numpy as np
        import torch

        from restorekit.errors import UsageError
        from restorekit.learn.model import apply, denoise, load, resolve

        c, h, w = problem.image_shape
        model = load(resolve(self.params.model, c))
        obs = problem.observation[0].detach().cpu().numpy().astype(np.float32)
        if tuple(problem.observation.shape[-2:]) != (h, w):
            raise UsageError("prior 'learned' maps an image to one of the same size: it does not super-resolve; "
                             "use --prior dip (or auto) for that")
        if model.blind:
            # trained on its own degradations or pairs: applied to the observation as it is
            return torch.from_numpy(np.clip(apply(model, obs), 0, 1))[None].to(problem.device)
        if problem.mask is not None:
            raise UsageError("prior 'learned': this model denoises (it was trained on Gaussian noise levels); it "
                             "does not fill missing pixels: use --prior dip (or auto), or a model trained with "
                             "--degrade on that damage")
        peak = _poisson_peak(problem)
        if peak is not None and self.params.sigma is None:
            # Poisson noise: the Anscombe transform makes it Gaussian with sigma 1 (in counts), the model
            # denoises that, and the exact unbiased inverse maps back (Makitalo and Foi, 2011)
            scale = 2 * np.sqrt(peak + 3 / 8)
            a = 2 * np.sqrt(np.clip(obs, 0, None) * peak + 3 / 8) / scale
            d = np.clip(denoise(model, a.astype(np.float32), 1 / scale, self.params.colour), 1e-3, None) * scale
            counts = (d**2 / 4 + np.sqrt(1.5) / (4 * d) - 11 / (8 * d**2) + 5 * np.sqrt(1.5) / (8 * d**3) - 1 / 8)
            return torch.from_numpy(np.clip(counts / peak, 0, 1).astype(np.float32))[None].to(problem.device)
        if self.params.sigma is not None:
            sigma = self.params.sigma / 255.0
        elif problem.sigma:
            sigma = float(problem.sigma)
        else:
            from skimage.restoration import estimate_sigma

            sigma = float(estimate_sigma(np.moveaxis(obs, 0, -1), channel_axis=-1, average_sigmas=True))
        lo, hi = (v / 255.0 for v in model.card.get("sigma_range", (0, 255)))
        if getattr(problem, "noise", None) is not None and self.params.sigma is None:
            sigma = min(sigma, hi)  # an estimated real-noise level: the model's strongest setting at most
        if sigma > hi * 1.2:
            raise UsageError(f"prior 'learned': the noise (sigma {sigma * 255:.1f}) is beyond what the model was "
                             f"trained on (up to {hi * 255:g}); use --prior bm3d or dip")
        return torch.from_numpy(np.clip(denoise(model, obs, sigma, self.params.colour), 0, 1))[None].to(problem.device)


def _poisson_peak(problem) -> float | None:
    """The peak of a problem whose only degradation is Poisson noise, else None."""
    stages = list(getattr(problem, "degradations", None) or [])
    if len(stages) == 1 and getattr(stages[0], "name", "") == "poisson":
        return float(stages[0].params.peak)
    return None


@hookimpl
def restorekit_register_priors(registry):
    for cls in (NoPrior, TV, DeepImagePrior, Learned):
        registry.add(cls)
