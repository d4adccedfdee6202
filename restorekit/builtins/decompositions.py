"""Built-in decompositions: segmentation and layer separation from one image, no training data.

``double-dip`` and ``clustering`` take ``device=`` (``--device``): their networks, codes, images and masks
live there; the others are NumPy and run on the CPU (the record's notes say so when another device was asked).

* ``double-dip`` — coupled deep image priors (Gandelsman, Shocher, Irani,
  CVPR 2019): the image as ``m * y1 + (1 - m) * y2``, each of ``y1``,
  ``y2``, ``m`` a generator; segmentation, transparency separation,
  watermark removal and dehazing (:mod:`restorekit.segment.doubledip`).
* ``clustering`` — a small CNN fitted to one image with a feature-similarity
  and a spatial-continuity loss (Kanezaki 2018; Kim, Kanezaki, Tanaka 2020):
  K segments (:mod:`restorekit.segment.clustering`).
* the baselines: ``otsu``, ``chan-vese``, ``kmeans`` (on colours), ``slic``
  (superpixels merged by colour), ``random-walker`` (from a box or
  scribbles) — scikit-image and NumPy (:mod:`restorekit.segment.baselines`).
* ``texture-split`` — double-dip's starting split without the fit
  (:func:`restorekit.segment.doubledip.initial_split`): ``segment``'s
  default without a hint, measured better than the fit from it.
* ``dark-channel`` — dehazing by the dark channel prior with a guided
  filter (He, Sun, Tang 2009/2010): the classical baseline for
  ``--task dehaze`` (:mod:`restorekit.decompose.dehaze`).

A two-way split names the object by the hint (inside the box, the object
scribbles) or, without one, as the side that touches the image border less
(:func:`restorekit.segment.masks.orient`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from restorekit import Decomposed, Decomposition, Params, UsageError, hookimpl


def _split(labels, hint) -> Decomposed:
    """A label image as a Decomposed: the object's segments as the mask, labels 1 = object for two."""
    import numpy as np

    from restorekit.segment.masks import object_segments

    labels = np.asarray(labels)
    obj = object_segments(labels, hint)
    if len(np.unique(labels)) <= 2:
        labels = obj.astype(np.int64)
    return Decomposed(mask=obj.astype(np.float32), labels=labels)


class _Baseline(Decomposition):
    tasks = ("segment",)
    hints = ("box", "scribbles")


class Otsu(_Baseline):
    name = "otsu"
    summary = "Otsu's threshold of the luminance (two segments)."

    def decompose(self, image, task="segment", *, hint=None, seed=0, budget=None):
        from restorekit.segment.baselines import otsu

        return _split(otsu(image), hint)


class ChanVese(_Baseline):
    name = "chan-vese"
    summary = "Chan-Vese active contour without edges on the luminance (scikit-image)."
    iterative = True

    class Params(Params):
        iterations: int = Field(200, ge=1, le=100000, description="most level-set iterations")
        mu: float = Field(0.25, gt=0, le=10, description="weight of the contour length")

    def decompose(self, image, task="segment", *, hint=None, seed=0, budget=None):
        from restorekit.segment.baselines import chan_vese

        iters = budget.iterations if budget is not None and budget.iterations else self.params.iterations
        return _split(chan_vese(image, iterations=iters, mu=self.params.mu), hint)


class KMeansColours(_Baseline):
    name = "kmeans"
    summary = "k-means on the pixels' colours (CIELAB), positions ignored."
    primary = "k"

    class Params(Params):
        k: int = Field(2, ge=2, le=64, description="number of segments")

    def decompose(self, image, task="segment", *, hint=None, seed=0, budget=None):
        from restorekit.segment.baselines import kmeans_colours

        return _split(kmeans_colours(image, self.params.k, seed=seed), hint)


class SlicMerge(_Baseline):
    name = "slic"
    summary = "SLIC superpixels merged into k segments by k-means on their mean colours."
    primary = "k"

    class Params(Params):
        k: int = Field(2, ge=2, le=64, description="number of segments after merging")
        superpixels: int = Field(150, ge=4, le=100000, description="SLIC superpixels (about)")
        compactness: float = Field(10.0, gt=0, le=1000, description="SLIC's balance of colour and position")

    def decompose(self, image, task="segment", *, hint=None, seed=0, budget=None):
        from restorekit.segment.baselines import slic_merge

        p = self.params
        return _split(slic_merge(image, p.k, segments=p.superpixels, compactness=p.compactness, seed=seed), hint)


