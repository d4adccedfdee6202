"""A photo larger than BM3D's tile: the no-flag default whole against in tiles (memory, time, PSNR).

Six cc15 photos side by side (3 x 2, 1536x1024 pixels; the mean images side by side are the ground truth)
go through ``restorekit.restore`` with no options, once with ``noise.denoise.TILE`` as shipped (tiles of at
most 1024 a side) and once with tiling off, each in its own process so that its peak memory is its own.
Prints PSNR, seconds and peak resident memory; writes JSON.

    OMP_NUM_THREADS=2 python benchmarks/large_photo.py --out benchmarks/results/large-photo.json

Run alone: the seconds are wall time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CC15 = HERE.parent.parent / "shared" / "data" / "real" / "cc15"

CHILD = r"""
import json, resource, sys, time
import numpy as np, imageio.v3 as iio
import restorekit
from restorekit.noise import denoise
if sys.argv[1] == "whole":
    denoise.TILE = 10**6
noisy, mean = (iio.imread(p) for p in sys.argv[2:4])
t = time.perf_counter()
r = restorekit.restore(noisy)
seconds = time.perf_counter() - t
out = np.asarray(r.restored, dtype=np.float64)
out = np.moveaxis(out[0] if out.ndim == 4 else out, 0, -1)
psnr = lambda x: float(10 * np.log10(1 / np.mean((x - mean / 255) ** 2)))
np.save(sys.argv[4], out.astype(np.float32))
print(json.dumps({"mode": sys.argv[1], "noisy_psnr": psnr(noisy / 255), "psnr": psnr(out), "seconds": seconds,
                  "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))
"""


def mosaic(tmp: Path) -> tuple[Path, Path]:
    import imageio.v3 as iio
    import numpy as np

    files = sorted(CC15.glob("*_real.png"))[4:10]
    if len(files) < 6:
        sys.exit(f"needs 6 *_real.png under {CC15}")
    paths = []
    for kind in ("real", "mean"):
        tiles = [iio.imread(str(f).replace("_real", f"_{kind}")) for f in files]
        path = tmp / f"mosaic_{kind}.png"
        iio.imwrite(path, np.concatenate([np.concatenate(tiles[:3], 1), np.concatenate(tiles[3:], 1)], 0))
        paths.append(path)
    return paths[0], paths[1]


def main(argv: list[str]) -> int:
    import tempfile

    import numpy as np

    ap = argparse.ArgumentParser(prog="benchmarks/large_photo.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(HERE / "results" / "large-photo.json"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        noisy, mean = mosaic(Path(tmp))
        rows = []
        for mode in ("tiled", "whole"):
            res = subprocess.run([sys.executable, "-c", CHILD, mode, str(noisy), str(mean), f"{tmp}/{mode}.npy"],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(f"{mode:6s} noisy {rows[-1]['noisy_psnr']:.3f} dB  restored {rows[-1]['psnr']:.3f} dB  "
                  f"{rows[-1]['seconds']:.1f} s  peak {rows[-1]['peak_gb']:.2f} GB", flush=True)
        a, b = (np.load(f"{tmp}/{m}.npy").astype(np.float64) for m in ("tiled", "whole"))
        between = float(10 * np.log10(1 / np.mean((a - b) ** 2)))
        print(f"tiled against whole: {between:.1f} dB, largest difference {np.abs(a - b).max() * 255:.2f} (0-255)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"size": [1024, 1536], "rows": rows, "tiled_vs_whole_psnr": between},
                                         indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
