"""Dehazing and watermark removal on synthetic cases made from scikit-image's bundled photos: nothing is downloaded.

    python benchmarks/decompose.py                  # 128x128, tables + benchmarks/results/decompose.json
    python benchmarks/decompose.py --size 96 --iters 300 --out /tmp/decompose.json

Dehazing.  Four colour photos (``astronaut``, ``coffee``, ``chelsea``,
``rocket``) resized to ``--size``, hazed by the atmospheric scattering model
``I = J t + A (1 - t)`` with ``t = exp(-beta d)``: the depth ``d`` in [0, 1]
rises towards the top of the frame (a vertical ramp, 0.75 of it, plus smooth
Gaussian noise, 0.25, drawn per photo with a fixed seed) — the usual layout
of an outdoor photo, ground near and sky far; the photos are not outdoor
scenes, so the depth is a plausible synthetic one, not theirs.  The airlight
``A`` is near-white (0.90, 0.92, 0.95) and ``beta`` is 1 (light haze, ``t``
from 0.37 to 1) and 2 (dense, from 0.14 to 1).  Scores: PSNR and SSIM
(scikit-image, ``data_range=1``, over the colour channels) of the dehazed
layer against the true ``J`` (and of the hazy input itself), the mean
absolute error of the transmission against the true ``t``, and the airlight's
error (the largest of its three channels' absolute errors).  Methods:
``double-dip`` (its default spec, 600 steps unless ``--iters``) and
``dark-channel`` (He, Sun, Tang).

Watermark.  A text-like mark (the letters ``RK`` in 3-pixel strokes at
128x128, drawn with ``skimage.draw`` rectangles and an ellipse, scaled with
``--size``) blended in white at opacity 0.4 (``(1 - a) I + a``) inside a box
on the same four photos, at
a different place in each; the hint is the mark's bounding box grown by 3
pixels.  Scores: PSNR of the ``clean`` layer against the original inside the
box and over the whole image; double-dip's ``clean`` layer is its generator's
output everywhere, so the row ``double-dip, pasted`` also scores the input with
only the box replaced by it.  Baselines: the watermarked input itself; biharmonic
inpainting (``skimage.restoration.inpaint_biharmonic``) of the mark's pixels
given the *true* mask (an oracle: no method here is told the mask); and, with
only the box, a white top-hat of the luminance inside the box (a disc of radius
3 pixels at 128x128) thresholded by Otsu, dilated by one pixel and inpainted
the same way (a classical detect-and-inpaint, non-oracle).

Everything runs on one CPU thread (``torch.set_num_threads(1)``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "decompose.json"
HAZE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
MARK_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
AIRLIGHT = (0.90, 0.92, 0.95)
BETAS = (1.0, 2.0)
OPACITY = 0.4


def _photo(name: str, size: int) -> np.ndarray:
    """A bundled photo as ``(3, size, size)`` float32 in [0, 1] (a centred square crop, then resized)."""
    from skimage import data
    from skimage.transform import resize

    a = np.asarray(getattr(data, name)(), dtype=np.float64)[..., :3] / 255.0
    h, w = a.shape[:2]
    s = min(h, w)
    a = a[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    a = resize(a, (size, size), anti_aliasing=True)
    return np.clip(np.moveaxis(a, -1, 0), 0, 1).astype(np.float32)


def _psnr(truth: np.ndarray, test: np.ndarray) -> float:
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(np.asarray(truth, np.float64), np.asarray(test, np.float64), data_range=1.0))


def _ssim(truth: np.ndarray, test: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(np.asarray(truth, np.float64), np.asarray(test, np.float64), data_range=1.0,
                                       channel_axis=0))


# ---------------------------------------------------------------------------
# dehazing
# ---------------------------------------------------------------------------
def depth(size: int, seed: int) -> np.ndarray:
    """A plausible depth map ``(size, size)`` in [0, 1]: far at the top (0.75 of a vertical ramp) plus smooth
    noise (0.25; Gaussian noise smoothed over an eighth of the side, scaled to [0, 1])."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    ramp = np.linspace(1.0, 0.0, size)[:, None] * np.ones((1, size))
    noise = ndimage.gaussian_filter(rng.standard_normal((size, size)), size / 8, mode="reflect")
    noise = (noise - noise.min()) / (noise.max() - noise.min() + 1e-12)
    return 0.75 * ramp + 0.25 * noise


def haze_cases(size: int) -> list[dict]:
    """``{"case", "beta", "clear" (3, H, W), "hazy", "t" (H, W), "airlight" (3,)}`` for every photo and beta."""
    a = np.array(AIRLIGHT, np.float32)
    out = []
    for i, name in enumerate(HAZE_PHOTOS):
        clear = _photo(name, size)
        d = depth(size, seed=100 + i)
        for beta in BETAS:
            t = np.exp(-beta * d).astype(np.float32)
            hazy = np.clip(clear * t[None] + a[:, None, None] * (1 - t[None]), 0, 1).astype(np.float32)
            out.append({"case": name, "beta": beta, "clear": clear, "hazy": hazy, "t": t, "airlight": a})
    return out


