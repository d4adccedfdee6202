"""Which images a batch restores, their side inputs, and where each one's outputs go.

Side inputs follow the image by pattern: in a spec or ``--reference``,
``{stem}`` is the image's file name without its suffix, ``{name}`` the file
name, ``{relpath}`` its path relative to the input folder without the suffix
(``sub/a`` for ``IN/sub/a.png``), and ``{relname}`` with it.  Every pattern
is resolved for every image before any work starts (value by value, quoted
where needed); a filled-in value that names a file is a side input, and the
images whose side input is missing are listed in one error.  Output folders
that would collide, nest or leave OUT_DIR are refused at the same time.
"""

from __future__ import annotations

import fnmatch
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

from ..errors import UsageError

#: the image files a folder scan picks up (case-insensitive)
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
_PATTERN = re.compile(r"\{(stem|name|relpath|relname)\}")


@dataclass(frozen=True)
class Item:
    """One image of a batch."""

    key: str  #: its path relative to the input root, POSIX style: the manifest's key
    input: str  #: the image file
    out: str  #: its output folder (inside OUT_DIR)
    degrade: tuple[str, ...] = ()
    prior: tuple[str, ...] = ()
    net: str | None = None
    reference: str | None = None
    side_inputs: tuple[str, ...] = field(default_factory=tuple)  #: files named through patterns


def _fields(key: str) -> dict[str, str]:
    p = PurePosixPath(key)
    rel = str(p.with_suffix("")) if p.suffix else str(p)
    return {"stem": p.stem, "name": p.name, "relpath": rel, "relname": key}


def has_pattern(text: str | None) -> bool:
    return bool(text) and bool(_PATTERN.search(text))


def substitute(text: str, key: str) -> str:
    values = _fields(key)
    return _PATTERN.sub(lambda m: values[m.group(1)], text)


def _looks_like_path(value: str) -> bool:
    """A filled-in pattern that names a file: it has a folder or a suffix (``masks/a``, ``a_mask.png``)."""
    return "/" in value or "\\" in value or re.search(r"\.[A-Za-z0-9]{1,5}$", value) is not None


def resolve_spec(text: str, key: str) -> tuple[str, list[str]]:
    """``text`` with its patterns filled in for ``key``, and the files the patterns name.

    Patterns are filled in value by value, and a filled-in value is quoted
    when it needs it, so an image called ``scan, p1.png`` gives
    ``mask:'masks/scan, p1.png'``, not a spec that splits at the comma.  Only
    values that held a pattern can be side inputs (``mask:m/{stem}.png,invert=0.5``
    names one file, not two).
    """
    from ..spec import QuotedStr, format_value, parse_spec

    if not has_pattern(text):
        return text, []
    spec = parse_spec(text)
    files: list[str] = []

    def emit(value):
        if isinstance(value, list):
            return "[" + ",".join(emit(v) for v in value) + "]"
        if isinstance(value, str) and has_pattern(value):
            filled = substitute(value, key)
            if _looks_like_path(filled):
                files.append(filled)
            return format_value(filled)
        if isinstance(value, QuotedStr):
            return format_value(str(value))
        return value if isinstance(value, str) else format_value(value)

    parts = [] if spec.positional is None else [emit(spec.positional)]
    parts += [f"{k}={emit(v)}" for k, v in spec.params.items()]
    return (spec.name + ":" + ",".join(parts)) if parts else spec.name, files


def discover(
    sources: Sequence[str | os.PathLike[str]],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    stdin: Iterable[str] | None = None,
) -> tuple[Path, list[tuple[str, Path]]]:
    """The images to restore as ``(key, path)``, sorted by key, and the root keys are relative to.

    ``sources`` is one folder (scanned recursively), one list file (``@list.txt``:
    one path per line, ``#`` comments), or ``-`` (paths on stdin).  Listed paths
    are taken relative to the current folder; their keys are relative to their
    common folder.  ``include``/``exclude`` are globs on the key (``*.png``,
    ``sub/*``).
    """
    if len(sources) != 1:
        raise UsageError("give one input: a folder, @LIST.txt (one path per line) or - (paths on stdin)")
    src = str(sources[0])
    if src == "-" or src.startswith("@"):
        if src == "-":
            lines = list(stdin if stdin is not None else sys.stdin)
            where = "stdin"
        else:
            lst = Path(src[1:])
            try:
                lines = lst.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise UsageError(f"cannot read the list '{lst}': {exc.strerror or exc}") from None
            where = f"'{lst}'"
        paths = [Path(line.strip()) for line in lines if line.strip() and not line.lstrip().startswith("#")]
        if not paths:
            raise UsageError(f"no image paths in {where}")
        missing = [p for p in paths if not p.is_file()]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise UsageError(f"{where} names '{missing[0]}'{more}, which is not a file")
        absolute = [Path(os.path.abspath(p)) for p in paths]
        root = Path(os.path.commonpath([str(p.parent) for p in absolute]))
        found = [(PurePosixPath(*p.relative_to(root).parts).as_posix(), p) for p in absolute]
    else:
        root = Path(src)
        if not root.is_dir():
            raise UsageError(f"input folder '{root}' does not exist or is not a folder")
        found = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith(".") or not name.lower().endswith(IMAGE_SUFFIXES):
                    continue
                path = Path(dirpath) / name
                found.append((PurePosixPath(*path.relative_to(root).parts).as_posix(), path))
    if include:
        found = [(k, p) for k, p in found if any(fnmatch.fnmatch(k, g) for g in include)]
    if exclude:
        found = [(k, p) for k, p in found if not any(fnmatch.fnmatch(k, g) for g in exclude)]
    seen: dict[str, str] = {}
    for key, path in found:
        if key in seen:
            raise UsageError(f"'{key}' is listed twice ('{seen[key]}' and '{path}'): each image once, please")
        seen[key] = str(path)
    if not found:
        raise UsageError(f"no images (PNG, TIFF, JPEG) found in {src}" + (" after --include/--exclude" if include or exclude else ""))
    return root, sorted(found)


