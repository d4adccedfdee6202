"""Time one DIP step (forward, backward, Adam) through restorekit, float32 against bfloat16.

Each configuration (image size x net width) runs ``restorekit.restore`` for
``--iters`` steps in each precision, alternating fp32 / bf16 ``--repeats``
times so that drift in the machine's speed hits both alike.  A run's step
time is the median of its per-step times (the first ``--skip`` steps, warm-up,
left out); the table shows the median over repeats and the bf16/fp32 ratio
taken pair by pair.  Prints a table and writes JSON.

    python benchmarks/step_time.py                       # 128x128 w64 and 512x512 w128
    python benchmarks/step_time.py --sizes 256 --widths 64,128 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import git_commit, machine, table, write_json  # noqa: E402


def step_times(size: int, width: int, precision: str, iters: int, device: str, seed: int) -> list[float]:
    """Per-step seconds of one restorekit fit (denoising, skip net of the given width, no stopping)."""
    import restorekit

    img = np.random.default_rng(seed).random((size, size, 3)).astype(np.float32)
    stamps: list[float] = []
    restorekit.restore(
        img, mode="benchmark", degrade="gaussian:25", prior="dip", net=f"skip:channels={width}", iters=iters, stop="none",
        precision=precision, device=device, seed=seed, report_every=iters, callback=lambda _p: stamps.append(time.perf_counter()),
    )
    return [b - a for a, b in zip(stamps, stamps[1:])]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="128,512", help="image sides, comma-separated (paired with --widths)")
    ap.add_argument("--widths", default="64,128", help="skip net widths, one per size or one for all")
    ap.add_argument("--iters", type=int, default=12, help="steps per run")
    ap.add_argument("--skip", type=int, default=2, help="warm-up steps left out of each run's median")
    ap.add_argument("--repeats", type=int, default=3, help="fp32/bf16 pairs per configuration")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "step-time.json")
    args = ap.parse_args(argv)
    sizes = [int(v) for v in args.sizes.split(",")]
    widths = [int(v) for v in args.widths.split(",")]
    if len(widths) == 1:
        widths = widths * len(sizes)
    if len(widths) != len(sizes) or args.iters <= args.skip + 1:
        ap.error("give one width per size (or one for all), and --iters above --skip + 1")

    import torch

    from restorekit.api import cpu_has_native_bf16, pick_device

    dev = pick_device(args.device)
    doc: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "git_commit": git_commit(), "machine": machine(dev), "cpu_native_bf16": cpu_has_native_bf16(),
        "iters": args.iters, "skip": args.skip, "repeats": args.repeats, "configs": [],
    }
    rows = []
    for size, width in zip(sizes, widths):
        runs: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for r in range(args.repeats):
            for precision in ("fp32", "bf16"):
                t = step_times(size, width, precision, args.iters, str(dev), seed=r)[args.skip:]
                runs[precision].append(statistics.median(t))
                print(f"[{size}x{size} w{width}] {precision} repeat {r + 1}: {runs[precision][-1] * 1000:.1f} ms/step",
                      file=sys.stderr, flush=True)
        ratios = [b / a for a, b in zip(runs["fp32"], runs["bf16"])]
        cfg = {"size": size, "width": width, "fp32_s": runs["fp32"], "bf16_s": runs["bf16"],
               "fp32_median_s": statistics.median(runs["fp32"]), "bf16_median_s": statistics.median(runs["bf16"]),
               "bf16_over_fp32_median": statistics.median(ratios), "bf16_over_fp32": ratios}
        doc["configs"].append(cfg)
        rows.append([f"{size}x{size}", str(width), f"{cfg['fp32_median_s'] * 1000:.1f}",
                     f"{cfg['bf16_median_s'] * 1000:.1f}", f"{cfg['bf16_over_fp32_median']:.2f}",
                     f"{min(ratios):.2f}-{max(ratios):.2f}"])
    print(table(["image", "width", "fp32 ms/step", "bf16 ms/step", "bf16/fp32 (median)", "range"], rows))
    print(f"device {dev} ({doc['machine']['device_name']}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, native bf16: {doc['cpu_native_bf16']}")
    write_json(args.out, doc)
    print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
