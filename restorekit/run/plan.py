"""Stage 2: the plan — components, device, precision, stopping, iterations and the notes.

:func:`make_plan` turns :class:`~.settings.RunSettings` into components and
checks that they make sense together; :func:`schedule` completes the plan
once the problem is known (the iteration count and the notes depend on its
task).  Nothing here fits or reads an image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..components import Generator, Metric, Prior, Problem
from ..errors import UsageError
from ..registry import Registry
from ..session.device import cpu_has_native_bf16, pick_device  # called through these names here (tests patch them)
from .settings import DEFAULTS, RunSettings

#: the paper's iteration counts per task (REFERENCE.md section 3)
PAPER_ITERATIONS = {"denoise": 3000, "inpaint": 5000, "sr": 2000, "restore": 5000}
#: on a CPU the default is capped to this; pass iters= for more
CPU_ITERATION_CAP = 600
#: iterations for the identity parameterisation (cheap steps)
IDENTITY_ITERATIONS = 2000
#: the stopping rule used when no iteration count is given; with the EMA the
#: output is the average where the fit stops (see docs/benchmarks.md)
AUTO_STOP = "eswmv:patience=500"
#: the default Adam learning rate
DEFAULT_LR = DEFAULTS["lr"]


@dataclass
class Plan:
    """What the run will do, before it does it."""

    settings: RunSettings
    degradations: list[Any]
    network: Prior | None
    penalties: list[Prior]
    solver: Prior | None  #: the first prior that solves directly (the others are in ``more_solvers``)
    generator: Generator | None
    metrics: list[Metric]
    device: Any
    stop_rule: Any  #: a StoppingRule or None
    iterations: int = 0
    lr: float | None = None
    report_every: int = 1
    batched: bool = False
    notes: list[str] = field(default_factory=list)
    #: what --prior auto chose (None when the priors were named)
    auto: Any = None
    #: further priors that solve directly: the result is the mean of every solver's
    more_solvers: list[Prior] = field(default_factory=list)
    #: a prior that solves directly, combined with a fitted one: its result starts the fit (and, with the
    #: prior's ``weight``, pulls it: weight * mean((x - guide)^2) in the loss)
    guide: Prior | None = None

    @property
    def precision(self) -> str:
        return self.settings.precision

    @property
    def ensemble(self) -> int:
        return self.settings.ensemble

    @property
    def stride(self) -> int:
        """The canvas the generator needs: sides a multiple of this (1 without a generator)."""
        return self.generator.stride() if self.generator is not None else 1

    def priors(self) -> list[Prior]:
        """The priors in the record's order: network, penalties, solver."""
        return (([self.network] if self.network else []) + self.penalties + ([self.solver] if self.solver else [])
                + self.more_solvers + ([self.guide] if self.guide else []))


def solver_label(prior: Prior) -> str:
    """A solver's name in the log, with what sets it apart from another of the same name (the learned
    model's colour space, where it is not the default)."""
    colour = getattr(getattr(prior, "params", None), "colour", "opponent")
    return prior.name if colour == "opponent" else f"{prior.name} ({colour})"


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
    fitted = [p for p in priors if p.role in ("network", "penalty")]
    if roles.count("solver") > 1 and fitted:
        raise UsageError(
            f"several priors that solve directly combine among themselves, or one of them guides a fitted prior "
            f"(its result starts the fit); not several with a fitted prior ({names})"
        )
    if "none" in roles and len(priors) > 1:
        raise UsageError(f"prior 'none' means no prior; drop it to combine {names}")
    network = next((p for p in priors if p.role == "network"), None)
    penalties = [p for p in priors if p.role == "penalty"]
    solvers = [p for p in priors if p.role == "solver"]
    solver = solvers[0] if solvers else None
    generator: Generator | None = None
    net = (net or "auto").strip()
    if solver is not None and not fitted:
        if net not in ("auto", ""):
            raise UsageError(f"prior '{solver.name}' solves directly and uses no --net (got --net {net})")
    else:
        if net in ("auto", ""):
            net = "skip" if network is not None else "identity"
        generator = registry.create("generator", net)  # type: ignore[assignment]
        if network is not None and not generator.is_network():
            raise UsageError(
                f"--prior {network.name} needs a network, but --net {generator.name} has none; "
                "use --net skip (see restorekit list generators)"
            )
        if network is None and generator.is_network():
            raise UsageError(
                f"--net {generator.name} is a network, and an untrained network is itself a prior: "
                f"add --prior dip, or use --net identity with --prior {names}"
            )
    metric_objs: list[Metric] = [registry.create("metric", s) for s in metrics]  # type: ignore[misc]
    labels = [m.label for m in metric_objs]
    if len(set(labels)) != len(labels):
        raise UsageError(f"metric given twice: {', '.join(labels)}")
    return degradations, network, penalties, solvers, generator, metric_objs


