"""Output folders: check and reserve where a command's results go, before any work.

Every command that writes a folder of results (run, batch's images, compare, segment, decompose,
invert, visualize, eval, train's model folder) reserves it here first (:func:`prepare_output`), and
then writes into its staging folder through :func:`restorekit.session.commit.committing`.  A command
that continues its own folder in place (``train --resume``) locks it with :func:`continue_output`.

The rules (docs/usage.md, "Output folders"):

* Without ``--out`` a run takes ``runs/<stem>-NNN``, the first number whose
  folder it can *create*: the folder is made at once (``os.mkdir`` is
  atomic), so two runs started together never pick the same one.
* ``--out DIR`` takes a missing or empty folder.  A folder that holds files is
  replaced only with ``--overwrite``, and only when restorekit wrote it: it
  holds a restorekit ``run.json`` (``eval.json`` for eval's) and nothing but
  restorekit's own outputs.
* A folder that is, or contains, any input (the image, a mask, the
  reference, a data folder) is never replaced.
* The location is checked by doing what the write will do: the folder is
  created (or locked, when it exists) and the hidden staging folder beside
  it, where the results are written, is created.  A location that cannot
  take the results fails before the fit, as a one-line usage error.
* A reserved folder carries a lock file naming the process; a second run
  aimed at it while the first runs is refused.  Staging folders and locks
  left by a process that no longer runs (SIGKILL, a power cut) are removed
  by the next run that uses the same parent folder.

This module does not import torch.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..errors import UsageError
from .signals import deferred_signals

__all__ = ["OutputFolder", "prepare_output", "continue_output", "RESULT_FILES", "RECORDS", "LOCK_NAME", "clean_stale",
           "not_replaceable", "pid_alive", "default_stem", "host_tag"]

#: the lock file of a reserved output folder
LOCK_NAME = ".restorekit-run"
#: what restorekit writes into an output folder (restored/degraded take the input's suffix;
#: labels, overlay and layer-* are segment's and decompose's, eval.json eval's)
RESULT_FILES = re.compile(
    r"^(?:(?:restored|degraded)\.(?:png|tif|tiff)|mask\.(?:png|tif)|compare\.png|curves\.png|run\.json|eval\.json"
    r"|labels\.png|overlay\.png|layer-[a-z0-9-]+\.png)$"
)
#: the longest folder-name stem kept in default names and staging names
_STEM_MAX = 80


def host_tag() -> str:
    """This machine's name as staging folders and locks carry it (letters and digits, at most 24)."""
    return re.sub(r"[^A-Za-z0-9]+", "", socket.gethostname())[:24] or "host"


