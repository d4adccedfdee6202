"""Finished pages of a stack kept on disk, so that an interrupted restoration continues where it stopped.

``restorekit batch`` (and ``restorekit run --out OUT``) restores a multi-page TIFF page by page
(:mod:`.pages`); a z-stack of hundreds of pages takes hours, and a run killed at page 180 (SIGKILL, a power
cut, a job's time limit) would start over at page 1.  :class:`PageStore` keeps every finished page in a
hidden folder beside the image's output folder (``.<name>.rk-pages/`` beside ``OUT``), and the next attempt
into the same output folder takes them from there:

* ``pages.json`` says whose pages these are: the input's SHA-256, its page count, the run's options
  (components, seed, iterations, ..., and the plugins' versions), the side inputs' SHA-256 and
  restorekit's version.  A folder that
  says anything else (another input, other options) is emptied before a page is written, so a page is
  never taken for another run's;
* ``page-NNNN.npz`` is page NNNN (1-based), written atomically (a temporary file, fsynced, renamed:
  :func:`~restorekit.io.atomic_write_bytes`) once the page is restored and recorded, and only when its
  fit was not interrupted: a page file that exists is a finished page, whole.  It holds the page's
  result in the input's sample type, its float result, its observation where it is not the page as read,
  its reference and mask where it has them, its scores and its own record, everything the stack's
  outputs are made of, so the stack assembled from kept pages is the one an uninterrupted run writes;
* anything else in the folder (a temporary file of a killed write, a page file that cannot be read)
  is removed, and that page restored again.

A kill at any moment leaves pages.json and whole page files, or a temporary file that the next attempt
removes: no page is taken twice or skipped.  The stack is written only when every page is done, into
the output folder, all at once (:mod:`.outputs`); then the folder of kept pages is removed.
"""

from __future__ import annotations

import contextlib
import io as _io
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..io import Image, atomic_write_bytes
from ..io.files import file_digest

__all__ = ["PageStore", "discard_kept", "kept_folder", "run_identity"]

_PAGE = re.compile(r"^page-(\d{4,})\.npz$")
_INDEX = "pages.json"


def kept_folder(out: str | os.PathLike[str]) -> Path:
    """Where the finished pages of the image whose output folder is ``out`` are kept:
    ``.<name>.rk-pages`` beside it (hidden; batch's output folders never are)."""
    out = Path(out)
    return out.parent / f".{out.name}.rk-pages"


def plugin_versions() -> list[list[str]]:
    """The plugins loaded, with their versions (an upgraded BM3D plugin restores the stack again)."""
    from ..plugins import get_host

    return sorted([p.name, p.version] for p in get_host().plugins if p.status == "loaded")


def run_identity(settings: Any) -> dict[str, Any]:
    """What a kept page of ``restorekit run`` depends on: its settings but the image (compared by its
    SHA-256), the device (a run may continue on another one) and the reference's path, and the plugins
    loaded with their versions."""
    from dataclasses import asdict

    fields = {k: v for k, v in asdict(settings).items() if k not in ("image", "device", "reference")}
    fields["reference"] = settings.reference is not None
    fields["plugins"] = plugin_versions()
    return json.loads(json.dumps(fields, default=str))


def discard_kept(out: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]] = ()) -> None:
    """Remove the kept pages of the image whose output folder is ``out``, if any (its stack is written);
    never a folder that holds one of ``inputs``."""
    if not _holds(kept_folder(out), inputs):
        shutil.rmtree(kept_folder(out), ignore_errors=True)


def _holds(folder: Path, files: Sequence[str | os.PathLike[str]]) -> bool:
    """Whether one of ``files`` lies inside ``folder`` (a store there would empty it: it keeps no pages)."""
    top = Path(os.path.realpath(folder))
    return any(Path(os.path.realpath(f)).is_relative_to(top) for f in files)


