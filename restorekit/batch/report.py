"""``OUT_DIR/index.html``: a static page of the batch, rewritten (atomically) as images finish.

No server and no network: open the file in a browser while the batch runs
and reload.  One row per image with its degraded | restored thumbnails,
status, metrics and time; a click on a column header sorts by it.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from ..io import atomic_write_text
from .manifest import Manifest

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
        folder = Path(r.out)
        try:
            rel = folder.resolve().relative_to(out_dir.resolve()).as_posix()
        except ValueError:
            rel = None
        thumbs = ""
        if r.status == "done" and rel is not None:
            files = _files(folder)
            imgs = [f'<img src="{html.escape(rel)}/{html.escape(files[k])}" loading="lazy">'
                    for k in ("degraded", "restored") if k in files]
            thumbs = " ".join(imgs)
        cells = [_cell(r.key, f'<a href="{html.escape(rel)}/run.json">{html.escape(r.key)}</a>'
                       if rel and r.status == "done" else None), _cell(r.status), _cell("", thumbs)]
        for m in metric_names:
            v = (r.metrics or {}).get(m)
            cells.append(_cell(v, "" if v is None else f"{v:.4f}"))
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


def _files(folder: Path) -> dict[str, str]:
    try:
        return json.loads((folder / "run.json").read_text(encoding="utf-8")).get("files") or {}
    except (OSError, ValueError):
        return {}


def write_report(out_dir: Path, manifest: Manifest) -> Path:
    """Rewrite OUT_DIR/index.html from the manifest (atomically: a reader never sees half a page)."""
    path = Path(out_dir) / "index.html"
    atomic_write_text(path, render(Path(out_dir), manifest), overwrite=True)
    return path
