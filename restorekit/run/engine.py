"""The fit of every network and penalty prior (its loop is :mod:`restorekit.fit`).

Each step: ``z' = perturb(z)``, ``out = G(z')``, ``loss = mean((A(out) - y)^2
* mask) + sum(penalties(out))``, one Adam step, then the output average
(EMA) is updated.  Host synchronisations (``.item()``, copies to the CPU)
happen only on reporting iterations, every ``report_every`` steps;
backtracking is decided on the device (:class:`Backtracker`).  Ctrl-C stops the loop and returns what
it has, marked interrupted.

The steps are driven by :func:`restorekit.fit.run_loop`; :class:`MemberFit` holds what a fit of K
members keeps between steps (the members, the optimiser, the average, backtracking), shared with
the stacked fits of :mod:`restorekit.run.multi`.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from ..components import Generator, LoopOptions, Prior, Problem
from ..fit import ExponentialAverage, every, predicted_time_limit, run_loop
from ..registry import call_accepting
from .settings import PRECISIONS  # the one list (users' values are checked in the settings)


@dataclass
class Progress:
    """What a progress callback sees after every step.

    ``loss`` and the PSNRs are those of the latest reporting iteration (they
    are read from the device only there).
    """

    iteration: int
    iterations: int
    loss: float
    psnr: float | None = None  # of the current output against the reference
    psnr_avg: float | None = None  # of the averaged output
    elapsed: float = 0.0
    #: the fit's time limit (seconds), when it has one: a budgeted fit ends by time, not by iterations
    time_limit: float | None = None


@dataclass
class History:
    iteration: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    psnr: list[float | None] = field(default_factory=list)
    psnr_avg: list[float | None] = field(default_factory=list)
    time: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, list]:
        return {
            "iteration": self.iteration,
            "loss": self.loss,
            "psnr": self.psnr,
            "psnr_avg": self.psnr_avg,
            "time": self.time,
        }


@dataclass
class FitResult:
    output: torch.Tensor  # (1, C, H, W) on the CPU, clamped to [0, 1]
    iteration: int  # the iteration the output comes from
    iterations_run: int
    history: History
    interrupted: bool = False
    stopped_early: bool = False
    backtracks: int = 0
    output_kind: str = "last"  # "last" or "ema"
    variance_minimum: int | None = None  # the stopping rule's minimum, when one ran
    seconds: float = 0.0
    #: why the loop ended: "iterations", "rule", "time limit" or "interrupted"
    stop_reason: str = "iterations"




def nonfinite_loss(lv: float, step: int) -> FloatingPointError:
    """The error of a fit whose loss became ``lv`` (not finite) at ``step``."""
    if step == 1:  # before any update: the problem itself, not the step size
        return FloatingPointError(
            f"the loss is {lv} at the first iteration, before any update: a component gives "
            "non-finite values for this image (check the parameters, or try another prior)"
        )
    return FloatingPointError(f"the loss became {lv} at iteration {step}; try a lower --lr")


def autocast(precision: str, device: torch.device):
    """The network's forward pass context: ``torch.autocast`` in bfloat16 for ``"bf16"``, else nothing."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


#: the finite-difference step of the SURE divergence estimate (images are in [0, 1])
SURE_EPSILON = 1e-3


