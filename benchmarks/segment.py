"""Segmentation and layer separation on images bundled with scikit-image: nothing is downloaded.

    python benchmarks/segment.py                 # 96x96, every method, table + benchmarks/results/segment.json
    python benchmarks/segment.py --size 128 --methods double-dip,otsu
    python benchmarks/segment.py --split tune    # the tuning composites; nothing written without --out
    python benchmarks/segment.py --seeds 0,1,2   # each entry the mean over three seeds (JSON: every run)

Cases (the true mask is known for the composites):

* ``horse-textures``: grass (a 96x96 crop at the texture's own scale) inside
  the horse silhouette (``skimage.data.horse``), brick outside;
* ``horse-photos``: the cat photo (``chelsea``) inside the horse, ``coffee``
  outside (both resized);
* ``horse-gray``: ``camera`` inside the horse, ``moon`` outside;
* ``shapes``: a disc, a rectangle and a triangle (``skimage.draw``): the
  ``astronaut`` photo inside, ``rocket`` outside;
* ``coins`` and ``cell``: the bundled photos themselves, scored against a
  thresholding (Otsu of the Gaussian-smoothed image, holes filled, specks
  removed) — a proxy truth, which Otsu's row matches by construction.

Each case runs without a hint, with a box hint (the true mask's bounding
box grown by 4 pixels; not for coins and cell, whose objects fill the
frame) and with scribbles (:func:`_scribbles`: strokes along the skeletons of
the object and of the background, kept 1/24 of the side away from the true
boundary, as a user marks an image); ``random-walker`` runs only with a
hint.  The row
``double-dip start`` is the split double-dip starts from
(:func:`restorekit.segment.doubledip.initial_split`), so the table shows
what the coupled fit adds to it.

Transparency: ``camera`` and ``astronaut`` (gray) mixed as 0.6/0.4 and
0.35/0.65; double-dip separates them from both mixtures; each recovered
layer is scored (PSNR) against the true layer it matches best, next to the
PSNR of the mixture itself against that layer.

Tuning split (``--split tune``, :func:`tuning_cases`): the settings of the methods (the GrabCut-like
refinement of double-dip's start, the steps, the clustering's options) were chosen on these and only
then run on the reported cases: two random blobs and two ellipses as masks (not the horse, not the
shapes); gravel inside grass and brick inside gravel (other crops than the reported ones);
``immunohistochemistry`` inside ``hubble_deep_field``; ``clock`` inside ``retina``; for transparency,
``coins`` and ``chelsea`` mixed 0.7/0.3 and 0.45/0.55.

Everything runs on one CPU thread (``torch.set_num_threads(1)``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "segment.json"
METHODS = ("double-dip", "double-dip start", "clustering", "otsu", "chan-vese", "kmeans", "slic", "random-walker")


def _resize(a: np.ndarray, size: int) -> np.ndarray:
    from skimage.transform import resize

    return resize(a, (size, size) + a.shape[2:], anti_aliasing=True)


def _chw(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    return a[None] if a.ndim == 2 else np.moveaxis(a[..., :3], -1, 0)


def _horse(size: int) -> np.ndarray:
    """The silhouette at 80 % of the side, centred: the object does not touch the border."""
    from skimage import data
    from skimage.transform import resize

    inner = int(round(0.8 * size))
    m = np.zeros((size, size), bool)
    top = (size - inner) // 2
    m[top:top + inner, top:top + inner] = resize(~data.horse(), (inner, inner), order=0, anti_aliasing=False) > 0.5
    return m


def _shapes(size: int) -> np.ndarray:
    from skimage.draw import disk, polygon, rectangle

    m = np.zeros((size, size), bool)
    s = size / 96
    m[disk((30 * s, 30 * s), 18 * s, shape=m.shape)] = True
    rr, cc = rectangle((52 * s, 18 * s), end=(80 * s, 44 * s), shape=m.shape)
    m[rr, cc] = True
    rr, cc = polygon(np.array([20, 75, 75]) * s, np.array([70, 50, 88]) * s, shape=m.shape)
    m[rr, cc] = True
    return m


def _threshold_truth(image: np.ndarray) -> np.ndarray:
    from scipy import ndimage
    from skimage.filters import gaussian, threshold_otsu

    g = gaussian(image, 1.0)
    m = ndimage.binary_fill_holes(g > threshold_otsu(g))
    lab, n = ndimage.label(m)
    sizes = np.bincount(lab.ravel())
    return m & (sizes[lab] > 20)  # specks of 20 pixels or fewer removed


def cases(size: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, image (C, H, W) float32 in [0, 1], true mask (H, W))``."""
    from skimage import data

    horse = _horse(size)
    crop = lambda a: a[:size, :size].astype(np.float32) / 255  # noqa: E731
    out = [
        ("horse-textures", np.where(horse, crop(data.grass()), crop(data.brick()))[None], horse),
        ("horse-photos", np.where(horse[None], _chw(_resize(data.chelsea(), size)), _chw(_resize(data.coffee(), size))), horse),
        ("horse-gray", np.where(horse, _resize(data.camera(), size), _resize(data.moon(), size))[None], horse),
    ]
    shapes = _shapes(size)
    out.append(("shapes", np.where(shapes[None], _chw(_resize(data.astronaut(), size)), _chw(_resize(data.rocket(), size))), shapes))
    for name, img in (("coins", data.coins()), ("cell", data.cell())):
        g = _resize(img.astype(np.float64) / 255, size)
        out.append((name, g[None], _threshold_truth(g)))
    return [(n, np.clip(i, 0, 1).astype(np.float32), m) for n, i, m in out]


