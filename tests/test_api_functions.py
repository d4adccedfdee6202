"""The Python API beside restore(): compare, segment, decompose, batch, train, evaluate (tiny, few iterations).

Each test asserts what would fail if the function broke: segment's IoU on a
synthetic composite, compare's row per prior, a trained model that the
learned prior loads, evaluate's PSNR table, batch's manifest rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import restorekit
from restorekit.errors import UsageError

pytestmark = pytest.mark.usefixtures("fresh_host")  # chdir into tmp_path, fresh plugin host (conftest.py)


def composite(size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A bright disc on a dark textured background (uint8 gray) and its mask."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    mask = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 4) ** 2
    img = np.where(mask, 200, 60) + rng.normal(0, 8, (size, size))
    return np.clip(img, 0, 255).astype(np.uint8), mask


def smooth(size: int = 24, k: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = 0.5 + 0.3 * np.sin((3 + k) * xx + k) * np.cos((2 + k) * yy)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def write_images(folder: Path, n: int, size: int = 24) -> Path:
    import imageio.v3 as iio

    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        iio.imwrite(folder / f"im{k}.png", smooth(size, k))
    return folder


def test_segment_an_array_scores_iou_against_the_reference_array():
    img, mask = composite()
    r = restorekit.segment(img, method="otsu", reference=mask)
    assert isinstance(r, restorekit.SegmentResult)
    assert r.mask.shape == mask.shape
    assert r.metrics["iou"] > 0.9  # an easy composite: Otsu finds the disc
    inter = ((r.mask >= 0.5) & mask).sum() / ((r.mask >= 0.5) | mask).sum()
    assert abs(r.metrics["iou"] - inter) < 1e-3
    assert r.out is None and r.files == {} and r.record["image"].startswith("<array 32x32")


def test_segment_writes_what_the_command_writes(tmp_path):
    import imageio.v3 as iio

    img, mask = composite()
    iio.imwrite(tmp_path / "c.png", img)
    iio.imwrite(tmp_path / "m.png", (mask * 255).astype(np.uint8))
    r = restorekit.segment(tmp_path / "c.png", method="kmeans", reference=tmp_path / "m.png", out=tmp_path / "seg")
    assert r.out == tmp_path / "seg" and {"mask", "overlay", "record"} <= set(r.files)
    rec = json.loads((tmp_path / "seg" / "run.json").read_text())
    assert rec["metrics"]["iou"] == pytest.approx(r.metrics["iou"], abs=1e-6) and rec["metrics"]["iou"] > 0.9
    with pytest.raises(UsageError):  # an earlier result is kept unless overwrite=True
        restorekit.segment(tmp_path / "c.png", method="kmeans", out=tmp_path / "seg")
    restorekit.segment(tmp_path / "c.png", method="otsu", out=tmp_path / "seg", overwrite=True)


def test_segment_and_decompose_default_to_the_commands_measured_methods():
    """No method: the one the command would use (segment/defaults.py): texture-split without a hint,
    dark-channel for dehazing; and device="cpu" is accepted as the command's --device cpu."""
    img, mask = composite()
    r = restorekit.segment(img, reference=mask, device="cpu")
    assert r.record["method"].split(":")[0] == "texture-split" and set(r.metrics) >= {"iou", "dice"}
    rgb = np.repeat(img[..., None], 3, axis=-1)
    d = restorekit.decompose(rgb, task="dehaze")
    assert d.record["method"].split(":")[0] == "dark-channel"


def test_segment_and_decompose_refuse_bad_input_with_usage_errors():
    img, _ = composite()
    with pytest.raises(UsageError, match="decomposition"):
        restorekit.segment(img, method="no-such-method")
    with pytest.raises(UsageError):
        restorekit.segment(img, method="otsu", iters=0)
    with pytest.raises(UsageError, match="unknown task"):
        restorekit.decompose(img, task="no-such-task")


def test_decompose_dehaze_gives_layers():
    rgb = np.stack([smooth(24, k) for k in range(3)], axis=-1)
    r = restorekit.decompose(rgb, task="dehaze", method="double-dip", iters=2, seed=1)
    assert r.iterations == 2 and r.layers and r.record["command"] == "decompose"
    assert all(np.isfinite(v).all() for v in r.layers.values())