def is_noise_free(degradations: Sequence[Any]) -> bool:
    """Whether no stage of the forward model adds noise (the observation is exactly ``A(x)``)."""
    return bool(degradations) and not any(_adds_noise(d) for d in degradations)


def _adds_noise(d: Any) -> bool:
    method = getattr(d, "adds_noise", None)
    return bool(method()) if callable(method) else not getattr(d, "noise_free", False)


def auto_stop_spec(degradations: Sequence[Any]) -> str | None:
    """The rule ``--stop auto`` uses when no iteration count is given: ES-WMV, or none for a noise-free model.

    Without noise there is nothing to overfit, and the rule only stops a fit
    that is still improving (docs/benchmarks.md, ``cpu-noise-free``).
    """
    return None if is_noise_free(degradations) else AUTO_STOP


def _check_solver_options(name: str, s: RunSettings) -> None:
    """A prior that solves directly has no fitting loop: options of the loop are a usage error, not ignored."""
    given = [
        flag
        for flag, used in (
            ("--iters", s.iters is not None),
            ("--lr", s.lr is not None),
            ("--stop", s.stop not in ("auto", "none", None)),
            ("--ensemble", s.ensemble != 1),
            ("--precision", s.precision != "fp32"),
            ("--time-limit", s.time_limit is not None),
        )
        if used
    ]
    if given:
        raise UsageError(
            f"prior '{name}' solves directly, without a fitting loop: drop {', '.join(given)} "
            "(they apply to fitted priors such as dip, tv and none)"
        )


def check_precision(precision: str, dev: Any) -> None:
    """bf16 autocast where the device runs it: CPUs, and CUDA GPUs with bfloat16 support."""
    if precision == "fp32":
        return
    if dev.type == "cuda":
        import torch

        if not torch.cuda.is_bf16_supported():
            raise UsageError(f"--precision bf16: {dev} has no bfloat16 support; use --precision fp32")
    elif dev.type != "cpu":
        raise UsageError(f"--precision bf16 runs on CPUs and CUDA GPUs, not on {dev.type}; use --precision fp32")


def make_plan(settings: RunSettings, registry: Registry) -> Plan:
    """Components, device and stopping rule for ``settings``; every combination checked."""
    from ..stopping import make_stopping_rule

    from dataclasses import replace

    from .auto import AUTO, choose, is_auto

    s = settings
    choice = None
    if is_auto(s.prior):
        stages = [registry.create("degradation", d) for d in s.degrade]
        choice = choose(s, registry, stages, pick_device(s.device))
        # (a budgeted fit of a noise-free task gets no stopping rule from --stop auto: the budget ends it)
        s = replace(s, prior=choice.prior, net=choice.net, precision=choice.precision)
    elif s.precision == AUTO:
        s = replace(s, precision="fp32")
    stop_rule = make_stopping_rule(None if s.stop == "auto" else s.stop, registry=registry)
    degradations, network, penalties, solvers, generator, metrics = resolve_components(
        registry, s.degrade, s.prior, s.net, s.metrics
    )
    fitted = network is not None or bool(penalties)
    guide = solvers[0] if solvers and fitted else None
    solver = solvers[0] if solvers and not fitted else None
    if s.stop == "auto" and s.iters is None:
        stop_rule = make_stopping_rule(auto_stop_spec(degradations), registry=registry)
    if network is None and s.stop == "auto":
        stop_rule = None  # the automatic rule is for network priors; an explicit one applies to any fit
    if solver is not None:
        _check_solver_options(solver.name, s)
    dev = pick_device(s.device)
    check_precision(s.precision, dev)
    plan = Plan(
        settings=s, degradations=degradations, network=network, penalties=penalties, solver=solver,
        generator=generator, metrics=metrics, device=dev, stop_rule=stop_rule,
        batched=s.ensemble > 1 and (s.ensemble_batched if s.ensemble_batched is not None else dev.type != "cpu"),
        auto=choice,
        more_solvers=solvers[1:] if solver is not None else [],
        guide=guide,
    )
    if guide is not None:
        w = float(getattr(guide.params, "weight", 0.0) or 0.0)
        plan.notes.append(f"{guide.name} guides the fit: its result is the starting estimate"
                          + (f" (dip:input=observation starts from it)" if network is not None else "")
                          + (f", and {w:g} * mean((x - it)^2) is added to the loss" if w > 0 else ""))
    if plan.more_solvers:
        plan.notes.append(f"the result combines {' + '.join(p.name for p in plan.priors())}: weighted by SURE "
                          "where the noise is Gaussian with a known sigma, else their mean")
    if choice is not None:
        plan.notes.append(f"auto: {' + '.join(choice.prior)} for this task ({choice.why})")
        plan.notes.extend(choice.notes)
    return plan


