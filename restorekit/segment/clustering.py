"""Per-image clustering segmentation (Kanezaki, ICASSP 2018; Kim, Kanezaki, Tanaka, IEEE TIP 2020).

A small CNN (``layers`` 3x3 convolutions with ReLU and batch norm, then a
1x1 convolution to ``k`` responses and batch norm) is fitted to the one
image.  Each step, every pixel's label is the argmax of its responses; the
loss is the cross-entropy of the responses against those labels (feature
similarity: pixels of one label grow alike) plus ``continuity`` times the
L1 norm of the responses' horizontal and vertical differences (spatial
continuity: labels form regions).  With scribbles, a cross-entropy on the
marked pixels pulls them to two fixed labels.  The fit stops after
``iters`` steps or once ``min_segments`` labels remain.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..components import Budget, Decomposed, Hint
from ..errors import UsageError
from ..fit import every, run_loop
from .masks import object_segments

__all__ = ["cluster", "continuity_loss"]


def continuity_loss(r):
    """Mean absolute difference of ``(N, K, H, W)`` responses between vertical and horizontal neighbours."""
    return (r[..., 1:, :] - r[..., :-1, :]).abs().mean() + (r[..., :, 1:] - r[..., :, :-1]).abs().mean()


def _net(in_channels: int, params: Any):
    import torch.nn as nn

    layers: list[nn.Module] = []
    c = in_channels
    for _ in range(params.layers):
        layers += [nn.Conv2d(c, params.channels, 3, padding=1, padding_mode="reflect"), nn.ReLU(inplace=True), nn.BatchNorm2d(params.channels)]
        c = params.channels
    layers += [nn.Conv2d(c, params.k, 1), nn.BatchNorm2d(params.k)]
    return nn.Sequential(*layers)


def _device(device: Any):
    """``device`` as a torch device; None and the CPU as None, so that a CPU fit moves nothing."""
    if device is None:
        return None
    import torch

    dev = torch.device(device)
    return None if dev.type == "cpu" else dev


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0..n-1 in order of first appearance (row-major)."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse].reshape(labels.shape).astype(np.int64)


def cluster(
    image: np.ndarray, params: Any, *, hint: Hint | None = None, seed: int = 0, budget: Budget | None = None,
    device: Any = None,
) -> Decomposed:
    """Fit the CNN to ``image`` ``(C, H, W)``; labels of the segments and the object's mask.  ``device`` (a
    torch device or its text; None: the CPU) is where the CNN, the image and the scribbles live; the weights
    are drawn on the CPU as always and moved, and the result is NumPy on the CPU."""
    import torch
    import torch.nn.functional as F

    c, h, w = image.shape
    if min(h, w) < 4:
        raise UsageError(f"clustering needs an image of at least 4x4 pixels (got {w}x{h})")
    budget = budget or Budget()
    iters = int(budget.iterations or params.iters)
    torch.manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    x = (x - x.mean(dim=(2, 3), keepdim=True)) / (x.std(dim=(2, 3), keepdim=True) + 1e-6)
    dev = _device(device)
    net = _net(c, params)
    if dev is not None:  # the CPU moves nothing: a CPU fit is exactly as before
        x, net = x.to(dev), net.to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=params.lr, momentum=0.9)
    marked = None
    has_marks = False
    if hint is not None and hint.scribbles is not None:
        s = torch.from_numpy(np.asarray(hint.scribbles, dtype=np.int64))
        marked = (s > 0).view(-1)
        target_marked = (s.view(-1)[marked] - 1)  # object -> response 0, background -> response 1
        has_marks = bool(marked.any())  # told on the CPU, once
        if dev is not None:
            marked, target_marked = marked.to(dev), target_marked.to(dev)
    history: dict[str, list] = {"iteration": [], "loss": []}
    state: dict[str, Any] = {"labels": None, "segments": None}
    net.train()

    def forward(it: int):
        opt.zero_grad(set_to_none=True)
        r = net(x)
        flat = r[0].permute(1, 2, 0).reshape(-1, params.k)
        target = state["target"] = flat.argmax(1).detach()
        loss = state["loss"] = F.cross_entropy(flat, target) + params.continuity * continuity_loss(r)
        if has_marks:
            loss = state["loss"] = loss + params.scribble_weight * F.cross_entropy(flat[marked], target_marked)
        return loss

    def update(it: int) -> None:
        opt.step()
        state["labels"] = state["target"]
        state["segments"] = int(torch.unique(state["target"]).numel())

    def report(it: int) -> None:
        value = float(state["loss"].detach())
        history["iteration"].append(it)
        history["loss"].append(value)
        budget.report(it, iters, value)

    def few_segments(it: int, reporting: bool) -> str | None:
        return "done" if state["segments"] <= params.min_segments else None

    ended = run_loop(forward, iters, update=update, reporting=every(max(1, min(10, iters // 20 or 1)), iters),
                     report=report, stop=few_segments, out_of_time=lambda it: budget.out_of_time())
    it, labels = ended.iteration, state["labels"]
    stopped = "done" if ended.reason == "iterations" else ended.reason
    if labels is None:
        with torch.no_grad():
            labels = net(x)[0].argmax(0).view(-1)
    lab = _relabel(labels.view(h, w).cpu().numpy())
    obj = object_segments(lab, hint)
    notes = [f"{int(lab.max()) + 1} segments"]
    if stopped != "done":
        notes.append(f"stopped after {it} of {iters} iterations ({stopped}); the labels so far are kept")
    return Decomposed(mask=obj.astype(np.float32), labels=lab, iterations=it, history=history,
                      stopped=stopped, notes=notes)
