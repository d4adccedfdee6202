"""A trained model on disk: ``model.safetensors`` (the weights) and ``model.json`` (what it is).

A model folder is what ``restorekit train`` writes and what the ``learned``
prior, ``restorekit eval`` and ``restorekit sample`` read.  The weights are
safetensors (no code runs when they are read, unlike a pickled checkpoint);
``model.json`` names the network -- a registered generator's canonical spec
(``"net"``), or, for the noise-level-aware denoiser, ``"architecture":
"resunet"`` and its configuration -- the degradations or noise levels it was
trained on, the data, and its validation and test scores.  An autoencoder's
folder also holds ``code.safetensors``: the mean and spread of its codes over
the training images, which ``restorekit sample`` draws from.  The model
shipped with restorekit lives in ``restorekit/data/models/``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError

FORMAT = "restorekit-model"
WEIGHTS, CARD, CODE = "model.safetensors", "model.json", "code.safetensors"
#: the models shipped with restorekit, by the name the learned prior takes (folders in data/models/)
BUILTIN = {"gaussian": "gaussian-gray", "gaussian-gray": "gaussian-gray", "gaussian-colour": "gaussian-colour"}
#: a shipped name that stands for another model on a colour image: ``gaussian`` is the gray model on gray
#: images and its fine-tune on colour photos' channels (``restorekit train --colour-spaces``) on colour ones
COLOUR_VARIANT = {"gaussian": "gaussian-colour"}


def builtin_path(name: str) -> Path:
    return Path(str(resources.files("restorekit") / "data" / "models" / BUILTIN[name]))


def resolve(model: str, channels: int | None = None) -> Path:
    """A model folder from a learned prior's ``model`` value: a shipped name or a path; for an image of
    ``channels`` channels (3: colour, the shipped name's :data:`COLOUR_VARIANT`)."""
    if channels == 3:
        model = COLOUR_VARIANT.get(model, model)
    if model in BUILTIN:
        path = builtin_path(model)
        if not (path / WEIGHTS).is_file():
            raise UsageError(f"the shipped model '{model}' is missing from this installation ({path}); "
                             "reinstall restorekit")
        return path
    path = Path(model)
    if not (path / CARD).is_file() or not (path / WEIGHTS).is_file():
        hint = f" (shipped models: {', '.join(BUILTIN)})"
        raise UsageError(f"'{model}' is not a restorekit model folder: it needs {CARD} and {WEIGHTS}{hint}")
    return path


@dataclass
class LoadedModel:
    net: Any
    card: dict[str, Any]
    path: Path

    @property
    def image_channels(self) -> int:
        if "image_channels" in self.card:
            return int(self.card["image_channels"])
        return int(self.card["config"]["image_channels"])

    @property
    def noise_map(self) -> bool:
        return bool((self.card.get("config") or {}).get("noise_map"))

    @property
    def canvas(self) -> tuple[int, int] | None:
        """The one image size a fixed-size network (a dense autoencoder) takes, else None."""
        c = self.card.get("canvas")
        return None if c is None else (int(c[0]), int(c[1]))

    @property
    def stride(self) -> int:
        return int(self.card.get("stride", getattr(self.net, "stride", 1)))

    @property
    def blind(self) -> bool:
        """Trained on degradations or pairs (applied as is), not told a noise level."""
        return not self.noise_map


_CACHE: dict[tuple[str, int, int], tuple[dict[str, Any], LoadedModel]] = {}


def load(path: Path) -> LoadedModel:
    """The model in ``path`` (cached per folder, weights' modification time and size, and model.json as
    read now: a changed card is checked again, never taken from the cache)."""
    from safetensors.torch import load_file

    from .nets import build

    path = Path(path)
    try:
        st = (path / WEIGHTS).stat()
    except OSError as exc:
        raise UsageError(f"cannot load the model in '{path}': {WEIGHTS}: {exc.strerror or exc}") from None
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    card = read_card(path)  # the schema checked, declared sizes capped: before anything is built
    if key in _CACHE and _CACHE[key][0] == card:
        return _CACHE[key][1]
    try:
        net = build(card["architecture"], card["config"]) if "architecture" in card else build_net(card)
        state = load_file(str(path / WEIGHTS))
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged model folder is the user's to fix
        raise UsageError(f"cannot load the model in '{path}': {exc}") from None
    net.eval()
    loaded = LoadedModel(net=net, card=card, path=path)
    _CACHE[key] = (json.loads(json.dumps(card)), loaded)  # a copy: callers may not change what is compared
    return loaded


def build_net(card: dict[str, Any]) -> Any:
    """The network a card names by generator spec, built through the plugin registry."""
    from ..plugins import get_host
    from ..registry import call_accepting

    gen = get_host().registry.create("generator", card["net"])
    if "stride" in card and gen.stride() != card["stride"]:
        raise UsageError(f"model.json says the network's stride is {card['stride']}, but {gen.spec} has "
                         f"stride {gen.stride()}: the file was changed after training")
    c = int(card["image_channels"])
    canvas = tuple(card["canvas"]) if card.get("canvas") else None
    init = None
    if canvas is not None:
        import torch

        init = torch.zeros((1, c, *canvas))
    return call_accepting(gen.build, c, c, init=init, canvas=canvas)


def code_stats(path: Path) -> tuple[Any, Any] | None:
    """The (mean, std) tensors of an autoencoder's codes over its training images, if recorded."""
    if not (Path(path) / CODE).is_file():
        return None
    from safetensors.torch import load_file

    try:
        t = load_file(str(Path(path) / CODE))
        mean, std = t["mean"].float(), t["std"].float()
        if mean.shape != std.shape or not (mean.isfinite().all() and std.isfinite().all()):
            raise ValueError("'mean' and 'std' must be finite tensors of one shape")
    except Exception as exc:  # noqa: BLE001 - a damaged file in the user's folder
        raise UsageError(f"cannot read the code statistics in '{Path(path) / CODE}': "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    return mean, std


def save_code_stats(folder: Path, mean: Any, std: Any) -> None:
    from safetensors.torch import save_file

    tmp = folder / f".{CODE}.tmp"
    save_file({"mean": mean.contiguous(), "std": std.contiguous()}, str(tmp))
    os.replace(tmp, folder / CODE)


# -- model.json: what a folder says, checked before anything is built from it ------------------------------
#: the widest stride a network may declare (2 ** levels; ten levels are 1024)
MAX_STRIDE = 1024
#: the widths of the noise-level-aware denoiser the 'resunet' generator allows
MAX_RESUNET_CHANNELS = 512


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _whole(value: Any, lo: int, hi: int | None = None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= lo and (hi is None or value <= hi)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_card(card: Any, path: Path) -> dict[str, Any]:
    """``card`` (model.json as read) checked field by field against what restorekit writes, and returned;
    a one-line :class:`UsageError` naming the first field that is wrong.  Declared image sizes (a dense
    network's canvas, the sample size) are held to the pixel limit of input images
    (``RESTOREKIT_MAX_PIXELS``), so a changed file cannot make restorekit allocate without bound."""
    from ..io import check_declared_size

    def bad(field: str, must: str, value: Any = None, shown: bool = True) -> UsageError:
        got = f" (got {json.dumps(value)[:60]})" if shown else ""
        return UsageError(f"cannot load the model in '{path}': {CARD}'s \"{field}\" must be {must}{got}")

    if not isinstance(card, dict):
        raise UsageError(f"cannot load the model in '{path}': {CARD} is not an object (it holds {_kind(card)})")
    if card.get("format") != FORMAT:
        raise bad("format", f"\"{FORMAT}\"", card.get("format"))
    if "architecture" in card:
        if not isinstance(card["architecture"], str):
            raise bad("architecture", "a name", card["architecture"])
        config = card.get("config")
        if not isinstance(config, dict):
            raise bad("config", "an object", config)
        if set(config) - {"image_channels", "channels", "noise_map"}:
            raise bad("config", "image_channels, channels and noise_map only", sorted(config))
        if not _whole(config.get("image_channels", 1), 1, 3) or config.get("image_channels", 1) == 2:
            raise bad("config.image_channels", "1 or 3", config.get("image_channels"))
        if not _whole(config.get("channels", 32), 1, MAX_RESUNET_CHANNELS):
            raise bad("config.channels", f"a whole number from 1 to {MAX_RESUNET_CHANNELS}", config.get("channels"))
        if not isinstance(config.get("noise_map", True), bool):
            raise bad("config.noise_map", "true or false", config.get("noise_map"))
        if config.get("noise_map", True) and card.get("sigma_range", (0, 255)) is None:
            raise bad("sigma_range", "two noise levels for a model told the noise level", None)
    else:
        if not isinstance(card.get("net"), str) or not card["net"].strip():
            raise bad("net", "a generator spec (restorekit list generators)", card.get("net"))
        if card.get("image_channels") not in (1, 3) or isinstance(card.get("image_channels"), bool):
            raise bad("image_channels", "1 or 3", card.get("image_channels"))
        if card.get("config") is not None:
            raise bad("config", "absent for a generator's network (it belongs to \"architecture\")", card["config"])
    if "stride" in card and not _whole(card["stride"], 1, MAX_STRIDE):
        raise bad("stride", f"a whole number from 1 to {MAX_STRIDE}", card["stride"])
    for field in ("canvas", "sample_size"):
        size = card.get(field)
        if size is None:
            continue
        if not (isinstance(size, list) and len(size) == 2 and all(_whole(v, 1) for v in size)):
            raise bad(field, "null or [height, width] in pixels", size)
        what = "canvas" if field == "canvas" else "sample size"
        check_declared_size(tuple(size), f"the {what} that {CARD} in '{path}' declares")
    code = card.get("code_shape")
    if code is not None and not (isinstance(code, list) and code and all(_whole(v, 1) for v in code)):
        raise bad("code_shape", "null or a list of sizes", code)
    degrade = card.get("degrade")
    if degrade is not None and not (isinstance(degrade, list) and all(isinstance(d, str) for d in degrade)):
        raise bad("degrade", "null or a list of degradation specs", degrade)
    sig = card.get("sigma_range")
    if sig is not None and not (isinstance(sig, list) and len(sig) == 2 and all(_number(v) for v in sig)
                                and 0 <= sig[0] <= sig[1] <= 255 and sig[1] > 0):
        raise bad("sigma_range", "null or [LO, HI] with 0 <= LO <= HI <= 255, HI > 0", sig)
    if "noise_map" in card and not isinstance(card["noise_map"], bool):
        raise bad("noise_map", "true or false", card["noise_map"])
    for field in ("data", "trained", "val", "test"):
        if card.get(field) is not None and not isinstance(card[field], dict):
            raise bad(field, "null or an object", card[field])
    for field in ("val", "test"):
        for key, v in (card.get(field) or {}).items():
            if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool)):
                raise bad(f"{field}.{key}", "a number", v)
    if card.get("val_psnr") is not None and not _number(card["val_psnr"]):
        raise bad("val_psnr", "a number", card["val_psnr"])
    for field in ("parameters", "epoch", "step"):
        if card.get(field) is not None and not _whole(card[field], 0):
            raise bad(field, "a whole number", card[field])
    for field in ("loss", "task"):
        if card.get(field) is not None and not isinstance(card[field], str):
            raise bad(field, "a name", card[field])
    return card


def read_card(path: Path) -> dict[str, Any]:
    """``path``/model.json, read and checked (:func:`check_card`)."""
    try:
        card = json.loads((Path(path) / CARD).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        why = (exc.strerror or str(exc)) if isinstance(exc, OSError) else f"not JSON ({str(exc).splitlines()[0]})"
        raise UsageError(f"cannot load the model in '{path}': {CARD}: {why}") from None
    return check_card(card, Path(path))


def find_models(folder: Path) -> list[Path]:
    """Every model folder under ``folder`` (itself included), by model.json."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"'{folder}' does not exist or is not a folder")
    return sorted({p.parent for p in folder.rglob(CARD) if (p.parent / WEIGHTS).is_file()})


def save(net: Any, card: dict[str, Any], folder: Path, fmt: str = FORMAT) -> None:
    """Write the weights and the card into ``folder``, each atomically (``fmt``: the format both name)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu().contiguous() for k, v in net.state_dict().items()}
    tmp = folder / f".{WEIGHTS}.tmp"
    save_file(state, str(tmp), metadata={"format": fmt})
    os.chmod(tmp, 0o644)
    os.replace(tmp, folder / WEIGHTS)
    tmp = folder / f".{CARD}.tmp"
    tmp.write_text(json.dumps({"format": fmt, **card}, indent=1), encoding="utf-8")
    os.replace(tmp, folder / CARD)


# -- applying a denoiser -------------------------------------------------------------------------------
_OPP = np.array([[1, 1, 1], [1, 0, -1], [1, -2, 1]], dtype=np.float64)
_OPP = _OPP / np.linalg.norm(_OPP, axis=1, keepdims=True)  # orthonormal: white noise stays white, same sigma


#: the colour spaces a gray model denoises a colour image in (:func:`colour_basis`)
COLOUR_SPACES = ("opponent", "pca", "rgb")


def colour_basis(image: np.ndarray, space: str = "opponent") -> np.ndarray:
    """An orthonormal colour transform (3 x 3, rows: the channels a gray model denoises) for a (3, H, W) image:
    ``opponent`` (luminance and two colour differences, fixed), ``pca`` (the image's own principal colour axes,
    strongest first: white noise only adds to every axis's variance, so the noisy image's axes are the clean
    one's), or ``rgb`` (the channels as they are).  Orthonormal: white noise keeps its sigma."""
    if space == "opponent":
        return _OPP
    if space == "rgb":
        return np.eye(3)
    if space != "pca":
        raise UsageError(f"unknown colour space '{space}' (valid: {', '.join(COLOUR_SPACES)})")
    _, vectors = np.linalg.eigh(np.cov(image.reshape(3, -1).astype(np.float64)))
    t = vectors[:, ::-1].T.copy()
    for k in range(3):  # a fixed sign: the largest component positive
        if t[k, np.argmax(np.abs(t[k]))] < 0:
            t[k] = -t[k]
    return t


def denoise(model: LoadedModel, image: np.ndarray, sigma: float, colour: str = "opponent") -> np.ndarray:
    """Denoise a (C, H, W) float image in [0, 1] with noise ``sigma`` (0-1 units).

    A one-channel model denoises colour images channel by channel in an
    orthonormal colour space (:func:`colour_basis`: by default the opponent
    space of luminance and two colour differences), where Gaussian noise keeps
    its sigma; each channel is shifted and scaled from its range over the RGB
    cube into [0, 1] for the model, and its sigma with it.
    """
    check_fits(model, image.shape)
    c = image.shape[0]
    if model.image_channels == c:
        return _run(model, image, sigma)
    if model.image_channels != 1 or c != 3:
        raise UsageError(f"the model denoises {model.image_channels}-channel images; this one has {c}")
    t = colour_basis(image, colour)
    z = np.einsum("ij,jhw->ihw", t, image.astype(np.float64))
    out = np.empty_like(z)
    for k in range(3):
        lo, scale = channel_window(t[k])
        den = _run(model, ((z[k] - lo) * scale)[None].astype(np.float32), sigma * scale)[0]
        out[k] = den / scale + lo
    return np.einsum("ij,jhw->ihw", t.T, out).astype(np.float32)


def channel_window(row: np.ndarray) -> tuple[float, float]:
    """(lo, scale) that map a colour-space channel (one row of :func:`colour_basis`) into [0, 1] for a gray
    model, (value - lo) * scale: its range over the RGB cube is [sum of its negative weights, sum of its
    positive ones]; the noise's sigma is scaled with it."""
    lo, hi = float(np.minimum(row, 0).sum()), float(np.maximum(row, 0).sum())
    return lo, 1 / (hi - lo)


def colour_channels(clean: np.ndarray, noisy: np.ndarray, sigma: np.ndarray, spaces: tuple[str, ...],
                    rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colour patches (N, 3, H, W) as a gray model sees them in :func:`denoise`: (clean, noisy, sigma) of
    one-channel patches (M, 1, H, W), each a channel of a patch in one of ``spaces`` (:data:`COLOUR_SPACES`;
    ``pca``: the noisy patch's own axes, as the noisy image's at run time), shifted and scaled into [0, 1],
    its sigma (N,) scaled with it.  With ``rng``, one space and channel drawn per patch (M = N); without,
    every channel of every space (M = N x len(spaces) x 3, the patches in order)."""
    cs, ns, ss = [], [], []
    for i in range(len(clean)):
        if rng is None:
            picks = [(sp, k) for sp in spaces for k in range(3)]
        else:
            picks = [(spaces[int(rng.integers(len(spaces)))], int(rng.integers(3)))]
        bases = {sp: colour_basis(noisy[i], sp) for sp in {sp for sp, _ in picks}}
        for sp, k in picks:
            row = bases[sp][k]
            lo, scale = channel_window(row)
            cs.append((np.einsum("j,jhw->hw", row, clean[i]) - lo) * scale)
            ns.append((np.einsum("j,jhw->hw", row, noisy[i]) - lo) * scale)
            ss.append(float(sigma[i]) * scale)
    f32 = lambda v: np.ascontiguousarray(np.stack(v), dtype=np.float32)  # noqa: E731
    return f32(cs)[:, None], f32(ns)[:, None], f32(ss)


#: images larger than this (either side) are processed in overlapping tiles (bounded memory)
TILE, OVERLAP = 512, 32


def check_fits(model: LoadedModel, shape: tuple[int, ...]) -> None:
    """One-line refusal when a (C, H, W) image does not fit the model's channels or size."""
    c, h, w = shape
    if c != model.image_channels and not (model.image_channels == 1 and c == 3):
        raise UsageError(f"the model in '{model.path}' takes {model.image_channels}-channel images; "
                         f"this one has {c}")
    if model.canvas is not None and (h < model.canvas[0] or w < model.canvas[1]):
        raise UsageError(f"the model in '{model.path}' takes {model.canvas[1]}x{model.canvas[0]} images "
                         f"(larger ones in tiles); this one is {w}x{h}")


def apply(model: LoadedModel, image: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """The model on a (C, H, W) image of any size (colour through a gray model: see :func:`denoise`)."""
    check_fits(model, image.shape)
    if model.noise_map:
        if sigma is None:
            raise UsageError(f"the model in '{model.path}' needs the noise level (sigma)")
        return denoise(model, image, sigma)
    if model.image_channels == 1 and image.shape[0] == 3:
        return np.concatenate([_run(model, image[k:k + 1], 0.0) for k in range(3)])
    return _run(model, image, 0.0)


def _windows(size: int, tile: int, overlap: int) -> list[int]:
    if size <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, size - tile, step)) + [size - tile]
    return sorted(set(starts))


def _run(model: LoadedModel, image: np.ndarray, sigma: float) -> np.ndarray:
    """The network over the image: whole, or in overlapping tiles blended by linear ramps."""
    _, h, w = image.shape
    if model.canvas is not None:
        th, tw = model.canvas
        overlap = min(th, tw) // 4
    else:
        th = tw = TILE
        overlap = OVERLAP
    if h <= th and w <= tw and model.canvas is None:
        return _run_one(model, image, sigma)
    from ..tiling import blend_tiles

    rows = [(t, th) for t in _windows(h, th, overlap)]
    cols = [(l, tw) for l in _windows(w, tw, overlap)]
    return blend_tiles(image, lambda tile: _run_one(model, tile, sigma), rows, cols, overlap + 1).astype(np.float32)


def _run_one(model: LoadedModel, image: np.ndarray, sigma: float) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    stride = model.stride
    _, h, w = image.shape
    ph, pw = (-h) % stride, (-w) % stride
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    with torch.no_grad():
        s = torch.tensor([float(sigma)])
        y = model.net(x, s) if model.noise_map else model.net(x)
    return y[0, :, :h, :w].clamp(0, 1).numpy()
