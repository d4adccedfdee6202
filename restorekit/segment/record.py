"""The record of ``restorekit segment`` and ``restorekit decompose`` (run.json), typed and versioned.

:func:`restorekit.segment.pipeline.build_record` builds the record as a
plain dict and checks it against :class:`SegmentRecord` when it is built and
again before run.json is written, so the layout published in
docs/segment-record.md (``python docs/gen_record_schema.py`` regenerates it)
is the layout written.  :data:`RECORD_VERSION` (the record's
``record_version``) changes whenever a field changes meaning or is removed
(adding one does not).

JSON has no infinity: a non-finite number (a diverged loss, ``--time-limit
inf``) is written as ``null`` and named, by path, in ``nonfinite``
(:func:`restorekit.session.record.record_json`, as for every record); the
fields that can hold one say ``| None``.

Read a record back with ``SegmentRecord.load("runs/photo-001/run.json")``;
sections read like the JSON's dicts (``record["history"]["loss"]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import ConfigDict, Field

from ..session.record import StrictSection as _Strict
from ..session.record import StrictRecord

#: the version of run.json's layout for segment and decompose records (``record_version``)
RECORD_VERSION = 1


class MaskScores(_Strict):
    """The mask (object where mask >= 0.5) scored against ``--reference``."""

    iou: float = Field(ge=0, le=1, description="intersection over union with the true mask")
    dice: float = Field(ge=0, le=1, description="Dice coefficient (F1 of the pixels) with the true mask")
    boundary_f: float = Field(ge=0, le=1, description="F-score of the boundary pixels, within a small tolerance")


#: ``metrics`` without ``--reference`` (or without a mask): an empty object
NoScores = Annotated[dict[str, float], Field(max_length=0)]


class LossHistory(_Strict):
    """The loss per reported iteration; a plugin's method may add series of its own (numbers, by name)."""

    model_config = ConfigDict(extra="allow", strict=True, validate_assignment=False)
    __pydantic_extra__: dict[str, list[float | None]] = Field(init=False)

    iteration: list[int] = Field(default_factory=list, description="the iterations reported (empty for a direct method)")
    loss: list[float | None] = Field(default_factory=list, description="the method's loss at each, null where not finite")

    def __getitem__(self, key: str) -> Any:
        extra = self.__pydantic_extra__ or {}
        return extra[key] if key in extra else super().__getitem__(key)


class SegmentRecord(StrictRecord):
    """Everything run.json holds about one ``restorekit segment`` or ``restorekit decompose``."""

    restorekit: str = Field(description="restorekit's version")
    record_version: int = Field(description="version of this record's layout")
    command: Literal["segment", "decompose"] = Field(description="the command that wrote it")
    task: str = Field(description="segment, transparency, watermark, dehaze, or a plugin's own")
    method: str = Field(description="the decomposition's canonical spec, every parameter filled in (NAME:key=value,...), with --iters as its iters where it has one: the spec that ran")
    plugin: str = Field(description="the plugin that provides the method")
    plugin_version: str | None = Field(description="that plugin's version")
    image: str = Field(description="the image file, as given on the command line")
    image_shape: list[int] = Field(min_length=3, max_length=3, description="(C, H, W) of the image as read")
    second: str | None = Field(description="--second: the second mixture for transparency, or null")
    hint: str | None = Field(
        description="the hint: 'box:x,y,w,h' and/or 'scribbles (N object, M background pixels)', joined by '; '; null without one"
    )
    truth: str | None = Field(description="--reference: the reference mask's file, or null (the field keeps its old name)")
    seed: int = Field(description="seed of the networks' weights and inputs, and of k-means")
    iterations: int = Field(ge=0, description="iterations the method ran (0 for a direct method)")
    time_limit: float | None = Field(description="--time-limit in seconds, or null (also for inf)")
    stopped: Literal["done", "time limit", "interrupted"] = Field(
        description="why the method stopped: done, time limit, or interrupted (Ctrl-C; the result so far)"
    )
    seconds: float = Field(ge=0, description="seconds the method took, to the millisecond")
    segments: int | None = Field(description="how many distinct labels the result has; null without labels")
    object_fraction: float | None = Field(
        ge=0, le=1, description="share of the pixels where the mask is >= 0.5; null without a mask"
    )
    metrics: Union[MaskScores, NoScores] = Field(
        description="IoU, Dice and boundary F against --reference, to 6 decimals; empty without --reference or a mask"
    )
    layers: list[str] = Field(description="the names of the method's layers, sorted (each but an airlight is a layer-NAME.png)")
    notes: list[str] = Field(description="what the method reported: the airlight, the mixing weights, ...")
    history: LossHistory = Field(description="the loss per reported iteration")
    python: str = Field(description="the Python version")
    out: str | None = Field(description="the output folder (null only before the files are written)")
    files: dict[str, str] = Field(
        description="the files written, by role: mask, labels, layer-NAME, overlay, record (empty before they are written)"
    )
    @classmethod
    def from_json(cls, text: str | bytes) -> "SegmentRecord":
        """Read run.json (numbers that were not finite are ``None``; ``nonfinite``, which names them, is dropped)."""
        return cls.model_validate_json(text)

    @classmethod
    def load(cls, path: str | Path) -> "SegmentRecord":
        return cls.from_json(Path(path).read_bytes())


def check(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` itself, once it is known to fit :class:`SegmentRecord` (pydantic's ValidationError if not)."""
    SegmentRecord.model_validate(record)
    return record


def json_schema() -> dict[str, Any]:
    return SegmentRecord.model_json_schema()