def _blob(size: int, seed: int) -> np.ndarray:
    """A random smooth blob (the largest piece of thresholded smoothed noise, holes filled), kept off the border."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    inner = int(round(0.8 * size))
    noise = ndimage.gaussian_filter(rng.standard_normal((inner, inner)), inner / 8)
    yy, xx = np.mgrid[:inner, :inner] / (inner - 1) - 0.5
    field = noise / noise.std() - 4 * (yy**2 + xx**2) * 4
    m = field > np.quantile(field, 0.6)
    lab, n = ndimage.label(m)
    m = lab == 1 + np.argmax(np.bincount(lab.ravel())[1:])
    m = ndimage.binary_fill_holes(m)
    out = np.zeros((size, size), bool)
    top = (size - inner) // 2
    out[top:top + inner, top:top + inner] = m
    return out


def _ellipses(size: int) -> np.ndarray:
    from skimage.draw import ellipse

    m = np.zeros((size, size), bool)
    s = size / 96
    m[ellipse(34 * s, 58 * s, 20 * s, 28 * s, shape=m.shape, rotation=0.4)] = True
    m[ellipse(66 * s, 30 * s, 18 * s, 12 * s, shape=m.shape, rotation=-0.3)] = True
    return m


def tuning_cases(size: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Composites for tuning, none of them a reported case: other masks (random blobs, two ellipses), other
    crops of the textures, other photos (``--split tune``)."""
    from skimage import data
    from skimage.color import rgb2gray

    crop = lambda a, o: a[o:o + size, o:o + size].astype(np.float32) / 255  # noqa: E731
    b1, b2, el = _blob(size, 11), _blob(size, 12), _ellipses(size)
    out = [
        ("blob-textures", np.where(b1, crop(data.gravel(), 200), crop(data.grass(), 300))[None], b1),
        ("ellipses-textures", np.where(el, crop(data.brick(), 250), crop(data.gravel(), 100))[None], el),
        ("blob-photos", np.where(b2[None], _chw(_resize(data.immunohistochemistry(), size)),
                                 _chw(_resize(data.hubble_deep_field()[:800, :800], size))), b2),
        ("ellipses-gray", np.where(el, _resize(data.clock().astype(np.float64) / 255, size),
                                   _resize(rgb2gray(data.retina()), size))[None], el),
    ]
    return [(n, np.clip(i, 0, 1).astype(np.float32), m) for n, i, m in out]


def _box(mask: np.ndarray, grow: int = 4):
    from restorekit import Hint

    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    x0, y0 = max(0, xs.min() - grow), max(0, ys.min() - grow)
    x1, y1 = min(w, xs.max() + 1 + grow), min(h, ys.max() + 1 + grow)
    return Hint(box=(int(x0), int(y0), int(x1 - x0), int(y1 - y0)))


