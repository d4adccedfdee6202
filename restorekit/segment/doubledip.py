"""Coupled deep image priors (Double-DIP; Gandelsman, Shocher, Irani, CVPR 2019).

The image is explained as ``m * y1 + (1 - m) * y2``: ``y1`` and ``y2`` are
the outputs of two generators (any registered one, restorekit's ``skip``
net by default, made small for the CPU) and ``m`` the one-channel output
of a third.  The loss is the fit to the image, plus

* the exclusion loss (Zhang, Ng, Chen 2018) between the two layers'
  gradients, at three scales: two layers that are the same image have
  the same edges and pay the most (:func:`exclusion_loss`);
* for segmentation, ``1 - 2 * mean(|m - 0.5|)`` (:func:`binary_loss`): zero
  only for a mask of 0s and 1s;
* the hint: the mask is held to 0 outside a box and to the scribbles.

The default number of steps depends on the task (:data:`TASK_ITERS`).
One fit serves every task (:func:`double_dip`, driving :func:`restorekit.fit.run_loop`); what a
task adds (its checks, its start, how the layers compose the image, its loss and its result) is
its piece in :data:`TASKS`.

Tasks:

``segment``       ``y1`` is the object, ``y2`` the background, ``m`` the mask.
                  The fit starts from an initial split (a k-means of local
                  colour and texture statistics, inside the box where there
                  is one, oriented by the hint or the border, refined by
                  per-region texture models, GrabCut-like:
                  :func:`initial_split`): for ``warmup`` steps each layer
                  fits its own side and the mask network the split, whose
                  input code holds the split and the image (``guide``).
                  Then the mask is free: each layer is fitted where the mask
                  gives it the pixels, the mask is pulled to the layer that
                  explains each pixel better (the composite's fit once the
                  mask is binary), plus the exclusion loss between the
                  visible parts, the binary term and the hint.
``transparency``  two images mixed with a uniform weight: ``m`` is one
                  learned number per mixture.  Given a second mixture of the
                  same two images (``second=``), the problem is linear: the
                  weights come from the gradients' kurtosis
                  (:func:`mixing_weights`) and the layers from them
                  (:func:`unmix`); with ``unmix=false`` both mixtures are
                  fitted from there with shared layers and their own weights.
                  One image alone is ill-posed: the split is the priors'.
``watermark``     ``y1`` the clean image, ``y2`` the watermark, ``m`` its
                  opacity, zero outside the box hint (required); outside
                  the box the clean layer is the image itself.
``dehaze``        ``y1`` the haze-free image, ``m`` the transmission map
                  (at least :data:`T_FLOOR`), ``y2`` a uniform airlight (a
                  learned colour); the fit starts from the dark channel
                  prior's dehazing (He et al. 2009; ``warmup`` steps), and
                  the result's scene is the image through the fitted model,
                  ``(I - A) / t + A``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..components import Budget, Decomposed, Hint
from ..errors import UsageError
from ..fit import every, run_loop
from .dehaze import T0, dark_channel_dehaze, recover_scene
from .masks import object_segments

__all__ = ["exclusion_loss", "binary_loss", "initial_split", "double_dip", "segment_restarts"]

#: the steps of a fit when neither the spec nor --iters says: a segmentation's free fit helps early and
#: drifts later (300 with a warm-up of 150 was the best of 100/50, 150/75, 300/100, 300/150 and 450/150 on
#: the benchmark's tuning split, ``--split tune``); the layers of the other tasks
#: keep improving (transparency from two mixtures, 96x96: about 2 dB better at 600 steps than at 300, and
#: less than 1 dB more at 1200)
TASK_ITERS = {"segment": 300, "transparency": 600, "watermark": 600, "dehaze": 600}

#: depth of each generator's random input code (the DIP paper's is 32; 8 is plenty for these small nets)
CODE_DEPTH = 8


def exclusion_loss(y1, y2, levels: int = 3):
    """The exclusion loss of two ``(N, C, H, W)`` tensors: mean over scales of
    ``|| tanh(l1 |grad y1|) * tanh(l2 |grad y2|) ||_F``-like products, with
    ``l1, l2`` balancing the two layers' gradient magnitudes (Zhang et al.
    2018).  Large when the two have edges in the same places, small when
    their edges are apart."""
    import torch
    import torch.nn.functional as F

    total = y1.new_zeros(())
    for level in range(levels):
        gx1, gy1 = y1[..., :, 1:] - y1[..., :, :-1], y1[..., 1:, :] - y1[..., :-1, :]
        gx2, gy2 = y2[..., :, 1:] - y2[..., :, :-1], y2[..., 1:, :] - y2[..., :-1, :]
        for a, b in ((gx1, gx2), (gy1, gy2)):
            la = torch.sqrt(b.abs().mean().detach() / (a.abs().mean().detach() + 1e-8) + 1e-8)
            lb = torch.sqrt(a.abs().mean().detach() / (b.abs().mean().detach() + 1e-8) + 1e-8)
            prod = torch.tanh(la * a.abs()) * torch.tanh(lb * b.abs())
            total = total + torch.sqrt((prod**2).mean() + 1e-12)
        if level + 1 < levels and min(y1.shape[-2:]) >= 4:
            y1, y2 = F.avg_pool2d(y1, 2), F.avg_pool2d(y2, 2)
    return total / levels


def binary_loss(m):
    """``1 - 2 * mean(|m - 0.5|)``: 0 for a mask of 0s and 1s, 1 for one of 0.5s."""
    return 1 - 2 * (m - 0.5).abs().mean()


# ---------------------------------------------------------------------------
# the initial split (segmentation)
# ---------------------------------------------------------------------------
def texture_features(image: np.ndarray, scales: tuple[float, ...] = (2.0, 4.0, 8.0)) -> np.ndarray:
    """Per-pixel features ``(H*W, D)``, each standardised: colour (CIELAB, or the values), and at each
    scale (Gaussian sigma in pixels) the local mean and standard deviation of the luminance and the local
    means of its horizontal and vertical gradient magnitudes (texture energy and orientation)."""
    from scipy import ndimage

    from .baselines import features, gray

    h, w = image.shape[1:]
    g = gray(image)
    gx, gy = np.abs(ndimage.sobel(g, 1)), np.abs(ndimage.sobel(g, 0))
    cols = [features(image)]
    for sigma in scales:
        mu = ndimage.gaussian_filter(g, sigma)
        var = ndimage.gaussian_filter(g * g, sigma) - mu * mu
        stats = [mu, np.sqrt(np.maximum(var, 0)), ndimage.gaussian_filter(gx, sigma), ndimage.gaussian_filter(gy, sigma)]
        cols.append(np.stack(stats, -1).reshape(h * w, -1))
    f = np.concatenate(cols, 1)
    return (f - f.mean(0)) / (f.std(0) + 1e-8)


def feature_image(image: np.ndarray) -> np.ndarray:
    """:func:`texture_features` as a ``(D, H, W)`` image in [0, 1] (each channel's 1st-99th percentile)."""
    h, w = image.shape[1:]
    f = texture_features(image)
    lo, hi = np.percentile(f, 1, axis=0), np.percentile(f, 99, axis=0)
    f = np.clip((f - lo) / np.maximum(hi - lo, 1e-8), 0, 1)
    return np.ascontiguousarray(f.T.reshape(-1, h, w), dtype=np.float32)


def initial_split(image: np.ndarray, hint: Hint | None = None, *, seed: int = 0, regions: bool = True) -> np.ndarray:
    """The ``(H, W)`` float mask a segmentation starts from.

    First a k-means of :func:`texture_features` with the colour block weighted as much as all texture
    statistics together: with a box (and no scribbles), a 2-means of the box's inside only, the cluster
    farther from the outside's mean being the object; otherwise a 3-means (:data:`START_CLUSTERS`).  The
    object side is picked by the hint or the border (:func:`~restorekit.segment.masks.object_segments`).  Then (``regions``) a GrabCut-like refinement
    from that split (:func:`restorekit.segment.regions.grabcut`: a Gaussian mixture of texture features
    per region, a mean-field Potts smoothing, a few rounds).  The split is smoothed and the pixels a hint
    marks set to what it says.  With scribbles on both sides (and ``regions``) the start is instead a
    random walker from the marked pixels (:func:`_scribbled_start`).
    """
    from scipy import ndimage

    from .baselines import features, kmeans
    from .regions import grabcut
    from .regions import texture_features as region_features

    h, w = image.shape[1:]
    if hint is not None and hint.scribbles is not None and regions:
        marks = hint.seeds(h, w)
        if (marks == 1).any() and (marks == 2).any():
            return _scribbled_start(image, marks)
    f = texture_features(image)
    ncol = features(image).shape[1]
    f[:, :ncol] *= np.sqrt((f.shape[1] - ncol) / ncol)
    inside = None if hint is None or hint.box is None else (hint.seeds(h, w) == 0).ravel()
    if inside is not None and hint.scribbles is None and 2 <= inside.sum() < h * w:
        sub = kmeans(f[inside], 2, seed=seed)
        out_mean = f[~inside].mean(0)
        dist = [np.linalg.norm(f[inside][sub == j].mean(0) - out_mean) if (sub == j).any() else 0.0 for j in (0, 1)]
        labels = np.zeros(h * w, np.int64)
        labels[inside] = (sub == int(np.argmax(dist))).astype(np.int64)
        labels = labels.reshape(h, w)
    else:
        # without a box: a 3-means, the clusters under-represented on the border (or the background
        # scribbles) being the object; a third cluster lets a background of two kinds stay background
        labels = kmeans(f, START_CLUSTERS, seed=seed).reshape(h, w)
    # without a hint only the clusters clearly under-represented on the border (less than half their
    # share of the image) are the object: a background split in two by noise stays background
    obj = object_segments(labels, hint, under=0.5 if hint is None else 1.0)
    if regions and min(h, w) >= 16:
        seeds = None if hint is None else hint.seeds(h, w)
        q, _ = grabcut(image, seeds, obj, feats=region_features(image), seed=seed, **GRABCUT)
        obj = object_segments((q >= 0.5).astype(np.int8), hint) if hint is None else q >= 0.5
    m = ndimage.gaussian_filter(obj.astype(np.float64), 1.0)
    if hint is not None:
        seeds = hint.seeds(h, w)
        m[seeds == 1] = 1.0
        m[seeds == 2] = 0.0
    return np.clip(m, 0.02, 0.98).astype(np.float32)


def _scribbled_start(image: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The start from scribbles on both sides (``seeds``: 1 object, 2 background, a box's outside
    included): Grady's random walker from the marked pixels on the image.  Marks on both sides say more
    than any clustering: on the tuning split at 96x96 (scribbles drawn along the skeletons of the object
    and of the background) it gave a mean IoU of 0.838 against 0.495 for the clusters and texture models;
    the texture models run after it changed the coupled fit's result from 0.854 to 0.759 at 96x96 and from
    0.814 to 0.829 at 192x192, so they are not."""
    from scipy import ndimage

    from .baselines import random_walker

    obj = random_walker(image, seeds) == 1
    m = ndimage.gaussian_filter(obj.astype(np.float64), 1.0)
    m[seeds == 1] = 1.0
    m[seeds == 2] = 0.0
    return np.clip(m, 0.02, 0.98).astype(np.float32)


#: the least transmission a dehazing allows (He et al.'s t0, as the dark-channel baseline's)
T_FLOOR = T0

#: clusters of the start without a box (3 was better than 2, 4 and 6 on the tuning split)
START_CLUSTERS = 3

#: the GrabCut-like refinement's settings (chosen on the benchmark's tuning split, ``--split tune``)
GRABCUT = {"rounds": 10, "components": 4, "beta": 1.0, "temperature": 10.0}


# ---------------------------------------------------------------------------
# transparency from two mixtures: the mixing weights
# ---------------------------------------------------------------------------
def _gradients(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return np.concatenate([np.diff(x, axis=-1).ravel(), np.diff(x, axis=-2).ravel()])


def _kurtosis(g: np.ndarray) -> float:
    g = g - g.mean()
    return float((g**4).mean() / ((g**2).mean() ** 2 + 1e-20))


def mixing_weights(x1: np.ndarray, x2: np.ndarray) -> tuple[float, float] | None:
    """The weights ``(w1, w2)`` of layer 1 in two mixtures ``x_i = w_i * A + (1 - w_i) * B`` of the same
    two images, or None when no two layers stand out.

    Every candidate layer is ``x1 + t * (x2 - x1)`` for one number ``t``; a mixture of two images has
    denser gradients than either (their sum is closer to Gaussian), so the two pure layers are the two
    highest local maxima over ``t`` of the kurtosis of the candidate's gradients (an ICA-like contrast on
    gradients).  Layer 1 is the one with the larger weight in the first mixture.
    """
    g1, g2 = _gradients(x1), _gradients(x2)
    d = g2 - g1
    if not np.any(d):
        return None
    ts = np.linspace(-6.0, 7.0, 1301)
    k = np.array([_kurtosis(g1 + t * d) for t in ts])
    peaks = [i for i in range(1, len(ts) - 1) if k[i] >= k[i - 1] and k[i] >= k[i + 1]]
    if len(peaks) < 2:
        return None
    peaks.sort(key=lambda i: -k[i])
    ta = ts[peaks[0]]
    tb = next((ts[i] for i in peaks[1:] if abs(ts[i] - ta) > 0.2), None)
    if tb is None:
        return None
    # layer t is x1 + t (x2 - x1): for A, w1 + tA (w2 - w1) = 1; for B, w1 + tB (w2 - w1) = 0
    w1, w2 = -tb / (ta - tb), (1 - tb) / (ta - tb)
    if w1 < 0.5 and (1 - w1) > w1:  # name the layer with the larger share of the first mixture layer 1
        w1, w2 = 1 - w1, 1 - w2
    return float(w1), float(w2)


def unmix(x1: np.ndarray, x2: np.ndarray, w1: float, w2: float) -> tuple[np.ndarray, np.ndarray]:
    """The two layers of two mixtures with known weights of layer 1 (``w1 != w2``)."""
    det = w1 - w2
    a = ((1 - w2) * x1 - (1 - w1) * x2) / det
    b = (w1 * x2 - w2 * x1) / det
    return a, b


# ---------------------------------------------------------------------------
# the fit
# ---------------------------------------------------------------------------
def _generator(params: Any):
    """The registered generator named by ``params.net``, sized by ``channels`` and ``levels`` where it has them."""
    from ..plugins import get_registry

    reg = get_registry()
    cls = reg.get("generator", params.net).cls
    fields = cls.Params.model_fields
    spec = {}
    if "levels" in fields:
        spec["levels"] = params.levels
    if "channels" in fields:
        spec["channels"] = params.channels
    if "skip" in fields:
        spec["skip"] = min(4, params.channels)
    gen = cls(cls.validate(spec))
    if not gen.is_network():
        raise UsageError(f"double-dip needs a network generator; '{params.net}' is not one (see: restorekit list generators)")
    return gen


class _Layers:
    """The three generators of one fit on a canvas padded to the generators' stride."""

    def __init__(self, params: Any, channels: int, shape: tuple[int, int], *, mask: bool, seed: int,
                 device: Any = None) -> None:
        import torch

        gen = _generator(params)
        s = max(1, int(gen.stride()))
        h, w = shape
        self.hc, self.wc = -(-h // s) * s, -(-w // s) * s
        self.h, self.w = h, w
        g = torch.Generator().manual_seed(seed)
        self.codes = []
        self.nets = []
        torch.manual_seed(seed)
        for out in (channels, channels) + ((1,) if mask else ()):
            # built and drawn on the CPU as always (the same weights and codes on every device), then moved
            self.nets.append(_on(gen.build(CODE_DEPTH, out), device))
            self.codes.append(_on(torch.rand((1, CODE_DEPTH, self.hc, self.wc), generator=g) * 0.1, device))
        self.noise = params.noise
        self.g = g
        self.device = device

    def guide(self, index: int, planes) -> None:
        """Put ``planes`` ((H, W) arrays, the image's size) first in net ``index``'s input code, reflected
        to the canvas."""
        import torch

        k = min(len(planes), CODE_DEPTH)
        a = np.stack([np.asarray(p, np.float32) for p in planes[:k]])
        a = np.pad(a, ((0, 0), (0, self.hc - self.h), (0, self.wc - self.w)), mode="reflect" if min(self.h, self.w) > 1 else "edge")
        self.codes[index] = self.codes[index].clone()
        self.codes[index][0, :k] = torch.from_numpy(np.ascontiguousarray(a))

    def parameters(self):
        return [p for n in self.nets for p in n.parameters()]

    def __call__(self, jitter: bool = True):
        import torch

        outs = []
        for net, z in zip(self.nets, self.codes):
            if jitter and self.noise > 0:
                # drawn from the CPU generator on every device, then moved: the same jitter everywhere
                z = z + self.noise * _on(torch.randn(z.shape, generator=self.g), self.device)
            outs.append(net(z)[..., : self.h, : self.w])
        return outs


def _steps(task: str, params: Any, budget: Budget) -> int:
    """The steps of one fit: the budget's (--iters), else the spec's, else the task's default."""
    return int(budget.iterations or params.iters or TASK_ITERS[task])


# ---------------------------------------------------------------------------
# the tasks: what each one adds to the shared fit (double_dip)
# ---------------------------------------------------------------------------
class _Task:
    """One task of :func:`double_dip`: its checks, its start, how the layers compose the image, its
    loss and its result.  The shared fit calls, in order: :meth:`check`; :meth:`prepare` (before the
    generators are built); :meth:`setup` (after; a result here ends the task without a fit);
    :meth:`warmup`; then each step :meth:`compose` and :meth:`loss`; at the end :meth:`finish` and
    :meth:`result`.  ``fit`` is the :class:`_Fit` the task belongs to."""

    name = ""
    #: whether the third generator (the mask's, one channel) is built
    mask_net = True

    def __init__(self, fit: "_Fit") -> None:
        self.fit = fit
        #: parameters fitted besides the generators' (a mixing weight, an airlight)
        self.extra: list = []

    @classmethod
    def check(cls, image: np.ndarray, hint: Hint | None, second: np.ndarray | None) -> None:
        """Refuse, before any work, what the task cannot take."""
        if second is not None:
            raise UsageError("a second mixture is for --task transparency only")

    def prepare(self) -> None:
        """Before the generators are built."""

    def setup(self, layers: "_Layers") -> Decomposed | None:
        """After the generators are built; a :class:`Decomposed` is the result, with no fit."""
        return None

    def warmup(self, iters: int) -> int:
        """The steps at the start that learn the task's start rather than the image."""
        return 0

    def compose(self, outs: list) -> dict:
        """The generators' outputs as ``y1``, ``y2``, ``m`` and ``fit`` (pairs of observation and model)."""
        raise NotImplementedError

    def loss(self, it: int, out: dict):
        raise NotImplementedError

    def finish(self, best: dict, stopped: str) -> None:
        """The kept outputs (``best``, changed in place) once the fit has ended."""

    def result(self, best: dict, history: dict, iterations: int, stopped: str) -> Decomposed:
        raise NotImplementedError

    def fit_loss(self, out: dict):
        """The mean squared error of each composite against its observation, summed."""
        import torch.nn.functional as F

        return sum(F.mse_loss(pred, obs) for obs, pred in out["fit"])

    def decomposed(self, history: dict, iterations: int, stopped: str, **parts) -> Decomposed:
        return Decomposed(**parts, iterations=iterations, history=history, stopped=stopped, notes=self.fit.notes)


class _Segment(_Task):
    """``y1`` the object, ``y2`` the background, ``m`` the mask; from :func:`initial_split`."""

    name = "segment"

    def prepare(self) -> None:
        import torch

        f = self.fit
        self.start = initial_split(f.image, f.hint, seed=f.seed)  # (H, W) on the CPU, for the mask's code
        self.m0 = f.on(torch.from_numpy(self.start)[None, None])
        f.notes.append("started from a k-means split of colour and texture"
                       + (" and the hint" if f.hint is not None else "") + ", refined by per-region texture models")
        self.weight = None
        if f.params.features > 0:
            # the layers explain the pixels and their texture statistics: two textures become two nearly
            # uniform feature layers, which the coupled priors split as they split two flat colours
            feats = f.on(torch.from_numpy(feature_image(f.image))[None])
            c = f.image.shape[0]
            weight = torch.cat([torch.ones(c), torch.full((feats.shape[1],), math.sqrt(f.params.features))])
            self.weight = f.on(weight[None, :, None, None])
            f.x = torch.cat([f.x, feats], 1) * self.weight

    def setup(self, layers: "_Layers") -> None:
        if self.fit.params.guide:
            # the mask network sees the start and the image in its input code (the DIP's guided input): it
            # can keep a sharp boundary where the start has one and move it where the layers say
            layers.guide(2, [self.start, *self.fit.image])

    def warmup(self, iters: int) -> int:
        return min(self.fit.params.warmup, iters // 2)

    def compose(self, outs: list) -> dict:
        y1, y2, m = outs[0], outs[1], outs[2]
        if self.weight is not None:
            y1, y2 = y1 * self.weight, y2 * self.weight
        return {"y1": y1, "y2": y2, "m": m, "fit": [(self.fit.x, m * y1 + (1 - m) * y2)]}

    def loss(self, it: int, out: dict):
        import torch.nn.functional as F

        x, m0, params, seeds = self.fit.x, self.m0, self.fit.params, self.fit.seeds
        y1, y2, m = out["y1"], out["y2"], out["m"]
        if it <= self.fit.warm:
            # each layer learns its own region; the mask learns the start
            loss = ((m0 * (y1 - x)) ** 2).mean() + (((1 - m0) * (y2 - x)) ** 2).mean()
            return loss + F.binary_cross_entropy(m, m0)
        # each layer is fitted where the mask gives it the pixel (the composite's fit once the mask
        # is binary): a pixel goes to the layer that explains it better, and a layer only ever
        # learns its own region, so it cannot take over the other's
        e1, e2 = (y1 - x) ** 2, (y2 - x) ** 2
        md = m.detach()
        loss = (md * e1).mean() + ((1 - md) * e2).mean()  # each layer: its own pixels
        loss = loss + (m * e1.detach() + (1 - m) * e2.detach()).mean()  # the mask: the better layer
        loss = loss + params.exclusion * exclusion_loss(m * y1, (1 - m) * y2)
        loss = loss + params.binary * 0.01 * binary_loss(m)
        if seeds is not None and params.hint_weight > 0 and self.fit.marked:
            known = seeds > 0
            target = (seeds == 1).float()
            loss = loss + params.hint_weight * F.binary_cross_entropy(m[known], target[known])
        return loss

    def finish(self, best: dict, stopped: str) -> None:
        import torch

        if stopped != "interrupted":
            f = self.fit
            snapped = _snap(f.image, _np(best["m"])[0], f.params, f.hint, f.notes)
            if snapped is not None:
                best["m"] = torch.from_numpy(snapped.astype(np.float32))[None, None]

    def result(self, best: dict, history: dict, iterations: int, stopped: str) -> Decomposed:
        c = self.fit.image.shape[0]
        mask = _np(best["m"])[0]
        return self.decomposed(history, iterations, stopped, mask=mask, labels=(mask >= 0.5).astype(np.int64),
                               layers={"foreground": _np(best["y1"][:, :c]), "background": _np(best["y2"][:, :c])})


class _Transparency(_Task):
    """Two images mixed with a uniform weight: ``m`` is one learned number per mixture."""

    name = "transparency"
    mask_net = False

    @classmethod
    def check(cls, image: np.ndarray, hint: Hint | None, second: np.ndarray | None) -> None:
        if second is not None and second.shape != image.shape:
            c, h, w = image.shape
            raise UsageError(f"the second mixture is {second.shape[2]}x{second.shape[1]}x{second.shape[0]}, "
                             f"the image {w}x{h}x{c}: give two mixtures of the same size")

    def setup(self, layers: "_Layers") -> Decomposed | None:
        import torch

        f = self.fit
        self.unmixed = None
        # two mixtures: the weights from the gradients' kurtosis (mixing_weights) and the layers they give
        # as the layers' start; one mixture: a neutral start that tells the layers apart
        start = [0.7] + ([0.3] if f.x2 is not None else [])
        if f.second is not None:
            est = mixing_weights(f.image, f.second)
            if est is not None and abs(est[0] - est[1]) > 0.02:
                start = [min(max(v, 0.01), 0.99) for v in est]
                a0, b0 = (np.clip(v, 0, 1).astype(np.float32) for v in unmix(f.image, f.second, *est))
                f.notes.append("mixing weights estimated from the gradients' kurtosis: "
                               + ", ".join(f"{v:.4f}" for v in est))
                if getattr(f.params, "unmix", True):
                    # the layers that explain both mixtures exactly: a DIP fit could only blur them
                    f.notes.append("layers: the linear unmixing with those weights "
                                   "(no fit; unmix=false fits the priors from it)")
                    f.notes.append("mixing weights of layer 1: " + ", ".join(str(round(v, 4)) for v in est))
                    return self.decomposed({"iteration": [], "loss": []}, 0, "done",
                                           layers={"layer1": a0, "layer2": b0})
                self.unmixed = [f.on(torch.from_numpy(v)[None]) for v in (a0, b0)]
        alpha = f.on(torch.tensor(start, dtype=torch.float32))
        self.logit = torch.log(alpha / (1 - alpha)).requires_grad_(True)
        self.extra.append(self.logit)
        return None

    def warmup(self, iters: int) -> int:
        return iters // 3 if self.unmixed is not None else 0

    def compose(self, outs: list) -> dict:
        import torch

        y1, y2 = outs[0], outs[1]
        a = torch.sigmoid(self.logit)
        fits = [(self.fit.x, a[0] * y1 + (1 - a[0]) * y2)]
        if self.fit.x2 is not None:
            fits.append((self.fit.x2, a[1] * y1 + (1 - a[1]) * y2))
        return {"y1": y1, "y2": y2, "m": a, "fit": fits}

    def loss(self, it: int, out: dict):
        import torch.nn.functional as F

        y1, y2 = out["y1"], out["y2"]
        if self.unmixed is not None and it <= self.fit.warm:
            # the layers first learn the linear unmixing, then fit the mixtures with the exclusion loss
            return F.mse_loss(y1, self.unmixed[0]) + F.mse_loss(y2, self.unmixed[1])
        return self.fit_loss(out) + self.fit.params.exclusion * exclusion_loss(y1, y2)

    def result(self, best: dict, history: dict, iterations: int, stopped: str) -> Decomposed:
        c = self.fit.image.shape[0]
        a = [round(float(v), 4) for v in best["m"].detach().cpu().numpy().ravel()]
        self.fit.notes.append("mixing weights of layer 1: " + ", ".join(map(str, a)))
        return self.decomposed(history, iterations, stopped,
                               layers={"layer1": _np(best["y1"][:, :c]), "layer2": _np(best["y2"][:, :c])})


class _Watermark(_Task):
    """``y1`` the clean image, ``y2`` the watermark, ``m`` its opacity, zero outside the box."""

    name = "watermark"

    @classmethod
    def check(cls, image: np.ndarray, hint: Hint | None, second: np.ndarray | None) -> None:
        if hint is None or hint.box is None:
            raise UsageError("double-dip's watermark removal needs the watermark's box: --hint box:x,y,w,h")
        super().check(image, hint, second)

    def setup(self, layers: "_Layers") -> None:
        import torch

        h, w = self.fit.image.shape[1:]
        bx, by, bw, bh = self.fit.hint.box
        box_out = torch.ones((1, 1, h, w))
        box_out[..., max(by, 0): by + bh, max(bx, 0): bx + bw] = 0
        self.box_out = self.fit.on(box_out)

    def compose(self, outs: list) -> dict:
        y1, y2 = outs[0], outs[1]
        m = outs[2] * (1 - self.box_out)
        return {"y1": y1, "y2": y2, "m": m, "fit": [(self.fit.x, (1 - m) * y1 + m * y2)]}

    def loss(self, it: int, out: dict):
        params = self.fit.params
        loss = self.fit_loss(out)
        loss = loss + params.exclusion * exclusion_loss(out["y1"], out["m"] * out["y2"])
        return loss + params.binary * 0.01 * out["m"].mean()

    def finish(self, best: dict, stopped: str) -> None:
        # outside the box the opacity is 0 and the image is the clean layer itself: keep the input there, not
        # the generator's reconstruction of it
        best["y1"] = self.box_out * self.fit.x + (1 - self.box_out) * best["y1"]

    def result(self, best: dict, history: dict, iterations: int, stopped: str) -> Decomposed:
        c = self.fit.image.shape[0]
        return self.decomposed(history, iterations, stopped, mask=_np(best["m"])[0],
                               layers={"clean": _np(best["y1"][:, :c]), "watermark": _np(best["y2"][:, :c])})


class _Dehaze(_Task):
    """``y1`` the haze-free image, ``m`` the transmission map, ``y2`` a uniform airlight; from the dark
    channel prior's dehazing."""

    name = "dehaze"

    def setup(self, layers: "_Layers") -> None:
        import torch

        f = self.fit
        # the fit starts from the dark channel prior's dehazing (restorekit.segment.dehaze): its airlight, and
        # for the warm-up steps its scene and transmission as the layers' targets
        dcp = dark_channel_dehaze(f.image)
        a0 = np.clip(dcp.airlight, 0.05, 0.999).astype(np.float32)
        self.haze0 = (f.on(torch.from_numpy(np.ascontiguousarray(dcp.dehazed, dtype=np.float32))[None]),
                      f.on(torch.from_numpy(np.clip(dcp.transmission, T_FLOOR, 1).astype(np.float32))[None, None]))
        f.notes.append("started from the dark channel prior's dehazing (airlight "
                       + ", ".join(f"{v:.3f}" for v in a0) + ")")
        air_logit = torch.log(torch.from_numpy(a0) / (1 - torch.from_numpy(a0)))
        self.air_logit = f.on(air_logit[None, :, None, None].clone()).requires_grad_(True)
        self.extra.append(self.air_logit)

    def warmup(self, iters: int) -> int:
        return min(self.fit.params.warmup, iters // 2)

    def compose(self, outs: list) -> dict:
        import torch

        y1 = outs[0]
        t = T_FLOOR + (1 - T_FLOOR) * outs[2]  # a floor: where t -> 0 the scene would be unconstrained
        air = torch.sigmoid(self.air_logit).expand_as(y1)
        return {"y1": y1, "y2": air, "m": t, "fit": [(self.fit.x, t * y1 + (1 - t) * air)]}

    def loss(self, it: int, out: dict):
        import torch.nn.functional as F

        y1, m, params = out["y1"], out["m"], self.fit.params
        if it <= self.fit.warm:
            # the scene and the transmission learn the dark channel's
            return F.mse_loss(y1, self.haze0[0]) + F.mse_loss(m, self.haze0[1])
        loss = self.fit_loss(out)
        dark = -F.max_pool2d(-y1.min(1, keepdim=True)[0], 7, 1, 3)  # the dark channel prior
        loss = loss + params.exclusion * 0.1 * dark.mean()
        tv = (m[..., 1:, :] - m[..., :-1, :]).abs().mean() + (m[..., :, 1:] - m[..., :, :-1]).abs().mean()
        return loss + params.binary * 0.01 * tv

    def result(self, best: dict, history: dict, iterations: int, stopped: str) -> Decomposed:
        image, notes = self.fit.image, self.fit.notes
        c = image.shape[0]
        y2, mask = _np(best["y2"][:, :c]), _np(best["m"])[0]
        air = y2[:, :1, :1]
        notes.append("airlight: " + ", ".join(f"{v:.3f}" for v in air.ravel()))
        # the scene from the image through the fitted model, I = t J + (1 - t) A, as the dark channel prior does:
        # the generator's own y1 is a smoothed copy (benchmark: 14.70 dB / SSIM 0.443 against 16.15 / 0.699)
        y1 = recover_scene(image, mask, air, T_FLOOR)
        return self.decomposed(history, iterations, stopped, mask=mask,
                               layers={"dehazed": y1, "airlight": air, "transmission": mask[None]})


#: each task's piece of the fit
TASKS: dict[str, type[_Task]] = {t.name: t for t in (_Segment, _Transparency, _Watermark, _Dehaze)}


class _Fit:
    """What one :func:`double_dip` fit works on: the image (``x``, and ``x2`` for a second mixture), the
    hint's seeds (``marked``: whether it marks any pixel), the spec, the notes, ``warm`` (the warm-up steps,
    set once the task has said) and ``device`` (None: the CPU), where every tensor of the fit lives."""

    def __init__(self, image: np.ndarray, params: Any, hint: Hint | None, seed: int, second: np.ndarray | None,
                 device: Any = None) -> None:
        import torch

        h, w = image.shape[1:]
        self.image, self.params, self.hint, self.seed, self.second = image, params, hint, seed, second
        self.device = device
        self.x = self.on(torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None])
        self.x2 = None if second is None else self.on(torch.from_numpy(np.ascontiguousarray(second, dtype=np.float32))[None])
        seeds = None if hint is None else torch.from_numpy(hint.seeds(h, w).astype(np.int64))[None, None]
        self.marked = seeds is not None and bool((seeds > 0).any())  # told on the CPU: no sync each step
        self.seeds = None if seeds is None else self.on(seeds)
        self.notes: list[str] = []
        self.warm = 0

    def on(self, t):
        """``t`` on the fit's device (itself on the CPU: a CPU fit is exactly as before)."""
        return _on(t, self.device)


def double_dip(
    image: np.ndarray,
    task: str,
    params: Any,
    *,
    hint: Hint | None = None,
    seed: int = 0,
    budget: Budget | None = None,
    second: np.ndarray | None = None,
    device: Any = None,
) -> Decomposed:
    """Fit the coupled priors to ``image`` ``(C, H, W)`` for ``task``; see the module's docstring.  ``device``
    (a torch device or its text; None: the CPU) is where the networks, their codes, the images and the masks
    live; random numbers are drawn on the CPU as always and moved, and the result is NumPy on the CPU."""
    if task not in TASKS:
        raise UsageError(f"double-dip does not do task '{task}' (valid: segment, transparency, watermark, dehaze)")
    c, h, w = image.shape
    if min(h, w) < 8:
        raise UsageError(f"double-dip needs an image of at least 8x8 pixels (got {w}x{h})")
    TASKS[task].check(image, hint, second)
    fit = _Fit(image, params, hint, seed, second, _device(device))
    piece = TASKS[task](fit)
    budget = budget or Budget()
    iters = _steps(task, params, budget)
    piece.prepare()
    layers = _Layers(params, fit.x.shape[1], (h, w), mask=piece.mask_net, seed=seed, device=fit.device)
    done = piece.setup(layers)
    if done is not None:
        return done
    fit.warm = piece.warmup(iters)
    return _coupled_fit(piece, layers, iters, budget)


def _coupled_fit(piece: _Task, layers: "_Layers", iters: int, budget: Budget) -> Decomposed:
    """Fit ``layers`` (and the task's extra parameters) by :func:`restorekit.fit.run_loop`; the kept
    outputs are those of the reported step with the lowest loss after the warm-up."""
    import torch

    opt = torch.optim.Adam(layers.parameters() + piece.extra, lr=piece.fit.params.lr)
    history: dict[str, list] = {"iteration": [], "loss": []}
    kept: dict[str, Any] = {"best": None, "loss": math.inf}
    now: dict[str, Any] = {}

    def forward(it: int):
        opt.zero_grad(set_to_none=True)
        out = now["out"] = piece.compose(layers())
        loss = now["loss"] = piece.loss(it, out)
        return loss

    def report(it: int) -> None:
        value = float(now["loss"].detach())
        history["iteration"].append(it)
        history["loss"].append(value)
        budget.report(it, iters, value)
        if it > piece.fit.warm and value < kept["loss"]:
            kept["loss"] = value
            kept["best"] = {k: (v.detach().clone() if isinstance(v, torch.Tensor) else v)
                            for k, v in now["out"].items() if k != "fit"}

    ended = run_loop(forward, iters, update=lambda it: opt.step(),
                     reporting=every(max(1, min(25, iters // 20 or 1)), iters), report=report,
                     out_of_time=lambda it: budget.out_of_time())
    it, best = ended.iteration, kept["best"]
    stopped = "done" if ended.reason == "iterations" else ended.reason
    if best is None:  # stopped before the first report after the warm-up: the current outputs
        with torch.no_grad():
            out = piece.compose(layers(jitter=False))
        best = {k: v for k, v in out.items() if k != "fit"}
    if stopped != "done":
        piece.fit.notes.append(f"stopped after {it} of {iters} iterations ({stopped}); the best result so far is kept")
    piece.finish(best, stopped)
    return piece.result(best, history, it, stopped)


def _snap(image: np.ndarray, mask: np.ndarray, params: Any, hint: Hint | None, notes: list[str]) -> np.ndarray | None:
    """The mask (``(H, W)``, thresholded at 0.5) with its boundary moved onto the image's edges within
    ``params.snap`` of the shorter side (:func:`restorekit.segment.regions.snap_boundary`); None when
    ``snap`` is 0 or under a pixel."""
    from .regions import snap_boundary

    h, w = mask.shape
    band = int(round(getattr(params, "snap", 0.0) * min(h, w)))
    if band < 1:
        return None
    notes.append(f"boundary moved onto the image's edges within {band} pixels (random walker)")
    return snap_boundary(image, mask >= 0.5, band, seeds=None if hint is None else hint.seeds(h, w))


def segment_restarts(image: np.ndarray, params: Any, *, hint: Hint | None = None, seed: int = 0,
                     budget: Budget | None = None, device: Any = None) -> Decomposed:
    """``params.restarts`` segmentations by :func:`double_dip` from seeds ``seed, seed + 1, ...``, their
    masks averaged (a pixel is the object where most of them say so), then the boundary snap; the layers
    are those of the restart that agrees best with the average.  A DIP fit's result depends on its seed
    (the start's k-means, the networks' weights, the input codes): on the tuning split at 96x96 one seed
    gives a mean IoU between 0.63 and 0.69, the average of three 0.688.  The time limit and Ctrl-C end the
    restarts: the finished ones are averaged (the first one's result so far if none finished)."""
    budget = budget or Budget()
    n = int(params.restarts)
    iters = _steps("segment", params, budget)
    one = params.model_copy(update={"snap": 0.0, "restarts": 1})
    runs: list[Decomposed] = []
    stopped = "done"
    for i in range(n):
        def progress(it, total, loss, _offset=i * iters):
            budget.report(_offset + it, n * iters, loss)

        sub = Budget(iterations=iters, time_limit=budget.time_limit, progress=progress, started=budget.started)
        out = double_dip(image, "segment", one, hint=hint, seed=seed + i, budget=sub, device=device)
        if out.stopped != "done":
            stopped = out.stopped
            if not runs:
                runs.append(out)
            break
        runs.append(out)
    masks = np.stack([np.asarray(r.mask, np.float32) for r in runs])
    mean = masks.mean(0)
    agree = [float(((m >= 0.5) == (mean >= 0.5)).mean()) for m in masks]
    pick = runs[int(np.argmax(agree))]
    notes = [n_ for n_ in runs[0].notes if not n_.startswith("stopped after")]
    notes.append(f"{len(runs)} of {n} restarts (seeds {seed}-{seed + len(runs) - 1}) averaged"
                 + ("" if stopped == "done" else f"; {stopped}: the finished ones are kept"))
    mask = mean
    if stopped != "interrupted":
        snapped = _snap(image, mean, params, hint, notes)
        if snapped is not None:
            mask = snapped.astype(np.float32)
    history: dict[str, list] = {"iteration": [], "loss": []}
    for i, r in enumerate(runs):
        history["iteration"] += [i * iters + v for v in r.history.get("iteration", [])]
        history["loss"] += list(r.history.get("loss", []))
    return Decomposed(mask=mask, labels=(mask >= 0.5).astype(np.int64), layers=dict(pick.layers),
                      iterations=sum(int(r.iterations) for r in runs), history=history, stopped=stopped, notes=notes)


def _device(device: Any):
    """``device`` as a torch device; None and the CPU as None, so that a CPU fit moves nothing."""
    if device is None:
        return None
    import torch

    dev = torch.device(device)
    return None if dev.type == "cpu" else dev


def _on(t, device: Any):
    """A tensor or module moved to ``device`` (None: left where it is, on the CPU)."""
    return t if device is None else t.to(device)


def _np(t) -> np.ndarray:
    return np.clip(t.detach().cpu().numpy()[0].astype(np.float32), 0, 1)
