"""restorekit train and --prior learned: a model folder written, resumed, loaded and used."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import restorekit
from restorekit import cli
from restorekit.errors import UsageError
from restorekit.plugins import reset_host


@pytest.fixture(autouse=True)
def _fresh(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reset_host()
    yield
    reset_host()


def invoke(args):
    return CliRunner().invoke(cli.get_app(), [str(a) for a in args], catch_exceptions=False)


def clean_images(folder: Path, n: int = 5, size: int = 48) -> Path:
    import imageio.v3 as iio

    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for k in range(n):
        img = 0.5 + 0.3 * np.sin((3 + k) * xx + k) * np.cos((2 + k) * yy) + 0.15 * ((xx + yy + k / 7) % 0.5 > 0.25)
        iio.imwrite(folder / f"im{k}.png", (np.clip(img, 0, 1) * 255).round().astype(np.uint8))
    return folder


TINY_TRAIN = ["--steps", "4", "--batch", "2", "--patch", "32", "--val-every", "2", "--width", "8"]


def test_train_writes_a_model_folder_the_learned_prior_uses(tmp_path):
    data = clean_images(tmp_path / "clean")
    r = invoke(["train", data, "--out", tmp_path / "m", *TINY_TRAIN])
    assert r.exit_code == 0, r.output
    m = tmp_path / "m"
    assert {p.name for p in m.iterdir()} == {"model.safetensors", "model.json", "checkpoint.pt", "train.json"}
    card = json.loads((m / "model.json").read_text())
    assert card["format"] == "restorekit-model" and card["architecture"] == "resunet"
    assert card["config"] == {"image_channels": 1, "channels": 8, "noise_map": True}
    assert card["sigma_range"] == [0.0, 55.0] and card["trained"]["images"] == {"train": 3, "val": 1, "test": 1}
    report = json.loads((m / "train.json").read_text())
    assert report["steps_run"] == 4 and report["history"]["step"] == [2, 4]
    assert "best validation PSNR" in r.stdout
    img = clean_images(tmp_path / "one", 1, 32) / "im0.png"
    res = restorekit.restore(str(img), degrade="gaussian:25", prior=f"learned:model={m}")
    assert res.restored.shape == (1, 32, 32) and np.isfinite(res.metrics["psnr"])


def test_a_short_training_learns_to_denoise(tmp_path):
    """60 steps on smooth images already remove part of sigma-25 noise (the feature, not a stub: the
    untrained network's output is about 1 dB worse than the noisy image)."""
    from restorekit.learn.model import denoise, load
    from restorekit.learn.train import TrainSettings, train

    data = clean_images(tmp_path / "clean", 6, 64)
    train(TrainSettings(folder=data, out=tmp_path / "m", steps=60, batch=8, patch=32, width=8, val_every=30,
                        lr=3e-3, precision="fp32"))
    model = load(tmp_path / "m")
    import imageio.v3 as iio

    clean = iio.imread(data / "im1.png").astype(np.float32)[None] / 255
    noisy = clean + np.random.default_rng(5).standard_normal(clean.shape).astype(np.float32) * 25 / 255
    out = denoise(model, noisy, 25 / 255)

    def psnr(x):
        return -10 * np.log10(np.mean((np.clip(x, 0, 1) - clean) ** 2))

    assert psnr(out) > psnr(noisy) + 1.5


def test_out_with_files_needs_resume_and_resume_continues(tmp_path):
    data = clean_images(tmp_path / "clean")
    assert invoke(["train", data, "--out", tmp_path / "m", *TINY_TRAIN]).exit_code == 0
    again = invoke(["train", data, "--out", tmp_path / "m", *TINY_TRAIN])
    assert again.exit_code == 2 and "--resume" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    longer = [*TINY_TRAIN[:1], "8", *TINY_TRAIN[2:]]
    r = invoke(["train", data, "--out", tmp_path / "m", *longer, "--resume"])
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "m" / "train.json").read_text())
    assert report["steps_run"] == 8 and report["history"]["step"] == [2, 4, 6, 8]
    assert "resuming at step 4" in r.stderr