def _scribbles(truth: np.ndarray):
    """Scribbles as a user might draw them, from the true mask: one-pixel strokes along the skeleton of the
    object and of the background, each shrunk first by 1/24 of the side (at least 2 pixels) so no stroke
    comes near the true boundary."""
    from scipy import ndimage
    from skimage.morphology import skeletonize

    from restorekit import Hint

    r = max(2, round(truth.shape[0] / 24))
    marks = np.zeros(truth.shape, np.int8)
    marks[skeletonize(ndimage.binary_erosion(truth, iterations=r))] = 1
    marks[skeletonize(ndimage.binary_erosion(~truth, iterations=r, border_value=0))] = 2
    return Hint(scribbles=marks)


HINTS = ("none", "box", "scribbles")


def segment_rows(size: int, methods: list[str], seeds: tuple[int, ...] = (0,), log=print, split: str = "report",
                 hints: tuple[str, ...] = HINTS) -> list[dict]:
    from restorekit.plugins import get_registry
    from restorekit.segment.doubledip import initial_split
    from restorekit.segment.masks import scores

    reg = get_registry()
    rows = []
    for name, image, truth in (tuning_cases(size) if split == "tune" else cases(size)):
        for kind in hints:
            hint = {"none": None, "box": _box, "scribbles": _scribbles}[kind]
            hint = hint if hint is None else hint(truth)
            if kind == "box" and hint.box[2] * hint.box[3] >= 0.9 * truth.size:
                continue  # the objects fill the frame (coins, cell): a box says nothing
            for method, seed in itertools.product(methods, seeds):
                if method == "random-walker" and hint is None:
                    continue
                t = time.perf_counter()
                if method == "double-dip start":
                    mask = initial_split(image, hint, seed=seed)
                    spec = "initial_split"
                else:
                    dec = reg.create("decomposition", method)
                    spec = dec.spec
                    mask = dec.decompose(image.copy(), "segment", hint=hint, seed=seed).mask
                sec = time.perf_counter() - t
                s = scores(truth, np.asarray(mask) >= 0.5)
                row = {"case": name, "hint": kind, "method": method, "seed": seed, "spec": spec,
                       **{k: round(v, 4) for k, v in s.items()}, "seconds": round(sec, 2)}
                rows.append(row)
                log(f"{name:15s} {row['hint']:9s} {method:17s} seed {seed}  IoU {s['iou']:.3f}  Dice {s['dice']:.3f}  "
                    f"BF {s['boundary_f']:.3f}  {sec:6.1f} s")
    return rows


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def transparency_rows(size: int, seed: int = 0, iters: int | None = None, log=print, split: str = "report") -> list[dict]:
    from skimage import data
    from skimage.color import rgb2gray

    from restorekit import Budget
    from restorekit.plugins import get_registry

    if split == "tune":  # other photos, other weights
        case = "coins+chelsea"
        a = _resize(data.coins().astype(np.float64) / 255, size)[None].astype(np.float32)
        b = _resize(rgb2gray(data.chelsea()), size)[None].astype(np.float32)
        mix1, mix2 = 0.7 * a + 0.3 * b, 0.45 * a + 0.55 * b
    else:
        case = "camera+astronaut"
        a = _resize(data.camera().astype(np.float64) / 255, size)[None].astype(np.float32)
        b = _resize(rgb2gray(data.astronaut()), size)[None].astype(np.float32)
        mix1, mix2 = 0.6 * a + 0.4 * b, 0.35 * a + 0.65 * b
    dec = get_registry().create("decomposition", "double-dip")
    rows = []
    for label, others in (("two mixtures", (mix2,)), ("one mixture", ())):
        t = time.perf_counter()
        kwargs = {"others": others} if others else {}
        out = dec.decompose(mix1.copy(), "transparency", seed=seed, budget=Budget(iterations=iters), **kwargs)
        sec = time.perf_counter() - t
        l1, l2 = out.layers["layer1"], out.layers["layer2"]
        straight = _psnr(l1, a) + _psnr(l2, b)
        swapped = _psnr(l1, b) + _psnr(l2, a)
        pa, pb = (l1, l2) if straight >= swapped else (l2, l1)
        row = {"case": case, "input": label, "spec": dec.spec,
               "psnr_layer_a": round(_psnr(pa, a), 2), "psnr_layer_b": round(_psnr(pb, b), 2),
               "psnr_mixture_a": round(_psnr(mix1, a), 2), "psnr_mixture_b": round(_psnr(mix1, b), 2),
               "notes": out.notes, "seconds": round(sec, 2)}
        rows.append(row)
        log(f"transparency {label:13s}: layer A {row['psnr_layer_a']:.2f} dB (mixture {row['psnr_mixture_a']:.2f}), "
            f"layer B {row['psnr_layer_b']:.2f} dB (mixture {row['psnr_mixture_b']:.2f})  {sec:.1f} s")
    return rows


