"""One batch item, as a worker runs it: exactly a ``restorekit run`` of one image.

:func:`run_item` is picklable and keeps no state between calls, so it runs
the same in this process, in a process pool or on a Dask worker.  It never
raises for a problem with the image (a corrupt file fails its own record,
not the batch); only Ctrl-C goes through.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from ..errors import error_line
from ..io.files import file_digest
from ..session.signals import deferred_signals
from .inputs import Item
from .manifest import output_checksum

#: RunSettings fields a batch sets for every item (the rest come from the item)
ITEM_OPTIONS = ("metrics", "mode", "iters", "lr", "seed", "device", "report_every", "stop", "ensemble",
                "precision", "time_limit")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _specs(record: Any) -> dict[str, Any]:
    comps = record.components
    return {
        "degradations": [c.spec for c in comps.degradations],
        "priors": [c.spec for c in comps.priors],
        "generator": None if comps.generator is None else comps.generator.spec,
        "metrics": [c.spec for c in comps.metrics],
        "stop": record.settings.stop,
    }


def item_inputs(item: Item) -> list[Path]:
    """Every file an item reads: its input, reference and side inputs."""
    return [Path(p) for p in (item.input, item.reference, *item.side_inputs) if p]


def page_identity(item: Item, options: dict[str, Any]) -> dict[str, Any]:
    """What a stack's kept page depends on (:class:`~restorekit.run.kept.PageStore`): the item's specs, the
    batch's run options but the device (a batch may resume on another one), and the plugins loaded, with
    their versions (an upgraded BM3D plugin restores the stack again)."""
    from ..run.kept import plugin_versions

    plugins = plugin_versions()
    return {"degrade": list(item.degrade), "prior": list(item.prior), "net": item.net,
            "reference": item.reference is not None,
            **{k: options.get(k) for k in ITEM_OPTIONS if k != "device"}, "plugins": plugins}


def run_item(item: Item, options: dict[str, Any]) -> dict[str, Any]:
    """Restore ``item`` into its output folder; a result for the manifest (``status`` done or failed).

    ``options`` are the batch's run options (:data:`ITEM_OPTIONS`) and, optionally,
    ``threads``: torch's thread count for this worker.
    """
    from ..plugins import get_registry
    from ..run.kept import PageStore, kept_folder
    from ..run.outputs import write_outputs
    from ..run.pipeline import run
    from ..run.settings import make_settings
    from ..session.outdir import prepare_output

    t0 = time.perf_counter()
    base = {"key": item.key, "worker": worker_name(), "seed": options.get("seed", 0)}
    if options.get("threads"):
        # torch's threads in this worker, whoever started it (a Dask worker's environment is not ours)
        import torch

        if torch.get_num_threads() != int(options["threads"]):
            torch.set_num_threads(int(options["threads"]))
    try:
        registry = get_registry()
        settings = make_settings(
            registry, image=item.input, degrade=item.degrade or None, prior=item.prior or None, net=item.net,
            reference=item.reference, **{k: v for k, v in options.items() if k in ITEM_OPTIONS},
        )
        inputs = item_inputs(item)
        # overwrite: a folder left by an attempt that was killed after writing is replaced (restorekit's own
        # folders only: anything foreign in it fails this item, never the batch)
        folder = None
        try:
            # reserved whole or not at all: a signal during the reservation arrives once `folder` can be abandoned
            with deferred_signals():
                folder = prepare_output(Path(item.out), source=Path(item.input), overwrite=True, inputs=inputs)
            # a stack's finished pages are kept beside its folder as they are done: an attempt after a
            # kill or Ctrl-C restores only the pages not finished yet (run/kept.py)
            store = PageStore(kept_folder(item.out), page_identity(item, options), inputs)
            result = run(settings, registry, store=store)
            if result.interrupted:  # Ctrl-C inside the fit: this image is not done; the batch stops
                raise KeyboardInterrupt
            with deferred_signals():  # a signal now stops the batch after the write: resume adopts the folder
                write_outputs(result, folder, save=options.get("save") or "all")
            store.discard()  # the stack is written: its pages are in it
        except BaseException:
            if folder is not None:
                folder.abandon()
            raise
        return {**base, "status": "done", "specs": _specs(result.record), "metrics": result.metrics,
                "seconds": round(time.perf_counter() - t0, 3), "checksum": output_checksum(item.out)}
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - one image's failure is recorded, the batch goes on
        error = error_line(exc)
    return {**base, "status": "failed", "error": error, "seconds": round(time.perf_counter() - t0, 3)}


def adoptable(item: Item, options: dict[str, Any]) -> dict[str, Any] | None:
    """The result to record for a complete run folder that an earlier, killed attempt of this batch left
    for ``item`` (same input, same seed), so a resumed batch records it instead of computing it again;
    None otherwise.  The metrics and specs come from its run.json, as if the attempt had returned."""
    folder = Path(item.out)
    try:
        record = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("status") != "complete":
        return None
    settings = record.get("settings") or {}
    if settings.get("seed") != options.get("seed", 0):
        return None
    if options.get("iters") is not None and settings.get("iterations") != options["iters"]:
        return None
    digest = file_digest(Path(item.input))
    if digest is None or (record.get("input") or {}).get("sha256") != digest:
        return None
    checksum = output_checksum(folder)
    if checksum is None:
        return None
    comps = record.get("components") or {}

    def spec(c):
        return c.get("spec") if isinstance(c, dict) else None

    specs = {
        "degradations": [spec(c) for c in comps.get("degradations") or []],
        "priors": [spec(c) for c in comps.get("priors") or []],
        "generator": spec(comps.get("generator")),
        "metrics": [spec(c) for c in comps.get("metrics") or []],
        "stop": settings.get("stop"),
    }
    return {"key": item.key, "status": "done", "checksum": checksum, "seed": settings.get("seed"),
            "specs": specs, "metrics": (record.get("result") or {}).get("metrics"),
            "seconds": (record.get("timings") or {}).get("total_s"), "worker": "adopted from disk"}
