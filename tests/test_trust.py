"""Issue 22: nothing a user's folder says is trusted -- model folders, training checkpoints, batch manifests
and output folders are checked against what restorekit wrote before anything is built, allocated, resumed
or replaced; a refusal is one ``error:`` line, exit 2, and leaves every file as it was."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import digests, invoke, one_line_error
from tests.test_learn import clean_images

pytestmark = pytest.mark.usefixtures("fresh_host")  # chdir into tmp_path, fresh plugin host (conftest.py)


def make_model(folder: Path, net: str = "dncnn:depth=3,channels=4", **extra) -> Path:
    """A model folder as restorekit train writes it, without training (random weights)."""
    import torch

    from restorekit.learn.model import build_net, save, save_code_stats
    from restorekit.plugins import get_host

    gen = get_host().registry.create("generator", net)
    card = {"net": gen.spec, "image_channels": 1, "stride": gen.stride(), "canvas": None,
            "task": "restore", "degrade": ["gaussian:sigma=25.0,clip=true"], "sigma_range": None, "noise_map": False,
            "loss": "mse", "data": {"dataset": "faces"}, "parameters": 0, **extra}
    torch.manual_seed(0)
    model = build_net(card)
    save(model, card, folder)
    if hasattr(model, "encode"):
        code = model.encode(torch.zeros((1, 1, *card["canvas"])))[0]
        save_code_stats(folder, torch.zeros_like(code), torch.ones_like(code))
    return folder


def edit_card(folder: Path, change) -> Path:
    card = json.loads((folder / "model.json").read_text())
    card = change(card)
    (folder / "model.json").write_text(json.dumps(card))
    return folder


# ---------------------------------------------------------------------------------------------------------------
# model.json: checked against its schema before anything is built from it


def test_models_lists_an_unreadable_model_json_and_the_rest(tmp_path):
    make_model(tmp_path / "zoo" / "a")
    edit_card(make_model(tmp_path / "zoo" / "b"), lambda c: [c])  # a JSON list, not an object
    edit_card(make_model(tmp_path / "zoo" / "c"), lambda c: {**c, "val": {"psnr": "high"}})
    make_model(tmp_path / "zoo" / "d")
    r = invoke(["models", tmp_path / "zoo"])
    assert r.exit_code == 0, r.output
    assert "internal error" not in r.output
    assert r.stdout.count("dncnn") == 2  # a and d listed
    assert "unreadable: cannot load the model in" in r.stdout and "model.json is not an object" in r.stdout
    assert '"val.psnr" must be a number' in r.stdout
    r = invoke(["models", tmp_path / "zoo", "--json"])
    cards = {Path(c["path"]).name: c for c in json.loads(r.stdout)}
    assert sorted(cards) == ["a", "b", "c", "d"]
    assert cards["a"]["net"].startswith("dncnn") and "is not an object" in cards["b"]["error"]


@pytest.mark.parametrize("change, fragment", [
    (lambda c: [c], "model.json is not an object (it holds a list)"),
    (lambda c: {**c, "stride": 0}, '"stride" must be a whole number from 1 to 1024 (got 0)'),
    (lambda c: {**c, "stride": 4}, "stride is 4, but dncnn"),
    (lambda c: {**c, "image_channels": 7}, '"image_channels" must be 1 or 3'),
    (lambda c: {**c, "degrade": "gaussian:25"}, '"degrade" must be null or a list'),
    (lambda c: {**c, "format": "other"}, '"format" must be'),
    (lambda c: {**c, "canvas": [0, 5]}, '"canvas" must be null or [height, width]'),
])
def test_eval_refuses_a_damaged_model_json_in_one_line(tmp_path, change, fragment):
    model = edit_card(make_model(tmp_path / "m"), change)
    test = clean_images(tmp_path / "test", 1, 24)
    before = digests(model, test)
    r = invoke(["eval", model, test, "--baseline", "median", "--out", tmp_path / "ev"])
    one_line_error(r, fragment)
    assert digests(model, test) == before and not (tmp_path / "ev").exists()


def test_a_declared_canvas_is_capped_like_an_image_before_anything_is_allocated(tmp_path, monkeypatch):
    ae = make_model(tmp_path / "ae", "dense-autoencoder:code=4,width=8", canvas=[8, 8])
    assert invoke(["sample", ae, "--count", "1", "--out", tmp_path / "ok.png"]).exit_code == 0
    edit_card(ae, lambda c: {**c, "canvas": [100000, 100000]})
    r = invoke(["sample", ae, "--out", tmp_path / "s.png"])
    one_line_error(r, "the canvas that model.json in")
    assert "100000x100000" in r.stderr and "RESTOREKIT_MAX_PIXELS" in r.stderr
    assert not (tmp_path / "s.png").exists()
    # the same limit as images': lowered, it refuses the canvas the model was trained on
    edit_card(ae, lambda c: {**c, "canvas": [8, 8]})
    monkeypatch.setenv("RESTOREKIT_MAX_PIXELS", "50")
    one_line_error(invoke(["sample", ae, "--out", tmp_path / "s.png"]), "8x8 = 64 pixels, over the limit of 50")


def test_sample_refuses_code_statistics_that_do_not_belong_to_the_model(tmp_path):
    import torch
    from safetensors.torch import save_file

    ae = make_model(tmp_path / "ae", "dense-autoencoder:code=4,width=8", canvas=[8, 8], code_shape=[4])
    save_file({"mean": torch.zeros(7), "std": torch.ones(7)}, str(ae / "code.safetensors"))
    one_line_error(invoke(["sample", ae, "--out", tmp_path / "s.png"]), "have shape [7], but model.json says [4]")
    edit_card(ae, lambda c: {**c, "code_shape": None})
    one_line_error(invoke(["sample", ae, "--out", tmp_path / "s.png"]), "do not fit the network")
    (ae / "code.safetensors").write_bytes(b"\x00" * 3)
    one_line_error(invoke(["sample", ae, "--out", tmp_path / "s.png"]), "cannot read the code statistics")
    assert not (tmp_path / "s.png").exists()


# ---------------------------------------------------------------------------------------------------------------
# train --resume: the checkpoint must be this training's

TRAIN = ["--batch", "2", "--patch", "32", "--steps-per-epoch", "2", "--net", "resunet:4", "--precision", "fp32"]


def _rewrite_checkpoint(folder: Path, change) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = folder / "checkpoint.safetensors"
    with safe_open(str(path), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        state = json.loads(f.metadata()["state"])
    save_file(tensors, str(path), metadata={"state": json.dumps(change(state))})


def test_resume_on_other_training_images_is_refused(tmp_path):
    a = clean_images(tmp_path / "A")
    b = clean_images(tmp_path / "B", size=40)
    assert invoke(["train", a, "--out", tmp_path / "m", *TRAIN, "--steps", "2"]).exit_code == 0
    before = digests(tmp_path)
    r = invoke(["train", b, "--out", tmp_path / "m", *TRAIN, "--steps", "2", "--resume"])
    one_line_error(r, "--resume with other settings than the training in")
    assert "FOLDER" in r.stderr and "the training images" in r.stderr
    assert digests(tmp_path) == before


def test_resume_after_an_interrupt_with_other_settings_is_refused_naming_them(tmp_path, monkeypatch):
    from restorekit.learn import train as tr
    from tests.helpers import signal_on_call

    data = clean_images(tmp_path / "clean")
    common = [data, "--out", tmp_path / "m", *TRAIN, "--epochs", "3"]
    with monkeypatch.context() as m:
        signal_on_call(m, tr, "draw", 3)  # the first step of epoch 2: epoch 1 is checkpointed
        assert invoke(["train", *common]).exit_code == 130
    before = digests(tmp_path)
    r = invoke(["train", *common, "--resume", "--batch", "4", "--patch", "48", "--loss", "l1", "--lr", "0.05",
                "--degrade", "salt-pepper:0.2"])
    one_line_error(r, "(--batch, --degrade, --loss, --lr, --patch): give the same options")
    for other in (["--seed", "1"], ["--net", "resunet:8"], ["--epochs", "5"], ["--split", "0.6,0.2,0.2"]):
        one_line_error(invoke(["train", *common, "--resume", *other]), other[0])
    assert digests(tmp_path) == before
    # what may change: the time limit and the device
    r = invoke(["train", *common, "--resume", "--time-limit", "600", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "resuming after epoch 1" in r.stderr
    assert json.loads((tmp_path / "m" / "train.json").read_text())["history"]["epoch"] == [1, 2, 3]


def test_a_checkpoint_without_recorded_settings_is_held_to_its_model_json(tmp_path):
    data = clean_images(tmp_path / "clean")
    common = [data, "--out", tmp_path / "m", *TRAIN, "--steps", "2"]
    assert invoke(["train", *common]).exit_code == 0
    _rewrite_checkpoint(tmp_path / "m", lambda st: {k: v for k, v in st.items() if k != "settings"})
    one_line_error(invoke(["train", *common, "--resume", "--lr", "0.01"]), "(--lr)")
    assert invoke(["train", *common, "--resume"]).exit_code == 0
    (tmp_path / "m" / "model.json").write_text("[]")
    _rewrite_checkpoint(tmp_path / "m", lambda st: {k: v for k, v in st.items() if k != "settings"})
    one_line_error(invoke(["train", *common, "--resume"]), "does not record its settings")


@pytest.mark.parametrize("change", [
    lambda st: {**st, "epoch": "2"},
    lambda st: {**st, "report": {**st["report"], "steps_run": 10**9}},
    lambda st: {**st, "report": {**st["report"], "history": {"epoch": [1]}}},
    lambda st: {**st, "report": {**st["report"], "seconds": "soon"}},
    lambda st: [st],
])
def test_damaged_checkpoint_counters_are_refused(tmp_path, change):
    data = clean_images(tmp_path / "clean")
    common = [data, "--out", tmp_path / "m", *TRAIN, "--steps", "2"]
    assert invoke(["train", *common]).exit_code == 0
    _rewrite_checkpoint(tmp_path / "m", change)
    before = digests(tmp_path)
    one_line_error(invoke(["train", *common, "--resume"]), "cannot continue from the checkpoint")
    assert digests(tmp_path) == before


# ---------------------------------------------------------------------------------------------------------------
# eval --out: the output folder rules of every other command


def test_eval_never_replaces_a_users_files_without_overwrite(tmp_path):
    model = make_model(tmp_path / "m")
    test = clean_images(tmp_path / "test", 1, 24)
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "eval.json").write_text("precious")
    (ev / "compare.png").write_bytes(b"mine")
    before = digests(ev)
    args = ["eval", model, test, "--baseline", "median", "--out", ev]
    one_line_error(invoke(args), "already holds files; pass --overwrite")
    # eval.json that eval did not write (no "restorekit" mark) is not replaced even with --overwrite
    one_line_error(invoke([*args, "--overwrite"]), "is not one: it has no restorekit record")
    assert digests(ev) == before and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    # an eval's own folder: replaced with --overwrite only
    fresh = tmp_path / "ev2"
    assert invoke([*args[:-1], fresh]).exit_code == 0
    assert json.loads((fresh / "eval.json").read_text())["restorekit"]
    mine = digests(fresh)
    one_line_error(invoke([*args[:-1], fresh]), "pass --overwrite")
    assert digests(fresh) == mine
    r = invoke([*args[:-1], fresh, "--overwrite", "--seed", "3"])
    assert r.exit_code == 0, r.output
    assert digests(fresh) != mine and sorted(p.name for p in fresh.iterdir()) == ["compare.png", "eval.json"]


def test_ctrl_c_during_eval_writes_nothing(tmp_path, monkeypatch):
    from restorekit.learn import evaluate
    from tests.helpers import signal_on_call

    model = make_model(tmp_path / "m")
    test = clean_images(tmp_path / "test", 2, 24)
    signal_on_call(monkeypatch, evaluate, "scores", 2)
    r = invoke(["eval", model, test, "--baseline", "median", "--out", tmp_path / "ev"])
    assert r.exit_code == 130 and "nothing was written" in r.stderr
    assert not (tmp_path / "ev").exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# ---------------------------------------------------------------------------------------------------------------
# batch: the manifest is read before it is written, and no file the batch did not record is replaced

from tests.test_batch import TINY as BATCH, _interrupt_at, rows, tree  # noqa: E402

BATCH = [*BATCH, "--mode", "benchmark"]


def test_a_folder_of_results_whose_manifest_was_deleted_is_not_taken_over(tmp_path):
    tree(tmp_path / "in", ["a.png", "b.png"])
    assert invoke(["batch", "in", "B", *BATCH]).exit_code == 0
    (tmp_path / "B" / "manifest.sqlite").unlink()
    before = digests(tmp_path / "B")
    r = invoke(["batch", "in", "B", *BATCH, "--iters", "2"])
    one_line_error(r, "holds no batch manifest but has files where this batch would write")
    assert "and 2 more" in r.stderr  # a, b and index.html
    assert digests(tmp_path / "B") == before and not (tmp_path / "B" / "manifest.sqlite").exists()


def test_a_users_file_where_batch_would_write_is_refused_before_anything_starts(tmp_path):
    tree(tmp_path / "in", ["a.png", "b.png"])
    (tmp_path / "out" / "b").mkdir(parents=True)
    (tmp_path / "out" / "b" / "restored.png").write_bytes(b"mine")
    r = invoke(["batch", "in", "out", *BATCH])
    one_line_error(r, "restorekit batch never replaces what it did not record")
    assert "--overwrite" not in r.stderr and "--out" not in r.stderr  # batch's own words
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b"]  # nothing started: no a/, no manifest
    (tmp_path / "out" / "b" / "restored.png").unlink()
    (tmp_path / "out" / "b").rmdir()
    (tmp_path / "in" / "b.png").rename(tmp_path / "b.png")
    assert invoke(["batch", "in", "out", *BATCH]).exit_code == 0
    # --resume: an image new to the batch whose folder holds files, or a finished one with a stranger's file
    (tmp_path / "b.png").rename(tmp_path / "in" / "b.png")
    (tmp_path / "out" / "b").mkdir()
    (tmp_path / "out" / "b" / "restored.png").write_bytes(b"mine")
    before = digests(tmp_path / "out")
    one_line_error(invoke(["batch", "in", "out", *BATCH, "--resume"]),
                   "this batch has not written the results of 'b.png'")
    assert digests(tmp_path / "out") == before
    (tmp_path / "out" / "b" / "restored.png").unlink()
    (tmp_path / "out" / "a" / "restored.png").write_bytes(b"changed")  # a done image recomputed...
    (tmp_path / "out" / "a" / "notes.txt").write_text("mine")  # ...would take this with it
    before = digests(tmp_path / "out")
    one_line_error(invoke(["batch", "in", "out", *BATCH, "--resume"]),
                   "it holds 'notes.txt', which restorekit did not write")
    assert digests(tmp_path / "out") == before


def test_a_zero_byte_manifest_is_refused_without_being_written(tmp_path):
    tree(tmp_path / "in", ["a.png"])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "manifest.sqlite").write_bytes(b"")
    for args in (["batch", "in", "out", *BATCH, "--resume"], ["batch", "--status", "out"]):
        one_line_error(invoke(args), "is not a readable batch manifest")
        assert [p.name for p in (tmp_path / "out").iterdir()] == ["manifest.sqlite"]
        assert (tmp_path / "out" / "manifest.sqlite").stat().st_size == 0


def test_status_after_ctrl_c_or_a_kill_shows_nothing_running(tmp_path, monkeypatch):
    import socket
    import sqlite3
    import subprocess
    import sys

    tree(tmp_path / "in", ["a.png", "b.png", "c.png"])
    with monkeypatch.context() as m:
        _interrupt_at(m, "b.png")
        assert invoke(["batch", "in", "out", *BATCH]).exit_code == 130
    got = rows(tmp_path / "out")
    assert got["b.png"]["status"] == "pending" and got["b.png"]["attempts"] == 1
    r = invoke(["batch", "--status", "out"])
    assert r.exit_code == 0 and "pending 2  running 0  done 1" in r.stdout, r.output
    # a batch killed (SIGKILL) leaves 'running' rows and its name in batch.lock: a process that is gone
    db = sqlite3.connect(tmp_path / "out" / "manifest.sqlite")
    db.execute("UPDATE items SET status = 'running' WHERE key = 'b.png'")
    db.commit()
    db.close()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = tmp_path / "out" / "batch.lock"
    lock.write_text(f"{socket.gethostname()}:{dead.pid}\n")
    r = invoke(["batch", "--status", "out", "--json"])
    assert json.loads(r.stdout)["counts"] == {"pending": 2, "running": 0, "done": 1, "failed": 0}
    lock.write_text(f"{socket.gethostname()}:{os.getpid()}\n")  # a live batch: its rows are running
    r = invoke(["batch", "--status", "out", "--json"])
    assert json.loads(r.stdout)["counts"]["running"] == 1


# ---------------------------------------------------------------------------------------------------------------
# visualize --shape: capped like an image, before the network is even opened


def test_visualize_caps_shape_before_allocating(tmp_path, monkeypatch):
    import restorekit.cli.inspect as cli_inspect

    def never(*a, **k):
        raise AssertionError("the network was opened")

    with monkeypatch.context() as m:
        m.setattr(cli_inspect, "_open", never)
        r = invoke(["visualize", "faces", "--layer", "fc", "--unit", "1", "--shape", "1,100000,100000"])
        one_line_error(r, "100000x100000 = 10000.0 million pixels, over the limit")
        one_line_error(invoke(["visualize", "faces", "--layer", "fc", "--unit", "1", "--shape", "100000,8,8"]),
                       "100000 channels is over the limit of 64")
    assert not (tmp_path / "runs").exists()
    monkeypatch.setenv("RESTOREKIT_MAX_PIXELS", "100")
    one_line_error(invoke(["visualize", "faces", "--layer", "fc", "--unit", "1"]),
                   "declares (H x W) is 25x25 = 625 pixels, over the limit of 100")
