"""The default commands on a loaded machine against the same on an idle one (issues 20 and 22).

A time-budgeted fit gets fewer steps when other work shares the cores; the result must then not be
worse than the classical start it began from (``solve.start_floor``), and a direct solver's result must
not depend on the load at all.  This runs, first with the machine as it is, then with ``--busy N``
processes spinning on the CPU (default 3, as issue 22 measured):

* ``inpaint``: ``restorekit.restore(None, degrade="bernoulli:0.5", mode="benchmark")``, the README's main
  command (auto: the CPU deep image prior from biharmonic inpainting, 50 s budget), beside biharmonic
  inpainting of the same draw (its start);
* ``real``: ``restorekit.restore(crop)`` with no options on one cc15 crop (256 px), if ../shared is there.

Prints a table and writes ``benchmarks/results/underload.json``.  Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _spin(stop) -> None:  # a busy process
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def cases() -> dict[str, dict]:
    import restorekit
    from restorekit.run.problem import fill_missing

    out: dict[str, dict] = {}
    r = restorekit.restore(None, degrade="bernoulli:0.5", mode="benchmark")
    start = np.clip(fill_missing(r.degraded, r.mask), 0, 1)
    ref = r.reference
    start_psnr = float(10 * np.log10(1 / np.mean((start - ref) ** 2)))
    out["inpaint"] = {"psnr": r.metrics["psnr"], "start_psnr": start_psnr,
                      "steps": r.record.result.iterations_run,
                      "safeguard": None if r.record.safeguard is None else r.record.safeguard.action,
                      "seconds": r.record.timings.total_s}
    sys.path.insert(0, str(HERE))
    from real import DATA, crops, psnr

    if DATA.exists():
        name, noisy, clean = crops("one")[0]
        t = time.perf_counter()
        rr = restorekit.restore(noisy)
        out["real"] = {"crop": name, "psnr": psnr(np.moveaxis(rr.restored, 0, -1), clean / 255.0),
                       "noisy_psnr": psnr(noisy / 255.0, clean / 255.0), "seconds": time.perf_counter() - t,
                       "safeguard": None if rr.record.safeguard is None else rr.record.safeguard.action}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--busy", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results" / "underload.json"))
    args = ap.parse_args()
    results = {"idle": cases()}
    stop = mp.Event()
    procs = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.busy)]
    for p in procs:
        p.start()
    try:
        results[f"busy{args.busy}"] = cases()
    finally:
        stop.set()
        for p in procs:
            p.join(5)
    print(f"{'case':8s} {'load':7s} {'PSNR':>7s} {'start/noisy':>11s} {'steps':>6s} {'safeguard':>10s} {'s':>6s}")
    for load, res in results.items():
        for case, r in res.items():
            base = r.get("start_psnr", r.get("noisy_psnr"))
            print(f"{case:8s} {load:7s} {r['psnr']:7.2f} {base:11.2f} {r.get('steps', 0):6d} "
                  f"{str(r['safeguard']):>10s} {r['seconds']:6.1f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out).with_suffix(".tmp")
    tmp.write_text(json.dumps({"busy": args.busy, "cpus": os.cpu_count(), "results": results}, indent=1))
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
