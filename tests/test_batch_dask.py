"""restorekit batch on Dask and on a local pool: workers that die mid-image, an existing cluster, Dask optional.

The cluster tests start real processes: the whole CLI runs in a subprocess
(its LocalCluster or pool workers are its children), with a test-only
plugin on PYTHONPATH.  Images are 16 px and nets tiny, so the time goes to
starting processes; keep the number of clusters small.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--net", "skip:levels=2,channels=8,skip=2", "--iters", "3"]

# A degradation whose forward() SIGKILLs its own process the first time any process of the batch runs it
# (the marker file, created with O_EXCL, says it happened and which pid died); later calls are Gaussian noise.
KILLER = '''
import os
import signal

import torch

from restorekit import Metric, hookimpl
from restorekit.builtins.degradations import Gaussian


class Killer(Gaussian):
    name = "killer"
    summary = "Gaussian noise; the first forward() of the batch kills its own process (tests only)."

    def forward(self, x):
        try:
            fd = os.open(os.environ["KILLER_MARKER"], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return super().forward(x)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)


class TorchThreads(Metric):
    name = "torchthreads"
    summary = "torch's intra-op threads in the process that ran the fit (tests only)."

    def compute(self, image_true, image_test, *, data_range=1.0, mask=None):
        return float(torch.get_num_threads())


@hookimpl
def restorekit_register_degradations(registry):
    registry.add(Killer)


@hookimpl
def restorekit_register_metrics(registry):
    registry.add(TorchThreads)
'''


def _images(folder: Path, n: int = 3, bad: bool = False) -> Path:
    import imageio.v3 as iio

    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:16, 0:16]
    for i in range(n):
        iio.imwrite(folder / f"a{i}.png", ((xx * 12 + yy * (3 + i)) % 256).astype(np.uint8))
    if bad:
        (folder / "z_bad.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    return folder


def _batch(args, site: Path | None, marker: Path | None = None, timeout: int = 240):
    """The CLI in a subprocess with this checkout (and the test plugin) on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + ([str(site)] if site else []) + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["OMP_NUM_THREADS"] = "1"
    if marker is not None:
        env["KILLER_MARKER"] = str(marker)
    return subprocess.run([sys.executable, "-m", "restorekit.cli", "batch", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def _rows(out: Path) -> dict[str, dict]:
    db = sqlite3.connect(out / "manifest.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return {r["key"]: dict(r) for r in db.execute("SELECT * FROM items")}
    finally:
        db.close()


def _assert_complete(out: Path, keys: list[str]) -> dict[str, dict]:
    """Every image done once: one row each, outputs matching their checksums, nothing else left in OUT."""
    from restorekit.batch.manifest import output_checksum

    rows = _rows(out)
    assert sorted(rows) == keys
    for key, row in rows.items():
        assert row["status"] == "done" and row["error"] is None, row
        assert row["checksum"] and output_checksum(row["out"]) == row["checksum"], key
        assert not list(Path(row["out"]).glob(".restorekit-run")), f"{key}: lock left behind"
    names = {p.name for p in out.iterdir()}
    extra = names - {Path(k).stem for k in keys} - {"index.html", "manifest.sqlite", "batch.lock", "manifest.sqlite-wal",
                                                      "manifest.sqlite-shm"}
    assert not extra, f"left in OUT: {extra}"  # no staging folders of the killed attempt
    return rows


def _clean_stderr(stderr: str) -> list[str]:
    """stderr's lines; none from distributed's logging, no traceback."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    noisy = [ln for ln in lines if re.search(r"distributed\.|tornado|Traceback| - (?:INFO|WARNING|ERROR) - ", ln)]
    assert not noisy, stderr
    return lines


@pytest.fixture
def killer_site(fake_plugin):
    return fake_plugin("killerplug", KILLER)


# --- Dask --------------------------------------------------------------------------------------------


def test_dask_local_cluster_survives_a_worker_killed_mid_image(tmp_path, killer_site):
    """--dask --workers 2: a LocalCluster of 2 processes; the first worker to fit an image is SIGKILLed
    mid-fit; the driver (not Dask) retries that image and the manifest ends complete: every image done
    once, only the killed one in two attempts, files matching their checksums, stderr free of
    distributed's logs; torch threads in the workers follow --threads."""
    pytest.importorskip("distributed")
    inp, out, marker = _images(tmp_path / "in"), tmp_path / "out", tmp_path / "killed"
    r = _batch([str(inp), str(out), *TINY, "--mode", "benchmark", "--degrade", "killer:10", "--metric", "psnr",
                "--metric", "torchthreads", "--dask", "--workers", "2", "--threads", "2", "--json"], killer_site, marker)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["done"] == 3 and summary["failed"] == 0 and summary["retried"] == 1, summary
    killed_pid = marker.read_text()
    rows = _assert_complete(out, ["a0.png", "a1.png", "a2.png"])
    attempts = sorted(row["attempts"] for row in rows.values())
    assert attempts == [1, 1, 2], rows  # only the image on the dead worker was charged an attempt
    again = next(row for row in rows.values() if row["attempts"] == 2)
    assert not again["worker"].endswith(f":{killed_pid}")  # its result came from another process
    assert all(json.loads(row["metrics"])["torchthreads"] == 2 for row in rows.values())
    lines = _clean_stderr(r.stderr)
    assert "Dask LocalCluster, 2 processes x 2 thread(s)" in lines[0]
    assert lines[1:] == [f"retrying {again['key']}: the worker was lost: KilledWorker (the worker process "
                         "running it died)"], lines


def test_dask_existing_scheduler_gets_results_and_failures(tmp_path, killer_site, monkeypatch):
    """--scheduler ADDRESS: a cluster the test started runs the batch; done and failed images come back
    into the client's manifest; the cluster is left running with none of the batch's tasks."""
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    inp, out = _images(tmp_path / "in", n=2, bad=True), tmp_path / "out"
    # a LocalCluster sets Dask's pre-spawn variables (OMP/MKL_NUM_THREADS=1, ...) in this process: put it back
    monkeypatch.setattr(os, "environ", os.environ.copy())
    # the fake plugin is on this process's sys.path, which spawned workers inherit
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        r = _batch([str(inp), str(out), *TINY, "--mode", "benchmark", "--metric", "psnr", "--metric", "torchthreads",
                    "--scheduler", cluster.scheduler_address, "--threads", "2"], killer_site)
        assert r.returncode == 1, r.stderr  # one image failed
        assert len(cluster.scheduler.workers) == 2  # still there: the batch closed only its client
        deadline = time.monotonic() + 10  # the scheduler forgets a closed client's tasks soon after
        while cluster.scheduler.tasks and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not cluster.scheduler.tasks, list(cluster.scheduler.tasks)
    rows = _rows(out)
    assert sorted(rows) == ["a0.png", "a1.png", "z_bad.png"]
    bad = rows.pop("z_bad.png")
    assert bad["status"] == "failed" and bad["attempts"] == 1 and "z_bad.png" in bad["error"], bad
    for row in rows.values():
        from restorekit.batch.manifest import output_checksum

        assert row["status"] == "done" and output_checksum(row["out"]) == row["checksum"], row
        metrics = json.loads(row["metrics"])
        # the cluster's workers run with Dask's OMP/MKL_NUM_THREADS=1; --threads sets torch's in each item
        assert metrics["torchthreads"] == 2 and metrics["psnr"] > 0, metrics
    assert "failed: z_bad.png" in r.stdout, r.stdout
    lines = _clean_stderr(r.stderr)
    assert "the Dask cluster at tcp://" in lines[0], lines


def test_scheduler_file_and_unreachable_scheduler(tmp_path, monkeypatch):
    """--scheduler takes a scheduler file too; a scheduler out of reach is a usage error that leaves
    no batch behind."""
    distributed = pytest.importorskip("distributed")
    import dask

    from restorekit.batch import executors
    from restorekit.errors import UsageError

    seen = {}

    class FakeClient:
        def __init__(self, **kw):
            seen.update(kw)
            self.scheduler = type("S", (), {"address": "tcp://head:8786"})()

        def close(self):
            seen["closed"] = True

    monkeypatch.setattr(distributed, "Client", FakeClient)
    sched = tmp_path / "scheduler.json"
    sched.write_text(json.dumps({"address": "tcp://head:8786"}))
    ex = executors.DaskExecutor(scheduler=str(sched))
    assert seen == {"scheduler_file": str(sched)} and "tcp://head:8786" in ex.name
    ex.close()
    assert seen["closed"]
    monkeypatch.undo()

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(UsageError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
            executors.DaskExecutor(scheduler="tcp://127.0.0.1:9")


# --- the local pool ----------------------------------------------------------------------------------


def test_local_pool_survives_a_worker_killed_mid_image(tmp_path, killer_site):
    """--workers 2 without Dask: a pool worker SIGKILLed mid-image breaks the pool; a new pool retries
    what was in the broken one, and the batch ends complete instead of crashing."""
    inp, out, marker = _images(tmp_path / "in"), tmp_path / "out", tmp_path / "killed"
    r = _batch([str(inp), str(out), *TINY, "--degrade", "killer:10", "--workers", "2", "--json"],
               killer_site, marker)
    assert r.returncode == 0, r.stderr
    assert marker.exists()
    summary = json.loads(r.stdout)
    rows = _assert_complete(out, ["a0.png", "a1.png", "a2.png"])
    assert summary["done"] == 3 and summary["failed"] == 0 and summary["retried"] >= 1, summary
    # every item in the broken pool is charged an attempt (the pool cannot say which one killed it)
    assert sum(row["attempts"] for row in rows.values()) == 3 + summary["retried"]
    assert max(row["attempts"] for row in rows.values()) == 2
    lines = _clean_stderr(r.stderr)
    retries = [ln for ln in lines if ln.startswith("retrying ")]
    assert len(retries) == summary["retried"] and all("BrokenProcessPool" in ln for ln in retries), lines


# --- Dask stays optional -----------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [["--dask", "--workers", "2"], ["--scheduler", "tcp://head:8786"]])
def test_without_dask_the_dask_options_are_a_usage_error(tmp_path, monkeypatch, flags):
    from typer.testing import CliRunner

    from restorekit import cli

    for name in ("dask", "distributed"):
        monkeypatch.setitem(sys.modules, name, None)  # import dask -> ImportError, as without the extra
    inp, out = _images(tmp_path / "in", n=1), tmp_path / "out"
    r = CliRunner().invoke(cli.get_app(), ["batch", str(inp), str(out), *TINY, *flags], catch_exceptions=False)
    assert r.exit_code == 2, r.output
    text = r.stderr.strip()
    assert "\n" not in text and text.startswith("error:") and "pip install 'restorekit[dask]'" in text, text
    assert not out.exists()  # nothing was written


def test_only_the_dask_executor_imports_dask():
    """No module but batch/executors.py imports dask or distributed, and only inside functions."""
    pattern = re.compile(r"^\s*(?:import|from)\s+(?:dask|distributed)\b", re.M)
    users = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "restorekit").rglob("*.py")
                   if pattern.search(p.read_text(encoding="utf-8")))
    assert users == [os.path.join("restorekit", "batch", "executors.py")]
    top_level = re.compile(r"^(?:import|from)\s+(?:dask|distributed)\b", re.M)
    assert not top_level.search((ROOT / "restorekit" / "batch" / "executors.py").read_text(encoding="utf-8"))


def test_help_list_and_a_local_batch_import_no_dask(tmp_path):
    """restorekit --help, list and batch --help import neither torch nor dask; a batch without --dask
    imports torch but not dask."""
    inp = _images(tmp_path / "in", n=1)
    code = (
        "import sys\n"
        "from restorekit.cli import main\n"
        "def cli(*args):\n"
        "    sys.argv = ['restorekit', *args]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as e:\n"
        "        assert not e.code, (args, e.code)\n"
        "for args in (['--help'], ['list'], ['batch', '--help']):\n"
        "    cli(*args)\n"
        "    loaded = {'torch', 'dask', 'distributed'} & set(sys.modules)\n"
        "    assert not loaded, (args, loaded)\n"
        f"cli('batch', {str(inp)!r}, {str(tmp_path / 'out')!r}, *{TINY!r}, '--iters', '2')\n"
        "assert 'torch' in sys.modules\n"
        "loaded = {'dask', 'distributed'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stderr


# --- the docs ----------------------------------------------------------------------------------------


def test_cluster_docs_use_real_batch_options():
    """docs/usage.md's "Batches on a cluster": its batch commands name options batch has; its Python parses."""
    import ast
    import shlex

    from typer.main import get_command

    from restorekit.cli import get_app

    text = (ROOT / "docs" / "usage.md").read_text(encoding="utf-8")
    section = text.split("## Batches on a cluster", 1)[1].split("\n## ", 1)[0]
    batch = get_command(get_app()).commands["batch"]
    options = {o for p in batch.params for o in getattr(p, "opts", [])}
    commands = [shlex.split(line) for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)
                for line in block.splitlines() if line.startswith("restorekit batch ")]
    snippets = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert commands and len(snippets) == 1
    tree = ast.parse(snippets[0])
    for node in ast.walk(tree):  # the batch the snippet starts, as a list of arguments
        if isinstance(node, ast.List) and node.elts and getattr(node.elts[0], "value", None) == "restorekit":
            commands.append([e.value if isinstance(e, ast.Constant) else "ADDRESS" for e in node.elts])
    assert len(commands) == 2
    for args in commands:
        used = [a for a in args if a.startswith("-")]
        assert set(used) <= options, (args, set(used) - options)
        assert "--scheduler" in used
    inline = re.findall(r"`(--[a-z-]+)", section)
    assert set(inline) <= options, set(inline) - options
