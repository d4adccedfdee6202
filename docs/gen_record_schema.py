"""Render run.json's schema (restorekit.run.record.RunRecord) into docs/run-record.md.

    python docs/gen_record_schema.py          # rewrite the generated part
    python docs/gen_record_schema.py --check  # exit 1 if it is stale (tests, CI)

The tables and the JSON schema are generated from the pydantic model, so the
documentation cannot drift from what run.json holds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parent / "run-record.md"
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
                if (isinstance(cand, type) and issubclass(cand, R._Section) and cand not in seen
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    ap.add_argument("--path", type=Path, default=DOC)
    opts = ap.parse_args(argv)
    text = opts.path.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    new = f"{head}{BEGIN}\n{render()}\n{END}{tail}"
    if opts.check:
        if new != text:
            print(f"{opts.path} is stale: run python docs/gen_record_schema.py", file=sys.stderr)
            return 1
        return 0
    opts.path.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
