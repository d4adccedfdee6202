"""The ``invert`` and ``visualize`` commands: look inside a trained network (restorekit/inspect/).

Both take MODEL (a TorchScript file, a restorekit model folder or a
registered network such as ``faces``) and a layer by name; ``--list-layers``
prints the names.  The search runs once per ``--prior`` (dip, tv and none by
default, the deep image prior paper's comparison); the results go into an
output folder reserved before the search, as ``run``'s do.  Ctrl-C keeps the
best image so far.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from .common import _host, err_console, guard, out_console, reserve_fit_write

DEFAULT_PRIORS = ("dip", "tv", "none")

INVERT_EXAMPLES = """
[bold]Examples[/bold]

[dim]# the layers of the built-in face classifier (trained in seconds on scikit-image's bundled faces)[/dim]
restorekit invert faces --list-layers

[dim]# a face from those bundled images, then the image whose conv2 features match it, per prior[/dim]
python -c "import skimage.data as d, imageio.v3 as io; io.imwrite('face.png', (d.lfw_subset()[0] * 255).astype('uint8'))"
restorekit invert faces face.png --layer conv2 --iters 500

[dim]# a TorchScript file of your own; only the deep image prior, with a wider generator[/dim]
restorekit invert model.pt photo.png --layer features.8 --prior dip --net skip:levels=4,channels=64
"""

VISUALIZE_EXAMPLES = """
[bold]Examples[/bold]

[dim]# the image that most excites the 'face' output of the built-in face classifier, per prior[/dim]
restorekit visualize faces --layer fc --unit 1