def test_compare_gives_one_row_per_prior_on_the_same_observation(tmp_path):
    img = smooth(24)
    r = restorekit.compare(img, mode="benchmark", degrade="gaussian:25", prior=["tv", "nlm", "median"], iters=3,
                           out=tmp_path / "cmp")
    assert isinstance(r, restorekit.CompareResult)
    assert sorted(row.prior for row in r.rows) == ["median", "nlm", "tv"]
    assert all(row.status == "complete" and np.isfinite(row.metrics["psnr"]) for row in r.rows)
    psnrs = [row.metrics["psnr"] for row in r.rows]
    assert psnrs == sorted(psnrs, reverse=True)  # table order: best first
    assert r.row("nlm").image.shape == img.shape and r.row("nlm").image.dtype == img.dtype
    assert r.row("nlm").metrics["psnr"] > r.baseline["psnr"]  # it denoised
    assert [e["method"] for e in r.record["methods"]] == [row.prior for row in r.rows]
    assert (tmp_path / "cmp" / "compare.json").is_file() and r.row("tv").folder.is_dir()
    assert len({e["observation_sha256"] for e in r.record["methods"]}) == 1


def test_compare_never_writes_over_a_file_a_spec_reads(tmp_path):
    """A mask named in --degrade is an input like the image: an earlier compare folder holding it is not
    replaced, even with overwrite (as the command refuses it)."""
    import imageio.v3 as iio

    from tests.helpers import digests

    img = smooth(24)
    out = tmp_path / "cmp"
    restorekit.compare(img, mode="benchmark", degrade="gaussian:25", prior=["median"], out=out)
    mask = out / "mask.png"  # a name restorekit itself writes, so only the input check protects it
    iio.imwrite(mask, np.where(smooth(24) > 128, 255, 0).astype(np.uint8))
    kept = digests(out)
    with pytest.raises(UsageError, match="input"):
        restorekit.compare(img, mode="benchmark", degrade=f"mask:{mask}", prior=["median"], out=out, overwrite=True)
    assert digests(out) == kept


def test_compare_without_out_keeps_nothing_and_refuses_a_misspelt_prior(tmp_path):
    r = restorekit.compare(smooth(16), mode="benchmark", prior="median")
    assert r.out is None and r.rows[0].folder is None and r.rows[0].status == "complete"
    assert not any(tmp_path.iterdir())
    with pytest.raises(UsageError):
        restorekit.compare(smooth(16), prior=["median", "no-such-prior"])


def test_train_writes_a_model_the_learned_prior_loads_and_evaluate_scores_it(tmp_path):
    data = write_images(tmp_path / "clean", 5, 40)
    t = restorekit.train(data, out=tmp_path / "m", degrade="gaussian:25", net="resunet:8", iters=4,
                         iters_per_epoch=2, batch=2, patch=32, precision="fp32")
    assert isinstance(t, restorekit.TrainResult)
    assert t.model.is_file() and t.iters == 4 and t.epochs == 2 and np.isfinite(t.best_val_psnr)
    res = restorekit.restore(smooth(24), mode="benchmark", degrade="gaussian:25", prior=f"learned:model={t.out}")
    assert res.restored.shape == (1, 24, 24) and np.isfinite(res.metrics["psnr"])

    e = restorekit.evaluate(t.out, data, prior="median", limit=2, out=tmp_path / "ev")
    assert isinstance(e, restorekit.EvaluateResult)
    assert e.priors == ["input", "model", "median"] and len(e.images) == 2
    assert set(e.psnr) == {"input", "model", "median"}
    assert e.psnr["median"] > e.psnr["input"]  # the median filter removes part of sigma-25 noise
    assert e.psnr["input"] == pytest.approx(np.mean(e.scores["input"]["psnr"]))
    saved = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert saved["mean"]["model"]["psnr"] == pytest.approx(e.psnr["model"])
    with pytest.raises(UsageError):
        restorekit.evaluate(t.out, data, prior="median", limit=0)
    with pytest.raises(UsageError):
        restorekit.train(data, out=tmp_path / "m2", iters=0)


