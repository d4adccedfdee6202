"""Write a run's outputs: images, run.json and pictures, all or nothing.

The output folder is checked and reserved before the fit
(:mod:`restorekit.session.outdir`); everything is written into its hidden
staging folder (:func:`restorekit.session.commit.committing`), which is moved
into place only when complete (a stack's images, a multi-page TIFF each, the
same way).  A failure while writing leaves no partial output and keeps the
restored image in a rescue folder; the CLI holds Ctrl-C back while it writes
(:mod:`restorekit.session.signals`).  The pictures are drawn through
:func:`restorekit.session.figures.figure`.

``committing``, ``record_json`` and the old private ``_figure`` and ``_to_rgb``
are still importable from here, for compatibility; they live in
:mod:`restorekit.session`.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..io import ome_difference, output_suffix, read_tiff_calibration, to_array, write_image, write_stack
from ..session.commit import committing
from ..session.figures import figure, pyplot, to_rgb
from ..session.outdir import OutputFolder
from ..session.record import record_json

_figure, _to_rgb = figure, to_rgb  # their old names here, kept for compatibility


def _compare_figure(path: Path, result) -> None:
    plt = pyplot()

    panels = _panels(result, result.reference is not None)
    h, w = result.restored.shape[1:]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2 * h / w + 0.5), squeeze=False)
    _draw_panels(axes[0], panels, w, h, "", 10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _curves_figure(path: Path, history: dict[str, list]) -> bool:
    it = history.get("iteration") or []
    if len(it) < 2:
        return False
    plt = pyplot()

    has_psnr = any(v is not None for v in history.get("psnr", []))
    fig, axes = plt.subplots(1, 2 if has_psnr else 1, figsize=(9 if has_psnr else 4.5, 3.2), squeeze=False)
    ax = axes[0][0]
    ax.semilogy(it, history["loss"], lw=1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title("fit to the observation", fontsize=10)
    if has_psnr:
        ax = axes[0][1]
        ax.plot(it, [np.nan if v is None else v for v in history["psnr"]], lw=1, label="output")
        if any(v is not None for v in history.get("psnr_avg", [])):
            ax.plot(it, [np.nan if v is None else v for v in history["psnr_avg"]], lw=1, label="average (EMA)")
        ax.set_xlabel("iteration")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title("PSNR against the reference", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


#: what ``--save`` may ask for: every file (the default), or the restored image and run.json only
SAVE_CHOICES = ("all", "restored")


def write_outputs(result, folder: OutputFolder, save: str = "all") -> dict[str, str]:
    """Write every output of ``result`` into the reserved ``folder``, then move it into place
    (``save="restored"``: only the restored image and run.json).

    The images and run.json are essential: if one cannot be written, the
    staging folder is removed, the restored image and run.json are saved in
    a rescue folder under the system's temporary folder, and
    :class:`RestoreError` says where.  The pictures (compare.png,
    curves.png) are not: a failure there is a note in run.json.
    """
    out = folder.path

    def rescue() -> str:
        saved = rescue_result(result)
        return f"; the restored image and run.json were saved in '{saved}'" if saved else ""

    with committing(folder, rescue) as tmp:
        if save == "restored":
            files = _write_restored_only(result, tmp)
        elif result.pages:
            files = _write_stack(result, tmp)
        if save == "restored" or result.pages:
            files["record"] = "run.json"
            result.record.files = dict(files)
            result.record.out = str(out)
            (tmp / "run.json").write_text(record_json(result.record), encoding="utf-8")
            return files
        suffix = output_suffix(result.source)
        files: dict[str, str] = {}
        write_image(tmp / f"restored{suffix}", result.image)
        files["restored"] = f"restored{suffix}"
        alpha = result.source.alpha if result.degraded.shape[1:] == result.source.data.shape[1:] else None
        write_image(tmp / f"degraded{suffix}", to_array(result.degraded, alpha, result.source.dtype))
        files["degraded"] = f"degraded{suffix}"
        if result.mask is not None:
            write_image(tmp / "mask.png", (result.mask.astype(np.uint8) * 255))
            files["mask"] = "mask.png"
        _figures(tmp, files, result.record.notes, (_compare_figure, result), (_curves_figure, result.history))
        files["record"] = "run.json"
        result.record.files = dict(files)
        result.record.out = str(out)
        (tmp / "run.json").write_text(record_json(result.record), encoding="utf-8")
    return files


def _calibration(source) -> dict | None:
    """A TIFF stack's pixel size and ImageJ calibration (io.read_tiff_calibration), for its restored copy."""
    path = getattr(source, "path", None)
    if path is None or Path(path).suffix.lower() not in (".tif", ".tiff"):
        return None
    return read_tiff_calibration(path)


def _ome_notes(calibration: dict | None, stacks: dict[str, np.ndarray], notes: list[str]) -> None:
    """What became of an OME-TIFF input's OME-XML in each of ``stacks`` (file name -> pages), for run.json:
    copied where it describes the file's pages (io.ome_difference), else not written, and why."""
    if not (calibration or {}).get("ome"):
        return
    why = {name: ome_difference(calibration, pages) for name, pages in stacks.items()}
    kept = [name for name, reason in why.items() if reason is None]
    if kept:
        notes.append(f"{' and '.join(kept)} {'carries' if len(kept) == 1 else 'carry'} the input's OME-XML as it "
                     "is (pixel sizes, axes, channel names, ...; a new UUID): the pages have the input's size, "
                     "sample type and count")
    for name, reason in why.items():
        if reason is not None:
            notes.append(f"the input's OME-XML is not written into {name}: {reason}; "
                         f"{name} has no OME description (the input's resolution tags are kept, where it had them, "
                         "scaled to its size)")


