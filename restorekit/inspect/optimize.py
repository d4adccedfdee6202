"""Feature inversion and activation maximisation, each under a choice of image prior.

Both search for an image ``x`` by gradient descent (Adam) on an objective
computed through one layer of a network (:meth:`Inspected.layer_fn`):

* **inversion** (Mahendran & Vedaldi 2015; the deep image prior paper,
  section 4.4): ``||phi(x) - phi(x0)||^2 / ||phi(x0)||^2``, the features
  of ``x`` at the layer against those of the given image ``x0``;
* **activation maximisation**: ``-mean(phi(x)[unit])``, one channel of the
  layer (its spatial mean for a feature map), made as large as it goes.

The prior decides how ``x`` is parameterised, by role of the registered
prior (``--prior``, the same registry ``run`` uses):

* ``network`` (``dip``): ``x = G(z)``, G a registered generator (``--net``)
  with random weights, z the prior's input code; the network's weights are
  optimised, and its structure is the only regulariser;
* ``penalty`` (``tv``): ``x`` is the pixels, and the prior's penalty is
  added to the objective;
* ``none``: the pixels and nothing else.

Pixels stay in [0, 1] (projected after each step; a generator ends in a
sigmoid).  The result kept is the iterate with the lowest objective; a
Ctrl-C ends the current search with it and skips the priors not started.

``device`` (a torch device; None: the CPU) is where the search runs: the
image, the generator, its input code and the pixels live there (the
network looked into must already be there: :meth:`Inspected.to
<restorekit.inspect.model.Inspected.to>`).  Random numbers (the start
image, the code, the generator's weights, the code's fresh noise each step)
are drawn on the CPU as always and moved, so a seed gives the same search on
every device up to float rounding; the images come back as NumPy.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import UsageError
from ..fit import every, run_loop

#: the generator of ``--prior dip`` unless ``--net`` says otherwise: the skip network, narrow enough for a CPU
DEFAULT_NET = "skip:levels=3,channels=32,skip=4"
#: Adam's learning rate for a generator's weights and for pixels
DEFAULT_LR = {"network": 0.01, "pixels": 0.02}


@dataclass
class Reconstruction:
    """One prior's result: the image ``(C, H, W)`` in [0, 1] and how it was found."""

    label: str  # file stem and column title: the prior's name (made unique)
    prior: str  # canonical spec
    net: str | None  # the generator's canonical spec (network priors)
    image: np.ndarray
    objective: float  # feature loss (inversion) or activation (visualisation) of ``image``
    iterations: int
    best_iteration: int
    seconds: float
    stopped: str = "done"  # or "interrupted"
    start: float = float("nan")  # the objective at the starting image (before any step)
    lr: float = 0.0  # Adam's learning rate
    history: dict[str, list] = field(default_factory=lambda: {"iteration": [], "value": []})


def check_priors(priors, net_spec: str | None, registry) -> None:
    """Refuse, before any work, a prior these searches cannot use and a generator that is not a network."""
    for prior in priors:
        role = getattr(prior, "role", None)
        if role not in ("network", "penalty", "none"):
            raise UsageError(f"prior '{prior.name}' solves restorations directly (role {role}); feature inversion "
                             "and activation maximisation take dip, a penalty prior such as tv, or none")
        if role == "network":
            gen = registry.create("generator", net_spec or DEFAULT_NET)
            if not type(gen).is_network():
                raise UsageError(f"prior '{prior.name}' needs a network generator, not '{gen.name}' (see: "
                                 "restorekit list generators)")