def test_batch_restores_a_folder_with_a_manifest(tmp_path):
    src = write_images(tmp_path / "in", 2, 16)
    r = restorekit.batch(src, tmp_path / "out", mode="benchmark", degrade="gaussian:25", prior="median")
    assert isinstance(r, restorekit.BatchResult)
    assert r.counts["done"] == 2 and r.failed == [] and sorted(row.key for row in r.rows) == ["im0.png", "im1.png"]
    assert all(row.metrics["psnr"] > 0 for row in r.rows)
    assert (tmp_path / "out" / "im0" / "run.json").is_file() and (tmp_path / "out" / "manifest.sqlite").is_file()
    again = restorekit.batch(src, tmp_path / "out", mode="benchmark", degrade="gaussian:25", prior="median",
                             resume=True)
    assert again.summary.skipped == 2 and again.summary.done == 0
    with pytest.raises(UsageError):
        restorekit.batch(src, tmp_path / "out2", prior="no-such-prior")


def test_batch_shard_and_save_restored_as_the_command(tmp_path):
    """shard=(K, N) and save="restored" are the command's --shard K/N and --save restored: the same shares,
    only restored.png and run.json, and the command resumes the batch the function started."""
    from typer.testing import CliRunner

    from restorekit.cli.app import get_app

    src = write_images(tmp_path / "in", 5, 16)
    got = []
    for shard in ((1, 2), "2/2"):
        out = tmp_path / f"out{len(got) + 1}"
        r = restorekit.batch(src, out, prior="median", shard=shard, save="restored")
        assert r.failed == [] and r.counts["done"] == len(r.rows)
        got.append(sorted(row.key for row in r.rows))
        for row in r.rows:
            assert sorted(f.name for f in (out / Path(row.key).stem).iterdir()) == ["restored.png", "run.json"]
    assert got == [["im0.png", "im2.png", "im4.png"], ["im1.png", "im3.png"]]
    again = CliRunner().invoke(get_app(), ["batch", str(src), str(tmp_path / "out1"), "--shard", "1/2", "--save",
                                           "restored", "--prior", "median", "--workers", "1", "--resume", "--json"])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in (tmp_path / "out1").iterdir() if p.is_dir()) == ["im0", "im2", "im4"]
    for bad in ({"shard": (3, 2)}, {"shard": (0, 2)}, {"shard": "1/0"}, {"save": "pictures"}):
        with pytest.raises(UsageError):
            restorekit.batch(src, tmp_path / "bad", prior="median", **bad)
    assert not (tmp_path / "bad").exists()
    fresh = restorekit.batch(src, tmp_path / "fresh", prior="median", shard=(2, 2), resume=True)  # as --resume:
    assert sorted(row.key for row in fresh.rows) == ["im1.png", "im3.png"]  # where none is, it starts one


def test_the_functions_are_exported_and_segment_batch_stay_packages():
    import restorekit.batch.driver  # noqa: F401 - the packages keep working beside the functions
    import restorekit.segment.pipeline  # noqa: F401
    import restorekit.decompose.dehaze  # noqa: F401

    for name in ("compare", "segment", "decompose", "batch", "train", "evaluate", "register_plugin"):
        assert callable(getattr(restorekit, name)) and name in restorekit.__all__


def test_batch_interrupted_leaves_the_images_in_flight_pending(tmp_path, monkeypatch):
    from restorekit.batch import driver
    from restorekit.batch.manifest import Manifest

    def interrupted(items, manifest, executor, options, **kwargs):
        manifest.start(items[0].key)
        raise KeyboardInterrupt

    src = write_images(tmp_path / "in", 2, 16)
    original = driver.run_batch
    monkeypatch.setattr(driver, "run_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        restorekit.batch(src, tmp_path / "out", mode="benchmark", prior="median")
    m = Manifest.open(tmp_path / "out", readonly=True)
    try:
        assert m.counts()["running"] == 0 and m.counts()["pending"] == 2
    finally:
        m.close()
    monkeypatch.setattr(driver, "run_batch", original)
    r = restorekit.batch(src, tmp_path / "out", mode="benchmark", prior="median", resume=True)
    assert r.counts["done"] == 2