def _write_restored_only(result, tmp: Path) -> dict[str, str]:
    """``--save restored``: the restored image (a page each for a stack) and nothing else but run.json."""
    if result.pages:
        calibration = _calibration(result.source)
        write_stack(tmp / "restored.tif", result.image, calibration=calibration)
        _ome_notes(calibration, {"restored.tif": result.image}, result.record.notes)
        return {"restored": "restored.tif"}
    name = f"restored{output_suffix(result.source)}"
    write_image(tmp / name, result.image)
    return {"restored": name}


def _write_stack(result, tmp: Path) -> dict[str, str]:
    """A stack's outputs (:mod:`.pages`): restored.tif and degraded.tif with a page each, the mask
    (mask.png when every page has the same, else mask.tif, a page each), compare.png (a row for each
    of up to three pages) and curves.png (every page's loss)."""
    files: dict[str, str] = {}
    src = result.source
    calibration = _calibration(src)
    write_stack(tmp / "restored.tif", result.image, calibration=calibration)
    files["restored"] = "restored.tif"
    same = result.degraded.shape[2:] == src.data.shape[1:]
    alphas: list = [page.source.alpha for page in result.pages]
    for image in result.image[len(alphas):]:  # pages not reached: their alpha is the result's, as read
        if src.alpha is None:
            alphas.append(None)
            continue
        from .pages import _resize

        top = np.float32(np.iinfo(image.dtype).max if image.dtype.kind == "u" else 1)
        alphas.append(_resize(image[..., -1].astype(np.float32) / top, result.degraded.shape[2:]))
    degraded = np.stack([to_array(d, a if same else None, src.dtype) for d, a in zip(result.degraded, alphas)])
    write_stack(tmp / "degraded.tif", degraded, calibration=calibration)
    files["degraded"] = "degraded.tif"
    _ome_notes(calibration, {"restored.tif": result.image, "degraded.tif": degraded}, result.record.notes)
    if result.mask is not None:
        masks = result.mask.astype(np.uint8) * 255
        if all(np.array_equal(masks[0], m) for m in masks[1:]):
            write_image(tmp / "mask.png", masks[0])
            files["mask"] = "mask.png"
        else:
            write_stack(tmp / "mask.tif", masks)
            files["mask"] = "mask.tif"
    _figures(tmp, files, result.record.notes, (_stack_compare_figure, result), (_stack_curves_figure, result))
    return files


def _figures(tmp: Path, files: dict[str, str], notes: list[str], compare: tuple, curves: tuple) -> None:
    """compare.png and curves.png, each ``(draw, what it draws)``: the files drawn go into ``files``, the
    note of a figure that could not be drawn into ``notes``."""
    for role, (draw, data) in (("compare", compare), ("curves", curves)):
        drawn, note = figure(f"{role}.png", draw, tmp / f"{role}.png", data)
        if drawn:
            files[role] = f"{role}.png"
        if note:
            notes.append(note)


def _shown_pages(count: int, most: int = 3) -> list[int]:
    """Up to ``most`` pages spread over ``count``: the first, the last, and between."""
    if count <= most:
        return list(range(count))
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})


def _panels(result, reference: bool) -> list[tuple[str, Any, float | None]]:
    """compare.png's panels of one result: (title, image, PSNR shown or None)."""
    panels = [("degraded", result.degraded, result.baseline.get("psnr")),
              ("restored", result.restored, result.metrics.get("psnr"))]
    if reference:
        panels.append(("reference", result.reference, None))
    return panels


def _draw_panels(row, panels: list, w: int, h: int, prefix: str, fontsize: int) -> None:
    for ax, (title, img, psnr) in zip(row, panels):
        if img is not None:
            ax.imshow(to_rgb(img), interpolation="nearest", extent=(0, w, h, 0))
        title = f"{prefix}{title}"
        if psnr is not None and math.isfinite(psnr):
            title = f"{title}  {psnr:.2f} dB"
        ax.set_title(title, fontsize=fontsize)
        ax.axis("off")


def _stack_compare_figure(path: Path, result) -> None:
    plt = pyplot()

    n = len(result.image)
    rows = _shown_pages(len(result.pages))
    columns = 3 if result.reference is not None else 2
    h, w = result.restored.shape[2:]
    fig, axes = plt.subplots(len(rows), columns, figsize=(3.2 * columns, (3.2 * h / w + 0.5) * len(rows)),
                             squeeze=False)
    for row, k in zip(axes, rows):
        _draw_panels(row, _panels(result.pages[k], columns == 3), w, h, f"page {k + 1}/{n} ", 9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _stack_curves_figure(path: Path, result) -> bool:
    histories = [(k, page.history) for k, page in enumerate(result.pages)
                 if len(page.history.get("iteration") or []) >= 2]
    if not histories:
        return False
    plt = pyplot()

    n = len(result.image)
    fig, ax = plt.subplots(1, 1, figsize=(4.5, 3.2))
    for k, history in histories:
        ax.semilogy(history["iteration"], history["loss"], lw=1, label=f"page {k + 1}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title(f"fit to the observation, {len(histories)} of {n} pages", fontsize=10)
    if len(histories) <= 10:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def rescue_result(result) -> Path | None:
    """Save the restored image and run.json in a new folder under the system's temporary folder."""
    try:
        rescue = Path(tempfile.mkdtemp(prefix="restorekit-rescue-"))
        suffix = ".tif" if result.pages else output_suffix(result.source)
        (write_stack if result.pages else write_image)(rescue / f"restored{suffix}", result.image)
        record = result.record.model_copy(update={"out": str(rescue), "files": None})
        (rescue / "run.json").write_text(record_json(record), encoding="utf-8")
        return rescue
    except Exception:  # noqa: BLE001 - the rescue is best effort, the error is reported anyway
        return None
