"""Learned restoration benchmarks (issue 12): faces, natural images, transfer.

    python benchmarks/learned.py faces      # lfw_subset 25x25: dense vs conv vs conv+skips vs DnCNN, three noises
    python benchmarks/learned.py natural    # a BSD400-trained model vs BM3D, NL-means, auto, DIP on BSD68 / Set12
    python benchmarks/learned.py transfer   # fine-tuning a clean-reconstruction model vs training from scratch

Each trains with ``restorekit.learn.train.train`` (the code behind
``restorekit train``) and scores with ``restorekit.learn.evaluate.evaluate``
(the code behind ``restorekit eval``): every method restores the same
degraded test images (seeded per image), and PSNR/SSIM are against the
clean ones.  Faces: the test split of the 200 faces (20 images, never seen
in training), written as 8-bit PNGs.  Prints tables and writes JSON into
benchmarks/results/.  Pin threads and run alone (OMP_NUM_THREADS, taskset).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from run import git_commit, machine, table, write_json  # noqa: E402

RESULTS = HERE / "results"
#: the faces benchmark's trainings: (label, net, degradation, lr)
FACES = [
    ("dense", "dense-autoencoder:code=64,depth=2,width=512", "gaussian:25", 1e-3),
    ("conv", "conv-autoencoder:channels=32", "gaussian:25", 1e-3),
    ("conv+skips", "conv-autoencoder:channels=32,skips=true", "gaussian:25", 1e-3),
    ("dncnn", "dncnn:depth=8,channels=32", "gaussian:25", 1e-3),
    ("conv+skips", "conv-autoencoder:channels=32,skips=true", "salt-pepper:0.1", 1e-3),
    ("conv+skips", "conv-autoencoder:channels=32,skips=true", "periodic", 1e-3),
]


def faces_test_folder(folder: Path) -> list[int]:
    """The test split of the faces (as restorekit train --dataset faces makes it, seed 0), as PNGs."""
    import imageio.v3 as iio

    from restorekit.learn.data import dataset, split

    full = dataset("faces", 1)
    idx = split(list(range(len(full))), (0.7, 0.2, 0.1), 0).test
    folder.mkdir(parents=True, exist_ok=True)
    for i in idx:
        iio.imwrite(folder / f"face{i:03d}.png", (full.images[i, 0] * 255).round().astype(np.uint8))
    return [int(i) for i in idx]


def train_model(out: Path, **kw: Any) -> dict[str, Any]:
    from restorekit.learn.train import TrainSettings, train

    if out.exists():
        shutil.rmtree(out)
    t = time.perf_counter()
    report = train(TrainSettings(out=out, **kw))
    card = json.loads((out / "model.json").read_text())
    return {"seconds": time.perf_counter() - t, "epochs": report.epochs_run, "steps": report.steps_run,
            "parameters": card["parameters"], "val_psnr": report.best_val_psnr, "test": card.get("test"),
            "history": report.history}


def evaluate(model: Path | str, folder: Path, degrade: str, baselines: list[str] | None,
             limit: int | None = None) -> dict[str, Any]:
    from restorekit.learn.evaluate import evaluate as ev

    res, _ = ev(Path(str(model)), folder, degrade=[degrade], baselines=baselines, limit=limit)
    return res.as_dict()


def faces(args) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="rk-faces-"))
    test = work / "test"
    idx = faces_test_folder(test)
    rows = []
    for label, net, degrade, lr in FACES:
        print(f"training {label} ({net}) on {degrade} ...", flush=True)
        tr = train_model(work / f"{label}-{degrade.split(':')[0]}", dataset="faces", degrade=(degrade,), net=net,
                         epochs=args.epochs, batch=32, lr=lr, seed=0)
        ev = evaluate(work / f"{label}-{degrade.split(':')[0]}", test, degrade, None)
        base = {m: v for m, v in ev["mean"].items() if m not in ("input", "model")}
        best = max(base, key=lambda m: base[m]["psnr"])
        rows.append({"net": label, "spec": net, "degrade": degrade, "train_seconds": tr["seconds"],
                     "epochs": tr["epochs"], "parameters": tr["parameters"],
                     "input_psnr": ev["mean"]["input"]["psnr"], "model_psnr": ev["mean"]["model"]["psnr"],
                     "model_ssim": ev["mean"]["model"]["ssim"], "best_baseline": best,
                     "baseline_psnr": base[best]["psnr"], "baselines": base,
                     "gain_over_input": ev["mean"]["model"]["psnr"] - ev["mean"]["input"]["psnr"]})
        print(render_faces(rows), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return {"benchmark": "learned-faces", "test_images": idx, "rows": rows}


def render_faces(rows: list[dict[str, Any]]) -> str:
    head = ["net", "degradation", "params", "train s", "epochs", "noisy dB", "model dB", "gain", "SSIM",
            "best classical", "dB"]
    body = [[r["net"], r["degrade"], f"{r['parameters']:,}", f"{r['train_seconds']:.0f}", r["epochs"],
             f"{r['input_psnr']:.2f}", f"{r['model_psnr']:.2f}", f"{r['gain_over_input']:+.2f}",
             f"{r['model_ssim']:.3f}", r["best_baseline"], f"{r['baseline_psnr']:.2f}"] for r in rows]
    return table(head, body)


def natural(args) -> dict[str, Any]:
    """The models against BM3D, NL-means, the run default (auto) and DIP on bsd68 and set12."""
    from restorekit.learn.model import load, resolve

    bench = Path(args.data) / "bench"
    paths = [resolve(m) for m in args.model]
    models = []
    for label, path in zip(args.model, paths):
        train_json = path / "train.json"
        models.append({"label": label, "path": str(path), "card": load(path).card,
                       "history": json.loads(train_json.read_text())["history"] if train_json.is_file() else None})
    rows = []
    for sigma in args.sigmas:
        for name in args.sets:
            folder = bench / name
            degrade = f"gaussian:{sigma},clip=false"
            ev = evaluate(paths[0], folder, degrade, ["bm3d", "nlm"], limit=args.limit)
            row = {"set": name, "sigma": sigma, "images": len(ev["images"]), "mean": {}, "seconds_per_image": {},
                   "per_image_psnr": {}}
            for k, path in enumerate(paths):
                e = ev if k == 0 else evaluate(path, folder, degrade, [], limit=args.limit)
                for m in e["methods"]:
                    key = args.model[k] if m == "model" else m
                    row["mean"][key] = e["mean"][m]
                    row["per_image_psnr"][key] = e["per_image"][m]["psnr"]
                    if m != "input":
                        row["seconds_per_image"][key] = e["seconds"][m] / len(e["images"])
            rows.append(row)
            print(render_natural(rows, args.model), flush=True)
    extra = []
    if args.dip:
        import restorekit
        from restorekit.learn.data import ImageFolder, list_images

        files = list_images(bench / "set12")[:args.dip]
        reader = ImageFolder(files, 1)
        for i, f in enumerate(files):
            clean = (reader.image(f)[0] * 255).round().astype(np.uint8)
            entry = {"image": f.name}
            for method in ("auto", "dip", *(f"learned:model={p}" for p in paths)):
                t = time.perf_counter()
                res = restorekit.restore(clean, mode="benchmark", degrade="gaussian:25,clip=false", prior=method,
                                         seed=i)
                entry[method] = {"psnr": float(res.metrics["psnr"]), "seconds": time.perf_counter() - t}
            extra.append(entry)
            print(json.dumps(entry), flush=True)
    return {"benchmark": "learned-natural", "models": models, "rows": rows, "dip_set12_sigma25": extra}


def render_natural(rows: list[dict[str, Any]], models: list[str]) -> str:
    head = ["set", "sigma", "n", "noisy", *models, "bm3d", "nlm", f"{models[0]} - bm3d (median/image)",
            f"{models[0]} s/img", "bm3d s/img"]
    body = []
    for r in rows:
        m = r["mean"]
        diff = [a - b for a, b in zip(r["per_image_psnr"][models[0]], r["per_image_psnr"]["bm3d"])]
        body.append([r["set"], r["sigma"], r["images"], f"{m['input']['psnr']:.2f}",
                     *(f"{m[k]['psnr']:.2f}" for k in models), f"{m['bm3d']['psnr']:.2f}", f"{m['nlm']['psnr']:.2f}",
                     f"{m[models[0]]['psnr'] - m['bm3d']['psnr']:+.2f} ({statistics.median(diff):+.2f})",
                     f"{r['seconds_per_image'][models[0]]:.2f}", f"{r['seconds_per_image']['bm3d']:.2f}"])
    return table(head, body)


def transfer(args) -> dict[str, Any]:
    """A conv autoencoder trained on clean reconstruction (--degrade none), fine-tuned on sigma-25 noise
    for k epochs, against the same network trained from scratch for the same k epochs."""
    work = Path(tempfile.mkdtemp(prefix="rk-transfer-"))
    test = work / "test"
    faces_test_folder(test)
    net = "conv-autoencoder:channels=32,skips=true"
    pre = train_model(work / "clean", dataset="faces", degrade=("none",), net=net, epochs=args.epochs, seed=1)
    rows = []
    for k in args.finetune:
        tuned = train_model(work / f"tuned{k}", dataset="faces", degrade=("gaussian:25",), net=net, epochs=k,
                            init=work / "clean", seed=0)
        scratch = train_model(work / f"scratch{k}", dataset="faces", degrade=("gaussian:25",), net=net, epochs=k,
                              seed=0)
        et = evaluate(work / f"tuned{k}", test, "gaussian:25", [])
        es = evaluate(work / f"scratch{k}", test, "gaussian:25", [])
        rows.append({"epochs": k, "tuned_psnr": et["mean"]["model"]["psnr"], "scratch_psnr": es["mean"]["model"]["psnr"],
                     "input_psnr": et["mean"]["input"]["psnr"], "tuned_seconds": tuned["seconds"],
                     "scratch_seconds": scratch["seconds"]})
        print(render_transfer(rows), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return {"benchmark": "learned-transfer", "net": net, "pretrain": {k: v for k, v in pre.items() if k != "history"},
            "rows": rows}


def render_transfer(rows: list[dict[str, Any]]) -> str:
    head = ["epochs on noise", "noisy dB", "from scratch dB", "fine-tuned dB", "gain", "scratch s", "tuned s"]
    return table(head, [[r["epochs"], f"{r['input_psnr']:.2f}", f"{r['scratch_psnr']:.2f}", f"{r['tuned_psnr']:.2f}",
                         f"{r['tuned_psnr'] - r['scratch_psnr']:+.2f}", f"{r['scratch_seconds']:.0f}",
                         f"{r['tuned_seconds']:.0f}"] for r in rows])


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/learned.py", description=__doc__.splitlines()[0])
    ap.add_argument("which", choices=("faces", "natural", "transfer"))
    ap.add_argument("--epochs", type=int, default=200, help="faces: epochs per model (5 steps of 32 each); "
                    "transfer: pre-training epochs")
    ap.add_argument("--model", nargs="+", default=["gaussian"], help="natural: model folders (default: the shipped "
                    "one); the first is compared with the baselines")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--sets", nargs="+", default=["bsd68", "set12"])
    ap.add_argument("--sigmas", nargs="+", type=int, default=[15, 25, 50])
    ap.add_argument("--limit", type=int, default=None, help="natural: the first N images of each set")
    ap.add_argument("--dip", type=int, default=0, help="natural: also auto and DIP on the first N Set12 images, sigma 25")
    ap.add_argument("--finetune", nargs="+", type=int, default=[5, 20, 60], help="transfer: epochs on noise")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    import torch

    doc = {"faces": faces, "natural": natural, "transfer": transfer}[args.which](args)
    doc.update({"commit": git_commit(), "machine": machine(torch.device("cpu")), "threads": torch.get_num_threads(),
                "command": "python benchmarks/learned.py " + " ".join(argv)})
    out = args.out or RESULTS / f"learned-{args.which}.json"
    write_json(out, doc)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
