"""Records: the base of every typed record section, and the one way a record becomes JSON.

Every command's record (run.json of ``run``; run.json of ``segment`` and ``decompose``;
inspect.json of ``invert`` and ``visualize``) is a tree of :class:`Section` models, and every
one is written by :func:`record_json`.

JSON has no infinity: :func:`record_json` writes a non-finite number (the PSNR of an exact
match is +inf, a diverged loss NaN) as ``null`` and names it, by path, in a top-level
``nonfinite`` object: ``{"result.metrics.psnr": "inf"}``.  :func:`json_data` is the same
data before it is turned into text.  A :class:`StrictRecord` (segment's and inspect's records)
accepts that object when it checks or reads a record, and drops it: it is no field of the record,
and the values it names stay ``None``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["Section", "StrictSection", "StrictRecord", "json_data", "record_json"]


class Section(BaseModel):
    """A record section: typed fields, and read access by key like the JSON's dict."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in type(self).model_fields

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default) if key in type(self).model_fields else default

    def keys(self):
        return type(self).model_fields.keys()


class StrictSection(Section):
    """A section checked strictly: no unknown key, no string for a number, no tuple for a list."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=False)


class StrictRecord(StrictSection):
    """A whole record checked strictly (:class:`StrictSection`), which accepts the top-level ``nonfinite``
    object :func:`record_json` adds (names by path, each ``"inf"``, ``"-inf"`` or ``"nan"``) and drops it."""

    @model_validator(mode="before")
    @classmethod
    def _drop_nonfinite(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "nonfinite" not in data:
            return data
        found = data["nonfinite"]
        if not (isinstance(found, dict) and all(isinstance(k, str) and v in ("inf", "-inf", "nan")
                                                for k, v in found.items())):
            raise ValueError("nonfinite: an object naming each non-finite number's path with inf, -inf or nan")
        return {k: v for k, v in data.items() if k != "nonfinite"}


def _json_default(o: Any):
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def _clean_floats(o: Any, path: str = "", found: dict[str, str] | None = None) -> Any:
    """JSON has no inf/nan: write them as null and list them, by path, in ``found``."""
    if isinstance(o, (float, np.floating)) and not math.isfinite(float(o)):
        if found is not None:
            found[path] = "nan" if math.isnan(o) else ("inf" if o > 0 else "-inf")
        return None
    if isinstance(o, (np.floating, np.integer)):
        return o.item()  # a NumPy scalar is written as the Python number it holds
    if isinstance(o, dict):
        return {k: _clean_floats(v, f"{path}.{k}" if path else str(k), found) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean_floats(v, f"{path}[{i}]", found) for i, v in enumerate(o)]
    return o


def json_data(record: Any) -> dict[str, Any]:
    """What the JSON of ``record`` (a dict, or a section with ``to_dict()``) holds, as plain data:
    non-finite numbers are ``None`` and named, by path, in ``"nonfinite"`` (absent when there are none)."""
    data = record.to_dict() if hasattr(record, "to_dict") else record
    found: dict[str, str] = {}
    clean = _clean_floats({k: v for k, v in data.items() if k != "nonfinite"}, "", found)
    if found:
        clean["nonfinite"] = found
    return clean


def record_json(record: Any, *, indent: int = 2) -> str:
    """A record's JSON text, ending in a newline (run.json, segment's run.json, inspect.json).

    Non-finite numbers are written as ``null`` and named in ``"nonfinite"``:
    ``{"result.metrics.psnr": "inf"}``; ``indent`` is the record's own (inspect.json uses 1)."""
    return json.dumps(json_data(record), indent=indent, default=_json_default, allow_nan=False) + "\n"
