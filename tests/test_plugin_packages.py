"""Real discovery: the packages in plugins/, installed, seen through the real CLI.

Install them first (the README's set-up and CI do)::

    pip install ./plugins/restorekit-classic ./plugins/restorekit-example

Without them these tests are skipped, with that command as the reason.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

INSTALL = "pip install ./plugins/restorekit-classic ./plugins/restorekit-example"
_missing = [m for m in ("restorekit_classic", "restorekit_example") if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(bool(_missing), reason=f"{', '.join(_missing)} not installed; run: {INSTALL}")

CLASSIC = ["nlm", "tv-chambolle", "wavelet", "biharmonic", "bm3d", "median", "notch", "bicubic"]


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTOREKIT_")}
    return subprocess.run(
        [sys.executable, "-m", "restorekit.cli", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300,
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import imageio.v3 as iio

    from restorekit.testing import make_test_image

    path = tmp_path_factory.mktemp("img") / "tiny.png"
    iio.imwrite(path, (np.moveaxis(make_test_image((3, 32, 32)), 0, -1) * 255).round().astype(np.uint8))
    return path


def test_list_shows_plugin_components():
    r = _cli("list", "--json")
    assert r.returncode == 0, r.stderr
    assert "failed to load" not in r.stderr, r.stderr
    data = json.loads(r.stdout)
    priors = {d["name"]: d for d in data["prior"]}
    for name in CLASSIC:
        assert priors[name]["plugin"] == "classic" and priors[name]["plugin_version"] == "0.1.0", name
    degradations = {d["name"]: d for d in data["degradation"]}
    metrics = {d["name"]: d for d in data["metric"]}
    assert degradations["jpeg"]["plugin"] == "example"
    assert metrics["noise-estimate"]["plugin"] == "example"
    assert {p["name"] for p in priors["nlm"]["params"]} >= {"h", "sigma", "patch_size", "fast_mode"}


def test_plugins_shows_both_loaded():
    r = _cli("plugins", "--json")
    assert r.returncode == 0, r.stderr
    rows = {p["name"]: p for p in json.loads(r.stdout)}
    for name, dist in (("classic", "restorekit-classic"), ("example", "restorekit-example")):
        assert rows[name]["status"] == "loaded", rows[name]
        assert rows[name]["version"] == "0.1.0" and rows[name]["dist"] == dist
    assert {("prior", n) for n in CLASSIC} == {(c["kind"], c["name"]) for c in rows["classic"]["components"]}
    assert "restorekit_register_commands" in rows["example"]["hooks"]


def test_run_with_a_classic_prior(tiny, tmp_path):
    out = tmp_path / "nlm"
    r = _cli("run", str(tiny), "--mode", "benchmark", "--degrade", "gaussian:25", "--prior", "nlm", "--out", str(out),
             "--json")
    assert r.returncode == 0, r.stderr
    record = json.loads((out / "run.json").read_text())
    assert json.loads(r.stdout)["components"] == record["components"]
    prior = record["components"]["priors"][0]
    assert prior["name"] == "nlm" and prior["role"] == "solver"
    assert prior["plugin"] == "classic" and prior["plugin_version"] == "0.1.0"
    assert record["components"]["generator"] is None
    assert record["result"]["metrics"]["psnr"] > record["result"]["baseline"]["psnr"]


def test_run_with_example_components(tiny, tmp_path):
    out = tmp_path / "jpeg"
    r = _cli(
        "run", str(tiny), "--mode", "benchmark", "--degrade", "jpeg:10", "--prior", "tv", "--iters", "5",
        "--metric", "psnr", "--metric", "noise-estimate", "--out", str(out), "--json",
    )
    assert r.returncode == 0, r.stderr
    record = json.loads((out / "run.json").read_text())
    deg = record["components"]["degradations"][0]
    assert deg["spec"] == "jpeg:quality=10,subsampling=4:2:0"
    assert deg["plugin"] == "example" and deg["plugin_version"] == "0.1.0"
    metric = record["components"]["metrics"][1]
    assert metric["name"] == "noise-estimate" and metric["plugin"] == "example"
    assert np.isfinite(record["result"]["metrics"]["noise-estimate"])


def test_plugin_command():
    r = _cli("example-info")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("restorekit-example 0.1.0")


def test_loop_options_with_a_direct_solver_are_a_usage_error(tiny, tmp_path):
    out = tmp_path / "nlm"
    r = _cli("run", str(tiny), "--prior", "nlm", "--iters", "5", "--time-limit", "3", "--precision", "bf16",
             "--out", str(out))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "prior 'nlm' solves directly" in lines[0]
    assert "--iters, --precision, --time-limit" in lines[0]
    assert not out.exists()


def test_preset_with_a_direct_solver_drops_the_presets_loop_settings(tiny, tmp_path):
    # the preset's --net/--iters/--lr belong to its DIP prior; swapping in a solver keeps its degradation only
    out = tmp_path / "bm"
    r = _cli("run", str(tiny), "--preset", "denoise", "--prior", "nlm", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    record = json.loads((out / "run.json").read_text())
    assert record["components"]["degradations"][0]["spec"].startswith("gaussian:sigma=25")
    assert record["components"]["priors"][0]["name"] == "nlm" and record["components"]["generator"] is None
    # an explicit loop option is still refused
    r = _cli("run", str(tiny), "--preset", "denoise", "--prior", "nlm", "--lr", "0.1", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "drop --lr" in r.stderr, r.stderr