def _staging_pattern() -> re.Pattern[str]:
    return re.compile(rf"^\..*\.rk-{re.escape(host_tag())}-(\d+)-[^.]*\.(?:tmp|old)$")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` on this machine still runs (someone else's process counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:
        return True
    return True


def _quote(path: Path | str) -> str:
    return "'" + os.fspath(path).replace("\n", "\\n").replace("\r", "\\r") + "'"


def _reason(exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return "the file system is read-only"
    if exc.errno == errno.ENAMETOOLONG:
        return "the name is too long for the file system"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def _location_error(out: Path, exc: OSError) -> UsageError:
    return UsageError(f"cannot write results to {_quote(out)}: {_reason(exc)}; choose another --out")


@dataclass
class OutputFolder:
    """A checked, reserved output location.

    ``path`` is the final folder; ``staging`` the hidden folder beside it
    where results are written before they are moved into place; ``replace``
    says that ``path`` holds an earlier restorekit result that the commit
    replaces.  Call :meth:`commit` once everything is in ``staging``, or
    :meth:`abandon` to undo the reservation.
    """

    path: Path
    staging: Path | None
    replace: bool = False
    created: list[Path] = field(default_factory=list)  # folders this run made (deepest last)

    def commit(self) -> None:
        """Move ``staging`` into place as ``path`` (replacing an earlier result with ``replace``)."""
        assert self.staging is not None, "commit() needs the staging folder"
        os.chmod(self.staging, 0o755)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.staging / LOCK_NAME)
        # the renames are never split by Ctrl-C or SIGTERM (they wait until the folder is in place)
        with deferred_signals():
            if self.replace:
                old = Path(tempfile.mkdtemp(prefix=self._prefix(), suffix=".old", dir=self.path.parent))
                old.rmdir()
                os.replace(self.path, old)
                try:
                    os.replace(self.staging, self.path)
                except OSError:
                    os.replace(old, self.path)  # the earlier result goes back: never lost to a failed write
                    raise
                shutil.rmtree(old, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path / LOCK_NAME)
                try:
                    os.replace(self.staging, self.path)  # onto the empty reserved folder
                except OSError:
                    os.rmdir(self.path)  # platforms that cannot rename onto an empty folder
                    os.replace(self.staging, self.path)
        self.staging = None
        self.created = []

    def abandon(self) -> None:
        """Remove the staging folder, the lock and the folders this run created (when still empty)."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        lock = self.path / LOCK_NAME
        with contextlib.suppress(OSError):
            if _lock_pid(lock) == os.getpid():
                os.unlink(lock)
        for folder in reversed(self.created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
        self.created = []

    def _prefix(self) -> str:
        return f".{self.path.name[:_STEM_MAX]}.rk-{host_tag()}-{os.getpid()}-"


def _lock_pid(lock: Path) -> int | None:
    try:
        data = json.loads(lock.read_text(encoding="utf-8"))
        if data.get("host") != host_tag():
            return -1  # another machine's run: treat as alive
        return int(data["pid"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_lock(folder: Path) -> None:
    payload = json.dumps({"pid": os.getpid(), "host": host_tag()})
    fd = os.open(folder / LOCK_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(payload)


def clean_stale(parent: Path) -> list[Path]:
    """Remove staging folders in ``parent`` left by restorekit processes that no longer run."""
    removed: list[Path] = []
    pattern = _staging_pattern()
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        m = pattern.match(name)
        if m and not pid_alive(int(m.group(1))):
            path = parent / name
            shutil.rmtree(path, ignore_errors=True)
            if not os.path.lexists(path):
                removed.append(path)
    return removed


def _is_within(child: Path, parent: Path) -> bool:
    try:
        child.relative_to(parent)
        return True
    except ValueError:
        return False


def _real(path: Path) -> Path:
    return Path(os.path.realpath(os.path.abspath(path)))


def _check_inputs(out: Path, inputs: Iterable[Path]) -> None:
    real_out = _real(out)
    for item in inputs:
        try:
            if not os.path.lexists(item):
                continue
            real = _real(item)
        except (OSError, ValueError):
            continue
        if _is_within(real, real_out) or _is_within(Path(os.path.abspath(item)), Path(os.path.abspath(out))):
            what = "is" if real == real_out else "contains"
            raise UsageError(
                f"output folder {_quote(out)} {what} an input ({_quote(item)}); restorekit never writes "
                "over its inputs: choose another --out"
            )


def _foreign_entries(folder: Path) -> list[str]:
    listed = _listed_entries(folder)
    return sorted(n for n in os.listdir(folder) if not RESULT_FILES.match(n) and n != LOCK_NAME and n not in listed)


#: the records that mark a folder as restorekit's (run, segment, decompose: run.json; eval: eval.json;
#: compare: compare.json; invert, visualize: inspect.json)
RECORDS = ("run.json", "eval.json", "compare.json", "inspect.json")


def _listed_entries(folder: Path) -> set[str]:
    """What a compare.json or inspect.json in ``folder`` says restorekit wrote there, where the entry is
    what restorekit writes: the record itself, a PNG it names (inspect's one image per prior), and (compare)
    a method's subfolder that is itself a restorekit result holding nothing else (checked, not trusted:
    a record is a file anyone can edit, and a user's file put into a method's folder is theirs)."""
    names: set[str] = set()
    for record in ("compare.json", "inspect.json"):
        try:
            data = json.loads((folder / record).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or "restorekit" not in data:
            continue
        names.add(record)
        files = data.get("files")
        if isinstance(files, dict):
            names.update(v for v in files.values() if isinstance(v, str))
        for row in data.get("methods") or ():
            if isinstance(row, dict) and isinstance(row.get("folder"), str):
                names.add(row["folder"])
    kept = set()
    for n in names:
        if not n or "/" in n or "\\" in n or n in (".", ".."):
            continue
        path = folder / n
        if path.is_dir() and not path.is_symlink():
            if not_replaceable(path) is None:
                kept.add(n)
        elif n in ("compare.json", "inspect.json") or n.endswith(".png"):
            kept.add(n)
    return kept


def _is_restorekit_result(folder: Path) -> bool:
    for name in RECORDS:
        try:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "restorekit" in data:
            return True
    return False


def not_replaceable(folder: Path, record_needed: bool = True) -> str | None:
    """Why ``--overwrite`` may not replace the existing, non-empty ``folder`` ("it holds 'x', which
    restorekit did not write"; "it has no restorekit record ..."), or None when restorekit wrote it.
    ``record_needed=False``: restorekit's own file names suffice (a folder the caller knows it reserved,
    which a killed run left before its record was written)."""
    foreign = _foreign_entries(folder)
    if foreign:
        shown = f"'{foreign[0]}'" + (f" and {len(foreign) - 1} more" if len(foreign) > 1 else "")
        return f"it holds {shown}, which restorekit did not write"
    if record_needed and not _is_restorekit_result(folder):
        return f"it has no restorekit record ({' or '.join(RECORDS)})"
    return None


def _check_lock(out: Path, advice: str = "choose another --out") -> None:
    """Refuse a folder whose lock names a restorekit process still running (here or on another machine);
    remove a lock left by one that no longer exists."""
    lock = out / LOCK_NAME
    if os.path.lexists(lock):
        pid = _lock_pid(lock)
        if pid is not None and (pid == -1 or pid_alive(pid)):
            who = "another machine" if pid == -1 else f"process {pid}"
            raise UsageError(f"output folder {_quote(out)} is in use by another restorekit run ({who}); {advice}")
        os.unlink(lock)  # left by a run that no longer exists


def _claim_existing(out: Path, overwrite: bool) -> bool:
    """Lock an existing folder for this run; True when it holds a result to replace."""
    _check_lock(out)
    entries = os.listdir(out)
    if entries:
        if not overwrite:
            raise UsageError(
                f"output folder {_quote(out)} already holds files; pass --overwrite to replace an earlier "
                "restorekit result there, or choose another --out"
            )
        why = not_replaceable(out)
        if why is not None:
            raise UsageError(
                f"--overwrite only replaces a folder restorekit wrote, and {_quote(out)} is not one: {why}; "
                "choose another --out"
            )
    _write_lock(out)
    return bool(entries)


def _make_parents(folder: Path, out: Path) -> list[Path]:
    """``mkdir -p folder``, returning what was created (shallowest first)."""
    missing: list[Path] = []
    probe = folder
    while not os.path.lexists(probe):
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    if os.path.lexists(probe) and not probe.is_dir():
        raise UsageError(f"cannot write results to {_quote(out)}: {_quote(probe)} is not a folder; choose another --out")
    created: list[Path] = []
    for p in reversed(missing):
        try:
            os.mkdir(p)
        except FileExistsError:
            if not p.is_dir():
                raise UsageError(
                    f"cannot write results to {_quote(out)}: {_quote(p)} is not a folder; choose another --out"
                ) from None
            continue
        except OSError as exc:
            for q in reversed(created):
                with contextlib.suppress(OSError):
                    q.rmdir()
            raise _location_error(out, exc) from None
        created.append(p)
    return created


def default_stem(source: Path | None) -> str:
    """The ``<stem>`` of ``runs/<stem>-NNN`` for ``source``: its file stem, made safe for a folder name."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", source.stem) if source else "default"
    return stem[:_STEM_MAX].strip(".") or "image"


def prepare_output(
    out: Path | None,
    *,
    source: Path | None = None,
    overwrite: bool = False,
    inputs: Iterable[Path] = (),
    root: Path = Path("runs"),
    staged: bool = True,
) -> OutputFolder:
    """Check the output location and reserve it, before any work is done.

    ``out`` ``None`` picks ``root/<stem>-NNN`` for ``source``.  ``inputs``
    are the paths the run reads: the output may be neither one of them nor
    a folder holding one.  Raises :class:`UsageError` (one line) when the
    location cannot take the results; on success the folder exists with a
    lock file in it and the staging folder exists beside it (``staged=False``:
    none, for a command that writes into the folder in place, as ``train``
    does so that its checkpoint outlives a killed run).
    """
    inputs = [Path(p) for p in inputs]
    created: list[Path] = []
    replace = False
    if out is None:
        created += _make_parents(root, root)
        clean_stale(root)
        stem = default_stem(source)
        n = 1
        while True:
            cand = root / f"{stem}-{n:03d}"
            try:
                os.mkdir(cand)
            except FileExistsError:
                n += 1
                continue
            except OSError as exc:
                raise _location_error(cand, exc) from None
            out = cand
            created.append(cand)
            break
        try:
            _write_lock(out)
        except OSError as exc:
            _undo(created)
            raise _location_error(out, exc) from None
    else:
        out = Path(out)
        if os.path.islink(out) and not out.exists():
            raise UsageError(
                f"output path {_quote(out)} is a symbolic link to a missing location; remove it or choose another --out"
            )
        _check_inputs(out, inputs)
        try:
            exists = out.exists()
        except OSError as exc:
            raise _location_error(out, exc) from None
        if exists and not out.is_dir():
            raise UsageError(f"output path {_quote(out)} exists and is not a folder; choose another --out")
        if not exists:
            created += _make_parents(out, out)
        else:
            clean_stale(out.parent)
        try:
            replace = _claim_existing(out, overwrite)
        except UsageError:
            _undo(created)
            raise
        except OSError as exc:
            _undo(created)
            raise _location_error(out, exc) from None
    folder = OutputFolder(path=out, staging=None, replace=replace, created=created)
    if not staged:
        return folder
    try:
        folder.staging = Path(tempfile.mkdtemp(prefix=folder._prefix(), suffix=".tmp", dir=out.parent))
        # the probe: a file in the staging folder, where the results will be written
        probe = folder.staging / LOCK_NAME
        probe.write_text("", encoding="utf-8")
    except OSError as exc:
        folder.abandon()
        raise _location_error(out, exc) from None
    return folder


def continue_output(out: Path, *, inputs: Iterable[Path] = ()) -> OutputFolder:
    """Reserve an existing folder that a command continues in place (``train --resume``: the training's
    own folder, its checkpoint in it): the input checks and the lock of :func:`prepare_output`, but the
    folder's files stay as they are, nothing is created and nothing is staged.

    Raises :class:`UsageError` (one line) when ``out`` is not a folder, is or holds one of ``inputs``, or
    is locked by a restorekit process that still runs; a lock left by one that no longer runs is
    replaced.  :meth:`OutputFolder.abandon` removes the lock again (and nothing else).
    """
    out = Path(out)
    _check_inputs(out, [Path(p) for p in inputs])
    if not out.is_dir():
        raise UsageError(f"output path {_quote(out)} is not a folder to continue; choose another --out")
    # the folder is the command's own: the way out is to wait, or to remove a lock that a killed run on
    # another machine left (this machine cannot tell whether that one still runs)
    advice = f"wait for it to end, or delete {_quote(out / LOCK_NAME)} if it no longer runs"
    try:
        _check_lock(out, advice)
        _write_lock(out)
    except FileExistsError:  # another process locked it since the check
        raise UsageError(f"output folder {_quote(out)} is in use by another restorekit run; {advice}") from None
    except OSError as exc:
        raise _location_error(out, exc) from None
    return OutputFolder(path=out, staging=None)


def _undo(created: list[Path]) -> None:
    for folder in reversed(created):
        with contextlib.suppress(OSError):
            lock = folder / LOCK_NAME
            if _lock_pid(lock) == os.getpid():
                os.unlink(lock)
            folder.rmdir()
