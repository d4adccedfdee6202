"""Run a named benchmark protocol: print tables, write JSON.

    python benchmarks/run.py --list
    python benchmarks/run.py smoke
    python benchmarks/run.py cpu --out benchmarks/results/cpu.json
    python benchmarks/run.py paper-denoise25 --device cuda
    python benchmarks/run.py paper-sr4 --images 1 --iters 5 --crop 64     # CPU smoke of a GPU protocol

Tables go to stdout, progress to stderr.  The JSON (default
``benchmarks/results/PROTOCOL.json``) is rewritten after every image, so an
interrupted run keeps what finished.  See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import classical
import protocols as P

DIP_METHODS = ("restorekit", "restorekit-bf16", "reference", "reference-ema", "reference-own", "restorekit+auto",
               "restorekit+auto-bf16", "restorekit+eswmv", "restorekit-ens2", "restorekit+tv", "restorekit-sure", "reference-cosine")
#: options measured against the same loop without them: method -> (baseline method, what it adds)
OPTION_METHODS = {
    "restorekit-bf16": ("restorekit", "precision bf16"),
    "restorekit-ens2": ("restorekit", "ensemble of 2 (batched off: 2 sequential fits)"),
    "restorekit+tv": ("restorekit", f"TV penalty ({P.TV_PENALTY}) beside dip"),
    "restorekit-sure": ("restorekit", "SURE data term, observation as input (denoising; 2 passes a step)"),
    "reference-cosine": ("reference", "cosine learning-rate decay to 0"),
}
#: the automatic methods: network precision, and the stopping rule (None: the task's auto_stop)
AUTO_METHODS = {"restorekit+auto": ("fp32", None), "restorekit+auto-bf16": ("bf16", None),
                "restorekit+eswmv": ("fp32", "eswmv:patience=500")}


def auto_stop(task: P.Task) -> str:
    """The rule restorekit+auto uses: the task's, or with "auto" what ``restorekit run`` picks
    (``restorekit.api.auto_stop_spec``: ES-WMV, or none for a noise-free forward model)."""
    if task.auto_stop != "auto":
        return task.auto_stop
    from restorekit import api
    from restorekit.plugins import get_registry

    return api.auto_stop_spec([get_registry().create("degradation", task.degrade)]) or "none"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# environment
# ---------------------------------------------------------------------------
def data_dir(arg: str | None) -> Path:
    candidates = [arg, os.environ.get("RESTOREKIT_BENCH_DATA"), ROOT / "shared" / "data" / "bench",
                  ROOT.parent / "shared" / "data" / "bench", "/work/shared/data/bench"]
    for c in candidates:
        if c and (Path(c) / "MANIFEST.txt").is_file():
            return Path(c)
    raise SystemExit("error: benchmark data not found; pass --data DIR (the folder holding MANIFEST.txt) "
                     "or set RESTOREKIT_BENCH_DATA")


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(device) -> dict[str, Any]:
    import skimage
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "scikit-image": skimage.__version__,
    }
    try:
        import pywt

        info["pywavelets"] = pywt.__version__
    except ImportError:
        info["pywavelets"] = None
    try:
        info["loadavg_start"] = list(os.getloadavg())
    except OSError:
        pass
    return info


# ---------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------
def load_clean(path: Path, task: P.Task, scale_down: float | None) -> np.ndarray:
    """The ground truth as (C, H, W) uint8: optionally scaled down, centre-cropped, cut to the SR factor."""
    from restorekit.io import read_image

    img = read_image(path)
    u8 = np.rint(img.data * 255.0).clip(0, 255).astype(np.uint8)
    if scale_down and scale_down > 1:
        from PIL import Image as PILImage

        _, h, w = u8.shape
        size = (max(1, round(w / scale_down)), max(1, round(h / scale_down)))
        planes = [np.asarray(PILImage.fromarray(ch).resize(size, PILImage.LANCZOS)) for ch in u8]
        u8 = np.stack(planes)
    if task.crop:
        _, h, w = u8.shape
        ch, cw = min(task.crop, h), min(task.crop, w)
        top, left = (h - ch) // 2, (w - cw) // 2
        u8 = u8[:, top : top + ch, left : left + cw]
    if task.kind == "sr":
        f = int(task.level)
        _, h, w = u8.shape
        u8 = u8[:, : h - h % f, : w - w % f]
    return np.ascontiguousarray(u8)


def as_user_array(u8: np.ndarray) -> np.ndarray:
    """(C, H, W) -> what restore() takes: H x W (gray) or H x W x C."""
    return u8[0] if u8.shape[0] == 1 else np.moveaxis(u8, 0, -1)


class Scorer:
    def __init__(self, specs):
        from restorekit.plugins import get_registry

        reg = get_registry()
        self.metrics = [(key, spec, reg.create("metric", spec)) for key, spec in specs]

    def __call__(self, clean: np.ndarray, est: np.ndarray) -> dict[str, float]:
        a = np.moveaxis(clean, 0, -1).astype(np.float64)
        b = np.moveaxis(np.clip(est, 0, 1), 0, -1).astype(np.float64)
        if a.shape != b.shape:
            raise ValueError(f"estimate is {b.shape}, ground truth {a.shape}")
        return {key: float(m.compute(a, b, data_range=1.0)) for key, _, m in self.metrics}


# ---------------------------------------------------------------------------
# methods
# ---------------------------------------------------------------------------
def run_restorekit(task: P.Task, u8: np.ndarray, device: str, seed: int, *, ema: float, iters: int,
                   stop: str | None = None, penalty: str | None = None, sure: bool = False, **extra: Any):
    from restorekit import restore

    dip = task.prior(ema)
    if sure:
        dip = dip.replace("input=noise", "input=observation") + ",sure=true"
    kwargs: dict[str, Any] = {
        "mode": "benchmark", "degrade": task.degrade, "prior": [dip] + ([penalty] if penalty else []), "net": task.net,
        "metrics": [s for _, s in task.metrics], "iters": iters, "lr": task.lr, "seed": seed, "device": device,
        **{k: v for k, v in extra.items() if v is not None},
        "stop": "none" if stop is None else stop,  # fixed iterations unless the method names a rule
    }
    t0 = time.perf_counter()
    res = restore(as_user_array(u8), **kwargs)
    wall = time.perf_counter() - t0
    rec = res.record  # a RunRecord: read through its type
    info = {
        "wall_s": wall,
        "fit_s": rec.timings.fit_s,
        "iterations": rec.result.iterations_run,
        "chosen_iteration": rec.result.iteration,
        "output": rec.result.output,
        "backtracks": rec.result.backtracks,
        "device": rec.settings.device,
        "restorekit_metrics": rec.result.metrics,
        "call": {k: v for k, v in kwargs.items()},
        "stop": rec.settings.stop,
        "ensemble": rec.settings.ensemble,
        "precision": rec.settings.precision,
        "time_limit_s": rec.settings.time_limit_s,
        "stop_reason": rec.result.stop_reason,
        "stopped_early": rec.result.stopped_early,
        # PSNR (all channels, against the clean image) of the current and the averaged output on reporting iterations
        "history": {"iteration": rec.history.iteration, "psnr": rec.history.psnr, "psnr_avg": rec.history.psnr_avg},
    }
    return res, info


def build_net_factory(task: P.Task):
    """The network the task's restorekit spec describes, for the reference loop."""
    from restorekit.plugins import get_registry

    gen = get_registry().create("generator", task.net)

    def build(in_ch: int, out_ch: int):
        return gen.build(in_ch, out_ch)

    return build, gen.stride()


