"""A tiny face / non-face classifier, trained in seconds on scikit-image's bundled ``lfw_subset``.

``skimage.data.lfw_subset()`` holds 200 gray 25x25 images: 100 faces (the
first 100) and 100 non-faces.  :func:`train_faces` fits :class:`FaceNet`
(two 3x3 convolution blocks and a linear layer, 1.4k weights) to a seeded
160-image split and scores the other 40; the weights, the split and the
order of the steps come from the seed, so every process gets the same
network (the steps are :func:`restorekit.learn.loop.fit`'s, as train's are).  Nothing is downloaded.  The built-in network ``faces``
(:mod:`restorekit.builtins.networks`) trains it on first use and keeps it
in memory for the rest of the process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..learn.loop import fit

#: (C, H, W) of the images the network takes
SHAPE = (1, 25, 25)


def _module_class():
    import torch.nn as nn

    class FaceNet(nn.Module):
        """conv1-relu1-pool1 (8 ch, 12x12), conv2-relu2-pool2 (16 ch, 6x6), fc (2 classes: non-face, face)."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
            self.relu1 = nn.ReLU()
            self.pool1 = nn.MaxPool2d(2)
            self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
            self.relu2 = nn.ReLU()
            self.pool2 = nn.MaxPool2d(2)
            self.fc = nn.Linear(16 * 6 * 6, 2)

        def forward(self, x):
            x = self.pool1(self.relu1(self.conv1(x)))
            x = self.pool2(self.relu2(self.conv2(x)))
            return self.fc(x.flatten(1))

    return FaceNet


def data() -> tuple[np.ndarray, np.ndarray]:
    """The 200 images ``(200, 1, 25, 25)`` float32 in [0, 1] and their labels (1 = face)."""
    from skimage.data import lfw_subset

    images = lfw_subset().astype(np.float32)[:, None]
    labels = np.r_[np.ones(100), np.zeros(100)].astype(np.int64)
    return images, labels


@dataclass
class Trained:
    net: Any
    train_accuracy: float
    test_accuracy: float
    test_index: np.ndarray


def train_faces(seed: int = 0, steps: int = 300, lr: float = 0.01) -> Trained:
    """Train :class:`FaceNet` on 160 of the 200 images (full-batch Adam); score the other 40."""
    import torch

    images, labels = data()
    order = np.random.default_rng(seed).permutation(len(images))
    train_idx, test_idx = order[:160], order[160:]
    x = torch.from_numpy(images)
    y = torch.from_numpy(labels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _module_class()()
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
    xt, yt = x[train_idx], y[train_idx]
    # full batch: every step sees the same 160 images; no schedule, no hooks (restorekit/learn/loop.py)
    fit(net, opt, lambda: ((xt,), yt), torch.nn.functional.cross_entropy, total=steps)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        pred = net(x).argmax(1)
    acc = (pred == y).float()
    return Trained(net, float(acc[train_idx].mean()), float(acc[test_idx].mean()), test_idx)


_CACHE: dict[int, Trained] = {}


def load_faces(seed: int = 0) -> Trained:
    """The trained network for ``seed``, trained on the first call in this process."""
    if seed not in _CACHE:
        _CACHE[seed] = train_faces(seed)
    return _CACHE[seed]


def example_face(index: int = 0) -> np.ndarray:
    """One of the bundled faces, ``(1, 25, 25)`` float32 in [0, 1]."""
    images, _ = data()
    return images[index]
