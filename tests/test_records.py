"""The records of segment, decompose, invert and visualize against their published models.

Each command's real record (tiny images, the fastest methods, a few steps)
fits its pydantic model (restorekit/segment/record.py,
restorekit/inspect/record.py); a record with an unknown key or a value of
the wrong type is refused; a method whose result breaks the layout is named;
the generated pages (docs/segment-record.md, docs/inspect-record.md, with
docs/run-record.md) are current, and a stale one is caught.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from pydantic import ValidationError

from restorekit.inspect import record as inspect_record
from restorekit.segment.record import RECORD_VERSION, SegmentRecord
from tests.helpers import invoke

ROOT = Path(__file__).resolve().parents[1]
GEN = ROOT / "docs" / "gen_record_schema.py"
TINY_DIP = ["--net", "skip:levels=2,channels=8,skip=2"]


pytestmark = pytest.mark.usefixtures("fresh_host", "one_thread")  # tmp_path, fresh plugin host, one torch thread (conftest.py)


@pytest.fixture
def images(tmp_path):
    """Two 32x32 RGB mixtures, a gray image with a bright square, its true mask."""
    yy, xx = np.mgrid[:32, :32]
    square = (xx > 10) & (xx < 22) & (yy > 8) & (yy < 24)
    gray = np.where(square, 220, 20).astype(np.uint8)
    a = np.stack([gray, 255 - gray, (xx * 8).astype(np.uint8)], -1)
    b = np.stack([255 - gray, gray, (yy * 8).astype(np.uint8)], -1)
    paths = {}
    for name, data in (("gray", gray), ("mix1", a), ("mix2", b), ("truth", square.astype(np.uint8) * 255)):
        paths[name] = tmp_path / f"{name}.png"
        iio.imwrite(paths[name], data)
    return paths


def _run_json(args) -> dict:
    r = invoke([*args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _refused(validate, record: dict, change) -> None:
    bad = copy.deepcopy(record)
    change(bad)
    with pytest.raises(ValidationError):
        validate(bad)


# -- segment / decompose -----------------------------------------------------------------------------------
def test_a_segment_record_fits_its_model(images, tmp_path):
    out = tmp_path / "seg"
    rec = _run_json(["segment", images["gray"], "--method", "otsu", "--truth", images["truth"], "--out", out])
    model = SegmentRecord.model_validate(rec)
    assert model.record_version == RECORD_VERSION and model.command == "segment"
    assert model.metrics["iou"] > 0.9 and model.segments == 2 and model.image_shape == [1, 32, 32]
    assert model.files["record"] == "run.json" and model.out == str(out)
    # what was written is what was printed, and it reads back through the model
    assert SegmentRecord.load(out / "run.json") == model
    # the model's keys are the record's keys, in the record's order
    assert list(SegmentRecord.model_fields) == list(rec)


def test_a_decompose_record_fits_its_model(images, tmp_path):
    rec = _run_json(["decompose", images["mix1"], "--task", "transparency", "--second", images["mix2"],
                     "--method", "double-dip:channels=4,levels=2", "--iters", "3", "--out", tmp_path / "dec"])
    model = SegmentRecord.model_validate(rec)
    assert model.command == "decompose" and model.task == "transparency" and model.second == str(images["mix2"])
    assert model.metrics == {} and model.segments is None and model.layers == ["layer1", "layer2"]
    assert model.history.iteration == [1, 2, 3] and len(model.history.loss) == 3
    assert SegmentRecord.load(tmp_path / "dec" / "run.json") == model


def test_a_non_finite_number_is_written_as_null(images, tmp_path):
    """JSON has no Infinity: --time-limit inf is null in run.json (it was written as the invalid `Infinity`)."""
    out = tmp_path / "inf"
    rec = _run_json(["segment", images["gray"], "--method", "otsu", "--time-limit", "inf", "--out", out])
    assert rec["time_limit"] is None
    text = (out / "run.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"run.json holds {c}"))
    SegmentRecord.model_validate_json(text)


def test_a_segment_record_names_its_non_finite_numbers(images, tmp_path):
    """One record_json for every record (restorekit.session.record): a non-finite number is null and named,
    by path, in a top-level ``nonfinite`` object, as in run's run.json (segment's wrote the null alone);
    the model accepts that object and drops it, and refuses one that names no inf, -inf or nan."""
    out = tmp_path / "inf"
    rec = _run_json(["segment", images["gray"], "--method", "otsu", "--time-limit", "inf", "--out", out])
    assert rec["time_limit"] is None and rec["nonfinite"] == {"time_limit": "inf"}
    assert json.loads((out / "run.json").read_text()) == rec
    model = SegmentRecord.load(out / "run.json")
    assert model.time_limit is None and "nonfinite" not in model.model_dump()
    _refused(SegmentRecord.model_validate, rec, lambda r: r.update(nonfinite={"time_limit": "big"}))
    finite = _run_json(["segment", images["gray"], "--method", "otsu", "--out", tmp_path / "fin"])
    assert "nonfinite" not in finite


@pytest.mark.parametrize("change", [
    lambda r: r.update(colour="red"),                       # an unknown key
    lambda r: r["history"].update(loss=["0.5"]),            # a string for a number
    lambda r: r["metrics"].update(precision=0.5),           # a key the scores do not have
    lambda r: r.update(seed="0"),
    lambda r: r.update(image_shape=[32, 32]),               # not (C, H, W)
    lambda r: r.update(stopped="converged"),                # not done / time limit / interrupted
    lambda r: r.update(object_fraction=1.5),
    lambda r: r.update(files={"mask": 1}),
    lambda r: r.pop("python"),                              # a key missing
], ids=["unknown-key", "loss-string", "metrics-key", "seed-string", "shape", "stopped", "fraction", "files",
        "missing"])
def test_a_wrong_segment_record_is_refused(images, tmp_path, change):
    rec = _run_json(["segment", images["gray"], "--method", "otsu", "--truth", images["truth"],
                     "--out", tmp_path / "o"])
    SegmentRecord.model_validate(rec)
    _refused(SegmentRecord.model_validate, rec, change)


def test_a_result_that_breaks_the_layout_names_the_plugin(images, host):
    from restorekit import Decomposed
    from restorekit.errors import RestoreError
    from restorekit.segment.pipeline import Request, build_record, prepare

    outcome = prepare(Request(image=images["gray"], method="otsu"), host.registry)
    outcome.result = Decomposed(mask=np.zeros((32, 32), np.float32), stopped="converged")
    with pytest.raises(RestoreError, match=r"decomposition 'otsu' from plugin 'restorekit.decompositions'.*stopped"):
        build_record(outcome)
    outcome.result = Decomposed(mask=np.zeros((32, 32), np.float32), history={"iteration": [], "loss": [],
                                                                              "mine": [1.5]})
    assert build_record(outcome)["history"]["mine"] == [1.5]  # a method's own series is allowed


# -- invert / visualize --------------------------------------------------------------------------------------
@pytest.fixture
def invert_record(face, tmp_path):
    out = tmp_path / "inv"
    rec = _run_json(["invert", "faces", face, "--layer", "conv1", "--iters", "4", *TINY_DIP, "--out", out])
    return rec, out


@pytest.fixture
def visualize_record(tmp_path):
    out = tmp_path / "vis"
    rec = _run_json(["visualize", "faces", "--layer", "fc", "--unit", "1", "--iters", "4", "--prior", "none",
                     "--prior", "tv", "--prior", "tv", "--out", out])
    return rec, out


def test_an_invert_record_fits_its_model(invert_record):
    rec, out = invert_record
    model = inspect_record.validate(rec)
    assert isinstance(model, inspect_record.InvertRecord) and model.format == inspect_record.FORMAT
    assert [r.label for r in model.results] == ["dip", "tv", "none"] and set(model.history) == {"dip", "tv", "none"}
    assert model.results[0].net is not None and model.results[1].net is None
    assert model.model.source == "network" and model.files["record"] == "inspect.json"
    assert inspect_record.load(out / "inspect.json") == model
    assert list(inspect_record.InvertRecord.model_fields) == list(rec)
    assert list(inspect_record.InvertResult.model_fields) == list(rec["results"][0])


def test_a_visualize_record_fits_its_model(visualize_record):
    rec, out = visualize_record
    model = inspect_record.validate(rec)
    assert isinstance(model, inspect_record.VisualizeRecord)
    assert model.unit == 1 and model.shape == [1, 25, 25] and [r.label for r in model.results] == ["none", "tv", "tv-2"]
    assert model.history["tv-2"].iteration == [1, 2, 3, 4]
    assert inspect_record.load(out / "inspect.json") == model
    assert list(inspect_record.VisualizeRecord.model_fields) == list(rec)
    assert list(inspect_record.VisualizeResult.model_fields) == list(rec["results"][0])


@pytest.mark.parametrize("change", [
    lambda r: r.update(colour="red"),
    lambda r: r["model"].update(path="x"),
    lambda r: r["results"][0].update(extra=1),
    lambda r: r["results"][0].update(psnr="high"),
    lambda r: r["results"][0].update(activation=1.0),       # visualize's key in an invert record
    lambda r: r["history"]["dip"].update(feature_loss="x"),
    lambda r: r.update(iterations=4.5),
    lambda r: r.update(command="visualize"),                # then unit and shape are missing
    lambda r: r["model"].update(source="pickle"),
    lambda r: r.pop("out"),
], ids=["unknown-key", "model-key", "result-key", "psnr-string", "other-command-key", "history", "iters-float",
        "command", "source", "missing"])
def test_a_wrong_invert_record_is_refused(invert_record, change):
    rec, _ = invert_record
    _refused(inspect_record.validate, rec, change)


@pytest.mark.parametrize("change", [
    lambda r: r.update(image="x.png"),                      # invert's key in a visualize record
    lambda r: r.update(unit="1"),
    lambda r: r.update(shape=[1, 25]),
    lambda r: r["results"][1].update(stopped="timeout"),
    lambda r: r["history"]["tv"].update(feature_loss=[1.0]),
], ids=["other-command-key", "unit-string", "shape", "stopped", "history-key"])
def test_a_wrong_visualize_record_is_refused(visualize_record, change):
    rec, _ = visualize_record
    _refused(inspect_record.validate, rec, change)


def test_every_record_is_written_by_one_record_json():
    from restorekit.run import outputs, record
    from restorekit.segment import pipeline
    from restorekit.session.record import record_json

    assert pipeline.record_json is record.record_json is outputs.record_json is record_json


def test_an_inspect_record_names_its_non_finite_numbers(visualize_record):
    """inspect.json is written by the one record_json (indent 1): a non-finite number is null and named, by
    path, in ``nonfinite`` (it was written as null alone); the models accept that object and drop it."""
    from restorekit.inspect.outputs import INDENT
    from restorekit.session import record as session_record

    rec, _ = visualize_record
    assert "nonfinite" not in rec
    rec["results"][0]["activation"] = float("nan")
    rec["history"]["tv"]["activation"][1] = float("inf")
    text = session_record.record_json(rec, indent=INDENT)
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"inspect.json holds {c}"))
    assert data["nonfinite"] == {"results[0].activation": "nan", "history.tv.activation[1]": "inf"}
    assert data["results"][0]["activation"] is None and text.startswith('{\n "restorekit"')  # indent 1
    model = inspect_record.from_json(text)
    assert model.results[0].activation is None and model.history["tv"].activation[1] is None
    inspect_record.check(session_record.json_data(rec))  # what write_inspection checks before writing
    assert INDENT == 1


def test_inspect_records_are_checked_before_they_are_written(tmp_path, monkeypatch):
    """A record the command got wrong is never written: the check runs before inspect.json."""
    from restorekit.cli import inspect as cli_inspect

    real = cli_inspect._base_record
    monkeypatch.setattr(cli_inspect, "_base_record", lambda *a: {**real(*a), "surprise": True})
    r = invoke(["visualize", "faces", "--layer", "fc", "--unit", "0", "--iters", "2", "--prior", "none",
                "--out", tmp_path / "v", "--json"])
    assert r.exit_code == 1 and "ValidationError" in r.stderr and "Traceback" not in r.output, r.output
    assert not (tmp_path / "v" / "inspect.json").exists()


# -- the generated pages -----------------------------------------------------------------------------------
def test_the_record_pages_are_current():
    r = subprocess.run([sys.executable, str(GEN), "--check"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, (r.stderr or r.stdout) + " (run: python docs/gen_record_schema.py)"


def test_a_stale_record_page_is_caught(tmp_path):
    sys.path.insert(0, str(GEN.parent))
    try:
        import gen_record_schema
    finally:
        sys.path.remove(str(GEN.parent))
    paths = {}
    for flag, name in (("--path", "run-record.md"), ("--segment-path", "segment-record.md"),
                       ("--inspect-path", "inspect-record.md")):
        paths[flag] = tmp_path / name
        paths[flag].write_text((ROOT / "docs" / name).read_text(encoding="utf-8"), encoding="utf-8")
    args = [a for flag, p in paths.items() for a in (flag, str(p))]
    assert gen_record_schema.main(["--check", *args]) == 0
    for flag, p in paths.items():
        good = p.read_text(encoding="utf-8")
        p.write_text(good.replace("| key | type | meaning |", "| key | kind | meaning |", 1), encoding="utf-8")
        assert gen_record_schema.main(["--check", *args]) == 1, flag
        assert gen_record_schema.main(args) == 0
        assert p.read_text(encoding="utf-8") == good
    segment = paths["--segment-path"].read_text(encoding="utf-8")
    inspect_ = paths["--inspect-path"].read_text(encoding="utf-8")
    for key in SegmentRecord.model_fields:
        assert f"| `{key}` |" in segment
    for key in (*inspect_record.InvertRecord.model_fields, *inspect_record.VisualizeResult.model_fields):
        assert f"| `{key}` |" in inspect_
