"""Tests of restorekit-example, written the way a plugin author would write them.

restorekit.testing provides the contract checks restorekit runs on its own
components (``check_plugin``), and fixtures that register the plugin for
the duration of one test (``restorekit_register``).
"""

from __future__ import annotations

import numpy as np
import pytest

import restorekit_example
from restorekit.testing import check_plugin, make_test_image

# The fixtures of restorekit.testing.  With restorekit installed they are there
# without this import (its pytest11 entry point loads them); importing them by
# name also works with plugin autoloading off.  Never list restorekit.testing
# in pytest_plugins while autoloading is on (docs/plugins/testing.md).
from restorekit.testing import restorekit_host, restorekit_register  # noqa: F401


def test_contract():
    """Every component the plugin registers passes restorekit's contract checks."""
    results = check_plugin(restorekit_example, name="example")
    assert set(results) == {("degradation", "jpeg"), ("metric", "noise-estimate")}


def test_jpeg_quality_controls_the_error():
    clean = make_test_image((3, 32, 32), seed=2)
    errors = []
    for q in (5, 30, 95):
        out = restorekit_example.Jpeg(quality=q).corrupt(clean, np.random.default_rng(0))
        assert out.shape == clean.shape and out.dtype == clean.dtype
        errors.append(float(np.abs(out - clean).mean()))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.01


def test_jpeg_gray_and_spec_validation():
    from restorekit import SpecError

    gray = make_test_image((1, 24, 20))
    out = restorekit_example.Jpeg.from_spec("jpeg:20").corrupt(gray, np.random.default_rng(0))
    assert out.shape == gray.shape
    with pytest.raises(SpecError, match="jpeg.*quality"):
        restorekit_example.Jpeg.from_spec("jpeg:quality=0")


def test_noise_estimate_measures_gaussian_noise():
    rng = np.random.default_rng(0)
    flat = np.full((64, 64, 3), 0.5)
    metric = restorekit_example.NoiseEstimate()
    assert metric.compute(None, flat) == pytest.approx(0.0)
    for sigma in (10, 25):
        noisy = flat + rng.normal(0, sigma / 255, flat.shape)
        assert metric.compute(flat, noisy) == pytest.approx(sigma, rel=0.1)
    # no-reference: the first argument does not matter
    assert metric.compute(flat, noisy) == metric.compute(np.zeros_like(flat), noisy)


def test_through_restore(restorekit_register):
    """Registered for this test only: restorekit.restore sees jpeg and noise-estimate."""
    from restorekit import restore

    info = restorekit_register(restorekit_example, name="example")
    assert ("degradation", "jpeg") in info.components
    image = np.moveaxis(make_test_image((3, 32, 32)), 0, -1)
    r = restore(image, mode="benchmark", degrade="jpeg:10", prior="tv", iters=5, metrics=["psnr", "noise-estimate"],
                device="cpu")
    assert {"psnr", "noise-estimate"} <= set(r.metrics)
    comps = r.record["components"]
    assert comps["degradations"][0]["plugin"] == "example"
    assert comps["metrics"][1]["name"] == "noise-estimate"


def test_command():
    import typer
    from typer.testing import CliRunner

    app = typer.Typer()
    restorekit_example.restorekit_register_commands(app)

    @app.command("other")  # a Typer app with one command would run it without its name
    def other() -> None:
        pass

    result = CliRunner().invoke(app, ["example-info"])
    assert result.exit_code == 0, result.output
    assert "restorekit-example 0.1.0" in result.output and "noise-estimate" in result.output