def table(rows: list[dict], methods: list[str]) -> str:
    """Markdown: one row per case and hint, IoU per method; the best in bold."""
    order = [h for h in HINTS if any(r["hint"] == h for r in rows)]
    keys = sorted({(r["case"], r["hint"]) for r in rows},
                  key=lambda k: ([r["case"] for r in rows].index(k[0]), order.index(k[1])))
    lines = ["| case | hint | " + " | ".join(methods) + " |", "| --- | --- |" + " --- |" * len(methods)]
    for case, hint in keys:
        vals = {m: round(float(np.mean([r["iou"] for r in rows if r["case"] == case and r["hint"] == hint
                                        and r["method"] == m])), 3)
                for m in methods if any(r["method"] == m and r["case"] == case and r["hint"] == hint for r in rows)}
        best = max(vals.values())
        cells = []
        for m in methods:
            v = vals.get(m)
            cells.append("" if v is None else (f"**{v:.3f}**" if v == best else f"{v:.3f}"))
        lines.append(f"| {case} | {hint} | " + " | ".join(cells) + " |")
    for hint in order:
        means = []
        for m in methods:
            v = [r["iou"] for r in rows if r["method"] == m and r["hint"] == hint]
            means.append(f"{np.mean(v):.3f}" if v else "")
        lines.append(f"| mean ({hint}) | | " + " | ".join(means) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=96, help="side of every image (default 96)")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated, or semicolon-separated when a spec has commas "
                                                          "('double-dip:restarts=3,snap=0;kmeans') (default: all)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds of the methods (k-means, networks); the table "
                                                "shows each entry's mean over them (default 0)")
    p.add_argument("--hints", default=",".join(HINTS), help="comma-separated: none, box, scribbles (default: all)")
    p.add_argument("--no-transparency", action="store_true")
    p.add_argument("--transparency-iters", type=int, default=None, help="double-dip steps for transparency (default: its own)")
    p.add_argument("--split", choices=("report", "tune"), default="report",
                   help="report: the reported cases (default); tune: the tuning composites (tuning_cases), "
                        "written only with --out")
    p.add_argument("--out", type=Path, default=None, help=f"the JSON results (default for --split report: {RESULTS.relative_to(ROOT)})")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    methods = [m.strip() for m in args.methods.split(";" if ";" in args.methods else ",") if m.strip()]
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    start = time.perf_counter()
    hints = tuple(h.strip() for h in args.hints.split(",") if h.strip())
    if not hints or set(hints) - set(HINTS):
        p.error(f"--hints: choose from {', '.join(HINTS)}")
    try:
        seeds = tuple(int(v) for v in args.seeds.split(",") if v.strip())
    except ValueError:
        p.error("--seeds: comma-separated integers")
    if not seeds:
        p.error("--seeds: at least one")
    rows = segment_rows(args.size, methods, seeds, log=log, split=args.split, hints=hints)
    trans = [] if args.no_transparency else transparency_rows(args.size, seeds[0], args.transparency_iters, log=log,
                                                              split=args.split)
    print(f"IoU against the true mask, {args.split} split, {args.size}x{args.size}, one CPU thread"
          + (f", each entry the mean over seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else f", seed {seeds[0]}") + "\n")
    print(table(rows, methods))
    for r in trans:
        print(f"\ntransparency ({r['input']}): layer A {r['psnr_layer_a']:.2f} dB, layer B {r['psnr_layer_b']:.2f} dB "
              f"(the mixture itself: {r['psnr_mixture_a']:.2f} and {r['psnr_mixture_b']:.2f} dB)")
    result = {
        "benchmark": "segment", "split": args.split, "size": args.size, "seeds": list(seeds), "threads": 1,
        "python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
        "seconds": round(time.perf_counter() - start, 1), "segmentation": rows, "transparency": trans,
    }
    out = args.out if args.out is not None or args.split == "tune" else RESULTS
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
