"""Fit K problems of the same size in one stacked optimisation (``restorekit batch --stack K``).

:func:`fit_many` is :func:`~.engine.fit` for K images at once: member j has
its own network (parameters stacked with ``torch.func``, as the batched
ensemble does), fits problem j's observation through problem j's forward
model and mask, and has its own stopping rule, average and backtracking.
Member j's result is problem j's fit alone up to floating-point rounding
(the stacked convolutions sum in another order); with K = 1 it is
bit-identical to :func:`~.engine.fit`.

What keeps the members apart:

* randomness: each member replays the random stream its fit alone would
  draw (the input jitter, the SURE probe): the global generator's state is
  swapped in per member around each draw;
* the loss: the members' losses are summed, so each member's gradient is
  its own; Adam is elementwise, so one optimiser over the stacked
  parameters is K optimisers;
* stopping: a member whose rule fires (checked on reporting iterations, as
  in a fit alone) is finished at once: its output is taken there and its
  slice leaves the stack (parameters, optimiser state, average, input
  code, backtracking checkpoint), so it never changes again and the
  members left do not pay for it.  The loop ends when every member has
  finished or the iterations run out.  A member whose loss stops being
  finite fails alone (:attr:`MemberResult.error`); the others go on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..components import Generator, LoopOptions, Prior, Problem
from ..fit import every, predicted_time_limit, run_loop
from .engine import (
    SURE_EPSILON, FitResult, History, MemberFit, autocast, build_members, check_options, nonfinite_loss, psnr,
    sure_loss,
)
from .settings import PRECISIONS


@dataclass
class MemberResult(FitResult):
    """One member's :class:`~.engine.FitResult`; ``error`` set (and ``output`` None) when its loss
    stopped being finite, with the message :func:`~.engine.fit` would have raised alone."""

    error: str | None = None


def fit_many(
    problems: Sequence[Problem],
    *,
    generator: Generator,
    network_prior: Prior | None,
    penalties: Sequence[Prior],
    iterations: int,
    lr: float,
    seeds: Sequence[int],
    device: torch.device,
    report_every: int = 10,
    stoppers: Sequence[Any] | None = None,
    precision: str = "fp32",
    time_limit: float | None = None,
) -> list[MemberResult]:
    """Fit each of ``problems`` as :func:`~.engine.fit` would, all in one stacked optimisation.

    The problems must have the same observation shape and geometry (canvas);
    their forward models, masks, observations and references are their own.
    ``seeds[j]`` seeds member j as ``seed`` seeds a fit alone; ``stoppers[j]``
    is member j's stopping rule (one instance per member, or None).
    ``time_limit`` is the group's: every member still running stops before
    a step that would end past it.  Returns one :class:`MemberResult` per
    problem, in order; ``seconds`` is the time from the start to when that
    member finished.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    problems = list(problems)
    if not problems:
        raise ValueError("fit_many needs at least one problem")
    if len(seeds) != len(problems):
        raise ValueError(f"{len(problems)} problems but {len(seeds)} seeds")
    rules = list(stoppers) if stoppers is not None else [None] * len(problems)
    if len(rules) != len(problems):
        raise ValueError(f"{len(problems)} problems but {len(rules)} stopping rules")
    given = [r for r in rules if r is not None]
    if len({id(r) for r in given}) != len(given):
        raise ValueError("each member needs its own stopping rule instance")
    first = problems[0]
    for p in problems[1:]:
        if p.geometry != first.geometry or tuple(p.observation.shape) != tuple(first.observation.shape):
            raise ValueError("stacked problems must have the same observation shape and canvas")
    loop = _Stack(problems, generator, network_prior, penalties, list(seeds), rules, lr, device, precision)
    return loop.run(iterations, report_every, time_limit)


def _rng_state(device: torch.device) -> torch.Tensor:
    """The state of the generator that random draws on ``device`` use."""
    if device.type == "cuda":
        return torch.cuda.get_rng_state(device)
    if device.type == "mps":
        return torch.mps.get_rng_state()
    return torch.get_rng_state()


def _set_rng_state(device: torch.device, state: torch.Tensor) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    elif device.type == "mps":
        torch.mps.set_rng_state(state)
    else:
        torch.set_rng_state(state)


