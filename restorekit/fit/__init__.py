"""The fitting loop: one gradient-descent loop for every per-image optimisation in restorekit.

Every fit that optimises something for one image (or a stack of images) drives
:func:`run_loop`: a network prior's restoration (:func:`restorekit.run.engine.fit`),
K of them stacked (:func:`restorekit.run.multi.fit_many`), the coupled priors of
Double-DIP (:mod:`restorekit.segment.doubledip`), the clustering CNN
(:mod:`restorekit.segment.clustering`), and feature inversion / activation
maximisation (:mod:`restorekit.inspect.optimize`).  (Training on a data set is
another loop: :mod:`restorekit.learn`.)

The loop owns the order of a step and how a fit ends; the fit supplies hooks::

    for i in 1..iterations:
        loss = forward(i)          # zero the gradients, compute the loss
        backward pass of loss      # the loop's own, the one of a step
        update(i)                  # optimiser step, backtracking, averaging, projections
        if reporting(i): report(i) # history: values read from the device only here
        progress(i)                # the progress callback
        stop(i, reporting) -> why  # a stopping rule ends the loop with its reason
        out_of_time(i) -> True     # the time limit ends it with "time limit"
        after(i)                   # the step's last word
    Ctrl-C (KeyboardInterrupt)     # ends it with "interrupted"

Every hook is optional but ``forward``.  :func:`run_loop` returns :class:`Ended` (the last step
begun and why the loop stopped); what the fit returns (the best iterate, the average, the last
output) is the fit's own choice.  Helpers for the usual hooks:

* :func:`every`: the reporting schedule (every n steps, the last, optionally the first);
* :func:`predicted_time_limit`: stop before a step that would end past the limit (judged by the
  mean step time so far); a :class:`~restorekit.components.Budget`'s ``out_of_time`` is the other
  kind (stop once past it);
* :class:`ExponentialAverage`: the EMA of the outputs (a fit's ``update`` feeds it).

Interruption: SIGINT and SIGTERM inside :func:`restorekit.session.signals.run_signals` raise
``KeyboardInterrupt``, so ``kill`` ends a fit as Ctrl-C does, and the fit returns what it has.

Nothing here draws random numbers or reads the device: a fit driven by the loop consumes its
generators exactly as its hooks do, in the order above.
"""

from .loop import Ended, ExponentialAverage, every, predicted_time_limit, run_loop

__all__ = ["Ended", "ExponentialAverage", "every", "predicted_time_limit", "run_loop"]