def _parameterisation(prior, net_spec: str | None, shape, registry, seed: int, lr: float | None, init, device=None):
    """(parameters, make_x, penalty, lr, generator spec) for one prior; ``init`` is on the CPU, and what is
    fitted lives on ``device`` (None: the CPU)."""
    import torch

    def on(t):
        return t if device is None else t.to(device)

    c, h, w = shape
    role = getattr(prior, "role", None)
    if role == "network":
        gen = registry.create("generator", net_spec or DEFAULT_NET)
        if not type(gen).is_network():
            raise UsageError(f"prior '{prior.name}' needs a network generator, not '{gen.name}' (see: restorekit "
                             "list generators)")
        s = max(1, int(gen.stride()))
        hh, ww = -(-h // s) * s, -(-w // s) * s
        top, left = (hh - h) // 2, (ww - w) // 2
        rng = torch.Generator().manual_seed(seed)
        z = None
        if not type(gen).owns_input:
            canvas_init = torch.nn.functional.pad(init, (left, ww - w - left, top, hh - h - top), mode="replicate")
            z = prior.input_code(hh, ww, rng, init=canvas_init)
            if z is None:
                raise UsageError(f"prior '{prior.name}' makes no input code for the generator")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            in_ch = int(z.shape[1]) if z is not None else 0
            try:
                module = gen.build(in_ch, c, init=None)
            except TypeError:
                module = gen.build(in_ch, c)
        module = on(module)
        module.train()
        perturb = prior.perturb
        z_on = None if z is None else on(z)

        def make_x(train: bool = True):
            # the code's fresh noise is drawn on the CPU (the global generator, as always), then moved
            out = module(on(perturb(z)) if (train and z is not None) else z_on)
            return out[..., top : top + h, left : left + w]

        return list(module.parameters()), make_x, None, lr or DEFAULT_LR["network"], gen.spec
    if role in ("penalty", "none"):
        pixels = on(init.detach().clone()).requires_grad_(True)

        def make_x(train: bool = True):
            return pixels

        penalty = prior.penalty if role == "penalty" else None
        return [pixels], make_x, penalty, lr or DEFAULT_LR["pixels"], None
    raise UsageError(f"prior '{prior.name}' solves restorations directly (role {role}); feature inversion and "
                     "activation maximisation take dip, a penalty prior such as tv, or none")


def _search(objective, prior, *, shape, iters, seed, registry, net_spec, lr, init, label, progress=None, device=None):
    """Minimise ``objective(x)`` under ``prior``; the lowest-objective iterate is kept."""
    import torch

    params, make_x, penalty, lr, gen_spec = _parameterisation(prior, net_spec, shape, registry, seed, lr, init,
                                                              device)
    opt = torch.optim.Adam(params, lr=lr)
    pixels = gen_spec is None
    history: dict[str, list] = {"iteration": [], "value": []}
    values: list[Any] = []
    with torch.no_grad():
        best_x = make_x(False).detach().clone()
        start_value = float(objective(best_x))
    best: dict[str, Any] = {"total": None, "x": best_x, "it": 0, "done": 0}
    start = time.perf_counter()
    every_value = max(1, iters // 200)
    now: dict[str, Any] = {}

    def forward(it: int):
        opt.zero_grad(set_to_none=True)
        x = now["x"] = make_x(True)
        value = now["value"] = objective(x)
        total = now["total"] = value + penalty(x) if penalty is not None else value
        return total

    def update(it: int) -> None:
        with torch.no_grad():
            t = now["total"].detach()
            if best["total"] is None or bool(t < best["total"]):
                best.update(total=t, x=now["x"].detach().clone(), it=it)
            if it % every_value == 0 or it == 1:
                values.append((it, now["value"].detach()))
        opt.step()
        if pixels:
            with torch.no_grad():
                params[0].clamp_(0.0, 1.0)
        best["done"] = it

    def report(it: int) -> None:
        progress(label, it, iters, float(now["value"].detach()))

    ended = run_loop(forward, iters, update=update, reporting=every(10, iters),
                     report=report if progress is not None else None)
    stopped = "interrupted" if ended.interrupted else "done"
    best_x, best_it, done = best["x"], best["it"], best["done"]
    seconds = time.perf_counter() - start
    with torch.no_grad():
        final = float(objective(best_x))
    for it, v in values:
        history["iteration"].append(it)
        history["value"].append(float(v))
    rec = Reconstruction(
        label=label, prior=prior.spec, net=gen_spec, image=best_x[0].clamp(0, 1).cpu().numpy().astype(np.float32),
        objective=final, iterations=done, best_iteration=best_it, seconds=seconds, stopped=stopped, history=history,
        start=start_value, lr=lr,
    )
    return rec


def _labels(priors) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for p in priors:
        n = seen.get(p.name, 0) + 1
        seen[p.name] = n
        out.append(p.name if n == 1 else f"{p.name}-{n}")
    return out


def _init_image(shape, seed: int):
    import torch

    g = torch.Generator().manual_seed(seed + 1)
    return 0.45 + 0.1 * torch.rand((1, *shape), generator=g)


def invert(layer_fn: Callable, image: np.ndarray, priors: list, *, iters: int, seed: int = 0, registry=None,
           net_spec: str | None = None, lr: float | None = None, progress=None, device=None) -> list[Reconstruction]:
    """Feature inversion of ``image`` ``(C, H, W)`` in [0, 1] at the layer, one reconstruction per prior, on
    ``device`` (None: the CPU; the layer's network must be there)."""
    import torch

    device = _device(device)
    x0 = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    if device is not None:
        x0 = x0.to(device)
    with torch.no_grad():
        target = _features(layer_fn, x0).detach()
    scale = float((target**2).sum())
    if not math.isfinite(scale) or scale <= 0:
        scale = 1.0

    def objective(x):
        return ((_features(layer_fn, x) - target) ** 2).sum() / scale

    return _run_all(objective, priors, image.shape, iters, seed, registry, net_spec, lr, progress, device)


def _features(layer_fn, x):
    out = layer_fn(x)
    if isinstance(out, (tuple, list)):
        out = out[0]
    return out


def unit_count(layer_fn: Callable, shape) -> int:
    """How many units (channels, or features of a flat output) the layer has for an input of ``shape``."""
    import torch

    with torch.no_grad():
        out = _features(layer_fn, torch.full((1, *shape), 0.5))
    return int(out.shape[1]) if out.dim() >= 2 else int(out.numel())


def activation(layer_fn: Callable, x, unit: int):
    """The unit's activation: its channel's mean for a feature map, its value for a flat output."""
    out = _features(layer_fn, x)
    if out.dim() >= 2:
        return out[:, unit].mean()
    return out[unit]


def visualize(layer_fn: Callable, unit: int, shape, priors: list, *, iters: int, seed: int = 0, registry=None,
              net_spec: str | None = None, lr: float | None = None, progress=None,
              device=None) -> list[Reconstruction]:
    """Activation maximisation of ``unit`` at the layer for an input of ``shape`` (C, H, W), one per prior, on
    ``device`` (None: the CPU; the layer's network must be there).

    The recorded ``objective`` and history are the activation itself (higher is better).
    """
    def objective(x):
        return -activation(layer_fn, x, unit)

    recs = _run_all(objective, priors, shape, iters, seed, registry, net_spec, lr, progress, _device(device))
    for r in recs:
        r.objective, r.start = -r.objective, -r.start
        r.history["value"] = [-v for v in r.history["value"]]
    return recs


def _device(device):
    """``device`` as a torch device; None and the CPU as None, so that a CPU search moves nothing."""
    if device is None:
        return None
    import torch

    dev = torch.device(device)
    return None if dev.type == "cpu" else dev


def _run_all(objective, priors, shape, iters, seed, registry, net_spec, lr, progress, device=None) -> list[Reconstruction]:
    if registry is None:
        from ..plugins import get_host

        registry = get_host().registry
    init = _init_image(tuple(shape), seed)
    out = []
    import torch

    for prior, label in zip(priors, _labels(priors)):
        # the global generator draws the prior's fresh input noise each step: seeded, and put back after
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            rec = _search(objective, prior, shape=tuple(shape), iters=iters, seed=seed, registry=registry,
                          net_spec=net_spec, lr=lr, init=init, label=label, progress=progress, device=device)
        out.append(rec)
        if rec.stopped == "interrupted":
            break
    return out

