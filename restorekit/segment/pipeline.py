"""One ``restorekit segment`` or ``restorekit decompose``: check, reserve, decompose, score, write.

The stages follow ``run``'s: every input is read and checked first (the
method and task, the image, the hints, the truth mask, a second mixture);
the output folder is reserved (:func:`restorekit.session.outdir.prepare_output`,
same rules as ``run``: ``runs/<stem>-NNN`` by default, ``--overwrite``
replaces only a folder restorekit wrote); the decomposition runs; the files
are written into the hidden staging folder and moved into place together
(:func:`restorekit.session.commit.committing`).  Ctrl-C during the fit ends it and keeps the
result so far (the record says ``"stopped": "interrupted"``).

Files: ``mask.png`` (the object's share, 0-255), ``labels.png`` (segment
numbers, 8 or 16 bit), ``layer-<name>.png`` (each layer), ``overlay.png``
(the image with the segments tinted and the object's outline), ``run.json``
(the record: method, plugin, task, hint, seed, iterations, time, metrics,
files, notes; its layout is :class:`restorekit.segment.record.SegmentRecord`,
published in docs/segment-record.md, and every record is checked against it).
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..components import Budget, Decomposed, Hint
from ..errors import RestoreError, RestoreKitError, UsageError
from ..session.record import json_data, record_json
from .masks import scores
from .record import RECORD_VERSION

__all__ = ["Request", "Outcome", "prepare", "decompose", "write", "record_json", "overlay", "input_paths",
           "RECORD_VERSION"]


@dataclass
class Request:
    """What the user asked for, as given on the command line."""

    image: Path | np.ndarray  #: a file, or an array (the Python API: HxW or HxWxC, as restore() takes)
    task: str = "segment"
    method: str = "double-dip"
    hints: list[str] = field(default_factory=list)
    truth: Path | np.ndarray | None = None  #: an array: white (>= half the range) = object
    second: Path | np.ndarray | None = None
    out: Path | None = None
    overwrite: bool = False
    seed: int = 0
    iters: int | None = None
    time_limit: float | None = None
    command: str = "segment"
    device: str | None = None  # --device: auto, cpu, cuda, cuda:N, mps (None: the CPU, as before)


@dataclass
class Outcome:
    """A checked request, then its result."""

    request: Request
    method: Any
    plugin: str
    plugin_version: str | None
    image: np.ndarray
    hint: Hint | None
    truth: np.ndarray | None
    others: tuple[np.ndarray, ...]
    result: Decomposed | None = None
    seconds: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


def prepare(request: Request, registry) -> Outcome:
    """Check everything that can be checked before the output folder is reserved (UsageError, one line)."""
    from ..components import DECOMPOSITION_TASKS
    from ..io import read_mask

    task = request.task
    entry = None
    try:
        from ..spec import parse_spec

        entry = registry.get("decomposition", parse_spec(request.method).name)
    except RestoreKitError as exc:
        raise UsageError(f"{exc} (see: restorekit list decompositions)") from None
    cls = entry.cls
    known_tasks = sorted({t for e in registry.entries("decomposition") for t in e.cls.tasks} | set(DECOMPOSITION_TASKS))
    if task not in known_tasks:
        from ..suggest import did_you_mean

        raise UsageError(f"unknown task '{task}'{did_you_mean(task, known_tasks)} (valid: {', '.join(known_tasks)})")
    if task not in cls.tasks:
        able = [e.name for e in registry.entries("decomposition") if task in e.cls.tasks]
        raise UsageError(f"method '{cls.name}' does not do task '{task}' (it does: {', '.join(cls.tasks)}; "
                         f"'{task}' is done by: {', '.join(able) or 'no installed method'})")
    method = registry.create("decomposition", request.method)
    img = _read(request.image)
    image = np.ascontiguousarray(img.data, dtype=np.float32)
    h, w = image.shape[1:]
    hint = None
    if request.hints:
        from .hints import parse_hints

        hint = parse_hints(request.hints, (h, w))
        given = [k for k, v in (("box", hint.box), ("scribbles", hint.scribbles)) if v is not None]
        refused = [k for k in given if k not in cls.hints]
        if refused:
            takes = f"it takes: {', '.join(cls.hints)}" if cls.hints else "it takes none"
            raise UsageError(f"method '{cls.name}' takes no {refused[0]} hint ({takes})")
    if hint is None and method.requires_hint(task):
        kinds = " or ".join(f"--hint {k}:" + ("x,y,w,h" if k == "box" else "FILE") for k in cls.hints) or "--hint"
        raise UsageError(f"method '{cls.name}' needs a hint for task '{task}': {kinds}")
    truth = None
    if isinstance(request.truth, np.ndarray):  # the Python API: an array, white (>= half the range) = object
        truth = _read(request.truth).data.mean(axis=0) >= 0.5
        if truth.shape != (h, w):
            raise UsageError(f"the reference mask is {truth.shape[1]}x{truth.shape[0]}; the image is {w}x{h}")
    elif request.truth is not None:
        truth = read_mask(request.truth, (h, w))
    others: tuple[np.ndarray, ...] = ()
    if request.second is not None:
        if task != "transparency":
            raise UsageError("--second is a second mixture for --task transparency")
        sec = _read(request.second)
        if sec.data.shape != image.shape:
            raise UsageError(f"--second '{request.second}' is {sec.width}x{sec.height} with {sec.channels} channel(s); "
                             f"the image is {w}x{h} with {image.shape[0]}: give two mixtures of the same size")
        others = (np.ascontiguousarray(sec.data, dtype=np.float32),)
    return Outcome(request, method, entry.plugin, entry.version, image, hint, truth, others)


def input_paths(request: Request) -> list[Path]:
    """Every file the request reads (the output folder may be none of them): the image, the true mask, the
    second mixture and scribbles files (arrays read nothing)."""
    paths = [Path(p) for p in (request.image, request.truth, request.second) if isinstance(p, (str, Path))]
    return paths + [Path(h.partition(":")[2]) for h in request.hints if h.lower().startswith("scribbles:")]


def _read(source: Any):
    """A path is read; an array (the Python API: HxW or HxWxC, uint8, uint16 or float in [0, 1]) converted."""
    from ..io import image_from_array, read_image

    return image_from_array(source) if isinstance(source, np.ndarray) else read_image(source)


def _named(source: Any) -> str | None:
    """What the record says for an input: the path as given, or ``<array HxW...>`` for an array."""
    if source is None:
        return None
    if isinstance(source, np.ndarray):
        return f"<array {'x'.join(map(str, source.shape))} {source.dtype}>"
    return str(source)


def decompose(outcome: Outcome, progress: Callable[[int, int, float], None] | None = None) -> Outcome:
    """Run the method (a KeyboardInterrupt the method does not catch propagates: no result)."""
    from ..errors import ComponentFailure

    req = outcome.request
    budget = Budget(iterations=req.iters, time_limit=req.time_limit, progress=progress)
    kwargs: dict[str, Any] = {"hint": outcome.hint, "seed": req.seed, "budget": budget}
    if outcome.others:
        kwargs["others"] = outcome.others
    image = outcome.image.copy()  # the method gets its own copy: the input stays as read
    device_note = _device_kwarg(outcome, kwargs)
    start = time.perf_counter()
    try:
        result = outcome.method.decompose(image, req.task, **kwargs)
    except (RestoreKitError, KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # a plugin's bug, named with the plugin
        raise ComponentFailure(outcome.method, "decompose", exc).with_plugin(outcome.plugin) from exc
    outcome.seconds = time.perf_counter() - start
    if not isinstance(result, Decomposed):
        raise RestoreError(f"decomposition '{outcome.method.name}' from plugin '{outcome.plugin}' returned "
                           f"{type(result).__name__}, not restorekit.Decomposed")
    if device_note:
        result.notes = [*(result.notes or []), device_note]
    outcome.result = result
    if outcome.truth is not None and result.mask is not None:
        outcome.metrics = scores(outcome.truth, np.asarray(result.mask) >= 0.5)
    outcome.record = build_record(outcome)
    return outcome


def _device_kwarg(outcome: Outcome, kwargs: dict[str, Any]) -> str | None:
    """``--device`` for a method that takes one (``decompose(..., device=)``: double-dip and clustering put
    their networks, codes, images and masks there): passed only when it is not the CPU, so a CPU run is
    exactly as before, and the record's notes say where it ran; a method that takes none (the NumPy
    baselines) runs on the CPU, and the notes say so."""
    import inspect

    name = outcome.request.device
    if name is None:
        return None
    from ..session.device import pick_device

    dev = pick_device(name)
    if dev.type == "cpu":
        return None
    try:
        takes = "device" in inspect.signature(outcome.method.decompose).parameters
    except (TypeError, ValueError):
        takes = False
    if takes:
        kwargs["device"] = dev
        return f"{outcome.method.name} ran on {dev} (--device {name})"
    return f"{outcome.method.name} takes no device: it ran on the CPU (--device {name})"


def build_record(o: Outcome) -> dict[str, Any]:
    from .. import __version__

    r = o.result
    req = o.request
    assert r is not None
    mask = None if r.mask is None else np.asarray(r.mask)
    labels = None if r.labels is None else np.asarray(r.labels)
    rec: dict[str, Any] = {
        "restorekit": __version__,
        "record_version": RECORD_VERSION,
        "command": req.command,
        "task": req.task,
        "method": _spec_that_ran(o),
        "plugin": o.plugin,
        "plugin_version": o.plugin_version,
        "image": _named(req.image),
        "image_shape": list(o.image.shape),
        "second": _named(req.second),
        "hint": None if o.hint is None else o.hint.describe(),
        "truth": _named(req.truth),
        "seed": req.seed,
        "iterations": int(r.iterations),
        "time_limit": req.time_limit,
        "stopped": r.stopped,
        "seconds": round(o.seconds, 3),
        "segments": None if labels is None else int(len(np.unique(labels))),
        "object_fraction": None if mask is None else round(float((mask >= 0.5).mean()), 6),
        "metrics": {k: round(v, 6) for k, v in o.metrics.items()},
        "layers": sorted(r.layers),
        "notes": list(r.notes),
        "history": {k: list(v) for k, v in r.history.items()},
        "python": platform.python_version(),
        "out": None,
        "files": {},
    }
    return _checked(rec, o)


def _spec_that_ran(o: Outcome) -> str:
    """The method's canonical spec, with ``--iters`` in it where the method has an ``iters`` parameter (the
    budget overrides it), so that the spec in the record repeats the run."""
    from ..spec import format_spec

    params = o.method.params.model_dump()
    if o.request.iters is not None and "iters" in params:
        params["iters"] = int(o.request.iters)
    return format_spec(o.method.name, params)


def _checked(rec: dict[str, Any], o: Outcome) -> dict[str, Any]:
    """``rec``, once it fits the published layout (restorekit/segment/record.py); a method's result that
    does not fit (a ``stopped`` the contract does not know, a note that is not text) is the plugin's error."""
    from pydantic import ValidationError

    from .record import check

    try:
        check(json_data(rec))  # what run.json will hold
        return rec
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RestoreError(f"decomposition '{o.method.name}' from plugin '{o.plugin}' gave a result whose record "
                           f"does not fit run.json's layout: {where}: {first['msg']}") from None


