"""cpu-256: the default restoration against every classical baseline, per task, at 256x256 on a CPU.

For each task (a degradation) and each image (a 256x256 centre crop of a
bench image), one process runs, side by side and on the same observation
(same seed):

* ``default``: ``restorekit.restore(image, mode="benchmark", degrade=D)`` with nothing else
  given, i.e. ``--prior auto`` (restorekit/run/auto.py says what it picks);
* every classical baseline of the task (restorekit-classic's solvers, TV by
  restorekit's own loop, bicubic for super-resolution).

It reports per image and as medians: PSNR and SSIM, wall seconds, the
margin of the default over the best baseline, and the time-to-match: the
wall time at which the default's output first reached the best baseline's
PSNR (from the fit's history: the running average's PSNR, at report
intervals; for ``keep_known`` fits the history scores the network output
before the observed pixels are put back, so the time is an upper bound).
Prints tables and writes JSON.

    python benchmarks/cpu256.py                            # every task, 3 images each
    python benchmarks/cpu256.py --tasks bern50,sr4 --images 1
    python benchmarks/cpu256.py --tasks g25c-wide,g50c-wide --images 21 --out benchmarks/results/cpu-256-colour.json
    python benchmarks/cpu256.py --out benchmarks/results/cpu-256.json

Pin threads and run alone: two torch processes on 2 cores run 10x slower.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from run import git_commit, machine, table, write_json  # noqa: E402

COLOUR = ["denoise9/house", "denoise9/peppers", "denoise9/kodim03"]
GRAY = ["inpaint11/house", "inpaint11/boat", "inpaint11/barbara"]
#: every colour bench image with both sides >= 256 px, duplicates left out (set14 face = set5 head, set14
#: pepper = denoise9 peppers, set14 lenna ~ denoise9 lena); gray-stored ones (set14 bridge, man) left out
COLOUR_WIDE = [
    *(f"denoise9/{n}" for n in ("baboon", "f16", "house", "kodim01", "kodim02", "kodim03", "kodim12", "lena",
                                "peppers")),
    *(f"set5/{n}" for n in ("baby", "bird", "butterfly", "head")),
    *(f"set14/{n}" for n in ("baboon", "barbara", "coastguard", "flowers", "foreman", "monarch", "ppt3", "zebra")),
]
DENOISERS = ["bm3d", "nlm", "tv-chambolle", "wavelet"]
#: the shipped learned denoiser, alone and averaged with BM3D
LEARNED = ("learned", "bm3d+learned")


@dataclass(frozen=True)
class Task:
    name: str
    degrade: str
    images: tuple[str, ...]
    gray: bool
    baselines: tuple[str, ...]
    #: restorekit methods shown beside the default (not baselines: the margin is over the classical ones)
    candidates: tuple[str, ...] = ()


TASKS = [
    Task("g25c", "gaussian:25", tuple(COLOUR), False, tuple(DENOISERS), LEARNED),
    Task("g50c", "gaussian:50", tuple(COLOUR), False, tuple(DENOISERS), LEARNED),
    Task("g25g", "gaussian:25", tuple(GRAY), True, tuple(DENOISERS), LEARNED),
    Task("g50g", "gaussian:50", tuple(GRAY), True, tuple(DENOISERS), LEARNED),
    # impulse noise: the plain median filter (no detection), and the solvers on the detected pixels
    Task("sp10", "salt-pepper:0.1", tuple(COLOUR), False, ("median:detect=false", "median", "biharmonic", "bm3d")),
    Task("stripes", "periodic", tuple(COLOUR), False, ("notch", "bm3d", "nlm", "wavelet")),
    Task("poisson10", "poisson:10", tuple(COLOUR), False, tuple(DENOISERS), LEARNED),
    Task("bern50", "bernoulli:0.5", tuple(COLOUR), False, ("biharmonic", "tv", "nlm")),
    Task("text", "text", tuple(COLOUR), False, ("biharmonic", "tv")),
    Task("box", "box", tuple(COLOUR), False, ("biharmonic", "tv")),
    Task("sr4", "downsample:4", tuple(COLOUR), False, ("bicubic", "tv")),
    # colour Gaussian noise on 21 images against the strongest baseline (BM3D won every colour row above);
    # not in the default task list: run with --tasks g25c-wide,g50c-wide --images 21
    Task("g25c-wide", "gaussian:25", tuple(COLOUR_WIDE), False, ("bm3d", "nlm"), ("learned",)),
    Task("g50c-wide", "gaussian:50", tuple(COLOUR_WIDE), False, ("bm3d", "nlm"), ("learned",)),
]
#: what runs when --tasks is not given
DEFAULT_TASKS = [t.name for t in TASKS if not t.name.endswith("-wide")]


def crop(path: Path, gray: bool, size: int) -> np.ndarray:
    import imageio.v3 as iio

    a = iio.imread(path)
    if a.ndim == 3 and a.shape[-1] == 4:
        a = a[..., :3]
    if gray and a.ndim == 3:
        a = np.round(a[..., :3].astype(np.float64) @ [0.299, 0.587, 0.114]).astype(np.uint8)
    if not gray and a.ndim == 2:
        a = np.stack([a] * 3, -1)
    h, w = a.shape[:2]
    t, l = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(a[t:t + size, l:l + size])


def method_args(method: str, degrade: str) -> dict[str, Any]:
    """restore() keywords of one method: the default gives nothing but the degradation."""
    if method == "default":
        return {"degrade": degrade}
    if "+" in method:  # several solvers: the mean of their results
        return {"degrade": degrade, "prior": method.split("+")}
    name, _, params = method.partition(":")
    if name == "median" and "detect=false" in params:
        # the plain median filter: the observation as it is, impulses and all
        return {"degrade": degrade.replace("salt-pepper:0.1", "salt-pepper:amount=0.1,detect=false"),
                "prior": "median"}
    if name == "tv":
        return {"degrade": degrade, "prior": "tv:0.01", "net": "identity", "precision": "fp32"}
    return {"degrade": degrade, "prior": method}


def run_one(image: np.ndarray, method: str, degrade: str, seed: int) -> dict[str, Any]:
    import restorekit
    from restorekit.run.compare import observation_digest

    t0 = time.perf_counter()
    try:
        res = restorekit.restore(image, mode="benchmark", seed=seed, **method_args(method, degrade))
    except Exception as exc:  # noqa: BLE001 - a failing method is a row, not the end of the benchmark
        return {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
    wall = time.perf_counter() - t0
    rec = res.record
    out = {"status": "ok", "psnr": res.metrics.get("psnr"), "ssim": res.metrics.get("ssim"), "wall_s": round(wall, 2),
           "fit_s": rec.timings.fit_s, "iterations": rec.result.iterations_run,
           "observation": observation_digest(res.degraded)}
    if rec.auto is not None:
        out["auto"] = {"prior": rec.auto.prior, "net": rec.auto.net, "precision": rec.auto.precision,
                       "time_limit_s": rec.auto.time_limit_s}
    h = rec.history
    if h.time:
        out["history"] = {"time": h.time, "psnr_avg": h.psnr_avg if any(v is not None for v in h.psnr_avg) else h.psnr}
    return out


def time_to_match(entry: dict[str, Any], target: float) -> float | None:
    """Seconds (of fitting, plus the run's overhead) until the default first reached ``target`` dB."""
    if entry.get("psnr") is None:
        return None
    hist = entry.get("history")
    if not hist:  # a direct solver: its wall time, if it matched at all
        return entry["wall_s"] if entry["psnr"] >= target else None
    overhead = max(0.0, entry["wall_s"] - entry["fit_s"])
    for t, p in zip(hist["time"], hist["psnr_avg"]):
        if p is not None and p >= target:
            return round(t + overhead, 1)
    return entry["wall_s"] if entry["psnr"] >= target else None


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/cpu256.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default=",".join(DEFAULT_TASKS),
                    help="comma-separated task names (default: all but the -wide ones)")
    ap.add_argument("--images", type=int, default=3, help="images per task (the first N of its list)")
    ap.add_argument("--size", type=int, default=256, help="crop side")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "bench"))
    ap.add_argument("--out", default=str(HERE / "results" / "cpu-256.json"))
    ap.add_argument("--render", metavar="JSON", help="print the table of an earlier run and exit")
    args = ap.parse_args(argv)
    if args.render:
        import json

        print(render(json.loads(Path(args.render).read_text())))
        return 0

    import torch

    torch.set_num_threads(args.threads)
    wanted = args.tasks.split(",")
    unknown = set(wanted) - {t.name for t in TASKS}
    if unknown:
        ap.error(f"unknown task(s): {', '.join(sorted(unknown))}")
    doc: dict[str, Any] = {"protocol": "cpu-256", "commit": git_commit(), "machine": machine(torch.device("cpu")),
                           "size": args.size, "seed": args.seed, "command": "python benchmarks/cpu256.py " + " ".join(argv),
                           "tasks": {}, "status": "running"}
    out_path = Path(args.out)
    for task in [t for t in TASKS if t.name in wanted]:
        rows = []
        for rel in task.images[: args.images]:
            image = crop(Path(args.data) / f"{rel}.png", task.gray, args.size)
            methods = ("default", *task.baselines, *task.candidates)
            entries = {m: run_one(image, m, task.degrade, args.seed) for m in methods}
            digests = {e.get("observation") for e in entries.values() if e.get("status") == "ok"}
            if len(digests) > 1:
                print(f"warning: {task.name}/{rel}: the methods saw different observations", file=sys.stderr)
            ok = {m: e for m, e in entries.items() if m in task.baselines and e.get("status") == "ok"}
            best = max(ok, key=lambda m: ok[m]["psnr"]) if ok else None
            d = entries["default"]
            row = {"image": rel, "methods": entries, "best_baseline": best}
            if best and d.get("status") == "ok":
                row["margin_db"] = round(d["psnr"] - ok[best]["psnr"], 3)
                row["time_to_match_s"] = time_to_match(d, ok[best]["psnr"])
            rows.append(row)
            for e in entries.values():
                e.pop("history", None) if e is not d else None
            print(f"{task.name:9s} {rel:20s} default {d.get('psnr', float('nan')):.2f} dB "
                  f"({d.get('wall_s', 0):.0f} s)  best {best} "
                  f"{ok[best]['psnr'] if best else float('nan'):.2f} dB  margin {row.get('margin_db')}",
                  flush=True)
            doc["tasks"][task.name] = {"degrade": task.degrade, "gray": task.gray, "rows": rows,
                                       "baselines": list(task.baselines), "candidates": list(task.candidates)}
            write_json(out_path, doc)
        doc["tasks"][task.name]["summary"] = summarise(rows, ("default", *task.baselines), task.candidates)
        write_json(out_path, doc)
    doc["status"] = "complete"
    for row in (r for t in doc["tasks"].values() for r in t["rows"]):
        row["methods"]["default"].pop("history", None)
    write_json(out_path, doc)
    print()
    print(render(doc))
    return 0


