"""What ``invert`` and ``visualize`` write: one image per prior, two pictures and the record, all or nothing.

The folder is reserved before the search (:func:`restorekit.session.outdir.prepare_output`,
as ``run`` does); everything is written into its staging folder and moved
into place at once (:func:`restorekit.session.commit.committing`).  A picture
that fails to draw costs the picture (a note in the record), not the results
(:func:`restorekit.session.figures.figure`).  The record (``inspect.json``) is
printed by ``--json``; it is checked against its published layout
(restorekit/inspect/record.py, docs/inspect-record.md) before it is written.
Like every record it is written by :func:`restorekit.session.record.record_json`
(here with an indent of 1): a non-finite number is ``null`` and named in
``nonfinite``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..io import write_image
from ..session import record as _record
from ..session.commit import committing
from ..session.figures import figure, pyplot, to_rgb
from ..session.outdir import OutputFolder
from .record import FORMAT, check  # noqa: F401 - FORMAT's old home

#: inspect.json is indented by one space (its layout since version 1)
INDENT = 1
RECORD = "inspect.json"


def _u8(image: np.ndarray) -> np.ndarray:
    a = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    return a[0] if a.shape[0] == 1 else np.moveaxis(a, 0, -1)


def _displayable(image: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (1|3, H, W): the first three channels of a network that takes more."""
    if image.shape[0] in (1, 3):
        return image
    return image[:1] if image.shape[0] == 2 else image[:3]


def _side_by_side(path: Path, panels: list[tuple[str, np.ndarray]]) -> None:
    plt = pyplot()

    h, w = panels[0][1].shape[1:]
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.6 * h / w + 0.6), squeeze=False)
    for ax, (title, img) in zip(axes[0], panels):
        ax.imshow(to_rgb(_displayable(img)), interpolation="nearest", extent=(0, w, h, 0))
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _curves(path: Path, recs, ylabel: str, log: bool) -> bool:
    if not any(len(r.history["iteration"]) >= 2 for r in recs):
        return False
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    for r in recs:
        ys = r.history["value"]
        if log:
            ys = [v if v > 0 else np.nan for v in ys]
        ax.plot(r.history["iteration"], ys, lw=1, label=r.label)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_inspection(folder: OutputFolder, record: dict[str, Any], recs, *, picture: str,
                     panels: list[tuple[str, np.ndarray]], ylabel: str, log: bool,
                     input_image: np.ndarray | None = None) -> dict[str, Any]:
    """Write ``input.png`` (when given), one image per prior, ``picture`` (side by side), ``curves.png``
    and the record into ``folder``, then move it into place (``committing``)."""
    with committing(folder) as tmp:
        files: dict[str, str] = {}
        notes = record.setdefault("notes", [])
        if input_image is not None:
            write_image(tmp / "input.png", _u8(_displayable(input_image)))
            files["input"] = "input.png"
        for r in recs:
            name = f"{r.label}.png"
            write_image(tmp / name, _u8(_displayable(r.image)))
            files[r.label] = name
        drawn, note = figure(picture, _side_by_side, tmp / picture, panels)
        if drawn:
            files["compare"] = picture
        if note:
            notes.append(note)
        drawn, note = figure("curves.png", _curves, tmp / "curves.png", recs, ylabel, log)
        if drawn:
            files["curves"] = "curves.png"
        if note:
            notes.append(note)
        files["record"] = RECORD
        record["files"] = files
        record["out"] = str(folder.path)
        check(_record.json_data(record))  # the layout of what is written (docs/inspect-record.md)
        (tmp / RECORD).write_text(_record.record_json(record, indent=INDENT), encoding="utf-8")
    return record
