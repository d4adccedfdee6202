"""The one training loop: every network restorekit trains is fitted here.

Three callers use it: ``restorekit train`` (:mod:`restorekit.learn.train`, an
image-to-image network over epochs, with validation, checkpoints and
``--resume``), the built-in ``faces`` classifier
(:mod:`restorekit.inspect.faces`, 300 full-batch steps on first use) and the
noise-level network (:mod:`restorekit.noise.level`, trained once by its own
command; its weights are shipped).

One step, in this order (the order is part of the result: a resumed training
repeats it exactly, so keep it):

1. **time limit** -- when ``time_limit`` seconds have passed since
   ``started`` (a resumed training passes a start moved back by the seconds
   it already ran), the loop stops before drawing, ``stopped_by`` "time limit";
2. **batch** -- ``batch()`` returns ``(inputs, target)``: a tuple of the
   network's arguments and what its output is compared with.  The caller's
   function draws the examples (and consumes its random generator), so the
   loop itself uses no randomness;
3. **loss** -- the gradients are cleared, ``forward(*inputs)`` runs the
   network (``forward`` defaults to the network itself; train's pads the
   images to the network's stride), under bfloat16 autocast when ``autocast``
   names a device type ("cpu", "cuda"), and ``loss(output, target)`` is
   computed outside autocast;
4. **optimiser step** -- ``loss.backward()``, ``opt.step()``, then the
   learning-rate ``schedule.step()`` when there is one (:func:`cosine` is
   train's: a cosine from the start rate down to 1/100 of it over ``total``
   steps);
5. **a finite loss** -- a loss that became NaN or infinite raises
   :class:`NonFiniteLoss` (the caller says what to change);
6. **hooks** -- every ``epoch`` steps, and after the last one,
   ``on_epoch(epoch, step, loss)``: where train scores the validation images
   and writes the best model and the checkpoint.  Then ``on_step(step,
   loss)`` after every step (train's progress bar).

With ``interruptible``, Ctrl-C (or SIGTERM turned into KeyboardInterrupt by
:mod:`restorekit.session.signals`) ends the loop with ``stopped_by``
"interrupted": the steps since the last ``on_epoch`` are the caller's to
drop (train's ``--resume`` continues from its last checkpoint).  Without it
the interrupt goes on up to the caller.

The network is put in training mode before the first step; the hooks may
switch it to evaluation mode and back.  :func:`fit` returns the step reached,
the last loss and why it stopped (``None``: all ``total`` steps ran).
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["fit", "Outcome", "NonFiniteLoss", "cosine"]


class NonFiniteLoss(ArithmeticError):
    """The loss became NaN or infinite (``value``) at ``step``."""

    def __init__(self, value: float, step: int) -> None:
        super().__init__(f"the training loss became {value} at step {step}")
        self.value, self.step = value, step


@dataclass
class Outcome:
    step: int  #: the steps run in all (``start`` included)
    loss: float  #: the last step's loss (``last_loss`` when none ran)
    stopped_by: str | None  #: None (every step ran), "time limit" or "interrupted"


def cosine(opt: Any, total: int):
    """The learning rate decays on a cosine from its start to 1/100 of it at step ``total``, then stays."""
    import torch

    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(k, total) / total)))


def fit(net: Any, opt: Any, batch: Callable[[], tuple[tuple, Any]], loss: Callable[[Any, Any], Any], *,
        total: int, forward: Callable[..., Any] | None = None, start: int = 0, schedule: Any = None, autocast: str | None = None,
        epoch: int | None = None, on_epoch: Callable[[int, int, float], Any] | None = None,
        on_step: Callable[[int, float], Any] | None = None, time_limit: float | None = None,
        started: float | None = None, interruptible: bool = False,
        last_loss: float = float("nan")) -> Outcome:
    """Run steps ``start+1 .. total`` (see the module docstring for one step, its hooks and its stops)."""
    import torch

    forward = net if forward is None else forward
    started = time.perf_counter() if started is None else started
    step, loss_v, stopped = start, last_loss, None
    net.train()
    try:
        while step < total:
            if time_limit is not None and time.perf_counter() - started > time_limit:
                stopped = "time limit"
                break
            inputs, target = batch()
            opt.zero_grad(set_to_none=True)
            with nullcontext() if autocast is None else torch.autocast(autocast, dtype=torch.bfloat16):
                out = forward(*inputs)
            value = loss(out, target)
            value.backward()
            opt.step()
            if schedule is not None:
                schedule.step()
            step += 1
            loss_v = float(value.detach())
            if not math.isfinite(loss_v):
                raise NonFiniteLoss(loss_v, step)
            if on_epoch is not None and epoch and (step % epoch == 0 or step == total):
                on_epoch(math.ceil(step / epoch), step, loss_v)
            if on_step is not None:
                on_step(step, loss_v)
    except KeyboardInterrupt:
        if not interruptible:
            raise
        stopped = "interrupted"
    return Outcome(step, loss_v, stopped)
