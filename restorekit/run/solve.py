"""Stage 4: solve the problem — the fitting loop, ensembles of it, or a direct solver.

:func:`solve` returns a :class:`Solution`: the restored image at the
result's size, where it came from, and the loop's account (iterations,
stopping, backtracks, members).  Failures of a component's own code name the
component and its plugin; divergence and out-of-memory become one-line
errors.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..components import Problem
from ..errors import ComponentFailure, RestoreError, RestoreKitError, UsageError
from ..registry import Registry
from .plan import Plan, solver_label

#: the seed offset between ensemble members (a prime, so members never share a seed with a nearby run)
MEMBER_SEED_STEP = 7919


@dataclass
class Solution:
    """The restored image and how it was obtained."""

    output: Any  #: (1, C, H0, W0) tensor on the CPU, in [0, 1]: the result's size
    fit: Any = None  #: the engine's FitResult (None for a direct solver)
    members: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    #: the ground-truth-free check of the result (:class:`~.record.SafeguardRecord`'s fields), if one ran
    safeguard: dict[str, Any] | None = None

    @property
    def interrupted(self) -> bool:
        return bool(self.fit is not None and self.fit.interrupted)

    @property
    def iteration(self) -> int:
        return self.fit.iteration if self.fit is not None else 0


def member_seeds(seed: int, ensemble: int) -> list[int]:
    return [seed if k == 0 else seed + MEMBER_SEED_STEP * k for k in range(ensemble)]


def solve(plan: Plan, problem: Problem, registry: Registry, callback: Callable[[Any], Any] | None = None) -> Solution:
    """Run the plan on the problem; the output is cut to the result's size."""
    start = time.perf_counter()
    geo = problem.geometry
    try:
        if plan.solver is not None:
            out = _solve_directly(plan, problem)
            out, guard = noise_safeguard(plan, problem, out)
            sol = Solution(output=geo.to_result(out), safeguard=guard)
        else:
            if plan.guide is not None:
                plan, problem = _guided(plan, problem)
            res, members = _fit_members(plan, problem, callback)
            image = geo.to_image(res.output)
            floor = start_floor(plan, problem, image, res)
            if floor is not None and floor["action"] == "start":
                image = problem.init.to(image.device, image.dtype)
                res.output_kind = "start"
            sol = Solution(output=geo.to_result(_keep_known(plan, problem, image)), fit=res, members=members,
                           safeguard=floor)
    except ComponentFailure as exc:
        raise exc.with_plugin(registry.provider(exc.component).plugin) from exc.cause
    sol.seconds = time.perf_counter() - start
    return sol


def stack_key(plan: Plan, problem: Problem) -> tuple | None:
    """What must be equal for runs to be solved together by :func:`solve_many`; None when this one
    cannot be (a direct solver, no network prior, an ensemble).

    Everything but the image, the degradations' own data (masks, kernels:
    each problem keeps its forward model) and the reference: the same
    components by spec, loop settings, device and problem size.
    """
    if (plan.solver is not None or plan.guide is not None or plan.network is None or plan.generator is None
            or plan.ensemble != 1):
        return None
    return (
        plan.generator.spec, plan.network.spec, tuple(p.spec for p in plan.penalties),
        None if plan.stop_rule is None else plan.stop_rule.spec, plan.iterations, plan.lr, plan.report_every,
        plan.precision, str(plan.device), plan.settings.time_limit, problem.geometry,
        tuple(problem.observation.shape),
    )


