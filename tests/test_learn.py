"""restorekit train, eval, models, sample and --prior learned: model folders written, resumed, loaded, used."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

import restorekit
from restorekit.errors import UsageError
from tests.helpers import invoke, one_line_error


pytestmark = pytest.mark.usefixtures("fresh_host")  # chdir into tmp_path, fresh plugin host (conftest.py)


def clean_images(folder: Path, n: int = 5, size: int = 48) -> Path:
    import imageio.v3 as iio

    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for k in range(n):
        img = 0.5 + 0.3 * np.sin((3 + k) * xx + k) * np.cos((2 + k) * yy) + 0.15 * ((xx + yy + k / 7) % 0.5 > 0.25)
        iio.imwrite(folder / f"im{k}.png", (np.clip(img, 0, 1) * 255).round().astype(np.uint8))
    return folder


TINY_TRAIN = ["--steps", "4", "--batch", "2", "--patch", "32", "--steps-per-epoch", "2", "--net", "resunet:8"]
TINY_FACES = ["--dataset", "faces", "--batch", "8", "--steps-per-epoch", "3", "--precision", "fp32"]


def test_train_writes_a_model_folder_the_learned_prior_uses(tmp_path):
    data = clean_images(tmp_path / "clean")
    r = invoke(["train", data, "--out", tmp_path / "m", *TINY_TRAIN])
    assert r.exit_code == 0, r.output
    m = tmp_path / "m"
    assert {p.name for p in m.iterdir()} == {"model.safetensors", "model.json", "checkpoint.safetensors",
                                             "train.json", "curves.png"}
    card = json.loads((m / "model.json").read_text())
    assert card["format"] == "restorekit-model" and card["architecture"] == "resunet"
    assert card["config"] == {"image_channels": 1, "channels": 8, "noise_map": True}
    assert card["sigma_range"] == [0.0, 55.0] and card["data"]["split"] == {"train": 3, "val": 1, "test": 1}
    assert set(card["val"]) >= {"psnr", "ssim", "loss", "input_psnr"} and set(card["test"]) >= {"psnr", "ssim"}
    report = json.loads((m / "train.json").read_text())
    assert report["steps_run"] == 4 and report["history"]["epoch"] == [1, 2] and report["history"]["step"] == [2, 4]
    assert "best validation PSNR" in r.stdout
    img = clean_images(tmp_path / "one", 1, 32) / "im0.png"
    res = restorekit.restore(str(img), mode="benchmark", degrade="gaussian:25", prior=f"learned:model={m}")
    assert res.restored.shape == (1, 32, 32) and np.isfinite(res.metrics["psnr"])


def test_a_short_training_learns_to_denoise(tmp_path):
    """60 steps on smooth images already remove part of sigma-25 noise (the feature, not a stub: the
    untrained network's output is about 1 dB worse than the noisy image)."""
    from restorekit.learn.model import denoise, load
    from restorekit.learn.train import TrainSettings, train

    data = clean_images(tmp_path / "clean", 6, 64)
    train(TrainSettings(folder=data, out=tmp_path / "m", steps=60, steps_per_epoch=30, batch=8, patch=32,
                        net="resunet:8", lr=3e-3, precision="fp32"))
    model = load(tmp_path / "m")
    import imageio.v3 as iio

    clean = iio.imread(data / "im1.png").astype(np.float32)[None] / 255
    noisy = clean + np.random.default_rng(5).standard_normal(clean.shape).astype(np.float32) * 25 / 255
    out = denoise(model, noisy, 25 / 255)

    def psnr(x):
        return -10 * np.log10(np.mean((np.clip(x, 0, 1) - clean) ** 2))

    assert psnr(out) > psnr(noisy) + 1.5


@pytest.mark.parametrize("net, lr", [("conv-autoencoder:channels=4", "3e-3"), ("conv-autoencoder:channels=4,skips=true", "3e-3"),
                                     ("dense-autoencoder:code=16,width=32", "3e-3"), ("dncnn:depth=4,channels=8", "1e-3"),
                                     ("skip:levels=2,channels=8", "3e-3"), ("unet:levels=2,feature_scale=16", "3e-3")])
def test_every_network_kind_trains_on_faces_and_lowers_the_loss(tmp_path, net, lr):
    r = invoke(["train", "--degrade", "gaussian:25", "--net", net, "--epochs", "6", "--lr", lr,
                *TINY_FACES, "--out", tmp_path / "m"])
    assert r.exit_code == 0, r.output
    h = json.loads((tmp_path / "m" / "train.json").read_text())["history"]
    assert len(h["val_loss"]) == 6 and min(h["val_loss"][1:]) < h["val_loss"][0]
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    assert card["net"].startswith(net.split(":")[0]) and card["degrade"] == ["gaussian:sigma=25.0,clip=true"]
    assert card["data"]["dataset"] == "faces" and card["data"]["split"] == {"train": 140, "val": 40, "test": 20}


def test_resume_continues_from_the_saved_epoch_exactly(tmp_path, monkeypatch):
    """Four epochs straight == four epochs interrupted during the third and resumed: the weights,
    optimizer moments, schedule and random streams all came back from the checkpoint (no pickle)."""
    from safetensors.torch import load_file

    from restorekit.learn import train as tr

    data = clean_images(tmp_path / "clean")
    common = ["--batch", "2", "--patch", "32", "--steps-per-epoch", "2", "--net", "resunet:4", "--precision", "fp32",
              "--epochs", "4"]
    assert invoke(["train", data, "--out", tmp_path / "a", *common]).exit_code == 0
    real, calls = tr.draw, [0]

    def draw(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 6:  # the second step of epoch 3: epoch 2's checkpoint is the last one
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(tr, "draw", draw)
    assert invoke(["train", data, "--out", tmp_path / "b", *common]).exit_code == 130
    monkeypatch.setattr(tr, "draw", real)
    one_line_error(invoke(["train", data, "--out", tmp_path / "b", *common]), "--resume")
    r = invoke(["train", data, "--out", tmp_path / "b", *common, "--resume"])
    assert r.exit_code == 0, r.output
    assert "resuming after epoch 2" in r.stderr
    a, b = (load_file(str(tmp_path / x / "checkpoint.safetensors")) for x in "ab")
    assert set(a) == set(b) and any(k.startswith("opt.") for k in a)
    for k in a:
        assert np.allclose(a[k].numpy(), b[k].numpy(), atol=1e-6), k
    ha = json.loads((tmp_path / "a" / "train.json").read_text())["history"]
    hb = json.loads((tmp_path / "b" / "train.json").read_text())["history"]
    assert hb["epoch"] == [1, 2, 3, 4] and np.allclose(ha["val_psnr"], hb["val_psnr"], atol=1e-4)


def test_resume_takes_the_shared_lock(tmp_path, monkeypatch):
    """train --resume locks its folder as every command does (restorekit/session/outdir.py): refused while
    another live process holds it or when the folder holds an input, locked while it trains, its lock gone
    when it ends; a lock a dead training left is no obstacle."""
    import shutil
    import subprocess
    import sys

    from restorekit.learn import train as tr
    from restorekit.session.outdir import LOCK_NAME, host_tag

    data = clean_images(tmp_path / "clean")
    out = tmp_path / "m"
    assert invoke(["train", data, "--out", out, *TINY_TRAIN, "--time-limit", "1e-9"]).exit_code == 0  # a step
    (out / LOCK_NAME).write_text(json.dumps({"pid": os.getppid(), "host": host_tag()}))
    one_line_error(invoke(["train", data, "--out", out, *TINY_TRAIN, "--resume"]), "in use by another restorekit run")
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    (out / LOCK_NAME).write_text(json.dumps({"pid": dead, "host": host_tag()}))
    real, held = tr.draw, []

    def draw(*args, **kwargs):
        held.append(json.loads((out / LOCK_NAME).read_text())["pid"])
        return real(*args, **kwargs)

    monkeypatch.setattr(tr, "draw", draw)
    r = invoke(["train", data, "--out", out, *TINY_TRAIN, "--resume"])
    assert r.exit_code == 0, r.output
    assert held and set(held) == {os.getpid()} and not (out / LOCK_NAME).exists()
    shutil.copytree(data, out / "clean")
    one_line_error(invoke(["train", out / "clean", "--out", out, *TINY_TRAIN, "--resume"]), "an input")


def test_ctrl_c_keeps_the_best_model_and_says_resume(tmp_path, monkeypatch):
    from restorekit.learn import train as tr

    data = clean_images(tmp_path / "clean")
    real = tr.draw
    calls = [0]

    def draw(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 5:  # after the epochs ending at steps 2 and 4
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(tr, "draw", draw)
    r = invoke(["train", data, "--out", tmp_path / "m", *[*TINY_TRAIN[:1], "100", *TINY_TRAIN[2:]]])
    assert r.exit_code == 130
    assert "best model so far" in r.stderr and "--resume" in r.stderr
    assert (tmp_path / "m" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "m" / "train.json").read_text())["stopped_by"] == "interrupted"


def test_overwrite_keeps_the_earlier_model_until_a_new_one_is_written(tmp_path):
    """train --overwrite sets the earlier model aside: a new training that fails before writing a model
    puts it back byte for byte; one that writes a model replaces it and leaves nothing aside; a folder
    holding a file train did not write is refused untouched."""
    from tests.helpers import digests

    data = clean_images(tmp_path / "clean")
    m = tmp_path / "m"
    assert invoke(["train", data, "--out", m, *TINY_TRAIN]).exit_code == 0
    before = digests(m)
    broken = clean_images(tmp_path / "broken")
    (broken / "im2.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    one_line_error(invoke(["train", broken, "--out", m, *TINY_TRAIN, "--overwrite"]), "cannot read training image")
    assert digests(m) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "clean", "m"]  # nothing left aside
    r = invoke(["train", data, "--out", m, *TINY_TRAIN, "--seed", "3", "--overwrite"])
    assert r.exit_code == 0, r.output
    weights = str(m / "model.safetensors")
    assert digests(m)[weights] != before[weights]  # the new training's (another seed)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "clean", "m"]
    (m / "notes.txt").write_text("mine")
    kept = digests(m)
    one_line_error(invoke(["train", data, "--out", m, *TINY_TRAIN, "--overwrite"]), "which train did not write")
    assert digests(m) == kept


def test_out_never_touches_the_training_images(tmp_path):
    """--out naming the training folder itself is refused, with or without --resume, and every image
    keeps its bytes."""
    data = clean_images(tmp_path / "clean")
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    for extra in ([], ["--resume"]):
        r = invoke(["train", data, "--out", data, *TINY_TRAIN, *extra])
        assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before


@pytest.mark.parametrize("args, fragment", [
    (["--sigma-range", "30"], "--sigma-range takes 2"),
    (["--sigma-range", "40,20"], "--sigma-range must be"),
    (["--patch", "2"], "--patch must be at least"),
    (["--split", "0.5,0,0.5"], "--split"),
    (["--channels", "2"], "--channels must be 1 or 3"),
    (["--loss", "hinge"], "unknown --loss 'hinge'"),
    (["--net", "identity"], "not a network"),
    (["--net", "skpi"], "did you mean 'skip'"),
    (["--degrade", "downsample:2"], "same size"),
    (["--dataset", "faces"], "exactly one source"),
    (["--colour-spaces", "lab"], "--colour-spaces takes distinct names of opponent, pca, rgb"),
    (["--colour-spaces", "rgb,rgb"], "--colour-spaces takes distinct names"),
    (["--colour-spaces", "rgb", "--channels", "3"], "--colour-spaces trains a gray model"),
    (["--colour-spaces", "rgb", "--degrade", "gaussian:25"], "--colour-spaces trains a gray model"),
    (["--colour-spaces", "rgb", "--net", "dncnn"], "told the noise level (--net resunet), not dncnn"),
])
def test_bad_training_options_are_one_line_errors(tmp_path, args, fragment):
    data = clean_images(tmp_path / "clean")
    r = invoke(["train", data, "--out", tmp_path / "m", *TINY_TRAIN, *args])
    one_line_error(r, fragment)
    assert not (tmp_path / "m").exists()


def test_a_missing_or_empty_folder_or_a_corrupt_image_is_a_usage_error(tmp_path):
    one_line_error(invoke(["train", tmp_path / "nowhere", "--out", tmp_path / "m"]), "does not exist")
    (tmp_path / "empty").mkdir()
    one_line_error(invoke(["train", tmp_path / "empty", "--out", tmp_path / "m"]), "no images")
    data = clean_images(tmp_path / "clean")
    (data / "im2.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    one_line_error(invoke(["train", data, "--out", tmp_path / "m2", *TINY_TRAIN]), "cannot read training image")
    one_line_error(invoke(["train", "--dataset", "fcaes", "--out", tmp_path / "m3"]), "did you mean 'faces'")
    one_line_error(invoke(["train", "--out", tmp_path / "m4"]), "exactly one source")


def noisy_pairs(root: Path, n: int = 5) -> tuple[Path, Path]:
    import imageio.v3 as iio

    high = clean_images(root / "high", n)
    (root / "low").mkdir()
    rng = np.random.default_rng(0)
    for p in sorted(high.iterdir()):
        img = iio.imread(p).astype(np.float32) / 255
        iio.imwrite(root / "low" / p.name, (np.clip(img + rng.normal(0, 0.1, img.shape), 0, 1) * 255).astype(np.uint8))
    return root / "low", high


def test_pairs_train_a_model_on_their_own_degradation(tmp_path):
    low, high = noisy_pairs(tmp_path)
    r = invoke(["train", "--pairs", low, high, "--net", "dncnn:depth=3,channels=8", "--out", tmp_path / "m",
                "--batch", "2", "--patch", "32", "--epochs", "2", "--steps-per-epoch", "2"])
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    assert card["data"]["pairs"] == [str(low), str(high)] and card["degrade"] is None and card["noise_map"] is False
    # validation is scored on the low images of the pairs: the input PSNR is theirs (noise 0.1 -> ~20 dB)
    assert 17 < card["val"]["input_psnr"] < 23


def test_unmatched_pairs_are_listed_in_one_line(tmp_path):
    low, high = noisy_pairs(tmp_path)
    (low / "im1.png").rename(low / "other.png")
    r = invoke(["train", "--pairs", low, high, "--out", tmp_path / "m"])
    one_line_error(r, "unmatched")
    assert "other" in r.stderr and "im1" in r.stderr


def test_mixed_degradations_are_recorded_and_drawn(tmp_path):
    from restorekit.learn.train import Degrader, TrainSettings
    from restorekit.plugins import get_host

    s = TrainSettings(out=tmp_path / "m", dataset="faces", degrade=("gaussian:25", "salt-pepper:0.2"))
    d = Degrader(s, get_host().registry)
    assert d.canonical()[0].startswith("gaussian:sigma=25.0") and d.canonical()[1].startswith("salt-pepper:")
    clean = np.full((40, 1, 8, 8), 0.5, np.float32)
    low, sig = d.batch(clean, np.random.default_rng(0))
    impulses = np.isin(low, (0.0, 1.0)).reshape(40, -1).mean(1)
    # both kinds were drawn: patches with ~20% impulses and patches with none (Gaussian noise hits 0 or 1
    # exactly almost never)
    assert sig is None and (impulses > 0.05).sum() >= 5 and (impulses == 0).sum() >= 5


@pytest.mark.parametrize("loss", ["mse", "l1", "bce", "ssim"])
def test_each_loss_trains(tmp_path, loss):
    r = invoke(["train", "--degrade", "gaussian:25", "--net", "dncnn:depth=3,channels=4", "--loss", loss,
                "--epochs", "1", *TINY_FACES, "--out", tmp_path / "m"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "m" / "model.json").read_text())["loss"] == loss


def test_the_ssim_loss_agrees_with_scikit_image():
    import torch
    from skimage.metrics import structural_similarity

    from restorekit.learn.train import ssim

    rng = np.random.default_rng(0)
    a = rng.random((1, 1, 40, 40)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1).astype(np.float32)
    ours = float(ssim(torch.from_numpy(a), torch.from_numpy(b))[0])
    ref = structural_similarity(a[0, 0], b[0, 0], data_range=1.0, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, win_size=7)
    assert abs(ours - ref) < 0.03


def test_eval_numbers_equal_a_direct_computation(tmp_path):
    import torch

    from restorekit.plugins import get_host
    from restorekit.run.problem import ForwardModel, build_problem

    data = clean_images(tmp_path / "clean")
    assert invoke(["train", data, "--out", tmp_path / "m", *TINY_TRAIN]).exit_code == 0
    test = clean_images(tmp_path / "test", 2, 40)
    r = invoke(["eval", tmp_path / "m", test, "--degrade", "gaussian:25", "--baseline", "tv", "--json"])
    one_line_error(r, "solver prior")
    r = invoke(["eval", tmp_path / "m", test, "--degrade", "gaussian:25", "--json", "--out", tmp_path / "ev"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["methods"][:2] == ["input", "model"] and res["images"] == ["im0.png", "im1.png"]
    import imageio.v3 as iio

    reg = get_host().registry
    for i, name in enumerate(res["images"]):
        clean = iio.imread(test / name).astype(np.float32)[None] / 255
        problem = build_problem(clean, ForwardModel([reg.create("degradation", "gaussian:25")]), mode="benchmark",
                                seed=i)
        problem.device = torch.device("cpu")
        out = reg.create("prior", f"learned:model={tmp_path / 'm'}").solve(problem)[0].numpy()
        for method, img in (("input", problem.observation[0].numpy()), ("model", out)):
            mse = np.mean((np.clip(img, 0, 1).astype(np.float64) - clean) ** 2)
            assert res["per_image"][method]["mse"][i] == pytest.approx(mse, rel=1e-5)
            assert res["per_image"][method]["psnr"][i] == pytest.approx(10 * np.log10(1 / mse), abs=1e-4)
            assert res["per_image"][method]["mae"][i] == pytest.approx(np.mean(np.abs(np.clip(img, 0, 1) - clean)),
                                                                       rel=1e-5)
    for m in res["methods"]:
        assert res["mean"][m]["psnr"] == pytest.approx(np.mean(res["per_image"][m]["psnr"]))
    assert (tmp_path / "ev" / "eval.json").is_file() and (tmp_path / "ev" / "compare.png").is_file()


def test_eval_needs_a_degradation_for_a_noise_range_model(tmp_path):
    data = clean_images(tmp_path / "clean")
    assert invoke(["train", data, "--out", tmp_path / "m", *TINY_TRAIN]).exit_code == 0
    one_line_error(invoke(["eval", tmp_path / "m", data]), "give --degrade")


def test_models_lists_the_model_folders(tmp_path):
    data = clean_images(tmp_path / "clean")
    assert invoke(["train", data, "--out", tmp_path / "zoo" / "a", *TINY_TRAIN]).exit_code == 0
    assert invoke(["train", data, "--out", tmp_path / "zoo" / "b", *TINY_TRAIN, "--degrade", "gaussian:10",
                   "--net", "dncnn:depth=3,channels=4"]).exit_code == 0
    r = invoke(["models", tmp_path / "zoo", "--json"])
    assert r.exit_code == 0, r.output
    cards = json.loads(r.stdout)
    assert [Path(c["path"]).name for c in cards] == ["a", "b"]
    assert cards[1]["degrade"][0].startswith("gaussian:sigma=10.0") and cards[1]["net"].startswith("dncnn:")
    r = invoke(["models", tmp_path / "zoo"])
    assert r.exit_code == 0 and "dncnn" in r.stdout and "resunet" in r.stdout
    one_line_error(invoke(["models", tmp_path / "nowhere"]), "does not exist")


def test_sample_decodes_random_codes_of_an_autoencoder(tmp_path):
    import imageio.v3 as iio

    r = invoke(["train", "--dataset", "faces", "--degrade", "gaussian:10", "--net", "dense-autoencoder:code=8,width=32",
                "--epochs", "2", "--batch", "8", "--steps-per-epoch", "3", "--out", tmp_path / "ae"])
    assert r.exit_code == 0, r.output
    r = invoke(["sample", tmp_path / "ae", "--count", "4", "--out", tmp_path / "s.png"])
    assert r.exit_code == 0, r.output
    grid = iio.imread(tmp_path / "s.png")
    assert grid.shape[0] == grid.shape[1] and grid.shape[0] % (2 * 25 + 1) == 0  # 2x2 faces, magnified
    assert grid.std() > 1  # not a blank picture
    one_line_error(invoke(["sample", tmp_path / "ae", "--out", tmp_path / "s.png"]), "--overwrite")
    data = clean_images(tmp_path / "clean")
    assert invoke(["train", data, "--out", tmp_path / "den", *TINY_TRAIN]).exit_code == 0
    one_line_error(invoke(["sample", tmp_path / "den", "--out", tmp_path / "t.png"]), "not an autoencoder")


def test_a_model_of_the_wrong_channel_count_is_refused(tmp_path):
    data = clean_images(tmp_path / "clean")
    assert invoke(["train", data, "--out", tmp_path / "m", *TINY_TRAIN, "--channels", "3", "--degrade",
                   "gaussian:25", "--net", "dncnn:depth=3,channels=4"]).exit_code == 0
    gray = clean_images(tmp_path / "one", 1, 32) / "im0.png"
    with pytest.raises(UsageError, match="takes 3-channel images; this one has 1"):
        restorekit.restore(str(gray), degrade="gaussian:25", prior=f"learned:model={tmp_path / 'm'}")


def test_a_dense_model_tiles_larger_images_and_refuses_smaller_ones(tmp_path):
    from restorekit.learn.model import apply, load

    r = invoke(["train", "--dataset", "faces", "--degrade", "gaussian:10", "--net", "dense-autoencoder:code=8,width=32",
                "--epochs", "1", "--batch", "8", "--steps-per-epoch", "2", "--out", tmp_path / "ae"])
    assert r.exit_code == 0, r.output
    model = load(tmp_path / "ae")
    assert model.canvas == (25, 25)
    out = apply(model, np.random.default_rng(0).random((1, 60, 47)).astype(np.float32))
    assert out.shape == (1, 60, 47) and np.isfinite(out).all()
    with pytest.raises(UsageError, match="takes 25x25 images"):
        apply(model, np.zeros((1, 20, 30), np.float32))


def test_tiling_matches_the_whole_image_away_from_tile_seams(tmp_path, monkeypatch):
    from restorekit.learn import model as mod

    data = clean_images(tmp_path / "clean")
    assert invoke(["train", data, "--out", tmp_path / "m", *TINY_TRAIN, "--degrade", "gaussian:25",
                   "--net", "dncnn:depth=3,channels=4"]).exit_code == 0
    model = mod.load(tmp_path / "m")
    img = np.random.default_rng(1).random((1, 70, 90)).astype(np.float32)
    whole = mod.apply(model, img)
    monkeypatch.setattr(mod, "TILE", 32)
    monkeypatch.setattr(mod, "OVERLAP", 12)
    tiled = mod.apply(model, img)
    assert tiled.shape == whole.shape
    # a 3-layer net sees 3 pixels each way: the ramps give tile edges little weight, so the blend is close
    assert np.abs(tiled - whole).mean() < 2e-3 and np.abs(tiled - whole).max() < 0.1


def test_learned_refuses_what_it_cannot_do(tmp_path):
    with pytest.raises(UsageError, match="does not fill missing pixels"):
        restorekit.restore(degrade="bernoulli:0.5", prior="learned")
    with pytest.raises(UsageError, match="not a restorekit model folder"):
        restorekit.restore(degrade="gaussian:25", prior=f"learned:model={tmp_path}")
    with pytest.raises(UsageError, match="beyond what the model was trained on"):
        restorekit.restore(degrade="gaussian:100", prior="learned")


def test_a_blind_model_restores_the_degradation_it_was_trained_on(tmp_path):
    """A model trained with --degrade salt-pepper is applied as is (no sigma), masks or not."""
    r = invoke(["train", "--dataset", "faces", "--degrade", "salt-pepper:0.1", "--net", "conv-autoencoder:4",
                "--epochs", "1", *TINY_FACES, "--out", tmp_path / "m"])
    assert r.exit_code == 0, r.output
    from skimage.data import lfw_subset

    face = (lfw_subset()[0] * 255).round().astype(np.uint8)
    res = restorekit.restore(face, mode="benchmark", degrade="salt-pepper:0.1", prior=f"learned:model={tmp_path / 'm'}")
    assert res.restored.shape == (1, 25, 25) and np.isfinite(res.metrics["psnr"])


def test_the_shipped_model_denoises_gray_and_colour():
    """The shipped gaussian model on the embedded image: colour (through the opponent channels) and gray."""
    colour = restorekit.restore(degrade="gaussian:25", prior="learned")
    assert colour.restored.shape[0] == 3
    assert colour.metrics["psnr"] > colour.baseline["psnr"] + 8
    gray = restorekit.restore((np.moveaxis(colour.reference, 0, -1).mean(-1) * 255).round().astype(np.uint8),
                              mode="benchmark", degrade="gaussian:25", prior="learned")
    assert gray.metrics["psnr"] > gray.baseline["psnr"] + 8


def test_opponent_transform_is_orthonormal_and_round_trips():
    from restorekit.learn.model import _OPP

    assert np.allclose(_OPP @ _OPP.T, np.eye(3))


def test_the_colour_spaces_a_gray_model_denoises_in():
    """opponent, pca (the image's principal axes, strongest first) and rgb are orthonormal; each gives a
    denoised image, and they differ (each is a solver of its own in auto's SURE mix)."""
    from restorekit.errors import UsageError
    from restorekit.learn.model import colour_basis, denoise, load, resolve

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48] / 48
    base = 0.5 + 0.3 * np.sin(6 * xx) * np.cos(4 * yy)
    clean = np.stack([base, 0.8 * base + 0.1, 0.5 - 0.3 * (base - 0.5)]).astype(np.float32)
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1).astype(np.float32)
    for space in ("opponent", "pca", "rgb"):
        t = colour_basis(noisy, space)
        assert np.allclose(t @ t.T, np.eye(3), atol=1e-9)
    t = colour_basis(noisy, "pca")
    variances = [float(np.var(np.tensordot(t[k], noisy, 1))) for k in range(3)]
    assert variances == sorted(variances, reverse=True) and variances[0] > 5 * variances[1]
    model = load(resolve("gaussian"))
    outs = {space: denoise(model, noisy, 0.1, space) for space in ("opponent", "pca", "rgb")}
    mse_in = float(np.mean((noisy - clean) ** 2))
    for space, out in outs.items():
        assert out.shape == clean.shape and float(np.mean((out - clean) ** 2)) < mse_in / 4, space
    assert not np.allclose(outs["pca"], outs["opponent"], atol=1e-3)
    with pytest.raises(UsageError, match="unknown colour space"):
        colour_basis(noisy, "lab")


def test_colour_channels_are_what_a_gray_model_sees_of_a_colour_image():
    """--colour-spaces' patches: each a colour-space channel shifted and scaled as denoise() feeds it, its sigma
    scaled with it; every channel of every space in order without a generator, one drawn per patch with one."""
    from restorekit.learn.model import _OPP, channel_window, colour_basis, colour_channels

    rng = np.random.default_rng(0)
    clean = rng.random((2, 3, 8, 8))
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
    c, n, s = colour_channels(clean, noisy, np.array([0.1, 0.2]), ("rgb", "opponent", "pca"))
    assert c.shape == n.shape == (18, 1, 8, 8) and s.shape == (18,)
    assert np.allclose(c[:3, 0], clean[0], atol=1e-6) and np.allclose(n[:3, 0], noisy[0], atol=1e-6)
    assert np.allclose(s[:3], 0.1) and np.allclose(s[9:12], 0.2)
    lo, scale = channel_window(_OPP[2])  # (1, -2, 1) / sqrt(6): range [-2, 2] / sqrt(6)
    assert np.isclose(lo, -2 / np.sqrt(6)) and np.isclose(scale, np.sqrt(6) / 4) and np.isclose(s[5], 0.1 * scale)
    assert np.allclose(c[5, 0], (np.tensordot(_OPP[2], clean[0], 1) - lo) * scale, atol=1e-6)
    assert c.min() >= 0 and c.max() <= 1  # every channel's range over the RGB cube maps into [0, 1]
    t = colour_basis(noisy[1], "pca")  # the noisy patch's own axes, as the noisy image's at run time
    lo, scale = channel_window(t[0])
    assert np.allclose(n[15, 0], (np.tensordot(t[0], noisy[1], 1) - lo) * scale, atol=1e-6)
    c1, n1, s1 = colour_channels(clean, noisy, np.array([0.1, 0.2]), ("rgb",), np.random.default_rng(1))
    assert c1.shape == (2, 1, 8, 8) and np.allclose(s1, [0.1, 0.2])
    assert any(np.allclose(c1[0, 0], clean[0, k], atol=1e-6) for k in range(3))


def test_colour_spaces_train_a_gray_model_on_colour_images(tmp_path):
    """restorekit train --colour-spaces: a one-channel model trained on colour images' channels, recorded in
    the card; it denoises a colour image through its channels like any gray model."""
    import imageio.v3 as iio

    from restorekit.learn.model import denoise, load

    data = tmp_path / "colour"
    data.mkdir()
    yy, xx = np.mgrid[0:48, 0:48] / 48
    for k in range(4):
        img = np.stack([0.5 + 0.3 * np.sin((3 + k) * xx), 0.4 + 0.2 * np.cos((2 + k) * yy), 0.3 + 0.1 * xx + 0.2 * yy])
        iio.imwrite(data / f"c{k}.png", (np.moveaxis(img, 0, -1) * 255).round().astype(np.uint8))
    r = invoke(["train", data, "--out", tmp_path / "m", *TINY_TRAIN, "--colour-spaces", "opponent,pca,rgb"])
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    assert card["config"]["image_channels"] == 1 and card["trained"]["colour_spaces"] == ["opponent", "pca", "rgb"]
    model = load(tmp_path / "m")
    noisy = np.clip(np.stack([0.5 + 0.1 * xx, 0.5 * yy, 0.3 + 0 * xx]), 0, 1).astype(np.float32)
    out = denoise(model, noisy, 0.1, "pca")
    assert out.shape == noisy.shape and np.isfinite(out).all()
    r = invoke(["train", data, "--out", tmp_path / "m", *TINY_TRAIN, "--colour-spaces", "rgb", "--resume"])
    one_line_error(r, "--colour-spaces")  # a resume must give the options the training was started with


def test_the_shipped_name_gives_colour_images_the_colour_model():
    """learned:model=gaussian is the gray model on gray images and its colour fine-tune on colour ones; each
    can be named alone; the colour model's card says how it was made."""
    from restorekit.learn.model import load, resolve

    assert resolve("gaussian").name == resolve("gaussian", 1).name == resolve("gaussian-gray", 3).name == "gaussian-gray"
    assert resolve("gaussian", 3).name == resolve("gaussian-colour").name == "gaussian-colour"
    card = load(resolve("gaussian", 3)).card
    assert card["trained"]["colour_spaces"] == ["opponent", "pca", "rgb"] and "cbsd432" in card["data"]["folder"]
    assert card["config"] == load(resolve("gaussian")).card["config"]
    image = np.moveaxis(restorekit.restore(degrade="gaussian:25", prior="learned").reference, 0, -1)
    default, gray, colour = (restorekit.restore(image, mode="benchmark", degrade="gaussian:25", prior=p, seed=1).restored
                             for p in ("learned", "learned:model=gaussian-gray", "learned:model=gaussian-colour"))
    assert np.allclose(default, colour) and not np.allclose(default, gray, atol=1e-3)


def test_model_files_are_safetensors_and_a_pickle_payload_is_refused(tmp_path):
    import pickle

    data = clean_images(tmp_path / "clean")
    assert invoke(["train", data, "--out", tmp_path / "m", *TINY_TRAIN]).exit_code == 0
    from safetensors import safe_open

    with safe_open(str(tmp_path / "m" / "model.safetensors"), "pt") as f:
        assert f.metadata()["format"] == "restorekit-model" and len(list(f.keys())) > 4

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    for name in ("model.safetensors", "checkpoint.safetensors"):
        (tmp_path / "m" / name).write_bytes(pickle.dumps({"weights": Boom()}))
    with pytest.raises(UsageError, match="cannot load the model"):
        restorekit.restore(degrade="gaussian:25", prior=f"learned:model={tmp_path / 'm'}")
    r = invoke(["train", data, "--out", tmp_path / "m", *TINY_TRAIN, "--resume"])
    one_line_error(r, "cannot continue from the checkpoint")
    assert not (tmp_path / "pwned").exists()


def test_a_solver_beside_a_fitted_prior_starts_and_pulls_the_fit():
    """--prior learned with a fitted prior guides it: the identity parameterisation starts at the learned
    result (one tiny step keeps it), and a heavy weight pulls a DIP fit onto it."""
    alone = restorekit.restore(degrade="gaussian:25", prior="learned")
    started = restorekit.restore(degrade="gaussian:25", prior=["tv:1e-9", "learned"], net="identity", iters=1,
                                 lr=1e-6, stop="none")
    assert np.abs(started.restored - alone.restored).max() < 2e-3
    assert any("learned guides the fit" in n for n in started.record.notes)
    free = restorekit.restore(degrade="gaussian:25", prior=["dip:input=observation,ema=0"],
                              net="skip:channels=8,levels=3", iters=60, stop="none")
    pulled = restorekit.restore(degrade="gaussian:25", prior=["dip:input=observation,ema=0", "learned:weight=1000"],
                                net="skip:channels=8,levels=3", iters=60, stop="none")
    gap = lambda r: float(np.abs(r.restored - alone.restored).mean())  # noqa: E731
    # (Adam's steps do not grow with the weight: the pull changes the direction, 60 steps go part of the way)
    assert gap(pulled) < 0.85 * gap(free)
    with pytest.raises(UsageError, match="not several with a fitted prior"):
        restorekit.restore(degrade="gaussian:25", prior=["dip", "learned", "bm3d"])


def test_the_bundled_data_sets_load_offline_and_train():
    from restorekit.learn.data import dataset

    faces, photos = dataset("faces", 1), dataset("photos", 3)
    assert faces.images.shape == (200, 1, 25, 25) and photos.images.shape[1:] == (3, 64, 64)
    assert 0 <= faces.images.min() and faces.images.max() <= 1 and photos.images.std() > 0.05
    pytest.importorskip("sklearn")
    digits = dataset("digits", 1)
    assert digits.images.shape == (1797, 1, 8, 8) and digits.images.max() == 1.0 and digits.augment is False


def test_digits_train_a_dense_autoencoder(tmp_path):
    pytest.importorskip("sklearn")
    r = invoke(["train", "--dataset", "digits", "--degrade", "salt-pepper:0.1", "--net", "dense-autoencoder:code=16,width=64",
                "--epochs", "2", "--steps-per-epoch", "3", "--batch", "16", "--out", tmp_path / "m"])
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    assert card["canvas"] == [8, 8] and card["data"]["split"]["train"] == 1258 and card["code_shape"] == [16]


def test_init_fine_tunes_a_model_and_refuses_another_network(tmp_path):
    from safetensors.torch import load_file

    common = ["--dataset", "faces", "--epochs", "1", "--batch", "8", "--steps-per-epoch", "2"]
    assert invoke(["train", *common, "--degrade", "none", "--net", "conv-autoencoder:4", "--seed", "5", "--out",
                   tmp_path / "clean"]).exit_code == 0
    # another seed would start elsewhere; from --init, a tiny learning rate keeps the weights where they start
    r = invoke(["train", *common, "--degrade", "gaussian:25", "--net", "conv-autoencoder:4", "--init",
                tmp_path / "clean", "--lr", "1e-7", "--out", tmp_path / "tuned"])
    assert r.exit_code == 0, r.output
    a, b = (load_file(str(tmp_path / x / "model.safetensors")) for x in ("clean", "tuned"))
    conv = [k for k in a if k.endswith("weight") and a[k].ndim == 4][0]
    assert np.allclose(a[conv].numpy(), b[conv].numpy(), atol=1e-4)
    assert json.loads((tmp_path / "tuned" / "model.json").read_text())["trained"]["init"] == str(tmp_path / "clean")
    r = invoke(["train", *common, "--degrade", "gaussian:25", "--net", "conv-autoencoder:8", "--init",
                tmp_path / "clean", "--out", tmp_path / "other"])
    one_line_error(r, "its weights do not fit conv-autoencoder:channels=8")


def test_eval_out_never_touches_the_test_images_or_the_model(tmp_path):
    data = clean_images(tmp_path / "clean")
    assert invoke(["train", data, "--out", tmp_path / "m", *TINY_TRAIN]).exit_code == 0
    test = clean_images(tmp_path / "test", 2, 40)
    (test / "compare.png").write_bytes((test / "im0.png").read_bytes())  # a user's image named compare.png
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "compare.png").write_bytes(b"not restorekit's")
    before = {p: p.read_bytes() for p in [*test.iterdir(), *(tmp_path / "m").iterdir(), *theirs.iterdir()]}
    args = ["eval", tmp_path / "m", test, "--degrade", "gaussian:25", "--baseline", "median", "--out"]
    for out, fragment in ((test, "inside the test images' folder"), (test / "sub", "inside the test images'"),
                          (tmp_path / "m", "inside the model folder"), (theirs, "pass --overwrite")):
        one_line_error(invoke([*args, out]), fragment)
    one_line_error(invoke([*args, theirs, "--overwrite"]), "has no restorekit record")
    assert {p: p.read_bytes() for p in before} == before and not (test / "sub").exists()
    assert invoke([*args, tmp_path / "ev"]).exit_code == 0
    one_line_error(invoke([*args, tmp_path / "ev"]), "pass --overwrite")  # not even its own, without it
    assert invoke([*args, tmp_path / "ev", "--overwrite"]).exit_code == 0  # its own earlier results are replaced
