"""Render the records' schemas into docs: run.json, segment's and decompose's run.json, inspect.json.

    python docs/gen_record_schema.py          # rewrite the generated parts
    python docs/gen_record_schema.py --check  # exit 1 if any is stale (tests, CI)

docs/run-record.md     restorekit run's run.json (restorekit.run.record.RunRecord)
docs/segment-record.md restorekit segment's and decompose's run.json (restorekit.segment.record.SegmentRecord)
docs/inspect-record.md restorekit invert's and visualize's inspect.json (restorekit.inspect.record)

The tables and the JSON schemas are generated from the pydantic models, and
the commands check every record against its model before writing it, so the
documentation cannot drift from what the files hold.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from pathlib import Path

DOC = Path(__file__).resolve().parent / "run-record.md"
SEGMENT_DOC = DOC.parent / "segment-record.md"
INSPECT_DOC = DOC.parent / "inspect-record.md"
BEGIN = "<!-- BEGIN GENERATED -->"
END = "<!-- END GENERATED -->"


def _type(field) -> str:
    text = repr(field.annotation).replace("typing.", "").replace("restorekit.run.record.", "")
    return text.replace("<class '", "").replace("'>", "").replace("NoneType", "None")


def render() -> str:
    from restorekit.run import record as R

    sections = [("run.json (top level)", R.RunRecord)]
    seen = {R.RunRecord}
    queue = [R.RunRecord]
    while queue:
        model = queue.pop(0)
        for f in model.model_fields.values():
            for cand in vars(R).values():
                if (isinstance(cand, type) and issubclass(cand, R.Section) and cand not in seen
                        and cand.__name__ in repr(f.annotation)):
                    seen.add(cand)
                    queue.append(cand)
                    key = next(k for k, g in model.model_fields.items() if g is f)
                    sections.append((f"`{key}` ({cand.__name__})", cand))
    lines = [f"Schema version: **{R.SCHEMA_VERSION}**.", ""]
    for title, model in sections:
        lines += [f"### {title}", "", "| key | type | meaning |", "|---|---|---|"]
        for name, f in model.model_fields.items():
            meaning = (f.description or "").replace("|", "\\|")
            kind = _type(f).replace("|", "\\|")
            lines.append(f"| `{name}` | `{kind}` | {meaning} |")
        lines.append("")
    schema = json.dumps(R.json_schema(), indent=1, sort_keys=True)
    lines += ["### JSON schema", "", "```json", schema, "```"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# segment / decompose and invert / visualize
# ---------------------------------------------------------------------------
def _fmt(t) -> str:
    """A field's type as the tables write it: ``list[float | None]``, ``Literal['done', 'interrupted']``."""
    from pydantic import BaseModel

    origin, args = typing.get_origin(t), typing.get_args(t)
    if t is type(None):
        return "None"
    if origin is typing.Annotated:
        inner = _fmt(args[0])
        limits = [m for extra in args[1:] for m in getattr(extra, "metadata", [])]
        return f"{inner} (empty)" if any(getattr(m, "max_length", None) == 0 for m in limits) else inner
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_fmt(a) for a in args)
    if origin is typing.Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(_fmt(a) for a in args)}]"
    if isinstance(t, type) and issubclass(t, BaseModel):
        return t.__name__
    return getattr(t, "__name__", str(t))


def _limits(field) -> str:
    """The field's bounds, in words: ``>= 0``, ``<= 1``, ``3 items``."""
    words = []
    for m in field.metadata:
        for attr, word in (("ge", ">= {}"), ("gt", "> {}"), ("le", "<= {}"), ("lt", "< {}")):
            if getattr(m, attr, None) is not None:
                words.append(word.format(getattr(m, attr)))
    lo = next((m.min_length for m in field.metadata if getattr(m, "min_length", None) is not None), None)
    hi = next((m.max_length for m in field.metadata if getattr(m, "max_length", None) is not None), None)
    if lo is not None and lo == hi:
        words.append(f"{lo} items")
    return ", ".join(words)


