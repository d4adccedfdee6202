"""Progress on a terminal while nothing counts iterations (issue 20): a direct solver such as BM3D spends
18-30 s on a 512x512 photo in one call.  run's bar says "solving" and pulses with the elapsed time, compare
shows a spinner with the method and its clock, batch's bar has a spinner and the elapsed time.  Off a
terminal (and with --json) none of it is printed, and the results are the same."""

from __future__ import annotations

import io
import json
import re
import time

import imageio.v3 as iio
import numpy as np
import pytest
from rich.console import Console

from tests.helpers import invoke

pytestmark = pytest.mark.usefixtures("fresh_host")  # chdir into tmp_path, fresh plugin host (conftest.py)


def _image(path, size: int = 24):
    yy, xx = np.mgrid[0:size, 0:size]
    clean = 128 + 60 * np.sin(xx / 3.0) * np.cos(yy / 4.0)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    iio.imwrite(path, noisy)
    return path


def _terminal(monkeypatch, module) -> io.StringIO:
    """``module``'s stderr console (and the one its log lines go through, ``common.dim_line``'s: the same
    console in use) replaced by a terminal that writes into the returned buffer."""
    from restorekit.cli import common

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, color_system=None, width=120)
    monkeypatch.setattr(module, "err_console", console)
    monkeypatch.setattr(common, "err_console", console)
    return buf


#: how long a patched step sleeps: long enough that a loaded machine (CI's 2 cores, other tests beside)
#: still redraws the clock past one second before the step ends
SLOW_S = 2.5


def _slow(monkeypatch, owner, name: str, seconds: float = SLOW_S) -> None:
    real = getattr(owner, name)

    def slow(*args, **kwargs):
        time.sleep(seconds)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, slow)


def test_run_with_a_direct_solver_shows_solving_and_its_clock_on_a_terminal(tmp_path, monkeypatch):
    import restorekit.cli.run as cli_run
    from restorekit.run import pipeline

    _image(tmp_path / "n.png")
    args = ["run", "n.png", "--prior", "learned", "--degrade", "gaussian:25"]
    plain = invoke([*args, "--out", "plain"])  # not a terminal: the lines only
    assert plain.exit_code == 0, plain.output
    assert not re.search(r"solving ━|\d:\d\d:\d\d", plain.stderr)
    buf = _terminal(monkeypatch, cli_run)
    _slow(monkeypatch, pipeline, "solve")
    r = invoke([*args, "--out", "tty"])
    assert r.exit_code == 0, r.output
    shown = buf.getvalue()
    assert re.search(r"solving ━+ +0:00:0[1-9]", shown), shown[-2000:]  # the bar pulses with the elapsed time
    frames = re.findall(r"(fitting|solving) ━", shown.split("solving with")[-1])
    assert frames.count("solving") >= 5 and frames[-1] == "solving", frames  # redrawn all through the solve
    assert (tmp_path / "tty/restored.png").read_bytes() == (tmp_path / "plain/restored.png").read_bytes()


def test_compare_shows_each_method_with_a_spinner_and_its_clock_on_a_terminal(tmp_path, monkeypatch):
    import restorekit.cli.compare as cli_compare
    from restorekit.run import compare as run_compare

    _image(tmp_path / "n.png")
    args = ["compare", "n.png", "--prior", "tv:0.1", "--prior", "tv:0.02", "--net", "identity", "--iters", "5"]
    plain = invoke([*args, "--out", "plain"])
    assert plain.exit_code == 0, plain.output
    assert "tv:0.1 ..." in plain.stderr and not re.search(r"\d:\d\d:\d\d", plain.stderr)
    buf = _terminal(monkeypatch, cli_compare)
    _slow(monkeypatch, run_compare, "run_method")
    r = invoke([*args, "--out", "tty"])
    assert r.exit_code == 0, r.output
    shown = buf.getvalue()
    for method in ("tv:0.1", "tv:0.02"):
        assert f"{method} ..." in shown and f"{method}: complete" in shown
        assert re.search(rf"[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] {re.escape(method)} 0:00:0[1-9]", shown), shown[-2000:]
    rows = [json.loads((tmp_path / d / "compare.json").read_text())["methods"] for d in ("plain", "tty")]
    assert [(m["method"], m["folder"]) for m in rows[0]] == [(m["method"], m["folder"]) for m in rows[1]]
    for m in rows[0]:  # the same restored images, spinner or not
        assert (tmp_path / "tty" / m["folder"] / "restored.png").read_bytes() == (
            tmp_path / "plain" / m["folder"] / "restored.png").read_bytes()
    # --json: nothing but compare.json on stdout, no spinner on the terminal
    buf.truncate(0)
    buf.seek(0)
    r = invoke([*args, "--out", "json", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["methods"]
    assert not re.search(r"\d:\d\d:\d\d", buf.getvalue())


def test_batch_bar_has_a_spinner_and_the_elapsed_time_on_a_terminal(tmp_path, monkeypatch):
    import restorekit.batch.executors as ex
    import restorekit.batch.job as job
    import restorekit.cli.batch as cli_batch

    (tmp_path / "in").mkdir()
    _image(tmp_path / "in/a.png")
    buf = _terminal(monkeypatch, cli_batch)
    real = job.run_item

    def slow(item, options):
        time.sleep(SLOW_S)
        return real(item, options)

    monkeypatch.setattr(job, "run_item", slow)
    monkeypatch.setattr(ex, "run_item", slow, raising=False)
    r = invoke(["batch", "in", "out", "--prior", "tv:0.1", "--net", "identity", "--iters", "5", "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert re.search(r"[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] batch .*0/1 .*0:00:0[1-9]", buf.getvalue()), buf.getvalue()[-2000:]