def solve_many(plans: list[Plan], problems: list[Problem], registry: Registry) -> list[Solution | RestoreError]:
    """:func:`solve` for problems of the same size (equal :func:`stack_key`) in one stacked fit
    (:func:`~.multi.fit_many`): each problem's :class:`Solution`, or the error its own solve would
    have raised when its fit diverged (the others go on).  Member j's output is its fit alone up
    to floating-point rounding.  A failure of the group as a whole (a component's error, out of
    memory) is raised as :func:`solve` raises it."""
    from .multi import fit_many

    keys = {stack_key(p, q) for p, q in zip(plans, problems)}
    if len(plans) != len(problems) or not plans or None in keys or len(keys) != 1:
        raise ValueError("solve_many needs plans that can be solved together (equal stack_key)")
    plan = plans[0]
    rules = [None if p.stop_rule is None else type(p.stop_rule)(p.stop_rule.params) for p in plans]
    seeds = [p.settings.seed for p in plans]
    try:
        results = _guarded(
            fit_many, plan, problems[0], problems=problems, generator=plan.generator, network_prior=plan.network,
            penalties=plan.penalties, iterations=plan.iterations, lr=plan.lr, seeds=seeds, device=plan.device,
            report_every=plan.report_every, stoppers=rules, precision=plan.precision,
            time_limit=plan.settings.time_limit,
        )
    except ComponentFailure as exc:
        raise exc.with_plugin(registry.provider(exc.component).plugin) from exc.cause
    solutions: list[Solution | RestoreError] = []
    for res, problem, seed in zip(results, problems, seeds):
        if res.error is not None:
            solutions.append(RestoreError(res.error))
            continue
        geo = problem.geometry
        solutions.append(Solution(output=geo.to_result(_keep_known(plan, problem, geo.to_image(res.output))), fit=res,
                                  members=[_member(seed, res)], seconds=res.seconds))
    return solutions


#: the milder noise levels (variance factors) tried, in order, when a denoised result removed structure;
#: when the mildest still does, the input is returned (a clean, heavily textured photo read as noisy)
MILDER = (0.5, 0.25, 0.1, 0.03)


def noise_safeguard(plan: Plan, problem: Problem, out: Any) -> tuple[Any, dict[str, Any] | None]:
    """A denoised result checked against the estimated noise model (``problem.noise``): where the part it
    removed carries the image's edges (:func:`restorekit.noise.check.structure_ratio`), the noise level
    was over-estimated; the solvers run again told half, then a quarter of its variance (down to
    :data:`MILDER`'s last), and the first result that passes (else the input, unchanged) is kept, with a
    note; a result kept or made milder is then averaged with the solver's partner told the same level
    (:func:`_with_partner`).  Returns the output and the check's :class:`~.record.SafeguardRecord` fields
    (None where there is no estimated model)."""
    import math
    from dataclasses import replace

    import numpy as np

    from ..noise.check import CORRELATION_LIMIT, STRUCTURE_LIMIT, correlation_ratio, structure_ratio

    model = getattr(problem, "noise", None)
    if model is None or problem.mask is not None or tuple(problem.observation.shape[-2:]) != tuple(out.shape[-2:]):
        return out, None
    noisy = problem.observation[0].detach().cpu().double().numpy()

    def score(result: Any) -> float:
        return round(structure_ratio(noisy, result[0].detach().cpu().double().numpy(), model), 4)

    like = correlation_ratio(noisy, out[0].detach().cpu().double().numpy(), model)
    if like is not None and like < CORRELATION_LIMIT:
        why = (f"the part removed is far less correlated between neighbours than the noise the model describes "
               f"({like:.2f} x its neighbour correlation {model.lag1:.2f}; limit {CORRELATION_LIMIT:g}): what looks "
               "like noise is the image's own fine texture, so the result is the input unchanged")
        plan.notes.append(f"safeguard: {why}")
        return problem.observation.to(out.device, out.dtype), {
            "check": "correlation", "score": round(like, 4), "limit": CORRELATION_LIMIT, "action": "input", "why": why}
    ratio = score(out)
    if ratio <= STRUCTURE_LIMIT:
        return _with_partner(plan, noisy, out, model), {
            "check": "structure", "score": ratio, "limit": STRUCTURE_LIMIT, "action": "kept",
            "why": "the part removed is noise-like: no more of it on edges than on flat ground"}
    first = ratio
    for factor in MILDER:
        milder = replace(problem, noise=model.scaled(factor),
                         sigma=None if problem.sigma is None else problem.sigma * math.sqrt(factor))
        out = _solve_directly(plan, milder)
        ratio = score(out)
        if ratio <= STRUCTURE_LIMIT:
            why = (f"the result removed image structure with the noise (edge-to-flat ratio {first:.2f} > "
                   f"{STRUCTURE_LIMIT:g}): the noise level was over-estimated; denoised again told {factor:g} x "
                   f"its variance (ratio {ratio:.2f})")
            plan.notes.append(f"safeguard: {why}")
            return _with_partner(plan, noisy, out, milder.noise), {
                "check": "structure", "score": ratio, "limit": STRUCTURE_LIMIT, "action": "milder", "why": why}
    why = (f"every result removed image structure with the noise (edge-to-flat ratio {first:.2f}, and {ratio:.2f} "
           f"told {MILDER[-1]:g} x the estimated variance; limit {STRUCTURE_LIMIT:g}): what looks like noise is "
           "the image's own texture, so the result is the input unchanged")
    plan.notes.append(f"safeguard: {why}")
    return problem.observation.to(out.device, out.dtype), {
        "check": "structure", "score": ratio, "limit": STRUCTURE_LIMIT, "action": "input", "why": why}


