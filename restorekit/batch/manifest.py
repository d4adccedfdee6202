"""The batch manifest: ``OUT_DIR/manifest.sqlite``, one row per image.

Why SQLite and not JSON Lines: each change is one transaction (a crash
leaves the previous state, never half a line), the image's key is the
primary key (an image can never be recorded twice, whatever retries
happen), and in WAL mode anyone can read it while the batch writes
(``restorekit batch --status OUT_DIR``, ``sqlite3``, pandas).  It is in the
standard library.  Only the client (the process running ``batch``) writes
to it; workers return their results.  It is created whole (built under a
temporary name, then renamed), and ``OUT_DIR/batch.lock`` keeps a second
client off the folder while one runs.

Statuses: ``pending`` (not started, or to retry; an image in flight when
Ctrl-C or SIGTERM stopped the batch, its attempt counted), ``running`` (handed
to a worker; a batch killed meanwhile leaves it -- ``--status`` shows it
pending once ``batch.lock`` names no live process -- and ``--resume`` runs it again),
``done`` (outputs written; ``checksum`` is the SHA-256 of restored image +
run.json as written), ``failed`` (``error`` says why; retried on ``--resume``
up to the attempt limit).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..errors import UsageError

MANIFEST_NAME = "manifest.sqlite"
#: held (flock) by the process running a batch, so a second one on the same OUT_DIR is refused; the OS
#: releases it when that process ends, however it ends, and the file itself stays
LOCK_NAME = "batch.lock"
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
    """The manifest of one output folder (``readonly``: a reader such as ``--status``, which never writes)."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA query_only=ON")  # nothing is written before the caller's checks pass
        if not readonly:
            self.writable()

    def writable(self) -> "Manifest":
        """Allow writing (WAL, synchronous): call it once the manifest is known to be this batch's."""
        self.db.execute("PRAGMA query_only=OFF")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        return self

    @classmethod
    def create(cls, out_dir: Path, settings: dict[str, Any]) -> "Manifest":
        """A new manifest, made whole or not at all: it is built under a hidden temporary name and
        renamed into place, so a batch killed while creating it leaves no manifest without its
        settings (which no ``--resume`` could open)."""
        path = Path(out_dir) / MANIFEST_NAME
        fd, tmp = tempfile.mkstemp(prefix=f".{MANIFEST_NAME}.", suffix=".tmp", dir=out_dir)
        os.close(fd)
        try:
            db = sqlite3.connect(tmp, isolation_level=None)
            try:
                db.executescript(_SCHEMA)
                db.execute("INSERT INTO batch VALUES (1, ?, ?, ?)",
                           (MANIFEST_VERSION, time.time(), json.dumps(settings, sort_keys=True)))
                db.execute("PRAGMA journal_mode=WAL")  # persistent: readers never block the batch
            finally:
                db.close()
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            from ..io.files import umask

            os.chmod(tmp, 0o666 & ~umask())  # mkstemp made it private; a manifest is as readable as the results
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return cls(path)

    @classmethod
    def open(cls, out_dir: Path, readonly: bool = False) -> "Manifest":
        """The manifest of ``out_dir``, checked (a SQLite file with this version's tables and settings)
        while it is open read-only: a file that is not a manifest is refused without being written to.
        ``readonly``: it stays so (call :meth:`writable` after further checks)."""
        path = Path(out_dir) / MANIFEST_NAME
        if not path.is_file():
            raise UsageError(f"'{out_dir}' holds no batch manifest ({MANIFEST_NAME})")
        m = None
        try:
            m = cls(path, readonly=True)
            version = m.db.execute("SELECT version FROM batch WHERE id = 1").fetchone()
            if version is not None and version[0] == MANIFEST_VERSION:
                if not isinstance(m.settings(), dict):
                    raise ValueError("its settings are not an object")
                m.db.execute("SELECT key, input, out, status, attempts FROM items LIMIT 1").fetchall()
        except (sqlite3.DatabaseError, ValueError) as exc:
            if m is not None:
                m.close()
            raise UsageError(f"'{path}' is not a readable batch manifest ({exc})") from None
        if version is None or version[0] != MANIFEST_VERSION:
            m.close()
            raise UsageError(f"'{path}' was written by another manifest version ({version})")
        return m if readonly else m.writable()

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
        """Add items not yet in the manifest as pending; known keys keep their status and results, and
        take the paths given now (a batch resumed after OUT_DIR or IN_DIR moved)."""
        with self._tx():
            self.db.executemany(
                "INSERT INTO items (key, input, out, status) VALUES (?, ?, ?, 'pending') "
                "ON CONFLICT(key) DO UPDATE SET input = excluded.input, out = excluded.out",
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


class BatchLock:
    """``OUT_DIR/batch.lock``, held for as long as a batch runs there: a second batch on the same
    folder is refused (two clients would write the same folders and manifest).  An OS lock
    (``flock``), so a batch that is killed never leaves it taken."""

    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / LOCK_NAME
        self._fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        try:
            _lock(self._fh)
        except OSError:
            self._fh.seek(0)
            who = self._fh.read().strip() or "another process"
            self._fh.close()
            raise UsageError(f"'{out_dir}' is in use by another batch ({who}); wait for it to end, or choose "
                             "another output folder") from None
        self._fh.seek(0)
        self._fh.truncate()
        import socket

        self._fh.write(f"{socket.gethostname()}:{os.getpid()}\n")
        self._fh.flush()

    def release(self) -> None:
        if not self._fh.closed:
            with contextlib.suppress(OSError):
                self._fh.seek(0)
                self._fh.truncate()  # no one named: --status knows that no batch runs here
                self._fh.flush()
            self._fh.close()  # closing the file releases the lock


def batch_running(out_dir: Path) -> bool:
    """Whether a batch may be running in ``out_dir``, read from ``batch.lock`` without locking it (that
    could make a batch starting now fail): the file names the process that holds it ("host:pid"); a
    missing or empty file, or a process of this machine that no longer exists, means none runs."""
    import socket

    try:
        text = (Path(out_dir) / LOCK_NAME).read_text(encoding="utf-8").strip()
    except OSError:
        return False
    host, _, pid = text.rpartition(":")
    if not text:
        return False
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's batch (a shared disk): it cannot be told from here
    from ..session.outdir import pid_alive

    return pid_alive(int(pid))


def _lock(fh) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        return
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def check_can_start(out_dir: Path, resume: bool, items: Iterable[Any] = ()) -> None:
    """Refuse, before anything is written, a new batch where one exists or a ``--resume`` with none, and
    a batch that would replace files it did not write: a new batch (no manifest) needs every image's
    output folder missing or empty and no index.html (a folder of earlier results whose manifest was
    deleted is not taken for this batch's); a resumed one may replace only its own results (restorekit's
    files and record) in the folders of the images it computes again.  The manifest is read read-only."""
    path = Path(out_dir) / MANIFEST_NAME
    if path.exists() and not resume:
        raise UsageError(
            f"'{out_dir}' already holds a batch: pass --resume to continue it (finished images are "
            "kept), or choose another output folder"
        )
    if resume and not path.exists():
        raise UsageError(f"--resume: '{out_dir}' holds no batch to resume (run without --resume to start one)")
    if resume:
        m = Manifest.open(out_dir, readonly=True)  # not a manifest: refused, and left as it was
        try:
            rows = {r.key: r for r in m.rows()}
        finally:
            m.close()
    from .report import REPORT_NAME

    taken: list[str] = []
    for item in items:
        out = Path(item.out)
        if not os.path.lexists(out):
            continue
        shown = os.path.join(out_dir, os.path.relpath(out, os.path.abspath(out_dir)))  # as OUT was given
        if not out.is_dir() or out.is_symlink():
            raise UsageError(f"'{shown}', where the batch would write the results of '{item.key}', is not a folder: "
                             "move it away, or choose another output folder")
        if not resume:
            if any(os.scandir(out)):
                taken.append(shown)
            continue
        if not any(os.scandir(out)):
            continue
        from ..session.outdir import not_replaceable

        row = rows.get(item.key)
        if row is None or row.attempts == 0:  # never handed out: whatever is there, this batch did not write
            raise UsageError(f"--resume: '{shown}' holds files, but this batch has not written the results of "
                             f"'{item.key}' yet: restorekit batch never replaces what it did not record; move them "
                             "away, or choose another output folder")
        # handed out by this batch (attempts > 0): a folder of restorekit's own files without a record is
        # one its killed worker reserved and had not finished; anything else there is not this batch's
        why = not_replaceable(out, record_needed=False)
        if why is not None and not (row.status == "done" and row.checksum and output_checksum(out) == row.checksum):
            raise UsageError(f"--resume: the results of '{item.key}' would replace '{shown}', but {why}: "
                             "restorekit batch replaces only its own results; move it away, or choose another "
                             "output folder")
    if not resume and os.path.lexists(Path(out_dir) / REPORT_NAME):
        taken.append(str(Path(out_dir) / REPORT_NAME))
    if taken:
        more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
        raise UsageError(f"'{out_dir}' holds no batch manifest but has files where this batch would write "
                         f"('{taken[0]}'{more}): restorekit batch never replaces what it did not record; move "
                         "them away, or choose another output folder")


def open_or_create(out_dir: Path, settings: dict[str, Any], resume: bool) -> Manifest:
    """The manifest of OUT_DIR: a new one, or with ``resume`` the existing one (its settings must match).
    Call it holding the :class:`BatchLock`."""
    check_can_start(out_dir, resume)
    if resume:
        m = Manifest.open(out_dir, readonly=True)  # written to only once it is known to be this batch's
        before = m.settings()
        changed = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
        if changed:
            m.close()
            raise UsageError(
                f"--resume with other settings than the batch in '{out_dir}' was started with "
                f"({', '.join(changed)}): give the same options, or choose another output folder"
            )
        return m.writable()
    return Manifest.create(out_dir, settings)


def sweep_temporary(out_dir: Path) -> list[Path]:
    """Remove the hidden temporary files a killed batch left at the top of OUT_DIR (a manifest being
    created, index.html being rewritten).  Call it holding the :class:`BatchLock`."""
    removed = []
    for name in os.listdir(out_dir):
        if name.startswith((f".{MANIFEST_NAME}.", ".index.html.")) and name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                os.unlink(Path(out_dir) / name)
                removed.append(Path(out_dir) / name)
    return removed