[dim]# channel 3 of a conv layer, TV with a heavier weight, 64x64 gray input for a network of any size[/dim]
restorekit visualize model.pt --layer conv2 --unit 3 --prior tv:weight=2 --shape 1,64,64
"""

_LAYER = "Layer by name, as --list-layers prints it (a named submodule: 'conv2', 'features.8')."
_MODEL = "A TorchScript file (.pt), a restorekit model folder (model.json + model.safetensors) or a network name (restorekit list networks)."
_PRIOR = "Image prior; repeat to compare (default: dip, tv, none). dip: x = G(z), a generator's weights are fitted; tv[:weight]: the pixels with a TV penalty; none: the pixels alone. See: restorekit list priors."
_NET = "The generator of --prior dip (default: skip:levels=3,channels=32,skip=4). See: restorekit list generators."


def _parse_shape(text: str):
    from ..errors import UsageError

    try:
        vals = tuple(int(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 3 or min(vals) < 1:
        raise UsageError(f"--shape takes C,H,W: three positive whole numbers (got {text!r})")
    return _capped(vals, "--shape", "the image --shape asks for")


#: the most channels an image to find may have (networks take 1 to 4)
MAX_CHANNELS = 64


def _capped(dims: tuple[int, int, int], who: str, what: str) -> tuple[int, int, int]:
    """C,H,W held to the limits of input images before anything of that size is allocated: H x W to
    RESTOREKIT_MAX_PIXELS, C to :data:`MAX_CHANNELS`."""
    from ..errors import UsageError
    from ..io import check_declared_size

    if dims[0] > MAX_CHANNELS:
        raise UsageError(f"{who}: {dims[0]} channels is over the limit of {MAX_CHANNELS}")
    check_declared_size(dims[1:], f"{what} (H x W)")
    return dims


def _list_layers(model, json_out: bool) -> None:
    rows = model.layers()
    if json_out:
        sys.stdout.write(json.dumps({"model": model.name, "layers": [{"name": n, "type": t} for n, t in rows]},
                                    indent=1) + "\n")
        return
    table = Table(box=None, pad_edge=False)
    table.add_column("layer")
    table.add_column("type")
    for n, t in rows:
        table.add_row(n, t)
    out_console.print(table)


def _priors(registry, specs: list[str] | None, net: str | None, lr: float | None):
    import math

    from ..errors import UsageError
    from ..inspect.optimize import check_priors

    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise UsageError(f"--lr must be a positive number (got {lr})")

    priors = [registry.create("prior", s) for s in (specs or DEFAULT_PRIORS)]
    if net is not None:
        registry.create("generator", net)  # a wrong spec fails now, before the folder is reserved
    check_priors(priors, net, registry)
    return priors


def _progress_cb(show: bool):
    if not show:
        return None, None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=err_console)
    tasks: dict[str, Any] = {}

    def cb(label, it, total, value):
        if label not in tasks:
            tasks[label] = progress.add_task(label, total=total, info="")
        progress.update(tasks[label], completed=it, info=f"objective {value:.3g}")

    return cb, progress


def _base_record(command: str, model, layer: str, iters: int, seed: int, lr, net) -> dict[str, Any]:
    from .. import __version__
    from ..inspect.record import FORMAT

    return {"restorekit": __version__, "format": FORMAT, "command": command,
            "model": {"source": model.source, "name": model.name}, "layer": layer,
            "iterations": iters, "seed": seed, "lr": lr, "net": net, "notes": list(model.notes)}


def _device_note(device: str):
    """``--device`` checked (an unknown or absent device is one line, exit 2): ``(device, note)``, the torch
    device the search runs on (None: the CPU, exactly as before) and the record's note saying where it ran
    when that is not the CPU (restorekit/inspect/optimize.py puts the image, the generator, its code and the
    pixels there; the network looked into is moved there by :func:`_on_device`)."""
    from ..session.device import pick_device

    dev = pick_device(device)
    if dev.type == "cpu":
        return None, None
    return dev, f"the search ran on {dev} (--device {device})"


@contextmanager
def _on_device(model, dev):
    """The network looked into on the search's device while the search runs (nothing moves for the CPU), and
    back on the CPU after: a network cached in this process (the built-in ``faces``) stays as it was."""
    if dev is None:
        yield
        return
    model.to(dev)
    try:
        yield
    finally:
        model.to("cpu")


def _search_and_write(*, out, source, inputs, json_out, search, finish, overwrite=False):
    """Reserve the folder, search (Ctrl-C keeps the best so far), write, print; exit 130/143 when interrupted
    (:func:`~restorekit.cli.common.reserve_fit_write`)."""
    from ..session.signals import exit_code_for

    cb, progress = _progress_cb(not json_out and err_console.is_terminal)
    done = reserve_fit_write(out=out, source=source, inputs=inputs, bar=progress, json_out=json_out,
                             fit=lambda: search(cb), write=finish, overwrite=overwrite)
    record = done.files  # finish() returns the record it wrote
    if json_out:
        from ..inspect.outputs import INDENT
        from ..session.record import record_json

        sys.stdout.write(record_json(record, indent=INDENT))
    else:
        _summary(record, done.folder.path)
    if record["stopped"] == "interrupted" or done.signals.held:
        err_console.print("interrupted: wrote the best result so far" if record["stopped"] == "interrupted"
                          else "interrupted: the search had finished; wrote the result", highlight=False)
        raise typer.Exit(exit_code_for(done.signals.signum))


def _summary(record: dict[str, Any], out: Path) -> None:
    inv = record["command"] == "invert"
    table = Table(box=None, pad_edge=False)
    table.add_column("prior")
    if inv:
        for c in ("feature loss", "PSNR", "SSIM"):
            table.add_column(c, justify="right")
    else:
        table.add_column("activation (start -> end)", justify="right")
    table.add_column("iterations", justify="right")
    table.add_column("seconds", justify="right")
    for r in record["results"]:
        f = lambda v, fmt: "" if v is None else format(v, fmt)  # noqa: E731
        cells = ([f(r["feature_loss"], ".3g"), f(r["psnr"], ".2f"), f(r["ssim"], ".3f")] if inv
                 else [f"{f(r['start'], '.3g')} -> {f(r['activation'], '.3g')}"])
        table.add_row(r["label"], *cells, str(r["iterations"]), f"{r['seconds']:.1f}")
    out_console.print(table)
    out_console.print(f"results: {out}  [{record['files'].get('compare', '')}, curves.png, one image per prior, "
                      f"{record['files']['record']}]", highlight=False, markup=False)


def _open(model_arg: str, layer: str | None, list_layers: bool, json_out: bool):
    from ..inspect.model import open_model

    host = _host()
    model = open_model(model_arg, host.registry)
    if list_layers:
        _list_layers(model, json_out)
        return host, model, None
    if not layer:
        from ..errors import UsageError

        raise UsageError("give the layer to look at: --layer NAME (--list-layers prints them)")
    return host, model, model.layer_fn(layer)


def _probe(model, layer: str, layer_fn, shape) -> None:
    """Run the layer once on an input of ``shape``: a network that cannot take it is the user's mistake."""
    import torch

    from ..errors import UsageError

    try:
        with torch.no_grad():
            layer_fn(torch.full((1, *shape), 0.5))
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - the network's own complaint, in one line
        c, h, w = shape
        raise UsageError(f"{model.describe()} cannot take a {c}-channel {w}x{h} input at layer '{layer}': "
                         f"{_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """The line that says what went wrong (TorchScript puts it last, after the interpreter's traceback)."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if len(lines) > 1 and "TorchScript interpreter" in lines[0]:
        return lines[-1]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


# the options invert and visualize share
_Prior = Annotated[Optional[list[str]], typer.Option("--prior", "-p", help=_PRIOR, show_default=False)]
_Net = Annotated[Optional[str], typer.Option("--net", "-n", help=_NET, show_default=False)]
_Iters = Annotated[int, typer.Option("--iters", "-i", min=1, help="Iterations (Adam steps) per prior.")]
_Lr = Annotated[Optional[float], typer.Option("--lr", help="Adam learning rate (default: 0.01 for a generator's weights, 0.02 for pixels).", show_default=False)]
_Seed = Annotated[int, typer.Option("--seed", help="Seed for the start image, the input code and the generator's weights.")]
_ListLayers = Annotated[bool, typer.Option("--list-layers", help="Print the network's layers and exit.")]
_Json = Annotated[bool, typer.Option("--json", help="Print the record (inspect.json) to stdout; no progress bar.")]
_Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an earlier invert or visualize result in --out (only a folder restorekit wrote).")]
_Device = Annotated[str, typer.Option("--device", help="Where the search runs: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps. The network looked into, the image, the generator, its input code and the pixels go there; the record's notes name a device other than the CPU.")]
_Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]


def invert(
    model_arg: Annotated[str, typer.Argument(metavar="MODEL", help=_MODEL, show_default=False)],
    image: Annotated[Optional[Path], typer.Argument(metavar="IMG", help="The image whose features to invert (PNG, TIFF, JPEG), the size and channels the network takes.", show_default=False)] = None,
    layer: Annotated[Optional[str], typer.Option("--layer", "-l", help=_LAYER, show_default=False)] = None,
    prior: _Prior = None,
    net: _Net = None,
    iters: _Iters = 500,
    lr: _Lr = None,
    seed: _Seed = 0,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder, missing or empty (default: runs/invert-<image>-NNN).", show_default=False)] = None,
    overwrite: _Overwrite = False,
    device: _Device = "auto",
    list_layers: _ListLayers = False,
    json_out: _Json = False,
    debug: _Debug = False,
) -> None:
    """Feature inversion: the image whose features at --layer match IMG's, once per prior.

    The deep image prior (x = G(z), a randomly initialised generator fitted to
    the features) against TV-regularised pixels and bare pixels, as in the deep
    image prior paper.  Writes invert.png (IMG and each reconstruction side by
    side, with PSNR against IMG), curves.png (the feature-space loss), input.png,
    one PNG per prior and inspect.json.
    """
    with guard(debug):
        from ..errors import UsageError

        host, model, layer_fn = _open(model_arg, layer, list_layers, json_out)
        if layer_fn is None:
            return
        dev, device_note = _device_note(device)
        if image is None:
            raise UsageError("give the image to invert: restorekit invert MODEL IMG --layer NAME")
        from ..io import check_input_file, read_image

        check_input_file(image, "image")
        img = read_image(image)
        data = img.data
        c, h, w = data.shape
        if model.shape is not None:
            mc, mh, mw = model.shape
            if mc is not None and mc != c:
                raise UsageError(f"image {str(image)!r} has {c} channel{'s' * (c != 1)}; {model.describe()} takes "
                                 f"{mc}-channel images")
            if mh is not None and mw is not None and (mh, mw) != (h, w):
                raise UsageError(f"image {str(image)!r} is {w}x{h}; {model.describe()} takes {mw}x{mh} images")
        _probe(model, layer, layer_fn, (c, h, w))
        priors = _priors(host.registry, prior, net, lr)

        from ..inspect import optimize
        from ..inspect.outputs import write_inspection

        def search(cb):
            with _on_device(model, dev):
                return optimize.invert(layer_fn, data, priors, iters=iters, seed=seed, registry=host.registry,
                                       net_spec=net, lr=lr, progress=cb, device=dev)

        def finish(folder, recs):
            metrics = [host.registry.create("metric", m) for m in ("psnr", "ssim")]
            ref = data.transpose(1, 2, 0).astype("float64")
            record = _base_record("invert", model, layer, iters, seed, lr, net or optimize.DEFAULT_NET)
            record["notes"] += [device_note] if device_note else []
            record["image"] = str(image)
            record["results"] = []
            record["history"] = {}
            for r in recs:
                test = r.image.transpose(1, 2, 0).astype("float64")
                scores = {m.name: float(m.compute(ref, test, data_range=1.0)) for m in metrics}
                record["results"].append({
                    "label": r.label, "prior": r.prior, "net": r.net, "feature_loss": r.objective,
                    "start_feature_loss": r.start, "psnr": scores["psnr"], "ssim": scores["ssim"],
                    "iterations": r.iterations, "best_iteration": r.best_iteration, "lr": r.lr,
                    "seconds": r.seconds, "stopped": r.stopped, "file": f"{r.label}.png",
                })
                record["history"][r.label] = {"iteration": r.history["iteration"], "feature_loss": r.history["value"]}
            record["stopped"] = "interrupted" if any(r.stopped == "interrupted" for r in recs) else "done"
            panels = [("input", data)] + [
                (f"{r.label}  {res['psnr']:.1f} dB", r.image) for r, res in zip(recs, record["results"])]
            return write_inspection(folder, record, recs, picture="invert.png", panels=panels,
                                    ylabel=f"feature loss at {layer}", log=True, input_image=data)

        _search_and_write(out=out, source=Path(f"invert-{image.stem}"), inputs=_inputs(model_arg, image),
                          json_out=json_out, search=search, finish=finish, overwrite=overwrite)


def visualize(
    model_arg: Annotated[str, typer.Argument(metavar="MODEL", help=_MODEL, show_default=False)],
    layer: Annotated[Optional[str], typer.Option("--layer", "-l", help=_LAYER, show_default=False)] = None,
    unit: Annotated[Optional[int], typer.Option("--unit", "-u", help="The unit to excite: a channel of the layer's output (0-based).", show_default=False)] = None,
    shape: Annotated[Optional[str], typer.Option("--shape", help="C,H,W of the image to find (default: what the network declares; needed when it declares nothing).", show_default=False)] = None,
    prior: _Prior = None,
    net: _Net = None,
    iters: _Iters = 500,
    lr: _Lr = None,
    seed: _Seed = 0,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder, missing or empty (default: runs/visualize-<layer>-unitK-NNN).", show_default=False)] = None,
    overwrite: _Overwrite = False,
    device: _Device = "auto",
    list_layers: _ListLayers = False,
    json_out: _Json = False,
    debug: _Debug = False,
) -> None:
    """Activation maximisation: the image that most excites --unit of --layer, once per prior.

    The same priors as invert: the deep image prior, TV-regularised pixels,
    bare pixels (all kept in [0, 1]).  Writes visualize.png (side by side),
    curves.png (the unit's activation per step), one PNG per prior and
    inspect.json.
    """
    with guard(debug):
        from ..errors import UsageError

        dims = _parse_shape(shape) if shape is not None and not list_layers else None  # up front: nothing loaded yet
        host, model, layer_fn = _open(model_arg, layer, list_layers, json_out)
        if layer_fn is None:
            return
        dev, device_note = _device_note(device)
        if unit is None:
            raise UsageError("give the unit to excite: --unit K (a channel of the layer's output, from 0)")
        if dims is None:
            if model.shape is None or None in model.shape:
                raise UsageError(f"{model.describe()} does not say what input it takes: give --shape C,H,W")
            dims = _capped(tuple(int(v) for v in model.shape), model.describe(),
                           f"the input {model.describe()} declares")
        _probe(model, layer, layer_fn, dims)
        from ..inspect import optimize

        units = optimize.unit_count(layer_fn, dims)
        if not 0 <= unit < units:
            raise UsageError(f"unit {unit} is out of range: layer '{layer}' has {units} unit{'s' * (units != 1)} "
                             f"(0 to {units - 1})")
        priors = _priors(host.registry, prior, net, lr)
        from ..inspect.outputs import write_inspection

        def search(cb):
            with _on_device(model, dev):
                return optimize.visualize(layer_fn, unit, dims, priors, iters=iters, seed=seed,
                                          registry=host.registry, net_spec=net, lr=lr, progress=cb, device=dev)

        def finish(folder, recs):
            record = _base_record("visualize", model, layer, iters, seed, lr, net or optimize.DEFAULT_NET)
            record["notes"] += [device_note] if device_note else []
            record["unit"] = unit
            record["shape"] = list(dims)
            record["results"] = [{
                "label": r.label, "prior": r.prior, "net": r.net, "activation": r.objective, "start": r.start,
                "iterations": r.iterations, "best_iteration": r.best_iteration, "lr": r.lr, "seconds": r.seconds,
                "stopped": r.stopped, "file": f"{r.label}.png",
            } for r in recs]
            record["history"] = {r.label: {"iteration": r.history["iteration"], "activation": r.history["value"]}
                                 for r in recs}
            record["stopped"] = "interrupted" if any(r.stopped == "interrupted" for r in recs) else "done"
            panels = [(f"{r.label}  {r.objective:.3g}", r.image) for r in recs]
            return write_inspection(folder, record, recs, picture="visualize.png", panels=panels,
                                    ylabel=f"activation of {layer}[{unit}]", log=False)

        stem = f"visualize-{layer}-unit{unit}".replace(".", "_")
        _search_and_write(out=out, source=Path(stem),
                          inputs=_inputs(model_arg, None), json_out=json_out, search=search, finish=finish,
                          overwrite=overwrite)


def _inputs(model_arg: str, image: Path | None) -> list[Path]:
    paths = [Path(model_arg)] if Path(model_arg).exists() else []
    return paths + ([image] if image is not None else [])