def _u8(a: np.ndarray) -> np.ndarray:
    return np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)


def _hwc(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return a[0] if a.shape[0] == 1 else np.moveaxis(a[:3], 0, -1)


def overlay(image: np.ndarray, mask: np.ndarray | None, labels: np.ndarray | None) -> np.ndarray:
    """``(H, W, 3)`` uint8: the image in gray-ish colour with each segment tinted and the object outlined in red."""
    from skimage.color import label2rgb
    from skimage.segmentation import find_boundaries

    rgb = image[:3] if image.shape[0] >= 3 else np.repeat(image[:1], 3, 0)
    rgb = np.moveaxis(np.clip(rgb, 0, 1), 0, -1).astype(np.float64)
    out = rgb
    if labels is not None:
        out = label2rgb(np.asarray(labels), image=rgb, alpha=0.3, bg_label=-1, image_alpha=1, kind="overlay")
    if mask is not None:
        edge = find_boundaries(np.asarray(mask) >= 0.5, mode="inner")
        out = out.copy()
        out[edge] = (1.0, 0.0, 0.0)
    return _u8(out)


def write(outcome: Outcome, folder) -> dict[str, str]:
    """Write every file into ``folder``'s staging folder and move it into place, all or nothing."""
    from ..io import write_image
    from ..session.commit import committing

    r = outcome.result
    assert r is not None
    files: dict[str, str] = {}
    with committing(folder) as tmp:
        if r.mask is not None:
            write_image(tmp / "mask.png", _u8(np.asarray(r.mask)))
            files["mask"] = "mask.png"
        if r.labels is not None:
            lab = np.asarray(r.labels)
            lab = lab - lab.min() if lab.size else lab
            write_image(tmp / "labels.png", lab.astype(np.uint8 if lab.max(initial=0) < 256 else np.uint16))
            files["labels"] = "labels.png"
        for name, layer in sorted(r.layers.items()):
            a = np.asarray(layer)
            if a.ndim != 3 or a.shape[1:] == (1, 1):
                continue  # an airlight: a colour, in the record's notes
            fname = f"layer-{name}.png"
            write_image(tmp / fname, _u8(_hwc(a)))
            files[f"layer-{name}"] = fname
        if r.mask is not None or r.labels is not None:
            write_image(tmp / "overlay.png", overlay(outcome.image, r.mask, r.labels))
            files["overlay"] = "overlay.png"
        files["record"] = "run.json"
        outcome.record["files"] = dict(files)
        outcome.record["out"] = str(folder.path)
        _checked(outcome.record, outcome)
        (tmp / "run.json").write_text(record_json(outcome.record), encoding="utf-8")
    outcome.files = files
    return files