class PageStore:
    """The finished pages of one stack's restoration, in ``folder``.

    ``identity`` is what makes two runs' pages interchangeable (the options a page's result depends
    on, JSON-able); ``files`` the files they read (the input first, then side inputs), compared by
    their SHA-256.  Nothing is read or written until :meth:`begin`.
    """

    def __init__(self, folder: str | os.PathLike[str], identity: dict[str, Any], files: Sequence[str]) -> None:
        self.folder = Path(folder)
        self.identity = identity
        self.files = [str(f) for f in files]
        self.pages = 0
        self.loaded: list[int] = []  #: the pages (1-based) taken from an earlier attempt
        #: a folder that holds one of the files read (an input named .O.rk-pages/s.tif) is never written,
        #: emptied or removed: no page is kept then
        self.active = not _holds(self.folder, self.files)

    def _index(self, pages: int) -> dict[str, Any]:
        from .. import __version__

        index = {"restorekit": __version__, "pages": pages, "options": self.identity,
                 "files": [file_digest(f) for f in self.files]}
        return json.loads(json.dumps(index))  # as read back from pages.json (tuples as lists)

    def begin(self, pages: int) -> list[int]:
        """Open the folder for a stack of ``pages`` pages: the pages (1-based) an earlier attempt of the
        same run finished; a folder of another run's pages is emptied first."""
        self.pages = pages
        if not self.active:
            return []
        index = self._index(pages)
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            found = json.loads((self.folder / _INDEX).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            found = None
        same = found == index and None not in index["files"]
        for entry in os.listdir(self.folder):
            m = _PAGE.match(entry)
            if entry == _INDEX or (same and m and 1 <= int(m.group(1)) <= pages):
                continue
            _remove(self.folder / entry)  # another run's pages, a killed write's temporary file
        if not same:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.folder / _INDEX)
            atomic_write_bytes(self.folder / _INDEX, json.dumps(index, indent=1).encode(), overwrite=True)
        return sorted(int(m.group(1)) for e in os.listdir(self.folder) if (m := _PAGE.match(e)))

    def _path(self, k: int) -> Path:
        return self.folder / f"page-{k:04d}.npz"

    def save(self, k: int, result: Any) -> None:
        """Keep page ``k`` (1-based), finished: its :class:`~.pipeline.Result`, atomically."""
        if not self.active:
            return
        from ..session.record import record_json

        meta = {"metrics": result.metrics, "baseline": result.baseline, "record": record_json(result.record)}
        arrays: dict[str, np.ndarray] = {"image": result.image, "restored": result.restored,
                                         "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
        src = result.source.data
        if result.degraded.shape != src.shape or not np.array_equal(result.degraded, src):
            arrays["degraded"] = result.degraded  # else: the page as read, read again
        for name in ("reference", "mask"):
            if getattr(result, name) is not None:
                arrays[name] = getattr(result, name)
        buf = _io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(self._path(k), buf.getvalue(), overwrite=True)

    def load(self, k: int, page: Image) -> Any | None:
        """Page ``k`` (1-based) as an earlier attempt restored it, as a :class:`~.pipeline.Result` whose
        source is ``page``; None (and the file removed) when it cannot be read whole."""
        from .pipeline import Result
        from .record import RunRecord

        path = self._path(k)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {name: z[name] for name in z.files}
            meta = json.loads(arrays.pop("meta").tobytes().decode())
            record = RunRecord.from_json(meta["record"])
            degraded = arrays.get("degraded", page.data)
            result = Result(
                image=arrays["image"], restored=arrays["restored"], degraded=degraded,
                reference=arrays.get("reference"), mask=arrays.get("mask"), metrics=dict(meta["metrics"]),
                baseline=dict(meta["baseline"]), record=record, source=page, interrupted=False,
                history=record.history.model_dump())
        except FileNotFoundError:
            return None
        except Exception:  # noqa: BLE001 - a page that cannot be read whole is restored again
            _remove(path)
            return None
        self.loaded.append(k)
        return result

    def discard(self) -> None:
        """Remove the folder (the stack's results are written: its pages are in them)."""
        if self.active:
            shutil.rmtree(self.folder, ignore_errors=True)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            os.unlink(path)