def summarise(rows: list[dict[str, Any]], methods: tuple[str, ...], candidates: tuple[str, ...] = ()) -> dict[str, Any]:
    def med(values):
        values = [v for v in values if v is not None]
        return round(statistics.median(values), 3) if values else None

    out: dict[str, Any] = {}
    for m in (*methods, *candidates):
        es = [r["methods"][m] for r in rows if r["methods"][m].get("status") == "ok"]
        out[m] = {"psnr": med([e["psnr"] for e in es]), "ssim": med([e["ssim"] for e in es]),
                  "wall_s": med([e["wall_s"] for e in es])}
    base = [m for m in methods if m != "default" and out[m]["psnr"] is not None]
    best = max(base, key=lambda m: out[m]["psnr"]) if base else None
    out["best_baseline"] = best
    out["margin_db"] = None if best is None or out["default"]["psnr"] is None else round(
        out["default"]["psnr"] - out[best]["psnr"], 3)
    out["median_margin_per_image_db"] = med([r.get("margin_db") for r in rows])
    ttm = [r.get("time_to_match_s") for r in rows]
    out["time_to_match_s"] = med(ttm) if all(v is not None for v in ttm) else None
    out["matched"] = sum(v is not None for v in ttm)
    out["choice"] = next((r["methods"]["default"].get("auto") for r in rows if r["methods"]["default"].get("auto")), None)
    return out


