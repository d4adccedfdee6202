"""Feature inversion of the built-in ``faces`` network: the deep image prior against TV and bare pixels.

The deep image prior paper (section 4.4) inverts a classifier's features
with three regularisers: none, total variation, and the deep image prior.
This benchmark does the same on what restorekit can run anywhere with no
download: the built-in ``faces`` network (a 1.4k-weight CNN trained in
seconds on scikit-image's bundled ``lfw_subset``; restorekit/inspect/faces.py),
inverted at several layers for the faces it was *not* trained on (its
40-image held-out split), each search starting from the same gray image.

For each layer and prior it reports the mean over the images of: PSNR and
SSIM of the reconstruction against the image whose features were matched,
the final feature loss (``||phi(x) - phi(x0)||^2 / ||phi(x0)||^2``) and the
seconds per search.  Prints a table and writes JSON.

    python benchmarks/inversion.py                               # 4 faces, conv1/pool1/pool2/fc, 1000 steps
    python benchmarks/inversion.py --images 8 --iters 2000
    python benchmarks/inversion.py --quick                       # smoke: 1 face, 50 steps

Everything is seeded (the network's training, the start image, the
generator's weights); the seconds depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_LAYERS = "conv1,pool1,pool2,fc"
DEFAULT_PRIORS = "dip,tv,none"


def run(layers: list[str], priors: list[str], images: int, iters: int, net: str | None, seed: int) -> dict:
    import torch

    from restorekit import __version__
    from restorekit.inspect import optimize
    from restorekit.inspect.faces import data, load_faces
    from restorekit.inspect.model import open_model
    from restorekit.plugins import get_host

    registry = get_host().registry
    t0 = time.perf_counter()
    model = open_model("faces", registry)
    train_s = time.perf_counter() - t0
    trained = load_faces(0)
    all_images, _ = data()
    faces = [int(i) for i in trained.test_index if i < 100][:images]  # held-out faces (the first 100 are faces)
    psnr, ssim = (registry.create("metric", m) for m in ("psnr", "ssim"))
    rows = []
    per_image = []
    for layer in layers:
        fn = model.layer_fn(layer)
        for spec in priors:
            prior = registry.create("prior", spec)
            vals = {"psnr": [], "ssim": [], "feature_loss": [], "seconds": []}
            for idx in faces:
                img = all_images[idx]
                rec = optimize.invert(fn, img, [prior], iters=iters, seed=seed, registry=registry, net_spec=net)[0]
                ref, test = img.transpose(1, 2, 0).astype(np.float64), rec.image.transpose(1, 2, 0).astype(np.float64)
                v = {"psnr": psnr.compute(ref, test, data_range=1.0), "ssim": ssim.compute(ref, test, data_range=1.0),
                     "feature_loss": rec.objective, "seconds": rec.seconds}
                for k in vals:
                    vals[k].append(float(v[k]))
                per_image.append({"layer": layer, "prior": prior.name, "image": idx, **{k: float(x) for k, x in v.items()}})
            rows.append({"layer": layer, "prior": prior.name, "spec": prior.spec,
                         **{k: float(np.mean(x)) for k, x in vals.items()}})
            print(f"  {layer:6s} {prior.name:5s} {rows[-1]['psnr']:6.2f} dB", file=sys.stderr, flush=True)
    return {
        "benchmark": "inspect", "restorekit": __version__, "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "command": "python benchmarks/inversion.py " + " ".join(sys.argv[1:]),
        "network": "faces:seed=0", "network_train_seconds": train_s,
        "network_test_accuracy": trained.test_accuracy, "images": faces, "iters": iters, "seed": seed,
        "net": net or optimize.DEFAULT_NET, "rows": rows, "per_image": per_image,
    }


def table(result: dict) -> str:
    lines = ["| layer | prior | PSNR (dB) | SSIM | feature loss | seconds |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in result["rows"]:
        lines.append(f"| {r['layer']} | {r['prior']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['feature_loss']:.2e} | "
                     f"{r['seconds']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", default=DEFAULT_LAYERS, help=f"comma-separated layers (default {DEFAULT_LAYERS})")
    ap.add_argument("--priors", default=DEFAULT_PRIORS, help="comma-separated prior specs (default dip,tv,none)")
    ap.add_argument("--images", type=int, help="held-out faces to invert (default 4; --quick 1)")
    ap.add_argument("--iters", type=int, help="Adam steps per search (default 1000; --quick 50)")
    ap.add_argument("--net", help="generator of the dip prior (default: restorekit invert's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="a smoke run: one face, 50 steps")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "inspect.json"), help="the JSON to write")
    args = ap.parse_args(argv)
    images = args.images or (1 if args.quick else 4)
    iters = args.iters or (50 if args.quick else 1000)
    result = run(args.layers.split(","), args.priors.split(","), images, iters, args.net, args.seed)
    text = table(result)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps({**result, "table": text}, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