class RandomWalker(_Baseline):
    name = "random-walker"
    summary = "Grady's random walker from a box (outside: background, centre: object) or scribbles."
    needs_hint = True

    class Params(Params):
        beta: float = Field(130.0, gt=0, le=1e6, description="edge weight: larger follows edges more closely")
        core: float = Field(0.3, gt=0, le=1, description="with a box: the central share of it seeded as the object")

    def decompose(self, image, task="segment", *, hint=None, seed=0, budget=None):
        from restorekit.segment.baselines import random_walker

        if hint is None or (hint.box is None and hint.scribbles is None):
            raise UsageError("random-walker needs a hint: --hint box:x,y,w,h or --hint scribbles:FILE")
        h, w = image.shape[1:]
        seeds = hint.seeds(h, w)
        if hint.box is not None and not (seeds == 1).any():
            x, y, bw, bh = hint.box
            c = self.params.core
            cx, cy = x + bw / 2, y + bh / 2
            y0, y1 = int(round(cy - c * bh / 2)), int(round(cy + c * bh / 2)) + 1
            x0, x1 = int(round(cx - c * bw / 2)), int(round(cx + c * bw / 2)) + 1
            core = seeds[max(y0, 0):y1, max(x0, 0):x1]
            core[core == 0] = 1
        if not (seeds == 1).any() or not (seeds == 2).any():
            raise UsageError("random-walker needs pixels marked as the object and as the background "
                             "(scribbles of both, or a box smaller than the image)")
        return _split(random_walker(image, seeds, beta=self.params.beta), hint)


class DoubleDip(Decomposition):
    name = "double-dip"
    summary = "Coupled deep image priors: image = m*y1 + (1-m)*y2, each a generator (Double-DIP)."
    tasks = ("segment", "transparency", "watermark", "dehaze")
    hints = ("box", "scribbles")
    iterative = True

    class Params(Params):
        iters: int | None = Field(None, ge=1, le=1_000_000, description="optimisation steps; none: 300 to segment (the free fit helps early and drifts later, like any DIP), 600 for the other tasks")
        lr: float = Field(0.01, gt=0, le=1, description="Adam's learning rate")
        channels: int = Field(8, ge=2, le=256, description="width of each generator (skip net)")
        levels: int = Field(3, ge=1, le=6, description="depth of each generator (skip net)")
        net: str = Field("skip", description="the registered generator behind y1, y2 and m (restorekit list generators)")
        exclusion: float = Field(0.1, ge=0, le=100, description="weight of the exclusion loss between the layers' gradients")
        binary: float = Field(0.5, ge=0, le=100, description="weight of the regulariser pushing the mask to 0 or 1")
        hint_weight: float = Field(1.0, ge=0, le=100, description="weight of the hint's pixels on the mask")
        noise: float = Field(0.03, ge=0, le=1, description="std of the jitter added to the input codes each step")
        warmup: int = Field(150, ge=0, le=1_000_000, description="segment: steps that fit each layer to its side of the initial split, and the mask to it, before the mask is free; dehaze: steps that fit the scene and the transmission to the dark channel prior's (at most half the steps)")
        guide: bool = Field(True, description="segment: the mask network's input code holds the start and the image (not noise alone)")
        unmix: bool = Field(True, description="transparency from two mixtures: the layers are the exact linear unmixing with the weights estimated from the gradients' kurtosis (false: the coupled fit starts from it)")
        features: float = Field(0.0, ge=0, le=100, description="segment: weight of the texture statistics the layers also explain (0: pixels only)")
        restarts: int = Field(1, ge=1, le=100, description="segment: fits from seeds seed, seed+1, ...; their masks are averaged (each costs a whole fit; 3 gave +0.022 mean IoU on the tuning split with one k-means seeding, about nothing on the reported split with five)")
        snap: float = Field(0.03, ge=0, le=0.5, description="segment: the mask's boundary is moved onto the image's edges within this share of the shorter side (a random walker from the mask's interior and exterior; 0: the fitted mask as it is)")

    def requires_hint(self, task):
        return task == "watermark"

    def decompose(self, image, task="segment", *, hint=None, seed=0, budget=None, others=(), device=None):
        from restorekit.segment.doubledip import double_dip

        if len(others) > 1:
            raise UsageError("double-dip takes at most one second image (a second mixture)")
        second = others[0] if others else None
        if task == "segment" and self.params.restarts > 1:
            from restorekit.segment.doubledip import segment_restarts

            return segment_restarts(image, self.params, hint=hint, seed=seed, budget=budget, device=device)
        return double_dip(image, task, self.params, hint=hint, seed=seed, budget=budget, second=second,
                          device=device)


