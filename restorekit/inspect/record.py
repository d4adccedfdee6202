"""The record of ``restorekit invert`` and ``restorekit visualize`` (inspect.json), typed and versioned.

The commands build the record as a plain dict (restorekit/cli/inspect.py);
:func:`restorekit.inspect.outputs.write_inspection` checks it against
:class:`InvertRecord` or :class:`VisualizeRecord` (by ``command``) before
inspect.json is written, so the layout published in docs/inspect-record.md
(``python docs/gen_record_schema.py`` regenerates it) is the layout written.
:data:`FORMAT` (the record's ``format``) changes whenever a field changes
meaning or is removed (adding one does not).

JSON has no infinity: a non-finite number (the PSNR of an exact match is
+inf) is written as ``null`` and named, by path, in ``nonfinite``
(:func:`restorekit.session.record.record_json`, as for every record); the
fields that can hold one say ``| None``.

Read a record back with ``load("runs/invert-face-001/inspect.json")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, TypeAdapter

from ..session.record import StrictSection as _Strict
from ..session.record import StrictRecord

#: the version of inspect.json's layout (``format``)
FORMAT = 1


class ModelRecord(_Strict):
    source: Literal["torchscript", "model folder", "network"] = Field(description="what MODEL was")
    name: str = Field(description="the file or folder as given, or the network's canonical spec")


# fields the two commands share, so both say the same
_Version = Annotated[str, Field(description="restorekit's version")]
_Format = Annotated[int, Field(description="version of this record's layout")]
_Model = Annotated[ModelRecord, Field(description="the network looked into")]
_Layer = Annotated[str, Field(description="--layer, as --list-layers names it")]
_Iters = Annotated[int, Field(ge=1, description="--iters: the Adam steps asked for, per prior")]
_Seed = Annotated[int, Field(description="seed of the start image, the input code and the generator's weights")]
_Lr = Annotated[float | None, Field(
    description="--lr, or null for the defaults (0.01 for a generator's weights, 0.02 for pixels)")]
_Net = Annotated[str, Field(description="--net, or the default generator's spec (used by a network prior only)")]
_Notes = Annotated[list[str], Field(
    description="what the user was told: the model's notes, a picture that could not be drawn")]
_Stopped = Annotated[Literal["done", "interrupted"], Field(
    description="interrupted: Ctrl-C ended a search and skipped the priors not started")]
_Files = Annotated[dict[str, str], Field(
    description="the files written, by role: input (invert only), LABEL (one per prior), compare, curves, record")]
_Out = Annotated[str, Field(description="the output folder")]

_Label = Annotated[str, Field(
    description="the prior's name, made unique ('tv-2' for a second tv); the image's file stem")]
_Prior = Annotated[str, Field(description="the prior's canonical spec")]
_ResultNet = Annotated[str | None, Field(
    description="the generator's canonical spec for a network prior (dip); null for pixels")]
_Steps = Annotated[int, Field(ge=0, description="the Adam steps taken (fewer than asked when interrupted)")]
_Best = Annotated[int, Field(
    ge=0, description="the step whose image is kept: the lowest objective, the prior's penalty included")]
_ResultLr = Annotated[float, Field(description="Adam's learning rate used")]
_Seconds = Annotated[float, Field(ge=0, description="seconds the search took")]
_ResultStopped = Annotated[Literal["done", "interrupted"], Field(description="interrupted: Ctrl-C ended this search")]
_File = Annotated[str, Field(description="the image kept, in the output folder: LABEL.png")]
_Recorded = Annotated[list[int], Field(description="the steps recorded: the first, then every max(1, iters // 200)")]


class InvertResult(_Strict):
    """One prior's reconstruction."""

    label: _Label
    prior: _Prior
    net: _ResultNet
    feature_loss: float | None = Field(
        description="||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 at the layer, for the image kept"
    )
    start_feature_loss: float | None = Field(description="the same at the starting image, before any step")
    psnr: float | None = Field(description="PSNR in dB of the image kept against IMG (null: an exact match)")
    ssim: float | None = Field(description="SSIM of the image kept against IMG")
    iterations: _Steps
    best_iteration: _Best
    lr: _ResultLr
    seconds: _Seconds
    stopped: _ResultStopped
    file: _File


class VisualizeResult(_Strict):
    """One prior's image that excites the unit."""

    label: _Label
    prior: _Prior
    net: _ResultNet
    activation: float | None = Field(
        description="the unit's activation for the image kept: its channel's mean, or its value in a flat output")
    start: float | None = Field(description="the same at the starting image, before any step")
    iterations: _Steps
    best_iteration: _Best
    lr: _ResultLr
    seconds: _Seconds
    stopped: _ResultStopped
    file: _File


class InvertHistory(_Strict):
    iteration: _Recorded
    feature_loss: list[float | None] = Field(description="the feature loss at each")


class VisualizeHistory(_Strict):
    iteration: _Recorded
    activation: list[float | None] = Field(description="the unit's activation at each")


class InvertRecord(StrictRecord):
    """Everything inspect.json holds about one ``restorekit invert``."""

    restorekit: _Version
    format: _Format
    command: Literal["invert"] = Field(description="the command that wrote it")
    model: _Model
    layer: _Layer
    iterations: _Iters
    seed: _Seed
    lr: _Lr
    net: _Net
    notes: _Notes
    image: str = Field(description="IMG, as given on the command line")
    results: list[InvertResult] = Field(description="one per prior, in --prior order (those run before a Ctrl-C)")
    history: dict[str, InvertHistory] = Field(description="per prior, by label: the feature loss per recorded step")
    stopped: _Stopped
    files: _Files
    out: _Out


class VisualizeRecord(StrictRecord):
    """Everything inspect.json holds about one ``restorekit visualize``."""

    restorekit: _Version
    format: _Format
    command: Literal["visualize"] = Field(description="the command that wrote it")
    model: _Model
    layer: _Layer
    iterations: _Iters
    seed: _Seed
    lr: _Lr
    net: _Net
    notes: _Notes
    unit: int = Field(ge=0, description="--unit: the channel of the layer's output excited")
    shape: list[int] = Field(min_length=3, max_length=3, description="(C, H, W) of the image searched for")
    results: list[VisualizeResult] = Field(description="one per prior, in --prior order (those run before a Ctrl-C)")
    history: dict[str, VisualizeHistory] = Field(description="per prior, by label: the activation per recorded step")
    stopped: _Stopped
    files: _Files
    out: _Out


#: inspect.json: an :class:`InvertRecord` or a :class:`VisualizeRecord`, told apart by ``command``
InspectRecord = Annotated[Union[InvertRecord, VisualizeRecord], Field(discriminator="command")]
_adapter: TypeAdapter = TypeAdapter(InspectRecord)


def validate(record: dict[str, Any]) -> InvertRecord | VisualizeRecord:
    """The typed record (pydantic's ValidationError when ``record`` does not fit the layout)."""
    return _adapter.validate_python(record)


def check(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` itself, once it is known to fit the layout (pydantic's ValidationError if not)."""
    validate(record)
    return record


def from_json(text: str | bytes) -> InvertRecord | VisualizeRecord:
    """Read inspect.json (numbers that were not finite are ``None``; ``nonfinite``, which names them, is dropped)."""
    return _adapter.validate_json(text)


def load(path: str | Path) -> InvertRecord | VisualizeRecord:
    return from_json(Path(path).read_bytes())


def json_schema() -> dict[str, Any]:
    return _adapter.json_schema()