def _with_partner(plan: Plan, noisy: Any, out: Any, model: Any) -> Any:
    """The result the safeguard accepted (of the (C, H, W) observation ``noisy``), averaged with the solver's
    partner for that noise model where it has one (the BM3D prior's ``real_noise_partner``: BM3D told the
    model's white-noise equivalent), with a note.  The checks judge the solver's own result, whose removed
    part has the model's correlation; the partner is told the same, accepted, level.  Only for spatially correlated noise (the model's neighbour
    correlation at least :data:`~restorekit.noise.check.CORRELATED`): the partner removes the coarse,
    correlated part the solver leaves; for near-white noise it only smooths more (Set14 pepper, whose grain
    the model reads as white noise of RMS 5.3, came back at 34.45 dB to itself averaged, 35.15 without)."""
    import numpy as np
    import torch

    from ..noise.check import CORRELATED

    partner = getattr(plan.solver, "real_noise_partner", None) if not plan.more_solvers else None
    if partner is None or model.lag1 < CORRELATED:
        return out
    try:
        other = partner(noisy, model)
    except (RestoreKitError, KeyboardInterrupt):
        raise
    except (Exception, SystemExit) as exc:
        raise ComponentFailure(plan.solver, "real_noise_partner", exc) from exc
    if other is None:
        return out
    other = np.asarray(other)
    if other.shape != noisy.shape:
        raise RestoreError(f"prior '{plan.solver.name}' returned a real-noise partner of shape {other.shape}, "
                           f"expected {noisy.shape}")
    plan.notes.append(f"averaged with {solver_label(plan.solver)} told the noise's white-noise equivalent "
                      f"(sigma {model.white_sigma() * 255:.3g}, 0-255)")
    return (out + torch.as_tensor(other[None], dtype=out.dtype, device=out.device)) / 2


#: a budgeted fit keeps its result only if its error on the observed pixels is at most this fraction of its
#: start's error on held-out observed pixels (both mean squares): the fit's error on pixels it was fitted to
#: is a lower bound of its error on the missing ones, so a fit that has not got this far is worse than its
#: start there too. Calibrated on the embedded image (bernoulli:0.5): after 300 steps 0.20 and 28.78 dB against
#: the start's 29.35, after 400 steps 0.087 and 29.31, after 600 0.048 and 29.49 (benchmarks/underload.py)
START_FLOOR = 0.1
#: the share of the observed pixels held out to measure the start's error
HOLDOUT = 0.05


def start_floor(plan: Plan, problem: Problem, image: Any, res: Any) -> dict[str, Any] | None:
    """Whether a time-budgeted fit (``--prior auto``'s) got past its classical start (biharmonic
    inpainting of the missing pixels): its error on the observed pixels against the start's error on
    observed pixels held out from it.  None where it does not apply (no budget, no missing pixels, a
    size-changing problem); else a :class:`~.record.SafeguardRecord`'s fields, ``action`` "start" when
    the start is the better result (a loaded or slow machine ran too few steps)."""
    import numpy as np
    import torch

    from .problem import BIHARMONIC_MAX_MISSING, fill_missing

    auto = getattr(plan, "auto", None)
    if (auto is None or not (auto.budgeted or res.stop_reason == "time limit") or problem.mask is None
            or res.interrupted
            or tuple(problem.observation.shape[-2:]) != tuple(image.shape[-2:])):
        return None
    known = (problem.mask[0, 0] > 0).cpu().numpy()
    obs = problem.observation[0].detach().cpu().numpy().astype(np.float64)
    rng = np.random.default_rng([problem.seed, 7])
    held = known & (rng.random(known.shape) < HOLDOUT)
    if held.sum() < 16 or known.all():
        return None
    start_cv = fill_missing(obs.astype(np.float32), known & ~held).astype(np.float64)
    start_err = float(np.mean((start_cv[:, held] - obs[:, held]) ** 2))
    out = image[0].detach().cpu().to(torch.float64).numpy()
    fit_err = float(np.mean((out[:, known] - obs[:, known]) ** 2))
    score = fit_err / max(start_err, 1e-12)
    if score <= START_FLOOR:
        return {"check": "start", "score": round(score, 4), "limit": START_FLOOR, "action": "kept",
                "why": "the fit's error on the observed pixels is below its start's held-out error"}
    why = (f"the fit ran {res.iterations_run} steps and did not get past its start (error on the observed pixels "
           f"{score:.2f} x the start's held-out error, limit {START_FLOOR:g}): the result is its start, "
           f"{'biharmonic inpainting' if int((~known).sum()) <= BIHARMONIC_MAX_MISSING else 'the filled-in observation'}; "
           "give the fit more time (--time-limit) or a less loaded machine")
    plan.notes.append(f"warning: {why}")
    return {"check": "start", "score": round(score, 4), "limit": START_FLOOR, "action": "start", "why": why}