class Clustering(Decomposition):
    name = "clustering"
    summary = "A small CNN fitted to one image: similar features, continuous segments (Kim-Kanezaki-Tanaka)."
    tasks = ("segment",)
    hints = ("box", "scribbles")
    iterative = True
    primary = "k"

    class Params(Params):
        k: int = Field(16, ge=2, le=256, description="most segments (the fit merges them; fewer remain)")
        iters: int = Field(150, ge=1, le=1_000_000, description="optimisation steps")
        lr: float = Field(0.1, gt=0, le=10, description="SGD's learning rate (momentum 0.9)")
        channels: int = Field(32, ge=4, le=512, description="feature channels of the CNN")
        layers: int = Field(2, ge=1, le=10, description="3x3 convolution layers of the CNN")
        continuity: float = Field(3.0, ge=0, le=100, description="weight of the spatial continuity loss (larger: fewer, rounder segments)")
        min_segments: int = Field(2, ge=1, le=256, description="stop once this few segments remain")
        scribble_weight: float = Field(1.0, ge=0, le=100, description="weight of the scribbles' labels")

    def decompose(self, image, task="segment", *, hint=None, seed=0, budget=None, device=None):
        from restorekit.segment.clustering import cluster

        return cluster(image, self.params, hint=hint, seed=seed, budget=budget, device=device)


class TextureSplit(_Baseline):
    name = "texture-split"
    summary = ("Double-DIP's starting split alone: k-means of texture features refined GrabCut-like (a random "
               "walker from scribbles); no fit. segment's default without a hint (mean IoU 0.613 vs "
               "double-dip's 0.550 on the held-out cases).")

    def decompose(self, image, task="segment", *, hint=None, seed=0, budget=None):
        import numpy as np

        from restorekit.segment.doubledip import initial_split

        mask = np.asarray(initial_split(image, hint, seed=seed), dtype=np.float32)
        return Decomposed(mask=mask, labels=(mask >= 0.5).astype(np.int64))


class DarkChannel(Decomposition):
    name = "dark-channel"
    summary = "Dehazing by the dark channel prior, transmission refined by a guided filter (He-Sun-Tang)."
    tasks = ("dehaze",)

    class Params(Params):
        patch: int | None = Field(None, ge=1, le=255, description="side of the dark channel's patch; none: min(H, W) // 16 made odd, from 3 to 15 (He et al.'s 15 from 224 pixels)")
        omega: float = Field(0.95, gt=0, le=1, description="share of the haze removed (t = 1 - omega * dark(I / A)); below 1 keeps a little for depth")
        t0: float = Field(0.1, gt=0, le=1, description="floor of the transmission when recovering the scene")
        radius: int | None = Field(None, ge=1, le=10000, description="guided filter's radius; none: four times the patch")
        eps: float = Field(1e-3, gt=0, le=10, description="guided filter's regulariser (larger: smoother)")
        fraction: float = Field(0.001, gt=0, le=1, description="share of the brightest dark-channel pixels the airlight is taken from")
        airlight: Literal["brightest", "mean"] = Field("brightest", description="brightest: the candidate input pixel of the highest intensity (He et al.); mean: the candidates' mean colour")
        refine: bool = Field(True, description="refine the transmission with the guided filter (false: the coarse, patchy one)")

    def decompose(self, image, task="dehaze", *, hint=None, seed=0, budget=None):
        from restorekit.decompose.dehaze import dark_channel_dehaze

        if task != "dehaze":
            raise UsageError(f"dark-channel does not do task '{task}' (valid: dehaze)")
        p = self.params
        r = dark_channel_dehaze(image, patch=p.patch, omega=p.omega, t0=p.t0, radius=p.radius, eps=p.eps,
                                fraction=p.fraction, airlight=p.airlight, refine=p.refine)
        notes = ["airlight: " + ", ".join(f"{v:.3f}" for v in r.airlight),
                 f"dark channel over {r.patch}x{r.patch} patches; transmission "
                 + (f"refined by a guided filter of radius {r.radius}" if p.refine else "not refined")
                 + f", floored at {p.t0:g} for the scene"]
        return Decomposed(mask=r.transmission,
                          layers={"dehazed": r.dehazed, "airlight": r.airlight[:, None, None],
                                  "transmission": r.transmission[None]},
                          notes=notes)


@hookimpl
def restorekit_register_decompositions(registry):
    for cls in (DoubleDip, Clustering, Otsu, ChanVese, KMeansColours, SlicMerge, RandomWalker, TextureSplit, DarkChannel):
        registry.add(cls)
