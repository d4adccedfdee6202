"""Which images a batch restores, their side inputs, and where each one's outputs go.

Side inputs follow the image by pattern: in a spec or ``--reference``,
``{stem}`` is the image's file name without its suffix, ``{name}`` the file
name, ``{relpath}`` its path relative to the input folder without the suffix
(``sub/a`` for ``IN/sub/a.png``), and ``{relname}`` with it.  Every pattern
is resolved for every image before any work starts; images whose side input
is missing are listed in one error.
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
    keys = [k for k, _ in found]
    dup = next((k for k in keys if keys.count(k) > 1), None)
    if dup is not None:
        raise UsageError(f"two inputs map to the same output '{dup}'")
    if not found:
        raise UsageError(f"no images (PNG, TIFF, JPEG) found in {src}" + (" after --include/--exclude" if include or exclude else ""))
    return root, sorted(found)


def output_folder(out_dir: Path, key: str) -> Path:
    """``OUT_DIR/<key without suffix>``; refuses anything that would land outside OUT_DIR."""
    rel = PurePosixPath(key)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise UsageError(f"input '{key}' would be written outside the output folder")
    target = out_dir.joinpath(*rel.with_suffix("").parts)
    real_out = Path(os.path.realpath(out_dir))
    real = Path(os.path.realpath(target))
    if real != real_out and real_out not in real.parents:
        raise UsageError(
            f"the output folder of '{key}' resolves to '{real}', outside '{out_dir}' (a symbolic link?)"
        )
    return target


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
    """One :class:`Item` per image with its patterns resolved; every missing side input in one error."""
    from ..spec import parse_spec

    items: list[Item] = []
    missing: list[str] = []
    for key, path in found:
        sides: list[str] = []

        def sub(text: str | None) -> str | None:
            if text is None or not has_pattern(text):
                return text
            value = substitute(text, key)
            return value

        deg = tuple(sub(s) for s in degrade)
        pri = tuple(sub(s) for s in prior)
        ref = sub(reference)
        for original, resolved in list(zip(degrade, deg)) + list(zip(prior, pri)):
            if has_pattern(original):
                spec = parse_spec(resolved)
                for v in list(spec.params.values()) + ([spec.positional] if spec.positional is not None else []):
                    if isinstance(v, str) and v != "" and any(sep in v for sep in ("/", "\\", ".")):
                        sides.append(v)
        if has_pattern(reference):
            sides.append(ref)
        absent = [s for s in sides if not Path(s).is_file()]
        if absent:
            missing.append(f"{key} ({absent[0]})")
        items.append(Item(key=key, input=str(path), out=str(output_folder(out_dir, key)), degrade=deg,
                          prior=pri, net=sub(net), reference=ref, side_inputs=tuple(sides)))
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise UsageError(
            f"{len(missing)} image(s) have a missing side input: {', '.join(missing[:3])}{more}; "
            "nothing was started"
        )
    return items
