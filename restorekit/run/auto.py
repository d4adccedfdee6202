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
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from ..errors import UsageError

#: the value of --prior (and --precision) that asks for this module's choice
AUTO = "auto"

#: the CPU network: the paper's skip architecture at a quarter of its width (docs/benchmarks.md, cpu-256)
CPU_NET = "skip:channels=32"
#: the fitted prior auto uses: the deep image prior started from the filled-in observation (biharmonic
#: inpainting of the missing pixels, the bicubic upsample), observed pixels kept where they are exact
FIT_PRIOR = "dip:keep_known=true,input=observation"
#: for one large hole (box) the fit from noise: the smooth biharmonic fill of a large hole held the
#: fit started from it near that fill (cpu-256, box: +0.10 dB per image over biharmonic from it, +0.99
#: from noise)
HOLE_PRIOR = "dip:keep_known=true"
#: a fit's time budget on a CPU, in seconds, for an image of BUDGET_PIXELS pixels; it grows with the
#: square root of the size, up to BUDGET_MAX_S (the issue's bar: at most 120 s per 256x256 image in all)
BUDGET_S = 50.0
BUDGET_PIXELS = 128 * 128
BUDGET_MAX_S = 100.0
#: the iteration ceiling of a time-budgeted fit (the budget ends it first)
BUDGET_ITERATIONS = 100_000

#: per task, the methods that beat the CPU-sized deep prior in cpu-256, best first: (priors, net, why).
#: The first whose priors are all registered is the choice (several priors that solve directly are
#: combined: weighted by SURE for Gaussian noise, else averaged)
CLASSICAL_WINNERS: dict[str, list[tuple[tuple[str, ...], str, str]]] = {
    "gaussian": [
        (("bm3d", "learned"), "auto", "BM3D and the shipped learned denoiser, weighted by SURE, beat BM3D alone, "
         "and BM3D beat every deep prior fitted within the CPU budget (cpu-256)"),
        (("learned",), "auto", "the shipped learned denoiser beat every deep prior fitted within the CPU budget "
         "(cpu-256; with restorekit-classic installed, BM3D joins it)"),
    ],
    "noise": [
        (("bm3d",), "auto", "real noise of unknown level: BM3D told the estimated noise model (level per "
         "intensity, spatial and cross-channel correlation), averaged with BM3D told its white-noise equivalent, "
         "beat BM3D told the true RMS by 1.9 dB on real camera noise (benchmarks/real.py, cc15)"),
        (("learned",), "auto", "real noise of unknown level: the shipped learned denoiser at the estimated "
         "noise's white-noise equivalent (with restorekit-classic installed, BM3D for correlated noise is the "
         "choice)"),
    ],
    "poisson": [
        (("learned",), "auto", "the shipped learned denoiser on the Anscombe transform beat BM3D, which beat "
         "every deep prior fitted within the CPU budget (cpu-256)"),
    ],
    "periodic": [
        (("notch",), "auto", "a Fourier notch filter removes periodic stripes far better than a fitted prior, "
         "which fits the stripes (cpu-256)"),
    ],
    "sr": [
        (("tv:0.01",), "identity", "total variation on the pixels beat the deep image prior for 4x "
         "super-resolution on 2 of 3 images within the CPU budget (cpu-256)"),
    ],
}
#: why the fit, per task
FIT_WHY = {
    "inpaint": "the deep image prior, started from biharmonic inpainting and sized for a CPU, beat biharmonic "
               "and TV inpainting within the time budget (cpu-256)",
    "hole": "the deep image prior from noise, sized for a CPU, beat biharmonic and TV inpainting of a large hole "
            "within the time budget (cpu-256; started from the biharmonic fill it stayed near that fill)",
    "impulse": "the detected impulses are missing pixels; the deep image prior started from their biharmonic "
               "fill beat the median filter and biharmonic inpainting (cpu-256)",
    "other": "the task is not in auto's table: the deep image prior, sized for a CPU",
}
for _task in ("gaussian", "poisson", "periodic", "sr", "noise"):
    FIT_WHY[_task] = "loop options or --net ask for a fit: the deep image prior, sized for a CPU"

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
    """The task class auto decides by: inpaint, hole (box), impulse, sr, gaussian, poisson, periodic, noise (real,
    estimated), or other."""
    from .plan import is_noise_free

    names = [getattr(d, "name", "") for d in degradations]
    masks = {"bernoulli", "mask", "box", "text"}
    if len(names) == 1:
        (n,) = names
        if n == "box":
            return "hole"
        if n in masks:
            return "inpaint"
        if n == "salt-pepper":
            return "impulse" if is_noise_free(degradations) else "other"  # detected impulses: a mask
        if n == "downsample":
            return "sr"
        if n in ("gaussian", "poisson", "periodic", "noise"):
            return n
    if names and all(n in masks for n in names):
        return "inpaint"
    return "other"


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
    winners = CLASSICAL_WINNERS.get(task, [])
    if winners and not wants_fit and not net_given and cpu:
        for rank, (specs, net, why) in enumerate(winners):
            if all(_available(registry, spec) for spec in specs):
                choice = Choice(task=task, prior=specs, net=net, precision="fp32", why=why)
                if rank:
                    missing = [spec for spec in winners[0][0] if not _available(registry, spec)]
                    choice.notes.append(f"auto: {' + '.join(winners[0][0])} would be the choice, but "
                                        f"{', '.join(missing)} is not installed (pip install ./plugins/restorekit-classic)")
                return choice
    precision = settings.precision
    if precision == AUTO:
        precision = "bf16" if cpu and cpu_has_native_bf16() else "fp32"
    net = settings.net if net_given else (CPU_NET if cpu else "skip")
    if not cpu:
        # untested here (no GPU on the project's machines): the paper's configuration
        return Choice(task=task, prior=(FIT_PRIOR,), net=net, precision=precision,
                      why="a GPU: the deep image prior with the paper's network and iterations")
    choice = Choice(task=task, prior=(HOLE_PRIOR if task == "hole" else FIT_PRIOR,), net=net, precision=precision,
                    why=FIT_WHY.get(task, FIT_WHY["other"]))
    if settings.iters is None and settings.time_limit is None:
        choice.budgeted = True
    if winners and cpu:
        first = winners[0][0]
        missing = [spec for spec in first if not _available(registry, spec)]
        choice.notes.append(f"auto: {' + '.join(first)} is the choice for this task on a CPU, but "
                            + ("loop options or --net ask for a fit" if wants_fit or net_given else
                               f"{', '.join(missing)} is not installed (pip install ./plugins/restorekit-classic)"))
    return choice


