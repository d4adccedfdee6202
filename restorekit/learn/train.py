"""``restorekit train``: fit an image-to-image network to examples.

The examples are clean images (a folder, or a bundled data set: faces,
photos, digits) degraded afresh at every draw, or pairs of degraded and clean
images (two folders matched by name).  Three ways to degrade clean images:

* nothing given, the default ``resunet``: Gaussian noise with a sigma drawn
  per patch from ``sigma_range``, and the network is told the sigma (an extra
  input channel) -- one model for the whole range, the shipped model's kind;
* ``degrade``: one or more registered degradations (``gaussian:25``,
  ``salt-pepper:0.1``, ``periodic``...); each patch gets one of them, drawn at
  random, with fresh noise every time (the model is not told which);
* nothing given, another network: Gaussian noise from ``sigma_range``, blind.

The network is any registered generator (``--net``): ``resunet``, ``dncnn``,
``conv-autoencoder[:skips=true]``, ``dense-autoencoder:code=64``, ``skip``,
``unet``...  Adam minimises the loss (mse, l1, bce or ssim), the learning
rate decaying on a cosine to 1/100 of its start (the steps are
:func:`restorekit.learn.loop.fit`'s, the loop the ``faces`` network is
trained by too).  After every epoch the model
is scored on the validation images (fixed degradations, the same every time);
the best one by validation PSNR is ``model.safetensors`` and the checkpoint
(weights, optimiser state, epoch, random state: one ``checkpoint.safetensors``,
the state as JSON in its metadata, no pickle) lets ``--resume`` continue where a run stopped -- with the
settings it records (:func:`resume_settings`; other ones are refused, naming them).
Ctrl-C, SIGTERM and the time limit stop it with the best model kept.  At the
end the best model is scored on the test images (``model.json``'s ``test``)
and ``curves.png`` shows loss and PSNR per epoch.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import UsageError
from .data import ArraySet, ImageFolder, PairFolder, centre_crops, dataset, digest, draw, list_images, match_pairs, split
from .loop import NonFiniteLoss, cosine, fit
from .model import CARD, WEIGHTS, save, save_code_stats

#: the weights, Adam's moments (tensors) and the rest of the state (JSON, in the file's metadata): one
#: file, replaced atomically, so the tensors and the counters can never come from different epochs
CHECKPOINT = "checkpoint.safetensors"
#: the noise levels of the validation score of the noise-level-aware denoiser (0-255 units)
VAL_SIGMAS = (15, 25, 50)
LOSSES = ("mse", "l1", "bce", "ssim")


@dataclass
class TrainSettings:
    out: Path
    folder: Path | None = None  #: clean images
    pairs: tuple[Path, Path] | None = None  #: (degraded folder, clean folder)
    dataset: str | None = None  #: a bundled data set (data.DATASETS)
    degrade: tuple[str, ...] = ()  #: degradation specs, mixed (each patch draws one)
    net: str = "resunet"
    sigma_range: tuple[float, float] = (0.0, 55.0)
    channels: int = 1  #: image channels of the model (1: gray; colour images are converted)
    #: a gray model trained on colour images' channels in these colour spaces (model.COLOUR_SPACES), as it
    #: denoises colour images; () : colour images converted to gray
    colour_spaces: tuple[str, ...] = ()
    epochs: int = 20
    steps_per_epoch: int | None = None  #: None: about one pass over the training pixels
    steps: int | None = None  #: total steps (overrides epochs)
    batch: int = 32
    patch: int | None = None  #: None: 64 for folders, the items' own size for data sets
    lr: float = 1e-3
    loss: str = "mse"
    seed: int = 0
    split: tuple[float, float, float] = (0.7, 0.2, 0.1)
    time_limit: float | None = None
    precision: str = "auto"
    device: str = "auto"
    resume: bool = False
    init: Path | None = None


@dataclass
class TrainReport:
    steps_run: int = 0
    epochs_run: int = 0
    steps_per_epoch: int = 0
    best_epoch: int = 0
    best_step: int = 0
    best_val_psnr: float = float("-inf")
    seconds: float = 0.0
    stopped_by: str = "epochs"
    history: dict[str, list] = field(default_factory=lambda: {
        "epoch": [], "step": [], "loss": [], "val_loss": [], "val_psnr": [], "time": []})


def check(s: TrainSettings) -> None:
    given = [x for x in (s.folder, s.pairs, s.dataset) if x is not None]
    if len(given) != 1:
        raise UsageError("give exactly one source of examples: a FOLDER of clean images, --pairs LOW HIGH, "
                         "or --dataset NAME")
    if s.pairs is not None and s.degrade:
        raise UsageError("--pairs brings its own degradation; --degrade is for clean images")
    lo, hi = s.sigma_range
    if not (0 <= lo <= hi <= 255) or hi <= 0:
        raise UsageError(f"--sigma-range must be two levels 0 <= LO <= HI <= 255 with HI > 0 (got {lo},{hi})")
    for name, v in (("--epochs", s.epochs), ("--batch", s.batch), ("--iters", s.steps),
                    ("--iters-per-epoch", s.steps_per_epoch)):
        if v is not None and v < 1:
            raise UsageError(f"{name} must be at least 1 (got {v})")
    if s.patch is not None and s.patch < 4:
        raise UsageError(f"--patch must be at least 4 pixels (got {s.patch})")
    if s.channels not in (1, 3):
        raise UsageError(f"--channels must be 1 or 3 (got {s.channels})")
    if s.loss not in LOSSES:
        raise UsageError(f"unknown --loss '{s.loss}' (valid: {', '.join(LOSSES)})")
    if not (s.lr > 0 and math.isfinite(s.lr)):
        raise UsageError(f"--lr must be positive (got {s.lr})")
    if s.time_limit is not None and not s.time_limit > 0:
        raise UsageError(f"--time-limit must be positive (got {s.time_limit})")
    if abs(sum(s.split) - 1) > 1e-6 or any(f < 0 for f in s.split) or s.split[1] <= 0:
        raise UsageError(f"--split must be three fractions that sum to 1, validation > 0 (got {s.split})")
    if s.precision not in ("auto", "fp32", "bf16"):
        raise UsageError(f"unknown precision {s.precision!r} (valid: auto, fp32, bf16)")
    check_colour_spaces(s)


def check_colour_spaces(s: TrainSettings) -> None:
    """--colour-spaces: known, distinct names, for a gray noise-level model on a folder of images."""
    from .model import COLOUR_SPACES

    if not s.colour_spaces:
        return
    unknown = [c for c in s.colour_spaces if c not in COLOUR_SPACES]
    if unknown or len(set(s.colour_spaces)) != len(s.colour_spaces):
        raise UsageError(f"--colour-spaces takes distinct names of {', '.join(COLOUR_SPACES)} "
                         f"(got {','.join(s.colour_spaces)})")
    if s.channels != 1 or s.folder is None or s.degrade:
        raise UsageError("--colour-spaces trains a gray model (--channels 1) on a FOLDER of colour images, "
                         "against Gaussian noise from --sigma-range (no --degrade, --pairs or --dataset)")


# -- the output folder ---------------------------------------------------------------------------------
def reserve_output(s: TrainSettings):
    """Check ``--out`` before anything is built: train's own rules, then those of every command's output
    folder (restorekit/session/outdir.py).  Returns the reservation that :func:`release_output` ends.

    Train's own rules: the folder is not inside a training folder (the model's files would become
    training images); a folder that holds files is continued with ``--resume`` (which needs its
    checkpoint), never replaced.  The shared rules: the folder neither is nor holds an input (the
    training folders, ``--init``'s model) and carries a lock naming this process while it trains, so
    that a second training aimed at it is refused; a new training's folder is not a file or a broken
    link and can be created, a resumed one is locked where it is
    (:func:`~restorekit.session.outdir.continue_output`).  Unlike run's results, a model folder is
    written in place, not staged: its checkpoint must outlive a killed training for ``--resume`` to
    continue it."""
    from ..session.outdir import LOCK_NAME, continue_output, prepare_output

    out = Path(s.out)
    for src in (s.folder, *(s.pairs or ())):
        if src is not None and Path(src).resolve() in (out.resolve(), *out.resolve().parents):
            raise UsageError(f"--out '{out}' is inside the training folder '{src}'; choose another --out")
    if not s.resume and out.is_dir() and any(name != LOCK_NAME for name in os.listdir(out)):
        raise UsageError(f"'{out}' already holds files; pass --resume to continue a training there, "
                         "or choose another --out")
    inputs = [Path(p) for p in (s.folder, *(s.pairs or ()), s.init) if p is not None]
    if s.resume:
        if not (out / CHECKPOINT).is_file():
            raise UsageError(f"--resume: '{out}' has no {CHECKPOINT} to continue from")
        return continue_output(out, inputs=inputs)
    return prepare_output(out, inputs=inputs, staged=False)  # in place: see above


def release_output(folder) -> None:
    """The lock of :func:`reserve_output` removed (and a new training's folder, when it wrote nothing)."""
    folder.abandon()


# -- losses and scores --------------------------------------------------------------------------------
def _gauss_window(channels: int, size: int = 7, sigma: float = 1.5):
    import torch

    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-x**2 / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(a, b):
    """Mean SSIM of two (N, C, H, W) batches in [0, 1] (Gaussian window 7, sigma 1.5; per image)."""
    import torch.nn.functional as F

    c = a.shape[1]
    size = min(7, a.shape[-1], a.shape[-2])
    size -= 1 - size % 2
    w = _gauss_window(c, size).to(a.device, a.dtype)

    def blur(t):
        return F.conv2d(t, w, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    va = blur(a * a) - mu_a**2
    vb = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2))
    return s.mean(dim=(1, 2, 3))


def loss_fn(name: str):
    import torch
    import torch.nn.functional as F

    if name == "mse":
        return lambda p, t: torch.mean((p - t) ** 2)
    if name == "l1":
        return lambda p, t: torch.mean(torch.abs(p - t))
    if name == "bce":
        return lambda p, t: F.binary_cross_entropy(p.clamp(1e-6, 1 - 1e-6), t)
    return lambda p, t: 1 - ssim(p, t).mean()


def psnr_each(a, b):
    import torch

    mse = torch.mean((a.clamp(0, 1) - b) ** 2, dim=(1, 2, 3)).clamp_min(1e-12)
    return -10 * torch.log10(mse)


# -- examples -----------------------------------------------------------------------------------------
@dataclass
class Examples:
    train: Any
    val: Any
    test: Any
    description: dict[str, Any]
    patch: int | None


def examples(s: TrainSettings) -> Examples:
    """The train / validation / test parts of the settings' source."""
    if s.dataset is not None:
        full = dataset(s.dataset, s.channels)
        n = len(full)
        order = np.arange(n)
        parts = split(list(order), s.split, s.seed)
        desc = {"dataset": s.dataset, "items": n, "size": list(full.images.shape[-2:])}
        patch = s.patch if s.patch is not None and s.patch < full.images.shape[-1] else None
        return Examples(full.subset(parts.train), full.subset(parts.val), full.subset(parts.test) if parts.test else None,
                        {**desc, "split": {"train": len(parts.train), "val": len(parts.val), "test": len(parts.test)}},
                        patch)
    if s.pairs is not None:
        low_dir, high_dir = (Path(p) for p in s.pairs)
        pairs = match_pairs(low_dir, high_dir)
        parts = split(pairs, s.split, s.seed)
        make = lambda items: PairFolder(items, s.channels) if items else None  # noqa: E731
        desc = {"pairs": [str(low_dir), str(high_dir)], "digest": digest([h for _, h in pairs]),
                "test_files": [str(h.relative_to(high_dir)) for _, h in parts.test]}
        return Examples(make(parts.train), make(parts.val), make(parts.test),
                        {**desc, "split": {"train": len(parts.train), "val": len(parts.val), "test": len(parts.test)}},
                        s.patch or 64)
    files = list_images(Path(s.folder))
    parts = split(files, s.split, s.seed)
    loaded = 3 if s.colour_spaces else s.channels  # colour images, cut into channels per batch
    make = lambda items: ImageFolder(items, loaded) if items else None  # noqa: E731
    desc = {"folder": str(s.folder), "digest": digest(files),
            "test_files": [str(p.relative_to(s.folder)) for p in parts.test]}
    return Examples(make(parts.train), make(parts.val), make(parts.test),
                    {**desc, "split": {"train": len(parts.train), "val": len(parts.val), "test": len(parts.test)}},
                    s.patch or 64)


class Degrader:
    """Makes the degraded input of each clean patch: pairs bring theirs; else one of the degradations
    (drawn per patch), or Gaussian noise from the sigma range (returning the sigmas)."""

    def __init__(self, s: TrainSettings, registry: Any) -> None:
        self.specs = [registry.create("degradation", d).spec for d in s.degrade]  # canonical strings
        self.registry = registry
        self.lo, self.hi = (v / 255.0 for v in s.sigma_range)
        for spec in self.specs:
            stage = registry.create("degradation", spec)
            if stage.scale_factor() != 1:
                raise UsageError(f"--degrade {spec}: train maps images to images of the same size; "
                                 "for super-resolution train on --pairs of upsampled and clean images")

    def canonical(self) -> list[str]:
        return list(self.specs)

    def one(self, clean: np.ndarray, k: int, seed: int) -> np.ndarray:
        from ..run.problem import ForwardModel

        fm = ForwardModel([self.registry.create("degradation", self.specs[k])])
        fm.prepare(clean.shape, seed, "benchmark")
        return fm.synthesize(clean, seed)

    def batch(self, clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        """(degraded, sigmas or None)."""
        if self.specs:
            out = np.empty_like(clean)
            for i in range(len(clean)):
                out[i] = self.one(clean[i], int(rng.integers(len(self.specs))), int(rng.integers(2**31)))
            return out, None
        sig = rng.uniform(self.lo, self.hi, len(clean)).astype(np.float32)
        noise = rng.standard_normal(clean.shape).astype(np.float32)
        return clean + noise * sig[:, None, None, None], sig


def _pad_to(x, stride: int):
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x


# -- checkpoints without pickle -----------------------------------------------------------------------
def _save_checkpoint(out: Path, net, opt, sched, rng, report: TrainReport, epoch: int,
                     settings: dict[str, Any]) -> None:
    import torch
    from safetensors.torch import save_file

    tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    opt_state = opt.state_dict()
    plain: dict[str, dict[str, Any]] = {}
    for idx, st in opt_state["state"].items():
        for key, val in st.items():
            if isinstance(val, torch.Tensor):
                tensors[f"opt.{idx}.{key}"] = val.detach().cpu().contiguous()
            else:
                plain.setdefault(str(idx), {})[key] = val
    sched_state = {k: v for k, v in sched.state_dict().items() if k != "lr_lambdas"}
    state = {"epoch": epoch, "param_groups": opt_state["param_groups"], "opt_plain": plain, "sched": sched_state,
             "rng": rng.bit_generator.state, "report": asdict(report), "settings": settings}
    tmp = out / f".{CHECKPOINT}.tmp"
    save_file(tensors, str(tmp), metadata={"state": json.dumps(state)})
    os.replace(tmp, out / CHECKPOINT)


def resume_settings(s: TrainSettings, *, net: str, degrade: list[str], data: dict[str, Any]) -> dict[str, Any]:
    """What a ``--resume`` must give again, by option name (checkpointed): the source and its files, the
    network, the degradations, the schedule and the optimiser.  Not --time-limit (a resumed training gets
    a new one), --device (another machine may continue it) or --json."""
    absolute = lambda p: None if p is None else os.path.abspath(p)  # noqa: E731 - a resume from elsewhere is the same
    settings = {
        "FOLDER": absolute(s.folder), "--pairs": None if s.pairs is None else [absolute(p) for p in s.pairs],
        "--dataset": s.dataset, "the training images": data.get("digest") or [data.get("items"), data.get("size")],
        "--split": list(s.split), "--degrade": degrade, "--net": net, "--sigma-range": list(s.sigma_range),
        "--channels": s.channels, "--epochs": s.epochs, "--steps": s.steps, "--steps-per-epoch": s.steps_per_epoch,
        "--batch": s.batch, "--patch": s.patch, "--loss": s.loss, "--lr": s.lr, "--seed": s.seed,
        "--precision": s.precision, "--init": absolute(s.init),
    }
    if s.colour_spaces:  # only when given: checkpoints written before the option resume as they were
        settings["--colour-spaces"] = list(s.colour_spaces)
    return json.loads(json.dumps(settings))  # as the checkpoint gives them back (lists, not tuples)


def card_settings(card: Any) -> dict[str, Any]:
    """The settings a model.json records, under resume_settings' names: what a checkpoint written before
    the settings were checkpointed is compared on."""
    card = card if isinstance(card, dict) else {}
    trained = card.get("trained") if isinstance(card.get("trained"), dict) else {}
    data = card.get("data") if isinstance(card.get("data"), dict) else {}
    return json.loads(json.dumps({
        "--net": card.get("net") or [card.get("architecture"), card.get("config")],
        "--channels": card.get("image_channels") or (card.get("config") or {}).get("image_channels"),
        "--degrade": card.get("degrade"), "--loss": card.get("loss"),
        "the training images": data.get("digest") or [data.get("dataset"), data.get("items")],
        "--seed": trained.get("seed"), "--batch": trained.get("batch"), "--patch": trained.get("patch"),
        "--lr": trained.get("lr"), "--steps-per-epoch": trained.get("steps_per_epoch"),
    }))


def _check_resume(out: Path, state: dict[str, Any], settings: dict[str, Any], card: dict[str, Any]) -> None:
    """Refuse, naming them, the options that differ from those the checkpointed training was started with."""
    recorded, now = state.get("settings"), settings
    if recorded is None:  # a checkpoint from before the settings were recorded: what its model.json says
        from .model import CARD

        try:
            stored = json.loads((out / CARD).read_text(encoding="utf-8"))
            if not isinstance(stored, dict):
                raise ValueError(f"{CARD} is not an object")
        except (OSError, ValueError):
            raise UsageError(f"--resume: the checkpoint in '{out}' does not record its settings and its {CARD} "
                             "cannot be read, so nothing says it is this training; choose another --out") from None
        recorded, now = card_settings(stored), card_settings(card)
    if not isinstance(recorded, dict):
        raise ValueError("its settings are not an object")
    changed = sorted(k for k in set(recorded) | set(now) if recorded.get(k) != now.get(k))
    if changed:
        raise UsageError(f"--resume with other settings than the training in '{out}' was started with "
                         f"({', '.join(changed)}): give the same options, or choose another --out")


def _check_report(report: TrainReport, epoch: Any, spe: int) -> None:
    """The counters a checkpoint brings back, checked before the loop trusts them."""
    def whole(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    if not all(whole(v) for v in (report.steps_run, report.epochs_run, report.best_epoch, report.best_step, epoch)):
        raise ValueError("its step and epoch counters are not whole numbers")
    # (a training stopped before its first step still checkpointed "epoch 1")
    if report.steps_per_epoch != spe or epoch != report.epochs_run or report.epochs_run != max(
            1, math.ceil(report.steps_run / spe)):
        raise ValueError(f"its counters disagree (epoch {epoch}, {report.epochs_run} epochs, {report.steps_run} "
                         f"steps of {report.steps_per_epoch} per epoch; this training: {spe})")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (report.best_val_psnr, report.seconds)):
        raise ValueError("its best score and time are not numbers")
    h = report.history
    keys = ("epoch", "step", "loss", "val_loss", "val_psnr", "time")
    if not (isinstance(h, dict) and all(isinstance(h.get(k), list) and len(h[k]) == len(h["epoch"]) for k in keys)):
        raise ValueError("its history is not six lists of one length")


def _load_checkpoint(out: Path, net, opt, sched, rng, *, settings: dict[str, Any], card: dict[str, Any],
                     spe: int) -> tuple[TrainReport, int]:
    """The training state in ``out``'s checkpoint, into the network, optimiser, schedule and random
    generator -- once its recorded settings are those of this training (else one line naming them)."""
    from safetensors import safe_open

    try:
        with safe_open(str(out / CHECKPOINT), "pt") as f:
            state = json.loads((f.metadata() or {})["state"])
            if not isinstance(state, dict):
                raise ValueError("its state is not an object")
            _check_resume(out, state, settings, card)  # before a tensor is read
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        opt_state: dict[str, Any] = {"state": {}, "param_groups": state["param_groups"]}
        for key, val in tensors.items():
            if key.startswith("opt."):
                _, idx, name = key.split(".", 2)
                opt_state["state"].setdefault(int(idx), {})[name] = val
        for idx, vals in state["opt_plain"].items():
            opt_state["state"].setdefault(int(idx), {}).update(vals)
        opt.load_state_dict(opt_state)
        sched.load_state_dict({**sched.state_dict(), **state["sched"]})
        rng.bit_generator.state = state["rng"]
        report = TrainReport(**state["report"])
        _check_report(report, state["epoch"], spe)
        return report, state["epoch"]
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a checkpoint of another training or a damaged one
        raise UsageError(f"--resume: cannot continue from the checkpoint in '{out}' ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200]}); was it written with the same --net and data?") from None


# -- the training ---------------------------------------------------------------------------------------
def build_network(s: TrainSettings, registry: Any, noise_map: bool, canvas: tuple[int, int]):
    """(network, card fields, stride) for the settings."""
    import torch

    from ..registry import call_accepting

    if noise_map:
        from .nets import ResUNet

        width = registry.create("generator", s.net).params.channels
        net = ResUNet(image_channels=s.channels, channels=width, noise_map=True)
        return net, {"architecture": "resunet", "config": net.config}, 4
    gen = registry.create("generator", s.net)
    if not gen.is_network():
        raise UsageError(f"--net {gen.spec}: not a network (it has no weights to train)")
    if getattr(gen, "owns_input", False):
        raise UsageError(f"--net {gen.spec}: it makes its own input, so it cannot map an image to an image")
    c = s.channels
    stride = gen.stride()
    padded = tuple(v + (-v) % stride for v in canvas)
    net = call_accepting(gen.build, c, c, init=torch.zeros((1, c, *padded)), canvas=padded)
    fixed = bool(getattr(net, "fixed_size", False))
    fields = {"net": gen.spec, "image_channels": c, "stride": stride,
              "canvas": list(padded) if fixed else None}
    return net, fields, stride


def seeded_network(s: TrainSettings, registry: Any, noise_map: bool, canvas: tuple[int, int], device):
    """The network's starting weights (from the seed, or --init's model), on the device."""
    import torch

    from .model import load, resolve

    torch.manual_seed(s.seed)
    net, net_fields, stride = build_network(s, registry, noise_map, canvas)
    if s.init is not None:
        init = load(resolve(str(s.init)))
        try:
            net.load_state_dict(init.net.state_dict())
        except RuntimeError:
            was = init.card.get("net") or f"{init.card.get('architecture')} {init.card.get('config')}"
            now = net_fields.get("net") or f"resunet {net_fields.get('config')}"
            raise UsageError(f"--init: the model in '{s.init}' is {was}; its weights do not fit {now} "
                             "(pass the same --net, and --channels)") from None
    net.to(device)
    return net, net_fields, stride


@dataclass
class Run:
    """One training, set up: the examples, the degradation, the network and its optimiser."""

    s: TrainSettings
    data: Examples
    degrader: Degrader
    noise_map: bool  #: the network is told the noise level (an extra input)
    net: Any
    net_fields: dict[str, Any]
    stride: int
    device: Any
    spe: int  #: steps per epoch
    total: int  #: steps in all
    epochs: int
    opt: Any
    sched: Any
    rng: np.random.Generator  #: the patches and their noise
    precision: str
    criterion: Callable[[Any, Any], Any]

    @property
    def crop(self) -> int | None:
        """The side of the validation and test crops (None: the data set's images whole)."""
        patch = self.data.patch
        return None if patch is None else patch if self.net_fields.get("canvas") else max(patch, 128)

    def forward(self, x, sig):
        """The network on a batch padded to its stride, cut back to the batch's size."""
        h, w = x.shape[-2:]
        xp = _pad_to(x, self.stride)
        y = self.net(xp, sig) if self.noise_map else self.net(xp)
        return y[..., :h, :w]

    def next_batch(self):
        """((degraded, sigmas), clean): a batch of training patches, degraded afresh."""
        import torch

        clean_np, low_np = draw(self.data.train, self.rng, self.s.batch, self.data.patch)
        if low_np is None:
            low_np, sig_np = self.degrader.batch(clean_np, self.rng)
        else:
            sig_np = None
        if self.s.colour_spaces:  # noise added in RGB and clipped, as in a colour photo; one channel a patch
            from .model import colour_channels

            clean_np, low_np, sig_np = colour_channels(clean_np, np.clip(low_np, 0, 1), sig_np,
                                                       self.s.colour_spaces, self.rng)
        clean = torch.from_numpy(clean_np).to(self.device)
        low = torch.from_numpy(np.ascontiguousarray(low_np, dtype=np.float32)).to(self.device)
        sig = None if sig_np is None else torch.from_numpy(sig_np).to(self.device)
        return (low, sig), clean

    def fixed_batch(self, source, seed: int):
        """The validation or test batches: fixed degradations, the same every epoch."""
        import torch

        clean, low = centre_crops(source, self.crop)
        if low is not None:
            return [(None, torch.from_numpy(low), torch.from_numpy(clean))]
        degrader = self.degrader
        if self.noise_map or not degrader.specs:
            g = torch.Generator().manual_seed(seed)
            c = torch.from_numpy(clean)
            sigmas = VAL_SIGMAS if self.noise_map else (0.5 * sum(self.s.sigma_range),)
            sets = [(sig / 255.0, c + torch.randn(c.shape, generator=g) * sig / 255.0, c) for sig in sigmas]
            if self.s.colour_spaces:  # every channel of every colour space, each with its scaled sigma
                from .model import colour_channels

                cut = [colour_channels(cl.numpy(), low.clamp(0, 1).numpy(), np.full(len(cl), sig),
                                       self.s.colour_spaces) for sig, low, cl in sets]
                sets = [(torch.from_numpy(sg), torch.from_numpy(lo), torch.from_numpy(cl)) for cl, lo, sg in cut]
            return sets
        lows = np.stack([degrader.one(clean[i], i % len(degrader.specs), seed * 100_003 + i) for i in range(len(clean))])
        return [(None, torch.from_numpy(lows.astype(np.float32)), torch.from_numpy(clean))]

    def score(self, sets) -> tuple[float, float, float, float]:
        """(loss, PSNR, SSIM, input PSNR), means over the images of the sets."""
        import torch

        net, device = self.net, self.device
        net.eval()
        losses, ps, ss, ins = [], [], [], []
        with torch.no_grad():
            for sig, low, clean in sets:
                low, clean = low.to(device), clean.to(device)
                if sig is None or torch.is_tensor(sig):  # none, or one per image
                    sv = None if sig is None else sig.to(device)
                else:
                    sv = torch.full((low.shape[0],), float(sig), device=device)
                pred = torch.cat([self.forward(low[i:i + 16], None if sv is None else sv[i:i + 16])
                                  for i in range(0, len(low), 16)]).float()
                losses.append(float(self.criterion(pred.clamp(0, 1), clean)))
                ps.append(psnr_each(pred, clean).cpu())
                ss.append(ssim(pred.clamp(0, 1), clean).cpu())
                ins.append(psnr_each(low.clamp(0, 1), clean).cpu())
        net.train()
        return (float(np.mean(losses)), float(torch.cat(ps).mean()), float(torch.cat(ss).mean()),
                float(torch.cat(ins).mean()))


def set_up(s: TrainSettings, registry: Any) -> Run:
    """The examples, the network, the optimiser, the schedule and the random generator of the settings
    (in this order: the weights and the draws come from the seed)."""
    import torch

    from ..session.device import cpu_has_native_bf16, pick_device

    degrader = Degrader(s, registry)
    data = examples(s)
    gen_name = registry.create("generator", s.net).name
    noise_map = not s.degrade and s.pairs is None and gen_name == "resunet"
    if s.colour_spaces and not noise_map:
        raise UsageError(f"--colour-spaces trains a network told the noise level (--net resunet), not {gen_name}")
    first_clean, _ = data.train.item(0)
    canvas = (data.patch, data.patch) if data.patch else tuple(first_clean.shape[-2:])
    device = pick_device(s.device)
    net, net_fields, stride = seeded_network(s, registry, noise_map, canvas, device)
    if s.steps_per_epoch:
        spe = s.steps_per_epoch
    else:
        crops = 1 if data.patch is None else max(1, (first_clean.shape[-2] * first_clean.shape[-1]) // data.patch**2)
        spe = max(1, math.ceil(len(data.train) * crops / s.batch))
    total = s.steps if s.steps is not None else s.epochs * spe
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    sched = cosine(opt, total)
    rng = np.random.default_rng(s.seed)
    precision = s.precision
    if precision == "auto":
        precision = "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"
    return Run(s, data, degrader, noise_map, net, net_fields, stride, device, spe, total, math.ceil(total / spe),
               opt, sched, rng, precision, loss_fn(s.loss))


def model_card(run: Run) -> dict[str, Any]:
    """model.json's fields that do not change from epoch to epoch."""
    s, degrader = run.s, run.degrader
    return {
        **run.net_fields, "task": "denoise" if (run.noise_map or not (degrader.specs or s.pairs)) else "restore",
        "degrade": degrader.canonical() or None,
        "sigma_range": list(s.sigma_range) if not (degrader.specs or s.pairs) else None,
        "noise_map": run.noise_map, "loss": s.loss, "data": run.data.description,
        "parameters": int(sum(p.numel() for p in run.net.parameters())),
        "trained": {"seed": s.seed, "batch": s.batch, "patch": run.data.patch, "lr": s.lr,
                    "precision": run.precision, "steps_per_epoch": run.spe, "device": run.device.type,
                    "init": None if s.init is None else str(s.init),
                    **({"colour_spaces": list(s.colour_spaces)} if s.colour_spaces else {})},
    }


def train(s: TrainSettings, *, log: Callable[[str], Any] | None = None,
          progress: Callable[..., Any] | None = None) -> TrainReport:
    """Train into ``s.out`` (see the module docstring); returns what happened."""
    from ..plugins import get_host

    check(s)
    log = log or (lambda _m: None)
    registry = get_host().registry
    out = Path(s.out)
    folder = reserve_output(s)  # before anything is built
    try:
        run = set_up(s, registry)
        val_sets = run.fixed_batch(run.data.val, 12345)
        card = model_card(run)
        settings = resume_settings(s, net=registry.create("generator", s.net).spec,
                                   degrade=run.degrader.canonical(), data=run.data.description)
        report = TrainReport(steps_per_epoch=run.spe)
        if s.resume:  # nothing is written before the checkpoint is known to be this training's
            report, _ = _load_checkpoint(out, run.net, run.opt, run.sched, run.rng, settings=settings, card=card,
                                         spe=run.spe)
            log(f"resuming after epoch {report.epochs_run} (step {report.steps_run}; best validation PSNR "
                f"{report.best_val_psnr:.2f} dB at epoch {report.best_epoch})")
        t0 = time.perf_counter() - report.seconds
        end_epoch = epoch_hook(run, out, report, card, settings, val_sets, t0, log)
        step, loss_v = run_steps(run, report, end_epoch, t0, progress)
        if not (out / WEIGHTS).exists():
            end_epoch(max(1, math.ceil(step / run.spe)), step, loss_v)  # stopped before the first epoch ended
        report.seconds = time.perf_counter() - t0
        finish(out, run.data, run.fixed_batch, run.score, run.net, card, report, log)
    finally:
        release_output(folder)
    return report


def epoch_hook(run: Run, out: Path, report: TrainReport, card: dict[str, Any], settings: dict[str, Any],
               val_sets, t0: float, log: Callable[[str], Any]) -> Callable[[int, int, float], None]:
    """What ends an epoch: the validation score, the history, the best model and the checkpoint."""
    from ..session.signals import deferred_signals

    def end_epoch(epoch: int, step: int, loss_v: float) -> None:
        vl, vp, vs, vin = run.score(val_sets)
        report.steps_run, report.epochs_run, report.seconds = step, epoch, time.perf_counter() - t0
        h = report.history
        for key, val in (("epoch", epoch), ("step", step), ("loss", loss_v), ("val_loss", vl), ("val_psnr", vp),
                         ("time", report.seconds)):
            h[key].append(val)
        # the model's two files and the checkpoint are written whole: Ctrl-C waits until they are
        with deferred_signals():
            if vp > report.best_val_psnr:
                report.best_val_psnr, report.best_step, report.best_epoch = vp, step, epoch
                save(run.net, {**card, "epoch": epoch, "step": step,
                               "val": {"psnr": round(vp, 3), "ssim": round(vs, 4), "loss": vl,
                                       "input_psnr": round(vin, 3)}}, out)
            _save_checkpoint(out, run.net, run.opt, run.sched, run.rng, report, epoch, settings)
        log(f"epoch {epoch}/{run.epochs}: loss {loss_v:.5f}, validation loss {vl:.5f}, PSNR {vp:.2f} dB "
            f"(input {vin:.2f}; best {report.best_val_psnr:.2f} at epoch {report.best_epoch}), {report.seconds:.0f} s")

    return end_epoch


def run_steps(run: Run, report: TrainReport, end_epoch, t0: float, progress) -> tuple[int, float]:
    """The steps from the report's to the last (restorekit/learn/loop.py); (step reached, last loss)."""
    def shown(step: int, loss_v: float) -> None:
        if progress is not None:
            progress(step=step, total=run.total, epoch=math.ceil(step / run.spe), epochs=run.epochs, loss=loss_v,
                     best=report.best_val_psnr if report.best_epoch else None)

    autocast = run.device.type if run.precision == "bf16" else None
    report.stopped_by = "epochs" if run.s.steps is None else "steps"
    try:
        done = fit(run.net, run.opt, run.next_batch, lambda pred, clean: run.criterion(pred.float(), clean),
                   forward=run.forward, total=run.total, start=report.steps_run, schedule=run.sched,
                   autocast=autocast, epoch=run.spe, on_epoch=end_epoch, on_step=shown,
                   time_limit=run.s.time_limit, started=t0, interruptible=True,
                   last_loss=report.history["loss"][-1] if report.history["loss"] else float("nan"))
    except NonFiniteLoss as exc:
        raise UsageError(f"the training loss became {exc.value} at step {exc.step}; try a lower --lr") from None
    # interrupted: the steps since the last checkpoint are dropped; --resume continues from that epoch
    report.stopped_by = done.stopped_by or report.stopped_by
    return done.step, done.loss


def finish(out: Path, data: Examples, fixed_batch, score, net, card, report: TrainReport, log) -> None:
    """The best model scored on the test images, an autoencoder's code statistics, curves.png, train.json."""
    import torch

    from .model import load

    best = load(out)
    net.load_state_dict(best.net.state_dict())
    card = json.loads((out / CARD).read_text(encoding="utf-8"))
    if data.test is not None:
        tl, tp, ts, tin = score(fixed_batch(data.test, 54321))
        card["test"] = {"psnr": round(tp, 3), "ssim": round(ts, 4), "loss": tl, "input_psnr": round(tin, 3)}
        log(f"test images: PSNR {tp:.2f} dB (input {tin:.2f}), SSIM {ts:.3f}")
    encode = getattr(net, "encode", None)
    if encode is not None and not getattr(net, "skips", False):
        clean, _ = centre_crops(data.train, data.patch, limit=2000)
        net.eval()
        with torch.no_grad():
            x = _pad_to(torch.from_numpy(np.ascontiguousarray(clean[:2000], dtype=np.float32)), card.get("stride", 1))
            codes = torch.cat([encode(x[i:i + 64].to(next(net.parameters()).device)).float().cpu()
                               for i in range(0, len(x), 64)])
        save_code_stats(out, codes.mean(0), codes.std(0) if len(codes) > 1 else torch.ones_like(codes[0]))
        card["code_shape"] = list(codes.shape[1:])
        card["sample_size"] = list(x.shape[-2:])
    tmp = out / f".{CARD}.tmp"
    tmp.write_text(json.dumps(card, indent=1), encoding="utf-8")
    os.replace(tmp, out / CARD)
    write_curves(out / "curves.png", report)
    tmp = out / ".train.json.tmp"
    tmp.write_text(json.dumps(asdict(report), indent=1), encoding="utf-8")
    os.replace(tmp, out / "train.json")


def write_curves(path: Path, report: TrainReport) -> None:
    """Training and validation loss, and validation PSNR, per epoch (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = report.history
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.plot(h["epoch"], h["loss"], "o-", label="training (last batch)")
    a.plot(h["epoch"], h["val_loss"], "s-", label="validation")
    a.set_xlabel("epoch")
    a.set_ylabel("loss")
    a.set_yscale("log")
    a.legend()
    b.plot(h["epoch"], h["val_psnr"], "o-", color="C2")
    if report.best_epoch:
        b.axvline(report.best_epoch, color="0.6", ls="--", lw=1)
    b.set_xlabel("epoch")
    b.set_ylabel("validation PSNR (dB)")
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)


__all__ = ["TrainSettings", "TrainReport", "train", "CARD", "WEIGHTS", "CHECKPOINT", "LOSSES", "ssim"]
