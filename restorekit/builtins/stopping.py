"""Built-in stopping rules: ground-truth-free stopping for the optimisation loop.

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

from pydantic import Field

from restorekit import Params, StoppingRule, hookimpl


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


@hookimpl
def restorekit_register_stopping_rules(registry):
    for cls in (WindowedVariance, ExponentialVariance):
        registry.add(cls)