def _keep_known(plan: Plan, problem: Problem, image: Any) -> Any:
    """``image`` (the fit's output at the image's size) with the observed pixels put back, when the
    network prior asks for it (``keep_known``) and they are exact: a noise-free mask at the image's size."""
    import torch

    from .plan import is_noise_free

    if (plan.network is None or not plan.network.loop_options().keep_known or problem.mask is None
            or tuple(problem.observation.shape[-2:]) != tuple(image.shape[-2:])
            or not is_noise_free(problem.degradations)):
        return image
    known = problem.mask.to(image.device).expand_as(image) > 0
    return torch.where(known, problem.observation.to(image.device, image.dtype), image)


#: the probe size of the Monte-Carlo divergence in the SURE weights, in [0, 1] units: BM3D's divergence
#: is not smooth (1e-3 gave it 0.028 per pixel at sigma 50 where 1e-2 and 5e-2 gave 0.043 and 0.046),
#: and 1e-2 picked weights nearer the best fixed mix on the embedded image (docs/benchmarks.md, cpu-256).
#: Clipping the noisy image to [0, 1] biases SURE (the noise is no longer Gaussian); the weights still
#: moved the result toward the better mix in every case measured
SURE_PROBE = 1e-2


def _solve_directly(plan: Plan, problem: Problem):
    """The solver's result; with several solvers (``plan.more_solvers``), their combination: weighted by
    Stein's unbiased risk estimate where the noise is Gaussian with a known sigma and every pixel observed
    at the image's size (:func:`sure_weights`), else their mean."""
    import torch

    solvers = [plan.solver, *plan.more_solvers]
    outs = [_one_solver(solver, plan, problem) for solver in solvers]
    if len(outs) == 1:
        return outs[0]
    sigma = problem.sigma
    if (sigma and problem.mask is None and tuple(problem.observation.shape[-2:]) == tuple(problem.image_shape[1:])
            and all(getattr(d, "name", "") == "gaussian" for d in problem.degradations)):
        gen = torch.Generator().manual_seed(problem.seed)
        probe = torch.randn(problem.observation.shape, generator=gen)
        moved = copy.copy(problem)
        moved.observation = problem.observation + SURE_PROBE * probe
        moved_outs = [_one_solver(s, plan, moved) for s in solvers]
        weights, share = clip_safe_weights(outs, moved_outs, problem.observation, probe, float(sigma))
        where = (f"the {100 * share:.0f}% of values at least {CLIP_MARGIN:g} sigma from black and white" if share < 1
                 else "every value")
        plan.notes.append("SURE weights of the solvers: " + ", ".join(f"{solver_label(s)} {w:.2f}" for s, w in zip(solvers, weights))
                          + f" (judged on {where})")
    else:
        weights = [1 / len(outs)] * len(outs)
    return sum(w * o for w, o in zip(weights, outs))


#: SURE weighs the solvers on the values whose estimate is at least this many sigmas from 0 and 1: a noisy image
#: clipped to [0, 1] (every image file) has no Gaussian noise near them, and SURE there is biased, against a
#: learned model most (at sigma 50 it gave BM3D 0.9 of the weight on a crop where the learned model was 3.8 dB
#: better).  On 21 colour crops, mean gain of the four-solver mix over CBM3D: sigma 25, +0.40 -> +0.56 dB;
#: sigma 50, +0.43 -> +0.97 (docs/benchmarks.md)
CLIP_MARGIN = 2.0
#: ... unless fewer values than this fraction are that far from both (a dark or saturated image): then all
CLIP_MIN_INSIDE = 0.1


