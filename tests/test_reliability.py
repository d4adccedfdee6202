"""The output folder, signals and bad values: no input lost, no result lost, one-line errors.

Each test here reproduces one defect found by trying restorekit as a careful
user and a security tester would (see docs/usage.md, "Output folders").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from restorekit.plugins import reset_host
from tests.helpers import invoke, one_line_error

TINY = ["--net", "skip:levels=2,channels=8,skip=2", "--iters", "3"]


pytestmark = pytest.mark.usefixtures("fresh_host")  # chdir into tmp_path, fresh plugin host (conftest.py)


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and mtime of every file under root."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def project(tmp_path):
    """project/raw/photo.png, project/raw/mask.png and an unrelated notes.txt."""
    raw = tmp_path / "project" / "raw"
    raw.mkdir(parents=True)
    yy, xx = np.mgrid[0:20, 0:24]
    iio.imwrite(raw / "photo.png", np.stack([xx * 10 % 256, yy * 12 % 256, (xx + yy) % 256], -1).astype(np.uint8))
    mask = np.full((20, 24), 255, np.uint8)
    mask[5:10, 5:10] = 0
    iio.imwrite(raw / "mask.png", mask)
    (tmp_path / "project" / "notes.txt").write_text("three years of field work")
    return tmp_path / "project"


# -- 1. --overwrite never deletes inputs or foreign files -------------------------------------------------


@pytest.mark.parametrize("out_rel", [".", "raw", "raw/.."])
def test_overwrite_refuses_a_folder_holding_an_input(project, out_rel):
    before = snapshot(project)
    r = invoke(["run", project / "raw" / "photo.png", "--mode", "restore", "--degrade",
                f"mask:{project / 'raw' / 'mask.png'}", *TINY, "--out", project / out_rel, "--overwrite"])
    one_line_error(r, "never writes over its inputs")
    assert snapshot(project) == before


def test_overwrite_refuses_a_folder_holding_the_mask_only(project, tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    (project / "raw" / "mask.png").rename(masks / "mask.png")
    before = snapshot(masks)
    r = invoke(["run", project / "raw" / "photo.png", "--mode", "restore", "--degrade",
                f"mask:{masks / 'mask.png'}", *TINY, "--out", masks, "--overwrite"])
    one_line_error(r, "contains an input")
    assert snapshot(masks) == before


def test_overwrite_refuses_a_folder_restorekit_did_not_write(project, tmp_path):
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "chapter1.tex").write_text("precious")
    r = invoke(["run", project / "raw" / "photo.png", *TINY, "--out", other, "--overwrite"])
    one_line_error(r, "only replaces a folder restorekit wrote")
    assert (other / "chapter1.tex").read_text() == "precious"
    # a foreign file beside a real result is protected too
    out = tmp_path / "res"
    assert invoke(["run", project / "raw" / "photo.png", *TINY, "--out", out]).exit_code == 0
    (out / "my-notes.txt").write_text("mine")
    r = invoke(["run", project / "raw" / "photo.png", *TINY, "--out", out, "--overwrite"])
    one_line_error(r, "'my-notes.txt', which restorekit did not write")
    assert (out / "my-notes.txt").read_text() == "mine"


def test_overwrite_refuses_a_result_folder_holding_the_input(tmp_path, rgb8):
    out = tmp_path / "res"
    assert invoke(["run", rgb8, *TINY, "--out", out]).exit_code == 0
    before = snapshot(out)
    r = invoke(["run", out / "restored.png", *TINY, "--out", out, "--overwrite"])
    one_line_error(r, "never writes over its inputs")
    assert snapshot(out) == before


def test_overwrite_refuses_the_current_folder(project, monkeypatch):
    monkeypatch.chdir(project)
    before = snapshot(project)
    r = invoke(["run", "raw/photo.png", *TINY, "--out", ".", "--overwrite"])
    one_line_error(r, "choose another --out")
    assert snapshot(project) == before


# -- 4. default folders are reserved when the run starts ----------------------------------------------------


def test_default_folder_is_reserved_at_start(rgb8, tmp_path):
    from restorekit.run.outdir import LOCK_NAME, prepare_output

    a = prepare_output(None, source=rgb8)
    b = prepare_output(None, source=rgb8)  # a second run started while the first fits
    assert a.path != b.path and a.path.name == "tiny-001" and b.path.name == "tiny-002"
    assert (a.path / LOCK_NAME).exists()
    b.abandon()
    assert not b.path.exists()
    a.abandon()
    assert not (tmp_path / "runs").exists()  # the run created it, and it is empty again


def test_a_folder_in_use_is_refused(rgb8, tmp_path):
    from restorekit.run.outdir import prepare_output

    held = prepare_output(tmp_path / "o", source=rgb8)
    r = invoke(["run", rgb8, *TINY, "--out", tmp_path / "o"])
    one_line_error(r, "in use by another restorekit run")
    held.abandon()
    assert invoke(["run", rgb8, *TINY, "--out", tmp_path / "o"]).exit_code == 0


def test_a_lock_left_by_a_dead_process_is_ignored(rgb8, tmp_path):
    from restorekit.run.outdir import LOCK_NAME, _host_tag

    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(proc.stdout)
    out = tmp_path / "o"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": dead, "host": _host_tag()}))
    r = invoke(["run", rgb8, *TINY, "--out", out])
    assert r.exit_code == 0, r.output
    assert not (out / LOCK_NAME).exists() and (out / "run.json").exists()


# -- 5, 6. signals: before the fit, during it, while writing ---------------------------------------------


def test_interrupt_while_writing_still_writes(rgb8, tmp_path, monkeypatch):
    from restorekit.run import outputs as report

    real = report._compare_figure

    def interrupted(path, result):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C lands in the middle of the write
        return real(path, result)

    monkeypatch.setattr(report, "_compare_figure", interrupted)
    out = tmp_path / "o"
    r = invoke(["run", rgb8, *TINY, "--out", out])
    assert r.exit_code == 130, r.output
    assert "nothing was written" not in r.stderr
    assert "wrote the result" in r.stderr
    assert json.loads((out / "run.json").read_text())["result"]["iterations_run"] == 3
    assert (out / "restored.png").exists() and (out / "compare.png").exists()


def test_interrupt_while_scoring_still_writes(rgb8, tmp_path, monkeypatch):
    from restorekit.run import pipeline

    real = pipeline.score

    def interrupted(*a, **k):
        os.kill(os.getpid(), signal.SIGTERM)  # after the fit, before the write
        return real(*a, **k)

    monkeypatch.setattr(pipeline, "score", interrupted)
    out = tmp_path / "o"
    r = invoke(["run", rgb8, "--mode", "benchmark", *TINY, "--out", out])  # benchmark: scored against the input
    assert r.exit_code == 143, r.output
    assert (out / "restored.png").exists()


def test_interrupt_before_the_fit_leaves_nothing(rgb8, tmp_path, monkeypatch):
    from restorekit.run import pipeline

    def interrupted(*a, **k):
        os.kill(os.getpid(), signal.SIGINT)  # during set-up: no result yet
        time.sleep(1)

    monkeypatch.setattr(pipeline, "build_problem", interrupted)
    r = invoke(["run", rgb8, *TINY])
    assert r.exit_code == 130
    assert "nothing was written" in r.stderr
    assert not (tmp_path / "runs").exists()
    assert not [p for p in tmp_path.rglob(".*")]


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("out", [None, "given/res"])
def test_a_signal_while_the_folder_is_reserved_leaves_nothing(rgb8, tmp_path, monkeypatch, sig, code, out):
    from restorekit.session import outdir

    real = outdir._write_lock

    def lock_then_signal(folder):
        real(folder)
        os.kill(os.getpid(), sig)
        time.sleep(0.5)  # the handler runs before this returns, unless the signal is held

    monkeypatch.setattr(outdir, "_write_lock", lock_then_signal)
    r = invoke(["run", rgb8, *TINY, *(["--out", tmp_path / out] if out else [])])
    assert r.exit_code == code
    assert "nothing was written" in r.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "given").exists()
    assert not [p for p in tmp_path.rglob(".*")]


def _start(args, tmp_path):
    return subprocess.Popen([sys.executable, "-m", "restorekit.cli", "run", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)


def _wait_for_fit(proc):
    deadline = time.time() + 120
    while time.time() < deadline:
        line = proc.stderr.readline()
        if "fitting" in line or not line:
            return line
    return ""


def test_sigterm_during_the_fit_keeps_the_result(rgb8, tmp_path):
    out = tmp_path / "o"
    for wait in (2.0, 6.0, 15.0):  # the signal must land inside the loop on a loaded machine
        proc = _start([rgb8, "--net", "skip:levels=2,channels=8", "--iters", "1000000", "--out", out], tmp_path)
        try:
            assert "fitting" in _wait_for_fit(proc)
            time.sleep(wait)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 143, err
        if out.exists():
            break
    rec = json.loads((out / "run.json").read_text())
    assert rec["status"] == "interrupted" and "Traceback" not in err


def test_sigkill_leftovers_are_cleaned_by_the_next_run(rgb8, tmp_path):
    """A run killed while writing leaves its staging folder; the next run into the same parent removes it."""
    out = tmp_path / "o"
    proc = _start([rgb8, "--net", "skip:levels=2,channels=8", "--iters", "1000000", "--out", out], tmp_path)
    try:
        assert "fitting" in _wait_for_fit(proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]
    assert left, "the killed run should have left its staging folder (the test's premise)"
    r = invoke(["run", rgb8, *TINY, "--out", out])  # its lock is stale too
    assert r.exit_code == 0, r.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]


# -- 7. a plugin component that fails at run time -----------------------------------------------------------


PLUGIN = """
import numpy as np
from restorekit import Degradation, Metric, Params, hookimpl


