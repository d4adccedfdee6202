"""Device choice: what ``--device`` means, for every command that has it (run, batch, compare, train).

:func:`pick_device` turns the option's text into a torch device (``auto``: CUDA, then Apple MPS,
then the CPU) or a one-line :class:`~restorekit.errors.UsageError`; :func:`may_use_cuda` says,
without importing torch, whether a run given that text can land on a CUDA GPU (batch sizes its
pool with it); :func:`cpu_has_native_bf16` whether this CPU runs bfloat16 natively (where
``auto`` precision and ``--prior auto`` pick bf16).
"""

from __future__ import annotations

from ..errors import UsageError

__all__ = ["pick_device", "may_use_cuda", "cpu_has_native_bf16"]


def pick_device(name: str = "auto"):
    """``auto`` picks CUDA, then Apple MPS, then the CPU."""
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} asked for, but CUDA is not available here; use --device cpu or auto")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UsageError(f"device {name!r} does not exist (this machine has {torch.cuda.device_count()} GPU(s))")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError("device 'mps' asked for, but Apple MPS is not available here; use --device cpu or auto")
    return dev


def may_use_cuda(name: str) -> bool:
    """Whether ``--device name`` can put the work on a CUDA GPU (``auto``, ``cuda``, ``cuda:N``), told
    from the text alone: torch is not imported."""
    return name in ("auto", "cuda") or name.startswith("cuda")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bfloat16 instructions (x86 AVX512-BF16 or AMX; read from /proc/cpuinfo on Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False
