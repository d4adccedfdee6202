"""Ground-truth-free stopping rules for the optimisation loop.

DIP fits the noise if it runs long enough; these rules pick the iteration
to keep without the clean image (REFERENCE.md section 5):

* ``eswmv`` — ES-WMV (Wang et al., TMLR 2023): the variance of the last
  ``window`` outputs, ``VAR_t = mean_i ||x_i - mean(x)||^2``; its minimum is
  tracked, and the fit stops once it has not improved for ``patience``
  iterations.  The output kept is the one at the minimum.  The window's
  sums are kept running (O(1) work per step; the ``window`` outputs are
  still held, 100 x the image in memory by default).
* ``esemv`` — the exponential variant: a running mean and variance with
  weight ``alpha`` and O(1) memory.

Everything stays on the device: :meth:`update` runs every iteration without
a host synchronisation; :meth:`should_stop` reads one number and is called
only on reporting iterations (so a fit may run up to ``report_every`` steps
past the patience).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from .components import Component, Params
from .errors import SpecError
from .spec import parse_spec


class StoppingRule(Component):
    """Base class: tracks the best iteration by a ground-truth-free criterion."""

    kind: ClassVar[str] = "stopping rule"

    def __init__(self, params=None, **kw):
        super().__init__(params, **kw)
        self.reset()

    def reset(self) -> None:
        self.best_output = None
        self.best_average = None
        self._best_score = None
        self._best_it = None

    def update(self, x, iteration: int, average=None) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def should_stop(self, iteration: int) -> bool:
        if self._best_it is None:
            return False
        return iteration - int(self._best_it.item()) >= self.params.patience

    def chosen_iteration(self) -> int | None:
        return None if self._best_it is None else int(self._best_it.item())

    def _track(self, score, x, iteration: int, average) -> None:
        import torch

        if self._best_score is None:
            self._best_score = score.detach().clone()
            self._best_it = torch.tensor(iteration, device=x.device)
            self.best_output = x.detach().clone()
            self.best_average = None if average is None else average.detach().clone()
            return
        better = score < self._best_score
        self._best_score = torch.where(better, score, self._best_score)
        self._best_it = torch.where(better, torch.tensor(iteration, device=x.device), self._best_it)
        self.best_output = torch.where(better, x, self.best_output)
        if average is not None:
            self.best_average = torch.where(better, average, self.best_average)


class WindowedVariance(StoppingRule):
    name = "eswmv"
    summary = "ES-WMV: stop when the variance of the last W outputs stops decreasing."
    primary = "patience"

    class Params(Params):
        patience: int = Field(1000, ge=1, description="iterations without a new minimum before stopping")
        window: int = Field(100, ge=2, le=10000, description="outputs in the variance window")

    def reset(self):
        super().reset()
        self._buf = None
        self._sum = None
        self._sq = None
        self._n = 0

    def update(self, x, iteration, average=None):
        import torch

        w = self.params.window
        x = x.detach()
        if self._buf is None:
            self._buf = torch.empty((w,) + tuple(x.shape), dtype=x.dtype, device=x.device)
            self._sum = torch.zeros_like(x)
            self._sq = torch.zeros_like(x)
        slot = self._n % w
        if self._n >= w:  # the oldest output leaves the window
            old = self._buf[slot]
            self._sum.sub_(old)
            self._sq.sub_(old * old)
        self._buf[slot].copy_(x)
        self._sum.add_(x)
        self._sq.add_(x * x)
        self._n += 1
        if self._n < w:
            return
        if slot == w - 1:
            # once per window, recompute the sums exactly so float32 rounding cannot drift
            torch.sum(self._buf, dim=0, out=self._sum)
            torch.sum(self._buf * self._buf, dim=0, out=self._sq)
        mean = self._sum / w
        # per-pixel variance over the window, averaged over pixels (O(1) per step, not O(window))
        var = (self._sq / w - mean * mean).clamp_min(0).mean()
        self._track(var, x, iteration, average)


class ExponentialVariance(StoppingRule):
    name = "esemv"
    summary = "ES-EMV: stop when an exponentially weighted output variance stops decreasing."
    primary = "patience"

    class Params(Params):
        patience: int = Field(1000, ge=1, description="iterations without a new minimum before stopping")
        alpha: float = Field(0.1, gt=0, lt=1, description="weight of the newest output")
        burn_in: int = Field(100, ge=1, description="iterations before the minimum is tracked")

    def reset(self):
        super().reset()
        self._mean = None
        self._var = None
        self._n = 0

    def update(self, x, iteration, average=None):
        import torch

        a = self.params.alpha
        x = x.detach()
        self._n += 1
        if self._mean is None:
            self._mean = x.clone()
            self._var = torch.zeros((), dtype=x.dtype, device=x.device)
            return
        delta = x - self._mean
        self._mean.add_(delta, alpha=a)
        self._var = (1 - a) * (self._var + a * delta.pow(2).mean())
        if self._n >= self.params.burn_in:
            self._track(self._var, x, iteration, average)


RULES: dict[str, type[StoppingRule]] = {"eswmv": WindowedVariance, "esemv": ExponentialVariance}


def make_stopping_rule(spec: str | None) -> StoppingRule | None:
    """``None``/``"none"`` -> no rule; else a rule from ``name[:value|:k=v,...]``."""
    if spec is None:
        return None
    parsed = parse_spec(spec)
    if parsed.name == "none" and not parsed.params and parsed.positional is None:
        return None
    cls = RULES.get(parsed.name)
    if cls is None:
        from .suggest import did_you_mean

        hint = did_you_mean(parsed.name, list(RULES) + ["none"])
        raise SpecError(f"unknown stopping rule '{parsed.name}'{hint} (valid: {', '.join(RULES)}, none)")
    return cls.from_spec(parsed)


def describe_rules() -> list[dict[str, Any]]:
    return [cls.describe() for cls in RULES.values()]
