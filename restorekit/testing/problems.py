"""Small synthetic inputs for tests: a clean test image and the problem a solver prior sees."""

from __future__ import annotations

import numpy as np

from ..components import Degradation, Problem


def make_test_image(shape: tuple[int, int, int] = (3, 32, 32), seed: int = 0) -> np.ndarray:
    """A clean ``(C, H, W)`` float32 image in [0, 1]: flat regions, an edge, a ramp and a disc.

    Piecewise-constant plus a gradient, the kind of image every classical
    denoiser and inpainter should improve on.  ``seed`` shifts the colours.
    """
    c, h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    yy /= max(h - 1, 1)
    xx /= max(w - 1, 1)
    disc = ((yy - 0.35) ** 2 + (xx - 0.3) ** 2) < 0.04
    rng = np.random.default_rng(seed)
    out = []
    for i in range(c):
        a, b = rng.uniform(0.15, 0.35), rng.uniform(0.3, 0.45)
        ch = a + b * (xx > 0.55) + 0.25 * yy + (0.2 - 0.1 * i) * disc
        out.append(ch)
    return np.clip(np.stack(out), 0.0, 1.0).astype(np.float32)


def make_problem(
    task: str = "denoise",
    *,
    image: np.ndarray | None = None,
    shape: tuple[int, int, int] = (3, 32, 32),
    seed: int = 0,
    sigma: float = 25.0,
    fraction: float = 0.5,
    factor: int = 2,
) -> Problem:
    """The :class:`~restorekit.Problem` a solver prior sees for a small synthetic task.

    ``task`` is ``denoise`` (``gaussian:sigma``), ``inpaint``
    (``bernoulli:fraction``), ``inpaint-noisy`` (both) or ``sr``
    (``downsample:factor``); the clean ``image`` (``(C, H, W)`` in [0, 1];
    default :func:`make_test_image` of ``shape``) is degraded with ``seed``
    the way ``restorekit run`` does in benchmark mode.
    """
    import torch

    from ..builtins.degradations import Bernoulli, Downsample, Gaussian
    from ..run.problem import ForwardModel, build_problem

    stages: list[Degradation]
    if task == "denoise":
        stages = [Gaussian(sigma=sigma)]
    elif task == "inpaint":
        stages = [Bernoulli(fraction=fraction)]
    elif task == "inpaint-noisy":
        stages = [Bernoulli(fraction=fraction), Gaussian(sigma=sigma)]
    elif task == "sr":
        stages = [Downsample(factor=factor)]
    else:
        raise ValueError(f"unknown task {task!r} (valid: denoise, inpaint, inpaint-noisy, sr)")
    clean = make_test_image(shape, seed) if image is None else np.asarray(image, dtype=np.float32)
    # the real problem assembly, as restorekit run builds it (a solver's stride is 1: no canvas)
    problem = build_problem(clean, ForwardModel(stages), mode="benchmark", seed=seed, stride=1)
    problem.device = torch.device("cpu")
    problem.reference = None  # a solver never sees the ground truth
    return problem