def fit_image(plan: Any, registry: Any, image_shape: Sequence[int]) -> None:
    """Shrink auto's CPU network for a small image: the skip net's deepest level must keep at least 2x2
    pixels (levels = log2 of the shorter side, minus 1, at most the default 5)."""
    choice = plan.auto
    if choice is None or choice.net != CPU_NET or plan.generator is None:
        return
    side = min(int(image_shape[-1]), int(image_shape[-2]))
    levels = max(1, min(5, int(math.log2(max(side, 2))) - 1))
    if levels < 5:
        choice.net = f"{CPU_NET},levels={levels}"
        plan.generator = registry.create("generator", choice.net)
        plan.settings = replace(plan.settings, net=choice.net)


#: on a colour image with Gaussian noise, the shipped model also denoises the image in these colour spaces
#: (besides the opponent one), each a solver of its own in the SURE-weighted combination: what one colour space
#: misses another keeps.  21 colour crops at sigma 25, median gain over CBM3D: +0.13 -> +0.22 dB through run
#: (cpu256 g25c-wide), +0.14 -> +0.26 in benchmarks/colour_levers.py, with the gray model; with the colour
#: model and SURE judged away from black and white, +0.51 (docs/benchmarks.md)
COLOUR_SOLVERS = ("learned:colour=pca", "learned:colour=rgb")


def fit_colour(plan: Any, registry: Any, image_shape: Sequence[int]) -> None:
    """On a colour image where auto combines the learned denoiser for Gaussian noise, add it in the other colour
    spaces of :data:`COLOUR_SOLVERS` (a gray image has one channel: nothing to add)."""
    choice = plan.auto
    if (choice is None or choice.task != "gaussian" or plan.solver is None or int(image_shape[0]) != 3
            or "learned" not in choice.prior):
        return
    plan.more_solvers.extend(registry.create("prior", spec) for spec in COLOUR_SOLVERS)
    choice.prior = (*choice.prior, *COLOUR_SOLVERS)
    plan.settings = replace(plan.settings, prior=choice.prior)
    from .plan import solver_label

    names = " + ".join(solver_label(p) for p in plan.priors())
    plan.notes[:] = [n for n in plan.notes if not n.startswith("the result combines ")]
    plan.notes.append(f"the result combines {names}: weighted by SURE (a colour image: the learned model in three "
                      "colour spaces)")


def _available(registry: Any, spec: str) -> bool:
    """Whether the prior of ``spec`` is registered and its own dependency imports (bm3d is a package)."""
    name = spec.split(":", 1)[0]
    if name not in registry.names("prior"):
        return False
    if name == "bm3d":
        import importlib.util

        return importlib.util.find_spec("bm3d") is not None
    return True
