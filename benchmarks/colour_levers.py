"""Colour Gaussian denoising levers against CBM3D, on the same noisy 256x256 crops (issue 20's colour bar).

Each image of cpu256's ``COLOUR_WIDE`` list (21 colour bench images) gets one clipped Gaussian noise draw
(seed 0), and every lever sees that observation:

* ``B``: CBM3D (``bm3d.bm3d_rgb``, opponent colour space), the strongest classical baseline;
* ``Lg``: the shipped model for colour images (``--learned``, default ``gaussian``: on a colour image,
  ``gaussian-colour``; ``--learned gaussian-gray`` for the gray model) channel by channel in the opponent
  colour space, as ``--prior learned`` applies it to a colour image;
* ``Lp``, ``Li``: the same model in the image's principal colour axes and in RGB (``learned:colour=pca``,
  ``learned:colour=rgb``), which ``run``'s default adds on a colour image;
* ``Lc``: a 3-channel model given with ``--model`` (e.g. one trained with
  ``restorekit train ../shared/data/train/cbsd432 --channels 3``), if any;
* ``W(Lg)``: BM3D's Wiener stage with ``Lg`` as its pilot (instead of BM3D's own first stage);
* ``A+B+...``: the SURE-weighted combination of those results (``restorekit.run.solve.clip_safe_weights``:
  the divergences by one Monte-Carlo probe of 1e-2, judged on the values away from black and white), as
  ``run``'s default combines BM3D and ``learned``.

Prints per image PSNR and the mean and median gain over CBM3D; writes JSON.

    OMP_NUM_THREADS=2 python benchmarks/colour_levers.py --model /tmp/gaussian-color --out /tmp/levers.json

Run alone (BM3D and the models are timed by nothing here; only PSNR is reported).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cpu256 import COLOUR_WIDE, crop  # noqa: E402


def wiener_with_pilot(y: np.ndarray, sigma: float, pilot: np.ndarray) -> np.ndarray:
    """CBM3D's second (Wiener) stage on ``y`` with ``pilot`` as its estimate of the clean image, block
    matching on the luminance (the multichannel call of the bm3d package cannot take a colour pilot)."""
    import bm3d

    z, imax, imin, scale, a = bm3d.rgb_to(y, "opp")
    p = ((pilot.reshape(-1, 3) @ a.T).reshape(pilot.shape) - imin) / (imax - imin)
    s = sigma * np.sqrt(np.ravel(scale))
    out = np.empty_like(z)
    out[..., 0], (_, matches) = bm3d.bm3d(z[..., 0], s[0], "np", stage_arg=p[..., 0], blockmatches=(False, True))
    for k in (1, 2):
        out[..., k] = bm3d.bm3d(z[..., k], s[k], "np", stage_arg=p[..., k], blockmatches=(False, matches))
    return bm3d.rgb_to(out, "opp", True, imax, imin)[0]


def main(argv: list[str]) -> int:
    import bm3d
    import torch

    from restorekit.learn.model import denoise, load, resolve
    from restorekit.run.solve import SURE_PROBE, clip_safe_weights

    ap = argparse.ArgumentParser(prog="benchmarks/colour_levers.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sigma", type=float, default=25.0, help="noise sigma, 0-255 units")
    ap.add_argument("--model", help="a 3-channel model folder (restorekit train --channels 3) to add as Lc")
    ap.add_argument("--learned", default="gaussian", help="the one-channel model of Lg, Lp, Li: a shipped name "
                    "(as a colour image gets it) or a model folder")
    ap.add_argument("--images", type=int, default=len(COLOUR_WIDE), help="the first N images of the list")
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "bench"))
    ap.add_argument("--out", default=str(HERE / "results" / "colour-levers.json"))
    args = ap.parse_args(argv)
    s = args.sigma / 255
    gray = load(resolve(args.learned, 3))
    colour = load(Path(args.model)) if args.model else None

    def chw(v):
        return np.moveaxis(v, -1, 0).astype(np.float32)

    def hwc(v):
        return np.moveaxis(v, 0, -1).astype(np.float64)

    solvers = {"B": lambda y: bm3d.bm3d_rgb(y, s), "Lg": lambda y: hwc(denoise(gray, chw(y), s)),
               "Lp": lambda y: hwc(denoise(gray, chw(y), s, "pca")), "Li": lambda y: hwc(denoise(gray, chw(y), s, "rgb"))}
    if colour is not None:
        solvers["Lc"] = lambda y: hwc(denoise(colour, chw(y), s))
    combos = [("B", "Lg"), ("B", "Lp"), ("B", "Lg", "Lp"), ("B", "Lg", "Lp", "Li")]
    combos += [("B", "Lc"), ("B", "Lg", "Lc"), ("B", "Lg", "Lp", "Li", "Lc")] if colour is not None else []

    def psnr(a, x):
        return float(10 * np.log10(1 / np.mean((np.clip(a, 0, 1) - x) ** 2)))

    rows = []
    for rel in COLOUR_WIDE[: args.images]:
        x = crop(Path(args.data) / f"{rel}.png", False, 256).astype(np.float64) / 255
        y = np.clip(x + np.random.default_rng(0).normal(0, s, x.shape), 0, 1)
        probe = np.random.default_rng(1).standard_normal(y.shape)
        outs, moved = {}, {}
        for name, f in solvers.items():
            outs[name] = f(y)
            moved[name] = f(y + SURE_PROBE * probe)
        row = {"image": rel, **{k: psnr(o, x) for k, o in outs.items()}, "W(Lg)": psnr(wiener_with_pilot(y, s, outs["Lg"]), x)}
        for combo in combos:
            w, _ = clip_safe_weights([torch.from_numpy(outs[k]) for k in combo],
                                     [torch.from_numpy(moved[k]) for k in combo], torch.from_numpy(y),
                                     torch.from_numpy(probe), s)
            row["+".join(combo)] = psnr(sum(wi * outs[k] for wi, k in zip(w, combo)), x)
        rows.append(row)
        print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else v for k, v in row.items()), flush=True)
    keys = [k for k in rows[0] if k != "image"]
    summary = {k: {"mean": round(statistics.mean(r[k] for r in rows), 3),
                   "mean_gain": round(statistics.mean(r[k] - r["B"] for r in rows), 3),
                   "median_gain": round(statistics.median(r[k] - r["B"] for r in rows), 3)} for k in keys}
    print(f"\n{'lever':10s} {'mean dB':>8s} {'mean gain':>10s} {'median gain':>12s}")
    for k, v in summary.items():
        print(f"{k:10s} {v['mean']:8.3f} {v['mean_gain']:+10.3f} {v['median_gain']:+12.3f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"sigma": args.sigma, "model": args.model, "learned": str(gray.path),
                                          "rows": rows, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