def sure_loss(
    net: Callable, zin: torch.Tensor, out: torch.Tensor, diff: torch.Tensor, sigma: float,
    crop: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Monte-Carlo SURE per member, ``(K,)``: an unbiased estimate of ``mean((out - x)^2)``.

    For ``y = x + N(0, sigma^2)`` and ``out = f(y)``,
    ``SURE = mean((f(y) - y)^2) - sigma^2 + 2 sigma^2 div f(y) / n``, the
    divergence estimated with one probe ``b ~ N(0, 1)``:
    ``div f / n ~ mean(b * (f(y + eps b) - f(y))) / eps`` (Ramani, Blu and
    Unser 2008).  ``zin`` is the network's input (the observation, jittered,
    on the canvas); a second forward pass evaluates ``f`` at ``zin + eps b``.
    ``crop`` takes the canvas to the image, where ``diff`` lives.
    """
    if zin is None or zin.shape != out.shape:
        raise ValueError("the SURE data term needs the network input in the image's space (dip:input=observation)")
    crop = crop or (lambda t: t)
    b = torch.randn_like(zin)
    out_b = net(zin + SURE_EPSILON * b).float()
    div = (crop(b) * (crop(out_b) - crop(out))).mean(dim=(1, 2, 3)) / SURE_EPSILON
    return diff.pow(2).mean(dim=(1, 2, 3)) - sigma**2 + 2 * sigma**2 * div


def code_seed(seed: int) -> int:
    """The seed of the input code's generator, derived from the run's seed.

    The network's weights come from the global generator seeded with
    ``seed``; seeding the code's generator with the same number would make
    the first convolution's initial weights a linear function of the first
    entries of ``z`` (both are uniform draws from the same stream).
    """
    return (int(seed) * 0x9E3779B1 + 0x5EED) % (2**63)


def psnr(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """PSNR (dB, a 0-d tensor on the device) of ``a`` against ``b`` in [0, 1]; ``weight`` weights the pixels."""
    d = (a - b) ** 2
    if weight is None:
        mse = d.mean()
    else:
        mse = (d * weight).sum() / (weight.sum() * a.shape[1]).clamp_min(1)
    return -10 * torch.log10(mse.clamp_min(1e-12))


class Members:
    """K networks stepped together: one module (K = 1), or K stacked with torch.func.

    With K > 1 the networks' parameters are stacked along a new first
    dimension and evaluated with ``vmap`` (K convolutions become one batched
    call on the device); BatchNorm keeps no running statistics, which the
    loop never uses since it stays in training mode.
    """

    def __init__(self, nets: list[torch.nn.Module]) -> None:
        self.k = len(nets)
        if self.k == 1:
            self.net = nets[0]
            self.params = [p for p in self.net.parameters() if p.requires_grad]
            return
        import copy

        from torch.func import functional_call, replace_all_batch_norm_modules_, stack_module_state, vmap

        for n in nets:
            replace_all_batch_norm_modules_(n)
        stacked, _ = stack_module_state(nets)
        self.names = list(stacked)
        self.params = [stacked[n] for n in self.names]
        base = copy.deepcopy(nets[0]).to("meta")

        def one(params: dict, z: torch.Tensor | None) -> torch.Tensor:
            return functional_call(base, params, (None if z is None else z[None],))[0]

        self._vmapped = vmap(one, in_dims=(0, 0))

    def __call__(self, z: torch.Tensor | None) -> torch.Tensor:
        """(K, D, H, W) codes -> (K, C, H, W) images."""
        if self.k == 1:
            return self.net(z)
        return self._vmapped(dict(zip(self.names, self.params)), z)


def per_member(flags: torch.Tensor, like: torch.Tensor, k: int) -> torch.Tensor:
    """(K,) member flags shaped to broadcast against a parameter or output of ``k`` members."""
    return flags.reshape(()) if k == 1 else flags.view((-1,) + (1,) * (like.dim() - 1))


class Backtracker:
    """Backtracking (REFERENCE.md section 1), decided on the device for K members.

    On a check step the fit of each member's ``A(out)`` to the observation
    (PSNR, ``(K,)``) is compared with the fit at its checkpoint.  A member
    whose fit dropped by more than ``db`` has collapsed: after the optimiser
    step its weights go back to the checkpoint (the step's update is
    discarded; Adam's moments keep its gradient, the one difference from the
    authors' skip, which would need a host round trip to branch on) and its
    output stays out of the average.  The others checkpoint their pre-step
    weights and fit.  Every decision is a ``torch.where``: the loop never
    waits for the device, and the count is read at the end.

    ``every`` = 0 checks every step except multiples of 100 (the denoising
    notebook's schedule); N > 0 checks every N steps (the restoration
    notebook uses 50).
    """

    def __init__(self, params: list[torch.Tensor], k: int, db: float, every: int) -> None:
        self.params, self.k, self.db, self.every = params, k, db, every
        self.saved: list[torch.Tensor] | None = None
        self.last: torch.Tensor | None = None
        self.count: torch.Tensor | None = None

    def due(self, i: int) -> bool:
        if self.db <= 0:
            return False
        return i % 100 != 0 if self.every == 0 else i % self.every == 0

    def check(self, fit: torch.Tensor) -> torch.Tensor | None:
        """Called before the optimiser step; returns the (K,) collapsed flags (None at the first check)."""
        with torch.no_grad():
            if self.saved is None:
                self.saved = [p.detach().clone() for p in self.params]
                self.last = fit.detach().clone()
                self.count = torch.zeros((), dtype=torch.long, device=fit.device)
                return None
            collapsed = fit < self.last - self.db
            self.last = torch.where(collapsed, self.last, fit)
            for s, p in zip(self.saved, self.params):
                s.copy_(torch.where(per_member(collapsed, p, self.k), s, p))
            self.count += collapsed.sum()
            return collapsed

    def undo(self, collapsed: torch.Tensor) -> None:
        """After the optimiser step: collapsed members get their checkpoint back."""
        with torch.no_grad():
            for s, p in zip(self.saved, self.params):
                p.copy_(torch.where(per_member(collapsed, p, self.k), s, p))

    def total(self) -> int:
        return 0 if self.count is None else int(self.count.item())


def fit(
    problem: Problem,
    *,
    generator: Generator,
    network_prior: Prior | None,
    penalties: Sequence[Prior],
    iterations: int,
    lr: float,
    seed: int,
    device: torch.device,
    report_every: int = 10,
    callback: Callable[[Progress], Any] | None = None,
    stopper: Any = None,
    member_seeds: Sequence[int] | None = None,
    precision: str = "fp32",
    time_limit: float | None = None,
) -> FitResult:
    """Fit ``G(z)`` (or the pixels) so that ``A(G(z))`` matches ``problem``'s observation.

    The generator produces ``problem.geometry``'s canvas; each step crops it
    to the image before the forward model, so degradations see the size they
    were prepared for.  The returned output is canvas-sized.

    With ``member_seeds`` (K seeds), K independent networks are fitted at
    once, each with its own weights, input code and backtracking; their
    losses are summed (each member's gradient is its own) and the output is
    the mean of their outputs.

    ``precision="bf16"`` runs the network under ``torch.autocast`` in
    bfloat16 (weights, optimiser, loss and averages stay float32).
    ``time_limit`` (seconds) ends the loop before a step that would end past
    it (judged by the mean step time so far), like a stopping rule that fires.

    With ``LoopOptions.sure`` the data term is Stein's unbiased estimate of
    the mean squared error against the clean image (:func:`sure_loss`),
    which needs ``problem.sigma``, an identity forward model and the network
    input in the image's space (``dip:input=observation``).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    loop = _Loop(problem, generator, network_prior, penalties, list(member_seeds) if member_seeds else [seed],
                 lr, device, precision)
    return loop.run(iterations, report_every, callback, stopper, time_limit)


def build_member(generator: Generator, prior: Prior | None, geo: Any, init: torch.Tensor, seed: int,
                 device: torch.device) -> tuple[torch.nn.Module, torch.Tensor | None]:
    """One member's network (weights from the global generator seeded with ``seed``) and input code
    (from its own stream, :func:`code_seed`), on the canvas of ``geo``; ``init`` is canvas-sized."""
    c, H, W = geo.canvas_shape
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(code_seed(seed))
    z = None
    if generator.needs_input:
        if prior is None:
            raise RuntimeError("a generator with an input needs a network prior")
        z = call_accepting(prior.input_code, H, W, gen, init, geometry=geo)
        if z is None:
            raise RuntimeError(f"prior '{prior.name}' gave no input code")
    net = call_accepting(generator.build, 0 if z is None else z.shape[1], c, init=init, canvas=(H, W))
    net = net.to(device)
    net.train()
    return net, z


def check_options(options: LoopOptions, problems: Sequence[Problem], precision: str) -> None:
    """Refuse a data term the problems cannot have: SURE needs a known sigma, no mask, and fp32."""
    for p in problems:
        if options.sure and (p.sigma is None or not p.sigma > 0 or p.mask is not None):
            raise ValueError("the SURE data term needs a known noise sigma and no mask")
    if options.sure and precision != "fp32":
        raise ValueError(
            "the SURE data term needs precision fp32 (its finite difference drowns in bf16 rounding)"
        )


class MemberFit:
    """What a fit of K members holds and does besides its step: the members and their optimiser,
    the observation (``y``, mask ``m``, ``ym = y * m``), the output average (:attr:`ema`, an
    :class:`~restorekit.fit.ExponentialAverage`) and backtracking.

    :func:`fit`'s loop (one problem) and :func:`~.multi.fit_many`'s (K problems) build on it; each
    gives its own step (the loss), reports and output, and drives :func:`restorekit.fit.run_loop`.
    Subclasses set ``y`` and ``m`` and then call :meth:`observe`.
    """

    def __init__(self, network_prior: Prior | None, penalties: Sequence[Prior], problems: Sequence[Problem],
                 members: Members, z: torch.Tensor | None, lr: float, device: torch.device, precision: str,
                 options: LoopOptions) -> None:
        self.options, self.sure = options, options.sure
        self.geo, self.prior, self.penalties = problems[0].geometry, network_prior, penalties
        self.device, self.precision, self.lr = device, precision, lr
        self.members, self.z = members, z
        self.k = members.k
        self.opt = torch.optim.Adam(members.params, lr=lr)
        self.ema = ExponentialAverage(options.ema)
        self.backtracker = Backtracker(members.params, self.k, options.backtrack_db, options.backtrack_every)

    @property
    def avg(self) -> torch.Tensor | None:
        """The members' averaged outputs ``(K, C, H, W)`` (None before the first step, or without an average)."""
        return self.ema.value

    def observe(self, y: torch.Tensor, m: torch.Tensor | None) -> None:
        """The observation(s) on the device, one per member, and the mask (or None)."""
        self.y, self.m = y, m
        self.ym = self.y * self.m if self.m is not None else self.y

    def fit_db(self, pred: torch.Tensor) -> torch.Tensor:
        """PSNR of each member's A(out) against the observation, (K,)."""
        d = (pred * self.m if self.m is not None else pred) - self.ym
        return -10 * torch.log10(d.pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-12))

    def optimise(self, i: int, pred: torch.Tensor) -> torch.Tensor | None:
        """After the backward pass: backtracking's check (on its steps), the optimiser step, and the
        collapsed members put back; returns the (K,) collapsed flags, or None."""
        due = self.backtracker.due(i)
        collapsed = self.backtracker.check(self.fit_db(pred.detach())) if due else None
        self.opt.step()
        if collapsed is not None:
            self.backtracker.undo(collapsed)
        return collapsed

    def average(self, o: torch.Tensor, collapsed: torch.Tensor | None) -> None:
        """The exponential moving average of the outputs; a collapsed member's output is not averaged."""
        self.ema.update(o, None if collapsed is None else per_member(collapsed, o, self.k))

    def penalised(self, loss: torch.Tensor, x: torch.Tensor, losses: torch.Tensor | None = None) -> torch.Tensor:
        """``loss`` plus every penalty prior's term on each member's image ``x[j]`` (added to
        ``losses[j]`` too, when given)."""
        for p in self.penalties:
            for j in range(self.k):
                term = p.penalty(x[j : j + 1])
                if term is not None:
                    loss = loss + term
                    if losses is not None:
                        losses[j] += term.detach().reshape(())
        return loss

    def unperturbed(self) -> torch.Tensor:
        """Every member's output from its unperturbed code ``(K, C, H, W)``, float, detached."""
        with autocast(self.precision, self.device):
            return self.members(self.z).detach().float()


