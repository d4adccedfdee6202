"""Real camera noise: what a user gets with no noise level to guess (issue 20's protocol).

Runs on ``../shared/data/real/cc15`` (15 noisy JPEG shots with the mean of ~500 shots as ground truth;
develop and report on these, never train on them), cut into 256x256 crops: by default one quadrant per
image, the quadrant turning with the image's index (15 crops; ``--crops all``: the four quadrants, 60).
Each method sees only the noisy crop; the reference is used for scoring alone, except by the ``oracle``
methods, which are told the true noise RMS (``sqrt(mean((noisy - clean)^2))``) as a bound on what a
perfect white-noise level gives.

Methods (``--methods``, comma-separated):

* ``noisy``: the input itself.
* ``default``: ``restorekit.restore(crop)`` with no options: restore mode, the blind noise model
  (degradation ``noise``), ``--prior auto``, the safeguard.
* ``bm3d-model-only``: the same without the safeguard (BM3D told the estimated model once).
* ``bm3d-white``: BM3D (colour, opponent space) told the estimated model's white-noise equivalent.
* ``bm3d-est`` / ``nlm-est`` / ``learned-est``: ``--degrade none`` style, sigma from the wavelet MAD
  estimator (what a user got before).
* ``bm3d-oracle`` / ``nlm-oracle`` / ``learned-oracle``: told the true RMS.
* ``gaussian10``: ``--degrade gaussian:10`` (auto: BM3D + learned by SURE), the best fixed guess the
  issue measured.

Run alone on the machine, one thread (``OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/real.py``): it
prints a table (mean PSNR / SSIM / seconds, and per crop) and writes ``benchmarks/results/real.json``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "real" / "cc15"
QUADRANTS = [(0, 0), (0, 256), (256, 0), (256, 256)]
DEFAULT_METHODS = ("noisy,default,bm3d-model-only,bm3d-white,bm3d-est,bm3d-oracle,nlm-est,nlm-oracle,"
                   "learned-est,learned-oracle,gaussian10")


def crops(which: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    import imageio.v3 as iio

    out = []
    files = sorted(glob.glob(str(DATA / "*_real.png")))
    if not files:
        sys.exit(f"no *_real.png under {DATA}")
    for i, f in enumerate(files):
        noisy = iio.imread(f)
        clean = iio.imread(f.replace("_real", "_mean"))
        quads = QUADRANTS if which == "all" else [QUADRANTS[i % 4]]
        for y, x in quads:
            name = f"{Path(f).name.replace('_real.png', '')}@{y},{x}"
            out.append((name, noisy[y:y + 256, x:x + 256], clean[y:y + 256, x:x + 256]))
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1 / np.mean((a - b) ** 2)))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=-1, data_range=1.0))


def run_method(method: str, noisy: np.ndarray, clean: np.ndarray) -> tuple[np.ndarray, dict]:
    """The method's result (H, W, C) float in [0, 1], and what it was told or chose."""
    import restorekit
    from restorekit.noise import estimate

    y = noisy.astype(np.float64) / 255
    rms = float(np.sqrt(np.mean((y - clean.astype(np.float64) / 255) ** 2))) * 255
    info: dict = {}
    if method == "noisy":
        return y, info
    if method == "default":
        r = restorekit.restore(noisy)
        info = {"safeguard": None if r.record.safeguard is None else r.record.safeguard.model_dump(),
                "noise": r.record.noise.model_dump() if r.record.noise else None}
        return _hwc(r.restored), info
    if method == "bm3d-model-only":
        from restorekit.noise.denoise import bm3d_colored

        model = estimate(np.moveaxis(y, -1, 0))
        return np.moveaxis(bm3d_colored(np.moveaxis(y, -1, 0), model), 0, -1), {"rms_est": (model.rms * 255).tolist()}
    if method == "bm3d-white":
        ws = estimate(np.moveaxis(y, -1, 0)).white_sigma() * 255
        r = restorekit.restore(noisy, degrade=f"gaussian:{ws:.3f}", prior="bm3d")
        return _hwc(r.restored), {"sigma": ws}
    prior, how = method.rsplit("-", 1) if "-" in method else (method, "")
    if method == "gaussian10":
        r = restorekit.restore(noisy, degrade="gaussian:10")
        return _hwc(r.restored), {"auto": r.record.auto.prior if r.record.auto else None}
    if how == "oracle":
        r = restorekit.restore(noisy, degrade=f"gaussian:{rms:.3f}", prior=prior)
        return _hwc(r.restored), {"sigma": rms}
    if how == "est":
        r = restorekit.restore(noisy, degrade="none", prior=prior)
        return _hwc(r.restored), {}
    raise SystemExit(f"unknown method {method!r}")


