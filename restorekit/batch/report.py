"""``OUT_DIR/index.html``: a static page of the batch, rewritten (atomically) as images finish.

No server and no network: open the file in a browser while the batch runs
and reload.  One row per image with its degraded | restored thumbnails,
status, metrics and time; a click on a column header sorts by it.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from ..io import atomic_write_text
from .manifest import Manifest

REPORT_NAME = "index.html"

_SCRIPT = """
<script>
function sortBy(col, numeric) {
  const body = document.querySelector('tbody');
  const rows = Array.from(body.rows);
  const dir = body.dataset.col == col && body.dataset.dir == 'asc' ? 'desc' : 'asc';
  rows.sort((a, b) => {
    let x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
    if (numeric) { x = parseFloat(x); y = parseFloat(y); x = isNaN(x) ? -1e300 : x; y = isNaN(y) ? -1e300 : y; }
    return (x < y ? -1 : x > y ? 1 : 0) * (dir == 'asc' ? 1 : -1);
  });
  rows.forEach(r => body.appendChild(r));
  body.dataset.col = col; body.dataset.dir = dir;
}
</script>
"""


def _cell(value: Any, text: str | None = None) -> str:
    v = "" if value is None else str(value)
    return f'<td data-v="{html.escape(v)}">{text if text is not None else html.escape(v)}</td>'


def render(out_dir: Path, manifest: Manifest) -> str:
    rows = manifest.rows()
    counts = manifest.counts()
    metric_names: list[str] = []
    for r in rows:
        for k in (r.metrics or {}):
            if k not in metric_names:
                metric_names.append(k)
    head = ["image", "status", "degraded | restored", *metric_names, "seconds", "attempts", "error"]
    numeric = {i for i, h in enumerate(head) if h in metric_names or h in ("seconds", "attempts")}
    ths = "".join(
        f'<th onclick="sortBy({i}, {str(i in numeric).lower()})">{html.escape(h)}</th>' for i, h in enumerate(head)
    )
    body = []
    for r in rows:
        # the folder from the key, as inputs.output_folder makes it: the page links relative to itself,
        # whatever the current folder was when a row was written
        rel = PurePosixPath(r.key).with_suffix("").as_posix()
        folder = Path(out_dir).joinpath(*PurePosixPath(rel).parts)
        thumbs = ""
        files = _files(folder, r.checksum) if r.status == "done" else {}
        if files:
            imgs = [f'<img src="{_href(rel, files[k])}" alt="{k}" loading="lazy">'
                    for k in ("degraded", "restored") if k in files and (folder / files[k]).is_file()]
            thumbs = " ".join(imgs)
        link = f'<a href="{_href(rel, "run.json")}">{html.escape(r.key)}</a>' if files else None
        cells = [_cell(r.key, link), _cell(r.status), _cell("", thumbs)]
        for m in metric_names:
            v = (r.metrics or {}).get(m)
            cells.append(_cell(v, "" if not isinstance(v, (int, float)) else f"{v:.4f}"))
        cells += [_cell(r.seconds, "" if r.seconds is None else f"{r.seconds:.1f}"), _cell(r.attempts),
                  _cell(r.error or "")]
        body.append(f'<tr class="{html.escape(r.status)}">' + "".join(cells) + "</tr>")
    summary = " &middot; ".join(f"{k} {v}" for k, v in counts.items())
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>restorekit batch</title>\n"
        "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
        "td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:middle}"
        "th{cursor:pointer;background:#f4f4f4}img{height:96px;image-rendering:pixelated;margin-right:4px}"
        "tr.failed{background:#fee}tr.running{background:#ffd}</style>\n"
        f"{_SCRIPT}</head><body>\n<h1>restorekit batch</h1>\n<p>{summary} &middot; reload to update; "
        "click a column to sort</p>\n"
        f"<table><thead><tr>{ths}</tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table>\n</body></html>\n"
    )


def _href(rel: str, name: str) -> str:
    """A relative URL to OUT_DIR/rel/name: names with ``#``, ``?``, ``%`` or spaces stay links."""
    return html.escape(quote(f"{rel}/{name}"))


#: run.json's "files" of done folders, by (folder, checksum): each run.json is read once per process
_FILES: dict[tuple[str, str | None], dict[str, str]] = {}


def _files(folder: Path, checksum: str | None = None) -> dict[str, str]:
    cached = _FILES.get((str(folder), checksum)) if checksum else None
    if cached is not None:
        return cached
    try:
        files = json.loads((folder / "run.json").read_text(encoding="utf-8")).get("files") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    if checksum and isinstance(files, dict):
        _FILES[(str(folder), checksum)] = files
    return files if isinstance(files, dict) else {}


def write_report(out_dir: Path, manifest: Manifest) -> Path:
    """Rewrite OUT_DIR/index.html from the manifest (atomically: a reader never sees half a page)."""
    path = Path(out_dir) / REPORT_NAME
    atomic_write_text(path, render(Path(out_dir), manifest), overwrite=True)
    return path


class ReportWriter:
    """Rewrites the report as images finish, but spends at most about 1/``budget`` of the batch's time on
    it: a page of 10,000 rows is not rewritten 10,000 times (each rewrite waits until 20 times as long as
    the last one took has passed).  :meth:`update` with ``force`` always writes (at the start and end)."""

    def __init__(self, out_dir: Path, manifest: Manifest, budget: float = 20.0) -> None:
        self.out_dir, self.manifest, self.budget = Path(out_dir), manifest, budget
        self._next = 0.0

    def update(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next:
            return
        write_report(self.out_dir, self.manifest)
        done = time.monotonic()
        self._next = done + self.budget * (done - now)
