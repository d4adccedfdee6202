"""``restorekit train``: fit a denoiser to a folder of clean images.

Every step draws a batch of random patches from the training images, adds
Gaussian noise with a sigma drawn per patch from ``sigma_range`` (the model
is told the sigma: one model for the whole range), and takes an Adam step
on the mean squared error, the learning rate decaying on a cosine to 1/100
of its start.  Every ``val_every`` steps the model is scored on centre crops
of the validation images at sigma 15, 25 and 50 (fixed noise, the same
every time); the best model so far is ``model.safetensors``, and
``checkpoint.pt`` (weights, optimiser, step, random state) lets
``--resume`` continue where a run stopped.  Ctrl-C, SIGTERM and the time
limit stop it with the best model kept.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import UsageError
from .data import ImageFolder, digest, list_images, split
from .model import CARD, WEIGHTS, save

CHECKPOINT = "checkpoint.pt"
#: the noise levels of the validation score (0-255 units)
VAL_SIGMAS = (15, 25, 50)


@dataclass
class TrainSettings:
    folder: Path
    out: Path
    sigma_range: tuple[float, float] = (0.0, 55.0)
    channels: int = 1  #: image channels of the model (1: gray; colour images are converted)
    width: int = 32  #: ResUNet channels at full resolution
    steps: int = 5000
    batch: int = 32
    patch: int = 64
    lr: float = 1e-3
    seed: int = 0
    val_every: int = 250
    split: tuple[float, float, float] = (0.7, 0.2, 0.1)
    time_limit: float | None = None
    precision: str = "auto"
    resume: bool = False
    init: Path | None = None


@dataclass
class TrainReport:
    steps_run: int = 0
    best_step: int = 0
    best_val_psnr: float = float("-inf")
    seconds: float = 0.0
    stopped_by: str = "steps"
    history: dict[str, list] = field(default_factory=lambda: {"step": [], "loss": [], "val_psnr": [], "time": []})


def check(s: TrainSettings) -> None:
    lo, hi = s.sigma_range
    if not (0 <= lo <= hi <= 255) or hi <= 0:
        raise UsageError(f"--sigma-range must be two levels 0 <= LO <= HI <= 255 with HI > 0 (got {lo},{hi})")
    for name, v in (("--steps", s.steps), ("--batch", s.batch), ("--width", s.width), ("--val-every", s.val_every)):
        if v < 1:
            raise UsageError(f"{name} must be at least 1 (got {v})")
    if s.patch < 16 or s.patch % 4:
        raise UsageError(f"--patch must be a multiple of 4, at least 16 (got {s.patch})")
    if s.channels not in (1, 3):
        raise UsageError(f"--channels must be 1 or 3 (got {s.channels})")
    if not s.lr > 0:
        raise UsageError(f"--lr must be positive (got {s.lr})")
    if s.time_limit is not None and not s.time_limit > 0:
        raise UsageError(f"--time-limit must be positive (got {s.time_limit})")
    if abs(sum(s.split) - 1) > 1e-6 or any(f < 0 for f in s.split) or s.split[1] <= 0:
        raise UsageError(f"--split must be three fractions that sum to 1, validation > 0 (got {s.split})")


def _psnr(a, b) -> float:
    import torch

    mse = torch.mean((a.clamp(0, 1) - b) ** 2, dim=(1, 2, 3)).clamp_min(1e-12)
    return float((-10 * torch.log10(mse)).mean())


def train(s: TrainSettings, *, log: Callable[[str], Any] | None = None,
          progress: Callable[[int, int, float, float | None], Any] | None = None) -> TrainReport:
    """Train into ``s.out`` (see the module docstring); returns what happened."""
    import torch

    from ..run.plan import cpu_has_native_bf16
    from .model import load
    from .nets import ResUNet

    check(s)
    log = log or (lambda _m: None)
    files = list_images(s.folder)
    parts = split(files, s.split, s.seed)
    out = Path(s.out)
    ckpt_path = out / CHECKPOINT
    if out.exists() and any(out.iterdir()) and not s.resume:
        raise UsageError(f"'{out}' already holds files; pass --resume to continue a training there, "
                         "or choose another --out")
    if s.resume and not ckpt_path.is_file():
        raise UsageError(f"--resume: '{out}' has no {CHECKPOINT} to continue from")
    torch.manual_seed(s.seed)
    net = ResUNet(image_channels=s.channels, channels=s.width, noise_map=True)
    if s.init is not None:
        init = load(Path(s.init))
        if init.card["config"] != net.config:
            raise UsageError(f"--init: the model in '{s.init}' is {init.card['config']}, not {net.config}")
        net.load_state_dict(init.net.state_dict())
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(k, s.steps) / s.steps)))
    rng = np.random.default_rng(s.seed)
    report = TrainReport()
    start_step = 0
    if s.resume:
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        rng.bit_generator.state = state["rng"]
        report = TrainReport(**state["report"])
        start_step = report.steps_run
        log(f"resuming at step {start_step} (best validation PSNR {report.best_val_psnr:.2f} dB)")
    precision = s.precision
    if precision == "auto":
        precision = "bf16" if cpu_has_native_bf16() else "fp32"
    train_set = ImageFolder(parts.train, s.channels)
    val_clean = torch.from_numpy(ImageFolder(parts.val, s.channels).centre_crops(max(s.patch, 128)))
    val_rng = torch.Generator().manual_seed(12345)
    val_sets = [(sig / 255.0, (val_clean + torch.randn(val_clean.shape, generator=val_rng) * sig / 255.0))
                for sig in VAL_SIGMAS]
    lo, hi = (v / 255.0 for v in s.sigma_range)
    card = {
        "architecture": "resunet", "config": net.config, "task": "gaussian",
        "sigma_range": list(s.sigma_range),
        "trained": {"folder": str(s.folder), "images": {"train": len(parts.train), "val": len(parts.val),
                                                         "test": len(parts.test)},
                    "digest": digest(files), "seed": s.seed, "steps": s.steps, "batch": s.batch, "patch": s.patch,
                    "lr": s.lr, "precision": precision,
                    "test_files": [str(p.relative_to(s.folder)) for p in parts.test]},
    }
    out.mkdir(parents=True, exist_ok=True)

    def validate() -> float:
        net.eval()
        with torch.no_grad():
            scores = [_psnr(net(noisy, torch.full((noisy.shape[0],), sig)), val_clean) for sig, noisy in val_sets]
        net.train()
        return float(np.mean(scores))

    def checkpoint() -> None:
        tmp = out / f".{CHECKPOINT}.tmp"
        torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "rng": rng.bit_generator.state, "report": asdict(report), "settings": str(s)}, tmp)
        os.replace(tmp, ckpt_path)

    t0 = time.perf_counter() - report.seconds

    def score_and_keep(step: int, loss_v: float) -> None:
        v = validate()
        report.steps_run, report.seconds = step, time.perf_counter() - t0
        h = report.history
        for key, val in (("step", step), ("loss", loss_v), ("val_psnr", v), ("time", report.seconds)):
            h[key].append(val)
        if v > report.best_val_psnr:
            report.best_val_psnr, report.best_step = v, step
            save(net, {**card, "val_psnr": round(v, 3), "step": step}, out)
        checkpoint()
        log(f"step {step}/{s.steps}: loss {loss_v:.5f}, validation PSNR {v:.2f} dB "
            f"(best {report.best_val_psnr:.2f} at {report.best_step}), {report.seconds:.0f} s")

    net.train()
    step = start_step
    loss_v = float("nan")
    try:
        while step < s.steps:
            if s.time_limit is not None and time.perf_counter() - t0 > s.time_limit:
                report.stopped_by = "time limit"
                break
            clean = torch.from_numpy(train_set.batch(rng, s.batch, s.patch))
            sig = torch.from_numpy(rng.uniform(lo, hi, s.batch).astype(np.float32))
            noise = torch.from_numpy(rng.standard_normal(clean.shape).astype(np.float32))
            noisy = clean + noise * sig[:, None, None, None]
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                pred = net(noisy, sig)
            loss = torch.mean((pred.float() - clean) ** 2)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            loss_v = float(loss.detach())
            if not math.isfinite(loss_v):
                raise UsageError(f"the training loss became {loss_v} at step {step}; try a lower --lr")
            if step % s.val_every == 0 or step == s.steps:
                score_and_keep(step, loss_v)
            if progress is not None:
                progress(step, s.steps, loss_v, report.best_val_psnr if report.best_step else None)
    except KeyboardInterrupt:
        report.stopped_by = "interrupted"
        # the steps since the last checkpoint are dropped: --resume continues from that checkpoint
    else:
        if step > report.steps_run or not (out / WEIGHTS).exists():
            score_and_keep(step, loss_v)
    if report.best_step == 0 and not (out / WEIGHTS).exists():
        score_and_keep(step, loss_v)  # interrupted before the first validation: keep what there is
    report.seconds = time.perf_counter() - t0
    (out / "train.json").write_text(json.dumps(asdict(report), indent=1), encoding="utf-8")
    return report


__all__ = ["TrainSettings", "TrainReport", "train", "CARD", "WEIGHTS", "CHECKPOINT"]