def _reserved_names() -> frozenset[str]:
    from .manifest import LOCK_NAME, MANIFEST_NAME
    from .report import REPORT_NAME

    return frozenset(n.casefold() for n in (REPORT_NAME, LOCK_NAME, MANIFEST_NAME, f"{MANIFEST_NAME}-wal",
                                              f"{MANIFEST_NAME}-shm", f"{MANIFEST_NAME}-journal"))


def output_folder(out_dir: Path, key: str) -> Path:
    """``OUT_DIR/<key without suffix>``; refuses anything that would land outside OUT_DIR.

    Also refused: hidden names (``.x``: restorekit stages results in hidden
    folders and removes stale ones) and the batch's own files at the top of
    OUT_DIR (``index.html``, ``manifest.sqlite``, ...).
    """
    rel = PurePosixPath(key)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise UsageError(f"input '{key}' would be written outside the output folder")
    rel = rel.with_suffix("")
    if any(part.startswith(".") for part in rel.parts):
        raise UsageError(f"the output folder of '{key}' would be hidden ('{rel}'); rename the image or its folder")
    if len(rel.parts) == 1 and rel.parts[0].casefold() in _reserved_names():
        raise UsageError(f"the output folder of '{key}' would be '{rel}', a file of the batch itself; rename the image")
    target = out_dir.joinpath(*rel.parts)
    real_out = Path(os.path.realpath(out_dir))
    real = Path(os.path.realpath(target))
    if real != real_out and real_out not in real.parents:
        raise UsageError(
            f"the output folder of '{key}' resolves to '{real}', outside '{out_dir}' (a symbolic link?)"
        )
    return target


def check_outputs(items: Sequence["Item"]) -> None:
    """Refuse two images sharing an output folder (``a.png`` and ``a.tif``; ``A.png`` and ``a.png``, which
    are one folder on a case-insensitive disk), or one image's folder inside another's (``a.png`` and
    ``a/b.png``: replacing ``a/`` would take ``a/b/`` with it)."""
    owner: dict[str, str] = {}
    for item in items:
        real = os.path.normcase(os.path.realpath(item.out)).casefold()
        if real in owner:
            raise UsageError(f"'{owner[real]}' and '{item.key}' would both be written to '{item.out}'; "
                             "rename one, or leave one out with --exclude")
        owner[real] = item.key
    for item in items:
        parent = os.path.dirname(os.path.normcase(os.path.realpath(item.out)).casefold())
        while parent and parent != os.path.dirname(parent):
            if parent in owner:
                raise UsageError(f"the output folder of '{item.key}' would be inside the one of '{owner[parent]}'; "
                                 "rename one, or leave one out with --exclude")
            parent = os.path.dirname(parent)


def make_items(
    root: Path,
    found: Sequence[tuple[str, Path]],
    out_dir: Path,
    *,
    degrade: Sequence[str],
    prior: Sequence[str],
    net: str | None,
    reference: str | None,
) -> list[Item]:
    """One :class:`Item` per image with its patterns resolved, and its paths absolute (so the
    manifest and the workers do not depend on the current folder).

    Every problem is found before any work: each missing side input is listed in one error, and
    output folders that would collide (:func:`check_outputs`) or leave OUT_DIR are refused.
    """
    from ..io import check_input_file

    if reference is not None and not has_pattern(reference):
        check_input_file(reference, "reference")
    out_dir = Path(os.path.abspath(out_dir))
    items: list[Item] = []
    missing: list[str] = []
    for key, path in found:
        sides: list[str] = []
        deg, pri = [], []
        for texts, resolved in ((degrade, deg), (prior, pri)):
            for text in texts:
                spec, files = resolve_spec(text, key)
                resolved.append(spec)
                sides += files
        net_spec = net
        if net is not None:
            net_spec, files = resolve_spec(net, key)
            sides += files
        ref = reference
        if has_pattern(reference):
            ref = substitute(reference, key)
            sides.append(ref)
        absent = [s for s in sides if not Path(s).is_file()]
        if absent:
            missing.append(f"{key} ({absent[0]})")
        items.append(Item(key=key, input=os.path.abspath(path), out=str(output_folder(out_dir, key)),
                          degrade=tuple(deg), prior=tuple(pri), net=net_spec,
                          reference=ref,
                          side_inputs=tuple(os.path.abspath(s) for s in sides)))
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise UsageError(
            f"{len(missing)} image(s) have a missing side input: {', '.join(missing[:3])}{more}; "
            "nothing was started"
        )
    check_outputs(items)
    return items


def parse_shard(text: str) -> tuple[int, int]:
    """``--shard K/N`` as ``(K, N)``, 1 <= K <= N (one line, exit 2, otherwise)."""
    k, sep, n = (text or "").strip().partition("/")
    try:
        kk, nn = int(k), int(n)
    except ValueError:
        kk = nn = 0
    if not sep or nn < 1 or not 1 <= kk <= nn:
        raise UsageError(f"--shard takes K/N with 1 <= K <= N (the K-th of N shares), got '{text}'")
    return kk, nn


def take_share(found: Sequence[tuple[str, Path]], k: int, n: int) -> list[tuple[str, Path]]:
    """The K-th of N deterministic shares of the inputs, sorted by key: every N-th from the K-th (the same
    inputs give the same shares on every machine, and the shares' sizes differ by one at most)."""
    ordered = sorted(found, key=lambda kp: kp[0])
    return [kp for i, kp in enumerate(ordered) if i % n == k - 1]