def dehaze_rows(size: int, methods: list[str], seed: int = 0, iters: int | None = None, log=print) -> list[dict]:
    from restorekit import Budget
    from restorekit.plugins import get_registry

    reg = get_registry()
    rows = []
    for case in haze_cases(size):
        clear, hazy = case["clear"], case["hazy"]
        rows.append({"case": case["case"], "beta": case["beta"], "method": "hazy input", "spec": None,
                     "psnr": round(_psnr(clear, hazy), 2), "ssim": round(_ssim(clear, hazy), 4),
                     "t_mae": None, "airlight_error": None, "airlight": None, "seconds": 0.0})
        for method in methods:
            dec = reg.create("decomposition", method)
            budget = Budget(iterations=iters) if iters and getattr(dec, "iterative", False) else None
            t0 = time.perf_counter()
            out = dec.decompose(hazy.copy(), "dehaze", seed=seed, budget=budget)
            sec = time.perf_counter() - t0
            j = out.layers["dehazed"]
            a = np.asarray(out.layers["airlight"]).reshape(-1)
            t = np.asarray(out.layers["transmission"])[0]
            row = {"case": case["case"], "beta": case["beta"], "method": method, "spec": dec.spec,
                   "psnr": round(_psnr(clear, j), 2), "ssim": round(_ssim(clear, j), 4),
                   "t_mae": round(float(np.abs(t - case["t"]).mean()), 4),
                   "airlight_error": round(float(np.abs(a - case["airlight"]).max()), 4),
                   "airlight": [round(float(v), 4) for v in a], "seconds": round(sec, 3)}
            rows.append(row)
            log(f"dehaze {case['case']:10s} beta {case['beta']:.0f} {method:13s} PSNR {row['psnr']:6.2f} "
                f"SSIM {row['ssim']:.3f}  t MAE {row['t_mae']:.3f}  A err {row['airlight_error']:.3f}  {sec:6.1f} s")
    return rows


# ---------------------------------------------------------------------------
# watermark
# ---------------------------------------------------------------------------
def glyphs(size: int) -> np.ndarray:
    """The mark: the letters ``RK`` as a boolean ``(h, w)`` image, 3-pixel strokes at a 128 side (scaled)."""
    from skimage.draw import ellipse, polygon, rectangle

    s = size / 128
    h, w = max(8, int(round(22 * s))), max(12, int(round(34 * s)))
    sw = max(2, int(round(3 * s)))
    m = np.zeros((h, w), bool)

    def rect(y0, x0, y1, x1):
        rr, cc = rectangle((int(round(y0)), int(round(x0))), end=(int(round(y1)) - 1, int(round(x1)) - 1), shape=m.shape)
        m[rr, cc] = True

    def stroke(p0, p1):  # a thick straight line as a polygon
        (y0, x0), (y1, x1) = p0, p1
        dy, dx = y1 - y0, x1 - x0
        n = np.hypot(dy, dx) or 1.0
        oy, ox = -dx / n * sw / 2, dy / n * sw / 2
        rr, cc = polygon([y0 + oy, y1 + oy, y1 - oy, y0 - oy], [x0 + ox, x1 + ox, x1 - ox, x0 - ox], shape=m.shape)
        m[rr, cc] = True

    # R: a stem, a bowl (an elliptical ring) and a leg
    rect(0, 0, h, sw)
    ry, rx = h * 0.27, w * 0.2
    cy, cx = ry, sw + rx * 0.6
    outer = np.zeros_like(m)
    outer[ellipse(cy, cx, ry, rx, shape=m.shape)] = True
    inner = np.zeros_like(m)
    inner[ellipse(cy, cx, max(ry - sw, 1), max(rx - sw, 1), shape=m.shape)] = True
    m |= outer & ~inner & (np.arange(w)[None, :] >= sw)
    stroke((2 * ry, sw + rx * 0.4), (h - 1, 2 * rx + sw * 0.5))
    # K: a stem and two arms
    k0 = int(round(w * 0.58))
    rect(0, k0, h, k0 + sw)
    stroke((h * 0.55, k0 + sw), (0, w - 1))
    stroke((h * 0.45, k0 + sw), (h - 1, w - 1))
    return m