def unclipped(outs: list[Any], sigma: float) -> Any:
    """1 where the solvers' mean estimate is at least :data:`CLIP_MARGIN` sigmas from 0 and 1, else 0 (all 1
    where under :data:`CLIP_MIN_INSIDE` of the values are): the values SURE weighs the solvers on."""
    est = sum(outs) / len(outs)
    inside = ((est > CLIP_MARGIN * sigma) & (est < 1 - CLIP_MARGIN * sigma)).to(est.dtype)
    return inside if float(inside.mean()) >= CLIP_MIN_INSIDE else inside.new_ones(inside.shape)


def clip_safe_weights(outs: list[Any], moved: list[Any], y: Any, probe: Any, sigma: float) -> tuple[list[float], float]:
    """SURE weights (:func:`sure_weights`) of the results ``outs`` of observation ``y``, judged on the values
    :func:`unclipped` keeps; ``moved``: the same solvers' results for ``y + SURE_PROBE * probe`` (the
    Monte-Carlo divergences).  Returns the weights and the share of the values judged."""
    inside = unclipped(outs, sigma)
    divs = [float((inside * probe * (m - o)).sum()) / SURE_PROBE for m, o in zip(moved, outs)]
    return sure_weights([o * inside for o in outs], y * inside, divs, sigma), float(inside.mean())


def sure_weights(outs: list[Any], y: Any, divs: list[float], sigma: float) -> list[float]:
    """The weights w (>= 0, summing to 1) that minimise Stein's unbiased estimate of the squared error of
    ``sum w_k outs[k]`` for observation ``y`` with Gaussian noise ``sigma``, given each estimator's
    divergence ``divs[k]``: ``|sum w_k (o_k - y)|^2 + 2 sigma^2 sum w_k div_k`` (constants dropped)."""
    import numpy as np

    active = list(range(len(outs)))
    while True:
        r = [(outs[k] - y).double().flatten() for k in active]
        gram = np.array([[float(a @ b) for b in r] for a in r])
        lin = np.array([sigma**2 * divs[k] for k in active])
        n = len(active)
        # minimise w' G w + 2 l' w subject to 1' w = 1: [2G 1; 1' 0] [w; mu] = [-2l; 1]
        system = np.zeros((n + 1, n + 1))
        system[:n, :n], system[:n, n], system[n, :n] = 2 * gram, 1, 1
        rhs = np.concatenate([-2 * lin, [1.0]])
        w = np.linalg.lstsq(system, rhs, rcond=None)[0][:n]
        if (w >= 0).all() or n == 1:
            full = [0.0] * len(outs)
            for k, v in zip(active, w):
                full[k] = float(max(v, 0.0))
            total = sum(full)
            return [v / total for v in full]
        active.pop(int(np.argmin(w)))


def _one_solver(solver: Any, plan: Plan, problem: Problem):
    import torch

    dev = plan.device
    on_device = copy.copy(problem)
    on_device.observation = problem.observation.to(dev)
    on_device.mask = None if problem.mask is None else problem.mask.to(dev)
    on_device.init = problem.init.to(dev)
    on_device.device = dev
    on_device.reference = None  # a solver never sees the ground truth
    try:
        out = solver.solve(on_device)
    except (RestoreKitError, KeyboardInterrupt):
        raise
    except (Exception, SystemExit) as exc:
        raise ComponentFailure(solver, "solve", exc) from exc
    out_t = torch.as_tensor(out).detach().float().cpu().clamp(0, 1)
    if out_t.ndim == 3:
        out_t = out_t[None]
    if tuple(out_t.shape[1:]) != tuple(problem.image_shape):
        raise RestoreError(
            f"prior '{solver.name}' returned shape {tuple(out_t.shape[1:])}, expected {problem.image_shape}"
        )
    return out_t


class GuidePenalty:
    """``weight * mean((x - target)^2)``: a guide's pull on the fit (not a registered prior)."""

    name = "guide"

    def __init__(self, target, weight: float) -> None:
        self.target, self.weight = target, weight

    def penalty(self, x):
        return self.weight * (x - self.target.to(x.dtype)).pow(2).mean()


