"""The ``train`` command: fit a Gaussian denoiser to a folder of clean images (restorekit/learn/train.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import _error, err_console, guard, out_console

TRAIN_EXAMPLES = """
[bold]Examples[/bold]

[dim]# a gray denoiser for sigma 0-55 on your own clean images, 30 minutes at most[/dim]
restorekit train clean_dir/ --out model/ --time-limit 1800

[dim]# continue it; then use it[/dim]
restorekit train clean_dir/ --out model/ --resume
restorekit run noisy.png --mode restore --degrade gaussian:25 --prior learned:model=model/
"""


def _pair(text: str, what: str, n: int) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != n:
        raise typer.BadParameter(f"{what} takes {n} comma-separated numbers (got {text!r})")
    return vals


def train(
    folder: Annotated[Path, typer.Argument(help="Folder of clean training images (searched recursively).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write (model.safetensors, model.json, checkpoint.pt, train.json).", show_default=False)],
    sigma_range: Annotated[str, typer.Option("--sigma-range", help="Gaussian noise levels to train on, LO,HI in 0-255 units (drawn per patch; the model is told the level).")] = "0,55",
    channels: Annotated[int, typer.Option("--channels", help="1: a gray model (it denoises colour images channel by channel in an opponent colour space); 3: a colour model.")] = 1,
    width: Annotated[int, typer.Option("--width", help="Channels of the network at full resolution (doubled at each of its 3 scales).")] = 32,
    steps: Annotated[int, typer.Option("--steps", help="Adam steps (the learning rate decays on a cosine over them).")] = 5000,
    batch: Annotated[int, typer.Option("--batch", help="Patches per step.")] = 32,
    patch: Annotated[int, typer.Option("--patch", help="Patch side in pixels (a multiple of 4).")] = 64,
    lr: Annotated[float, typer.Option("--lr", help="Adam's starting learning rate.")] = 1e-3,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the split, the patches, the noise and the weights.")] = 0,
    val_every: Annotated[int, typer.Option("--val-every", help="Score on the validation images every N steps (and keep the best model).")] = 250,
    split: Annotated[str, typer.Option("--split", help="Train, validation and test fractions of the images (seeded shuffle).")] = "0.7,0.2,0.1",
    time_limit: Annotated[Optional[float], typer.Option("--time-limit", help="Stop after this many seconds, keeping the best model.", show_default=False)] = None,
    precision: Annotated[str, typer.Option("--precision", help="auto (bf16 on CPUs with bfloat16 instructions), fp32 or bf16.")] = "auto",
    resume: Annotated[bool, typer.Option("--resume", help="Continue the training in --out from its checkpoint.")] = False,
    init: Annotated[Optional[Path], typer.Option("--init", help="Start from the weights of this model folder (fine-tuning).", show_default=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print train.json to stdout.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Train a Gaussian denoiser on clean images: the weights are for --prior learned:model=OUT.

    Patches of the training images get Gaussian noise with a level drawn from
    --sigma-range; the best model by validation PSNR (sigma 15, 25, 50 on the
    validation images) is kept in OUT/model.safetensors.  Ctrl-C, SIGTERM and
    --time-limit stop with the best model kept; --resume continues.
    """
    with guard(debug):
        from ..errors import UsageError
        from ..learn.train import TrainSettings
        from ..learn.train import train as run_training
        from ..run.signals import exit_code_for, run_signals

        if precision not in ("auto", "fp32", "bf16"):
            raise UsageError(f"unknown precision {precision!r} (valid: auto, fp32, bf16)")
        try:
            lo_hi = _pair(sigma_range, "--sigma-range", 2)
            fractions = _pair(split, "--split", 3)
        except typer.BadParameter as exc:
            raise UsageError(str(exc)) from None
        settings = TrainSettings(
            folder=folder, out=out, sigma_range=lo_hi, channels=channels, width=width, steps=steps, batch=batch,
            patch=patch, lr=lr, seed=seed, val_every=val_every, split=fractions, time_limit=time_limit,
            precision=precision, resume=resume, init=init,
        )
        log = None if json_out else (lambda m: err_console.print(f"[dim]{m}[/dim]", highlight=False))
        with run_signals() as signals:
            report = run_training(settings, log=log)
        if json_out:
            sys.stdout.write(json.dumps({"out": str(out), **report.__dict__}, indent=1) + "\n")
        else:
            out_console.print(f"model: {out}/model.safetensors  [best validation PSNR {report.best_val_psnr:.2f} dB "
                              f"at step {report.best_step}; {report.steps_run} steps, {report.seconds:.0f} s, "
                              f"stopped by {report.stopped_by}]", highlight=False, markup=False)
        if signals.stopped_by is not None:
            _error(f"interrupted: the best model so far is in {out}; rerun with --resume to continue")
            raise typer.Exit(exit_code_for(signals.stopped_by))