def pad_amounts(size: int, multiple: int) -> tuple[int, int]:
    total = (-size) % multiple
    return total // 2, total - total // 2


def run_reference(task: P.Task, clean: np.ndarray, obs: np.ndarray, mask, device, seed: int, iters: int,
                  rng: str, lr_schedule: str = "constant"):
    """The plain loop on the observation, padded (reflect) to the net's stride and cropped back."""
    import reference_loop as R

    build, stride = build_net_factory(task)
    f = int(task.level) if task.kind == "sr" else 1
    unit = stride // math.gcd(stride, f)
    (t, b), (l, r) = pad_amounts(obs.shape[1], unit), pad_amounts(obs.shape[2], unit)
    y, m = obs, mask
    if t or b or l or r:
        mode = "reflect" if min(obs.shape[1:]) > max(t, b, l, r) else "edge"
        y = np.pad(obs, ((0, 0), (t, b), (l, r)), mode=mode)
        m = None if mask is None else np.pad(mask, ((t, b), (l, r)), mode=mode)
    out_shape = (obs.shape[0], y.shape[1] * f, y.shape[2] * f)
    t0 = time.perf_counter()
    res = R.run_dip(
        y, out_shape=out_shape, build_net=build, mask=m, factor=f, iterations=iters, lr=task.lr,
        input_depth=task.input_depth, reg_noise_std=task.reg_noise, ema=0.99, backtrack_db=task.backtrack,
        check=task.backtrack_check, seed=seed, rng=rng, device=device,
        reference=None if (t or b or l or r) else clean, log_every=max(1, iters // 100), lr_schedule=lr_schedule,
    )
    wall = time.perf_counter() - t0
    H, W = clean.shape[1:]

    def crop(a):
        return a[:, t * f : t * f + H, l * f : l * f + W]

    info = {"wall_s": wall, "fit_s": res.seconds, "iterations": res.iterations, "chosen_iteration": res.iterations,
            "backtracks": res.backtracks, "device": str(device), "rng": rng,
            "history": {"iteration": res.history["iteration"], "psnr": res.history["psnr"],
                        "psnr_avg": res.history["psnr_ema"]}}
    return crop(res.final), crop(res.ema), info


def warm_up(device: str) -> None:
    """One tiny fit, so that first-call costs (imports, kernel selection) are not timed."""
    from restorekit import restore

    restore(np.full((64, 64), 128, np.uint8), mode="benchmark", degrade="gaussian:25", prior="dip", net="skip:channels=8",
            iters=2, device=device)


def bicubic(obs: np.ndarray, factor: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        up = F.interpolate(torch.from_numpy(obs)[None], scale_factor=factor, mode="bicubic", align_corners=False)
    return up[0].clamp(0, 1).numpy()


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------
def run_image(task: P.Task, name: str, path: Path, methods: list[str], opts, scorer: Scorer,
              device) -> dict[str, Any]:
    import reference_loop as R

    u8 = load_clean(path, task, opts.scale_down)
    clean = u8.astype(np.float32) / 255.0
    seed = opts.seed
    iters = task.iters
    out: dict[str, Any] = {"image": name, "shape": list(clean.shape), "methods": {}}
    res_m = out["methods"]
    tag = f"[{task.name} {name}]"

    own = R.synthesize(clean, task.kind, task.level, seed)
    obs, mask = own.y, own.mask
    rk = None

    def record(method: str, est: np.ndarray | None, info: dict[str, Any]) -> None:
        if est is not None:
            info = {"status": "ok", **scorer(clean, est), **info}
        res_m[method] = info
        if info.get("status") == "ok":
            log(f"{tag} {method:16s} psnr {info['psnr']:6.2f}  ssim {info['ssim']:.4f}"
                + (f"  iters {info['iterations']}" if info.get("iterations") else "")
                + f"  {info.get('wall_s', 0):7.1f} s")
        else:
            log(f"{tag} {method:16s} {info.get('status')}: {info.get('reason', '')}")

    # (a) restorekit at fixed iterations; its observation is the one everybody uses
    if "restorekit" in methods:
        try:
            rk, info = run_restorekit(task, u8, opts.device, seed, ema=task.ema, iters=iters)
        except Exception as exc:  # noqa: BLE001 - a failing method must not stop the benchmark
            record("restorekit", None, {"status": "error", "reason": f"{type(exc).__name__}: {exc}"})
        else:
            record("restorekit", rk.restored, info)
            diff = float(np.abs(rk.degraded - obs).max()) if rk.degraded.shape == obs.shape else float("inf")
            same_mask = (mask is None and rk.mask is None) or (
                mask is not None and rk.mask is not None and np.array_equal(mask, rk.mask))
            out["observation_check"] = {"max_abs_diff_own_vs_restorekit": diff, "same_mask": bool(same_mask)}
            if diff > 1e-5 or not same_mask:
                log(f"{tag} warning: own synthesis differs from restorekit's (max diff {diff:.3g}, "
                    f"same mask {same_mask}); using restorekit's observation")
            obs = rk.degraded.astype(np.float32)
            mask = None if rk.mask is None else np.asarray(rk.mask, dtype=bool)

    # (d) baselines on that observation
    sigma = task.level / 255.0 if task.kind == "denoise" else None
    for method in methods:
        if method in DIP_METHODS:
            continue
        if task.kind not in P.APPLIES.get(method, set()):
            res_m[method] = {"status": "n/a"}
            continue
        ok, why = classical.available(method)
        if not ok:
            record(method, None, {"status": "unavailable", "reason": why})
            continue
        t0 = time.perf_counter()
        try:
            if method == "degraded":
                est, extra = obs, {}
            elif method == "bicubic":
                est, extra = bicubic(obs, int(task.level)), {}
            elif method == "tv":
                est, extra = classical.tv(obs, sigma)
            elif method == "nlm":
                est, extra = classical.nlm(obs, sigma)
            elif method == "nlm-est":
                est, extra = classical.nlm_estimated(obs)
            elif method == "wavelet":
                est, extra = classical.wavelet(obs, sigma)
            elif method == "biharmonic":
                est, extra = classical.biharmonic(obs, mask)
            else:
                raise ValueError(f"unknown method {method}")
        except Exception as exc:  # noqa: BLE001
            record(method, None, {"status": "error", "reason": f"{type(exc).__name__}: {exc}"})
            continue
        record(method, est, {"wall_s": time.perf_counter() - t0, "device": "cpu", "settings": extra})

    # (b) the reference loop
    if "reference" in methods or "reference-ema" in methods:
        try:
            final, ema, info = run_reference(task, clean, obs, mask, device, seed, iters, "matched")
        except Exception as exc:  # noqa: BLE001
            err = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
            for mth in ("reference", "reference-ema"):
                if mth in methods:
                    record(mth, None, dict(err))
        else:
            if "reference" in methods:
                record("reference", final, dict(info, output="last"))
            if "reference-ema" in methods:
                record("reference-ema", ema, dict(info, output="ema", note="same run as 'reference'"))
    # the reference loop's variants, final iterates: (random draws, learning-rate schedule)
    for method, (rng, schedule) in {"reference-cosine": ("matched", "cosine"), "reference-own": ("own", "constant")}.items():
        if method not in methods:
            continue
        try:
            final, _, info = run_reference(task, clean, obs, mask, device, seed, iters, rng, schedule)
        except Exception as exc:  # noqa: BLE001
            record(method, None, {"status": "error", "reason": f"{type(exc).__name__}: {exc}"})
        else:
            extra = {"lr_schedule": schedule} if schedule != "constant" else {}
            record(method, final, dict(info, output="last", **extra))

    # (a') restorekit options at fixed iterations, each against plain "restorekit"
    variants = {
        "restorekit-bf16": {"precision": "bf16"},
        "restorekit-ens2": {"ensemble": 2, "ensemble_batched": False},
        "restorekit+tv": {"penalty": P.TV_PENALTY},
        "restorekit-sure": {"sure": True},
    }
    for method, extra in variants.items():
        if method not in methods:
            continue
        if method == "restorekit-sure" and task.kind != "denoise":
            res_m[method] = {"status": "n/a"}
            continue
        try:
            rv, info = run_restorekit(task, u8, opts.device, seed, ema=task.ema, iters=iters, **extra)
        except Exception as exc:  # noqa: BLE001
            record(method, None, {"status": "error", "reason": f"{type(exc).__name__}: {exc}"})
        else:
            record(method, rv.restored, info)

    # (c) restorekit with automatic stopping and the EMA; with task.auto_equal_time it gets the
    # reference loop's fitting time as its time limit, so "no more wall time" holds by construction
    budget = None
    if task.auto_equal_time and res_m.get("reference", {}).get("status") == "ok":
        budget = res_m["reference"]["fit_s"]
    for method, (precision, rule) in AUTO_METHODS.items():
        if method not in methods:
            continue
        rule = rule or auto_stop(task)
        try:
            ar, info = run_restorekit(task, u8, opts.device, seed, ema=0.99, iters=task.cap, stop=rule,
                                      precision=precision if precision != "fp32" else None, time_limit=budget)
        except Exception as exc:  # noqa: BLE001
            record(method, None, {"status": "error", "reason": f"{type(exc).__name__}: {exc}"})
        else:
            record(method, ar.restored, dict(info, cap=task.cap, stop=rule, time_budget_s=budget))
    return out


def summarise(task_out: dict[str, Any], methods: list[str]) -> None:
    """Means and medians per method, over the images where it ran."""
    means, medians = {}, {}
    for m in methods:
        rows = [img["methods"].get(m, {}) for img in task_out["images"]]
        ok = [r for r in rows if r.get("status") == "ok"]
        if not ok:
            statuses = {r.get("status") for r in rows if r}
            means[m] = {"status": (statuses.pop() if len(statuses) == 1 else "mixed") if statuses else "not run"}
            continue
        entry: dict[str, Any] = {"status": "ok", "n": len(ok)}
        for key in ("psnr", "ssim", "wall_s", "iterations", "chosen_iteration"):
            vals = [r[key] for r in ok if isinstance(r.get(key), (int, float))]
            if vals:
                entry[key] = float(np.mean(vals))
        means[m] = entry
        walls = [r["wall_s"] for r in ok if "wall_s" in r]
        if walls:
            medians[m] = float(statistics.median(walls))
        per_it = [r["fit_s"] / r["iterations"] for r in ok if r.get("fit_s") and r.get("iterations")]
        if per_it:
            entry["s_per_iter_median"] = float(statistics.median(per_it))
    task_out["means"] = means
    task_out["median_wall_s"] = medians


def median_ratio(pairs) -> float:
    """Median wall time of the first method over that of the second (medians resist a contended outlier)."""
    a = statistics.median(ra["wall_s"] for _, ra, _ in pairs)
    b = statistics.median(rb["wall_s"] for _, _, rb in pairs)
    return a / max(b, 1e-9)


def comparisons(doc: dict[str, Any]) -> dict[str, Any]:
    """restorekit vs reference at equal iterations; restorekit+auto vs the reference's final iterate."""
    out: dict[str, Any] = {}
    for task_out in doc["tasks"]:
        c: dict[str, Any] = {}

        def pairs(a: str, b: str, task_out=task_out):
            ps = []
            for img in task_out["images"]:
                ra, rb = img["methods"].get(a, {}), img["methods"].get(b, {})
                if ra.get("status") == "ok" and rb.get("status") == "ok":
                    ps.append((img["image"], ra, rb))
            return ps

        eq = pairs("restorekit", "reference")
        if eq:
            d = [ra["psnr"] - rb["psnr"] for _, ra, rb in eq]
            c["restorekit_vs_reference"] = {
                "n": len(d), "mean_diff_db": float(np.mean(d)), "max_abs_diff_db": float(np.max(np.abs(d))),
                "per_image_db": {n: ra["psnr"] - rb["psnr"] for n, ra, rb in eq},
                "within_0.1db_mean": bool(abs(np.mean(d)) <= 0.1),
                "within_0.1db_every_image": bool(np.max(np.abs(d)) <= 0.1),
                "wall_ratio": median_ratio(eq),
            }
        for method, key in (("restorekit+auto", "auto_vs_reference_final"),
                            ("restorekit+auto-bf16", "auto_bf16_vs_reference_final"),
                            ("restorekit+eswmv", "eswmv_vs_reference_final")):
            au = pairs(method, "reference")
            if au:
                d = [ra["psnr"] - rb["psnr"] for _, ra, rb in au]
                c[key] = {
                    "n": len(d), "mean_gain_db": float(np.mean(d)),
                    "per_image_db": {n: ra["psnr"] - rb["psnr"] for n, ra, rb in au},
                    "wall_ratio": median_ratio(au),
                    "fit_ratio_max": max(ra["fit_s"] / max(rb["fit_s"], 1e-9) for _, ra, rb in au),
                    "mean_iterations_auto": float(np.mean([ra["iterations"] for _, ra, _ in au])),
                }
        options = {}
        for method, (base, what) in OPTION_METHODS.items():
            op = pairs(method, base)
            if op:
                d = [ra["psnr"] - rb["psnr"] for _, ra, rb in op]
                options[method] = {"against": base, "adds": what, "n": len(d), "mean_diff_db": float(np.mean(d)),
                                   "per_image_db": {n: ra["psnr"] - rb["psnr"] for n, ra, rb in op},
                                   "wall_ratio": median_ratio(op)}
        if options:
            c["options_at_equal_iterations"] = options
        af = pairs("restorekit+auto", "restorekit")
        if af:
            d = [ra["psnr"] - rb["psnr"] for _, ra, rb in af]
            c["auto_vs_restorekit_fixed"] = {
                "n": len(d), "mean_gain_db": float(np.mean(d)),
                "wall_ratio": median_ratio(af),
            }
        ae = pairs("restorekit+auto", "restorekit+eswmv")
        if ae:
            d = [ra["psnr"] - rb["psnr"] for _, ra, rb in ae]
            c["auto_vs_eswmv"] = {
                "n": len(d), "mean_gain_db": float(np.mean(d)),
                "per_image_db": {n: ra["psnr"] - rb["psnr"] for n, ra, rb in ae},
                "per_image_iterations": {n: [ra["iterations"], rb["iterations"]] for n, ra, rb in ae},
                "wall_ratio": median_ratio(ae),
            }
        em = pairs("reference-ema", "reference")
        if em:
            c["reference_ema_gain_db"] = float(np.mean([ra["psnr"] - rb["psnr"] for _, ra, rb in em]))
        ow = pairs("reference-own", "reference")
        if ow:
            d = [ra["psnr"] - rb["psnr"] for _, ra, rb in ow]
            c["seed_spread_own_vs_matched"] = {"mean_diff_db": float(np.mean(d)),
                                               "mean_abs_diff_db": float(np.mean(np.abs(d)))}
        out[task_out["task"]["name"]] = c
    return out


# ---------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------
def table(headers: list[str], rows: list[list[str]], total: bool = False) -> str:
    """Plain-text table; ``total`` puts a rule above the last row (the mean)."""
    widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]

    def line(cells):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [line(r) for r in rows]
    if total and len(body) > 1:
        body.insert(len(body) - 1, rule)
    return "\n".join([line(headers), rule] + body)


def cell(entry: dict[str, Any] | None) -> str:
    if not entry:
        return ""
    st = entry.get("status")
    if st == "ok":
        return f"{entry['psnr']:.2f}/{entry['ssim']:.3f}"
    return {"n/a": "-", "unavailable": "unavail", "error": "ERROR", "not run": ""}.get(st, st or "")


def render(doc: dict[str, Any]) -> str:
    parts: list[str] = []
    methods = doc["methods"]
    head = (f"protocol {doc['protocol']}  |  commit {doc['git_commit']}  |  device {doc['machine']['device']} "
            f"({doc['machine']['device_name']}, {doc['machine']['cores']} cores, torch {doc['machine']['torch']})")
    parts.append(head)
    parts.append(f"command: {doc['command']}")
    for task_out in doc["tasks"]:
        t = task_out["task"]
        shown = [m for m in methods if task_out["means"].get(m, {}).get("status") != "n/a"]
        metric_note = ", ".join(s for _, s in t["metrics"])
        parts.append("")
        parts.append(f"== {t['name']}: {task_out['description']}")
        parts.append(f"   cells: PSNR dB / SSIM ({metric_note}); '-' = not applicable")
        rows = [[img["image"]] + [cell(img["methods"].get(m)) for m in shown] for img in task_out["images"]]
        rows.append(["mean"] + [cell(task_out["means"].get(m)) for m in shown])
        headers = ["image"] + shown
        pub = dict(t.get("published") or ())
        if pub:
            headers.append("paper DIP")
            names = [img["image"] for img in task_out["images"]] + ["mean"]
            for r, n in zip(rows, names):
                r.append(f"{pub[n]:.2f}" if n in pub else "")
        parts.append(table(headers, rows, total=True))
        if pub:
            parts.append("   paper DIP: PSNR published (REFERENCE.md section 4); its mean is over the paper's "
                         "full image set")
        parts.append("")
        trows = []
        for m in shown:
            e = task_out["means"].get(m, {})
            if e.get("status") != "ok":
                trows.append([m, "", "", "", "", "", e.get("status", "")])
                continue
            devs = sorted({img["methods"][m].get("device", "") for img in task_out["images"]
                           if img["methods"].get(m, {}).get("status") == "ok"})
            its = e.get("iterations")
            ch = e.get("chosen_iteration")
            trows.append([
                m,
                "" if its is None else f"{its:.0f}",
                "" if ch is None or ch == its else f"{ch:.0f}",
                f"{e.get('wall_s', float('nan')):.1f}",
                f"{task_out['median_wall_s'].get(m, float('nan')):.1f}",
                f"{e['s_per_iter_median']:.3f}" if "s_per_iter_median" in e else "",
                ",".join(devs),
            ])
        parts.append(table(["method", "iters (mean)", "chosen iter", "wall s (mean)", "wall s (median)",
                            "s/iter (median)", "device"],
                           trows))
    # median wall time per method and task
    parts.append("")
    parts.append("== median wall time per image (s)")
    names = [t["task"]["name"] for t in doc["tasks"]]
    rows = []
    for m in methods:
        vals = [t["median_wall_s"].get(m) for t in doc["tasks"]]
        if all(v is None for v in vals):
            continue
        rows.append([m] + ["-" if v is None else f"{v:.1f}" for v in vals])
    if rows:
        parts.append(table(["method"] + names, rows))
    # the comparisons the issue asks for
    crows = []
    for name, c in doc.get("comparisons", {}).items():
        e = c.get("restorekit_vs_reference")
        a = c.get("auto_vs_reference_final")
        a16 = c.get("auto_bf16_vs_reference_final")
        o = c.get("seed_spread_own_vs_matched")
        if not (e or a or o or "reference_ema_gain_db" in c):
            continue
        crows.append([
            name,
            "" if not e else f"{e['mean_diff_db']:+.3f}",
            "" if not e else f"{e['max_abs_diff_db']:.3f}",
            "" if not e else ("yes" if e["within_0.1db_mean"] else "NO"),
            "" if not e else f"{e['wall_ratio']:.2f}",
            ("unavailable" if "restorekit+auto" in methods else "") if not a else f"{a['mean_gain_db']:+.2f}",
            "" if not a else f"{a['wall_ratio']:.2f}",
        ] + ([] if "restorekit+auto-bf16" not in methods else [
            "" if not a16 else f"{a16['mean_gain_db']:+.2f}",
            "" if not a16 else f"{a16['wall_ratio']:.2f}",
        ]) + [
            "" if "reference_ema_gain_db" not in c else f"{c['reference_ema_gain_db']:+.2f}",
        ] + ([] if "reference-own" not in methods else ["" if not o else f"{o['mean_diff_db']:+.2f}"]))
    frows = [[name, f"{c['auto_vs_restorekit_fixed']['mean_gain_db']:+.2f}",
              f"{c['auto_vs_restorekit_fixed']['wall_ratio']:.2f}"]
             for name, c in doc.get("comparisons", {}).items() if "auto_vs_restorekit_fixed" in c]
    brows = [[name, m, o["against"], f"{o['mean_diff_db']:+.2f}", f"{o['wall_ratio']:.2f}"]
             for name, c in doc.get("comparisons", {}).items()
             for m, o in c.get("options_at_equal_iterations", {}).items()]
    show_ref = bool(crows) and "reference" in methods
    if show_ref or frows:
        parts.append("")
        parts.append("== comparisons (PSNR, dB)")
    if show_ref:
        parts.append(table(["task", "rk - ref (mean)", "max |diff|", "within 0.1", "rk/ref time*",
                            "auto - ref final", "auto/ref time*"]
                           + (["auto-bf16 - ref final", "auto-bf16/ref time*"]
                              if "restorekit+auto-bf16" in methods else [])
                           + ["ref EMA - final"]
                           + (["own seeds - ref"] if "reference-own" in methods else []), crows))
        parts.append("rk = restorekit at the same iterations as the reference loop (both final iterates); "
                     "auto = restorekit+auto (stop + EMA; bf16: in bfloat16); "
                     "*time: ratio of median wall times per image"
                     + ("; own seeds = the reference loop with unrelated seeds (seed-to-seed spread)"
                        if "reference-own" in methods else ""))
    if frows:
        if show_ref:
            parts.append("")
        parts.append(table(["task", "auto - restorekit fixed (dB)", "auto/fixed time*"], frows))
    erows = [[name, f"{c['auto_vs_eswmv']['mean_gain_db']:+.2f}",
              ", ".join(f"{n} {v:+.2f} ({it[0]} vs {it[1]} it)" for (n, v), it in
                        zip(c["auto_vs_eswmv"]["per_image_db"].items(),
                            c["auto_vs_eswmv"]["per_image_iterations"].values())),
              f"{c['auto_vs_eswmv']['wall_ratio']:.2f}"]
             for name, c in doc.get("comparisons", {}).items() if "auto_vs_eswmv" in c]
    if erows:
        parts.append("")
        parts.append("== restorekit+auto minus restorekit+eswmv (forced ES-WMV), PSNR dB")
        parts.append(table(["task", "mean", "per image (iterations: auto vs eswmv)", "time ratio*"], erows))
    if brows:
        parts.append("")
        parts.append("== options at equal iterations (PSNR of the method minus its baseline, dB)")
        parts.append(table(["task", "method", "baseline", "gain (dB)", "time ratio*"], brows))
        parts.append("; ".join(f"{m}: {what}" for m, (_, what) in OPTION_METHODS.items()))
    if doc.get("status") != "complete":
        parts.append("")
        parts.append(f"NOTE: run status '{doc.get('status')}': the tables hold only what finished.")
    return "\n".join(parts)


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=float))
    os.replace(tmp, path)


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="benchmarks/run.py", description="Run a named restorekit benchmark protocol.",
        epilog="examples:\n  python benchmarks/run.py --list\n  python benchmarks/run.py smoke\n"
               "  python benchmarks/run.py cpu --out benchmarks/results/cpu.json\n"
               "  python benchmarks/run.py paper-denoise25 --device cuda\n"
               "  python benchmarks/run.py paper-sr4 --images 1 --iters 5 --crop 64",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("protocol", nargs="?", help="protocol name (see --list)")
    ap.add_argument("--list", action="store_true", help="list the protocols and exit")
    ap.add_argument("--render", metavar="JSON", help="print the tables of an earlier run's JSON (also a partial one)")
    ap.add_argument("--images", type=int, default=None, metavar="N", help="only the first N images of each task")
    ap.add_argument("--out", default=None, help="JSON output (default benchmarks/results/PROTOCOL.json)")
    ap.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:N, mps")
    ap.add_argument("--only", default=None, metavar="METHOD,...",
                    help=f"run only these methods (any of: {', '.join(P.METHODS)})")
    ap.add_argument("--iters", type=int, default=None, help="override every task's iteration count (auto cap: 2x)")
    ap.add_argument("--scale-down", type=float, default=None, metavar="F",
                    help="shrink the ground truths by F (Lanczos) before cropping, for smoke runs")
    ap.add_argument("--crop", type=int, default=None, metavar="S", help="centre-crop the ground truths to S x S")
    ap.add_argument("--seed", type=int, default=0, help="seed of the degradation and of the DIP runs")
    ap.add_argument("--data", default=None, help="benchmark data folder (default: shared/data/bench)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    opts = parse_args(argv)
    if opts.render:
        doc = json.loads(Path(opts.render).read_text())
        for task_out in doc["tasks"]:
            summarise(task_out, doc["methods"])
        doc["comparisons"] = comparisons(doc)
        print(render(doc))
        return 0
    if opts.list or not opts.protocol:
        rows = [[p.name, "GPU" if p.gpu else "CPU", str(sum(len(t.images) for t in p.tasks)), p.summary]
                for p in P.PROTOCOLS.values()]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for r in rows:
            print("  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3])
        return 0 if opts.list else 2
    proto = P.get(opts.protocol)
    methods = list(proto.methods)
    if opts.only:
        asked = [m.strip() for m in opts.only.split(",") if m.strip()]
        bad = [m for m in asked if m not in P.METHODS]
        if bad:
            raise SystemExit(f"error: unknown method(s) {', '.join(bad)}; valid: {', '.join(P.METHODS)}")
        methods = [m for m in P.METHODS if m in asked]
    tasks = []
    for t in proto.tasks:
        if opts.iters is not None:
            t = replace(t, iters=opts.iters, auto_cap=2 * opts.iters)
        if opts.crop is not None:
            t = replace(t, crop=opts.crop)
        if opts.images is not None:
            t = replace(t, images=t.images[: max(1, opts.images)])
        tasks.append(t)
    root = data_dir(opts.data)
    out_path = Path(opts.out) if opts.out else HERE / "results" / f"{proto.name}.json"

    import torch

    from restorekit.api import pick_device

    if opts.threads:
        torch.set_num_threads(opts.threads)
    device = pick_device(opts.device)
    if proto.gpu and device.type == "cpu":
        log(f"note: {proto.name} is a GPU protocol; on the CPU use it only for smoke runs (--images 1 --iters 5)")
    doc: dict[str, Any] = {
        "protocol": proto.name,
        "summary": proto.summary,
        "notes": list(proto.notes),
        "command": "python benchmarks/run.py " + shlex.join(argv),
        "argv": argv,
        "git_commit": git_commit(),
        "machine": machine(device),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "status": "running",
        "methods": methods,
        "options": {k: v for k, v in vars(opts).items() if k != "list"},
        "data": str(root),
        "tasks": [],
    }
    if any(m in methods for m in DIP_METHODS):
        warm_up(opts.device)
    t_start = time.perf_counter()
    try:
        for t in tasks:
            scorer = Scorer(t.metrics)
            task_out = {"task": {**asdict(t), "degrade": t.degrade, "prior_fixed": t.prior(t.ema),
                                 "prior_auto": t.prior(0.99), "auto_cap": t.cap},
                        "description": t.describe(), "images": []}
            doc["tasks"].append(task_out)
            for name in t.images:
                path = root / t.dataset / f"{name}.png"
                task_out["images"].append(run_image(t, name, path, methods, opts, scorer, device))
                summarise(task_out, methods)
                doc["comparisons"] = comparisons(doc)
                doc["elapsed_s"] = time.perf_counter() - t_start
                write_json(out_path, doc)
            summarise(task_out, methods)
        doc["status"] = "complete"
    except KeyboardInterrupt:
        doc["status"] = "interrupted"
        log("interrupted: writing what finished")
    for task_out in doc["tasks"]:
        summarise(task_out, methods)
    doc["comparisons"] = comparisons(doc)
    doc["elapsed_s"] = time.perf_counter() - t_start
    doc["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        doc["machine"]["loadavg_end"] = list(os.getloadavg())
    except OSError:
        pass
    write_json(out_path, doc)
    print(render(doc))
    print(f"\nJSON: {out_path}  ({doc['elapsed_s'] / 60:.1f} min)")
    return 0 if doc["status"] == "complete" else 130


if __name__ == "__main__":
    sys.exit(main())