def test_ctrl_c_keeps_the_best_model_and_says_resume(tmp_path, monkeypatch):
    from restorekit.learn import train as tr

    data = clean_images(tmp_path / "clean")
    real = tr.ImageFolder.batch
    calls = [0]

    def batch(self, rng, size, patch):
        calls[0] += 1
        if calls[0] == 5:  # after the validation at step 2 and 4
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
        return real(self, rng, size, patch)

    monkeypatch.setattr(tr.ImageFolder, "batch", batch)
    r = invoke(["train", data, "--out", tmp_path / "m", *[*TINY_TRAIN[:1], "100", *TINY_TRAIN[2:]]])
    assert r.exit_code == 130
    assert "best model so far" in r.stderr and "--resume" in r.stderr
    assert (tmp_path / "m" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "m" / "train.json").read_text())["stopped_by"] == "interrupted"


def test_out_never_touches_the_training_images(tmp_path):
    """--out naming the training folder itself is refused (it holds files), with or without --resume,
    and every image keeps its bytes."""
    data = clean_images(tmp_path / "clean")
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    for extra in ([], ["--resume"]):
        r = invoke(["train", data, "--out", data, *TINY_TRAIN, *extra])
        assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before


@pytest.mark.parametrize("args, fragment", [
    (["--sigma-range", "30"], "--sigma-range takes 2"),
    (["--sigma-range", "40,20"], "--sigma-range must be"),
    (["--patch", "30"], "--patch must be a multiple of 4"),
    (["--split", "0.5,0,0.5"], "--split"),
    (["--channels", "2"], "--channels must be 1 or 3"),
])
def test_bad_training_options_are_one_line_errors(tmp_path, args, fragment):
    data = clean_images(tmp_path / "clean")
    r = invoke(["train", data, "--out", tmp_path / "m", *TINY_TRAIN, *args])
    assert r.exit_code == 2 and fragment in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_a_missing_or_empty_folder_is_a_usage_error(tmp_path):
    r = invoke(["train", tmp_path / "nowhere", "--out", tmp_path / "m"])
    assert r.exit_code == 2 and "does not exist" in r.stderr
    (tmp_path / "empty").mkdir()
    r = invoke(["train", tmp_path / "empty", "--out", tmp_path / "m"])
    assert r.exit_code == 2 and "no images" in r.stderr


def test_learned_refuses_what_it_cannot_do(tmp_path):
    with pytest.raises(UsageError, match="does not fill missing pixels"):
        restorekit.restore(degrade="bernoulli:0.5", prior="learned")
    with pytest.raises(UsageError, match="not a restorekit model folder"):
        restorekit.restore(degrade="gaussian:25", prior=f"learned:model={tmp_path}")
    with pytest.raises(UsageError, match="beyond what the model was trained on"):
        restorekit.restore(degrade="gaussian:100", prior="learned")


def test_the_shipped_model_denoises_gray_and_colour():
    """The shipped gaussian model on the embedded image: colour (through the opponent channels) and gray."""
    colour = restorekit.restore(degrade="gaussian:25", prior="learned")
    assert colour.restored.shape[0] == 3
    assert colour.metrics["psnr"] > colour.baseline["psnr"] + 8
    gray = restorekit.restore((np.moveaxis(colour.reference, 0, -1).mean(-1) * 255).round().astype(np.uint8),
                              degrade="gaussian:25", prior="learned")
    assert gray.metrics["psnr"] > gray.baseline["psnr"] + 8


def test_opponent_transform_is_orthonormal_and_round_trips():
    from restorekit.learn.model import _OPP

    assert np.allclose(_OPP @ _OPP.T, np.eye(3))


def test_model_files_are_safetensors_not_pickles(tmp_path):
    data = clean_images(tmp_path / "clean")
    assert invoke(["train", data, "--out", tmp_path / "m", *TINY_TRAIN]).exit_code == 0
    from safetensors import safe_open

    with safe_open(str(tmp_path / "m" / "model.safetensors"), "pt") as f:
        assert f.metadata()["format"] == "restorekit-model" and len(list(f.keys())) > 4

