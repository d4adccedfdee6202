"""The ``train`` command: fit an image-to-image network to examples (restorekit/learn/train.py)."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import _error, deprecated, dim_line, err_console, guard, out_console

TRAIN_EXAMPLES = """
[bold]Examples[/bold]

[dim]# a gray denoiser for sigma 0-55 on your own clean images, 30 minutes at most; continue it; use it[/dim]
restorekit train clean_dir/ --out model/ --time-limit 1800
restorekit train clean_dir/ --out model/ --resume
restorekit run noisy.png --mode restore --degrade gaussian:25 --prior learned:model=model/

[dim]# a convolutional autoencoder against one noise; pairs of fast and slow scans; a bundled data set[/dim]
restorekit train clean_dir/ --degrade gaussian:25 --net conv-autoencoder --epochs 20 --out model/
restorekit train --pairs low_dir/ high_dir/ --net skip:levels=3,channels=32 --out model/
restorekit train --dataset faces --degrade salt-pepper:0.1 --net dense-autoencoder:code=64 --out model/

[dim]# the shipped gray denoiser fine-tuned on colour photos' channels (how restorekit's colour model was made)[/dim]
restorekit train colour_dir/ --init restorekit/data/models/gaussian-gray --colour-spaces opponent,pca,rgb --lr 2e-4 --iters 3000 --out colour/