def build_members(generator: Generator, prior: Prior | None, geo: Any, inits: Sequence[torch.Tensor],
                  seeds: Sequence[int], device: torch.device, after: Callable[[], Any] | None = None,
                  ) -> tuple[Members, torch.Tensor | None, list]:
    """The members (:func:`build_member` for each of ``inits`` and ``seeds``), their input codes
    stacked, and what ``after()`` returned after each was built (e.g. the random state)."""
    codes, nets, marks = [], [], []
    for init, s in zip(inits, seeds):
        net, z = build_member(generator, prior, geo, init, s, device)
        if z is not None:
            codes.append(z)
        nets.append(net)
        if after is not None:
            marks.append(after())
    return Members(nets), (torch.cat(codes).to(device) if codes else None), marks


class _Loop(MemberFit):
    """One fit: :class:`MemberFit` for one problem, its step, reports and the choice of output;
    :func:`fit` is its front door."""

    def __init__(self, problem: Problem, generator: Generator, network_prior: Prior | None,
                 penalties: Sequence[Prior], seeds: list[int], lr: float, device: torch.device, precision: str):
        options = network_prior.loop_options() if network_prior is not None else LoopOptions()
        check_options(options, [problem], precision)
        init = problem.geometry.pad_to_canvas(problem.init)
        members, z, _ = build_members(generator, network_prior, problem.geometry, [init] * len(seeds), seeds, device)
        super().__init__(network_prior, penalties, [problem], members, z, lr, device, precision, options)
        self.problem = problem
        self.observe(problem.observation.to(device), problem.mask.to(device) if problem.mask is not None else None)
        self.ref = problem.reference.to(device) if problem.reference is not None else None
        self.history = History()

    def step(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One forward pass: (loss, A(x) per member, the canvas output); the loop runs the backward pass."""
        self.opt.zero_grad(set_to_none=True)
        zin = self.prior.perturb(self.z) if self.z is not None else None
        with autocast(self.precision, self.device):
            out = self.members(zin)
        out = out.float()
        x = self.geo.to_image(out)  # the forward model sees the image it was prepared for, never the canvas
        pred = self.problem.forward(x)
        diff = pred - self.y
        if self.m is not None:
            diff = diff * self.m
        # each member's mean squared error; summed, so every member gets its own gradient
        if self.sure:
            loss = sure_loss(self.members, zin, out, diff, self.problem.sigma, crop=self.geo.to_image).sum()
        else:
            loss = diff.pow(2).mean(dim=(1, 2, 3)).sum()
        return self.penalised(loss, x), pred, out

    def _result(self, canvas: torch.Tensor) -> torch.Tensor:
        return self.geo.to_result(self.geo.to_image(canvas.mean(0, keepdim=True).clamp(0, 1)))

    def report(self, step: int, iterations: int, loss: torch.Tensor, o: torch.Tensor, start: float) -> Progress:
        """Read the loss and PSNRs from the device (a host sync) and add them to the history."""
        with torch.no_grad():
            lv = float(loss.item()) / self.k
            ps = pa = None
            if self.ref is not None:
                ps = float(psnr(self._result(o), self.ref).item())
                if self.avg is not None:
                    pa = float(psnr(self._result(self.avg), self.ref).item())
        elapsed = time.perf_counter() - start
        h = self.history
        h.iteration.append(step)
        h.loss.append(lv)
        h.psnr.append(ps)
        h.psnr_avg.append(pa)
        h.time.append(elapsed)
        if not math.isfinite(lv):
            raise nonfinite_loss(lv, step)
        return Progress(step, iterations, lv, ps, pa, elapsed)

    def run(self, iterations: int, report_every: int, callback: Callable[[Progress], Any] | None,
            stopper: Any, time_limit: float | None) -> FitResult:
        last = Progress(0, iterations, float("nan"))
        start = time.perf_counter()
        now: dict[str, Any] = {"out": None, "loss": None}  # the latest finished step's
        pending: list = []

        def forward(i: int) -> torch.Tensor:
            pending[:] = self.step()
            return pending[0]

        def update(i: int) -> None:
            loss, pred, out = pending
            now.update(out=out, loss=loss)
            collapsed = self.optimise(i, pred)
            with torch.no_grad():
                o = now["o"] = out.detach()
                self.average(o, collapsed)
                if stopper is not None:
                    avg = None if self.avg is None else self.avg.mean(0, keepdim=True)
                    stopper.update(o.mean(0, keepdim=True), i, avg)

        def report(i: int) -> None:
            nonlocal last
            last = self.report(i, iterations, now["loss"], now["o"], start)

        def progress(i: int) -> None:
            last.iteration = i
            last.elapsed = time.perf_counter() - start
            last.time_limit = time_limit
            callback(last)

        def stop(i: int, reporting: bool) -> str | None:
            return "rule" if reporting and stopper is not None and stopper.should_stop(i) else None

        ended = run_loop(forward, iterations, update=update, reporting=every(report_every, iterations, first=True),
                         report=report, progress=progress if callback is not None else None, stop=stop,
                         out_of_time=predicted_time_limit(time_limit, start, iterations))
        i, interrupted = ended.iteration, ended.interrupted
        iterations_run = i if not interrupted else max(0, i - 1)
        reported = self.history.iteration[-1] if self.history.iteration else 0
        if now["out"] is not None and reported != i and not interrupted:
            # the loop ended between reports (a stopping rule, the time limit): record where it ended,
            # so the history (and curves.png) reaches the output's iteration
            with contextlib.suppress(FloatingPointError):
                self.report(i, iterations, now["loss"], now["out"].detach(), start)
        result, kind, chosen = self.output(stopper, iterations_run)
        return FitResult(
            variance_minimum=stopper.chosen_iteration() if stopper is not None else None,
            output=result.clamp(0, 1).float().cpu(),
            iteration=chosen if chosen is not None else iterations_run,
            iterations_run=iterations_run,
            stopped_early=ended.reason in ("rule", "time limit"),
            history=self.history,
            interrupted=interrupted,
            backtracks=self.backtracker.total(),
            output_kind=kind,
            seconds=time.perf_counter() - start,
            stop_reason=ended.reason,
        )

    def output(self, stopper: Any, iterations_run: int) -> tuple[torch.Tensor, str, int | None]:
        """The fit's output (canvas-sized), what it is, and the iteration it is from."""
        chosen = stopper.chosen_iteration() if stopper is not None else None
        with torch.no_grad():
            if chosen is not None and self.avg is None:
                # ES-WMV's own choice: the iterate where the output variance was smallest
                return stopper.best_output, "last", chosen
            if chosen is not None:
                # with averaging, the rule decides *when* to stop and the average is the output:
                # the average lags the iterates, and at the variance minimum it is still blurred
                # (measured: docs/benchmarks.md), so it is taken where the fit stopped
                return self.avg.mean(0, keepdim=True), "ema", iterations_run
            if self.avg is not None:
                return self.avg.mean(0, keepdim=True), "ema", None
            # the unperturbed code, as the authors show their final output
            return self.unperturbed().mean(0, keepdim=True), "last", None


#: the name tests and older code use
_Backtracker = Backtracker
