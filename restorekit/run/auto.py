"""``--prior auto``: the method for the task, the device and the time budget, chosen from measurements.

The default when no ``--prior`` is given.  :func:`choose` looks at the
degradations (what the task is), the device and the registered priors, and
returns a :class:`Choice`: the concrete priors, network, precision, stopping
rule and time budget, with the reason.  The plan uses it in place of
``auto``, and the run record keeps the choice and its reason (``auto``).

The table below is what the ``cpu-256`` benchmark measured on a 2-core CPU
(docs/benchmarks.md, "cpu-256"): where a classical method that restorekit
ships beat every deep prior we could fit in the time budget, it is the
choice; elsewhere the deep image prior with a network sized for a CPU (32
channels, bfloat16 where the CPU has bfloat16 instructions), run for a time
budget instead of a fixed iteration count, keeping the observed pixels.
Change the table only with a benchmark run that supports the change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..errors import UsageError

#: the value of --prior (and --precision) that asks for this module's choice
AUTO = "auto"

#: the CPU network: the paper's skip architecture at a quarter of its width (docs/benchmarks.md, cpu-256)
CPU_NET = "skip:channels=32"
#: the fitted prior auto uses: the deep image prior, observed pixels kept where they are exact
FIT_PRIOR = "dip:keep_known=true"
#: a fit's time budget on a CPU, in seconds, for an image of BUDGET_PIXELS pixels; it grows with the
#: square root of the size, up to BUDGET_MAX_S (the issue's bar: at most 120 s per 256x256 image in all)
BUDGET_S = 50.0
BUDGET_PIXELS = 128 * 128
BUDGET_MAX_S = 100.0
#: the iteration ceiling of a time-budgeted fit (the budget ends it first)
BUDGET_ITERATIONS = 100_000

#: per task, the classical solver that beat the CPU-sized deep prior in cpu-256 (used when registered)
CLASSICAL_WINNERS = {
    "gaussian": ("bm3d", "BM3D beat the deep image prior on CPU at 256x256 within the time budget "
                 "(cpu-256: about 1.3 dB at sigma 25)"),
    "poisson": ("bm3d", "BM3D beat the deep image prior on CPU for Poisson noise (cpu-256)"),
    "periodic": ("notch", "a Fourier notch filter removes periodic stripes far better than a fitted prior, "
                 "which fits the stripes (cpu-256)"),
}

#: loop options that only a fitted prior takes: giving one asks for a fit
_FIT_OPTIONS = ("iters", "lr", "ensemble", "time_limit")


@dataclass
class Choice:
    """What ``auto`` resolved to, and why."""

    task: str
    prior: tuple[str, ...]
    net: str
    precision: str
    why: str
    stop: str | None = None  #: None: keep the settings' stop
    budgeted: bool = False  #: the fit runs for :func:`budget_seconds` (set when the image is known)
    time_limit: float | None = None  #: the budget, once known
    notes: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {"task": self.task, "prior": list(self.prior), "net": self.net, "precision": self.precision,
                "time_limit_s": self.time_limit, "why": self.why}


def is_auto(prior: Sequence[str]) -> bool:
    """Whether ``--prior`` asks for the automatic choice (``auto``, alone)."""
    names = [p.split(":", 1)[0].strip().lower() for p in prior]
    if AUTO in names and len(names) > 1:
        raise UsageError("--prior auto chooses the whole method and cannot be combined with other priors "
                         f"(got {', '.join(prior)})")
    if AUTO in names and prior[0].strip().lower() != AUTO:
        raise UsageError(f"--prior auto takes no parameters (got {prior[0]})")
    return names == [AUTO]


def task_of(degradations: Sequence[Any]) -> str:
    """The task class auto decides by: inpaint, impulse, sr, gaussian, poisson, periodic, or other."""
    names = [getattr(d, "name", "") for d in degradations]
    masks = {"bernoulli", "mask", "box", "text"}
    if len(names) == 1:
        (n,) = names
        if n in masks:
            return "inpaint"
        if n == "salt-pepper":
            return "impulse" if not _adds_noise(degradations[0]) else "other"
        if n == "downsample":
            return "sr"
        if n in ("gaussian", "poisson", "periodic"):
            return n
    if names and all(n in masks for n in names):
        return "inpaint"
    return "other"


def _adds_noise(d: Any) -> bool:
    from .plan import _adds_noise as adds

    return adds(d)


def budget_seconds(image_shape: Sequence[int] | None) -> float:
    """The CPU time budget of a fit for an image of ``image_shape`` (C, H, W)."""
    if not image_shape:
        return BUDGET_S
    pixels = int(image_shape[-1]) * int(image_shape[-2])
    return round(min(BUDGET_MAX_S, max(BUDGET_S, BUDGET_S * math.sqrt(pixels / BUDGET_PIXELS))), 1)


def choose(settings: Any, registry: Any, degradations: Sequence[Any], device: Any,
           image_shape: Sequence[int] | None = None) -> Choice:
    """The method for ``degradations`` on ``device`` (see the module docstring)."""
    from .plan import cpu_has_native_bf16

    task = task_of(degradations)
    wants_fit = any(getattr(settings, k) not in (None, 1) if k == "ensemble" else getattr(settings, k) is not None
                    for k in _FIT_OPTIONS) or settings.stop not in ("auto", None)
    net_given = settings.net not in (None, "", AUTO)
    cpu = getattr(device, "type", "cpu") == "cpu"
    winner = CLASSICAL_WINNERS.get(task)
    if winner and not wants_fit and not net_given and cpu:
        name, why = winner
        if name in registry.names("prior") and _usable(registry, name):
            return Choice(task=task, prior=(name,), net="auto", precision="fp32", why=why)
    precision = settings.precision
    if precision == AUTO:
        precision = "bf16" if cpu and cpu_has_native_bf16() else "fp32"
    net = settings.net if net_given else (CPU_NET if cpu else "skip")
    if not cpu:
        # untested here (no GPU on the project's machines): the paper's configuration
        return Choice(task=task, prior=(FIT_PRIOR,), net=net, precision=precision,
                      why="a GPU: the deep image prior with the paper's network and iterations")
    choice = Choice(task=task, prior=(FIT_PRIOR,), net=net, precision=precision,
                    why="the deep image prior with a network sized for a CPU beat the classical baselines "
                        f"for this task within the time budget (cpu-256){'' if task != 'other' else '; the task is not in the table: the deep image prior'}")
    if settings.iters is None and settings.time_limit is None:
        choice.budgeted = True
        if settings.stop == "auto" and task in ("inpaint", "impulse", "sr"):
            choice.stop = "none"  # no noise to overfit: the budget ends the fit
    if winner:
        choice.notes.append(f"auto: {winner[0]} is the choice for this task on a CPU, but "
                            + ("it is not installed (pip install ./plugins/restorekit-classic)"
                               if winner[0] not in registry.names("prior") or not _usable(registry, winner[0])
                               else "loop options or --net ask for a fit"))
    return choice


def _usable(registry: Any, name: str) -> bool:
    """Whether a solver's own dependency imports (bm3d is a separate package)."""
    if name == "bm3d":
        import importlib.util

        return importlib.util.find_spec("bm3d") is not None
    return True
