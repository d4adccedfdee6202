"""``restorekit eval``: a trained model against the degraded input and the classical methods, image by image.

Every test image (converted to the model's channel count, as training did)
is degraded the way ``restorekit run`` does in benchmark mode (seeded per
image), then restored by the model (through the ``learned`` prior) and by
each baseline solver prior on the same observation; PSNR, SSIM, MSE and MAE
are computed against the clean image, per image and as means.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import RestoreKitError, UsageError

METRICS = ("psnr", "ssim", "mse", "mae")
#: priors never used as baselines (the model itself, the method chooser)
NOT_BASELINES = {"learned", "auto"}


@dataclass
class EvalResult:
    model: str
    degrade: list[str]
    images: list[str]
    methods: list[str]
    #: method -> metric -> per-image values
    scores: dict[str, dict[str, list[float]]]
    seconds: dict[str, float]
    skipped: dict[str, str] = field(default_factory=dict)

    def mean(self, method: str, metric: str) -> float:
        return float(np.mean(self.scores[method][metric]))

    def as_dict(self) -> dict[str, Any]:
        from .. import __version__

        # "restorekit": the mark of a folder eval wrote (session/outdir.py: --overwrite replaces only those)
        return {"restorekit": __version__, "model": self.model, "degrade": self.degrade, "images": self.images, "methods": self.methods,
                "per_image": self.scores,
                "mean": {m: {k: self.mean(m, k) for k in METRICS} for m in self.methods},
                "seconds": self.seconds, "skipped": self.skipped}


def scores(clean: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """PSNR, SSIM, MSE, MAE of a (C, H, W) result against the clean image, data range 1."""
    from skimage.metrics import structural_similarity

    test = np.clip(test.astype(np.float64), 0, 1)
    clean = clean.astype(np.float64)
    mse = float(np.mean((test - clean) ** 2))
    ssim = structural_similarity(clean, test, data_range=1.0, channel_axis=0)
    return {"psnr": float(10 * np.log10(1 / max(mse, 1e-12))), "ssim": float(ssim), "mse": mse,
            "mae": float(np.mean(np.abs(test - clean)))}


def default_baselines(registry: Any) -> list[str]:
    """The installed solver priors (classical methods that need no fit), the model excepted."""
    return [e.name for e in registry.entries("prior")
            if getattr(e.cls, "role", None) == "solver" and e.name not in NOT_BASELINES]


def dataset_images(name: str, card: dict[str, Any], channels: int) -> tuple[list[str], list[np.ndarray], str]:
    """A bundled data set's images to score on: its test part when the model was trained on it (the same
    seeded split, from the counts model.json records), else all of it; with their names and which part."""
    from .data import dataset, split

    full = dataset(name, channels)
    n = len(full)
    data = card.get("data") or {}
    counts = data.get("split") or {}
    seed = (card.get("trained") or {}).get("seed")
    index = list(range(n))
    part = "all"
    if data.get("dataset") == name and data.get("items") == n and seed is not None and counts.get("test"):
        order = np.random.default_rng(seed).permutation(n)
        index = sorted(int(i) for i in order[n - int(counts["test"]):])
        part = "test"
    return [f"{name}[{i}]" for i in index], [np.asarray(full.images[i], dtype=np.float32) for i in index], part


def evaluate(model_path: Path, folder: Path | None, *, degrade: list[str] | None, baselines: list[str] | None,
             seed: int = 0, limit: int | None = None, log: Callable[[str], Any] | None = None,
             keep: int = 0, dataset: str | None = None,
             device: str | None = None) -> tuple[EvalResult, list[dict[str, np.ndarray]]]:
    """Score the model and the baselines on the images in ``folder`` (or a bundled ``dataset``: its test
    part when the model was trained on it); also returns the first ``keep`` images' arrays (clean,
    degraded, each method's result) for the comparison picture.  ``device``: where the model runs (None:
    the CPU, as before)."""
    import torch

    from ..plugins import get_host
    from ..run.problem import ForwardModel, build_problem
    from .data import ImageFolder, list_images
    from .model import load, resolve

    log = log or (lambda _m: None)
    registry = get_host().registry
    path = resolve(str(model_path))
    model = load(path)
    card = model.card
    if not degrade:
        degrade = list(card.get("degrade") or [])
        if len(degrade) != 1:
            raise UsageError("give --degrade: the model was trained on "
                             + ("several degradations" if degrade else "a range of noise levels or on pairs")
                             + ", so which one to test is yours to say")
    for spec in degrade:
        registry.create("degradation", spec)  # a wrong spec fails here, before any work
    names = default_baselines(registry) if baselines is None else list(baselines)
    for b in names:
        if b.split(":")[0] in NOT_BASELINES:
            raise UsageError(f"--prior {b}: not a baseline (the model is scored anyway)")
        prior = registry.create("prior", b)
        if getattr(prior, "role", None) != "solver":
            raise UsageError(f"--prior {b}: a baseline must be a solver prior (one that needs no fit); "
                             "compare fitted priors with restorekit compare")
    if dataset is not None:
        labels, arrays, part = dataset_images(dataset, card, model.image_channels)
        labels, arrays = labels[:limit], arrays[:limit]
        log(f"{dataset}: {len(labels)} images ({'the test part of the model' + chr(39) + 's split' if part == 'test' else 'all of it'})")
        files: list[Any] = list(range(len(labels)))
        load_clean = arrays.__getitem__
    else:
        files = list_images(folder)[:limit]
        reader = ImageFolder(files, model.image_channels)
        labels = [str(f.relative_to(folder)) for f in files]
        load_clean = reader.image
    run_on = torch.device("cpu") if device is None else _device(device)
    methods = ["input", "model", *names]
    result = EvalResult(model=str(path), degrade=[registry.create("degradation", d).spec for d in degrade],
                        images=labels, methods=methods,
                        scores={m: {k: [] for k in METRICS} for m in methods}, seconds={m: 0.0 for m in methods})
    learned = registry.create("prior", f"learned:model={_quoted(str(path))}")
    kept: list[dict[str, np.ndarray]] = []
    for i, f in enumerate(files):
        clean = load_clean(f)
        stages = [registry.create("degradation", d) for d in degrade]
        problem = build_problem(clean, ForwardModel(stages), mode="benchmark", seed=seed + i)
        problem.device = run_on
        problem.reference = None
        obs = problem.observation[0].numpy()
        if obs.shape != clean.shape:
            raise UsageError(f"--degrade {' '.join(degrade)} changes the image size; eval scores same-size restoration")
        outputs = {"input": obs}
        for name in methods[1:]:
            if name in result.skipped:
                continue
            prior = learned if name == "model" else registry.create("prior", name)
            t = time.perf_counter()
            try:
                out = prior.solve(problem)
            except RestoreKitError as exc:
                if name == "model":
                    raise
                result.skipped[name] = str(exc).splitlines()[0]
                log(f"baseline {name} skipped: {result.skipped[name]}")
                continue
            result.seconds[name] += time.perf_counter() - t
            outputs[name] = out[0].detach().cpu().float().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)[0]
        for name, out in outputs.items():
            for k, v in scores(clean, out).items():
                result.scores[name][k].append(v)
        log(f"{labels[i] if dataset is not None else f.name}: " + ", ".join(f"{n} {result.scores[n]['psnr'][-1]:.2f}" for n in outputs) + " dB")
        if i < keep:
            kept.append({"clean": clean, **outputs})
    for name in list(result.skipped):
        methods.remove(name)
        del result.scores[name]
        del result.seconds[name]
    return result, kept


def _device(name: str):
    from ..session.device import pick_device

    return pick_device(name)


def _quoted(text: str) -> str:
    from ..spec import format_value

    return format_value(text)


def write_picture(path: Path, result: EvalResult, kept: list[dict[str, np.ndarray]]) -> None:
    """Rows of images: clean, degraded, the model, the best baseline by mean PSNR (atomically)."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    baselines = [m for m in result.methods if m not in ("input", "model")]
    best = max(baselines, key=lambda m: result.mean(m, "psnr")) if baselines else None
    cols = ["clean", "input", "model"] + ([best] if best else [])
    fig, axes = plt.subplots(len(kept), len(cols), figsize=(2.4 * len(cols), 2.4 * len(kept)), squeeze=False)
    for r, row in enumerate(kept):
        for c, name in enumerate(cols):
            ax = axes[r][c]
            img = np.clip(row[name], 0, 1)
            ax.imshow(img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if name != "clean":
                ax.set_xlabel(f"{result.scores[name]['psnr'][r]:.2f} dB", fontsize=8)
            if r == 0:
                ax.set_title({"input": "degraded"}.get(name, name), fontsize=9)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)


def check_out(out: Path, folder: Path | None, model: Path) -> None:
    """``out`` is never the test folder (None with a bundled data set) or the model folder, nor inside them
    (the output folder rules, session/outdir.py, then refuse a folder holding them)."""
    target = Path(out).resolve()
    for what, src in (("the test images' folder", folder), ("the model folder", model)):
        if src is not None and Path(src).exists() and Path(src).resolve() in (target, *target.parents):
            raise UsageError(f"--out '{out}' is inside {what} '{src}'; choose another --out")


def write_results(folder: Any, result: EvalResult, kept: list[dict[str, np.ndarray]]) -> None:
    """eval.json and compare.png into a reserved folder's staging folder, then moved into place."""
    import json

    from ..session.commit import committing

    with committing(folder) as tmp:
        (tmp / "eval.json").write_text(json.dumps(result.as_dict(), indent=1), encoding="utf-8")
        write_picture(tmp / "compare.png", result, kept)
