"""The file system side of restorekit.io: input checks and durable writes.

* :func:`check_input_file` and :func:`_read_file_bytes` check an input path
  (exists, regular, not empty, readable) and read it; every OS-level problem
  becomes a one-line :class:`~restorekit.errors.UsageError`.
* :func:`atomic_write_bytes` / :func:`atomic_write_text` write a hidden
  temporary file in the target directory, fsync it, and move it over the
  target with :func:`os.replace`; :func:`_check_target` refuses a directory,
  a missing parent or (without ``overwrite``) an existing file first.  New
  files get ``0o666`` minus the umask, overwritten ones keep their mode.

Nothing here knows about image formats or pixels.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import RestoreError, UsageError
from .messages import _one_line, _os_reason, _quote


# --------------------------------------------------------------------------
# Input files


def check_input_file(path: str | os.PathLike[str], what: str = "image") -> Path:
    """Check that ``path`` can be read as an input file, without reading it.

    It must exist, be a regular file (not a directory, FIFO, device, ...),
    not be empty, and open for reading; a symbolic link loop, a name too long
    for the file system and other odd paths are refused too.  Each problem
    raises the one-line :class:`UsageError` that :func:`read_image` would
    raise ("cannot read {what} 'PATH': ..."), so a caller can check its
    inputs before a long computation.  Returns the path as a :class:`Path`.
    """
    p = _as_path(path, what)
    with _open_input(p, f"cannot read {what} {_quote(p)}"):
        pass
    return p


def _as_path(path: Any, what: str) -> Path:
    try:
        return Path(path)
    except TypeError:
        raise UsageError(f"cannot read {what} {_one_line(repr(path))}: not a file path") from None


def _open_input(path: Path, where: str) -> BinaryIO:
    """Stat and open an input file; every OS-level problem is a UsageError."""
    try:
        st = os.stat(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{where}: {_path_problem(exc, path)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{where}: it is a directory, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{where}: not a regular file")
    if st.st_size == 0:
        raise UsageError(f"{where}: the file is empty (0 bytes)")
    try:
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    except (OSError, ValueError) as exc:
        raise UsageError(f"{where}: {_path_problem(exc, path)}") from None


def _path_problem(exc: BaseException, path: Path) -> str:
    """The reason an OS call on ``path`` failed, in a few words."""
    code = getattr(exc, "errno", None)
    if isinstance(exc, FileNotFoundError):
        if os.path.islink(path):
            return "file not found (a broken symbolic link)"
        return "file not found"
    if isinstance(exc, NotADirectoryError):
        return "file not found (a parent of it is not a directory)"
    if isinstance(exc, PermissionError):
        return "permission denied (check the file's permissions)"
    if code == errno.ELOOP:
        return "symbolic link loop (too many levels of symbolic links)"
    if code == errno.ENAMETOOLONG:
        return "file name too long for the file system"
    if isinstance(exc, UnicodeError):
        return "the file name cannot be encoded for the file system"
    if isinstance(exc, ValueError) and "null" in str(exc).lower():
        return "the file name contains a NUL character"
    return _os_reason(exc)


def _read_file_bytes(path: Path, what: str) -> bytes:
    where = f"cannot read {what} {_quote(path)}"
    fh = _open_input(path, where)
    try:
        with fh:
            data = fh.read()
    except (OSError, ValueError) as exc:
        raise UsageError(f"{where}: {_path_problem(exc, path)}") from None
    if not data:
        raise UsageError(f"{where}: the file is empty (0 bytes)")
    return data


# --------------------------------------------------------------------------
# Atomic writes


def _check_target(path: Path, overwrite: bool) -> None:
    where = f"cannot write {_quote(path)}"
    if path.is_dir():
        raise UsageError(f"{where}: it is a directory; give a file name")
    parent = path.parent
    if not parent.exists():
        raise UsageError(f"{where}: directory {_quote(parent)} does not exist; create it first")
    if not parent.is_dir():
        raise UsageError(f"{where}: {_quote(parent)} is not a directory")
    if not overwrite and os.path.lexists(path):
        raise UsageError(f"{where}: the file exists; pass --overwrite to replace it")


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False
) -> Path:
    """Write ``data`` to ``path`` atomically; return the path.

    The bytes go to a hidden ``.<name>.<random>.tmp`` file next to the target,
    which is fsynced and then moved into place with :func:`os.replace`; on any
    failure the temporary file is removed.  An existing target raises
    :class:`UsageError` unless ``overwrite`` is true.
    """
    target = Path(path)
    where = f"cannot write {_quote(target)}"
    _check_target(target, overwrite)
    parent = target.parent
    mode = _new_file_mode(target)
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name[:100]}.", suffix=".tmp", dir=os.fspath(parent)
        )
    except PermissionError:
        raise UsageError(
            f"{where}: permission denied in directory {_quote(parent)}; choose another output"
        ) from None
    except OSError as exc:
        raise RestoreError(f"{where}: {_os_reason(exc)}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(OSError, NotImplementedError):
            os.chmod(tmp, mode)
        if not overwrite and os.path.lexists(target):  # appeared meanwhile
            raise UsageError(f"{where}: the file exists; pass --overwrite to replace it")
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, PermissionError):
            raise UsageError(f"{where}: permission denied; choose another output") from exc
        if isinstance(exc, OSError):
            raise RestoreError(f"{where}: {_os_reason(exc)}") from exc
        raise
    _fsync_directory(parent)
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str, *, overwrite: bool = False) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text (newlines are written as given)."""
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def _new_file_mode(target: Path) -> int:
    """Keep an overwritten file's permissions; new files get 0o666 minus umask."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return 0o666 & ~umask()


def umask() -> int:
    try:  # Linux: read it without the racy set-and-restore dance
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def _fsync_directory(directory: Path) -> None:
    if sys.platform.startswith("win"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def file_digest(path: str | os.PathLike[str]) -> str | None:
    """SHA-256 of a file's bytes, read in 1 MiB pieces; None when it cannot be read."""
    try:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None
