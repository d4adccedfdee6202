"""Seconds per DIP step: the reference loop, restorekit with the paper's network, and auto's CPU network.

For each image side (64, 128, 256, 512 by default), in one process and
alternating so that drift in the machine's speed hits all alike:

* ``reference``: benchmarks/reference_loop.py (plain PyTorch, fp32) with the
  paper's skip network (128 channels, 5 levels);
* ``paper-fp32`` / ``paper-bf16``: ``restorekit.restore`` with the same
  network, float32 and bfloat16 autocast;
* ``auto``: the network and precision ``--prior auto`` fits on this CPU
  (restorekit/run/auto.py: skip with 32 channels, bf16 where native).

A step's FLOPs are counted from the network's convolutions (forward x 3 for
forward, backward and the weight gradients); achieved GFLOP/s is shown
against a 4096x4096 matmul timed in the same run, fp32 and bf16.  Prints a
table and writes JSON.

    python benchmarks/speed.py
    python benchmarks/speed.py --sizes 128,256 --iters 20 --repeats 3
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

PAPER_NET = "skip"


def conv_flops(net: Any, in_channels: int, size: int) -> float:
    """Forward FLOPs (2 x multiply-adds) of the convolutions for one (1, in_channels, size, size) input."""
    import torch
    from torch import nn

    total = [0.0]

    def hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1]
        total[0] += 2.0 * k * m.in_channels * m.out_channels / m.groups * out.shape[-1] * out.shape[-2]

    hooks = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net(torch.zeros(1, in_channels, size, size))
    for h in hooks:
        h.remove()
    return total[0]


def matmul_gflops(dtype, n: int = 4096, reps: int = 5) -> float:
    import torch

    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def restorekit_step(size: int, net: str, precision: str, iters: int, skip: int, seed: int) -> float:
    import restorekit

    img = np.random.default_rng(seed).random((size, size, 3)).astype(np.float32)
    stamps: list[float] = []
    restorekit.restore(img, mode="benchmark", degrade="gaussian:25", prior="dip", net=net, iters=iters, stop="none",
                       precision=precision, device="cpu", seed=seed, report_every=iters,
                       callback=lambda _p: stamps.append(time.perf_counter()))
    return statistics.median([b - a for a, b in zip(stamps, stamps[1:])][skip:])


def reference_step(size: int, iters: int, skip: int, seed: int) -> float:
    import torch

    import reference_loop as R
    from restorekit.plugins import get_registry

    gen = get_registry().create("generator", PAPER_NET)
    y = np.random.default_rng(seed).random((3, size, size)).astype(np.float32)
    stamps: list[float] = []
    real_step = torch.optim.Adam.step

    def timed_step(self, *a, **k):
        out = real_step(self, *a, **k)
        stamps.append(time.perf_counter())
        return out

    torch.optim.Adam.step = timed_step
    try:
        R.run_dip(y, out_shape=(3, size, size), build_net=lambda i, o: gen.build(i, o), iterations=iters, seed=seed)
    finally:
        torch.optim.Adam.step = real_step
    return statistics.median([b - a for a, b in zip(stamps, stamps[1:])][skip:])


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/speed.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="64,128,256,512")
    ap.add_argument("--iters", type=int, default=12, help="steps per run (a run's median step is kept)")
    ap.add_argument("--skip", type=int, default=2, help="warm-up steps left out")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results" / "speed.json"))
    args = ap.parse_args(argv)

    import torch

    from restorekit.plugins import get_registry
    from restorekit.run.auto import CPU_NET
    from restorekit.run.plan import cpu_has_native_bf16

    torch.set_num_threads(args.threads)
    auto_precision = "bf16" if cpu_has_native_bf16() else "fp32"
    peaks = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    doc: dict[str, Any] = {"protocol": "speed", "commit": git_commit(), "machine": machine(torch.device("cpu")),
                           "command": "python benchmarks/speed.py " + " ".join(argv), "matmul_gflops": peaks,
                           "auto": {"net": CPU_NET, "precision": auto_precision}, "sizes": {}}
    reg = get_registry()
    methods = {
        "reference": lambda s, r: reference_step(s, args.iters, args.skip, r),
        "paper-fp32": lambda s, r: restorekit_step(s, PAPER_NET, "fp32", args.iters, args.skip, r),
        "paper-bf16": lambda s, r: restorekit_step(s, PAPER_NET, "bf16", args.iters, args.skip, r),
        "auto": lambda s, r: restorekit_step(s, CPU_NET, auto_precision, args.iters, args.skip, r),
    }
    nets = {"reference": PAPER_NET, "paper-fp32": PAPER_NET, "paper-bf16": PAPER_NET, "auto": CPU_NET}
    rows = []
    for size in (int(v) for v in args.sizes.split(",")):
        times: dict[str, list[float]] = {m: [] for m in methods}
        for r in range(args.repeats):
            for m, fn in methods.items():
                times[m].append(fn(size, r))
                print(f"[{size}] {m} repeat {r + 1}: {times[m][-1] * 1000:.1f} ms/step", file=sys.stderr, flush=True)
        entry: dict[str, Any] = {}
        for m in methods:
            flops = 3 * conv_flops(reg.create("generator", nets[m]).build(32, 3), 32, size)
            med = statistics.median(times[m])
            entry[m] = {"s_per_step": times[m], "median_s": med, "gflop_per_step": flops / 1e9,
                        "gflops": flops / med / 1e9}
        ref = entry["reference"]["median_s"]
        for m in methods:
            entry[m]["speedup_vs_reference"] = ref / entry[m]["median_s"]
        doc["sizes"][str(size)] = entry
        write_json(Path(args.out), doc)
        for m in methods:
            e = entry[m]
            peak = peaks["bf16" if m == "paper-bf16" or (m == "auto" and auto_precision == "bf16") else "fp32"]
            rows.append([f"{size}x{size}", m, f"{e['median_s'] * 1000:.1f}", f"{e['speedup_vs_reference']:.2f}x",
                         f"{e['gflop_per_step']:.2f}", f"{e['gflops']:.0f}", f"{100 * e['gflops'] / peak:.0f}%"])
    print(table(["image", "method", "ms/step", "vs reference", "GFLOP/step", "GFLOP/s", "of matmul peak"], rows))
    print(f"matmul 4096^2: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s; "
          f"{torch.get_num_threads()} threads")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
