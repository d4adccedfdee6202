"""The ``segment`` and ``decompose`` commands: split one image into parts (restorekit/segment/)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import _host, deprecated, err_console, guard, out_console, reserve_fit_write

SEGMENT_EXAMPLES = """
[bold]Examples[/bold]

[dim]# object and background: without a hint the texture split (no fit), with a box Double-DIP[/dim]
restorekit segment photo.png
restorekit segment photo.png --hint box:40,30,120,90

[dim]# scored against a reference mask (white = object): IoU, Dice, boundary F-score in run.json[/dim]
restorekit segment photo.png --method double-dip --reference mask.png --out seg/

[dim]# K segments by a CNN fitted to the image; the baselines; scribbles (red object, blue background)[/dim]
restorekit segment photo.png --method clustering:k=8
restorekit segment photo.png --method chan-vese
restorekit segment photo.png --method random-walker --hint scribbles:marks.png

[dim]# a short fit: 100 iterations, or 20 seconds, whichever comes first; the record on stdout[/dim]
restorekit segment photo.png --iters 100 --time-limit 20 --json

[dim]# every method and its parameters[/dim]
restorekit list decompositions
"""

DECOMPOSE_EXAMPLES = """
[bold]Examples[/bold]

[dim]# two images seen through each other: from two mixtures (better) or one[/dim]
restorekit decompose mix1.png --task transparency --second mix2.png
restorekit decompose mix1.png --task transparency

