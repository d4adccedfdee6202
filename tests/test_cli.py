"""The CLI end to end on tiny images: outputs, error classes, interrupts."""

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from restorekit.cli import run as cli_run
from tests.helpers import invoke, one_line_error

TINY_NET = ["--net", "skip:levels=2,channels=8,skip=2", "--iters", "3"]


pytestmark = pytest.mark.usefixtures("fresh_host")  # chdir into tmp_path, fresh plugin host (conftest.py)


def test_tiny_end_to_end(rgb8, tmp_path):
    out = tmp_path / "out"
    r = invoke(["run", str(rgb8), "--mode", "benchmark", "--degrade", "gaussian:25", *TINY_NET, "--out", str(out),
                "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["status"] == "complete" and rec["mode"] == "benchmark"
    assert rec["components"]["degradations"][0]["spec"] == "gaussian:sigma=25.0,clip=true"
    assert rec["components"]["generator"]["plugin"] == "restorekit.generators"
    assert rec["settings"]["seed"] == 0 and rec["result"]["iteration"] == 3
    assert set(rec["result"]["metrics"]) == {"psnr", "ssim"}
    assert rec["environment"]["torch"]
    files = {p.name for p in out.iterdir()}
    assert {"restored.png", "degraded.png", "compare.png", "curves.png", "run.json"} <= files
    src = iio.imread(rgb8)
    restored = iio.imread(out / "restored.png")
    assert restored.shape == src.shape and restored.dtype == src.dtype
    assert json.loads((out / "run.json").read_text())["result"] == rec["result"]
    assert not list(tmp_path.glob(".*tmp"))


def test_human_summary_and_default_out(rgb8, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = invoke(["run", str(rgb8), "--mode", "benchmark", *TINY_NET])
    assert r.exit_code == 0, r.output
    assert "psnr" in r.stdout and "restored:" in r.stdout
    assert (tmp_path / "runs" / "tiny-001" / "run.json").exists()
    r = invoke(["run", str(rgb8), *TINY_NET])
    assert (tmp_path / "runs" / "tiny-002" / "run.json").exists()  # never reused


@pytest.mark.parametrize(
    "args, code, fragment",
    [
        (["run", "missing.png"], 2, "file not found"),
        (["run", "{corrupt}"], 2, "cannot read image"),
        (["run", "{img}", "--degrade", "gausian"], 2, "did you mean 'gaussian'"),
        (["run", "{img}", "--degrade", "gaussian:sigma=-4"], 2, "parameter 'sigma'"),
        (["run", "{img}", "--prior", "dip", "--net", "identity"], 2, "needs a network"),
        (["run", "{img}", "--prior", "tv", "--net", "skip"], 2, "add --prior dip"),
        (["run", "{img}", "--prior", "dip", "--prior", "dip"], 2, "only one network prior"),
        (["run", "{img}", "--degrade", "mask:{mask}"], 2, "resize the mask"),
        (["run", "{img}", "--out", "{file}/sub"], 2, "is not a folder"),
        (["run", "{img}", "--out", "{full}"], 2, "--overwrite"),
        (["run", "{img}", "--device", "cuda:7"], 2, "cuda"),
        (["run", "{img}", "--iters", "0"], 2, "at least 1"),
        (["run", "{img}", "--time-limit", "-1"], 2, "time limit must be a positive"),
        (["run", "{img}", "--metric", "psnr", "--metric", "psnr"], 2, "metric given twice"),
        (["run", "{img}", "--mode", "restore", "--degrade", "bernoulli:0.5"], 2, "mask:FILE"),
        (["run", "{img}", "--degrade", "bernoulli:0.5"], 2, "mask:FILE"),  # an image is observed: restore mode
        (["run", "{img}", "--mode", "benchmark", "--degrade", "noise"], 2, "gaussian:SIGMA"),
        (["run", "{img}", "--mode", "benchmark", "--degrade", "bernoulli:0.5", "--degrade", "downsample:2"], 2,
         "downsample before"),
        (["list", "priorz"], 2, "did you mean 'prior"),
        (["list", "prior", "dipp"], 2, "did you mean 'dip'"),
    ],
)
def test_user_errors_are_one_line(args, code, fragment, rgb8, tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    mask = tmp_path / "m.png"
    iio.imwrite(mask, np.full((5, 5), 255, np.uint8))
    file = tmp_path / "afile"
    file.write_text("x")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("precious")
    subst = {"{img}": str(rgb8), "{corrupt}": str(corrupt), "{mask}": str(mask), "{file}": str(file), "{full}": str(full)}
    args = [a for a in args]
    for i, a in enumerate(args):
        for k, v in subst.items():
            a = a.replace(k, v)
        args[i] = a
    before = sorted(p.name for p in tmp_path.rglob("*"))
    if args[0] == "run":
        if "--net" not in args:
            args += TINY_NET[:2]
        if "--iters" not in args:
            args += ["--iters", "3"]
    r = invoke(args)
    one_line_error(r, fragment, code)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written
    assert (full / "keep.txt").read_text() == "precious"


def test_time_limit_and_precision_flags(rgb8, tmp_path):
    out = tmp_path / "out"
    r = invoke(["run", str(rgb8), "--net", "skip:levels=2,channels=8,skip=2", "--iters", "100000",
                "--time-limit", "0.5", "--precision", "bf16", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["settings"]["precision"] == "bf16" and rec["settings"]["time_limit_s"] == 0.5
    assert rec["result"]["stop_reason"] == "time limit" and rec["result"]["iterations_run"] < 100000
    r = invoke(["run", str(rgb8), *TINY_NET, "--precision", "fp16"])
    assert r.exit_code == 2 and "fp16" in r.output and "Traceback" not in r.output


def test_overwrite_replaces_an_earlier_result(rgb8, tmp_path):
    out = tmp_path / "o"
    assert invoke(["run", str(rgb8), *TINY_NET, "--out", str(out)]).exit_code == 0
    r = invoke(["run", str(rgb8), *TINY_NET, "--out", str(out), "--overwrite", "--seed", "3"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "run.json").read_text())["settings"]["seed"] == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging or old folder left


def test_failure_while_writing_keeps_the_result_elsewhere(rgb8, tmp_path, monkeypatch):
    from restorekit.run import outputs as report

    real = report.write_image

    def boom(path, *a, **k):
        if Path(path).name.startswith("degraded"):
            raise OSError(28, "No space left on device")
        return real(path, *a, **k)

    monkeypatch.setattr(report, "write_image", boom)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "sys-tmp"))
    (tmp_path / "sys-tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    out = tmp_path / "o"
    r = invoke(["run", str(rgb8), *TINY_NET, "--out", str(out)])
    assert r.exit_code == 1
    assert "No space left" in r.stderr and "Traceback" not in r.output
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    rescued = list((tmp_path / "sys-tmp").glob("restorekit-rescue-*"))
    assert len(rescued) == 1 and str(rescued[0]) in r.stderr
    assert iio.imread(rescued[0] / "restored.png").shape == iio.imread(rgb8).shape
    assert json.loads((rescued[0] / "run.json").read_text())["status"] == "complete"


def test_a_failing_picture_costs_only_the_picture(rgb8, tmp_path, monkeypatch):
    from restorekit.run import outputs as report

    def boom(*a, **k):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(report, "_compare_figure", boom)
    out = tmp_path / "o"
    r = invoke(["run", str(rgb8), *TINY_NET, "--out", str(out)])
    assert r.exit_code == 0, r.output
    rec = json.loads((out / "run.json").read_text())
    assert "compare" not in rec["files"] and not (out / "compare.png").exists()
    assert any("compare.png was not drawn: RuntimeError: no fonts" in n for n in rec["notes"])
    assert (out / "restored.png").exists()


def test_interrupt_keeps_result(rgb8, tmp_path, monkeypatch):
    def fake_progress(show):
        def cb(p):
            if p.iteration == 2:
                raise KeyboardInterrupt
        return cb, None

    monkeypatch.setattr(cli_run, "_progress", fake_progress)  # where run() looks it up
    out = tmp_path / "o"
    r = invoke(["run", str(rgb8), "--net", "skip:levels=2,channels=8", "--iters", "50", "--out", str(out)])
    assert r.exit_code == 130, r.output
    rec = json.loads((out / "run.json").read_text())
    assert rec["status"] == "interrupted"
    assert rec["result"]["iterations_run"] < 50
    assert iio.imread(out / "restored.png").shape == iio.imread(rgb8).shape


def test_restore_mode_with_reference(rgb8, tmp_path):
    out = tmp_path / "o"
    r = invoke(["run", str(rgb8), "--mode", "restore", "--reference", str(rgb8), *TINY_NET, "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["mode"] == "restore" and "psnr" in rec["result"]["metrics"]
    # restore mode adds nothing: the saved observation is the input itself
    assert np.array_equal(iio.imread(out / "degraded.png"), iio.imread(rgb8))


def test_an_image_is_restored_as_it_is_by_default(rgb8, tmp_path):
    """`run IMG` with no options: the image is the observation (restore mode), its noise estimated (noise)."""
    out = tmp_path / "o"
    r = invoke(["run", str(rgb8), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["mode"] == "restore"
    assert [d["spec"] for d in rec["components"]["degradations"]] == ["noise:cap=true"]
    assert rec["result"]["metrics"] == {}  # no reference: nothing to score against
    assert any(n.startswith("noise estimated") for n in rec["notes"])
    assert np.array_equal(iio.imread(out / "degraded.png"), iio.imread(rgb8))  # nothing was added
    assert json.loads((out / "run.json").read_text())["mode"] == "restore"


def test_without_an_image_the_embedded_one_is_a_benchmark(tmp_path):
    r = invoke(["run", *TINY_NET, "--out", str(tmp_path / "o"), "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["mode"] == "benchmark" and rec["input"]["default_image"] is True
    assert [d["spec"] for d in rec["components"]["degradations"]] == ["gaussian:sigma=25.0,clip=true"]
    assert set(rec["result"]["metrics"]) == {"psnr", "ssim"}


def test_mode_benchmark_still_simulates_on_an_image(rgb8, tmp_path):
    out = tmp_path / "o"
    r = invoke(["run", str(rgb8), "--mode", "benchmark", *TINY_NET, "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["mode"] == "benchmark"
    assert [d["spec"] for d in rec["components"]["degradations"]] == ["gaussian:sigma=25.0,clip=true"]
    assert set(rec["result"]["metrics"]) == {"psnr", "ssim"}
    assert not np.array_equal(iio.imread(out / "degraded.png"), iio.imread(rgb8))  # the noise was added


@pytest.mark.parametrize("degrade, spec", [("none", "none"), ("gaussian:10", "gaussian:sigma=10.0,clip=true")])
def test_an_explicit_degradation_describes_the_image_in_restore_mode(degrade, spec, rgb8, tmp_path):
    out = tmp_path / "o"
    r = invoke(["run", str(rgb8), "--degrade", degrade, *TINY_NET, "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["mode"] == "restore" and [d["spec"] for d in rec["components"]["degradations"]] == [spec]
    assert np.array_equal(iio.imread(out / "degraded.png"), iio.imread(rgb8))


def test_help_states_the_defaults_that_depend_on_the_image():
    from typer.main import get_command

    from restorekit.cli import get_app

    commands = get_command(get_app()).commands
    for name in ("run", "compare"):
        params = {p.name: p for p in commands[name].params}
        assert params["mode"].show_default == "restore with an image, benchmark without one"
        assert params["degrade"].show_default == "noise in restore mode; gaussian:25 in benchmark mode"
    params = {p.name: p for p in commands["batch"].params}
    assert params["mode"].show_default == "restore"
    assert params["degrade"].show_default == "noise in restore mode; gaussian:25 in benchmark mode"


def test_debug_shows_traceback(rgb8):
    r = invoke(["run", str(rgb8), "--degrade", "nosuch", "--debug"])
    assert r.exit_code == 2
    assert "Traceback" in r.stderr


def test_list_shows_every_component():
    r = invoke(["list", "--json"])
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert {d["name"] for d in data["degradation"]} >= {
        "gaussian", "salt-pepper", "periodic", "poisson", "bernoulli", "mask", "box", "text", "downsample"}
    assert {d["name"] for d in data["prior"]} >= {"none", "tv", "dip"}
    assert {d["name"] for d in data["generator"]} >= {"skip", "encoder-decoder", "resnet", "unet", "identity"}
    assert {d["name"] for d in data["metric"]} >= {"psnr", "ssim", "mse", "mae"}
    g = next(d for d in data["degradation"] if d["name"] == "gaussian")
    sigma = next(p for p in g["params"] if p["name"] == "sigma")
    assert sigma["default"] == 25.0 and sigma["range"] == {">=": 0, "<=": 255}
    r = invoke(["list", "nets", "skip"])
    assert r.exit_code == 0 and "kernel_down" in r.stdout
    r = invoke(["list"])
    assert r.exit_code == 0 and "bernoulli" in r.stdout and "restorekit.priors" in r.stdout


def test_help_has_examples():
    r = invoke(["run", "--help"])
    assert r.exit_code == 0
    assert "restorekit run --degrade bernoulli:0.5" in r.stdout
    assert "restorekit list" in r.stdout


def test_real_sigint_writes_partial_result(rgb8, tmp_path):
    """Ctrl-C for real: a SIGINT during the fit still writes the result, exit 130."""
    import signal
    import subprocess
    import sys
    import time

    # the signal must land inside the loop: on a loaded machine the set-up after the "fitting"
    # line can outlast a short wait, and a SIGINT there ends the run with nothing written
    for attempt, wait in enumerate((2.0, 6.0, 15.0)):
        out = tmp_path / f"o{attempt}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "restorekit.cli", "run", str(rgb8), "--net", "skip:levels=2,channels=8",
             "--iters", "1000000", "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            deadline = time.time() + 120
            line = ""
            while time.time() < deadline:  # wait for the fit to start
                line = proc.stderr.readline()
                if "fitting" in line or not line:
                    break
            assert "fitting" in line, line
            time.sleep(wait)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        if (out / "run.json").exists():
            assert proc.returncode == 130, err
            break
        # nothing to write yet: the one-line message and exit 130 -- or, rarely on a loaded machine, a death
        # by the SIGINT itself after the message (-2 here; a shell reports that as 130 too): seen in about 1
        # of 20 tries, the cause not found (session 6); what matters is that nothing is left behind
        assert proc.returncode in (130, -signal.SIGINT), err
        assert "interrupted before there was a result; nothing was written" in err, err
        assert not out.exists()
    rec = json.loads((out / "run.json").read_text())
    assert rec["status"] == "interrupted" and 0 <= rec["result"]["iterations_run"] < 1000000
    assert iio.imread(out / "restored.png").shape == iio.imread(rgb8).shape
    assert "Traceback" not in err


def test_the_progress_bar_of_a_budgeted_fit_counts_time_not_iterations():
    """--prior auto fits for a time budget with a huge iteration cap: its bar is one of seconds."""
    from restorekit.cli.run import _progress
    from restorekit.run.engine import Progress

    cb, bar = _progress(True)
    cb(Progress(iteration=50, iterations=100000, loss=0.1, elapsed=5.0, time_limit=50.0))
    task = bar.tasks[0]
    assert task.total == 50.0 and task.completed == 5.0 and "50 it, 5/50 s" in task.fields["count"]
    cb(Progress(iteration=60, iterations=3000, loss=0.1, elapsed=6.0, time_limit=1000.0))  # the limit is far
    task = bar.tasks[0]
    assert task.total == 3000 and task.completed == 60 and task.fields["count"] == "60/3000"


def test_log_lines_are_written_as_they_are(capsys):
    """A note naming a file with brackets ('scan [copy].tif') is not read as rich markup: nothing is lost."""
    from restorekit.cli.common import dim_line

    dim_line("kept pages of 'scan [copy].tif' in [red]out[/red]")
    assert "kept pages of 'scan [copy].tif' in [red]out[/red]" in capsys.readouterr().err
