"""Write a run's outputs: images, run.json and pictures, all or nothing.

Everything goes into a hidden temporary folder beside the target, which is
renamed into place only when complete; an existing result is replaced only
with ``overwrite`` (the old folder is moved aside first and removed after
the new one is in place).  A failure or Ctrl-C while writing leaves no
partial output.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import RestoreError, UsageError
from .io import output_suffix, to_array, write_image


def default_out_dir(source_path: Path | None, root: Path = Path("runs")) -> Path:
    """``runs/<stem>-NNN``, the first number not taken."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", source_path.stem) if source_path else "default"
    n = 1
    while True:
        cand = root / f"{stem}-{n:03d}"
        if not cand.exists():
            return cand
        n += 1


def check_out_dir(out: Path, overwrite: bool) -> None:
    """Fail early (before any work) if ``out`` cannot take a result."""
    if out.exists():
        if not out.is_dir():
            raise UsageError(f"output path '{out}' exists and is not a folder; choose another --out")
        if any(out.iterdir()) and not overwrite:
            raise UsageError(f"output folder '{out}' already holds files; pass --overwrite or choose another --out")
    parent = out.resolve().parent
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write to '{out}': folder '{probe}' is not writable; choose another --out")


def _json_default(o: Any):
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def _clean_floats(o: Any) -> Any:
    """JSON has no inf/nan: write them as strings so run.json stays valid JSON."""
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    if isinstance(o, dict):
        return {k: _clean_floats(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean_floats(v) for v in o]
    return o


def record_json(record: dict[str, Any]) -> str:
    return json.dumps(_clean_floats(record), indent=2, default=_json_default, allow_nan=False) + "\n"


def _to_rgb(a: np.ndarray) -> np.ndarray:
    """(C, H, W) float -> (H, W, 3) for display."""
    a = np.clip(a, 0, 1)
    if a.shape[0] == 1:
        a = np.repeat(a, 3, axis=0)
    return np.moveaxis(a[:3], 0, -1)


def _compare_figure(path: Path, result) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    m, b = result.metrics, result.baseline
    panels = [("degraded", result.degraded, b.get("psnr")), ("restored", result.restored, m.get("psnr"))]
    if result.reference is not None:
        panels.append(("reference", result.reference, None))
    h, w = result.restored.shape[1:]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2 * h / w + 0.5), squeeze=False)
    for ax, (title, img, psnr) in zip(axes[0], panels):
        ax.imshow(_to_rgb(img), interpolation="nearest", extent=(0, w, h, 0))
        if psnr is not None and math.isfinite(psnr):
            title = f"{title}  {psnr:.2f} dB"
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _curves_figure(path: Path, history: dict[str, list]) -> bool:
    it = history.get("iteration") or []
    if len(it) < 2:
        return False
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    has_psnr = any(v is not None for v in history.get("psnr", []))
    fig, axes = plt.subplots(1, 2 if has_psnr else 1, figsize=(9 if has_psnr else 4.5, 3.2), squeeze=False)
    ax = axes[0][0]
    ax.semilogy(it, history["loss"], lw=1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title("fit to the observation", fontsize=10)
    if has_psnr:
        ax = axes[0][1]
        ax.plot(it, [np.nan if v is None else v for v in history["psnr"]], lw=1, label="output")
        if any(v is not None for v in history.get("psnr_avg", [])):
            ax.plot(it, [np.nan if v is None else v for v in history["psnr_avg"]], lw=1, label="average (EMA)")
        ax.set_xlabel("iteration")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title("PSNR against the reference", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_outputs(result, out: Path, *, overwrite: bool = False) -> dict[str, str]:
    """Write every output of ``result`` into ``out`` atomically; return the file names."""
    out = Path(out)
    check_out_dir(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        suffix = output_suffix(result.source)
        files: dict[str, str] = {}
        write_image(tmp / f"restored{suffix}", result.image)
        files["restored"] = f"restored{suffix}"
        alpha = result.source.alpha if result.degraded.shape[1:] == result.source.data.shape[1:] else None
        write_image(tmp / f"degraded{suffix}", to_array(result.degraded, alpha, result.source.dtype))
        files["degraded"] = f"degraded{suffix}"
        if result.mask is not None:
            write_image(tmp / "mask.png", (result.mask.astype(np.uint8) * 255))
            files["mask"] = "mask.png"
        _compare_figure(tmp / "compare.png", result)
        files["compare"] = "compare.png"
        if _curves_figure(tmp / "curves.png", result.history):
            files["curves"] = "curves.png"
        files["record"] = "run.json"
        result.record["files"] = dict(files)
        result.record["out"] = str(out)
        (tmp / "run.json").write_text(record_json(result.record), encoding="utf-8")
        _swap_into_place(tmp, out, overwrite)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise RestoreError(f"cannot write results to '{out}': {exc.strerror or exc}") from exc
        raise
    return files


def _swap_into_place(tmp: Path, out: Path, overwrite: bool) -> None:
    os.chmod(tmp, 0o755)
    if out.exists():
        if any(out.iterdir()):
            if not overwrite:
                raise UsageError(f"output folder '{out}' already holds files; pass --overwrite")
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            old.rmdir()
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
            return
        out.rmdir()
    os.replace(tmp, out)
