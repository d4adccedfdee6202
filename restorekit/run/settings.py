"""Stage 1: what the user asked for, typed and validated once.

:class:`RunSettings` is the single description of a run that every front
end builds: the CLI from its options, :func:`restorekit.restore` from its
keywords, the benchmarks from a protocol.  :func:`make_settings` fills
defaults (:data:`DEFAULTS`, the one place they are written), resolves a
preset (usable from Python: ``restore(preset="denoise", data=...)``) and
checks every value that does not need the components or the image.  ``None``
for a field means "not given": a preset's value, then the default, fills it.
Given an image, a run takes it as already degraded (``restore`` mode, with
the estimated real-noise model ``noise`` unless ``degrade`` says otherwise);
only the embedded image, or an explicit ``mode="benchmark"``, degrades a
clean image synthetically (``gaussian:25`` by default).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from ..errors import UsageError

#: the run's modes (see docs/usage.md, "Modes")
MODES = ("benchmark", "restore")
#: network precisions the loop supports
PRECISIONS = ("fp32", "bf16")
#: what a user may ask for: auto is bf16 where --prior auto fits on a CPU with bfloat16 instructions, else fp32
PRECISION_CHOICES = ("auto", *PRECISIONS)
#: the largest seed: numpy's and torch's generators take 0 .. 2**63 - 1 (ensemble members add to it)
MAX_SEED = 2**63 - 1
DEFAULT_IMAGE = "default.png"

#: every default, written once: the CLI's --help and restore()'s docstring show these.  Two depend on the
#: run: ``mode`` on whether an image is given (an image is taken as already degraded; the embedded image
#: is clean, the demo degrades it) and ``degrade`` on the mode (an estimated real-noise model for a real
#: image, synthetic Gaussian noise for a benchmark): see :func:`default_mode` and :func:`default_degrade`
DEFAULTS: dict[str, Any] = {
    "degrade": {"restore": ("noise",), "benchmark": ("gaussian:25",)},
    "prior": ("auto",),
    "net": "auto",
    "metrics": ("psnr", "ssim"),
    "mode": {"image": "restore", "no image": "benchmark"},
    "seed": 0,
    "device": "auto",
    "stop": "auto",
    "ensemble": 1,
    "precision": "auto",
    "lr": 0.01,  # Adam's learning rate when a fit does not name one (the paper's)
}


def default_mode(image: Any) -> str:
    """The mode when none is given: ``restore`` for a given image (it is the observation: a real photo is
    not made worse by synthetic noise), ``benchmark`` for the embedded image (``None``: the clean demo)."""
    return DEFAULTS["mode"]["no image" if image is None else "image"]


def default_degrade(mode: str) -> tuple[str, ...]:
    """The degradation when none is given, for ``mode``: ``noise`` (estimated from the image) in restore
    mode, ``gaussian:25`` (synthesised) in benchmark mode."""
    return DEFAULTS["degrade"][mode]


def describe_default(key: str) -> str:
    """A default that depends on the run, in words (for --help): ``mode`` or ``degrade``."""
    if key == "mode":
        return f"{DEFAULTS['mode']['image']} with an image, {DEFAULTS['mode']['no image']} without one"
    if key == "degrade":
        return "; ".join(f"{', '.join(v)} in {m} mode" for m, v in DEFAULTS["degrade"].items())
    raise KeyError(key)


def default_image_path() -> Path:
    """The embedded default image (a 128x128 crop of the NASA astronaut photo)."""
    return Path(str(resources.files("restorekit") / "data" / DEFAULT_IMAGE))


@dataclass(frozen=True)
class RunSettings:
    """One run's settings, validated; lists are tuples, nothing is left unresolved but
    ``iters``/``lr`` (``None``: the plan picks them for the task and device)."""

    image: Any = None  #: a path, an array, a :class:`~restorekit.io.Image`, or None (the embedded image)
    #: None: :func:`default_degrade` of the mode (filled on construction)
    degrade: tuple[str, ...] = None  # type: ignore[assignment]
    prior: tuple[str, ...] = DEFAULTS["prior"]
    net: str = DEFAULTS["net"]
    metrics: tuple[str, ...] = DEFAULTS["metrics"]
    mode: str = None  # type: ignore[assignment]  #: None: :func:`default_mode` of the image (filled on construction)
    reference: Any = None
    iters: int | None = None
    lr: float | None = None
    seed: int = DEFAULTS["seed"]
    device: str = DEFAULTS["device"]
    report_every: int | None = None
    stop: str | None = DEFAULTS["stop"]
    ensemble: int = DEFAULTS["ensemble"]
    ensemble_batched: bool | None = None
    precision: str = DEFAULTS["precision"]
    time_limit: float | None = None
    preset: str | None = None
    data: Path | None = None  #: the preset's data folder, when it used one
    #: keys whose value came from the preset (for the record and the CLI's notes)
    from_preset: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        # the two defaults that depend on the run, filled here so that no RunSettings is left without them
        if self.mode is None:
            object.__setattr__(self, "mode", default_mode(self.image))
        if self.degrade is None and self.mode in MODES:  # an unknown mode is reported by the checks
            object.__setattr__(self, "degrade", default_degrade(self.mode))

    @property
    def default_image(self) -> bool:
        return self.image is None


def _as_tuple(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def check_seed(seed: Any) -> int:
    """A seed is a whole number from 0 to 2**63 - 1 (numpy and torch both take that range)."""
    import numpy as np

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= MAX_SEED:
        raise UsageError(f"seed must be a whole number from 0 to {MAX_SEED} (got {seed!r})")
    return int(seed)


def _check(s: RunSettings) -> None:
    """Every check that needs neither the components nor the image: one place for each."""
    if s.mode not in MODES:
        raise UsageError(f"unknown mode {s.mode!r} (valid: {', '.join(MODES)})")
    if s.iters is not None and (isinstance(s.iters, bool) or not isinstance(s.iters, int) or s.iters < 1):
        raise UsageError(f"iterations must be at least 1 (got {s.iters})")
    check_seed(s.seed)
    if s.lr is not None and not (isinstance(s.lr, (int, float)) and math.isfinite(s.lr) and s.lr > 0):
        raise UsageError(f"learning rate must be a positive finite number (got {s.lr})")
    if s.report_every is not None and s.report_every < 1:
        raise UsageError(f"report interval must be at least 1 (got {s.report_every})")
    if isinstance(s.ensemble, bool) or not isinstance(s.ensemble, int) or s.ensemble < 1:
        raise UsageError(f"ensemble must be a whole number >= 1 (got {s.ensemble})")
    if s.precision not in PRECISION_CHOICES:
        raise UsageError(f"unknown precision {s.precision!r} (valid: {', '.join(PRECISION_CHOICES)})")
    if s.time_limit is not None and not (s.time_limit > 0):
        raise UsageError(f"time limit must be a positive number of seconds (got {s.time_limit})")
    if s.mode == "benchmark" and s.reference is not None:
        raise UsageError("--reference is for --mode restore; in benchmark mode the input is the reference")


def make_settings(registry: Any = None, **given: Any) -> RunSettings:
    """Defaults and a preset resolved, every value checked: the run's :class:`RunSettings`.

    ``given`` holds the :class:`RunSettings` fields the caller set; ``None``
    means not given.  A ``preset`` fills what was not given (its mode
    included); then ``mode`` defaults by the image (:func:`default_mode`) and
    ``degrade`` by the mode (:func:`default_degrade`).  A solver prior
    given in place of the preset's network prior drops the preset's net,
    iterations and learning rate (they belong to the network it replaces).
    """
    unknown = set(given) - set(RunSettings.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown run setting(s): {', '.join(sorted(unknown))}")
    for key in ("degrade", "prior", "metrics"):
        if key in given:
            given[key] = _as_tuple(given[key])
    preset = given.get("preset")
    from_preset: list[str] = []
    if preset is not None:
        from ..presets import expand, get_preset

        p = expand(get_preset(preset), given.get("data"), need_image=given.get("image") is None)
        for key in ("degrade", "prior", "net", "metrics", "iters", "lr", "mode"):
            if given.get(key) is None:
                value = p[key]
                given[key] = _as_tuple(value) if key in ("degrade", "prior", "metrics") else value
                from_preset.append(key)
        if "prior" not in from_preset and registry is not None and _solves_directly(registry, given["prior"]):
            for key in ("net", "iters", "lr"):
                if key in from_preset:
                    given[key] = None
                    from_preset.remove(key)
        if given.get("image") is None and p["image"] is not None:
            given["image"] = p["image"]
    values = {k: v for k, v in given.items() if v is not None}
    if "stop" in given and given["stop"] is None:
        values["stop"] = None  # restore(stop=None): no rule, as documented
    settings = RunSettings(**values, from_preset=tuple(from_preset))
    if settings.net in ("", None):
        settings = replace(settings, net="auto")
    _check(settings)
    return settings


def _solves_directly(registry: Any, priors: Sequence[str]) -> bool:
    """Whether one of these prior specs is a direct solver (spec errors are left for the plan to report)."""
    for spec in priors:
        try:
            if registry.create("prior", spec).role == "solver":
                return True
        except Exception:  # noqa: BLE001 - reported with context by the plan
            return False
    return False


def input_paths(settings: RunSettings) -> list[Path]:
    """Every path a run reads: the image, the reference, the data folder, and every value in a component spec
    that could name a file (an output folder must not be, or hold, any of them)."""
    from ..spec import parse_spec

    paths = [Path(p) for p in (settings.image, settings.reference, settings.data)
             if isinstance(p, (str, os.PathLike))]
    for text in (*settings.degrade, *settings.prior, settings.net, *settings.metrics):
        try:
            spec = parse_spec(text)
        except Exception:  # noqa: BLE001 - the run reports spec errors itself
            continue
        values = list(spec.params.values()) + ([spec.positional] if spec.positional is not None else [])
        for v in values:
            for item in (v if isinstance(v, list) else [v]):
                if isinstance(item, str) and item.strip():
                    paths.append(Path(item))
    return paths