def schedule(plan: Plan, problem: Problem) -> Plan:
    """Complete the plan for ``problem``: iterations, learning rate, report interval, notes."""
    s = plan.settings
    if plan.network is not None and plan.network.loop_options().sure:
        _check_sure(plan.network, problem, s.precision)
    notes = plan.notes
    if plan.solver is not None:
        plan.iterations, plan.lr = 0, None
    elif plan.auto is not None and plan.auto.budgeted:
        from dataclasses import replace

        from .auto import BUDGET_ITERATIONS, budget_seconds

        plan.auto.time_limit = budget_seconds(problem.image_shape)
        plan.settings = s = replace(s, time_limit=plan.auto.time_limit)
        plan.iterations, plan.lr = BUDGET_ITERATIONS, DEFAULT_LR if s.lr is None else float(s.lr)
        notes.append(f"auto: a {plan.auto.time_limit:g} s budget for this image size on {plan.device} "
                     "(pass --iters or --time-limit to change)")
    else:
        if s.iters is None:
            if plan.generator.is_network():
                iterations = PAPER_ITERATIONS.get(problem.task, PAPER_ITERATIONS["restore"])
                if plan.device.type == "cpu" and iterations > CPU_ITERATION_CAP:
                    notes.append(
                        f"CPU: {CPU_ITERATION_CAP} iterations by default (the paper runs {iterations} "
                        "on a GPU); pass --iters to change"
                    )
                    iterations = CPU_ITERATION_CAP
            else:
                iterations = IDENTITY_ITERATIONS
            if s.stop == "auto" and plan.network is not None and is_noise_free(plan.degradations):
                notes.append(
                    f"no noise in the forward model: --stop auto runs all {iterations} iterations "
                    "(there is no noise to overfit); --stop eswmv stops early anyway"
                )
        else:
            iterations = int(s.iters)
        plan.iterations = iterations
        plan.lr = DEFAULT_LR if s.lr is None else float(s.lr)
        if plan.network is not None and plan.device.type == "cpu" and s.precision == "fp32" and cpu_has_native_bf16():
            notes.append(
                "this CPU has bfloat16 instructions: --precision bf16 is likely faster (a step in 0.65-0.70 "
                "of the float32 time on a 2-core AMD EPYC, PSNR within about 0.2 dB; "
                "benchmarks/step_time.py times yours)"
            )
    plan.report_every = s.report_every or max(1, min(50, max(plan.iterations, 1) // 100 or 1))
    return plan


def _check_sure(network: Prior, problem: Problem, precision: str) -> None:
    """dip:sure=true fits an estimate of the error for Gaussian noise: refuse what it cannot handle."""
    if problem.task != "denoise" or problem.sigma is None:
        raise UsageError(
            "dip:sure=true is for Gaussian denoising with a known sigma (--degrade gaussian:S alone); "
            f"this problem is {problem.task}" + ("" if problem.sigma else " with no known noise level")
        )
    if getattr(network.params, "input", "observation") != "observation":
        raise UsageError(
            "dip:sure=true needs dip:input=observation: SURE differentiates the output with respect to the noisy image"
        )
    if precision != "fp32":
        raise UsageError("dip:sure=true needs --precision fp32: its finite difference drowns in bf16 rounding")
