"""restorekit compare on tiny images: one observation, one row and subfolder per method, failures kept."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from restorekit import cli
from tests.helpers import invoke

TINY = ["--net", "skip:levels=2,channels=8,skip=2", "--iters", "3"]
FAST = ["--method", "dip", "--method", "tv-chambolle", "--method", "nlm"]


pytestmark = pytest.mark.usefixtures("fresh_host")  # chdir into tmp_path, fresh plugin host (conftest.py)


def compare_json(out):
    return json.loads((out / "compare.json").read_text())


def test_every_method_sees_the_same_observation(rgb8, tmp_path):
    out = tmp_path / "cmp"
    r = invoke(["compare", str(rgb8), "--mode", "benchmark", "--degrade", "gaussian:25", *FAST, *TINY, "--out",
                str(out)])
    assert r.exit_code == 0, r.output
    rec = compare_json(out)
    rows = {m["method"]: m for m in rec["methods"]}
    assert set(rows) == {"dip", "tv-chambolle", "nlm"}
    assert len({m["observation_sha256"] for m in rec["methods"]}) == 1
    degraded = [iio.imread(out / rows[m]["folder"] / "degraded.png") for m in rows]
    for d in degraded[1:]:
        np.testing.assert_array_equal(d, degraded[0])
    np.testing.assert_array_equal(iio.imread(out / "degraded.png"), degraded[0])
    # and it is the observation restorekit run draws with the same seed
    run_out = tmp_path / "single"
    assert invoke(["run", str(rgb8), "--mode", "benchmark", "--degrade", "gaussian:25", "--prior", "nlm", "--out",
                   str(run_out)]).exit_code == 0
    np.testing.assert_array_equal(iio.imread(run_out / "degraded.png"), degraded[0])


def test_rows_subfolders_table_and_schema(rgb8, tmp_path):
    out = tmp_path / "cmp"
    r = invoke(["compare", str(rgb8), "--mode", "benchmark", "--degrade", "gaussian:25", *FAST, *TINY, "--out",
                str(out)])
    assert r.exit_code == 0, r.output
    rec = compare_json(out)
    assert {"restorekit", "format", "image", "mode", "degrade", "seed", "sorted_by", "baseline", "methods",
            "out", "files", "notes"} <= set(rec)
    assert rec["mode"] == "benchmark" and rec["seed"] == 0 and rec["sorted_by"] == "psnr"
    assert rec["degrade"] == ["gaussian:25"]
    assert rec["files"] == {"degraded": "degraded.png", "compare": "compare.png", "record": "compare.json"}
    psnrs = [m["metrics"]["psnr"] for m in rec["methods"]]
    assert psnrs == sorted(psnrs, reverse=True)  # sorted by the first metric, best first
    for m in rec["methods"]:
        assert set(m) == {"method", "status", "error", "folder", "metrics", "wall_s", "fit_s", "observation_sha256"}
        assert m["status"] == "complete" and m["error"] is None
        assert set(m["metrics"]) == {"psnr", "ssim"}
        assert m["wall_s"] > 0 and m["fit_s"] is not None
        sub = out / m["folder"]
        assert {"restored.png", "degraded.png", "run.json"} <= {p.name for p in sub.iterdir()}
        run = json.loads((sub / "run.json").read_text())
        assert run["result"]["metrics"]["psnr"] == pytest.approx(m["metrics"]["psnr"])
        assert run["components"]["priors"][0]["name"] == m["method"]
    lines = r.stdout.splitlines()
    header = lines[0].split()
    assert header[:4] == ["method", "psnr", "ssim", "seconds"]
    table = [line.split()[0] for line in lines[1:4]]
    assert table == [m["method"] for m in rec["methods"]]
    assert not list(tmp_path.glob(".*tmp"))  # the staging folders are gone


def test_an_image_is_compared_as_observed_by_default(rgb8, tmp_path):
    """As for run: the image is the observation (restore mode, its noise estimated); nothing added, nothing scored."""
    out = tmp_path / "cmp"
    r = invoke(["compare", str(rgb8), "--method", "tv-chambolle", "--method", "nlm", "--out", str(out)])
    assert r.exit_code == 0, r.output
    rec = compare_json(out)
    assert rec["mode"] == "restore" and rec["degrade"] == ["noise"]
    np.testing.assert_array_equal(iio.imread(out / "degraded.png"), iio.imread(rgb8))
    for m in rec["methods"]:
        assert m["status"] == "complete" and m["metrics"] == {}
        run = json.loads((out / m["folder"] / "run.json").read_text())
        assert run["mode"] == "restore" and [d["spec"] for d in run["components"]["degradations"]] == ["noise:cap=true"]


def test_without_an_image_compare_is_a_benchmark(tmp_path):
    out = tmp_path / "cmp"
    r = invoke(["compare", "--method", "tv-chambolle", "--out", str(out)])
    assert r.exit_code == 0, r.output
    rec = compare_json(out)
    assert rec["mode"] == "benchmark" and rec["degrade"] == ["gaussian:25"] and rec["image"] is None
    assert set(rec["methods"][0]["metrics"]) == {"psnr", "ssim"}


def test_a_failing_method_is_reported_and_the_others_kept(rgb8, tmp_path):
    out = tmp_path / "cmp"
    # wavelet refuses an unknown wavelet only when it solves: a failure inside the run, not a spelling mistake
    r = invoke(["compare", str(rgb8), "--method", "tv-chambolle", "--method", "wavelet:wavelet=nosuch",
                "--method", "nlm", *TINY, "--out", str(out)])
    assert r.exit_code == 1, r.output
    rec = compare_json(out)
    rows = {m["method"]: m for m in rec["methods"]}
    bad = rows["wavelet:wavelet=nosuch"]
    assert bad["status"] == "failed" and "nosuch" in bad["error"] and "\n" not in bad["error"]
    assert bad["folder"] is None and bad["metrics"] == {}
    assert rec["methods"][-1]["method"] == "wavelet:wavelet=nosuch"  # after the results
    for name in ("tv-chambolle", "nlm"):
        assert rows[name]["status"] == "complete"
        assert (out / rows[name]["folder"] / "restored.png").exists()
    assert "failed" in r.stdout and "nosuch" in r.stdout
    assert "1 of 3 method(s) failed" in r.stderr


def test_misspelt_method_is_a_usage_error_before_any_work(rgb8, tmp_path):
    out = tmp_path / "cmp"
    r = invoke(["compare", str(rgb8), "--method", "nlm", "--method", "bm4d", "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error:") and "bm4d" in r.stderr
    assert not out.exists()


def test_grid_has_one_panel_per_method(rgb8, tmp_path):
    widths = []
    for methods in (["tv-chambolle", "nlm"], ["tv-chambolle", "nlm", "wavelet"]):
        out = tmp_path / f"cmp{len(methods)}"
        args = [a for m in methods for a in ("--method", m)]
        r = invoke(["compare", str(rgb8), *args, "--out", str(out)])
        assert r.exit_code == 0, r.output
        with Image.open(out / "compare.png") as im:
            widths.append(im.size[0])
    assert widths[1] > widths[0]
    from restorekit.run.compare import Outcome, panels

    class R:  # a stand-in result: panels only reads these
        degraded = reference = restored = np.zeros((3, 4, 4), np.float32)
        baseline = {"psnr": 20.0}

    rows = [Outcome("a", result=R(), metrics={"psnr": 25.0}), Outcome("b", status="failed", error="x"),
            Outcome("c", status="skipped", error="y")]
    titles = [t for t, _ in panels(rows, "psnr")]
    assert titles == ["degraded\npsnr 20.00", "a\npsnr 25.00, 0.0 s", "b\nfailed", "reference"]


def test_json_output_parses_and_default_folder(rgb8, tmp_path):
    r = invoke(["compare", str(rgb8), "--method", "tv-chambolle", "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["methods"][0]["method"] == "tv-chambolle"
    assert rec["out"] == str(tmp_path / "runs" / "tiny-compare-001") or rec["out"].endswith("tiny-compare-001")
    assert (tmp_path / "runs" / "tiny-compare-001" / "compare.json").exists()
    r = invoke(["compare", str(rgb8), "--method", "tv-chambolle", "--json"])
    assert (tmp_path / "runs" / "tiny-compare-002" / "compare.json").exists()  # never reused


def test_default_methods_skip_solvers_that_refuse_the_task(rgb8, tmp_path):
    from restorekit.plugins import get_host
    from restorekit.run.compare import default_methods

    methods = default_methods(get_host().registry)
    assert methods[:2] == ["auto", "dip"] and {"nlm", "tv-chambolle", "biharmonic"} <= set(methods)
    out = tmp_path / "cmp"
    # fitting options go to dip only; the solvers run without them
    r = invoke(["compare", str(rgb8), "--degrade", "gaussian:25", *TINY, "--out", str(out)])
    assert r.exit_code == 0, r.output
    rows = {m["method"]: m for m in compare_json(out)["methods"]}
    assert set(rows) == set(methods)
    assert rows["biharmonic"]["status"] == "skipped" and "mask" in rows["biharmonic"]["error"]
    assert rows["dip"]["status"] == "complete" and rows["nlm"]["status"] == "complete"
    assert rows["auto"]["status"] == "complete"  # the loop options given ask auto for a fit
    assert not (out / "biharmonic").exists()


def test_help_lists_compare_with_examples():
    r = invoke(["compare", "--help"])
    assert r.exit_code == 0
    assert "--prior" in r.stdout and "restorekit compare photo.png" in r.stdout
    assert "compare" in invoke(["--help"]).stdout


def test_ctrl_c_keeps_the_methods_that_ran(rgb8, tmp_path, monkeypatch):
    from restorekit.run import pipeline

    real = pipeline.run

    def run(settings, registry, **kw):
        if settings.prior == ("nlm",):
            raise KeyboardInterrupt  # Ctrl-C before nlm had a result
        return real(settings, registry, **kw)

    monkeypatch.setattr(pipeline, "run", run)
    out = tmp_path / "cmp"
    r = invoke(["compare", str(rgb8), "--method", "tv-chambolle", "--method", "nlm", "--method", "wavelet",
                "--out", str(out)])
    assert r.exit_code == 130, r.output
    rec = compare_json(out)
    assert [(m["method"], m["status"]) for m in rec["methods"]] == [("tv-chambolle", "complete"), ("nlm", "interrupted")]
    assert (out / "tv-chambolle" / "restored.png").exists()
    assert any("1 method(s) after it did not run" in n for n in rec["notes"])


def test_docs_name_every_compare_option_and_examples_use_real_ones():
    import re
    import shlex
    from pathlib import Path

    from typer.main import get_command

    from restorekit.cli.compare import COMPARE_EXAMPLES

    root = Path(__file__).resolve().parents[1]
    cmd = get_command(cli.get_app()).commands["compare"]
    # the hidden old names (--method) are the glossary's, not this section's
    options = {o for p in cmd.params if not getattr(p, "hidden", False) for o in getattr(p, "opts", []) if o.startswith("-")}
    usage = (root / "docs" / "usage.md").read_text()
    section = re.search(r"^## Comparing methods\n(.*?)(?=^## )", usage, flags=re.S | re.M).group(1)
    for opt in options:
        if opt.startswith("--"):
            assert f"`{opt}" in section, f"docs/usage.md, Comparing methods: {opt} is not documented"
    texts = [section, (root / "README.md").read_text(), COMPARE_EXAMPLES]
    lines = [ln for t in texts for ln in t.splitlines() if ln.startswith("restorekit compare ")]
    assert len(lines) >= 5
    for line in lines:
        for a in shlex.split(line.split(" #")[0])[2:]:
            if a.startswith("-"):
                assert a in options, f"a compare example uses an unknown option {a}: {line}"
