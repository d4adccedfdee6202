"""``restorekit batch``: inputs, side inputs, the manifest, resume, interrupts, SIGKILL, the report, the docs.

Most tests run the command in this process (CliRunner, 3 iterations on 24x20
images); the signal tests run ``python -m restorekit.cli batch`` in a
subprocess and signal it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import imageio.v3 as iio
import numpy as np
import pytest

from restorekit import cli
from restorekit.errors import UsageError
from tests.helpers import invoke

ROOT = Path(__file__).resolve().parents[1]
NET = ["--net", "skip:levels=2,channels=8,skip=2", "--workers", "1"]  # in this process: the spies below see every call
TINY = [*NET, "--iters", "3"]


pytestmark = pytest.mark.usefixtures("fresh_host")  # chdir into tmp_path, fresh plugin host (conftest.py)


def image(path: Path, seed: int = 0, shape=(20, 24)) -> Path:
    """A small 8-bit RGB image with structure, different for each seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    img = np.stack([(xx * 10 + seed * 37) % 256, (yy * 12 + seed * 11) % 256,
                    ((xx + yy) // 4 % 2) * 200 + 20], axis=-1)
    img = np.clip(img + rng.integers(-10, 10, img.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, img)
    return path


def tree(root: Path, names) -> Path:
    for i, n in enumerate(names):
        image(root / n, seed=i + 1)
    return root


def mask(path: Path, shape=(20, 24)) -> Path:
    m = np.full(shape, 255, np.uint8)
    m[5:10, 6:14] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, m)
    return path


def rows(out: Path) -> dict[str, dict]:
    """The manifest read as any reader would: sqlite3, another connection."""
    db = sqlite3.connect(out / "manifest.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return {r["key"]: dict(r) for r in db.execute("SELECT * FROM items")}
    finally:
        db.close()


def checksum(folder: Path) -> str:
    """SHA-256 of restored.png then run.json, computed here independently of the manifest module."""
    h = hashlib.sha256()
    h.update((folder / "restored.png").read_bytes())
    h.update((folder / "run.json").read_bytes())
    return h.hexdigest()


def snapshot(out: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under OUT but the manifest and report: (inode, mtime_ns, bytes)."""
    snap = {}
    for p in sorted(out.rglob("*")):
        if p.is_file() and p.parent != out:
            st = p.stat()
            snap[p.relative_to(out).as_posix()] = (st.st_ino, st.st_mtime_ns, p.read_bytes())
    return snap


def hidden_entries(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob(".*"))


def _patch_run_item(monkeypatch, fn):
    """Replace the worker function wherever the in-process executor may look it up."""
    import restorekit.batch.executors as ex
    import restorekit.batch.job as job

    monkeypatch.setattr(job, "run_item", fn)
    monkeypatch.setattr(ex, "run_item", fn, raising=False)


def _interrupt_at(monkeypatch, key: str) -> None:
    """Ctrl-C while the image ``key`` is fitted (the others run as usual)."""
    import restorekit.batch.job as job

    real = job.run_item

    def interrupting(item, options):
        if item.key == key:
            raise KeyboardInterrupt
        return real(item, options)

    _patch_run_item(monkeypatch, interrupting)


def _no_work(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("an image was computed")

    _patch_run_item(monkeypatch, fail)


# ---------------------------------------------------------------------------------------------------------------
# 1. inputs


def test_folder_scan_recurses_skips_hidden_and_other_files(tmp_path):
    from restorekit.batch.inputs import discover

    src = tree(tmp_path / "in", ["a.png", "B.PNG", "sub/c.jpg", "sub/deep/d.png", ".hidden.png", ".git/e.png",
                                  "sub/.cache/f.png"])
    (src / "notes.txt").write_text("not an image")
    (src / "sub" / "g.png.bak").write_text("nor this")
    root, found = discover([str(src)])
    assert root == src
    assert [k for k, _ in found] == ["B.PNG", "a.png", "sub/c.jpg", "sub/deep/d.png"]
    assert dict(found)["sub/deep/d.png"] == src / "sub" / "deep" / "d.png"


def test_include_and_exclude_globs_on_the_relative_path(tmp_path):
    from restorekit.batch.inputs import discover

    src = tree(tmp_path / "in", ["a.png", "b.jpg", "sub/c.png", "sub/d.jpg", "other/e.png"])
    keys = lambda **kw: [k for k, _ in discover([str(src)], **kw)[1]]  # noqa: E731
    assert keys(include=["*.png"]) == ["a.png", "other/e.png", "sub/c.png"]
    assert keys(include=["sub/*"]) == ["sub/c.png", "sub/d.jpg"]
    assert keys(include=["sub/*", "a.*"]) == ["a.png", "sub/c.png", "sub/d.jpg"]
    assert keys(exclude=["sub/*"]) == ["a.png", "b.jpg", "other/e.png"]
    assert keys(include=["*.png"], exclude=["other/*"]) == ["a.png", "sub/c.png"]
    with pytest.raises(UsageError, match="after --include/--exclude"):
        discover([str(src)], include=["*.tif"])


def test_list_file_and_stdin(tmp_path):
    from restorekit.batch.inputs import discover

    src = tree(tmp_path / "data", ["x/a.png", "y/b.png", "y/z/c.png"])
    lst = tmp_path / "list.txt"
    lst.write_text("# the images\n\ndata/x/a.png\n  data/y/z/c.png  \n# data/y/b.png\n")
    root, found = discover([f"@{lst}"])
    assert root == src and [k for k, _ in found] == ["x/a.png", "y/z/c.png"]
    # stdin: the same lines; keys are relative to the listed files' common folder
    root, found = discover(["-"], stdin=["data/y/b.png\n", "data/y/z/c.png\n"])
    assert root == src / "y" and [k for k, _ in found] == ["b.png", "z/c.png"]
    with pytest.raises(UsageError, match="which is not a file"):
        discover(["-"], stdin=["data/missing.png\n"])
    with pytest.raises(UsageError, match="no image paths"):
        discover(["-"], stdin=["# nothing\n"])
    with pytest.raises(UsageError, match="listed twice"):
        discover(["-"], stdin=["data/y/b.png\n", "data/x/../y/b.png\n"])


def test_cli_reads_stdin_and_mirrors_the_tree(tmp_path):
    tree(tmp_path / "in", ["a.png", "sub/b.png", "sub/deep/c.png"])
    r = invoke(["batch", "-", "out", *TINY], input="in/a.png\nin/sub/deep/c.png\n")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out/a/restored.png").is_file()
    assert (tmp_path / "out/sub/deep/c/restored.png").is_file()
    assert not (tmp_path / "out/sub/b").exists()
    assert set(rows(tmp_path / "out")) == {"a.png", "sub/deep/c.png"}


def test_keys_and_output_folders_mirror_the_input_tree(tmp_path):
    from restorekit.batch.inputs import discover, make_items

    src = tree(tmp_path / "in", ["a.png", "sub/b.jpg", "sub/deep/c.tar.png"])
    root, found = discover([str(src)])
    items = make_items(root, found, Path("out"), degrade=["gaussian:25"], prior=["dip"], net=None, reference=None)
    out = tmp_path / "out"
    assert {i.key: Path(i.out) for i in items} == {
        "a.png": out / "a", "sub/b.jpg": out / "sub" / "b", "sub/deep/c.tar.png": out / "sub" / "deep" / "c.tar"}
    assert all(Path(i.input).is_absolute() and Path(i.input).is_file() for i in items)


@pytest.mark.parametrize("names, fragment", [
    (["a.png", "a.jpg"], "would both be written to"),  # one folder for two images
    (["A.png", "a.png"], "would both be written to"),  # one folder on a case-insensitive disk
    (["a.png", "a/b.png"], "inside the one of 'a.png'"),  # replacing a/ would take a/b/ with it
    (["index.html.png"], "a file of the batch itself"),
    (["manifest.sqlite.png"], "a file of the batch itself"),
])
def test_colliding_output_folders_are_refused_before_any_work(tmp_path, names, fragment):
    tree(tmp_path / "in", names)
    r = invoke(["batch", "in", "out", *TINY])
    assert r.exit_code == 2, r.output
    assert fragment in r.stderr
    assert not (tmp_path / "out").exists()


def test_a_list_with_dotdot_cannot_escape_the_output_folder(tmp_path):
    tree(tmp_path / "elsewhere", ["x.png"])
    tree(tmp_path / "work" / "in", ["a.png"])
    work = tmp_path / "work"
    os.chdir(work)
    lst = work / "list.txt"
    lst.write_text("../elsewhere/x.png\nin/../in/a.png\n")
    r = invoke(["batch", f"@{lst}", "out", *TINY])
    assert r.exit_code == 0, r.output
    out = (work / "out").resolve()
    for key, row in rows(work / "out").items():
        assert out in Path(row["out"]).resolve().parents, (key, row["out"])
    assert (out / "elsewhere" / "x" / "restored.png").is_file()
    assert (out / "work" / "in" / "a" / "restored.png").is_file()
    written = {p for p in tmp_path.rglob("restored.png")}
    assert all(out in p.parents for p in written)


def test_a_symlinked_subfolder_of_out_pointing_outside_is_refused(tmp_path):
    tree(tmp_path / "in", ["a.png", "sub/b.png"])
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sub").symlink_to(outside, target_is_directory=True)
    r = invoke(["batch", "in", "out", *TINY])
    assert r.exit_code == 2, r.output
    assert "outside" in r.stderr and "symbolic link" in r.stderr
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sub"]  # nothing written


def test_output_path_helper_refuses_escapes(tmp_path):
    from restorekit.batch.inputs import output_folder

    for key in ("../x.png", "/abs/x.png", "a/../../x.png", ".hidden/x.png"):
        with pytest.raises(UsageError):
            output_folder(tmp_path, key)
    assert output_folder(tmp_path, "a/b.png") == tmp_path / "a" / "b"


def test_input_and_output_folders_nested_in_each_other_are_refused(tmp_path):
    tree(tmp_path / "in", ["a.png"])
    r = invoke(["batch", "in", "in/out", *TINY])
    assert r.exit_code == 2 and "must not contain each other" in r.stderr
    assert not (tmp_path / "in" / "out").exists()
    tree(tmp_path / "big" / "in", ["a.png"])
    r = invoke(["batch", "big/in", "big", *TINY])
    assert r.exit_code == 2 and "must not contain each other" in r.stderr
    r = invoke(["batch", "in", "in", *TINY])
    assert r.exit_code == 2 and "must not contain each other" in r.stderr
    assert sorted(p.name for p in (tmp_path / "big").iterdir()) == ["in"]


def test_a_list_may_write_beside_its_files_but_never_over_them(tmp_path):
    tree(tmp_path, ["a.png", "b.png"])
    # `ls *.png | restorekit batch - out`: OUT inside the listed files' folder is fine
    r = invoke(["batch", "-", "out", *TINY], input="a.png\nb.png\n")
    assert r.exit_code == 0, r.output
    assert sorted(rows(tmp_path / "out")) == ["a.png", "b.png"]
    # a listed file inside OUT is not
    image(tmp_path / "out2" / "c.png")
    r = invoke(["batch", "-", "out2", *TINY], input="out2/c.png\na.png\n")
    assert r.exit_code == 2 and "inside the output folder" in r.stderr, r.output


# ---------------------------------------------------------------------------------------------------------------
# side inputs by pattern


def test_patterns_fill_in_each_image(tmp_path):
    from restorekit.batch.inputs import resolve_spec, substitute

    key = "sub/deep/a.png"
    assert substitute("{stem}|{name}|{relpath}|{relname}", key) == "a|a.png|sub/deep/a|sub/deep/a.png"
    assert resolve_spec("mask:masks/{relpath}_m.png", key) == ("mask:masks/sub/deep/a_m.png", ["masks/sub/deep/a_m.png"])
    # only values that held a pattern are files: 0.5 is not one
    spec, files = resolve_spec("mask:path=m/{stem}.png,invert=true,x=0.5", key)
    assert files == ["m/a.png"] and spec == "mask:path=m/a.png,invert=true,x=0.5"
    # a file name with a comma is quoted, so the spec does not split
    from restorekit.spec import parse_spec

    spec, files = resolve_spec("mask:m/{name}", "scan, p1.png")
    assert parse_spec(spec).positional == "m/scan, p1.png" and files == ["m/scan, p1.png"]
    # a pattern that does not name a file (text to draw) is not a side input
    assert resolve_spec("text:{stem}", key) == ("text:a", [])
    assert resolve_spec("gaussian:25", key) == ("gaussian:25", [])


def test_masks_and_references_by_pattern_end_to_end(tmp_path):
    tree(tmp_path / "in", ["a.png", "sub/b.png"])
    mask(tmp_path / "masks" / "a_m.png")
    mask(tmp_path / "masks" / "sub" / "b_m.png")
    image(tmp_path / "refs" / "a.png", seed=1)
    image(tmp_path / "refs" / "b.png", seed=2)
    r = invoke(["batch", "in", "out", *TINY, "--mode", "restore", "--degrade", "mask:masks/{relpath}_m.png",
                "--reference", "refs/{stem}.png"])
    assert r.exit_code == 0, r.output
    for key, m, ref in (("a", "masks/a_m.png", "refs/a.png"), ("sub/b", "masks/sub/b_m.png", "refs/b.png")):
        rec = json.loads((tmp_path / "out" / key / "run.json").read_text())
        assert rec["components"]["degradations"][0]["params"]["path"] == m
        assert rec["reference"]["path"] == ref
        assert "psnr" in rec["result"]["metrics"]  # scored against its own reference
    got = rows(tmp_path / "out")
    assert json.loads(got["a.png"]["metrics"])["psnr"] == json.loads(
        (tmp_path / "out/a/run.json").read_text())["result"]["metrics"]["psnr"]


def test_missing_side_inputs_are_listed_in_one_error_before_any_work(tmp_path):
    tree(tmp_path / "in", ["a.png", "b.png", "c.png", "sub/d.png"])
    mask(tmp_path / "masks" / "b.png")
    r = invoke(["batch", "in", "out", *TINY, "--mode", "restore", "--degrade", "mask:masks/{name}"])
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert err.count("\n") == 0 and err.startswith("error:")
    assert "3 image(s) have a missing side input" in err
    for key in ("a.png (masks/a.png)", "c.png (masks/c.png)", "sub/d.png (masks/d.png)"):
        assert key in err
    assert "b.png (" not in err.replace("sub/d.png", "")
    assert "nothing was started" in err
    assert not (tmp_path / "out").exists()
    # the reference too
    r = invoke(["batch", "in", "out", *TINY, "--mode", "restore", "--degrade", "gaussian:25",
                "--reference", "refs/{relname}"])
    assert r.exit_code == 2 and "4 image(s) have a missing side input" in r.stderr
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------------------------
# 2. the manifest


def test_manifest_one_row_per_image_with_status_attempts_and_checksums(tmp_path):
    tree(tmp_path / "in", ["a.png", "b.png", "sub/c.png"])
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    r = invoke(["batch", "in", "out", *TINY, "--mode", "benchmark", "--json"])  # scored against each clean input
    assert r.exit_code == 1, r.output  # one image failed, not the batch
    summary = json.loads(r.stdout)
    assert summary["done"] == 3 and summary["failed"] == 1
    assert summary["failures"][0]["key"] == "broken.png"
    got = rows(tmp_path / "out")
    assert sorted(got) == ["a.png", "b.png", "broken.png", "sub/c.png"]
    for key in ("a.png", "b.png", "sub/c.png"):
        row = got[key]
        folder = tmp_path / "out" / key[:-4]
        assert row["status"] == "done" and row["attempts"] == 1 and row["error"] is None
        assert row["checksum"] == checksum(folder)
        assert Path(row["out"]) == folder and Path(row["input"]) == tmp_path / "in" / key
        assert set(json.loads(row["metrics"])) == {"psnr", "ssim"}
        assert json.loads(row["specs"])["generator"].startswith("skip:levels=2,channels=8")
        assert row["seed"] == 0 and row["finished"] >= row["started"]
    bad = got["broken.png"]
    assert bad["status"] == "failed" and bad["attempts"] == 1 and bad["checksum"] is None
    assert "cannot read image" in bad["error"]
    assert not (tmp_path / "out" / "broken").exists()
    assert hidden_entries(tmp_path / "out") == []


def _specs_and_modes(out: Path) -> list[tuple[str, list[str]]]:
    recs = [json.loads(p.read_text()) for p in sorted(out.rglob("run.json"))]
    return [(rec["mode"], [d["spec"] for d in rec["components"]["degradations"]]) for rec in recs]


def test_every_input_is_an_image_so_a_batch_restores_it_as_observed(tmp_path):
    """No --mode: each image is already degraded (restore mode), its noise estimated (noise); nothing is added."""
    from restorekit.batch.manifest import Manifest

    tree(tmp_path / "in", ["a.png", "sub/b.png"])
    r = invoke(["batch", "in", "out", *TINY, "--json"])
    assert r.exit_code == 0, r.output
    assert _specs_and_modes(tmp_path / "out") == [("restore", ["noise:cap=true"])] * 2
    assert all(json.loads(row["metrics"]) == {} for row in rows(tmp_path / "out").values())
    assert np.array_equal(iio.imread(tmp_path / "out/a/degraded.png"), iio.imread(tmp_path / "in/a.png"))
    m = Manifest.open(tmp_path / "out")
    settings = m.settings()
    m.close()
    assert settings["mode"] == "restore" and settings["degrade"] == ["noise"]
    # --resume with the same (default) options is the same batch
    assert invoke(["batch", "in", "out", *TINY, "--resume"]).exit_code == 0


def test_batch_mode_benchmark_still_simulates(tmp_path):
    tree(tmp_path / "in", ["a.png"])
    r = invoke(["batch", "in", "out", *TINY, "--mode", "benchmark", "--json"])
    assert r.exit_code == 0, r.output
    assert _specs_and_modes(tmp_path / "out") == [("benchmark", ["gaussian:sigma=25.0,clip=true"])]
    assert set(json.loads(rows(tmp_path / "out")["a.png"]["metrics"])) == {"psnr", "ssim"}
    assert not np.array_equal(iio.imread(tmp_path / "out/a/degraded.png"), iio.imread(tmp_path / "in/a.png"))


def test_status_reads_the_manifest_and_starts_nothing(tmp_path, monkeypatch):
    tree(tmp_path / "in", ["a.png", "b.png"])
    (tmp_path / "in" / "broken.png").write_bytes(b"not an image")
    assert invoke(["batch", "in", "out", *TINY]).exit_code == 1
    before = snapshot(tmp_path / "out")
    manifest_bytes = (tmp_path / "out" / "manifest.sqlite").read_bytes()
    report_mtime = (tmp_path / "out" / "index.html").stat().st_mtime_ns
    _no_work(monkeypatch)
    r = invoke(["batch", "--status", "out"])
    assert r.exit_code == 0, r.output
    assert "pending 0  running 0  done 2  failed 1" in r.stdout
    lines = {line.split()[0]: line.split() for line in r.stdout.splitlines()[2:] if line.strip()}
    assert lines["a.png"][1] == "done" and lines["broken.png"][1] == "failed"
    r = invoke(["batch", "--status", "out", "--json"])
    data = json.loads(r.stdout)
    assert data["counts"] == {"pending": 0, "running": 0, "done": 2, "failed": 1}
    assert {i["key"]: i["status"] for i in data["items"]} == {"a.png": "done", "b.png": "done", "broken.png": "failed"}
    assert snapshot(tmp_path / "out") == before
    assert (tmp_path / "out" / "manifest.sqlite").read_bytes() == manifest_bytes
    assert (tmp_path / "out" / "index.html").stat().st_mtime_ns == report_mtime
    r = invoke(["batch", "--status", "nothing-here"])
    assert r.exit_code == 2 and "holds no batch manifest" in r.stderr
    assert not (tmp_path / "nothing-here").exists()


def test_manifest_and_report_are_readable_while_the_batch_runs(tmp_path, monkeypatch):
    import restorekit.batch.job as job

    tree(tmp_path / "in", ["a.png", "b.png", "c.png"])
    real = job.run_item
    seen = {}

    def spy(item, options):
        seen[item.key] = ({k: r["status"] for k, r in rows(tmp_path / "out").items()},
                          (tmp_path / "out" / "index.html").read_text())
        return real(item, options)

    _patch_run_item(monkeypatch, spy)
    r = invoke(["batch", "in", "out", *TINY])
    assert r.exit_code == 0, r.output
    states, page = seen["c.png"]
    assert states == {"a.png": "done", "b.png": "done", "c.png": "running"}
    assert page.count('<tr class="done">') == 2 and 'href="a/run.json"' in page  # updated as images finish
    assert seen["a.png"][0] == {"a.png": "running", "b.png": "pending", "c.png": "pending"}


def test_resume_with_other_settings_is_refused(tmp_path):
    tree(tmp_path / "in", ["a.png"])
    assert invoke(["batch", "in", "out", *TINY]).exit_code == 0
    before = snapshot(tmp_path / "out")
    for other in (["--iters", "4"], ["--seed", "1"], ["--degrade", "gaussian:15"], ["--exclude", "x*"]):
        args = [*TINY, *other] if other[0] != "--iters" else [*NET, *other]
        r = invoke(["batch", "in", "out", *args, "--resume"])
        assert r.exit_code == 2, r.output
        assert "--resume with other settings" in r.stderr
        assert other[0].lstrip("-") in r.stderr
    assert snapshot(tmp_path / "out") == before
    # the same settings from another folder (the input given another way) is the same batch
    os.chdir(tmp_path / "in")
    r = invoke(["batch", ".", "../out", *TINY, "--resume"])
    assert r.exit_code == 0, r.output
    assert snapshot(tmp_path / "out") == before


def test_an_existing_batch_needs_resume_and_resume_on_none_starts_one(tmp_path):
    # issue 23: --resume where OUT holds no batch starts one (one idempotent command for a job script)
    tree(tmp_path / "in", ["a.png"])
    r = invoke(["batch", "in", "out", *TINY, "--resume"])
    assert r.exit_code == 0 and "holds no batch yet; starting one" in r.stderr
    assert (tmp_path / "out" / "manifest.sqlite").is_file()
    shutil.rmtree(tmp_path / "out")
    assert invoke(["batch", "in", "out", *TINY]).exit_code == 0
    before = snapshot(tmp_path / "out")
    r = invoke(["batch", "in", "out", *TINY])
    assert r.exit_code == 2 and "already holds a batch" in r.stderr and "--resume" in r.stderr
    assert snapshot(tmp_path / "out") == before


def test_a_second_batch_on_the_same_folder_is_refused(tmp_path, monkeypatch):
    from restorekit.batch.manifest import BatchLock

    tree(tmp_path / "in", ["a.png"])
    assert invoke(["batch", "in", "out", *TINY]).exit_code == 0
    lock = BatchLock(tmp_path / "out")  # as a running batch holds it
    try:
        with monkeypatch.context() as m:
            _no_work(m)
            r = invoke(["batch", "in", "out", *TINY, "--resume"])
        assert r.exit_code == 2 and "in use by another batch" in r.stderr, r.output
    finally:
        lock.release()
    assert invoke(["batch", "in", "out", *TINY, "--resume"]).exit_code == 0


def test_a_manifest_is_created_whole(tmp_path, monkeypatch):
    """A batch killed while creating its manifest leaves none (so --resume never meets one without settings)."""
    import restorekit.batch.manifest as man

    def boom(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(man.os, "replace", boom)
        with pytest.raises(KeyboardInterrupt):
            man.Manifest.create(tmp_path, {"x": 1})
    assert list(tmp_path.iterdir()) == []
    m = man.Manifest.create(tmp_path, {"x": 1})
    m.close()
    assert man.Manifest.open(tmp_path).settings() == {"x": 1}
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "manifest.sqlite").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0o600


# ---------------------------------------------------------------------------------------------------------------
# 3. resume


def test_resume_never_recomputes_or_rewrites_done_images(tmp_path, monkeypatch):
    tree(tmp_path / "in", ["a.png", "b.png", "sub/c.png"])
    assert invoke(["batch", "in", "out", *TINY]).exit_code == 0
    before = snapshot(tmp_path / "out")
    time.sleep(0.02)
    _no_work(monkeypatch)
    r = invoke(["batch", "in", "out", *TINY, "--resume", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert (s["done"], s["skipped"], s["adopted"]) == (0, 3, 0)
    assert snapshot(tmp_path / "out") == before  # same inodes, mtimes and bytes
    assert all(row["attempts"] == 1 for row in rows(tmp_path / "out").values())


def test_a_done_image_whose_files_are_gone_or_changed_is_recomputed(tmp_path):
    import shutil

    tree(tmp_path / "in", ["a.png", "b.png", "c.png"])
    assert invoke(["batch", "in", "out", *TINY]).exit_code == 0
    keep = {k: v for k, v in snapshot(tmp_path / "out").items() if k.startswith("a/")}
    shutil.rmtree(tmp_path / "out" / "b")
    (tmp_path / "out" / "c" / "restored.png").write_bytes(b"edited")
    r = invoke(["batch", "in", "out", *TINY, "--resume", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert (s["done"], s["skipped"]) == (2, 1)
    got = rows(tmp_path / "out")
    for key in ("b", "c"):
        assert got[f"{key}.png"]["attempts"] == 2 and got[f"{key}.png"]["status"] == "done"
        assert got[f"{key}.png"]["checksum"] == checksum(tmp_path / "out" / key)
    assert {k: v for k, v in snapshot(tmp_path / "out").items() if k.startswith("a/")} == keep


def test_failed_images_are_retried_up_to_attempts(tmp_path, monkeypatch):
    tree(tmp_path / "in", ["a.png"])
    bad = tmp_path / "in" / "b.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    args = ["batch", "in", "out", *TINY, "--attempts", "2"]
    r = invoke(args)
    assert r.exit_code == 1, r.output
    assert rows(tmp_path / "out")["b.png"]["attempts"] == 1
    r = invoke([*args, "--resume"])
    assert r.exit_code == 1
    assert rows(tmp_path / "out")["b.png"]["attempts"] == 2
    with monkeypatch.context() as m:
        _no_work(m)  # attempts used up: not tried again, still reported
        r = invoke([*args, "--resume", "--json"])
    assert r.exit_code == 1
    s = json.loads(r.stdout)
    assert s["failed"] == 1 and "gave up after 2 attempts" in s["failures"][0]["error"]
    assert rows(tmp_path / "out")["b.png"]["attempts"] == 2
    image(bad, seed=9)  # repaired; one more attempt allowed
    r = invoke(["batch", "in", "out", *TINY, "--attempts", "3", "--resume"])
    assert r.exit_code == 0, r.output
    row = rows(tmp_path / "out")["b.png"]
    assert row["status"] == "done" and row["attempts"] == 3 and row["error"] is None


def test_a_complete_folder_left_by_a_killed_attempt_is_adopted(tmp_path, monkeypatch):
    tree(tmp_path / "in", ["a.png", "b.png"])
    assert invoke(["batch", "in", "out", *TINY]).exit_code == 0
    done = rows(tmp_path / "out")["b.png"]
    # as if killed after b's folder was committed but before the manifest recorded it
    db = sqlite3.connect(tmp_path / "out" / "manifest.sqlite")
    db.execute("UPDATE items SET status = 'running', checksum = NULL, metrics = NULL, specs = NULL "
               "WHERE key = 'b.png'")
    db.commit()
    db.close()
    before = snapshot(tmp_path / "out")
    _no_work(monkeypatch)
    r = invoke(["batch", "in", "out", *TINY, "--resume", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert (s["adopted"], s["skipped"], s["done"]) == (1, 1, 0)
    row = rows(tmp_path / "out")["b.png"]
    assert row["status"] == "done" and row["checksum"] == checksum(tmp_path / "out" / "b")
    assert row["metrics"] == done["metrics"] and json.loads(row["specs"]) == json.loads(done["specs"])
    assert snapshot(tmp_path / "out") == before


def test_a_folder_older_than_the_batch_is_neither_adopted_nor_replaced(tmp_path):
    """Only an item this batch handed out can have left a folder: one that predates it is refused before
    the batch starts (it was recomputed over; issue 22), and taken once it is moved away."""
    tree(tmp_path / "in", ["a.png"])
    assert invoke(["batch", "in", "old", *TINY]).exit_code == 0
    (tmp_path / "new").mkdir()
    import shutil

    shutil.copytree(tmp_path / "old" / "a", tmp_path / "new" / "a")
    before = snapshot(tmp_path / "new")
    r = invoke(["batch", "in", "new", *TINY, "--json"])
    assert r.exit_code == 2 and "never replaces what it did not record" in r.stderr, r.output
    assert snapshot(tmp_path / "new") == before and not (tmp_path / "new" / "manifest.sqlite").exists()
    shutil.rmtree(tmp_path / "new" / "a")
    r = invoke(["batch", "in", "new", *TINY, "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert (s["adopted"], s["done"]) == (0, 1)


def test_stale_staging_and_temporary_files_are_removed_on_resume(tmp_path):
    from restorekit.run.outdir import _host_tag

    tree(tmp_path / "in", ["a.png", "sub/b.png"])
    assert invoke(["batch", "in", "out", *TINY]).exit_code == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "out"
    stale = [out / f".a.rk-{_host_tag()}-{dead.pid}-x1.tmp", out / "sub" / f".b.rk-{_host_tag()}-{dead.pid}-x2.old"]
    for s in stale:
        s.mkdir()
        (s / "restored.png").write_bytes(b"half")
    (out / ".index.html.abc.tmp").write_text("<html")
    (out / ".manifest.sqlite.def.tmp").write_bytes(b"")
    r = invoke(["batch", "in", "out", *TINY, "--resume"])
    assert r.exit_code == 0, r.output
    assert hidden_entries(out) == []


# ---------------------------------------------------------------------------------------------------------------
# 4. SIGKILL at random moments


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "restorekit.cli", "batch", *map(str, args)]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT), COLUMNS="200")
    env.pop("RESTOREKIT_DEBUG", None)
    return env


def _statuses(out: Path) -> dict[str, str]:
    """Each image's status, read while the batch may be writing (another process, read-only)."""
    try:
        db = sqlite3.connect(f"file:{out / 'manifest.sqlite'}?mode=ro", uri=True, timeout=1)
        try:
            return dict(db.execute("SELECT key, status FROM items"))
        finally:
            db.close()
    except sqlite3.Error:
        return {}


def _running_keys(out: Path) -> set[str]:
    return {k for k, v in _statuses(out).items() if v == "running"}


def _committed(out: Path) -> dict[str, tuple[int, int]]:
    """The image folders moved into place (they have a run.json): their restored.png's (inode, mtime)."""
    found = {}
    # os.walk, not Path.rglob: the running batch creates and removes staging folders while this walks,
    # and rglob raises when a folder it listed is gone; staging folders (names starting with '.') are skipped
    for dirpath, dirnames, filenames in os.walk(out):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if "run.json" not in filenames:
            continue
        folder = Path(dirpath)
        with contextlib.suppress(OSError):
            st = (folder / "restored.png").stat()
            found[folder.relative_to(out).as_posix()] = (st.st_ino, st.st_mtime_ns)
    return found


def _staging_with_results(out: Path) -> set[str]:
    """Staging folders that hold results (being written); walked with os.walk, which tolerates folders
    vanishing under it while the batch runs."""
    found = set()
    for dirpath, dirnames, _ in os.walk(out):
        for d in dirnames:
            if d.startswith(".") and d.endswith(".tmp") and os.path.exists(os.path.join(dirpath, d, "restored.png")):
                found.add(d)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
    return found


def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_result(tmp_path):
    names = ["a.png", "b.png", "c.png", "sub/d.png", "sub/e.png", "sub/deep/f.png", "g.png", "h.png"]
    tree(tmp_path / "in", names)
    args = ["in", "out", *NET, "--iters", "20", "--seed", "7"]
    env = _env()
    ref = subprocess.run(_cli("in", "ref", *args[2:]), cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "out"
    rng = random.Random(20240611)
    # When each run is killed, counted from the moment it is at work (an image is running in the manifest):
    # after a random delay (mostly inside a fit); the instant the (n+1)-th image of the run is handed out
    # (a fit starting); the instant the (n+1)-th staging folder holds results (while they are written);
    # the instant the (n+1)-th folder is moved into place (before or while the manifest records it).
    # n is 0 or 1, so every kill lands within the first images of its run and at least 5 kills happen
    # before the 8 images are done.
    schedule = [("delay", 0), ("committed", 0), ("writing", 1), ("started", 1), ("delay", 0), ("committed", 1),
                ("writing", 0), ("started", 0)]
    kills: list[str] = []
    once: dict[str, tuple[int, int]] = {}  # every folder ever committed: it must never be written again
    saw_running = False
    first = True
    for kind, n in schedule:
        p = subprocess.Popen(_cli(*args, *([] if first else ["--resume"])), cwd=tmp_path, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        first = False
        committed0 = set(_committed(out)) if out.exists() else set()
        delay = rng.uniform(0.05, 0.8)
        armed_at = None
        started: set[str] = set()
        writing: set[str] = set()
        killed = False
        while p.poll() is None:
            states = _statuses(out) if (out / "manifest.sqlite").exists() else {}
            running = {k for k, v in states.items() if v == "running"}
            started |= running
            saw_running = saw_running or bool(running)
            if running and armed_at is None:
                armed_at = time.monotonic()
            if armed_at is not None:
                writing |= _staging_with_results(out)
                fire = (
                    (kind == "started" and len(started) > n)
                    or (kind == "delay" and time.monotonic() - armed_at >= delay)
                    or (kind == "committed" and len(set(_committed(out)) - committed0) > n)
                    or (kind == "writing" and len(writing) > n))
                if fire:
                    p.send_signal(signal.SIGKILL)
                    killed = True
                    break
            time.sleep(0.002)
        p.wait(timeout=60)
        err = p.stderr.read()
        p.stderr.close()
        for key, stat in _committed(out).items():
            assert once.setdefault(key, stat) == stat, f"{key} was written twice"
        if not killed:
            assert p.returncode == 0, err
            break
        assert p.returncode == -signal.SIGKILL
        kills.append(kind)
    assert len(kills) >= 5, kills
    assert {"started", "delay"} & set(kills) and {"committed", "writing"} & set(kills), kills
    assert saw_running  # the manifest was read while the batch wrote it
    final = subprocess.run(_cli(*args, "--resume", "--json"), cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    got = rows(out)
    assert sorted(got) == sorted(names)
    for key, row in got.items():
        folder = out / key[:-4]
        assert row["status"] == "done" and row["attempts"] >= 1 and row["error"] is None, row
        assert row["checksum"] == checksum(folder), key
        assert (folder / "restored.png").read_bytes() == (tmp_path / "ref" / key[:-4] / "restored.png").read_bytes(), key
        assert sorted(p.name for p in folder.iterdir()) == [
            "compare.png", "curves.png", "degraded.png", "restored.png", "run.json"]
    # done exactly once: a folder, once moved into place, was never recomputed nor rewritten
    for key, stat in _committed(out).items():
        assert once.setdefault(key, stat) == stat, f"{key} was written twice"
    assert len(once) == len(names)
    # nothing half-done is left: no staging folder, lock or temporary file (nothing hidden at all), and
    # sqlite's -wal/-shm are gone once the last connection closed
    assert hidden_entries(out) == []
    folders = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_dir()}
    assert folders == {n[:-4] for n in names} | {"sub", "sub/deep"}
    assert {p.name for p in out.iterdir() if p.is_file()} == {"manifest.sqlite", "index.html", "batch.lock"}


# ---------------------------------------------------------------------------------------------------------------
# 5. Ctrl-C and SIGTERM


@pytest.mark.parametrize("sig, code, name", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_interrupt_says_what_is_done_and_left_and_resume_continues(tmp_path, sig, code, name):
    tree(tmp_path / "in", ["a.png", "b.png", "c.png"])
    args = ["in", "out", *NET, "--iters", "150"]
    out = tmp_path / "out"
    p = subprocess.Popen(_cli(*args), cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    deadline = time.monotonic() + 60
    while p.poll() is None and time.monotonic() < deadline:
        # once one image is done and the next is being fitted
        states = _statuses(out) if (out / "manifest.sqlite").exists() else {}
        if states.get("a.png") == "done" and "running" in states.values():
            break
        time.sleep(0.01)
    p.send_signal(sig)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == code, stderr
    counts = {"done": 0, "failed": 0, "left": 0}
    for row in rows(out).values():
        counts["done" if row["status"] == "done" else "failed" if row["status"] == "failed" else "left"] += 1
    assert counts["done"] >= 1 and counts["left"] >= 1
    line = stderr.strip().splitlines()[-1]
    assert line == (f"error: interrupted ({name}): {counts['done']} done, {counts['failed']} failed, "
                    f"{counts['left']} left; rerun the same command with --resume to continue"), stderr
    assert "Traceback" not in stderr
    assert hidden_entries(out) == []  # the image being fitted left nothing behind
    r = subprocess.run(_cli(*args, "--resume", "--json"), cwd=tmp_path, env=_env(), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    # an image whose results were being written when the signal came was written in full (the signal
    # waited), then adopted
    assert s["skipped"] == counts["done"] and s["done"] + s["adopted"] == counts["left"]


@pytest.mark.parametrize("stack", [[], ["--stack", "3"]])
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_an_images_folder_is_reserved_leaves_nothing(tmp_path, monkeypatch, sig, code, stack):
    """The signal lands inside the reservation of the second image's folder (a CI run once caught this
    window with SIGTERM and found the folder, its lock and the staging folder left behind)."""
    from restorekit.session import outdir

    tree(tmp_path / "in", ["a.png", "b.png", "c.png"])
    real = outdir._write_lock

    def lock_then_signal(folder):
        real(folder)
        if folder.name == "b":
            os.kill(os.getpid(), sig)
            time.sleep(0.5)  # the handler runs before this returns, unless the signal is held

    monkeypatch.setattr(outdir, "_write_lock", lock_then_signal)
    r = invoke(["batch", "in", "out", *TINY, *stack])
    assert r.exit_code == code, r.output
    out = tmp_path / "out"
    assert hidden_entries(out) == []
    assert not (out / "b").exists()
    # one by one, a was done; stacked, a's reserved folder is given up with the group
    assert (out / "a").exists() == (not stack)
    done = {k for k, v in rows(out).items() if v["status"] == "done"}
    assert done == (set() if stack else {"a.png"})


def test_interrupt_in_process_exits_130_and_keeps_finished_images(tmp_path, monkeypatch):
    """Ctrl-C while an image is fitted (here: the second), with the in-process executor."""
    tree(tmp_path / "in", ["a.png", "b.png", "c.png"])
    _interrupt_at(monkeypatch, "b.png")
    r = invoke(["batch", "in", "out", *TINY])
    assert r.exit_code == 130, r.output
    assert "interrupted (Ctrl-C): 1 done, 0 failed, 2 left; rerun the same command with --resume" in r.stderr
    # b was handed out (one attempt) and is pending again: nothing runs it now (issue 22: --status said running)
    assert {k: (v["status"], v["attempts"]) for k, v in rows(tmp_path / "out").items()} == {
        "a.png": ("done", 1), "b.png": ("pending", 1), "c.png": ("pending", 0)}


# ---------------------------------------------------------------------------------------------------------------
# 6. index.html


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.rows: list[str] = []
        self.links: list[str] = []
        self.headers: list[dict] = []
        self.doctype = None

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag not in ("img", "meta", "br"):
            self.stack.append(tag)
        if tag == "tr" and "tbody" in self.stack:
            self.rows.append(a.get("class"))
        if tag == "th":
            self.headers.append(a)
        if tag in ("img", "a"):
            self.links.append(a.get("src") or a.get("href"))

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (self.stack, tag)  # well nested
        self.stack.pop()


def test_index_html_lists_every_image_with_thumbnails_and_sortable_headers(tmp_path):
    tree(tmp_path / "in", ["a.png", "sub/b #1.png", "c.png"])
    (tmp_path / "in" / "bad.png").write_bytes(b"not an image")
    r = invoke(["batch", "in", "out", *TINY])
    assert r.exit_code == 1
    out = tmp_path / "out"
    page = _Page()
    page.feed((out / "index.html").read_text(encoding="utf-8"))
    page.close()
    assert page.doctype.lower() == "doctype html" and page.stack == []
    assert sorted(page.rows) == ["done", "done", "done", "failed"]
    assert len(page.headers) >= 6 and all("sortBy(" in h["onclick"] for h in page.headers)
    files = {unquote(link) for link in page.links}
    expected = {f"{k}/{f}" for k in ("a", "sub/b #1", "c") for f in ("degraded.png", "restored.png", "run.json")}
    assert files == expected
    assert all((out / f).is_file() for f in files)
    assert "not an image" not in files and "bad/" not in " ".join(files)


def test_the_report_is_rewritten_as_images_finish_within_a_time_budget(tmp_path, monkeypatch):
    import restorekit.batch.report as report

    writes = []

    def slow_write(out_dir, manifest):
        writes.append(time.monotonic())
        time.sleep(0.02)

    monkeypatch.setattr(report, "write_report", slow_write)
    w = report.ReportWriter(tmp_path, None, budget=20)
    w.update()
    w.update()  # 20 x 20 ms have not passed: skipped
    assert len(writes) == 1
    w.update(force=True)  # the start and the end always write
    assert len(writes) == 2
    w._next = time.monotonic()  # once the time has passed, the next image to finish rewrites it
    w.update()
    assert len(writes) == 3


# ---------------------------------------------------------------------------------------------------------------
# 7. docs


def _batch_command():
    from typer.main import get_command

    return get_command(cli.get_app()).commands["batch"]


def _batch_examples() -> list[list[str]]:
    import shlex

    from restorekit.cli.batch import BATCH_EXAMPLES

    texts = [(ROOT / "README.md").read_text(), (ROOT / "docs" / "usage.md").read_text(), BATCH_EXAMPLES]
    out = []
    for text in texts:
        for line in text.splitlines():
            at = line.find("restorekit batch ")  # a command line: at the start, or after a pipe
            if at >= 0 and (line[:at].strip() == "" or line[:at].rstrip().endswith("|")):
                out.append(shlex.split(line[at:].split(" #")[0].rstrip("`"))[2:])
    return out


def test_every_batch_option_is_documented_in_the_batches_section():
    usage = (ROOT / "docs" / "usage.md").read_text()
    m = re.search(r"^## Batches\n(.*?)(?=^## )", usage, flags=re.S | re.M)
    assert m, "docs/usage.md has no '## Batches' section"
    section = m.group(1)
    for param in _batch_command().params:
        for opt in param.opts:
            if opt.startswith("--"):
                assert f"`{opt}" in section, f"docs/usage.md, Batches: {opt} is not documented"
    for word in ("{stem}", "{name}", "{relpath}", "{relname}", "manifest.sqlite", "index.html", "--resume",
                 "SQLite", "130", "143", "batch.lock"):
        assert word in section, word


def test_batch_examples_use_real_options():
    cmd = _batch_command()
    options = {o: p for p in cmd.params for o in getattr(p, "opts", []) if o.startswith("-")}
    examples = _batch_examples()
    assert len(examples) >= 6
    readme = (ROOT / "README.md").read_text()
    assert "restorekit batch " in readme
    for args in examples:
        i = 0
        while i < len(args):
            if args[i].startswith("-") and args[i] != "-":
                assert args[i] in options, f"a batch example uses an unknown option {args[i]}: {args}"
                if not options[args[i]].is_flag:
                    i += 1
            i += 1


def test_batch_help_matches_the_code():
    r = invoke(["batch", "--help"])
    assert r.exit_code == 0
    text = " ".join(r.stdout.split())
    from restorekit.batch.driver import DEFAULT_ATTEMPTS

    assert f"[default: {DEFAULT_ATTEMPTS}]" in text.split("--attempts", 1)[1][:400]
    for fragment in ("OUT/manifest.sqlite", "OUT/index.html", "--resume", "{stem}", "{relpath}",
                     "restorekit[dask]", "exit 130 or 143", "Exit 1"):
        assert fragment in text, fragment


def test_workers_are_sized_to_the_machine_by_default(monkeypatch):
    """Without --workers: one per GPU when the run uses CUDA, else one per core, never more than images."""
    from restorekit.batch import executors

    monkeypatch.setattr(executors, "cpu_count", lambda: 4)
    monkeypatch.setattr(executors, "local_gpus", lambda: None)
    assert executors.auto_workers(32) == 4
    assert executors.auto_workers(3) == 3
    assert executors.auto_workers(1) == 1
    monkeypatch.setattr(executors, "local_gpus", lambda: ["0", "1"])
    assert executors.auto_workers(32) == 2
    assert executors.auto_workers(32, device="cpu") == 4