class Flaky(Metric):
    name = "flaky"
    summary = "a metric that raises"

    def compute(self, image_true, image_test, *, data_range=1.0, mask=None):
        raise RuntimeError("metric bug")


class Broken(Degradation):
    name = "broken"
    summary = "a degradation whose operator raises"

    def forward(self, x):
        raise ZeroDivisionError("operator bug")


@hookimpl
def restorekit_register_metrics(registry):
    registry.add(Flaky)


@hookimpl
def restorekit_register_degradations(registry):
    registry.add(Broken)
"""


def test_a_failing_plugin_metric_keeps_the_result(rgb8, tmp_path, fake_plugin):
    fake_plugin("rk-flaky", PLUGIN)
    reset_host()
    out = tmp_path / "o"
    r = invoke(["run", rgb8, "--mode", "benchmark", *TINY, "--metric", "psnr", "--metric", "flaky", "--out", out,
                "--json"])  # benchmark: the metrics are computed against the clean input
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert set(rec["result"]["metrics"]) == {"psnr"}
    assert any("metric 'flaky' from plugin 'rk-flaky' failed" in n and "metric bug" in n for n in rec["notes"])
    assert (out / "restored.png").exists()


def test_a_failing_plugin_degradation_is_named(rgb8, fake_plugin):
    fake_plugin("rk-flaky", PLUGIN)
    reset_host()
    r = invoke(["run", rgb8, "--mode", "benchmark", "--degrade", "broken", *TINY])  # applied before the fit
    one_line_error(r, "degradation 'broken' from plugin 'rk-flaky' failed in forward(): ZeroDivisionError: operator bug", 1)


# -- 9. output locations that cannot work fail before the fit ------------------------------------------------


@pytest.mark.parametrize(
    "where, fragment",
    [
        ("/proc/restorekit-x", "cannot write results"),
        ("/sys/restorekit-x", "cannot write results"),
        ("{tmp}/" + "n" * 300, "too long"),
        ("{tmp}/dangling", "symbolic link to a missing location"),
        ("{tmp}/ro/out", "permission denied"),
    ],
)
def test_unusable_output_fails_before_the_fit(rgb8, tmp_path, monkeypatch, where, fragment):
    if where.endswith("/ro/out"):
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        (tmp_path / "ro").mkdir(mode=0o500)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    from restorekit import api

    def no_fit(*a, **k):
        raise AssertionError("the fit started")

    monkeypatch.setattr(api, "restore", no_fit)
    target = where.replace("{tmp}", str(tmp_path))
    r = invoke(["run", rgb8, *TINY, "--out", target])
    one_line_error(r, fragment)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_long_folder_name_works(rgb8, tmp_path):
    out = tmp_path / ("n" * 250)
    r = invoke(["run", rgb8, *TINY, "--out", out])
    assert r.exit_code == 0, r.output
    assert (out / "run.json").exists()


def test_read_only_file_system_is_a_usage_error(tmp_path, monkeypatch):
    import errno

    from restorekit.session import outdir

    def erofs(path, *a, **k):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(outdir.os, "mkdir", erofs)
    with pytest.raises(outdir.UsageError, match="read-only"):
        outdir.prepare_output(tmp_path / "mnt" / "out")


# -- 10, 12, 13, 15. values and options -------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--seed", "-5"], "seed must be a whole number"),
        (["--seed", "99999999999999999999999"], "seed must be a whole number"),
        (["--lr", "inf"], "learning rate must be a positive finite number"),
        (["--lr", "nan"], "learning rate must be a positive finite number"),
        (["--iters", "five"], "invalid value for '--iters'"),
        (["--mode", "fix"], "'fix' is not one of"),
        (["--no-such-option"], "no such option"),
    ],
)
def test_bad_values_are_one_line_usage_errors(rgb8, tmp_path, args, fragment):
    r = invoke(["run", rgb8, *TINY, *args])
    one_line_error(r, fragment)
    assert not (tmp_path / "runs").exists()


def test_api_seed_is_checked():
    import restorekit

    with pytest.raises(restorekit.UsageError, match="seed"):
        restorekit.restore(np.zeros((8, 8), np.uint8), seed=-1, prior="none", iters=1)


def test_unknown_command_is_one_line():
    r = invoke(["runn"])
    one_line_error(r, "no such command 'runn'")


# -- small things: curves after an early stop, inf in run.json, warnings -----------------------------------


def test_curves_after_a_time_limit(rgb8, tmp_path):
    out = tmp_path / "o"
    r = invoke(["run", rgb8, "--net", "skip:levels=2,channels=8", "--iters", "100000", "--report-every", "1000",
                "--time-limit", "1", "--out", out, "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["result"]["stop_reason"] == "time limit"
    assert rec["history"]["iteration"][-1] == rec["result"]["iterations_run"]
    assert (out / "curves.png").exists()
    assert r.stderr.count("Warning") == 0


def test_infinite_psnr_is_null_and_flagged(tmp_path):
    from restorekit.run.record import record_json

    text = record_json({"result": {"metrics": {"psnr": float("inf"), "ssim": 1.0}}, "history": {"psnr": [float("nan")]}})
    data = json.loads(text)
    assert data["result"]["metrics"]["psnr"] is None
    assert data["nonfinite"] == {"result.metrics.psnr": "inf", "history.psnr[0]": "nan"}


def test_a_component_that_prints_does_not_corrupt_json(rgb8, tmp_path, fake_plugin):
    fake_plugin("rk-chatty", """