def render(doc: dict[str, Any]) -> str:
    headers = ["task", "default chose", "default", "s", "best baseline", "dB", "s", "margin", "per image",
               "time-to-match", "others (restorekit)"]
    body = []
    for name, t in doc["tasks"].items():
        s = t.get("summary")
        if not s:
            continue
        best = s["best_baseline"]
        ch = s.get("choice") or {}
        chose = " ".join(ch.get("prior", [])) + (f" {ch.get('net')}" if ch.get("net") not in (None, "auto") else "")
        ttm = (f"{s['time_to_match_s']:.0f} s" if s["time_to_match_s"] is not None
               else f"never ({s['matched']}/{len(t['rows'])} matched)")
        body.append([name, chose, f"{s['default']['psnr']:.2f}", f"{s['default']['wall_s']:.0f}", best or "-",
                     f"{s[best]['psnr']:.2f}" if best else "-", f"{s[best]['wall_s']:.0f}" if best else "-",
                     f"{s['margin_db']:+.2f}" if s["margin_db"] is not None else "-",
                     f"{s['median_margin_per_image_db']:+.2f}" if s.get("median_margin_per_image_db") is not None else "-",
                     ttm,
                     ", ".join(f"{m} {s[m]['psnr']:.2f}" for m in t.get("candidates", []) if s.get(m, {}).get("psnr"))])
    return table(headers, body) + (
        "\n\n(medians over images; PSNR in dB; s = wall seconds per image; margin: the default's median minus the "
        "best baseline's; per image: the median of the per-image margins over that image's best baseline)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
