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


def evaluate(model_path: Path, folder: Path, *, degrade: list[str] | None, baselines: list[str] | None,
             seed: int = 0, limit: int | None = None, log: Callable[[str], Any] | None = None,
             keep: int = 0) -> tuple[EvalResult, list[dict[str, np.ndarray]]]:
    """Score the model and the baselines on the images in ``folder``; also returns the first ``keep``
    images' arrays (clean, degraded, each method's result) for the comparison picture."""
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
            raise UsageError(f"--baseline {b}: not a baseline (the model is scored anyway)")
        prior = registry.create("prior", b)
        if getattr(prior, "role", None) != "solver":
            raise UsageError(f"--baseline {b}: a baseline must be a solver prior (one that needs no fit); "
                             "compare fitted priors with restorekit compare")
    files = list_images(folder)[:limit]
    reader = ImageFolder(files, model.image_channels)
    methods = ["input", "model", *names]
    result = EvalResult(model=str(path), degrade=[registry.create("degradation", d).spec for d in degrade],
                        images=[str(f.relative_to(folder)) for f in files], methods=methods,
                        scores={m: {k: [] for k in METRICS} for m in methods}, seconds={m: 0.0 for m in methods})
    learned = registry.create("prior", f"learned:model={_quoted(str(path))}")
    kept: list[dict[str, np.ndarray]] = []
    for i, f in enumerate(files):
        clean = reader.image(f)
        stages = [registry.create("degradation", d) for d in degrade]
        problem = build_problem(clean, ForwardModel(stages), mode="benchmark", seed=seed + i)
        problem.device = torch.device("cpu")
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
        log(f"{f.name}: " + ", ".join(f"{n} {result.scores[n]['psnr'][-1]:.2f}" for n in outputs) + " dB")
        if i < keep:
            kept.append({"clean": clean, **outputs})
    for name in list(result.skipped):
        methods.remove(name)
        del result.scores[name]
        del result.seconds[name]
    return result, kept


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


def check_out(out: Path, folder: Path, model: Path) -> None:
    """``out`` is never the test folder or the model folder, nor inside them (the output folder rules,
    run/outdir.py, then refuse a folder holding them)."""
    target = Path(out).resolve()
    for what, src in (("the test images' folder", Path(folder)), ("the model folder", Path(model))):
        if src.exists() and src.resolve() in (target, *target.parents):
            raise UsageError(f"--out '{out}' is inside {what} '{src}'; choose another --out")


def write_results(folder: Any, result: EvalResult, kept: list[dict[str, np.ndarray]]) -> None:
    """eval.json and compare.png into a reserved folder's staging folder, then moved into place."""
    import json

    from ..session.commit import committing

    with committing(folder) as tmp:
        (tmp / "eval.json").write_text(json.dumps(result.as_dict(), indent=1), encoding="utf-8")
        write_picture(tmp / "compare.png", result, kept)