from restorekit import Metric, hookimpl


class Chatty(Metric):
    name = "chatty"
    summary = "a metric that prints"

    def compute(self, image_true, image_test, *, data_range=1.0, mask=None):
        print("debug: computing chatty")
        return 1.0


@hookimpl
def restorekit_register_metrics(registry):
    registry.add(Chatty)
""")
    reset_host()
    r = invoke(["run", rgb8, "--mode", "benchmark", *TINY, "--metric", "chatty", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["result"]["metrics"]["chatty"] == 1.0
    assert "debug: computing chatty" in r.stderr


def test_an_input_name_too_long_is_a_usage_error(tmp_path):
    r = invoke(["run", tmp_path / ("x" * 300 + ".png"), *TINY])
    one_line_error(r, "cannot read image")
    assert not (tmp_path / "runs").exists()


def test_a_long_input_name_gets_a_short_default_folder(tmp_path, rgb8):
    long = tmp_path / ("y" * 240 + ".png")
    long.write_bytes(rgb8.read_bytes())
    r = invoke(["run", long, *TINY])
    assert r.exit_code == 0, r.output
    (folder,) = (tmp_path / "runs").iterdir()
    assert len(folder.name) < 100 and (folder / "run.json").exists()


def test_input_notes_reach_the_run_record(tmp_path, rgb8):
    """A multi-page TIFF (a stack, restored page by page) and a grey-edged mask are used, and the run says how."""
    import tifffile

    img = iio.imread(rgb8)
    tif = tmp_path / "pages.tif"
    tifffile.imwrite(tif, np.stack([img, img[::-1]]), photometric="rgb")
    mask = np.full(img.shape[:2], 255, np.uint8)
    mask[4:8, 4:8] = 0
    mask[8, 4:8] = 128  # anti-aliased edge
    iio.imwrite(tmp_path / "m.png", mask)
    r = invoke(["run", tif, "--mode", "restore", "--degrade", f"mask:{tmp_path / 'm.png'}", *TINY, "--json"])
    assert r.exit_code == 0, r.output
    notes = json.loads(r.stdout)["notes"]
    assert any("stack of 2 pages" in n and "each page was restored" in n for n in notes), notes
    assert any("neither black nor white" in n for n in notes), notes


def test_a_symlink_loop_is_not_called_missing(tmp_path):
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    r = invoke(["run", loop, *TINY])
    one_line_error(r, "symbolic link loop")


def test_a_failed_replace_puts_the_earlier_result_back(rgb8, tmp_path, monkeypatch):
    """--overwrite moves the earlier result aside, then the new one in: if the second rename fails, the
    earlier result returns to its place (never left in a hidden folder a later run would sweep away)."""
    out = tmp_path / "o"
    assert invoke(["run", rgb8, *TINY, "--out", out]).exit_code == 0
    before = snapshot(out)
    from restorekit.session import outdir

    real = outdir.os.replace

    def failing(src, dst):
        if str(src).endswith(".tmp") and Path(dst) == out:  # the staging folder moving into place
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(outdir.os, "replace", failing)
    r = invoke(["run", rgb8, *TINY, "--out", out, "--overwrite", "--seed", "5"])
    assert r.exit_code == 1 and "No space left" in r.stderr
    assert snapshot(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_signal_during_the_commit_waits_for_it(tmp_path, monkeypatch):
    """Ctrl-C between the commit's renames is delivered only once the folder is in place."""
    from restorekit.session import outdir

    folder = outdir.prepare_output(tmp_path / "o")
    (folder.staging / "restored.png").write_bytes(b"x")
    real = outdir.os.replace
    seen = []

    def interrupted(src, dst):
        os.kill(os.getpid(), signal.SIGINT)  # lands while the rename is being done
        real(src, dst)
        seen.append(os.path.exists(dst))

    monkeypatch.setattr(outdir.os, "replace", interrupted)
    # the premise: Ctrl-C's default handler, and no finaliser of an earlier test's leftovers (a collected
    # generator's ``finally`` restores handlers) running between the commit's own handler changes; this
    # test failed 2 times in 3 full-suite runs and never alone (session 10; cause not found)
    import gc

    gc.collect()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    gc.disable()
    try:
        with pytest.raises(KeyboardInterrupt):
            folder.commit()
    finally:
        gc.enable()
        signal.signal(signal.SIGINT, previous)
    assert seen == [True] and (tmp_path / "o" / "restored.png").read_bytes() == b"x"