def _guided(plan: Plan, problem: Problem) -> tuple[Plan, Problem]:
    """The guide's result as the problem's starting estimate, and its pull as a penalty when weighted."""
    import dataclasses

    out = plan.guide.solve(problem)
    target = out.detach().to(problem.init.device, problem.init.dtype).clamp(0, 1)
    if tuple(target.shape) != tuple(problem.init.shape):
        from ..errors import UsageError

        raise UsageError(f"prior '{plan.guide.name}' gives a {tuple(target.shape)} result for a "
                         f"{tuple(problem.init.shape)} image; it cannot guide this fit")
    problem = dataclasses.replace(problem, init=target)
    weight = float(getattr(plan.guide.params, "weight", 0.0) or 0.0)
    if weight > 0:
        plan = dataclasses.replace(plan, penalties=[*plan.penalties, GuidePenalty(target.to(plan.device), weight)])
    return plan, problem


def _fit_members(plan: Plan, problem: Problem, callback):
    """Run ``plan.ensemble`` independent fits and average their outputs."""
    import torch

    from .engine import fit

    ensemble, iterations, stop_rule = plan.ensemble, plan.iterations, plan.stop_rule
    time_limit = plan.settings.time_limit
    seeds = member_seeds(plan.settings.seed, ensemble)
    common = dict(
        generator=plan.generator, network_prior=plan.network, penalties=plan.penalties, iterations=iterations,
        lr=plan.lr, device=plan.device, report_every=plan.report_every, precision=plan.precision,
    )
    if plan.batched:
        rule = None if stop_rule is None else type(stop_rule)(stop_rule.params)
        res = _guarded(fit, plan, problem, seed=seeds[0], callback=callback, stopper=rule, member_seeds=seeds,
                       time_limit=time_limit, **common)
        res.output_kind = f"mean of {ensemble} runs, batched ({res.output_kind})"
        members = [_member(s, res) for s in seeds]
        return res, members
    results, members = [], []
    for k, member_seed in enumerate(seeds):
        cb = callback
        if callback is not None and ensemble > 1:
            def cb(p, k=k):
                q = copy.copy(p)
                q.iteration = p.iteration + k * iterations
                q.iterations = iterations * ensemble
                callback(q)
        rule = None if stop_rule is None else type(stop_rule)(stop_rule.params)
        res = _guarded(fit, plan, problem, seed=member_seed, callback=cb, stopper=rule,
                       time_limit=None if time_limit is None else time_limit / ensemble, **common)
        results.append(res)
        members.append(_member(member_seed, res))
        if res.interrupted:
            break
    if len(results) == 1:
        return results[0], members
    first = results[0]
    merged = copy.copy(first)
    merged.output = torch.stack([r.output for r in results]).mean(0)
    merged.interrupted = any(r.interrupted for r in results)
    merged.iterations_run = sum(r.iterations_run for r in results)
    merged.iteration = first.iteration
    merged.seconds = sum(r.seconds for r in results)
    merged.backtracks = sum(r.backtracks for r in results)
    merged.stop_reason = "interrupted" if merged.interrupted else results[-1].stop_reason
    merged.output_kind = f"mean of {len(results)} runs ({first.output_kind})"
    return merged, members


def _member(seed: int, res: Any) -> dict[str, Any]:
    return {
        "seed": seed, "iteration": res.iteration, "iterations_run": res.iterations_run,
        "stopped_early": res.stopped_early, "stop_reason": res.stop_reason, "backtracks": res.backtracks,
        "seconds": round(res.seconds, 3),
    }


def _guarded(fit, plan: Plan, problem: Problem, **kwargs):
    """Run the engine, turning divergence and out-of-memory into one-line errors (``problem`` is
    passed on unless ``kwargs`` hold ``problems``: :func:`~.multi.fit_many`)."""
    try:
        return fit(**kwargs) if "problems" in kwargs else fit(problem, **kwargs)
    except FloatingPointError as exc:
        raise RestoreError(str(exc)) from None
    except ValueError as exc:
        if "Expected more than 1 value per channel" in str(exc):
            _, h, w = problem.geometry.canvas_shape
            raise UsageError(
                f"the image ({w}x{h} after padding) is too small for the network's deepest level; "
                "use fewer levels (e.g. --net skip:levels=3) or a larger image"
            ) from None
        raise
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            raise RestoreError(
                f"out of memory on {plan.device}: try a smaller image, a narrower --net, a smaller --ensemble, "
                "or --device cpu"
            ) from None
        raise
