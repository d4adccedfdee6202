"""Clean photos through the default: does ``restorekit run IMG`` leave a clean image alone? (issue 20)

``restorekit run IMG`` with no options takes IMG as degraded by real noise of unknown level and denoises
it.  A clean photo must come back nearly unchanged: PSNR of the result to its own input >= 35 dB.  This
runs the default (``restorekit.restore(img)`` with nothing else, as the CLI with no flags and
``benchmarks/real.py``'s ``default`` method do) on the 256x256 centre crop of each image and reports the
PSNR to the input (null in the JSON where the input came back unchanged), the estimated noise RMS (0-255,
mean over channels) and what the safeguard did.

Sets (``--sets``, comma-separated):

* ``dev`` (developed on): ``../shared/data/bench/set5``, ``set14`` and ``denoise9``.
* ``check`` (not tuned on): every 20th file of ``../shared/data/train/cbsd432`` in name order (22 colour
  photos) and the 15 mean-of-500 images of ``../shared/data/real/cc15`` (``*_mean.png``).

``--whole``: the whole images instead of their centre crops.  One thread
(``OMP_NUM_THREADS=1 python benchmarks/clean.py``): it prints a table and writes
``benchmarks/results/clean.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
SIDE = 256
BAR = 35.0
#: every STRIDE-th file of cbsd432 (name order) is in the check set
STRIDE = 20


def images(sets: list[str]) -> list[tuple[str, str, Path]]:
    """(set, name, path) of the images in ``sets``."""
    out: list[tuple[str, str, Path]] = []
    for s in sets:
        if s == "dev":
            for d in ("set5", "set14", "denoise9"):
                out += [("dev", f"{d}/{p.stem}", p) for p in sorted((DATA / "bench" / d).glob("*.png"))]
        elif s == "check":
            files = sorted(p for p in (DATA / "train" / "cbsd432").iterdir() if p.suffix.lower() in (".png", ".jpg"))
            out += [("check", f"cbsd432/{p.stem}", p) for p in files[::STRIDE]]
            out += [("check", f"cc15/{p.stem}", p) for p in sorted((DATA / "real" / "cc15").glob("*_mean.png"))]
        else:
            raise SystemExit(f"unknown set {s!r} (dev, check)")
    if not out:
        raise SystemExit(f"no images under {DATA}")
    return out


def centre_crop(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    y, x = max(0, (h - SIDE) // 2), max(0, (w - SIDE) // 2)
    return img[y:y + SIDE, x:x + SIDE]


def load(path: Path, whole: bool = False) -> np.ndarray:
    import imageio.v3 as iio

    img = iio.imread(path)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    return np.ascontiguousarray(img if whole else centre_crop(img))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(1 / mse))


def run_one(img: np.ndarray) -> dict:
    """The default on one clean crop: PSNR of its result to the input, the noise estimate, the safeguard."""
    import restorekit

    t = time.perf_counter()
    r = restorekit.restore(img)
    dt = time.perf_counter() - t
    x = img.astype(np.float64) / 255
    out = np.asarray(r.image, dtype=np.float64) / 255
    noise = r.record.noise.model_dump() if r.record.noise else None
    g = r.record.safeguard
    return {"psnr": psnr(out, x), "seconds": dt,
            "rms_255": float(np.mean(noise["rms_255"])) if noise else None,
            "safeguard": g.action if g else None, "check": g.check if g else None, "score": g.score if g else None,
            "noise": noise}


def summarise(rows: list[dict]) -> dict:
    """Per set: how many images, which are below the bar, the smallest and the median PSNR (an image returned
    unchanged has an infinite PSNR, so no mean), and how many were returned unchanged."""
    out = {}
    for group in dict.fromkeys(r["set"] for r in rows):
        mine = [r for r in rows if r["set"] == group]
        ps = [float("inf") if r["psnr"] is None else r["psnr"] for r in mine]
        out[group] = {"n": len(ps), "below_35": [r["image"] for r, p in zip(mine, ps) if p < BAR],
                      "min": _finite(np.min(ps)), "median": _finite(np.median(ps)),
                      "unchanged": sum(1 for p in ps if p == float("inf"))}
    return out


def _finite(v: float) -> float | None:
    """``v``, or None where it is infinite (every image of the set came back unchanged)."""
    return float(v) if np.isfinite(v) else None


def _db(v: float | None) -> str:
    return "inf" if v is None else f"{v:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default="dev,check", help="comma-separated: dev, check (default both)")
    ap.add_argument("--only", default="", help="only images whose name contains this")
    ap.add_argument("--out", default=str(HERE / "results" / "clean.json"))
    ap.add_argument("--whole", action="store_true", help="the whole images, not their 256x256 centre crops")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    cases = [c for c in images([s.strip() for s in args.sets.split(",") if s.strip()]) if args.only in c[1]]
    rows = []
    print(f"{'image':34s} {'PSNR':>6s} {'RMS est':>7s} {'safeguard':>9s} {'check':>11s} {'score':>6s} {'s':>5s}")
    for group, name, path in cases:
        row = {"set": group, "image": name, **run_one(load(path, args.whole))}
        rows.append(row)
        rms = row["rms_255"] if row["rms_255"] is not None else float("nan")
        score = row["score"] if row["score"] is not None else float("nan")
        print(f"{name:34s} {row['psnr']:6.2f} {rms:7.2f} {str(row['safeguard']):>9s} {str(row['check']):>11s} "
              f"{score:6.2f} {row['seconds']:5.1f}", flush=True)
    print()
    summary = summarise(rows)
    for group, s in summary.items():
        print(f"{group:6s} {s['n']:3d} images: {len(s['below_35'])} below {BAR:g} dB "
              f"({', '.join(s['below_35']) or 'none'}), min {_db(s['min'])}, median {_db(s['median'])}, "
              f"returned unchanged {s['unchanged']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out).with_suffix(".tmp")
    # an image returned unchanged has an infinite PSNR: null in the JSON (which has no infinity)
    kept = [{**r, "psnr": None if r["psnr"] == float("inf") else r["psnr"]} for r in rows]
    tmp.write_text(json.dumps({"side": None if args.whole else SIDE, "summary": summary, "rows": kept}, indent=1, allow_nan=False))
    os.replace(tmp, args.out)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
