"""A trained model on disk: ``model.safetensors`` (the weights) and ``model.json`` (what it is).

A model folder is what ``restorekit train`` writes and what the ``learned``
prior reads.  The weights are safetensors (no code runs when they are read,
unlike a pickled checkpoint); ``model.json`` names the architecture and its
configuration, the noise levels it was trained on, and how it was trained.
The model shipped with restorekit lives in ``restorekit/data/models/``.
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
WEIGHTS, CARD = "model.safetensors", "model.json"
#: the models shipped with restorekit, by the name the learned prior takes
BUILTIN = {"gaussian": "gaussian-gray"}


def builtin_path(name: str) -> Path:
    return Path(str(resources.files("restorekit") / "data" / "models" / BUILTIN[name]))


def resolve(model: str) -> Path:
    """A model folder from a learned prior's ``model`` value: a shipped name or a path."""
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
        return int(self.card["config"]["image_channels"])

    @property
    def noise_map(self) -> bool:
        return bool(self.card["config"].get("noise_map"))


_CACHE: dict[tuple[str, float], LoadedModel] = {}


def load(path: Path) -> LoadedModel:
    """The model in ``path`` (cached per folder and modification time)."""
    from safetensors.torch import load_file

    from .nets import build

    path = Path(path)
    key = (str(path.resolve()), (path / WEIGHTS).stat().st_mtime)
    if key in _CACHE:
        return _CACHE[key]
    try:
        card = json.loads((path / CARD).read_text(encoding="utf-8"))
        if card.get("format") != FORMAT:
            raise ValueError(f"format is {card.get('format')!r}, not {FORMAT!r}")
        net = build(card["architecture"], card["config"])
        state = load_file(str(path / WEIGHTS))
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged model folder is the user's to fix
        raise UsageError(f"cannot load the model in '{path}': {exc}") from None
    net.eval()
    loaded = LoadedModel(net=net, card=card, path=path)
    _CACHE[key] = loaded
    return loaded


def save(net: Any, card: dict[str, Any], folder: Path) -> None:
    """Write the weights and the card into ``folder``, each atomically."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu().contiguous() for k, v in net.state_dict().items()}
    tmp = folder / f".{WEIGHTS}.tmp"
    save_file(state, str(tmp), metadata={"format": FORMAT})
    os.chmod(tmp, 0o644)
    os.replace(tmp, folder / WEIGHTS)
    tmp = folder / f".{CARD}.tmp"
    tmp.write_text(json.dumps({"format": FORMAT, **card}, indent=1), encoding="utf-8")
    os.replace(tmp, folder / CARD)


# -- applying a denoiser -------------------------------------------------------------------------------
_OPP = np.array([[1, 1, 1], [1, 0, -1], [1, -2, 1]], dtype=np.float64)
_OPP = _OPP / np.linalg.norm(_OPP, axis=1, keepdims=True)  # orthonormal: white noise stays white, same sigma


def denoise(model: LoadedModel, image: np.ndarray, sigma: float) -> np.ndarray:
    """Denoise a (C, H, W) float image in [0, 1] with noise ``sigma`` (0-1 units).

    A one-channel model denoises colour images channel by channel in an
    orthonormal opponent colour space (luminance and two colour
    differences), where Gaussian noise keeps its sigma; each channel is
    shifted and scaled into [0, 1] for the model, and its sigma with it.
    """
    c = image.shape[0]
    if model.image_channels == c:
        return _run(model, image, sigma)
    if model.image_channels != 1 or c != 3:
        raise UsageError(f"the model denoises {model.image_channels}-channel images; this one has {c}")
    opp = np.einsum("ij,jhw->ihw", _OPP, image.astype(np.float64))
    # luminance spans [0, sqrt(3)], the differences [-1/sqrt(2), 1/sqrt(2)] and [-2/sqrt(6), 2/sqrt(6)]
    offsets, scales = (0.0, 0.5, 0.5), (1 / math.sqrt(3), 1 / math.sqrt(2), math.sqrt(6) / 4)
    out = np.empty_like(opp)
    for k in range(3):
        scaled = opp[k] * scales[k] + offsets[k]
        den = _run(model, scaled[None].astype(np.float32), sigma * scales[k])[0]
        out[k] = (den - offsets[k]) / scales[k]
    return np.einsum("ij,jhw->ihw", _OPP.T, out).astype(np.float32)


def _run(model: LoadedModel, image: np.ndarray, sigma: float) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    stride = getattr(model.net, "stride", 1)
    _, h, w = image.shape
    ph, pw = (-h) % stride, (-w) % stride
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    with torch.no_grad():
        s = torch.tensor([float(sigma)])
        y = model.net(x, s) if model.noise_map else model.net(x)
    return y[0, :, :h, :w].numpy()
