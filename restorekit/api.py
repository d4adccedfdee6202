"""The Python API: :func:`restore` runs one restoration, no CLI needed.

>>> from restorekit import restore
>>> r = restore("photo.png", degrade="bernoulli:0.5", prior="dip", net="skip", iters=500)  # doctest: +SKIP
>>> r.metrics["psnr"], r.image.shape                                                      # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import math
import platform
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import __version__
from .components import Component, Generator, Metric, Prior, Problem
from .errors import ComponentFailure, RestoreError, RestoreKitError, UsageError, one_line
from .io import Image, image_from_array, read_image, to_array
from .run.problem import MODES, ForwardModel, build_problem, crop_region
from .registry import Registry
from .run.signals import hold as hold_signals

#: the paper's iteration counts per task (REFERENCE.md section 3)
PAPER_ITERATIONS = {"denoise": 3000, "inpaint": 5000, "sr": 2000, "restore": 5000}
#: on a CPU the default is capped to this; pass iters= for more
CPU_ITERATION_CAP = 600
#: iterations for the identity parameterisation (cheap steps)
IDENTITY_ITERATIONS = 2000
DEFAULT_IMAGE = "default.png"
#: the largest seed: numpy's and torch's generators take 0 .. 2**63 - 1 (and ensemble members add to it)
MAX_SEED = 2**63 - 1
#: the stopping rule used when no iteration count is given; with the EMA the
#: output is the average where the fit stops (see docs/benchmarks.md)
AUTO_STOP = "eswmv:patience=500"


@dataclass
class Result:
    """What :func:`restore` returns."""

    image: np.ndarray  #: the restored image, same layout and dtype as the input
    restored: np.ndarray  #: (C, H, W) float32 in [0, 1]
    degraded: np.ndarray  #: (C, h, w) float32: the observation
    reference: np.ndarray | None  #: (C, H, W) clean image when known
    mask: np.ndarray | None  #: (h, w) bool, True = observed pixel (masking degradations)
    metrics: dict[str, float]  #: final metrics of the restored image
    baseline: dict[str, float]  #: the same metrics for the degraded input (upsampled for SR)
    record: dict[str, Any]  #: everything run.json holds
    source: Image  #: the input as read
    interrupted: bool = False
    history: dict[str, list] = field(default_factory=dict)


def default_image_path() -> Path:
    """The embedded default image (a 128x128 crop of the NASA astronaut photo)."""
    return Path(str(resources.files("restorekit") / "data" / DEFAULT_IMAGE))


def pick_device(name: str = "auto"):
    """``auto`` picks CUDA, then Apple MPS, then the CPU."""
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} asked for, but CUDA is not available here; use --device cpu or auto")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UsageError(f"device {name!r} does not exist (this machine has {torch.cuda.device_count()} GPU(s))")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError("device 'mps' asked for, but Apple MPS is not available here; use --device cpu or auto")
    return dev


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _describe(component: Component, registry: Registry) -> dict[str, Any]:
    entry = registry.provider(component)
    return {
        "name": component.name,
        "spec": component.spec,
        "params": component.params.model_dump(),
        "plugin": entry.plugin,
        "plugin_version": entry.version,
    }


def resolve_components(
    registry: Registry,
    degrade: Sequence[str],
    prior: Sequence[str],
    net: str | None,
    metrics: Sequence[str],
):
    """Build the components and check that they make sense together."""
    degradations = [registry.create("degradation", s) for s in degrade]
    priors: list[Prior] = [registry.create("prior", s) for s in prior]  # type: ignore[misc]
    if not priors:
        raise UsageError("no prior given; use --prior dip (or none, tv, ...: see restorekit list priors)")
    roles = [p.role for p in priors]
    names = ", ".join(p.name for p in priors)
    if roles.count("network") > 1:
        raise UsageError(f"only one network prior per run (got {names})")
    if "solver" in roles and len(priors) > 1:
        raise UsageError(f"prior '{priors[roles.index('solver')].name}' solves directly and cannot be combined ({names})")
    if "none" in roles and len(priors) > 1:
        raise UsageError(f"prior 'none' means no prior; drop it to combine {names}")
    network = next((p for p in priors if p.role == "network"), None)
    penalties = [p for p in priors if p.role == "penalty"]
    solver = next((p for p in priors if p.role == "solver"), None)
    generator: Generator | None = None
    net = (net or "auto").strip()
    if solver is not None:
        if net not in ("auto", ""):
            raise UsageError(f"prior '{solver.name}' solves directly and uses no --net (got --net {net})")
    else:
        if net in ("auto", ""):
            net = "skip" if network is not None else "identity"
        generator = registry.create("generator", net)  # type: ignore[assignment]
        if network is not None and not generator.needs_input:
            raise UsageError(
                f"--prior {network.name} needs a network, but --net {generator.name} has none; "
                "use --net skip (see restorekit list generators)"
            )
        if network is None and generator.needs_input:
            raise UsageError(
                f"--net {generator.name} is a network, and an untrained network is itself a prior: "
                f"add --prior dip, or use --net identity with --prior {names}"
            )
    metric_objs: list[Metric] = [registry.create("metric", s) for s in metrics]  # type: ignore[misc]
    labels = [m.label for m in metric_objs]
    if len(set(labels)) != len(labels):
        raise UsageError(f"metric given twice: {', '.join(labels)}")
    return degradations, network, penalties, solver, generator, metric_objs


def is_noise_free(degradations: Sequence[Any]) -> bool:
    """Whether every stage of the forward model is ``noise_free`` (the observation is exactly ``A(x)``)."""
    return bool(degradations) and all(getattr(d, "noise_free", False) for d in degradations)


def auto_stop_spec(degradations: Sequence[Any]) -> str | None:
    """The rule ``--stop auto`` uses when no iteration count is given: ES-WMV, or none for a noise-free model.

    Without noise there is nothing to overfit, and the rule only stops a fit
    that is still improving (docs/benchmarks.md, ``cpu-noise-free``).
    """
    return None if is_noise_free(degradations) else AUTO_STOP


def _check_solver_options(name: str, *, iters, lr, stop, ensemble, precision, time_limit) -> None:
    """A prior that solves directly has no fitting loop: options of the loop are a usage error, not ignored."""
    given = [
        flag
        for flag, used in (
            ("--iters", iters is not None),
            ("--lr", lr is not None),
            ("--stop", stop not in ("auto", "none", None)),
            ("--ensemble", ensemble != 1),
            ("--precision", precision != "fp32"),
            ("--time-limit", time_limit is not None),
        )
        if used
    ]
    if given:
        raise UsageError(
            f"prior '{name}' solves directly, without a fitting loop: drop {', '.join(given)} "
            "(they apply to fitted priors such as dip, tv and none)"
        )


def _load_input(image: Any) -> Image:
    if image is None:
        return read_image(default_image_path())
    if isinstance(image, Image):
        return image
    if isinstance(image, (str, Path)):
        return read_image(image)
    if isinstance(image, np.ndarray):
        return image_from_array(image)
    raise UsageError(f"image must be a path or a NumPy array (got {type(image).__name__})")


def _task(forward: ForwardModel) -> str:
    if forward.scale > 1:
        return "sr"
    if forward.mask is not None:
        return "inpaint"
    return "denoise"


def _init_estimate(obs, mask, scale):
    """Masked pixels filled with the channel mean, then upsampled (bicubic)."""
    import torch
    import torch.nn.functional as F

    x = obs.clone()
    if mask is not None:
        known = mask.expand_as(x) > 0
        means = (x * known).sum(dim=(2, 3), keepdim=True) / known.sum(dim=(2, 3), keepdim=True).clamp_min(1)
        x = torch.where(known, x, means.expand_as(x))
    if scale > 1:
        x = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
    return x.clamp(0, 1)


def _score(metrics: Sequence[Metric], ref: np.ndarray, test: np.ndarray, missing: np.ndarray | None,
           registry: Registry, notes: list[str], failed: set[str]) -> dict[str, float]:
    """Each metric of ``test`` against ``ref``; a metric that raises is left out with a note (once)."""
    a = np.moveaxis(ref, 0, -1).astype(np.float64)
    b = np.moveaxis(test, 0, -1).astype(np.float64)
    out: dict[str, float] = {}
    passes = [("", None)] + ([("_missing", missing)] if missing is not None and missing.any() else [])
    for suffix, where in passes:
        for m in metrics:
            if m.label in failed:
                continue
            try:
                kwargs = {} if where is None else {"mask": where}
                out[f"{m.label}{suffix}"] = float(m.compute(a, b, data_range=1.0, **kwargs))
            except (KeyboardInterrupt, RestoreKitError):
                raise
            except (Exception, SystemExit) as exc:
                failed.add(m.label)
                plugin = registry.provider(m).plugin
                notes.append(f"metric '{m.label}' from plugin '{plugin}' failed and is left out: {one_line(exc)}")
    return out


def check_seed(seed: Any) -> int:
    """A seed is a whole number from 0 to 2**63 - 1 (numpy and torch both take that range)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= MAX_SEED:
        raise UsageError(f"seed must be a whole number from 0 to {MAX_SEED} (got {seed!r})")
    return int(seed)


