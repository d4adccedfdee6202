"""The one fitting loop (restorekit/fit): the order of a step's hooks and how a loop ends."""

from __future__ import annotations

import torch

from restorekit.fit import ExponentialAverage, every, predicted_time_limit, run_loop


class _Loss:
    def __init__(self, calls: list, i: int) -> None:
        self.calls, self.i = calls, i

    def backward(self) -> None:
        self.calls.append(("backward", self.i))


def _hooks(calls: list, stop_at: int | None = None, interrupt_at: int | None = None, late_at: int | None = None):
    def forward(i):
        if i == interrupt_at:
            raise KeyboardInterrupt
        calls.append(("forward", i))
        return _Loss(calls, i)

    return dict(
        forward=forward,
        update=lambda i: calls.append(("update", i)),
        reporting=every(2, 5, first=True),
        report=lambda i: calls.append(("report", i)),
        progress=lambda i: calls.append(("progress", i)),
        stop=lambda i, due: "rule" if i == stop_at else None,
        out_of_time=lambda i: i == late_at,
        after=lambda i: calls.append(("after", i)),
    )


def test_a_step_calls_its_hooks_in_order():
    calls: list = []
    ended = run_loop(iterations=2, **_hooks(calls))
    assert (ended.iteration, ended.reason, ended.interrupted) == (2, "iterations", False)
    assert calls == [("forward", 1), ("backward", 1), ("update", 1), ("report", 1), ("progress", 1), ("after", 1),
                     ("forward", 2), ("backward", 2), ("update", 2), ("report", 2), ("progress", 2), ("after", 2)]


def test_stop_time_limit_and_ctrl_c_end_the_loop():
    calls: list = []
    assert (run_loop(iterations=5, **_hooks(calls, stop_at=3)).iteration, calls[-1]) == (3, ("progress", 3))
    ended = run_loop(iterations=5, **_hooks([], late_at=4))
    assert (ended.iteration, ended.reason) == (4, "time limit")
    ended = run_loop(iterations=5, **_hooks([], interrupt_at=2))
    assert (ended.iteration, ended.reason, ended.interrupted) == (2, "interrupted", True)
    assert run_loop(lambda i: None, 0).reason == "iterations"


def test_schedule_time_limit_and_average():
    due = every(3, 7)
    assert [i for i in range(1, 8) if due(i)] == [3, 6, 7]
    assert predicted_time_limit(None, 0.0, 5) is None
    late = predicted_time_limit(0.0, 0.0, 5)
    assert late(1) and not late(5)  # never after the last step
    ema = ExponentialAverage(0.5)
    ema.update(torch.ones(2))
    ema.update(torch.zeros(2), keep=torch.tensor([True, False]))
    assert ema.value.tolist() == [1.0, 0.5]
    off = ExponentialAverage(0.0)
    off.update(torch.ones(1))
    assert off.value is None