class _Stack(MemberFit):
    """The loop of :func:`fit_many`: :class:`~.engine.MemberFit`'s averaging and backtracking over
    K problems, with a slot per member still running (``ids[slot]`` is its problem's index)."""

    def __init__(self, problems: list[Problem], generator: Generator, network_prior: Prior | None,
                 penalties: Sequence[Prior], seeds: list[int], stoppers: list[Any], lr: float,
                 device: torch.device, precision: str) -> None:
        options = network_prior.loop_options() if network_prior is not None else LoopOptions()
        check_options(options, problems, precision)
        geo = problems[0].geometry
        # each member's network and input code as its fit alone builds them, and the random state its fit
        # alone would go on from
        members, z, self.rng = build_members(generator, network_prior, geo,
                                             [geo.pad_to_canvas(p.init) for p in problems], seeds, device,
                                             after=lambda: _rng_state(device))
        super().__init__(network_prior, penalties, problems, members, z, lr, device, precision, options)
        self.problems, self.problem = problems, problems[0]
        self.stoppers = stoppers
        #: with one member from the start the global random stream is left alone, exactly as in fit()
        self.swap = self.k > 1
        self.ids = list(range(self.k))
        y = torch.cat([p.observation for p in problems]).to(device)
        if any(p.mask is not None for p in problems):
            ones = torch.ones((1, 1) + tuple(problems[0].observation.shape[-2:]))
            m = torch.cat([ones if p.mask is None else p.mask for p in problems]).to(device)
        else:
            m = None
        self.observe(y, m)
        self.refs = [None if p.reference is None else p.reference.to(device) for p in problems]
        self.histories = [History() for _ in problems]
        self.backtracks = torch.zeros(self.k, dtype=torch.long, device=device)
        self.results: list[MemberResult | None] = [None] * self.k
        self.start = time.perf_counter()

    # -- one step ------------------------------------------------------------------------------
    def _inputs(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The jittered input codes and (SURE) probes, each member's drawn from its own stream."""
        if self.z is None or not self.swap:
            return (None if self.z is None else self.prior.perturb(self.z)), None
        zs, probes = [], []
        for s in range(self.k):
            _set_rng_state(self.device, self.rng[s])
            zj = self.prior.perturb(self.z[s : s + 1])
            zs.append(zj)
            if self.sure:  # drawn right after the jitter, as sure_loss does in a fit alone
                probes.append(torch.randn_like(zj))
            self.rng[s] = _rng_state(self.device)
        return torch.cat(zs), (torch.cat(probes) if self.sure else None)

    def _sure(self, zin: torch.Tensor, probes: torch.Tensor, out: torch.Tensor, diff: torch.Tensor) -> torch.Tensor:
        """:func:`~.engine.sure_loss` with each member's own probe and noise level."""
        crop = self.geo.to_image
        out_b = self.members(zin + SURE_EPSILON * probes).float()
        div = (crop(probes) * (crop(out_b) - crop(out))).mean(dim=(1, 2, 3)) / SURE_EPSILON
        s2 = torch.tensor([self.problems[j].sigma ** 2 for j in self.ids], dtype=diff.dtype, device=diff.device)
        return diff.pow(2).mean(dim=(1, 2, 3)) - s2 + 2 * s2 * div

    def step(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One forward pass: (the loss to differentiate, each member's loss, A(x) per member, the canvas
        outputs); the loop runs the backward pass."""
        self.opt.zero_grad(set_to_none=True)
        zin, probes = self._inputs()
        with autocast(self.precision, self.device):
            out = self.members(zin)
        out = out.float()
        x = self.geo.to_image(out)
        if self.swap:
            pred = torch.cat([self.problems[j].forward(x[s : s + 1]) for s, j in enumerate(self.ids)])
        else:
            pred = self.problem.forward(x)
        diff = pred - self.y
        if self.m is not None:
            diff = diff * self.m
        if self.sure:
            per = (self._sure(zin, probes, out, diff) if self.swap else
                   sure_loss(self.members, zin, out, diff, self.problem.sigma, crop=self.geo.to_image))
        else:
            per = diff.pow(2).mean(dim=(1, 2, 3))
        losses = per.detach().clone()
        loss = self.penalised(per.sum(), x, losses)
        return loss, losses, pred, out

    def report(self, step: int, losses: torch.Tensor, o: torch.Tensor) -> dict[int, str]:
        """Each running member's loss and PSNRs into its history (one host sync); returns the slots
        whose loss is not finite, with the error a fit alone would raise."""
        with torch.no_grad():
            values, where = [losses], []
            for s, j in enumerate(self.ids):
                ref = self.refs[j]
                if ref is None:
                    continue
                values.append(psnr(self._member_output(o, s), ref).reshape(1))
                where.append((s, "psnr"))
                if self.avg is not None:
                    values.append(psnr(self._member_output(self.avg, s), ref).reshape(1))
                    where.append((s, "psnr_avg"))
            read = torch.cat(values).tolist()
        elapsed = time.perf_counter() - self.start
        found: dict[tuple[int, str], float] = {key: v for key, v in zip(where, read[self.k :])}
        bad: dict[int, str] = {}
        for s, j in enumerate(self.ids):
            lv = read[s]
            h = self.histories[j]
            h.iteration.append(step)
            h.loss.append(lv)
            h.psnr.append(found.get((s, "psnr")))
            h.psnr_avg.append(found.get((s, "psnr_avg")))
            h.time.append(elapsed)
            if not math.isfinite(lv):
                bad[s] = str(nonfinite_loss(lv, step))
        return bad

    def _member_output(self, canvas: torch.Tensor, s: int) -> torch.Tensor:
        """Slot ``s``'s image at the result's size (as a fit of one member takes its result)."""
        return self.geo.to_result(self.geo.to_image(canvas[s : s + 1].mean(0, keepdim=True).clamp(0, 1)))

    # -- the loop ------------------------------------------------------------------------------
    def run(self, iterations: int, report_every: int, time_limit: float | None) -> list[MemberResult]:
        """Drive :func:`restorekit.fit.run_loop`; a member's rule or non-finite loss finishes it alone."""
        self.start = time.perf_counter()
        now: dict[str, Any] = {"out": None, "losses": None}  # the latest finished step's
        pending: list = []
        finished: dict[int, str] = {}  # the slots finished in this step

        def forward(i: int) -> torch.Tensor:
            pending[:] = self.step()
            return pending[0]

        def update(i: int) -> None:
            _, losses, pred, out = pending
            now.update(out=out, losses=losses)
            collapsed = self.optimise(i, pred)
            if collapsed is not None:
                self.backtracks += collapsed.long()
            with torch.no_grad():
                o = now["o"] = out.detach()
                self.average(o, collapsed)
                for s, j in enumerate(self.ids):
                    rule = self.stoppers[j]
                    if rule is not None:
                        avg = None if self.avg is None else self.avg[s : s + 1].mean(0, keepdim=True)
                        rule.update(o[s : s + 1].mean(0, keepdim=True), i, avg)
            finished.clear()

        def report(i: int) -> None:
            for s, message in self.report(i, now["losses"], now["o"]).items():
                self._fail(s, message, i)
                finished[s] = "error"

        def stop(i: int, reporting: bool) -> str | None:
            if reporting:
                for s, j in enumerate(self.ids):
                    rule = self.stoppers[j]
                    if s not in finished and rule is not None and rule.should_stop(i):
                        self._finish(s, i, "rule", now["o"], now["losses"])
                        finished[s] = "rule"
            return "finished" if len(finished) == self.k else None

        def after(i: int) -> None:
            if finished:
                self._drop(sorted(finished))

        ended = run_loop(forward, iterations, update=update, reporting=every(report_every, iterations, first=True),
                         report=report, stop=stop, after=after,
                         out_of_time=predicted_time_limit(time_limit, self.start, iterations))
        i, out, losses = ended.iteration, now["out"], now["losses"]
        if ended.interrupted:
            self._finish_all(max(0, i - 1), "interrupted", out, losses, {}, interrupted=True)
        elif ended.reason == "time limit":
            self._finish_all(i, "time limit", out, losses, finished)
        elif any(r is None for r in self.results):
            self._finish_all(i, "iterations", out, losses, {})
        return [r for r in self.results if r is not None]

    def _finish_all(self, i: int, reason: str, out: torch.Tensor | None, losses: torch.Tensor | None,
                    finished: dict[int, str], interrupted: bool = False) -> None:
        """Finish every member still running (the loop ended for all of them)."""
        left = [s for s in range(self.k) if s not in finished and self.results[self.ids[s]] is None]
        if not left:
            return
        last = None
        if any(self.stoppers[self.ids[s]] is None or self.stoppers[self.ids[s]].chosen_iteration() is None
               for s in left) and self.avg is None and out is not None:
            # the unperturbed code, as the authors show their final output (computed once for all)
            with torch.no_grad():
                last = self.unperturbed()
        if out is not None and not interrupted:
            # the loop ended between reports (the time limit): record where it ended, so each history
            # (and curves.png) reaches the output's iteration; a non-finite loss there is only recorded
            if any((self.histories[self.ids[s]].iteration or [0])[-1] != i for s in left):
                self.report(i, losses, out.detach())
        for s in left:
            self._finish(s, i, reason, out, losses, last=last, interrupted=interrupted)

    def _finish(self, s: int, i: int, reason: str, out: torch.Tensor | None, losses: torch.Tensor | None,
                last: torch.Tensor | None = None, interrupted: bool = False) -> None:
        """Slot ``s``'s result, as :func:`~.engine.fit` makes a fit's."""
        j = self.ids[s]
        rule = self.stoppers[j]
        chosen = rule.chosen_iteration() if rule is not None else None
        with torch.no_grad():
            if chosen is not None and self.avg is None:
                result, kind = rule.best_output, "last"
            elif chosen is not None:
                result, kind, chosen = self.avg[s : s + 1].mean(0, keepdim=True), "ema", i
            elif self.avg is not None:
                result, kind = self.avg[s : s + 1].mean(0, keepdim=True), "ema"
            else:
                if last is None:
                    last = self.unperturbed()
                result, kind = last[s : s + 1].mean(0, keepdim=True), "last"
        self.results[j] = MemberResult(
            variance_minimum=rule.chosen_iteration() if rule is not None else None,
            output=result.clamp(0, 1).float().cpu(),
            iteration=chosen if chosen is not None else i,
            iterations_run=i,
            stopped_early=reason in ("rule", "time limit"),
            history=self.histories[j],
            interrupted=interrupted,
            backtracks=int(self.backtracks[s].item()),
            output_kind=kind,
            seconds=time.perf_counter() - self.start,
            stop_reason=reason,
        )

    def _fail(self, s: int, message: str, i: int) -> None:
        j = self.ids[s]
        self.results[j] = MemberResult(
            output=None, iteration=i, iterations_run=i, history=self.histories[j],
            backtracks=int(self.backtracks[s].item()), seconds=time.perf_counter() - self.start,
            stop_reason="error", error=message,
        )

    def _drop(self, slots: list[int]) -> None:
        """Take finished members out of the stack: every per-member tensor loses their slices."""
        keep = [s for s in range(self.k) if s not in slots]
        if not keep:
            return
        idx = torch.tensor(keep, device=self.device)
        old = self.members.params
        params = [p.detach().index_select(0, idx).requires_grad_(True) for p in old]
        opt = torch.optim.Adam(params, lr=self.lr)
        for p_old, p_new in zip(old, params):
            state = self.opt.state.get(p_old)
            if state:
                opt.state[p_new] = {
                    key: (v.index_select(0, idx) if v.dim() > 0 else v.clone()) if torch.is_tensor(v) else v
                    for key, v in state.items()
                }
        bt = self.backtracker
        saved = None if bt.saved is None else [t.index_select(0, idx) for t in bt.saved]
        last = None if bt.last is None else bt.last.index_select(0, idx)
        # every slice computed: now swap them in
        self.members.params = params
        self.opt = opt
        bt.params, bt.k, bt.saved, bt.last = params, len(keep), saved, last
        self.z = None if self.z is None else self.z.index_select(0, idx)
        self.y = self.y.index_select(0, idx)
        self.m = None if self.m is None else self.m.index_select(0, idx)
        self.ym = self.ym.index_select(0, idx)
        self.ema.value = None if self.avg is None else self.avg.index_select(0, idx)
        self.backtracks = self.backtracks.index_select(0, idx)
        self.rng = [self.rng[s] for s in keep]
        self.ids = [self.ids[s] for s in keep]
        self.k = len(keep)
