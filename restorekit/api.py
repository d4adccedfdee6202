"""The Python API: :func:`restore` runs one restoration, no CLI needed.

>>> from restorekit import restore
>>> r = restore("noisy.png")                          # a real noisy photo, restored      # doctest: +SKIP
>>> r = restore("photo.png", mode="benchmark", degrade="bernoulli:0.5", prior="dip", net="skip", iters=500)  # doctest: +SKIP
>>> r.metrics["psnr"], r.image.shape                  # the benchmark's scores             # doctest: +SKIP

:func:`restore` builds :class:`~restorekit.run.settings.RunSettings` and runs
the pipeline (:mod:`restorekit.run`); the names below it are re-exported
from the stages for code written against earlier versions.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .registry import Registry
from .run.pipeline import Result, load_input
from .run.plan import (
    AUTO_STOP,
    CPU_ITERATION_CAP,
    IDENTITY_ITERATIONS,
    PAPER_ITERATIONS,
    auto_stop_spec,
    check_precision,
    cpu_has_native_bf16,
    is_noise_free,
    pick_device,
    resolve_components,
)
from .run.settings import MAX_SEED, check_seed, default_image_path, make_settings

__all__ = [
    "restore", "Result", "pick_device", "resolve_components", "auto_stop_spec", "is_noise_free",
    "cpu_has_native_bf16", "check_precision", "check_seed", "default_image_path", "load_input",
    "AUTO_STOP", "CPU_ITERATION_CAP", "IDENTITY_ITERATIONS", "PAPER_ITERATIONS", "MAX_SEED",
]


def restore(
    image: Any = None,
    *,
    degrade: str | Sequence[str] | None = None,
    prior: str | Sequence[str] | None = None,
    net: str | None = None,
    metrics: str | Sequence[str] | None = None,
    mode: str | None = None,
    reference: Any = None,
    iters: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    device: str = "auto",
    report_every: int | None = None,
    stop: str | None = "auto",
    ensemble: int = 1,
    ensemble_batched: bool | None = None,
    precision: str = "auto",
    time_limit: float | None = None,
    preset: str | None = None,
    data: Any = None,
    callback: Callable[[Any], Any] | None = None,
    registry: Registry | None = None,
    log: Callable[[str], Any] | None = None,
) -> Result:
    """Restore one image.

    ``image`` is a path, an array (HxW, HxWxC; uint8, uint16 or float in
    [0, 1]) or ``None`` for the embedded default image.  A path to a
    multi-page TIFF (a z-stack, a time series) is restored page by page,
    each page with these settings and ``seed`` (its own noise estimate):
    ``result.image`` is the stack, ``(N, H, W[, C])`` in the input's sample
    type, and ``result.pages`` each restored page's own :class:`Result`
    (fewer than N when interrupted; ``reference`` is then a stack of N
    pages).  An image given is
    taken as already degraded: ``mode`` defaults to ``restore``, where
    ``degrade`` only describes the forward model (default ``noise``: real
    noise of unknown level, estimated from the image; ``none``: no
    degradation), nothing is added, and the metrics are computed only
    against ``reference`` if given.  ``mode="benchmark"`` takes the image as
    clean: ``degrade`` (default ``gaussian:25``) is applied to it with
    ``seed`` and the metrics (default psnr and ssim) compare the result with
    it.  Without an image the embedded (clean) image is a benchmark.
    ``prior`` defaults to ``auto`` and ``net`` to ``auto`` (skip for dip,
    identity otherwise).  ``preset`` (with ``data``, the folder of the
    paper's images) fills whatever is not given from one of the paper's
    configurations, its mode included.

    ``stop`` is a ground-truth-free stopping rule (``eswmv``, ``esemv``,
    ``none``); ``auto`` uses ES-WMV when ``iters`` is not given (the default
    iteration count is then a cap) and the forward model adds noise: a
    ``noise_free`` one (pixel loss, downsampling) has no noise to overfit,
    and runs the default count.  ``ensemble`` averages that many
    independent fits (different network seeds, same observation); they are
    fitted together as one batched problem (``torch.func``) when
    ``ensemble_batched`` is true, or by default on a GPU, else one after the
    other.

    ``prior`` ``None`` is ``auto``: the method measured best for the task on
    this device (:mod:`restorekit.run.auto`; ``result.record.auto`` says
    what it chose and why).  ``precision`` ``auto`` is bf16 where ``auto``
    fits on a CPU with bfloat16 instructions, fp32 otherwise.

    ``precision`` ``bf16`` runs the network in bfloat16 autocast: faster
    where the hardware has bfloat16 arithmetic (recent x86 CPUs with
    AVX512-BF16 or AMX, NVIDIA Ampere and later), slower where it is
    emulated.  ``time_limit`` (seconds of fitting) ends the fit early, with
    the output it has then (the average, if one is kept); a sequential
    ensemble gives each member an equal share.
    """
    from .run.pipeline import run

    if registry is None:
        from .plugins import get_registry

        registry = get_registry()
    settings = make_settings(
        registry, image=image, degrade=degrade, prior=prior, net=net, metrics=metrics, mode=mode,
        reference=reference, iters=iters, lr=lr, seed=seed, device=device, report_every=report_every,
        stop=stop, ensemble=ensemble, ensemble_batched=ensemble_batched, precision=precision,
        time_limit=time_limit, preset=preset, data=data,
    )
    return run(settings, registry, callback=callback, log=log)