def mark_cases(size: int) -> list[dict]:
    """``{"case", "clear", "marked", "mask" (H, W) bool, "box" (x, y, w, h) grown by 3 pixels}`` per photo."""
    g = glyphs(size)
    gh, gw = g.shape
    # top-left corners of the mark, as shares of the free room: lower right, centre, upper left, lower left
    places = ((0.85, 0.85), (0.5, 0.5), (0.15, 0.2), (0.8, 0.15))
    out = []
    for name, (fy, fx) in zip(MARK_PHOTOS, places):
        clear = _photo(name, size)
        y, x = int(round(fy * (size - gh))), int(round(fx * (size - gw)))
        mask = np.zeros((size, size), bool)
        mask[y:y + gh, x:x + gw] = g
        a = OPACITY * mask.astype(np.float32)
        marked = ((1 - a)[None] * clear + a[None] * 1.0).astype(np.float32)
        grow = 3
        x0, y0 = max(0, x - grow), max(0, y - grow)
        x1, y1 = min(size, x + gw + grow), min(size, y + gh + grow)
        out.append({"case": name, "clear": clear, "marked": marked, "mask": mask, "box": (x0, y0, x1 - x0, y1 - y0)})
    return out


def _inpaint(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    from skimage.restoration import inpaint_biharmonic

    if not mask.any():
        return image.copy()
    out = inpaint_biharmonic(np.moveaxis(image, 0, -1).astype(np.float64), mask, channel_axis=-1)
    return np.clip(np.moveaxis(out, -1, 0), 0, 1).astype(np.float32)


def tophat_mask(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The non-oracle detection: inside the box, the white top-hat of the luminance (a disc about the
    strokes' width) above Otsu's threshold, dilated by one pixel."""
    from scipy import ndimage
    from skimage.filters import threshold_otsu
    from skimage.morphology import disk, white_tophat

    from restorekit.segment.baselines import gray

    x, y, w, h = box
    size = image.shape[1]
    r = max(2, int(round(3 * size / 128)))
    g = gray(image)[y:y + h, x:x + w]
    th = white_tophat(g, disk(r))
    sub = th > threshold_otsu(th) if np.ptp(th) > 0 else np.zeros_like(th, bool)
    sub = ndimage.binary_dilation(sub)
    out = np.zeros(image.shape[1:], bool)
    out[y:y + h, x:x + w] = sub
    return out


def watermark_rows(size: int, seed: int = 0, iters: int | None = None, with_double_dip: bool = True, log=print) -> list[dict]:
    from restorekit import Budget, Hint
    from restorekit.plugins import get_registry

    dec = get_registry().create("decomposition", "double-dip") if with_double_dip else None
    rows = []
    for case in mark_cases(size):
        clear, marked, box = case["clear"], case["marked"], case["box"]
        x, y, w, h = box
        inside = (slice(None), slice(y, y + h), slice(x, x + w))

        def row(method, result, spec=None, sec=0.0, **extra):
            r = {"case": case["case"], "box": list(box), "method": method, "spec": spec,
                 "psnr_box": round(_psnr(clear[inside], result[inside]), 2),
                 "psnr_whole": round(_psnr(clear, result), 2), "seconds": round(sec, 3), **extra}
            log(f"watermark {case['case']:16s} {method:20s} PSNR box {r['psnr_box']:6.2f}  whole {r['psnr_whole']:6.2f}"
                f"  {sec:6.1f} s")
            return r

        rows.append(row("watermarked input", marked))
        t0 = time.perf_counter()
        rows.append(row("oracle-mask inpaint", _inpaint(marked, case["mask"]), spec="inpaint_biharmonic(true mask)",
                        sec=time.perf_counter() - t0))
        t0 = time.perf_counter()
        found = tophat_mask(marked, box)
        inpainted = _inpaint(marked, found)
        rows.append(row("top-hat inpaint", inpainted, spec="white_tophat + otsu + inpaint_biharmonic",
                        sec=time.perf_counter() - t0,
                        mask_iou=round(float((found & case["mask"]).sum() / max(1, (found | case["mask"]).sum())), 4)))
        if dec is not None:
            budget = Budget(iterations=iters) if iters else None
            t0 = time.perf_counter()
            out = dec.decompose(marked.copy(), "watermark", hint=Hint(box=box), seed=seed, budget=budget)
            sec = time.perf_counter() - t0
            clean = out.layers["clean"]
            opacity = np.asarray(out.mask)
            rows.append(row("double-dip", clean, spec=dec.spec, sec=sec,
                            opacity_mae=round(float(np.abs(opacity - OPACITY * case["mask"]).mean()), 4)))
            pasted = marked.copy()
            pasted[inside] = clean[inside]
            rows.append(row("double-dip, pasted", pasted, spec=dec.spec + " (input outside the box)"))
    return rows


# ---------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------
DEHAZE_COLUMNS = ("hazy input", "double-dip", "dark-channel")
MARK_COLUMNS = ("watermarked input", "top-hat inpaint", "double-dip", "double-dip, pasted", "oracle-mask inpaint")


def dehaze_table(rows: list[dict]) -> str:
    methods = [m for m in DEHAZE_COLUMNS if any(r["method"] == m for r in rows)]
    scored = [m for m in methods if m != "hazy input"]
    head = ("| image | beta | " + " | ".join(f"{m} PSNR / SSIM" for m in methods) + " | "
            + " | ".join(f"{m} t MAE" for m in scored) + " | " + " | ".join(f"{m} A error" for m in scored) + " |")
    lines = [head, "| --- | --- |" + " --- |" * (len(methods) + 2 * len(scored))]
    keys = list(dict.fromkeys((r["case"], r["beta"]) for r in rows))
    for case, beta in keys + [("mean", None)]:
        sel = [r for r in rows if (case == "mean" or (r["case"] == case and r["beta"] == beta))]
        by = {m: [r for r in sel if r["method"] == m] for m in methods}
        psnr = {m: np.mean([r["psnr"] for r in by[m]]) for m in methods}
        best = max(psnr.values())
        cells = []
        for m in methods:
            p, s = psnr[m], np.mean([r["ssim"] for r in by[m]])
            txt = f"{p:.2f} / {s:.3f}"
            cells.append(f"**{txt}**" if p == best else txt)
        for key in ("t_mae", "airlight_error"):
            for m in scored:
                cells.append(f"{np.mean([r[key] for r in by[m]]):.3f}")
        lines.append(f"| {case} | {'' if beta is None else f'{beta:g}'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mark_table(rows: list[dict]) -> str:
    methods = [m for m in MARK_COLUMNS if any(r["method"] == m for r in rows)]
    lines = ["| image | " + " | ".join(f"{m} box / whole" for m in methods) + " |", "| --- |" + " --- |" * len(methods)]
    for case in list(dict.fromkeys(r["case"] for r in rows)) + ["mean"]:
        sel = [r for r in rows if case == "mean" or r["case"] == case]
        vals = {m: (np.mean([r["psnr_box"] for r in sel if r["method"] == m]),
                    np.mean([r["psnr_whole"] for r in sel if r["method"] == m])) for m in methods}
        best = max(v[0] for m, v in vals.items() if m != "oracle-mask inpaint")
        cells = []
        for m in methods:
            b, w = vals[m]
            cells.append((f"**{b:.2f}**" if b == best and m != "oracle-mask inpaint" else f"{b:.2f}") + f" / {w:.2f}")
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=128, help="side of every image (default 128)")
    p.add_argument("--iters", type=int, default=None, help="double-dip's steps (default: its own, 600 for both tasks)")
    p.add_argument("--methods", default="double-dip,dark-channel", help="dehazing methods, comma-separated (default: both)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-dehaze", action="store_true")
    p.add_argument("--no-watermark", action="store_true")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"the JSON results (default {RESULTS.relative_to(ROOT)})")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    start = time.perf_counter()
    haze = [] if args.no_dehaze else dehaze_rows(args.size, methods, args.seed, args.iters, log=log)
    marks = [] if args.no_watermark else watermark_rows(args.size, args.seed, args.iters,
                                                        with_double_dip="double-dip" in methods, log=log)
    seconds = time.perf_counter() - start
    iters = f"{args.iters} steps" if args.iters else "its default steps"
    if haze:
        print(f"Dehazing, {args.size}x{args.size}, one CPU thread, double-dip {iters}: PSNR (dB) / SSIM of the "
              "dehazed layer against the true scene, mean absolute error of the transmission, largest channel "
              "error of the airlight\n")
        print(dehaze_table(haze))
    if marks:
        print(f"\nWatermark (white, opacity {OPACITY}), {args.size}x{args.size}, double-dip {iters}: PSNR (dB) of "
              "the clean layer against the original inside the box / over the whole image; oracle-mask inpaint "
              "is told the true mask\n")
        print(mark_table(marks))
    secs = {}
    for r in haze + marks:
        secs.setdefault(r["method"], []).append(r["seconds"])
    shown = [m for m in secs if m not in ("hazy input", "watermarked input", "double-dip, pasted")]
    print("\nseconds per image: " + ", ".join(f"{m} {np.mean(secs[m]):.{3 if np.mean(secs[m]) < 1 else 1}f}" for m in shown) + f"; total {seconds:.0f} s")
    result = {
        "benchmark": "decompose", "size": args.size, "seed": args.seed, "iters": args.iters, "threads": 1,
        "airlight": list(AIRLIGHT), "betas": list(BETAS), "opacity": OPACITY,
        "python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
        "seconds": round(seconds, 1), "dehaze": haze, "watermark": marks,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
