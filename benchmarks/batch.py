"""Batch throughput: images per hour of ``restorekit batch`` for worker/thread layouts and ``--stack K``.

Makes a folder of ``--images`` crops (``--size`` pixels square) of the
benchmark images (denoise9 in the data's MANIFEST.txt, checked against its
digests; never data/train) and restores it with ``restorekit batch``, one
fresh process per run, for each configuration: ``WxT`` is W workers of T
torch threads (``1x1`` in-process, ``2x1`` a local pool), ``WxT:sK`` adds
``--stack K``.  Every run is the same work: Gaussian noise 25 on the clean
crops, a fixed small net, a fixed iteration count, no stopping rule, seed 0.
Configurations alternate within each repeat (reversed every other repeat,
so a drift in the machine's speed hits all alike); the table shows the
median images per hour, the median of the per-repeat ratios to the first
configuration (the baseline), and how far each image's PSNR moved from the
baseline's (threads and stacking change the order of floating-point sums,
and DIP's optimisation amplifies rounding: this says by how much).  Prints
a table and writes JSON.

    python benchmarks/batch.py                      # 32 64x64 crops, 300 iterations, 3 repeats
    python benchmarks/batch.py --size 32            # the same on 32x32 crops (stacking gains more there)
    python benchmarks/batch.py --quick              # smoke: 8 crops, 20 iterations, 1 repeat
    python benchmarks/batch.py --configs 1x1,1x1:s4,2x1:s4 --repeats 5

The bars it reports: 2 workers x 1 thread at least 1.6x one worker x 1
thread and 1.2x one worker x 2 threads; the gain of --stack 4 and 8 over
one at a time (1x1), and of 2 workers stacking 4 each.  On a CPU the
stacked convolutions do the same arithmetic in fewer, larger calls: the
gain is the per-call overhead saved, and shrinks as the images grow (K
images' activations leave the cache); on a GPU it is the idle device
filled.  Run it on an otherwise idle machine: the load average
at the start and end is recorded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from run import data_dir, git_commit, machine, table, write_json  # noqa: E402

#: the work of every run: small enough for a 2-core CPU, a real DIP fit all the same
NET = "skip:levels=3,channels=16,skip=4"
DEGRADE = "gaussian:25"
DEFAULT_CONFIGS = "1x1,1x2,2x1,1x1:s4,1x1:s8,2x1:s4"
#: the bars: (numerator, denominator, at least)
BARS = (("2x1", "1x1", 1.6), ("2x1", "1x2", 1.2))
#: crop centres, as fractions of the image's height and width (4 per image)
POSITIONS = ((0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_config(text: str) -> dict[str, Any]:
    """``WxT`` or ``WxT:sK`` -> workers, threads, stack."""
    layout, _, stack = text.strip().partition(":")
    try:
        w, t = (int(v) for v in layout.split("x"))
        k = int(stack[1:]) if stack else 1
        if not stack.startswith("s") and stack:
            raise ValueError
    except ValueError:
        raise SystemExit(f"error: bad configuration {text!r} (WxT or WxT:sK, e.g. 2x1 or 1x1:s4)") from None
    if min(w, t, k) < 1:
        raise SystemExit(f"error: bad configuration {text!r}: every number must be at least 1")
    return {"name": text.strip(), "workers": w, "threads": t, "stack": k}


def source_images(data: Path) -> list[Path]:
    """denoise9's images in MANIFEST order, each checked against the manifest's digest."""
    out = []
    for line in (data / "MANIFEST.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.startswith("denoise9/"):
            continue
        rel, _, _, digest = line.split("\t")[:4]
        path = data / rel
        got = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        if got != digest:
            raise SystemExit(f"error: {path} does not match MANIFEST.txt ({got} != {digest})")
        out.append(path)
    if not out:
        raise SystemExit(f"error: no denoise9 images listed in {data / 'MANIFEST.txt'}")
    return out


def make_crops(data: Path, folder: Path, count: int, size: int) -> list[dict[str, Any]]:
    """``count`` size x size crops: every image at the first position, then the next position, ..."""
    import imageio.v3 as iio

    sources = source_images(data)
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for n in range(count):
        src = sources[n % len(sources)]
        fy, fx = POSITIONS[(n // len(sources)) % len(POSITIONS)]
        img = iio.imread(src)
        h, w = img.shape[:2]
        top = min(max(0, int(fy * h) - size // 2), h - size)
        left = min(max(0, int(fx * w) - size // 2), w - size)
        crop = img[top : top + size, left : left + size]
        name = f"{n:03d}-{src.stem}.png"
        iio.imwrite(folder / name, crop)
        made.append({"file": name, "source": src.relative_to(data).as_posix(), "top": top, "left": left})
    return made


def psnrs(out: Path) -> dict[str, float]:
    """Each image's PSNR from the batch's manifest."""
    db = sqlite3.connect(out / "manifest.sqlite")
    try:
        rows = db.execute("SELECT key, metrics FROM items WHERE status = 'done'").fetchall()
    finally:
        db.close()
    return {k: json.loads(m)["psnr"] for k, m in rows if m}


def run_once(cfg: dict[str, Any], images: Path, work: Path, iters: int, timeout: float) -> dict[str, Any]:
    """One ``restorekit batch`` in a fresh process; its summary, wall time and PSNRs."""
    out = work / f"out-{cfg['name'].replace(':', '-')}"
    shutil.rmtree(out, ignore_errors=True)
    threads = str(cfg["threads"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    cmd = [sys.executable, "-m", "restorekit.cli", "batch", str(images), str(out), "--mode", "benchmark", "--degrade", DEGRADE,
           "--net", NET, "--iters", str(iters), "--stop", "none", "--seed", "0", "--device", "cpu",
           "--workers", str(cfg["workers"]), "--threads", threads, "--stack", str(cfg["stack"]), "--json"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"error: {cfg['name']} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    summary = json.loads(proc.stdout)
    result = {"seconds": summary["seconds"], "wall_s": wall, "done": summary["done"], "failed": summary["failed"],
              "images_per_hour": 3600.0 * summary["done"] / summary["seconds"], "psnr": psnrs(out)}
    shutil.rmtree(out, ignore_errors=True)
    return result


def loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default=DEFAULT_CONFIGS,
                    help=f"comma-separated WxT[:sK]; the first is the baseline (default {DEFAULT_CONFIGS})")
    ap.add_argument("--images", type=int, help="crops in the folder (default 32; --quick 8)")
    ap.add_argument("--size", type=int, default=64, help="crop side in pixels (a multiple of 8 for the net)")
    ap.add_argument("--iters", type=int, help="iterations per image (default 300; --quick 20)")
    ap.add_argument("--repeats", type=int, help="runs of each configuration, alternating (default 3; --quick 1)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: few images, few iterations, one repeat")
    ap.add_argument("--data", help="the benchmark data folder (holding MANIFEST.txt)")
    ap.add_argument("--work", type=Path, help="where the crops and outputs go (default: a temporary folder)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds allowed per batch run")
    ap.add_argument("--out", type=Path, help="the JSON (default benchmarks/results/batch.json; --quick: batch-quick.json)")
    args = ap.parse_args(argv)
    images = args.images or (8 if args.quick else 32)
    iters = args.iters or (20 if args.quick else 300)
    repeats = args.repeats or (1 if args.quick else 3)
    out_json = args.out or HERE / "results" / ("batch-quick.json" if args.quick else "batch.json")
    configs = [parse_config(c) for c in args.configs.split(",") if c.strip()]
    if len({c["name"] for c in configs}) != len(configs):
        ap.error("a configuration is listed twice")
    if args.size % 8 or args.size < 16:
        ap.error("--size must be a multiple of 8, at least 16 (the net has 3 levels)")

    import torch

    work = args.work or Path(tempfile.mkdtemp(prefix="restorekit-bbench-"))
    data = data_dir(args.data)
    folder = work / "in"
    shutil.rmtree(folder, ignore_errors=True)
    crops = make_crops(data, folder, images, args.size)
    doc: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "git_commit": git_commit(), "machine": machine(torch.device("cpu")),
        "loadavg_start": loadavg(), "images": images, "size": args.size, "iters": iters, "repeats": repeats,
        "net": NET, "degrade": DEGRADE, "stop": "none", "seed": 0, "crops": crops, "baseline": configs[0]["name"],
        "configs": [], "runs": [], "status": "running",
    }
    runs: dict[str, list[dict[str, Any]]] = {c["name"]: [] for c in configs}
    for r in range(repeats):
        order = configs if r % 2 == 0 else list(reversed(configs))
        for cfg in order:
            res = run_once(cfg, folder, work, iters, args.timeout)
            runs[cfg["name"]].append(res)
            doc["runs"].append({"repeat": r, "config": cfg["name"], **{k: v for k, v in res.items() if k != "psnr"}})
            log(f"[repeat {r + 1}/{repeats}] {cfg['name']:>8}: {res['images_per_hour']:8.0f} images/h "
                f"({res['seconds']:.1f} s for {res['done']} images, {res['failed']} failed)")
            write_json(out_json, doc)
    base = configs[0]["name"]
    rows = []
    for cfg in configs:
        name = cfg["name"]
        rates = [x["images_per_hour"] for x in runs[name]]
        ratios = [x["images_per_hour"] / b["images_per_hour"] for x, b in zip(runs[name], runs[base])]
        drift = [abs(x["psnr"][k] - b["psnr"][k]) for x, b in zip(runs[name], runs[base]) for k in b["psnr"]
                 if k in x["psnr"]]
        entry = {**cfg, "images_per_hour": rates, "images_per_hour_median": statistics.median(rates),
                 "ratio_to_baseline": ratios, "ratio_to_baseline_median": statistics.median(ratios),
                 "psnr_mean": statistics.mean(v for x in runs[name] for v in x["psnr"].values()),
                 "psnr_vs_baseline_max_abs_db": max(drift) if drift else None,
                 "psnr_vs_baseline_mean_abs_db": statistics.mean(drift) if drift else None}
        doc["configs"].append(entry)
        rows.append([name, str(cfg["workers"]), str(cfg["threads"]), str(cfg["stack"]),
                     f"{entry['images_per_hour_median']:.0f}", f"{entry['ratio_to_baseline_median']:.2f}",
                     f"{min(ratios):.2f}-{max(ratios):.2f}", f"{entry['psnr_mean']:.2f}",
                     "-" if name == base else f"{entry['psnr_vs_baseline_max_abs_db']:.3f}"])
    by_name = {c["name"]: c for c in doc["configs"]}
    bars = []
    for num, den, need in BARS:
        if num in runs and den in runs:
            ratio = statistics.median(x["images_per_hour"] / y["images_per_hour"] for x, y in zip(runs[num], runs[den]))
            bars.append({"what": f"{num} / {den}", "ratio": ratio, "bar": need, "pass": ratio >= need})
    for c in configs:
        if c["stack"] > 1:
            bars.append({"what": f"{c['name']} / {base} (stacked gain)", "ratio": by_name[c["name"]]["ratio_to_baseline_median"],
                         "bar": None, "pass": None})
    doc["bars"] = bars
    doc["loadavg_end"] = loadavg()
    doc["status"] = "complete"
    print(table(["config", "workers", "threads", "stack", "images/h", f"x {base}", "range", "PSNR",
                 f"max |dPSNR| vs {base}"], rows))
    print()
    for b in bars:
        verdict = "" if b["bar"] is None else f"  (bar {b['bar']:.1f}x: {'pass' if b['pass'] else 'FAIL'})"
        print(f"{b['what']}: {b['ratio']:.2f}x{verdict}")
    print(f"{images} crops {args.size}x{args.size} from denoise9, {DEGRADE}, net {NET}, {iters} iterations, "
          f"{repeats} repeat(s); {os.cpu_count()} cores, load average {doc['loadavg_start']} -> {doc['loadavg_end']}")
    write_json(out_json, doc)
    print(f"JSON: {out_json}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
