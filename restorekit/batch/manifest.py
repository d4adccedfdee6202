"""The batch manifest: ``OUT_DIR/manifest.sqlite``, one row per image.

Why SQLite and not JSON Lines: each change is one transaction (a crash
leaves the previous state, never half a line), the image's key is the
primary key (an image can never be recorded twice, whatever retries
happen), and in WAL mode anyone can read it while the batch writes
(``restorekit batch --status OUT_DIR``, ``sqlite3``, pandas).  It is in the
standard library.  Only the client (the process running ``batch``) writes
to it; workers return their results.

Statuses: ``pending`` (not started, or to retry), ``running`` (handed to a
worker; a batch killed meanwhile leaves it, and ``--resume`` runs it again),
``done`` (outputs written; ``checksum`` is the SHA-256 of restored image +
run.json as written), ``failed`` (``error`` says why; retried on ``--resume``
up to the attempt limit).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..errors import UsageError

MANIFEST_NAME = "manifest.sqlite"
#: bump when the tables change incompatibly
MANIFEST_VERSION = 1
STATUSES = ("pending", "running", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    created REAL NOT NULL,
    settings TEXT NOT NULL           -- JSON: the batch's options, as given
);
CREATE TABLE IF NOT EXISTS items (
    key TEXT PRIMARY KEY,            -- path relative to the input root
    input TEXT NOT NULL,
    out TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    seed INTEGER,
    specs TEXT,                      -- JSON: canonical specs of the components used
    metrics TEXT,                    -- JSON
    seconds REAL,
    worker TEXT,
    error TEXT,
    checksum TEXT,
    started REAL,
    finished REAL
);
"""


@dataclass
class Row:
    key: str
    input: str
    out: str
    status: str
    attempts: int = 0
    seed: int | None = None
    specs: dict | None = None
    metrics: dict | None = None
    seconds: float | None = None
    worker: str | None = None
    error: str | None = None
    checksum: str | None = None
    started: float | None = None
    finished: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def output_checksum(folder: str | Path) -> str | None:
    """SHA-256 over the restored image and run.json of a run folder; None when either is missing."""
    folder = Path(folder)
    try:
        record = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        restored = folder / record["files"]["restored"]
        h = hashlib.sha256()
        h.update(restored.read_bytes())
        h.update((folder / "run.json").read_bytes())
        return h.hexdigest()
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Manifest:
    """The manifest of one output folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")

    @classmethod
    def create(cls, out_dir: Path, settings: dict[str, Any]) -> "Manifest":
        m = cls(out_dir / MANIFEST_NAME)
        m.db.executescript(_SCHEMA)
        with m._tx():
            m.db.execute("INSERT OR IGNORE INTO batch VALUES (1, ?, ?, ?)",
                         (MANIFEST_VERSION, time.time(), json.dumps(settings, sort_keys=True)))
        return m

    @classmethod
    def open(cls, out_dir: Path) -> "Manifest":
        path = Path(out_dir) / MANIFEST_NAME
        if not path.is_file():
            raise UsageError(f"'{out_dir}' holds no batch manifest ({MANIFEST_NAME})")
        m = cls(path)
        try:
            version = m.db.execute("SELECT version FROM batch WHERE id = 1").fetchone()
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"'{path}' is not a readable batch manifest ({exc})") from None
        if version is None or version[0] != MANIFEST_VERSION:
            raise UsageError(f"'{path}' was written by another manifest version ({version})")
        return m

    def close(self) -> None:
        self.db.close()

    def _tx(self):
        db = self.db

        class _T:
            def __enter__(self_inner):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, exc_type, exc, tb):
                db.execute("COMMIT" if exc_type is None else "ROLLBACK")
                return False

        return _T()

    # -- reading ---------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        row = self.db.execute("SELECT settings FROM batch WHERE id = 1").fetchone()
        return json.loads(row[0]) if row else {}

    def rows(self, status: str | None = None) -> list[Row]:
        q = "SELECT key, input, out, status, attempts, seed, specs, metrics, seconds, worker, error, checksum, " \
            "started, finished FROM items"
        args: tuple = ()
        if status:
            q += " WHERE status = ?"
            args = (status,)
        out = []
        for r in self.db.execute(q + " ORDER BY key", args):
            out.append(Row(*r[:6], json.loads(r[6]) if r[6] else None, json.loads(r[7]) if r[7] else None, *r[8:]))
        return out

    def get(self, key: str) -> Row | None:
        rows = [r for r in self.rows() if r.key == key]
        return rows[0] if rows else None

    def counts(self) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        for status, n in self.db.execute("SELECT status, COUNT(*) FROM items GROUP BY status"):
            counts[status] = n
        return counts

    # -- writing (the client only) ---------------------------------------------------------------
    def add(self, items: Iterable[Any]) -> None:
        """Add items not yet in the manifest as pending (known keys are left as they are)."""
        with self._tx():
            self.db.executemany(
                "INSERT OR IGNORE INTO items (key, input, out, status) VALUES (?, ?, ?, 'pending')",
                [(i.key, i.input, i.out) for i in items],
            )

    def start(self, key: str, worker: str | None = None) -> None:
        with self._tx():
            self.db.execute(
                "UPDATE items SET status = 'running', attempts = attempts + 1, started = ?, worker = ?, "
                "error = NULL WHERE key = ?", (time.time(), worker, key))

    def finish(self, key: str, result: dict[str, Any]) -> None:
        """Record a worker's result (``status`` done or failed); one transaction."""
        status = result.get("status")
        if status not in ("done", "failed"):
            raise ValueError(f"a result's status is done or failed, not {status!r}")
        with self._tx():
            self.db.execute(
                "UPDATE items SET status = ?, seed = ?, specs = ?, metrics = ?, seconds = ?, worker = ?, "
                "error = ?, checksum = ?, finished = ? WHERE key = ?",
                (status, result.get("seed"), json.dumps(result.get("specs")) if result.get("specs") else None,
                 json.dumps(result.get("metrics")) if result.get("metrics") is not None else None,
                 result.get("seconds"), result.get("worker"), result.get("error"), result.get("checksum"),
                 time.time(), key))

    def reset_running(self) -> int:
        """Items left ``running`` by a batch that was killed go back to ``pending``."""
        with self._tx():
            cur = self.db.execute("UPDATE items SET status = 'pending' WHERE status = 'running'")
            return cur.rowcount


def open_or_create(out_dir: Path, settings: dict[str, Any], resume: bool) -> Manifest:
    """The manifest of OUT_DIR: a new one, or with ``resume`` the existing one (its settings must match)."""
    path = out_dir / MANIFEST_NAME
    if path.exists():
        if not resume:
            raise UsageError(
                f"'{out_dir}' already holds a batch: pass --resume to continue it (finished images are "
                "kept), or choose another output folder"
            )
        m = Manifest.open(out_dir)
        before = m.settings()
        changed = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
        if changed:
            m.close()
            raise UsageError(
                f"--resume with other settings than the batch in '{out_dir}' was started with "
                f"({', '.join(changed)}): give the same options, or choose another output folder"
            )
        return m
    if resume:
        raise UsageError(f"--resume: '{out_dir}' holds no batch to resume")
    return Manifest.create(out_dir, settings)