[dim]# fine-tune a model on another degradation; score it; decode random codes[/dim]
restorekit train clean_dir/ --init model/ --degrade periodic --out tuned/
restorekit eval model/ test_dir/ --degrade gaussian:25
restorekit sample model/ --count 16
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
    folder: Annotated[Optional[Path], typer.Argument(help="Folder of clean training images (searched recursively). Or --pairs, or --dataset.", show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Model folder to write (model.safetensors, model.json, curves.png, train.json, checkpoint.safetensors).", show_default=False)] = None,
    pairs: Annotated[Optional[tuple[Path, Path]], typer.Option("--pairs", help="LOW HIGH: folders of degraded and clean images, matched by name.", show_default=False)] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="A bundled data set, nothing downloaded: faces (lfw_subset, 25x25), photos (64x64 tiles of scikit-image's photos), digits (8x8; needs scikit-learn).", show_default=False)] = None,
    degrade: Annotated[Optional[list[str]], typer.Option("--degrade", "-d", help="Degradation to train against; repeat to mix (each patch draws one, fresh noise every draw). Default: Gaussian noise from --sigma-range.", show_default=False)] = None,
    net: Annotated[str, typer.Option("--net", "-n", help="Generator spec of the network: resunet[:WIDTH] (told the noise level when no --degrade), dncnn, conv-autoencoder[:skips=true], dense-autoencoder:code=N, skip, unet... See: restorekit list generators.")] = "resunet",
    sigma_range: Annotated[str, typer.Option("--sigma-range", help="Without --degrade: Gaussian noise levels LO,HI in 0-255 units, drawn per patch.")] = "0,55",
    channels: Annotated[int, typer.Option("--channels", help="1: a gray model (it restores colour images channel by channel); 3: a colour model.")] = 1,
    colour_spaces: Annotated[Optional[str], typer.Option("--colour-spaces", metavar="LIST", help="A gray model (--channels 1) for colour images: train on the channels of the colour images in these colour spaces (comma-separated: opponent, pca, rgb), each shifted and scaled as the learned prior's colour parameter feeds them, with the noise added in RGB and clipped (default: the images converted to gray).", show_default=False)] = None,
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs (each about one pass over the training pixels; validated, checkpointed and the best kept after each).")] = 20,
    iters_per_epoch: Annotated[Optional[int], typer.Option("--iters-per-epoch", help="Iterations (Adam steps) per epoch (default: about one pass over the training pixels).", show_default=False)] = None,
    iters: Annotated[Optional[int], typer.Option("--iters", "-i", help="Total iterations (Adam steps), instead of --epochs.", show_default=False)] = None,
    batch: Annotated[int, typer.Option("--batch", help="Patches per step.")] = 32,
    patch: Annotated[Optional[int], typer.Option("--patch", help="Patch side in pixels (default: 64; a data set's images whole).", show_default=False)] = None,
    loss: Annotated[str, typer.Option("--loss", help="mse, l1, bce (binary cross-entropy) or ssim (1 - SSIM).")] = "mse",
    lr: Annotated[float, typer.Option("--lr", help="Adam's starting learning rate (cosine decay to 1/100).")] = 1e-3,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the split, the patches, the noise and the weights.")] = 0,
    split: Annotated[str, typer.Option("--split", help="Train, validation and test fractions of the images (seeded shuffle).")] = "0.7,0.2,0.1",
    time_limit: Annotated[Optional[float], typer.Option("--time-limit", help="Stop after this many seconds, keeping the best model.", show_default=False)] = None,
    precision: Annotated[str, typer.Option("--precision", help="auto (bf16 on CPUs with bfloat16 instructions), fp32 or bf16.")] = "auto",
    device: Annotated[str, typer.Option("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.")] = "auto",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start a new training in an --out that holds an earlier model (only a folder train wrote): its files are set aside, and removed once the new training has written a model (put back if it writes none).")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the training in --out from its checkpoint (epoch, optimizer state, random state), with the options it was started with (only --time-limit and --device may change).")] = False,
    init: Annotated[Optional[Path], typer.Option("--init", help="Start from the weights of this model folder (fine-tuning; the same --net).", show_default=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print train.json to stdout; no progress bar.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    steps_per_epoch: Annotated[Optional[int], typer.Option("--steps-per-epoch", hidden=True)] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", hidden=True)] = None,
) -> None:
    """Train a network on examples: the model folder is for --prior learned:model=OUT, eval and sample.

    Clean images get the --degrade degradations (or Gaussian noise from
    --sigma-range), or --pairs bring degraded and clean images.  The best
    model by validation PSNR is kept in OUT/model.safetensors, scored on the
    test images at the end.  Ctrl-C, SIGTERM and --time-limit stop with the
    best model kept; --resume continues.
    """
    with guard(debug):
        from ..errors import UsageError
        from ..learn.train import TrainSettings
        from ..learn.train import train as run_training
        from ..session.signals import exit_code_for, run_signals

        if steps is not None:
            deprecated("--steps", "--iters")
            iters = iters if iters is not None else steps
        if steps_per_epoch is not None:
            deprecated("--steps-per-epoch", "--iters-per-epoch")
            iters_per_epoch = iters_per_epoch if iters_per_epoch is not None else steps_per_epoch
        if out is None:
            raise UsageError("--out is required: the model folder to write")
        if overwrite and resume:
            raise UsageError("--overwrite starts a new training and --resume continues one: give one of them")
        try:
            lo_hi = _pair(sigma_range, "--sigma-range", 2)
            fractions = _pair(split, "--split", 3)
        except typer.BadParameter as exc:
            raise UsageError(str(exc)) from None
        settings = TrainSettings(
            folder=folder, out=out, pairs=pairs, dataset=dataset, degrade=tuple(degrade or ()), net=net,
            sigma_range=lo_hi, channels=channels, epochs=epochs, steps_per_epoch=iters_per_epoch, steps=iters,
            batch=batch, patch=patch, loss=loss, lr=lr, seed=seed, split=fractions, time_limit=time_limit,
            precision=precision, device=device, resume=resume, init=init,
            colour_spaces=tuple(c.strip() for c in colour_spaces.split(",")) if colour_spaces else (),
        )
        aside = _set_aside_model(out, settings) if overwrite else None
        log = None if json_out else dim_line
        try:
            with run_signals() as signals, _progress(not json_out) as progress:
                report = run_training(settings, log=log, progress=progress)
        except BaseException:
            _put_back(aside, out)  # a training that wrote no model leaves the earlier one where it was
            raise
        _put_back(aside, out)
        if json_out:
            sys.stdout.write(json.dumps({"out": str(out), **report.__dict__}, indent=1) + "\n")
        else:
            out_console.print(f"model: {out}/model.safetensors  [best validation PSNR {report.best_val_psnr:.2f} dB "
                              f"at epoch {report.best_epoch}; {report.epochs_run} epochs, {report.steps_run} iterations, "
                              f"{report.seconds:.0f} s, stopped by {report.stopped_by}]", highlight=False, markup=False)
        if signals.stopped_by is not None:
            _error(f"interrupted: the best model so far is in {out}; rerun with --resume to continue")
            raise typer.Exit(exit_code_for(signals.stopped_by))


#: what train writes into its --out: a folder holding only these, with a model.json, may be overwritten
MODEL_FILES = ("model.safetensors", "model.json", "curves.png", "train.json", "checkpoint.safetensors",
               "code.safetensors")


def _set_aside_model(out: Path, settings) -> Path | None:
    """``--overwrite``: move an earlier training's files out of ``out`` into a hidden folder beside it (the
    run rules: only a folder restorekit wrote, nothing else in it, never a folder holding the training
    images), so the new training starts there; :func:`_put_back` removes them once a new model exists, or
    puts them back.  Checked whole before anything moves; a process killed meanwhile leaves them in that
    folder (``.OUT.rk-previous-*``), never deleted."""
    import os
    import tempfile

    from ..errors import UsageError
    from ..learn.train import check

    if not out.is_dir() or not any(out.iterdir()):
        return None
    check(settings)  # the options are right before the earlier model moves
    for src in (settings.folder, *(settings.pairs or ())):
        if src is not None and out.resolve() in (Path(src).resolve(), *Path(src).resolve().parents):
            raise UsageError(f"--overwrite: '{out}' holds the training images '{src}'; choose another --out")
    names = sorted(os.listdir(out))
    foreign = [n for n in names if n not in MODEL_FILES]
    if foreign or "model.json" not in names:
        why = f"it holds '{foreign[0]}', which train did not write" if foreign else "it has no model.json"
        raise UsageError(f"--overwrite only replaces a model folder restorekit wrote, and '{out}' is not one: "
                         f"{why}; choose another --out")
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name[:80]}.rk-previous-", dir=out.parent))
    for n in names:
        os.replace(out / n, aside / n)
    return aside