[dim]# a watermark inside a box; haze (a haze-free image, a transmission map, the airlight)[/dim]
restorekit decompose marked.png --task watermark --hint box:200,150,120,40
restorekit decompose hazy.png --task dehaze
restorekit decompose hazy.png --task dehaze --method double-dip --iters 300 --device cuda
"""

from ..segment.defaults import default_method  # noqa: E402 - torch-free; re-exported for older imports


def _progress(show: bool):
    if not show:
        return None, None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("[bold]fitting"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                   TimeElapsedColumn(), console=err_console, transient=False)
    task = bar.add_task("fit", total=None, info="")

    def cb(iteration: int, total: int, loss: float) -> None:
        bar.update(task, total=total, completed=iteration, info=f"loss {loss:.3e}")

    return cb, bar


def _execute(request, json_out: bool, debug: bool) -> None:
    with guard(debug):
        from ..io import check_input_file
        from ..session.signals import exit_code_for
        from ..segment.pipeline import decompose, input_paths, prepare, record_json, write

        check_input_file(request.image, "image")
        if request.device is not None:
            from ..session.device import pick_device

            pick_device(request.device)  # an unknown or absent device: one line, before any work
        outcome = prepare(request, _host().registry)
        inputs = input_paths(request)
        cb, bar = _progress(not json_out and err_console.is_terminal)
        done = reserve_fit_write(out=request.out, source=request.image, inputs=inputs, overwrite=request.overwrite,
                                 bar=bar, json_out=json_out, fit=lambda: decompose(outcome, progress=cb),
                                 write=lambda folder, o: write(o, folder))
        rec = outcome.record
        if json_out:
            sys.stdout.write(record_json(rec))
        else:
            _summary(rec, done.folder.path, done.files)
        stopped = rec["stopped"] == "interrupted"
        if stopped or done.signals.held:
            err_console.print("interrupted: wrote the result so far" if stopped
                              else "interrupted: the fit had finished; wrote the result", highlight=False)
            raise typer.Exit(exit_code_for(done.signals.signum))


def _summary(rec: dict, out: Path, files: dict[str, str]) -> None:
    line = f"{rec['command']} {rec['task']}: {rec['method']} ({rec['iterations']} iterations, {rec['seconds']:.1f} s"
    line += ")" if rec["stopped"] == "done" else f", stopped: {rec['stopped']})"
    out_console.print(line, highlight=False, markup=False)
    if rec["segments"] is not None:
        out_console.print(f"segments: {rec['segments']}; object: {100 * (rec['object_fraction'] or 0):.1f} % of the pixels",
                          highlight=False, markup=False)
    if rec["metrics"]:
        m = rec["metrics"]
        out_console.print(f"against the reference: IoU {m['iou']:.4f}  Dice {m['dice']:.4f}  boundary F {m['boundary_f']:.4f}",
                          highlight=False, markup=False)
    for note in rec["notes"]:
        err_console.print(f"[dim]note: {note}[/dim]", markup=True, highlight=False, soft_wrap=True)
    out_console.print(f"wrote {out}/: " + ", ".join(files.values()), highlight=False, markup=False, soft_wrap=True)


_Hint = Annotated[Optional[list[str]], typer.Option("--hint", help="box:x,y,w,h (the object inside; left, top, width, height in pixels) or scribbles:FILE (an image of the same size: red/white marks the object, blue/green/mid-gray the background). Repeat for both.", show_default=False)]
_Out = Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default: runs/<image>-NNN); a missing or empty one, or --overwrite for an earlier result.", show_default=False)]
_Device = Annotated[str, typer.Option("--device", help="Where a method with networks runs: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps. double-dip and clustering put their networks, codes, image and masks there; the NumPy methods (texture-split, otsu, kmeans, dark-channel, ...) run on the CPU. The record's notes say which.")]
_Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an earlier restorekit result in --out.")]
_Seed = Annotated[int, typer.Option("--seed", help="Seed of the networks' weights and inputs, and of k-means.")]
_Iters = Annotated[Optional[int], typer.Option("--iters", "-i", min=1, help="Iterations of an iterative method (default: the method's own; see restorekit list decompositions NAME).", show_default=False)]
_TimeLimit = Annotated[Optional[float], typer.Option("--time-limit", min=0.001, help="Stop an iterative method after this many seconds, keeping the result so far.", show_default=False)]
_Json = Annotated[bool, typer.Option("--json", help="Print run.json to stdout; no progress bar.")]
_Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]


def segment(
    image: Annotated[Path, typer.Argument(help="The image to segment (PNG, TIFF, JPEG).", show_default=False)],
    method: Annotated[Optional[str], typer.Option("--method", help="Decomposition method spec: texture-split, double-dip, clustering[:k=K], otsu, chan-vese, kmeans[:K], slic, random-walker... Default, as measured (mean IoU, 6 held-out cases): texture-split without a hint (0.613; double-dip 0.550, 5x slower), double-dip with a hint (box: 0.669; texture-split 0.610). See: restorekit list decompositions.", show_default=False)] = None,
    hint: _Hint = None,
    reference: Annotated[Optional[Path], typer.Option("--reference", help="The reference mask (ground truth; white = object, same size): scores IoU, Dice and boundary F-score.", show_default=False)] = None,
    out: _Out = None,
    overwrite: _Overwrite = False,
    seed: _Seed = 0,
    iters: _Iters = None,
    time_limit: _TimeLimit = None,
    device: _Device = "auto",
    json_out: _Json = False,
    debug: _Debug = False,
    truth: Annotated[Optional[Path], typer.Option("--truth", hidden=True)] = None,
) -> None:
    """Split one image into object and background (or K segments), with no training data.

    Writes mask.png (the object's share), labels.png (segment numbers),
    layer-*.png, overlay.png and run.json into the output folder,
    atomically.  Ctrl-C stops an iterative method and keeps the result so far.
    """
    from ..segment.pipeline import Request

    if truth is not None:
        deprecated("--truth", "--reference")
        reference = reference or truth
    hints = list(hint or [])
    _execute(Request(image=image, task="segment", method=method or default_method("segment", "segment", hints),
                     hints=hints, truth=reference, out=out, overwrite=overwrite, seed=seed, iters=iters,
                     time_limit=time_limit, command="segment", device=device),
             json_out, debug)


def decompose(
    image: Annotated[Path, typer.Argument(help="The image to split into layers (PNG, TIFF, JPEG).", show_default=False)],
    task: Annotated[str, typer.Option("--task", "-t", help="transparency (two images mixed), watermark (needs --hint box), dehaze, or a plugin's task.", show_default=False)],
    method: Annotated[Optional[str], typer.Option("--method", help="Decomposition method spec (see: restorekit list decompositions). Default: dark-channel for dehaze (19.89 dB / SSIM 0.840 in 0.003 s against double-dip's 16.15 / 0.699 in 17 s, 4 photos), double-dip for the other tasks.", show_default=False)] = None,
    hint: _Hint = None,
    second: Annotated[Optional[Path], typer.Option("--second", help="transparency: a second mixture of the same two images (other weights).", show_default=False)] = None,
    out: _Out = None,
    overwrite: _Overwrite = False,
    seed: _Seed = 0,
    iters: _Iters = None,
    time_limit: _TimeLimit = None,
    device: _Device = "auto",
    json_out: _Json = False,
    debug: _Debug = False,
) -> None:
    """Split one image into layers: two mixed images, an image and its watermark, a scene and its haze.

    Writes layer-*.png, mask.png (the mixing map, where the task has one),
    overlay.png and run.json into the output folder, atomically.
    """
    from ..segment.pipeline import Request

    task = task.strip().lower()
    _execute(Request(image=image, task=task, method=method or default_method("decompose", task, list(hint or [])),
                     hints=list(hint or []), second=second, out=out, overwrite=overwrite, seed=seed, iters=iters,
                     time_limit=time_limit, command="decompose", device=device),
             json_out, debug)
