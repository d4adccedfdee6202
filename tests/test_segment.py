"""Segmentation and layer decomposition (restorekit segment / decompose) on tiny images.

The methods on composites whose mask is known, the exclusion loss, the
metrics against direct computations, the hints, Ctrl-C and the time limit,
and the commands: their files, their record, and every mistake as one
``error:`` line with exit 2 and nothing written.
"""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest

from restorekit import Budget, Hint
from restorekit.segment.masks import boundary_f, dice, iou, orient, scores
from tests.helpers import invoke, one_line_error

FAST_DD = "double-dip:iters=40,warmup=20,channels=4,levels=2"


pytestmark = pytest.mark.usefixtures("fresh_host", "one_thread")  # tmp_path, fresh plugin host, one torch thread (conftest.py)


def _composite(size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A bright ellipse (the object, off-centre) on a darker background, with noise: (image (1, H, W), mask)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    mask = ((yy - 0.45 * size) / (0.3 * size)) ** 2 + ((xx - 0.55 * size) / (0.22 * size)) ** 2 < 1
    img = np.where(mask, 0.7, 0.3) + 0.04 * rng.standard_normal((size, size))
    return np.clip(img, 0, 1)[None].astype(np.float32), mask


@pytest.fixture
def files(tmp_path):
    img, mask = _composite(32)
    p = tmp_path / "comp.png"
    iio.imwrite(p, np.round(img[0] * 255).astype(np.uint8))
    t = tmp_path / "truth.png"
    iio.imwrite(t, mask.astype(np.uint8) * 255)
    return p, t, mask


# -- the methods -----------------------------------------------------------------------
def _chance_iou(mask: np.ndarray) -> float:
    """The IoU of a mask drawn at random with the true object's share (the expected value, nearly)."""
    p = mask.mean()
    return p * p / (p + p - p * p)


def test_double_dip_recovers_a_composite_better_than_chance():
    from restorekit.builtins.decompositions import DoubleDip

    img, mask = _composite(32)
    out = DoubleDip.from_spec(FAST_DD).decompose(img, "segment", seed=0)
    assert out.mask.shape == mask.shape and out.labels.shape == mask.shape
    assert set(out.layers) == {"foreground", "background"}
    score = iou(mask, out.mask)
    assert score > 0.75 > 2 * _chance_iou(mask), score
    # each layer is the image where the mask gives it the pixels
    fg, bg = out.layers["foreground"][0], out.layers["background"][0]
    assert fg[mask].mean() > bg[~mask].mean() + 0.2


def test_clustering_and_the_baselines_recover_a_composite():
    from restorekit.plugins import get_registry

    img, mask = _composite(32)
    reg = get_registry()
    for spec in ("clustering", "otsu", "kmeans", "slic:superpixels=30", "chan-vese:iterations=50"):
        out = reg.create("decomposition", spec).decompose(img, "segment", seed=0)
        assert iou(mask, out.mask) > 0.75, spec
    box = Hint(box=(8, 4, 20, 22))
    out = reg.create("decomposition", "random-walker").decompose(img, "segment", hint=box)
    assert iou(mask, out.mask) > 0.75


def test_the_object_is_the_side_touching_the_border_less_or_the_hinted_one():
    _, mask = _composite(32)
    assert np.array_equal(orient(~mask), mask)  # the background label given as 1 is flipped
    assert np.array_equal(orient(mask), mask)
    # a hint overrides the border: scribbles on the background's side name it the object
    scribbles = np.zeros(mask.shape, np.int8)
    scribbles[0, 0] = 1
    scribbles[16, 17] = 2
    assert np.array_equal(orient(mask, Hint(scribbles=scribbles)), ~mask)
    # `under`: a segment somewhat rarer on the border than in the image is the object at 1, not at 0.5
    from restorekit.segment.masks import object_segments

    labels = np.zeros((20, 20), np.int64)
    labels[5:15, 5:13] = 1  # 80 pixels inside...
    labels[0, 2:13] = 1  # ...and 11 of the 76 border pixels: 14 % of the border, 23 % of the image
    labels[15:18, 14:18] = 2  # never on the border
    assert np.array_equal(object_segments(labels), labels > 0)
    assert np.array_equal(object_segments(labels, under=0.5), labels == 2)


def test_exclusion_loss_is_larger_for_identical_layers():
    import torch

    from restorekit.segment.doubledip import exclusion_loss

    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    vertical = ((xx // 4) % 2)[None, None]
    horizontal = ((yy // 4) % 2)[None, None]
    same = float(exclusion_loss(vertical, vertical))
    apart = float(exclusion_loss(vertical, horizontal))
    assert same > 0.1 and apart < 0.1 * same, (same, apart)
    # and it is differentiable, as the fit needs
    y = vertical.clone().requires_grad_(True)
    exclusion_loss(y, y * 0.5 + 0.1).backward()
    assert y.grad is not None and torch.isfinite(y.grad).all()


def test_transparency_from_two_mixtures_gives_two_layers():
    from restorekit.builtins.decompositions import DoubleDip

    rng = np.random.default_rng(1)
    a, b = rng.random((1, 16, 16)).astype(np.float32), rng.random((1, 16, 16)).astype(np.float32)
    out = DoubleDip.from_spec("double-dip:iters=5,channels=4,levels=2").decompose(
        0.6 * a + 0.4 * b, "transparency", others=(0.3 * a + 0.7 * b,))
    assert set(out.layers) == {"layer1", "layer2"} and out.mask is None
    assert all(v.shape == (1, 16, 16) for v in out.layers.values())
    assert "mixing weights of layer 1: " in out.notes[-1] and out.notes[-1].count(",") == 1


def _blocks(seed: int, size: int = 48) -> np.ndarray:
    """A piecewise-constant image (random rectangles): sparse gradients, like a photo's."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size), rng.random())
    for _ in range(12):
        y, x = rng.integers(0, size - 4, 2)
        h, w = rng.integers(4, size // 2, 2)
        img[y:y + h, x:x + w] = rng.random()
    return img[None].astype(np.float32)


def test_the_mixing_weights_of_two_mixtures_are_recovered_and_unmixed():
    from restorekit.builtins.decompositions import DoubleDip
    from restorekit.segment.doubledip import mixing_weights

    a, b = _blocks(3), _blocks(4)
    x1, x2 = 0.65 * a + 0.35 * b, 0.3 * a + 0.7 * b
    w1, w2 = mixing_weights(x1, x2)
    assert w1 == pytest.approx(0.65, abs=0.02) and w2 == pytest.approx(0.3, abs=0.02), (w1, w2)
    out = DoubleDip.from_spec("double-dip:channels=4,levels=2").decompose(x1, "transparency", others=(x2,))
    l1, l2 = out.layers["layer1"], out.layers["layer2"]
    psnr = lambda u, v: 10 * np.log10(1 / np.mean((u - v) ** 2))  # noqa: E731
    assert psnr(l1, a) > 30 and psnr(l2, b) > 30, (psnr(l1, a), psnr(l2, b))
    assert out.iterations == 0 and "linear unmixing" in " ".join(out.notes)
    # one mixture twice says nothing about the weights: no estimate, the coupled fit runs
    assert mixing_weights(x1, x1) is None
    # unmix=false: the coupled fit starts from the unmixing and runs its steps
    out = DoubleDip.from_spec("double-dip:iters=6,channels=4,levels=2,unmix=false").decompose(
        x1, "transparency", others=(x2,))
    assert out.iterations == 6 and out.notes[0].startswith("mixing weights estimated")
    assert out.notes[-1].startswith("mixing weights of layer 1: ")


def _texture_composite(size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fine noise (the object, a disc) on smooth noise with the same Gaussian distribution of grey levels:
    the pixels' values alone cannot tell the two apart, their local texture can."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    mask = (yy - 0.45 * size) ** 2 + (xx - 0.55 * size) ** 2 < (size / 3.5) ** 2
    fine = rng.standard_normal((size, size))
    smooth = ndimage.gaussian_filter(rng.standard_normal((size, size)), 2.5)
    img = 0.5 + 0.12 * np.where(mask, fine, smooth / smooth.std())
    return np.clip(img, 0, 1)[None].astype(np.float32), mask


def test_the_texture_models_split_what_colours_cannot():
    from restorekit.segment.baselines import kmeans_colours
    from restorekit.segment.doubledip import initial_split
    from restorekit.segment.masks import object_segments

    img, mask = _texture_composite()
    ys, xs = np.nonzero(mask)
    box = Hint(box=(int(xs.min()) - 3, int(ys.min()) - 3, int(np.ptp(xs)) + 7, int(np.ptp(ys)) + 7))
    by_colour = iou(mask, object_segments(kmeans_colours(img, 2), box))
    start = iou(mask, initial_split(img, box, regions=False))  # the 2-means of the box's inside
    refined = iou(mask, initial_split(img, box))  # then the per-region texture models
    assert by_colour < 0.4 and refined > 0.65 and refined > start + 0.05, (by_colour, start, refined)


def test_smooth_assign_removes_isolated_pixels_and_keeps_regions():
    from restorekit.segment.regions import smooth_assign

    u = np.where(np.arange(20)[None, :] < 10, 2.0, -2.0).repeat(20, 0)
    u[5, 3] = -2.5  # one pixel that disagrees with its region
    q = smooth_assign(u, beta=1.0)
    assert q[5, 3] > 0.5 and (q[:, :9] > 0.9).all() and (q[:, 11:] < 0.1).all()
    assert smooth_assign(u, beta=0.0)[5, 3] < 0.5  # without the pairwise term the pixel stays


def test_kmeans_keeps_the_best_of_several_seedings():
    from restorekit.segment.baselines import kmeans

    rng = np.random.default_rng(0)
    centres, sizes = ((0, 0), (5, 0), (0, 5), (30, 30)), (200, 200, 20, 5)
    x = np.concatenate([rng.normal(c, 0.3, (n, 2)) for c, n in zip(centres, sizes)])
    truth = np.repeat(np.arange(4), sizes)

    def found(labels):  # each blob one cluster, four clusters
        return len(set(labels)) == 4 and all(len(set(labels[truth == t])) == 1 for t in range(4))

    single = [found(kmeans(x, 4, seed=s, inits=1)) for s in range(10)]
    assert not all(single)  # one k-means++ seeding sometimes merges two blobs
    assert all(found(kmeans(x, 4, seed=s)) for s in range(10))  # the best of five does not


def test_snap_boundary_moves_a_coarse_split_onto_the_edge():
    from scipy import ndimage

    from restorekit.segment.regions import snap_boundary

    img, mask = _composite(40)
    coarse = ndimage.binary_dilation(mask, iterations=2)  # a split two pixels too large all round
    snapped = snap_boundary(img, coarse, band=3)
    assert iou(mask, coarse) < 0.8 and iou(mask, snapped) > 0.95, (iou(mask, coarse), iou(mask, snapped))
    assert np.array_equal(snap_boundary(img, coarse, band=0), coarse)
    # background seeds (a box's outside) win over the split: marked pixels keep their label
    seeds = np.zeros(mask.shape, np.int8)
    seeds[:, :20] = 2
    assert not snap_boundary(img, coarse, band=3, seeds=seeds)[:, :20].any()
    # a split with no interior farther than the band is returned unchanged
    speck = np.zeros(mask.shape, bool)
    speck[5, 5] = True
    assert np.array_equal(snap_boundary(img, speck, band=3), speck)


def test_scribbles_on_both_sides_start_from_a_random_walker_and_one_side_falls_back():
    from restorekit.segment.doubledip import initial_split

    img, mask = _composite(32)
    marks = np.zeros(mask.shape, np.int8)
    marks[14, 15:20] = 1  # a short stroke inside the ellipse
    marks[2, 2:30] = 2  # and one along the top, outside
    both = initial_split(img, Hint(scribbles=marks))
    assert iou(mask, both) > 0.9 and (both[marks == 1] > 0.9).all() and (both[marks == 2] < 0.1).all()
    # object marks only: no random walker (it needs both sides); the clusters still find the ellipse,
    # not just the stroke
    one = initial_split(img, Hint(scribbles=np.where(marks == 1, marks, 0).astype(np.int8)))
    assert iou(mask, one) > 0.75 and (one >= 0.5).sum() > 10 * (marks == 1).sum()


def test_restarts_average_the_masks_of_several_seeds():
    from restorekit.builtins.decompositions import DoubleDip
    from restorekit.segment.doubledip import double_dip

    img, mask = _composite(32)
    fast = FAST_DD.replace("iters=40,warmup=20", "iters=10,warmup=5")
    ticks = []
    out = DoubleDip.from_spec(fast + ",restarts=3,snap=0").decompose(
        img, "segment", seed=4, budget=Budget(progress=lambda it, total, loss: ticks.append((it, total))))
    assert out.iterations == 30 and out.stopped == "done" and any("3 of 3 restarts (seeds 4-6)" in n for n in out.notes)
    assert ticks[-1] == (30, 30) and [t for t, _ in ticks] == sorted(t for t, _ in ticks)  # one progress bar
    # the mask is the average of the three single fits with seeds 4, 5, 6
    one = DoubleDip.from_spec(fast + ",snap=0").params
    singles = [double_dip(img, "segment", one, seed=s).mask for s in (4, 5, 6)]
    np.testing.assert_allclose(out.mask, np.mean(singles, 0), atol=1e-5)
    assert iou(mask, out.mask) > max(0.6, 2 * _chance_iou(mask))  # ten steps each: a soft mask, but the ellipse
    # a time limit already spent: the first fit's result so far, and no more restarts
    cut = DoubleDip.from_spec(fast + ",restarts=3").decompose(img, "segment", seed=0, budget=Budget(time_limit=0.0))
    assert cut.stopped == "time limit" and cut.iterations < 10 and any("1 of 3 restarts" in n for n in cut.notes)


def test_double_dip_snaps_its_mask_only_when_asked():
    from restorekit.builtins.decompositions import DoubleDip

    img, _ = _composite(32)
    fast = FAST_DD.replace("iters=40,warmup=20", "iters=6,warmup=3")
    on = DoubleDip.from_spec(fast).decompose(img, "segment", seed=0)
    off = DoubleDip.from_spec(fast + ",snap=0").decompose(img, "segment", seed=0)
    assert set(np.unique(on.mask)) <= {0.0, 1.0} and any("random walker" in n for n in on.notes)
    assert len(np.unique(off.mask)) > 2 and not any("random walker" in n for n in off.notes)


def test_dehaze_gives_an_airlight_and_a_transmission_map():
    from restorekit.builtins.decompositions import DoubleDip

    img = np.clip(0.5 * np.random.default_rng(2).random((3, 16, 16)) + 0.4, 0, 1).astype(np.float32)
    out = DoubleDip.from_spec("double-dip:iters=5,channels=4,levels=2").decompose(img, "dehaze")
    assert out.layers["airlight"].shape == (3, 1, 1) and out.layers["transmission"].shape == (1, 16, 16)
    assert out.mask.shape == (16, 16)
    # the transmission has a floor, and the scene is the image through the fitted model, I = t J + (1 - t) A
    t, a = out.layers["transmission"], out.layers["airlight"]
    assert t.min() >= 0.1 - 1e-6 and any("dark channel" in n for n in out.notes)
    np.testing.assert_allclose(out.layers["dehazed"], np.clip((img - a) / t + a, 0, 1), atol=1e-5)


def test_watermark_keeps_the_image_outside_the_box():
    from restorekit.builtins.decompositions import DoubleDip

    img = np.random.default_rng(3).random((3, 20, 20)).astype(np.float32)
    out = DoubleDip.from_spec("double-dip:iters=4,channels=4,levels=2").decompose(img, "watermark", hint=Hint(box=(5, 6, 8, 7)))
    clean = out.layers["clean"]
    outside = np.ones((20, 20), bool)
    outside[6:13, 5:13] = False
    np.testing.assert_allclose(clean[:, outside], img[:, outside], atol=1e-6)  # the opacity is 0 there
    assert not np.allclose(clean[:, ~outside], img[:, ~outside], atol=1e-3)  # the box is the fit's
    assert (out.mask[outside] == 0).all()


def test_ctrl_c_and_the_time_limit_keep_the_result_so_far():
    from restorekit.builtins.decompositions import Clustering, DoubleDip

    img, _ = _composite(16)

    def interrupt(iteration, total, loss):
        if iteration >= 4:
            raise KeyboardInterrupt

    out = DoubleDip.from_spec("double-dip:iters=200,warmup=2,channels=4,levels=2").decompose(
        img, "segment", budget=Budget(progress=interrupt))
    assert out.stopped == "interrupted" and 4 <= out.iterations < 200 and out.mask.shape == (16, 16)
    out = Clustering.from_spec("clustering:iters=100000,min_segments=1").decompose(img, budget=Budget(time_limit=0.3))
    assert out.stopped == "time limit" and out.iterations < 100000 and out.labels.shape == (16, 16)


def test_budget_iterations_override_the_method():
    from restorekit.builtins.decompositions import Clustering

    img, _ = _composite(16)
    out = Clustering.from_spec("clustering:min_segments=1").decompose(img, budget=Budget(iterations=3))
    assert out.iterations == 3


# -- the metrics ------------------------------------------------------------------------
def test_metrics_equal_a_direct_computation():
    truth = np.zeros((10, 10), bool)
    truth[2:6, 2:6] = True  # 16 pixels
    test = np.zeros((10, 10), bool)
    test[3:7, 2:6] = True  # 16 pixels, 12 shared
    assert iou(truth, test) == pytest.approx(12 / 20)
    assert dice(truth, test) == pytest.approx(2 * 12 / 32)
    assert iou(truth, test.astype(np.float32) * 0.9) == pytest.approx(12 / 20)  # a soft mask at 0.5
    # boundary F: each boundary is the ring of 12 pixels; shifted by one row, with a tolerance below 1,
    # the shared boundary pixels are the two side columns minus the rows where only one has the ring
    bt = truth & ~np.pad(truth, 1)[2:, 1:-1] | truth & ~np.pad(truth, 1)[:-2, 1:-1] \
        | truth & ~np.pad(truth, 1)[1:-1, 2:] | truth & ~np.pad(truth, 1)[1:-1, :-2]
    bp = np.roll(bt, 1, axis=0)
    precision = (bp & bt).sum() / bp.sum()
    recall = (bp & bt).sum() / bt.sum()
    assert boundary_f(truth, test, tolerance=0.5) == pytest.approx(2 * precision * recall / (precision + recall))
    assert boundary_f(truth, test, tolerance=1.0) == 1.0  # every boundary pixel within one pixel
    assert boundary_f(truth, truth) == 1.0 and boundary_f(truth, np.zeros_like(truth)) == 0.0
    assert scores(truth, test) == {"iou": iou(truth, test), "dice": dice(truth, test),
                                   "boundary_f": boundary_f(truth, test)}


def test_box_and_scribble_hints_as_seeds():
    from restorekit.segment.hints import parse_hints

    hint = parse_hints(["box:2,3,4,5"], (10, 12))
    seeds = hint.seeds(10, 12)
    assert hint.box == (2, 3, 4, 5)
    assert (seeds[3:8, 2:6] == 0).all() and (seeds == 2).sum() == 120 - 20


# -- the commands -----------------------------------------------------------------------
def test_segment_writes_its_files_and_scores_against_the_truth(files, tmp_path):
    img, truth, mask = files
    before = img.read_bytes()
    out = tmp_path / "seg"
    r = invoke(["segment", img, "--method", FAST_DD, "--truth", truth, "--out", out])
    assert r.exit_code == 0, r.output
    names = {p.name for p in out.iterdir()}
    assert {"mask.png", "labels.png", "overlay.png", "layer-foreground.png", "layer-background.png", "run.json"} <= names
    rec = json.loads((out / "run.json").read_text())
    written = iio.imread(out / "mask.png") >= 128
    assert rec["metrics"]["iou"] == pytest.approx(iou(mask, written), abs=1e-6)
    assert rec["metrics"]["iou"] > 0.75
    assert rec["method"].startswith("double-dip:iters=40,") and rec["plugin"] == "restorekit.decompositions"
    assert rec["iterations"] == 40 and rec["stopped"] == "done" and rec["segments"] == 2
    assert iio.imread(out / "overlay.png").shape == (32, 32, 3)
    assert set(np.unique(iio.imread(out / "labels.png"))) <= {0, 1}
    assert img.read_bytes() == before  # the input is never modified
    assert "IoU" in r.stdout and not list(tmp_path.glob(".*tmp"))


def test_json_prints_the_record_and_overwrite_replaces_a_result(files, tmp_path):
    img, truth, _ = files
    out = tmp_path / "o"
    r = invoke(["segment", img, "--method", "otsu", "--truth", truth, "--out", out, "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec == json.loads((out / "run.json").read_text())
    assert rec["metrics"]["iou"] > 0.9 and rec["files"]["mask"] == "mask.png"
    r = invoke(["segment", img, "--method", "kmeans", "--out", out])
    one_line_error(r, "already holds files")
    r = invoke(["segment", img, "--method", "kmeans", "--out", out, "--overwrite", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "run.json").read_text())["method"] == "kmeans:k=2"


def test_decompose_writes_the_layers(files, tmp_path):
    img, _, _ = files
    out = tmp_path / "d"
    r = invoke(["decompose", img, "--task", "transparency", "--second", img, "--iters", "3", "--out", out,
                "--method", "double-dip:channels=4,levels=2", "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["task"] == "transparency" and rec["iterations"] == 3 and rec["second"] == str(img)
    assert rec["method"].startswith("double-dip:iters=3,")  # the spec repeats the run: --iters is in it
    assert {p.name for p in out.iterdir()} == {"layer-layer1.png", "layer-layer2.png", "run.json"}


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["segment", "{img}", "--method", "random-walker"], "method 'random-walker' needs a hint for task 'segment'"),
        (["decompose", "{img}", "--task", "watermark"], "needs a hint for task 'watermark': --hint box:x,y,w,h"),
        (["segment", "{img}", "--method", "double-dipp"], "unknown decomposition 'double-dipp'; did you mean 'double-dip'?"),
        (["segment", "{img}", "--method", "otsu:k=3"], "decomposition 'otsu' has no parameter 'k'"),
        (["decompose", "{img}", "--task", "dehase"], "unknown task 'dehase'; did you mean 'dehaze'?"),
        (["decompose", "{img}", "--task", "transparency", "--method", "otsu"], "method 'otsu' does not do task 'transparency'"),
        (["segment", "{bad}"], "cannot read image"),
        (["segment", "{tmp}/missing.png"], "missing.png"),
        (["segment", "{img}", "--hint", "box:1,2,3"], "a box is box:x,y,w,h"),
        (["segment", "{img}", "--hint", "circle:3"], "write box:x,y,w,h or scribbles:FILE"),
        (["segment", "{img}", "--hint", "box:20,20,30,30"], "reaches outside the 32x32 image"),
        (["segment", "{img}", "--hint", "box:0,0,32,32"], "covers the whole image"),
        (["segment", "{img}", "--hint", "scribbles:{small}"], "are 8x8 but the image is 32x32"),
        (["segment", "{img}", "--method", "otsu", "--hint", "scribbles:{blank}"], "mark no pixel"),
        (["segment", "{img}", "--truth", "{small}"], "resize the mask to the image"),
        (["segment", "{img}", "--second", "{img}"], "no such option"),
        (["decompose", "{img}", "--task", "dehaze", "--second", "{img}"], "--second is a second mixture for --task transparency"),
        (["decompose", "{img}", "--task", "transparency", "--second", "{small}"], "give two mixtures of the same size"),
        (["segment", "{img}", "--out", "{img}"], "restorekit never writes over its inputs"),
    ],
    ids=lambda v: v if isinstance(v, str) and not v.startswith("{") else None,
)
def test_every_mistake_is_one_line_with_exit_2(files, tmp_path, args, fragment):
    img, _, _ = files
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    small = tmp_path / "small.png"
    iio.imwrite(small, np.full((8, 8), 255, np.uint8))
    blank = tmp_path / "blank.png"
    iio.imwrite(blank, np.zeros((32, 32), np.uint8))
    subs = {"{img}": str(img), "{bad}": str(bad), "{tmp}": str(tmp_path), "{small}": str(small), "{blank}": str(blank)}
    real = []
    for a in args:
        for k, v in subs.items():
            a = a.replace(k, v)
        real.append(a)
    r = invoke(real)
    if fragment == "no such option":
        assert r.exit_code == 2 and "error:" in r.stderr and "Traceback" not in r.output
        return
    one_line_error(r, fragment)
    assert not (tmp_path / "runs").exists()  # nothing reserved, nothing written


def test_list_shows_the_decompositions():
    r = invoke(["list", "decompositions", "--json"])
    assert r.exit_code == 0
    names = {d["name"] for d in json.loads(r.stdout)["decomposition"]}
    assert {"double-dip", "clustering", "otsu", "chan-vese", "kmeans", "slic", "random-walker"} <= names


def test_ctrl_c_in_the_command_writes_the_result_so_far(files, tmp_path, monkeypatch):
    from restorekit.cli import segment as cli_segment

    def interrupting(show):
        def cb(iteration, total, loss):
            if iteration >= 4:
                raise KeyboardInterrupt
        return cb, None

    monkeypatch.setattr(cli_segment, "_progress", interrupting)
    img, _, _ = files
    out = tmp_path / "stopped"
    r = invoke(["segment", img, "--method", "double-dip:iters=500,warmup=2,channels=4,levels=2", "--out", out])
    assert r.exit_code == 130, r.output
    rec = json.loads((out / "run.json").read_text())
    assert rec["stopped"] == "interrupted" and 4 <= rec["iterations"] < 500
    assert (out / "mask.png").exists() and "interrupted: wrote the result so far" in r.stderr