def _put_back(aside: Path | None, out: Path) -> None:
    """After the new training: the earlier model's files go once a new model.json is in ``out``; else they
    return to ``out`` (where nothing of theirs was written meanwhile)."""
    import os
    import shutil

    if aside is None:
        return
    if (out / "model.json").exists():
        shutil.rmtree(aside, ignore_errors=True)
        return
    for n in os.listdir(aside):
        if not os.path.lexists(out / n):
            os.replace(aside / n, out / n)
    with contextlib.suppress(OSError):
        aside.rmdir()  # only when every file went back


class _progress:
    """A rich progress bar (epoch, loss, best validation PSNR) on a terminal; nothing otherwise."""

    def __init__(self, wanted: bool) -> None:
        self.bar = None
        if wanted and err_console.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
                                TextColumn("loss {task.fields[loss]:.5f}  val {task.fields[best]}"),
                                TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=True)
        self.task = None

    def __enter__(self):
        if self.bar is None:
            return None
        self.bar.__enter__()
        return self

    def __call__(self, *, step, total, epoch, epochs, loss, best) -> None:
        fields = {"epoch": epoch, "epochs": epochs, "loss": loss, "best": "-" if best is None else f"{best:.2f} dB"}
        if self.task is None:
            self.task = self.bar.add_task("train", total=total, completed=step, **fields)
        self.bar.update(self.task, completed=step, **fields)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
