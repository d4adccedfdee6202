"""A plain-PyTorch Deep Image Prior loop, written independently of restorekit's engine.

It mirrors the loop of the DIP authors' notebooks as REFERENCE.md section 1
describes it, so that ``benchmarks/run.py`` can check that restorekit's
engine does the same work:

* input code ``z`` = ``input_depth`` channels of U[0, 0.1) noise;
* every iteration ``z' = z + reg_noise_std * N(0, 1)``, ``out = net(z')``,
  ``loss = MSE(A(out) * mask, y * mask)`` (mean over every element, masked
  ones included), one Adam step with PyTorch's default betas, no schedule;
* BatchNorm always in training mode;
* an EMA of the outputs kept aside: the first output as is, then
  ``avg = 0.99 avg + 0.01 out`` (updated with the perturbed output of every
  iteration, before the step, as in the notebook);
* backtracking: when the PSNR of the fit to the observation drops by more
  than 5 dB since the last saved state, the saved weights are restored and
  the step is skipped; otherwise the weights and that PSNR are saved.  The
  denoising notebook checks every iteration except multiples of 100
  (``check="except100"``); the restoration notebook every 50 iterations on
  the masked PSNR (``check=50``).

The degradation synthesis (Gaussian noise, Bernoulli mask, Lanczos2
downsampling) is written here too.  It draws its random numbers in the
order restorekit documents for its seeded degradations (a NumPy generator
seeded ``[seed, stage, 0]`` for a mask and ``[seed, stage, 1]`` for noise),
so that both sides can start from the same observation; ``run.py`` checks
that they agree.

Only the network comes from restorekit (``restorekit.nets.skip.build_skip``):
the network is not what is being compared.

``rng="matched"`` draws the network's initial weights, the input code and the
per-iteration perturbations in the order restorekit's engine does (global
``torch.manual_seed(seed)`` for the weights and the perturbations, a separate
generator for ``z`` seeded with ``(seed * 0x9E3779B1 + 0x5EED) mod 2**63``,
the derivation restorekit documents in ``restorekit.run.engine.code_seed``).  With that, identical loops give
identical trajectories, so any difference at equal iterations comes from the
loop's semantics, not from the luck of the draw.  ``rng="own"`` uses
unrelated seeds, to show the seed-to-seed spread instead.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# degradation synthesis and forward operators (numpy in, torch operators)
# ---------------------------------------------------------------------------


def add_gaussian_noise(x: np.ndarray, sigma255: float, seed: int, stage: int = 0) -> np.ndarray:
    """``clip(x + N(0, sigma/255))``; ``x`` is (C, H, W) float32 in [0, 1]."""
    rng = np.random.default_rng([seed, stage, 1])
    noise = rng.normal(0.0, sigma255 / 255.0, size=x.shape).astype(np.float32)
    return np.clip(x + noise, 0.0, 1.0).astype(np.float32)


def bernoulli_mask(height: int, width: int, lost: float, seed: int, stage: int = 0) -> np.ndarray:
    """(H, W) bool, True where the pixel is kept; each pixel lost with probability ``lost``."""
    rng = np.random.default_rng([seed, stage, 0])
    return rng.random((height, width)) >= lost


def lanczos2_taps(factor: int) -> np.ndarray:
    """Lanczos-2 anti-aliasing filter for downsampling by ``factor``.

    ``4 * factor`` taps centred between samples (half-pixel phase), i.e. the
    continuous kernel ``sinc(t) sinc(t / 2)`` for ``|t| < 2`` evaluated at
    ``t = (j + 1/2 - 2 factor) / factor``, normalised to sum to 1.
    """
    n = 4 * factor
    t = (np.arange(n) + 0.5 - n / 2) / factor
    k = np.sinc(t) * np.sinc(t / 2.0)
    k[np.abs(t) >= 2] = 0.0
    return k / k.sum()


class Lanczos2Down(torch.nn.Module):
    """Separable Lanczos-2 downsampling by an integer factor, edges replicated."""

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor
        k = lanczos2_taps(factor)  # float64; the 2-D kernel is formed before rounding to float32
        self.register_buffer("k2d", torch.tensor(np.outer(k, k), dtype=torch.float32)[None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.factor
        n = self.k2d.shape[-1]
        extra = n - f  # the output keeps exactly size // f samples
        x = F.pad(x, (extra // 2, extra - extra // 2, extra // 2, extra - extra // 2), mode="replicate")
        c = x.shape[1]
        return F.conv2d(x, self.k2d.to(x.dtype).expand(c, 1, n, n), stride=f, groups=c)


def downsample_lanczos2(x: np.ndarray, factor: int) -> np.ndarray:
    with torch.no_grad():
        return Lanczos2Down(factor)(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None])[0].numpy()


@dataclass
class Observation:
    """A synthesised problem: ``y`` (C, h, w), ``mask`` (h, w) bool or None, ``factor``."""

    y: np.ndarray
    mask: np.ndarray | None = None
    factor: int = 1
    sigma: float | None = None  # known noise std in [0, 1] units


def synthesize(clean: np.ndarray, task: str, level: float, seed: int) -> Observation:
    """Degrade a clean (C, H, W) float32 image.

    ``task`` is ``denoise`` (``level`` = sigma in 0-255 units), ``inpaint``
    (``level`` = fraction of pixels lost) or ``sr`` (``level`` = factor).
    """
    if task == "denoise":
        return Observation(add_gaussian_noise(clean, level, seed), sigma=level / 255.0)
    if task == "inpaint":
        m = bernoulli_mask(clean.shape[1], clean.shape[2], level, seed)
        return Observation((clean * m[None]).astype(np.float32), mask=m)
    if task == "sr":
        f = int(level)
        if clean.shape[1] % f or clean.shape[2] % f:
            raise ValueError(f"image {clean.shape[2]}x{clean.shape[1]} is not a multiple of {f}")
        return Observation(downsample_lanczos2(clean, f), factor=f)
    raise ValueError(f"unknown task {task!r}")


# ---------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------


@dataclass
class LoopResult:
    final: np.ndarray  # (C, H, W) net(z) after the last step (no EMA), clipped to [0, 1]
    ema: np.ndarray | None  # (C, H, W) the EMA of outputs, clipped
    iterations: int
    backtracks: int
    seconds: float
    history: dict[str, list] = field(default_factory=dict)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a - b) ** 2).item()
    return 10.0 * math.log10(1.0 / mse) if mse > 0 else float("inf")


def run_dip(
    y: np.ndarray,
    *,
    out_shape: tuple[int, int, int],
    build_net: Callable[[int, int], torch.nn.Module],
    mask: np.ndarray | None = None,
    factor: int = 1,
    iterations: int,
    lr: float = 0.01,
    input_depth: int = 32,
    reg_noise_std: float = 1.0 / 30.0,
    ema: float = 0.99,
    backtrack_db: float = 5.0,
    check: str | int = "except100",
    seed: int = 0,
    rng: str = "matched",
    device: str | torch.device = "cpu",
    reference: np.ndarray | None = None,
    log_every: int = 0,
    lr_schedule: str = "constant",
) -> LoopResult:
    """Fit ``net(z)`` so that ``A(net(z))`` matches ``y``; return the final iterate and the EMA.

    ``y`` is (C, h, w) float32, ``out_shape`` the (C, H, W) of the image to
    restore (``H = factor * h``).  ``build_net(in_channels, out_channels)``
    makes the network.  ``reference`` (C, H, W), when given, is used only to
    log PSNR every ``log_every`` iterations.  ``lr_schedule="cosine"`` decays
    the learning rate from ``lr`` to 0 over the run (half a cosine period); the
    authors use a constant rate.
    """
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}")
    device = torch.device(device)
    c, H, W = out_shape
    if rng == "matched":
        torch.manual_seed(seed)
        code_gen = torch.Generator().manual_seed((seed * 0x9E3779B1 + 0x5EED) % 2**63)
    elif rng == "own":
        torch.manual_seed(10_007 + seed)
        code_gen = torch.Generator().manual_seed(20_011 + seed)
    else:
        raise ValueError(f"rng must be 'matched' or 'own', got {rng!r}")
    z = (torch.rand((1, input_depth, H, W), generator=code_gen) * 0.1).to(device)
    net = build_net(input_depth, c).to(device)
    net.train()
    params = list(net.parameters())
    opt = torch.optim.Adam(params, lr=lr)

    y_t = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))[None].to(device)
    if mask is not None:
        m_t = torch.from_numpy(np.asarray(mask, dtype=np.float32))[None, None].to(device)
    else:
        m_t = None
    down = Lanczos2Down(factor).to(device) if factor > 1 else None
    y_masked = y_t * m_t if m_t is not None else y_t
    ref_t = torch.from_numpy(reference)[None].to(device) if reference is not None else None

    def should_check(i: int) -> bool:
        if backtrack_db <= 0:
            return False
        if check == "except100":
            return i % 100 != 0
        return i % int(check) == 0

    avg: torch.Tensor | None = None
    saved: list[torch.Tensor] | None = None
    last_fit = None
    backtracks = 0
    history: dict[str, list] = {"iteration": [], "loss": [], "psnr": [], "psnr_ema": []}
    start = time.perf_counter()
    for i in range(1, iterations + 1):
        if lr_schedule == "cosine":
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * (i - 1) / iterations))
        opt.zero_grad(set_to_none=True)
        z_in = z + reg_noise_std * torch.randn(z.shape, device=device) if reg_noise_std > 0 else z
        out = net(z_in)
        with torch.no_grad():
            o = out.detach()
            avg = o.clone() if avg is None else avg * ema + o * (1.0 - ema)
        a_out = down(out) if down is not None else out
        fit_pred = a_out * m_t if m_t is not None else a_out
        loss = F.mse_loss(fit_pred, y_masked)
        loss.backward()
        if should_check(i):
            fit_db = _psnr(fit_pred.detach(), y_masked)
            if last_fit is not None and fit_db < last_fit - backtrack_db:
                with torch.no_grad():
                    for p, s in zip(params, saved):
                        p.copy_(s)
                backtracks += 1
                continue
            saved = [p.detach().clone() for p in params]
            last_fit = fit_db
        opt.step()
        if log_every and (i % log_every == 0 or i == iterations):
            history["iteration"].append(i)
            history["loss"].append(float(loss.item()))
            if ref_t is not None:
                history["psnr"].append(_psnr(o.clamp(0, 1), ref_t))
                history["psnr_ema"].append(_psnr(avg.clamp(0, 1), ref_t))
    with torch.no_grad():
        final = net(z).detach()
    seconds = time.perf_counter() - start
    return LoopResult(
        final=final[0].clamp(0, 1).float().cpu().numpy(),
        ema=None if avg is None or ema <= 0 else avg[0].clamp(0, 1).float().cpu().numpy(),
        iterations=iterations,
        backtracks=backtracks,
        seconds=seconds,
        history=history,
    )