def picture(folder: Path, name: str, images: list[np.ndarray], name_as_is: bool = False) -> None:
    """The central 128x128 region of each image, side by side with a 4-pixel white gap."""
    import imageio.v3 as iio

    folder.mkdir(parents=True, exist_ok=True)
    h, w = images[0].shape[:2]
    y, x = (h - 128) // 2, (w - 128) // 2
    gap = np.ones((128, 4, images[0].shape[2]))
    row = [gap if i % 2 else images[i // 2][y:y + 128, x:x + 128] for i in range(2 * len(images) - 1)]
    safe = name if name_as_is else "real-" + name.replace("@", "-").replace(",", "-")
    iio.imwrite(folder / f"{safe}.png", (np.clip(np.concatenate(row, 1), 0, 1) * 255).round().astype(np.uint8))


def simulated_camera_noise(clean: np.ndarray, seed: int = 0) -> np.ndarray:
    """(H, W, 3) in [0, 1] with camera-like noise: Poisson-Gaussian (shot noise of a sensor with 800
    electrons at white, read noise 3 electrons), correlated between neighbours by a 3x3 binomial kernel
    (demosaicking) and in part between channels, then 8-bit."""
    from scipy.ndimage import convolve

    rng = np.random.default_rng(seed)
    white = np.sqrt(0.7) * rng.standard_normal(clean.shape) + np.sqrt(0.3) * rng.standard_normal(clean.shape[:2])[..., None]
    k = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    white = np.stack([convolve(white[..., c], k, mode="reflect") for c in range(3)], -1) / np.sqrt((k**2).sum())
    noisy = clean + np.sqrt(clean / 800 + (3 / 800) ** 2) * white
    return np.round(np.clip(noisy, 0, 1) * 255) / 255


def demo_picture(path: Path) -> None:
    import imageio.v3 as iio

    import restorekit
    from restorekit.run.settings import default_image_path

    clean = iio.imread(default_image_path())[..., :3].astype(np.float64) / 255
    noisy = simulated_camera_noise(clean)
    r = restorekit.restore((noisy * 255).round().astype(np.uint8))
    out = _hwc(r.restored)
    print(f"simulated camera noise: noisy {psnr(noisy, clean):.2f} dB, default {psnr(out, clean):.2f} dB")
    picture(path.parent, path.stem, [noisy, out, clean], name_as_is=True)


def _hwc(x: np.ndarray) -> np.ndarray:
    return np.moveaxis(np.asarray(x, dtype=np.float64), 0, -1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default=DEFAULT_METHODS)
    ap.add_argument("--crops", choices=("one", "all"), default="one")
    ap.add_argument("--limit", type=int, default=0, help="only the first N crops (0: all)")
    ap.add_argument("--out", default=str(HERE / "results" / "real.json"))
    ap.add_argument("--pictures", metavar="DIR", help="also write, per crop, DIR/real-<crop>.png: a 128x128 "
                    "region of the noisy input, each method's result and the mean of 500 shots, side by side "
                    "(to look at: cc15 may not be redistributed, so these stay out of the repository)")
    ap.add_argument("--demo-picture", metavar="PNG", help="only write PNG: the embedded image (public domain) "
                    "with simulated camera noise, the default's result and the clean image, side by side "
                    "(what docs/real-noise.md shows), then exit")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if args.demo_picture:
        demo_picture(Path(args.demo_picture))
        return
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    cases = crops(args.crops)
    if args.limit:
        cases = cases[: args.limit]
    rows: list[dict] = []
    for name, noisy, clean in cases:
        ref = clean.astype(np.float64) / 255
        shown = []
        for m in methods:
            t = time.perf_counter()
            out, info = run_method(m, noisy, clean)
            dt = time.perf_counter() - t
            shown.append(out)
            row = {"crop": name, "method": m, "psnr": psnr(out, ref), "ssim": ssim(out, ref), "seconds": dt, **info}
            rows.append(row)
            print(f"{name:28s} {m:16s} {row['psnr']:6.2f} {row['ssim']:.4f} {dt:6.1f}s", flush=True)
        if args.pictures:
            picture(Path(args.pictures), name, [*shown, ref])
    print()
    print(f"{'method':16s} {'PSNR':>6s} {'vs noisy':>8s} {'min gain':>8s} {'SSIM':>6s} {'median s':>8s}  ({len(cases)} crops)")
    noisy_psnr = {r["crop"]: r["psnr"] for r in rows if r["method"] == "noisy"}
    summary = {}
    for m in methods:
        rs = [r for r in rows if r["method"] == m]
        p = float(np.mean([r["psnr"] for r in rs]))
        gains = [r["psnr"] - noisy_psnr[r["crop"]] for r in rs if r["crop"] in noisy_psnr]
        summary[m] = {"psnr": p, "ssim": float(np.mean([r["ssim"] for r in rs])),
                      "gain": float(np.mean(gains)) if gains else None,
                      "min_gain": float(np.min(gains)) if gains else None,
                      "median_seconds": float(np.median([r["seconds"] for r in rs]))}
        s = summary[m]
        print(f"{m:16s} {p:6.2f} {s['gain'] if s['gain'] is not None else float('nan'):+8.2f} "
              f"{s['min_gain'] if s['min_gain'] is not None else float('nan'):+8.2f} {s['ssim']:6.4f} "
              f"{s['median_seconds']:8.1f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out).with_suffix(".tmp")
    tmp.write_text(json.dumps({"crops": args.crops, "n": len(cases), "summary": summary, "rows": rows}, indent=1))
    os.replace(tmp, args.out)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