def _models_in(t) -> list[type]:
    from pydantic import BaseModel

    if isinstance(t, type) and issubclass(t, BaseModel):
        return [t]
    return [m for a in typing.get_args(t) for m in _models_in(a)]


def _tables(tops: list[tuple[str, type]], paths: dict[type, str]) -> list[str]:
    """A table per model: the top-level ones, then every model inside them, in the order met."""
    sections = list(tops)
    seen = {m for _, m in tops}
    queue = [m for _, m in tops]
    while queue:
        model = queue.pop(0)
        for key, f in model.model_fields.items():
            for cand in _models_in(f.annotation):
                if cand not in seen:
                    seen.add(cand)
                    queue.append(cand)
                    sections.append((f"`{paths.get(cand, key)}` ({cand.__name__})", cand))
    lines = []
    for title, model in sections:
        lines += [f"### {title}", ""]
        if "__doc__" in vars(model) and model.__doc__:
            lines += [model.__doc__.strip().replace("``", "`"), ""]
        lines += ["| key | type | meaning |", "|---|---|---|"]
        for name, f in model.model_fields.items():
            meaning = (f.description or "").replace("|", "\\|")
            kind = _fmt(f.annotation)
            limits = _limits(f)
            kind = f"`{kind}`".replace("|", "\\|") + (f" ({limits})" if limits else "")
            lines.append(f"| `{name}` | {kind} | {meaning} |")
        if model.model_config.get("extra") == "allow":
            extra = typing.get_type_hints(model).get("__pydantic_extra__")
            value = _fmt(typing.get_args(extra)[1]) if extra is not None else "any"
            kind = f"`{value}`".replace("|", "\\|")
            lines.append(f"| *other* | {kind} | a method's own series, by name |")
        lines.append("")
    return lines


def render_segment() -> str:
    from restorekit.segment import record as R

    lines = [f"Record version (`record_version`): **{R.RECORD_VERSION}**.", ""]
    lines += _tables([("run.json of segment and decompose (top level)", R.SegmentRecord)], {})
    schema = json.dumps(R.json_schema(), indent=1, sort_keys=True)
    lines += ["### JSON schema", "", "```json", schema, "```"]
    return "\n".join(lines)


def render_inspect() -> str:
    from restorekit.inspect import record as R

    lines = [f"Format (`format`): **{R.FORMAT}**.", ""]
    lines += _tables(
        [("inspect.json of invert (top level)", R.InvertRecord), ("inspect.json of visualize (top level)", R.VisualizeRecord)],
        {R.InvertResult: "results[]", R.VisualizeResult: "results[]",
         R.InvertHistory: "history.LABEL", R.VisualizeHistory: "history.LABEL"},
    )
    schema = json.dumps(R.json_schema(), indent=1, sort_keys=True)
    lines += ["### JSON schema", "", "`command` tells the two layouts apart.", "", "```json", schema, "```"]
    return "\n".join(lines)


def _update(path: Path, body: str, check: bool) -> bool:
    """Put ``body`` between the markers of ``path``; with ``check``, only say whether it is current."""
    text = path.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    new = f"{head}{BEGIN}\n{body}\n{END}{tail}"
    if check:
        return new == text
    if new != text:
        path.write_text(new, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    ap.add_argument("--path", type=Path, default=DOC, help="run.json's page (default: %(default)s)")
    ap.add_argument("--segment-path", type=Path, default=SEGMENT_DOC,
                    help="segment's and decompose's run.json page (default: %(default)s)")
    ap.add_argument("--inspect-path", type=Path, default=INSPECT_DOC, help="inspect.json's page (default: %(default)s)")
    opts = ap.parse_args(argv)
    stale = [path for path, render_fn in ((opts.path, render), (opts.segment_path, render_segment),
                                          (opts.inspect_path, render_inspect))
             if not _update(path, render_fn(), opts.check)]
    for path in stale:
        print(f"{path} is stale: run python docs/gen_record_schema.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
