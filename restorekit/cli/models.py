"""The ``eval``, ``models`` and ``sample`` commands: what to do with a trained model folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import deprecated, dim_line, err_console, guard, out_console, reserve_fit_write

EVAL_EXAMPLES = """
[bold]Examples[/bold]

[dim]# the model against the noisy input and every installed classical solver, sigma 25[/dim]
restorekit eval model/ test_dir/ --degrade gaussian:25

[dim]# against BM3D only; per-image rows; the table and a comparison picture into eval/[/dim]
restorekit eval model/ test_dir/ --degrade gaussian:25 --prior bm3d --per-image --out eval/

[dim]# a model trained on a bundled data set, scored on that set's test part (the model's own split)[/dim]
restorekit eval faces-ae/ --dataset faces --degrade gaussian:10
"""

SAMPLE_EXAMPLES = """
[bold]Examples[/bold]

[dim]# 16 images decoded from random codes of an autoencoder trained on faces[/dim]
restorekit train --dataset faces --net dense-autoencoder:code=32 --degrade gaussian:10 --out faces-ae/
restorekit sample faces-ae/ --count 16 --out samples.png
"""


def eval_model(
    model: Annotated[str, typer.Argument(help="Model folder (restorekit train --out), or a shipped model's name.", show_default=False)],
    folder: Annotated[Optional[Path], typer.Argument(help="Folder of clean test images (searched recursively). Or --dataset.", show_default=False)] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="A bundled data set instead of FOLDER, as for train: faces, photos, digits (its test part when the model was trained on it, else all of it).", show_default=False)] = None,
    degrade: Annotated[Optional[list[str]], typer.Option("--degrade", "-d", help="Degradation to test against (repeat to chain, as in run). Default: the one the model was trained on.", show_default=False)] = None,
    prior: Annotated[Optional[list[str]], typer.Option("--prior", "-p", help="Solver prior to compare the model with; repeatable. Default: every installed one (restorekit list priors).", show_default=False)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the degradation (image i gets seed + i).")] = 0,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Only the first N images (sorted by name).", show_default=False)] = None,
    per_image: Annotated[bool, typer.Option("--per-image", help="Also print each image's PSNR per method.")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder to write eval.json and compare.png into: missing or empty (see --overwrite).", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the results of an earlier eval in --out (only a folder eval wrote).")] = False,
    device: Annotated[Optional[str], typer.Option("--device", help="Where the model runs: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps. Default: cpu.", show_default=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    baseline: Annotated[Optional[list[str]], typer.Option("--baseline", "-b", hidden=True)] = None,
) -> None:
    """Score a trained model against the degraded input and the classical priors on the same images.

    PSNR, SSIM, MSE and MAE per image and their means; the model runs through
    --prior learned, the other priors on the same observations.
    """
    with guard(debug):
        from rich.table import Table

        from ..errors import UsageError
        from ..learn.evaluate import METRICS, evaluate
        from ..learn.evaluate import check_out as _check_eval_out
        from ..learn.evaluate import write_results as _write_eval

        priors = None
        if baseline:
            deprecated("--baseline/-b", "--prior/-p")
        if prior or baseline:
            priors = list(prior or []) + list(baseline or [])
        if (folder is None) == (dataset is None):
            raise UsageError("give the test images: a FOLDER or --dataset NAME (not both)")
        if dataset is not None:
            from ..learn.data import DATASETS

            if dataset not in DATASETS:
                raise UsageError(f"unknown data set '{dataset}' (valid: {', '.join(DATASETS)})")
        if limit is not None and limit < 1:
            raise UsageError(f"--limit must be at least 1 (got {limit})")
        if device is not None:
            from ..session.device import pick_device

            pick_device(device)
        log = None if json_out else dim_line

        def fit():
            return evaluate(Path(model), folder, degrade=degrade, baselines=priors, seed=seed, limit=limit,
                            log=log, keep=4 if out is not None else 0, dataset=dataset, device=device)

        held = None
        if out is None:
            result, kept = fit()
        else:
            # the output folder by run's rules (session/outdir.py), reserved before the work: missing or empty, or
            # with --overwrite an earlier eval's; never the inputs; written whole or not at all
            _check_eval_out(out, folder, Path(model))
            done = reserve_fit_write(out=out, source=None,
                                     inputs=[p for p in (folder, Path(model)) if p is not None and p.exists()],
                                     overwrite=overwrite, json_out=json_out, fit=fit,
                                     write=lambda f, res: _write_eval(f, *res))
            (result, kept), held = done.result, done.signals
        data = result.as_dict()
        if json_out:
            sys.stdout.write(json.dumps(data, indent=1) + "\n")
            _stop_if_signalled(held)
            return
        table = Table(title=f"{len(result.images)} images, {' + '.join(result.degrade)}")
        table.add_column("method")
        for k in METRICS:
            table.add_column(k.upper(), justify="right")
        table.add_column("s/image", justify="right")
        n = max(1, len(result.images))
        for m in result.methods:
            table.add_row("degraded input" if m == "input" else m, f"{result.mean(m, 'psnr'):.2f}",
                          f"{result.mean(m, 'ssim'):.4f}", f"{result.mean(m, 'mse'):.5f}", f"{result.mean(m, 'mae'):.4f}",
                          "" if m == "input" else f"{result.seconds[m] / n:.2f}")
        out_console.print(table)
        if per_image:
            rows = Table(title="PSNR (dB) per image")
            rows.add_column("image")
            for m in result.methods:
                rows.add_column(m, justify="right")
            for i, name in enumerate(result.images):
                rows.add_row(name, *(f"{result.scores[m]['psnr'][i]:.2f}" for m in result.methods))
            out_console.print(rows)
        for name, why in result.skipped.items():
            dim_line(f"{name} skipped: {why}")
        if out is not None:
            out_console.print(f"written: {out}/eval.json, {out}/compare.png", highlight=False, markup=False)
        _stop_if_signalled(held)


def _stop_if_signalled(signals) -> None:
    """A Ctrl-C or SIGTERM that came while the results were written: they are written; exit 130 or 143."""
    if signals is not None and signals.held:
        from ..session.signals import exit_code_for

        err_console.print("interrupted: the evaluation had finished; wrote the results", highlight=False)
        raise typer.Exit(exit_code_for(signals.signum))


def models(
    folder: Annotated[Path, typer.Argument(help="Folder to search for model folders (recursively).", show_default=False)] = Path("."),
    json_out: Annotated[bool, typer.Option("--json", help="Print the model cards as JSON.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """List the trained models in a folder: network, what it was trained on, its scores."""
    with guard(debug):
        from rich.table import Table

        from ..errors import UsageError
        from ..learn.model import find_models, read_card

        found = []
        for path in find_models(folder):
            try:
                card = read_card(path)  # checked field by field: a damaged one is listed as unreadable
            except UsageError as exc:
                card = {"error": str(exc)}
            found.append((path, card))
        if json_out:
            sys.stdout.write(json.dumps([{"path": str(p), **c} for p, c in found], indent=1) + "\n")
            return
        if not found:
            out_console.print(f"no models under {folder}", highlight=False, markup=False)
            return
        from rich.markup import escape

        table = Table()
        for col in ("model", "net", "trained on", "data", "parameters", "val PSNR", "test PSNR"):
            table.add_column(col, justify="right" if col.endswith(("PSNR", "parameters")) else "left")
        for path, card in found:
            if "error" in card:
                table.add_row(escape(str(path)), "unreadable (below)", "", "", "", "", "")
                continue
            net = card.get("net") or (f"{card['architecture']} (noise-level aware)" if "architecture" in card else "?")
            on = (", ".join(card["degrade"]) if card.get("degrade") else
                  "pairs" if "pairs" in (card.get("data") or {}) else
                  f"gaussian {card['sigma_range'][0]:g}-{card['sigma_range'][1]:g}" if card.get("sigma_range") else "?")
            data = card.get("data") or card.get("trained", {})
            src = data.get("dataset") or data.get("folder") or ("pairs" if "pairs" in data else "?")
            val = (card.get("val") or {}).get("psnr", card.get("val_psnr"))
            test = (card.get("test") or {}).get("psnr")
            table.add_row(str(path), net, on, str(src), f"{card.get('parameters', '')}",
                          "" if val is None else f"{val:.2f}", "" if test is None else f"{test:.2f}")
        out_console.print(table)
        for path, card in found:
            if "error" in card:
                out_console.print(f"unreadable: {card['error']}", highlight=False, markup=False)


def sample(
    model: Annotated[Path, typer.Argument(help="An autoencoder's model folder (restorekit train --net dense-autoencoder or conv-autoencoder).", show_default=False)],
    count: Annotated[int, typer.Option("--count", "-c", help="Images to decode.")] = 16,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random codes.")] = 0,
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write: the samples in a grid (never overwrites; see --overwrite).")] = Path("samples.png"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists.")] = False,
    device: Annotated[Optional[str], typer.Option("--device", help="Where the decoder runs: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps. Default: cpu.", show_default=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print what was written as JSON (out, count, seed, model).")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Decode random codes of an autoencoder into images (drawn from its training codes' mean and spread)."""
    with guard(debug):
        from ..errors import UsageError
        from ..learn.sample import sample_grid

        if not 1 <= count <= 1024:
            raise UsageError(f"--count must be 1 to 1024 (got {count})")
        if out.suffix.lower() != ".png":
            raise UsageError(f"--out must name a .png file (got '{out}')")
        if out.exists() and not overwrite:
            raise UsageError(f"'{out}' exists; pass --overwrite to replace it, or choose another --out")
        sample_grid(model, count, seed, out, overwrite=overwrite, device=device)
        if json_out:
            sys.stdout.write(json.dumps({"out": str(out), "count": count, "seed": seed, "model": str(model),
                                         "device": device or "cpu"}, indent=1) + "\n")
            return
        out_console.print(f"written: {out} ({count} samples)", highlight=False, markup=False)