def _environment(device) -> dict[str, Any]:
    import torch

    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
    return env


def restore(
    image: Any = None,
    *,
    degrade: str | Sequence[str] = "gaussian:25",
    prior: str | Sequence[str] = "dip",
    net: str | None = None,
    metrics: str | Sequence[str] = ("psnr", "ssim"),
    mode: str = "benchmark",
    reference: Any = None,
    iters: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    device: str = "auto",
    report_every: int | None = None,
    stop: str | None = "auto",
    ensemble: int = 1,
    ensemble_batched: bool | None = None,
    precision: str = "fp32",
    time_limit: float | None = None,
    callback: Callable[[Any], Any] | None = None,
    registry: Registry | None = None,
    log: Callable[[str], Any] | None = None,
) -> Result:
    """Restore one image.

    ``image`` is a path, an array (HxW, HxWxC; uint8, uint16 or float in
    [0, 1]) or ``None`` for the embedded default image.  In ``benchmark``
    mode it is the clean image: ``degrade`` is applied to it with ``seed``
    and the metrics compare the result with it.  In ``restore`` mode it is
    already degraded: ``degrade`` only describes the forward model, and
    metrics are computed only against ``reference`` if given.

    ``stop`` is a ground-truth-free stopping rule (``eswmv``, ``esemv``,
    ``none``); ``auto`` uses ES-WMV when ``iters`` is not given (the default
    iteration count is then a cap) and the forward model adds noise: a
    ``noise_free`` one (pixel loss, downsampling) has no noise to overfit,
    and runs the default count.  ``ensemble`` averages that many
    independent fits (different network seeds, same observation); they are
    fitted together as one batched problem (``torch.func``) when
    ``ensemble_batched`` is true, or by default on a GPU, else one after the
    other.

    ``precision`` ``bf16`` runs the network in bfloat16 autocast: faster
    where the hardware has bfloat16 arithmetic (recent x86 CPUs with
    AVX512-BF16 or AMX, NVIDIA Ampere and later), slower where it is
    emulated.  ``time_limit`` (seconds of fitting) ends the fit early, with
    the output it has then (the average, if one is kept); a sequential
    ensemble gives each member an equal share.
    """
    t0 = time.perf_counter()
    if registry is None:
        from .plugins import get_registry

        registry = get_registry()
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r} (valid: {', '.join(MODES)})")
    if iters is not None and iters < 1:
        raise UsageError(f"iterations must be at least 1 (got {iters})")
    check_seed(seed)
    if lr is not None and not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise UsageError(f"learning rate must be a positive finite number (got {lr})")
    if report_every is not None and report_every < 1:
        raise UsageError(f"report interval must be at least 1 (got {report_every})")
    if not isinstance(ensemble, int) or ensemble < 1:
        raise UsageError(f"ensemble must be a whole number >= 1 (got {ensemble})")
    from .run.engine import PRECISIONS

    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r} (valid: {', '.join(PRECISIONS)})")
    if time_limit is not None and not (time_limit > 0):
        raise UsageError(f"time limit must be a positive number of seconds (got {time_limit})")
    from .stopping import make_stopping_rule

    stop_rule = make_stopping_rule(None if stop == "auto" else stop)
    degradations, network, penalties, solver, generator, metric_objs = resolve_components(
        registry, _as_list(degrade), _as_list(prior), net, _as_list(metrics)
    )
    noise_free = is_noise_free(degradations)
    if stop == "auto" and iters is None:
        stop_rule = make_stopping_rule(auto_stop_spec(degradations))
    src = _load_input(image)
    ref_img = _load_input(reference) if reference is not None else None
    if mode == "benchmark" and ref_img is not None:
        raise UsageError("--reference is for --mode restore; in benchmark mode the input is the reference")
    if ref_img is not None and ref_img.data.shape[0] != src.data.shape[0]:
        raise UsageError(
            f"reference has {ref_img.data.shape[0]} channel(s) but the image has {src.data.shape[0]}"
        )
    if solver is not None:
        _check_solver_options(solver.name, iters=iters, lr=lr, stop=stop, ensemble=ensemble,
                              precision=precision, time_limit=time_limit)
    dev = pick_device(device)
    _check_precision(precision, dev)

    import torch

    forward = ForwardModel(degradations)
    stride = generator.stride() if generator is not None else 1
    try:
        prob = build_problem(
            src.data, forward, mode=mode, seed=seed, stride=stride,
            reference=None if ref_img is None else ref_img.data,
        )
    except ComponentFailure as exc:
        raise exc.with_plugin(registry.provider(exc.component).plugin) from exc.cause
    task = _task(forward)
    if network is not None and network.loop_options().sure:
        _check_sure(network, task, forward, precision)
    obs_t = torch.from_numpy(prob.observation)[None]
    mask_t = forward.mask_tensor()
    init = _init_estimate(obs_t, mask_t, prob.scale)
    notes: list[str] = list(getattr(src, "notes", []))
    for d in degradations:  # what a stage noticed while preparing (a thresholded mask, ...)
        notes.extend(getattr(d, "notes", None) or [])
    if solver is not None:
        iterations = 0
        lr_used = None
    else:
        if iters is None:
            if generator.needs_input:
                iterations = PAPER_ITERATIONS[task]
                if dev.type == "cpu" and iterations > CPU_ITERATION_CAP:
                    notes.append(
                        f"CPU: {CPU_ITERATION_CAP} iterations by default (the paper runs {iterations} "
                        "on a GPU); pass --iters to change"
                    )
                    iterations = CPU_ITERATION_CAP
            else:
                iterations = IDENTITY_ITERATIONS
            if stop == "auto" and network is not None and noise_free:
                notes.append(
                    f"no noise in the forward model: --stop auto runs all {iterations} iterations "
                    "(there is no noise to overfit); --stop eswmv stops early anyway"
                )
        else:
            iterations = int(iters)
        lr_used = 0.01 if lr is None else float(lr)
        if network is not None and dev.type == "cpu" and precision == "fp32" and cpu_has_native_bf16():
            notes.append(
                "this CPU has bfloat16 instructions: --precision bf16 is likely faster (a step in 0.65-0.70 "
                "of the float32 time on a 2-core AMD EPYC, PSNR within about 0.2 dB; "
                "benchmarks/step_time.py times yours)"
            )
    rep = report_every or max(1, min(50, max(iterations, 1) // 100 or 1))
    logged = len(notes)
    if log is not None:
        for n in notes:
            log(n)
        c_, h_, w_ = prob.image_shape
        what = f"solving with {solver.name}" if solver is not None else (
            f"fitting {iterations} iterations" + (f" x {ensemble} runs" if ensemble > 1 else "")
        )
        log(f"{what} on {dev} ({task}, {w_}x{h_} after padding)")
    ref_t = torch.from_numpy(prob.reference)[None] if prob.reference is not None else None
    fit_res = None
    members: list[dict[str, Any]] = []
    fit_start = time.perf_counter()
    if solver is not None:
        problem = Problem(
            observation=obs_t.to(dev), forward=forward, mask=None if mask_t is None else mask_t.to(dev),
            image_shape=prob.image_shape, init=init.to(dev), degradations=degradations,
            sigma=forward.noise_sigma(), seed=seed, device=dev,
        )
        try:
            out = solver.solve(problem)
        except (RestoreKitError, KeyboardInterrupt):
            raise
        except (Exception, SystemExit) as exc:
            raise ComponentFailure(solver, "solve", exc).with_plugin(registry.provider(solver).plugin) from exc
        out_t = torch.as_tensor(out).detach().float().cpu().clamp(0, 1)
        if out_t.ndim == 3:
            out_t = out_t[None]
        if tuple(out_t.shape[1:]) != tuple(prob.image_shape):
            raise RestoreError(
                f"prior '{solver.name}' returned shape {tuple(out_t.shape[1:])}, expected {prob.image_shape}"
            )
        output = out_t
        interrupted = False
        iteration = 0
    else:
        batched = ensemble > 1 and (ensemble_batched if ensemble_batched is not None else dev.type != "cpu")
        try:
            fit_res, members = _fit_members(
                ensemble=ensemble, batched=batched, generator=generator, network=network, penalties=penalties,
                forward=forward, obs_t=obs_t, mask_t=mask_t, init=init, iterations=iterations,
                lr=lr_used, seed=seed, dev=dev, ref_t=ref_t, crop=prob.crop, report_every=rep,
                callback=callback, precision=precision, time_limit=time_limit, noise_sigma=forward.noise_sigma(),
                # the automatic rule is for network priors; an explicit one applies to any fit
                stop_rule=stop_rule if (network is not None or stop != "auto") else None,
            )
        except ComponentFailure as exc:
            raise exc.with_plugin(registry.provider(exc.component).plugin) from exc.cause
        output = fit_res.output
        interrupted = fit_res.interrupted
        iteration = fit_res.iteration
    fit_seconds = time.perf_counter() - fit_start
    # a result exists: inside the CLI's run, Ctrl-C and SIGTERM now wait until it is written
    hold_signals()
    restored = crop_region(output[0].numpy(), prob.crop).astype(np.float32)
    reference_np = None if prob.reference is None else crop_region(prob.reference, prob.crop)
    missing = None
    mask_obs = None
    if forward.mask is not None:
        mask_obs = crop_region(forward.mask, prob.obs_crop)
        if prob.scale == 1:
            missing = ~mask_obs
    metric_values: dict[str, float] = {}
    baseline: dict[str, float] = {}
    if reference_np is not None:
        failed: set[str] = set()
        metric_values = _score(metric_objs, reference_np, restored, missing, registry, notes, failed)
        base_img = prob.degraded if prob.scale == 1 else crop_region(init[0].numpy(), prob.crop)
        baseline = _score(metric_objs, reference_np, base_img, missing, registry, notes, failed)
        baseline = {k: v for k, v in baseline.items() if k in metric_values}
    if log is not None:
        for n in notes[logged:]:
            log(n)
    alpha = src.alpha
    if alpha is not None and mode == "restore" and prob.scale > 1:
        from PIL import Image as PILImage

        a8 = PILImage.fromarray(alpha.astype(np.float32), mode="F")
        alpha = np.asarray(a8.resize((restored.shape[2], restored.shape[1]), PILImage.BICUBIC)).clip(0, 1)
    out_image = to_array(restored, alpha, src.dtype)
    record = {
        "restorekit": __version__,
        "status": "interrupted" if interrupted else "complete",
        "mode": mode,
        "task": task,
        "input": {
            "path": str(src.path) if src.path else None,
            "default_image": image is None,
            "width": src.data.shape[2],
            "height": src.data.shape[1],
            "channels": src.data.shape[0],
            "alpha": src.alpha is not None,
            "dtype": str(np.dtype(src.dtype)),
            "format": src.format,
            "sha256": _digest(src.path),
        },
        "reference": None if ref_img is None else {"path": str(ref_img.path) if ref_img.path else None},
        "components": {
            "degradations": [_describe(d, registry) for d in degradations],
            "priors": [
                _describe(p, registry) | {"role": p.role}
                for p in ([network] if network else []) + penalties + ([solver] if solver else [])
            ],
            "generator": None if generator is None else _describe(generator, registry),
            "metrics": [_describe(m, registry) for m in metric_objs],
        },
        "settings": {
            "iterations": iterations,
            "lr": lr_used,
            "seed": seed,
            "device": str(dev),
            "report_every": rep,
            "stop": None if stop_rule is None else stop_rule.spec,
            "ensemble": ensemble,
            "precision": precision,
            "time_limit_s": time_limit,
            "padded_shape": list(prob.image_shape),
            "known_noise_sigma": forward.noise_sigma(),
        },
        "environment": _environment(dev),
        "timings": {
            "total_s": round(time.perf_counter() - t0, 3),
            "fit_s": round(fit_seconds, 3),
            "per_iteration_s": round(fit_seconds / fit_res.iterations_run, 5) if fit_res and fit_res.iterations_run else None,
        },
        "result": {
            "iteration": iteration,
            "iterations_run": fit_res.iterations_run if fit_res else 0,
            "output": fit_res.output_kind if fit_res else "solver",
            "backtracks": fit_res.backtracks if fit_res else 0,
            "stopped_early": bool(fit_res.stopped_early) if fit_res else False,
            "stop_reason": fit_res.stop_reason if fit_res else None,
            "variance_minimum": fit_res.variance_minimum if fit_res else None,
            "members": members,
            "metrics": metric_values,
            "baseline": baseline,
            "baseline_kind": None if not baseline else ("degraded" if prob.scale == 1 else "bicubic"),
        },
        "notes": notes,
        "history": fit_res.history.as_dict() if fit_res else {},
    }
    return Result(
        image=out_image, restored=restored, degraded=prob.degraded, reference=reference_np,
        mask=mask_obs, metrics=metric_values, baseline=baseline, record=record, source=src,
        interrupted=interrupted, history=record["history"],
    )


def _check_precision(precision: str, dev: Any) -> None:
    """bf16 autocast where the device runs it: CPUs, and CUDA GPUs with bfloat16 support."""
    if precision == "fp32":
        return
    if dev.type == "cuda":
        import torch

        if not torch.cuda.is_bf16_supported():
            raise UsageError(f"--precision bf16: {dev} has no bfloat16 support; use --precision fp32")
    elif dev.type != "cpu":
        raise UsageError(f"--precision bf16 runs on CPUs and CUDA GPUs, not on {dev.type}; use --precision fp32")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bfloat16 instructions (x86 AVX512-BF16 or AMX; read from /proc/cpuinfo on Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def _check_sure(network, task: str, forward: ForwardModel, precision: str) -> None:
    """dip:sure=true fits an estimate of the error for Gaussian noise: refuse what it cannot handle."""
    if task != "denoise" or forward.noise_sigma() is None:
        raise UsageError(
            "dip:sure=true is for Gaussian denoising with a known sigma (--degrade gaussian:S alone); "
            f"this problem is {task}" + ("" if forward.noise_sigma() else " with no known noise level")
        )
    if getattr(network.params, "input", "observation") != "observation":
        raise UsageError(
            "dip:sure=true needs dip:input=observation: SURE differentiates the output with respect to the noisy image"
        )
    if precision != "fp32":
        raise UsageError("dip:sure=true needs --precision fp32: its finite difference drowns in bf16 rounding")


def _fit_members(*, ensemble, batched, generator, network, penalties, forward, obs_t, mask_t, init, iterations,
                 lr, seed, dev, ref_t, crop, report_every, callback, stop_rule, precision="fp32",
                 time_limit=None, noise_sigma=None):
    """Run ``ensemble`` independent fits and average their outputs."""
    import copy

    import torch

    from .run.engine import fit

    results = []
    members: list[dict[str, Any]] = []
    seeds = [seed if k == 0 else seed + 7919 * k for k in range(ensemble)]
    if batched:
        rule = None if stop_rule is None else type(stop_rule)(stop_rule.params)
        res = _guarded_fit(
            fit, dev, generator=generator, network_prior=network, penalties=penalties, forward=forward,
            observation=obs_t, mask=mask_t, init=init, iterations=iterations, lr=lr, seed=seed, device=dev,
            reference=ref_t, crop=crop, report_every=report_every, callback=callback, stopper=rule,
            member_seeds=seeds, precision=precision, time_limit=time_limit, noise_sigma=noise_sigma,
        )
        res.output_kind = f"mean of {ensemble} runs, batched ({res.output_kind})"
        members = [{"seed": s, "iteration": res.iteration, "iterations_run": res.iterations_run,
                    "stopped_early": res.stopped_early} for s in seeds]
        return res, members
    for k in range(ensemble):
        member_seed = seeds[k]
        cb = callback
        if callback is not None and ensemble > 1:
            def cb(p, k=k):
                q = copy.copy(p)
                q.iteration = p.iteration + k * iterations
                q.iterations = iterations * ensemble
                callback(q)
        rule = None
        if stop_rule is not None:
            rule = type(stop_rule)(stop_rule.params)
        res = _guarded_fit(
            fit, dev, generator=generator, network_prior=network, penalties=penalties, forward=forward,
            observation=obs_t, mask=mask_t, init=init, iterations=iterations, lr=lr,
            seed=member_seed, device=dev, reference=ref_t, crop=crop, report_every=report_every,
            callback=cb, stopper=rule, precision=precision,
            time_limit=None if time_limit is None else time_limit / ensemble, noise_sigma=noise_sigma,
        )
        results.append(res)
        members.append({
            "seed": member_seed, "iteration": res.iteration, "iterations_run": res.iterations_run,
            "stopped_early": res.stopped_early, "stop_reason": res.stop_reason, "backtracks": res.backtracks,
            "seconds": round(res.seconds, 3),
        })
        if res.interrupted:
            break
    if len(results) == 1:
        return results[0], members
    first = results[0]
    avg = torch.stack([r.output for r in results]).mean(0)
    merged = copy.copy(first)
    merged.output = avg
    merged.interrupted = any(r.interrupted for r in results)
    merged.iterations_run = sum(r.iterations_run for r in results)
    merged.iteration = first.iteration
    merged.seconds = sum(r.seconds for r in results)
    merged.backtracks = sum(r.backtracks for r in results)
    merged.stop_reason = "interrupted" if merged.interrupted else results[-1].stop_reason
    merged.output_kind = f"mean of {len(results)} runs ({first.output_kind})"
    return merged, members


def _guarded_fit(fit, dev, **kwargs):
    """Run the engine, turning divergence and out-of-memory into one-line errors."""
    try:
        return fit(**kwargs)
    except FloatingPointError as exc:
        raise RestoreError(str(exc)) from None
    except ValueError as exc:
        if "Expected more than 1 value per channel" in str(exc):
            _, _, h, w = kwargs["init"].shape
            raise UsageError(
                f"the image ({w}x{h} after padding) is too small for the network's deepest level; "
                "use fewer levels (e.g. --net skip:levels=3) or a larger image"
            ) from None
        raise
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            raise RestoreError(
                f"out of memory on {dev}: try a smaller image, a narrower --net, a smaller --ensemble, "
                "or --device cpu"
            ) from None
        raise


def _digest(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None
