"""What a batch checks before anything is written, for ``restorekit batch`` and :func:`restorekit.batch`.

The inputs, where their outputs go, every side input, and the options (on
the first image's specs, patterns filled in) are checked here; only then
does the caller pick an executor, take the lock and open the manifest.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .inputs import Item


def check_batch(in_src: str, out_dir: Path, *, degrade: list[str], prior: list[str], net: str | None,
                reference: str | None, include: list[str], exclude: list[str], options: dict[str, Any],
                registry: Any, resume: bool, share: tuple[int, int] | None = None) -> list[Item]:
    """The batch's items, once everything checkable is checked (:class:`UsageError`, one line); ``share``
    (K, N): only the K-th of N shares of the sorted inputs (``--shard K/N``)."""
    from ..run.plan import make_plan
    from ..run.settings import make_settings
    from ..spec import parse_spec
    from .inputs import discover, make_items, take_share
    from .manifest import check_can_start

    root, found = discover([in_src], include=include, exclude=exclude)
    if share is not None:
        total = len(found)
        found = take_share(found, *share)
        if not found:
            raise UsageError(f"--shard {share[0]}/{share[1]}: that share of the {total} input(s) is empty "
                             f"(use at most {total} shares)")
    out_dir = Path(out_dir)
    real_out = Path(os.path.realpath(out_dir))
    if is_listed(in_src):
        # a list may name files anywhere (``ls *.png | restorekit batch - out``): none may be in OUT
        inside = next((p for _, p in found if real_out in Path(os.path.realpath(p)).parents), None)
        if inside is not None:
            raise UsageError(f"the input '{inside}' is inside the output folder '{out_dir}'; choose another one")
    else:
        real_in = Path(os.path.realpath(root))
        if real_out == real_in or real_in in real_out.parents or real_out in real_in.parents:
            raise UsageError(f"the output folder '{out_dir}' and the input '{in_src}' must not contain each other")
    for text in (*degrade, *prior, *([net] if net else [])):
        parse_spec(text)  # a syntax error is the user's, whatever the image
    items = make_items(root, found, out_dir, degrade=degrade, prior=prior, net=net, reference=reference)
    first = items[0]
    # the components valid together, the loop's options valid for them: the first image's plan
    make_plan(make_settings(registry, image=first.input, degrade=first.degrade, prior=first.prior,
                            net=first.net, reference=first.reference,
                            **{k: v for k, v in options.items() if v is not None and k not in NOT_SETTINGS}), registry)
    check_can_start(out_dir, resume, items)  # and no file it did not write in the way of its results
    return items


#: batch options that are not a run's settings (how the batch writes and which share it takes)
NOT_SETTINGS = ("save", "shard")


def starts_fresh(out_dir: Path, resume: bool) -> bool:
    """Whether a ``--resume`` finds no batch in ``out_dir`` and so starts one (one command for every run of
    a job script)."""
    from .manifest import MANIFEST_NAME

    return resume and not (Path(out_dir) / MANIFEST_NAME).exists()


def is_listed(in_src: str) -> bool:
    """Whether the input is a list of paths (``-`` for stdin, ``@FILE``) rather than a folder."""
    return in_src == "-" or in_src.startswith("@")


def recorded_settings(in_src: str, *, degrade: list[str], prior: list[str], net: str | None, reference: str | None,
                      include: list[str], exclude: list[str], options: dict[str, Any]) -> dict[str, Any]:
    """What the manifest records of the batch (a ``--resume`` must match it); the input as an absolute path,
    so that a resume from another folder is the same batch."""
    source = in_src if in_src == "-" else ("@" + os.path.abspath(in_src[1:]) if is_listed(in_src)
                                           else os.path.abspath(in_src))
    return {"input": source, "degrade": degrade, "prior": prior, "net": net, "reference": reference,
            "include": include, "exclude": exclude, **{k: v for k, v in options.items() if k != "device"}}


def make_executor(workers: int, threads: int | None = None, *, dask: bool = False, scheduler: str | None = None):
    """Where the items run: this process (one worker), a local process pool (a GPU each where there are
    GPUs), or a Dask cluster (``dask``: a LocalCluster of ``workers``; ``scheduler``: that cluster's)."""
    from . import executors

    if scheduler or dask:
        return executors.DaskExecutor(workers=workers, scheduler=scheduler, threads=threads)
    if workers == 1:
        return executors.InProcess(threads)
    return executors.LocalPool(workers, threads, gpus=executors.local_gpus())


def lock_batch(out_dir: Path, executor: Any):
    """``out_dir`` created and its :class:`~restorekit.batch.manifest.BatchLock` taken, once the executor
    has started; where either fails (:class:`UsageError`, one line) the executor is closed, its queue
    cancelled, so that nothing is left running.  The caller releases the lock."""
    from .manifest import BatchLock

    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        close_executor(executor, cancel=True)
        raise UsageError(f"cannot create the output folder '{out_dir}': {exc.strerror or exc}") from None
    try:
        return BatchLock(out_dir)  # another batch running in out_dir: UsageError
    except BaseException:
        close_executor(executor, cancel=True)
        raise


def close_executor(executor: Any, cancel: bool = False) -> None:
    """Close an executor; ``cancel`` drops queued items where the executor can (the in-process one has
    nothing queued, and its close() takes no argument)."""
    import inspect

    try:
        takes_cancel = "cancel" in inspect.signature(executor.close).parameters
    except (TypeError, ValueError):
        takes_cancel = False
    if cancel and takes_cancel:
        executor.close(cancel=True)
    else:
        executor.close()
