"""Stage 5: the record — what a run did, typed and versioned (run.json).

:class:`RunRecord` is the one description of a finished run: run.json is
its JSON, ``--json`` prints it, the CLI's summary and the benchmarks read
it.  Its JSON schema is published in docs/run-record.md
(``python docs/gen_record_schema.py`` regenerates it); :data:`SCHEMA_VERSION`
changes whenever a field changes meaning or is removed (adding one does
not).  Sections read like the dict run.json holds (``record["result"]``), so
code written against the JSON keeps working.

JSON has no infinity: :func:`~restorekit.session.record.record_json` (the
one every record is written with) writes non-finite numbers as ``null`` and
names them, by path, in ``nonfinite``.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from pydantic import Field

from ..errors import RestoreKitError, one_line
from ..io.files import file_digest
from ..session.record import Section, record_json  # noqa: F401 - record_json's old home

_Section = Section  # the base's old name here (docs/gen_record_schema.py and older code use it)

#: bump when a field changes meaning or disappears
SCHEMA_VERSION = 1


class InputRecord(Section):
    path: str | None = Field(description="the image file, or null for an array or the embedded image")
    default_image: bool = Field(description="the embedded default image was used")
    width: int
    height: int
    channels: int = Field(description="colour channels (1 or 3); alpha is not counted")
    alpha: bool
    dtype: str = Field(description="sample type of the source: uint8, uint16 or float32")
    format: str = Field(description="png, tiff, jpeg, or array")
    sha256: str | None = Field(description="of the input file's bytes")
    pages: int | None = Field(default=None, description="a multi-page TIFF restored page by page: its page "
                              "count (absent for one image)")


class ReferenceRecord(Section):
    path: str | None


class ComponentRecord(Section):
    name: str
    spec: str = Field(description="canonical spec, every parameter filled in: NAME:key=value,...")
    params: dict[str, Any]
    plugin: str = Field(description="the plugin that provides it")
    plugin_version: str | None
    role: Literal["network", "penalty", "solver", "none"] | None = Field(
        default=None, description="priors only: what the prior does in the run"
    )


class ComponentsRecord(Section):
    degradations: list[ComponentRecord]
    priors: list[ComponentRecord]
    generator: ComponentRecord | None
    metrics: list[ComponentRecord]


class SettingsRecord(Section):
    iterations: int = Field(description="the iteration budget (0 for a direct solver)")
    lr: float | None
    seed: int
    device: str
    report_every: int
    stop: str | None = Field(description="the stopping rule's canonical spec, or null")
    ensemble: int
    precision: str
    time_limit_s: float | None
    padded_shape: list[int] = Field(description="(C, H, W) of the generator's canvas")
    known_noise_sigma: float | None = Field(description="Gaussian sigma in [0, 1] units where known")


class AutoRecord(Section):
    task: str = Field(description="the task class auto decided by: inpaint, hole, impulse, sr, gaussian, poisson, periodic, other")
    prior: list[str] = Field(description="the priors it chose")
    net: str = Field(description="the generator it chose ('auto' for a direct solver)")
    precision: str
    time_limit_s: float | None = Field(description="the fit's time budget, when it chose one")
    why: str = Field(description="the reason, from the measurements behind the choice")


class NoiseRecord(Section):
    """The noise model estimated from the image (degradation ``noise``; levels in 0-255 units)."""

    model: str = Field(description="what was estimated")
    a_255: list[float] = Field(description="per channel, the variance's slope in the intensity: var = a x + b "
                               "(x in 0-255; Poisson-like shot noise)")
    b_255: list[float] = Field(description="per channel, the intensity-independent variance (read noise)")
    rms_255: list[float] = Field(description="per channel, the noise's standard deviation over the image")
    lag1_correlation: float = Field(description="mean correlation of adjacent pixels' noise (0: white)")
    cross_channel_correlation: list[list[float]] = Field(description="correlation of the noise between channels")
    white_sigma_255: float = Field(description="the white-noise level a white-noise denoiser is told (the "
                                   "noise's power where it is strongest)")
    blocks: int = Field(description="how many image blocks the estimate rests on")
    learned_rms_255: list[float | None] | None = Field(
        default=None, description="per channel, the noise-level network's reading of the image (the estimate's mean is "
                                  "capped at restorekit.noise.level.CAP times their mean; null where the image is smaller than 64 pixels)")


class SafeguardRecord(Section):
    """A ground-truth-free check that the result is not worse than what it started from (the input, or a
    budgeted fit's classical start), and what it did."""

    check: Literal["structure", "correlation", "start"] = Field(
        description="structure: the removed part of a denoised image against the estimated noise; correlation: "
                    "the removed part's neighbour correlation against the estimated noise's; start: a budgeted "
                    "fit's error on the observed pixels against its start's held-out error")
    score: float = Field(description="the check's statistic (structure: edge-to-flat ratio of the removed part's "
                         "normalised energy; correlation: the removed part's neighbour correlation over the "
                         "model's (the check fails below the limit); start: the fit's error over its start's)")
    limit: float = Field(description="the statistic's largest accepted value (correlation: its smallest)")
    action: Literal["kept", "milder", "input", "start"] = Field(
        description="kept: the result passed; milder: a milder result was taken; input: none passed and the "
                    "input is returned unchanged; start: the fit's start was returned")
    why: str


class PageRecord(Section):
    """One page of a stack (a multi-page TIFF restored page by page): its own estimate, check and result."""

    page: int = Field(description="1 for the first page")
    status: Literal["complete", "interrupted", "not started"] = Field(
        description="interrupted: its fit was stopped and kept its result so far; not started: the result "
                    "holds the page as read")
    noise: NoiseRecord | None = Field(default=None, description="the noise model estimated from this page")
    safeguard: SafeguardRecord | None = Field(default=None, description="the check of this page's result")
    iteration: int | None = Field(default=None, description="the iteration its output comes from (0: a solver)")
    iterations_run: int | None = None
    output: str | None = Field(default=None, description="ema, last, solver, start, ...")
    stop_reason: str | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)
    baseline: dict[str, float | None] = Field(default_factory=dict)
    seconds: float | None = Field(default=None, description="the page's run, in all")


class EnvironmentRecord(Section):
    python: str
    platform: str
    torch: str
    numpy: str
    device: str
    threads: int
    device_name: str | None = None


class TimingsRecord(Section):
    total_s: float
    fit_s: float
    per_iteration_s: float | None


class MemberRecord(Section):
    seed: int
    iteration: int
    iterations_run: int
    stopped_early: bool
    stop_reason: str | None = None
    backtracks: int = 0
    seconds: float | None = None


class ResultRecord(Section):
    iteration: int = Field(description="the iteration the output comes from (0 for a direct solver)")
    iterations_run: int
    output: str = Field(description="ema, last, solver, or 'mean of K runs (...)' for an ensemble")
    backtracks: int
    stopped_early: bool
    stop_reason: str | None = Field(description="iterations, rule, time limit or interrupted; null for a solver")
    variance_minimum: int | None
    members: list[MemberRecord]
    metrics: dict[str, float | None]
    baseline: dict[str, float | None] = Field(description="the same metrics for the degraded input (bicubic for SR)")
    baseline_kind: str | None = Field(description="degraded or bicubic; null without a reference")


class HistoryRecord(Section):
    iteration: list[int] = Field(default_factory=list)
    loss: list[float | None] = Field(default_factory=list)
    psnr: list[float | None] = Field(default_factory=list)
    psnr_avg: list[float | None] = Field(default_factory=list)
    time: list[float] = Field(default_factory=list)


class RunRecord(Section):
    """Everything run.json holds about one run."""

    schema_version: int = Field(SCHEMA_VERSION, description="version of this record's layout")
    restorekit: str = Field(description="restorekit's version")
    status: Literal["complete", "interrupted"] = Field(description="interrupted: Ctrl-C or SIGTERM stopped the fit")
    mode: Literal["benchmark", "restore"] = Field(description="benchmark: the input was clean and degraded here")
    task: str = Field(description="denoise, inpaint, sr, deblur, or a plugin's own")
    input: InputRecord = Field(description="the image as read")
    reference: ReferenceRecord | None = Field(description="--reference in restore mode")
    components: ComponentsRecord = Field(description="every component with its canonical spec and plugin")
    settings: SettingsRecord = Field(description="what the fit was told")
    auto: AutoRecord | None = Field(default=None, description="what --prior auto chose and why (null: priors named)")
    noise: NoiseRecord | None = Field(default=None, description="the noise model estimated from the image "
                                      "(degradation noise; null otherwise)")
    safeguard: SafeguardRecord | None = Field(default=None, description="the check of the result against the "
                                              "estimated noise (null where none ran)")
    environment: EnvironmentRecord = Field(description="Python, torch, NumPy, the device")
    timings: TimingsRecord = Field(description="seconds")
    result: ResultRecord = Field(description="where the output came from and its scores")
    notes: list[str] = Field(default_factory=list, description="what the user was told, in order")
    history: HistoryRecord = Field(
        default_factory=HistoryRecord, description="per reporting iteration: loss, PSNR of the output and its average"
    )
    pages: list[PageRecord] | None = Field(default=None, description="a stack: every page's own estimate, check "
                                           "and result (absent for one image)")
    files: dict[str, str] | None = Field(default=None, description="the files written, by role (set when written)")
    out: str | None = Field(default=None, description="the output folder (set when written)")

    def to_dict(self) -> dict[str, Any]:
        """Plain Python data, as run.json holds it (before non-finite numbers are replaced)."""
        data = self.model_dump(mode="python")
        for key in ("files", "out", "pages"):
            if data.get(key) is None:
                data.pop(key, None)
        if data["input"].get("pages") is None:
            data["input"].pop("pages", None)
        comps = data["components"]
        for item in comps["degradations"] + comps["metrics"] + ([comps["generator"]] if comps["generator"] else []):
            item.pop("role", None)  # a role belongs to priors only
        return data

    def to_json(self) -> str:
        return record_json(self)

    @classmethod
    def from_json(cls, text: str | bytes) -> "RunRecord":
        """Read run.json (``null`` metrics stay ``None``; ``nonfinite`` says which were infinite)."""
        data = json.loads(text)
        data.pop("nonfinite", None)
        return cls.model_validate(data)

    @classmethod
    def load(cls, path: str | Path) -> "RunRecord":
        return cls.from_json(Path(path).read_bytes())


def json_schema() -> dict[str, Any]:
    return RunRecord.model_json_schema()


# ---------------------------------------------------------------------------
# Scores
# ---------------------------------------------------------------------------
def score(metrics: Sequence[Any], ref: np.ndarray, test: np.ndarray, missing: np.ndarray | None,
          registry: Any, notes: list[str], failed: set[str]) -> dict[str, float]:
    """Each metric of ``test`` against ``ref`` ((C, H, W)); a metric that raises is left out with a note (once)."""
    a = np.moveaxis(ref, 0, -1).astype(np.float64)
    b = np.moveaxis(test, 0, -1).astype(np.float64)
    out: dict[str, float] = {}
    passes = [("", None)] + ([("_missing", missing)] if missing is not None and missing.any() else [])
    for suffix, where in passes:
        for m in metrics:
            if m.label in failed:
                continue
            try:
                kwargs = {} if where is None else {"mask": where}
                out[f"{m.label}{suffix}"] = float(m.compute(a, b, data_range=1.0, **kwargs))
            except (KeyboardInterrupt, RestoreKitError):
                raise
            except (Exception, SystemExit) as exc:
                failed.add(m.label)
                plugin = registry.provider(m).plugin
                notes.append(f"metric '{m.label}' from plugin '{plugin}' failed and is left out: {one_line(exc)}")
    return out


# ---------------------------------------------------------------------------
# Building a record
# ---------------------------------------------------------------------------
def describe_component(component: Any, registry: Any, role: str | None = None) -> ComponentRecord:
    entry = registry.provider(component)
    return ComponentRecord(
        name=component.name, spec=component.spec, params=component.params.model_dump(),
        plugin=entry.plugin, plugin_version=entry.version, role=role,
    )


def environment(device: Any) -> EnvironmentRecord:
    import torch

    return EnvironmentRecord(
        python=platform.python_version(), platform=platform.platform(), torch=torch.__version__,
        numpy=np.__version__, device=str(device), threads=torch.get_num_threads(),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    )


def build_record(*, plan: Any, problem: Any, solution: Any, source: Any, reference: Any, registry: Any,
                 metrics: dict[str, float], baseline: dict[str, float], started: float) -> RunRecord:
    """The record of a finished run, from the stages' results."""
    from .. import __version__

    s = plan.settings
    fit = solution.fit
    priors = [describe_component(p, registry, role=p.role) for p in plan.priors()]
    return RunRecord(
        restorekit=__version__,
        status="interrupted" if solution.interrupted else "complete",
        mode=s.mode,
        task=problem.task,
        input=InputRecord(
            path=str(source.path) if source.path else None, default_image=s.default_image,
            width=source.data.shape[2], height=source.data.shape[1], channels=source.data.shape[0],
            alpha=source.alpha is not None, dtype=str(np.dtype(source.dtype)), format=source.format,
            sha256=None if source.path is None else file_digest(source.path),
        ),
        reference=None if reference is None else ReferenceRecord(path=str(reference.path) if reference.path else None),
        components=ComponentsRecord(
            degradations=[describe_component(d, registry) for d in plan.degradations],
            priors=priors,
            generator=None if plan.generator is None else describe_component(plan.generator, registry),
            metrics=[describe_component(m, registry) for m in plan.metrics],
        ),
        settings=SettingsRecord(
            iterations=plan.iterations, lr=plan.lr, seed=s.seed, device=str(plan.device),
            report_every=plan.report_every, stop=None if plan.stop_rule is None else plan.stop_rule.spec,
            ensemble=s.ensemble, precision=s.precision, time_limit_s=s.time_limit,
            padded_shape=list(problem.geometry.canvas_shape), known_noise_sigma=problem.sigma,
        ),
        auto=None if getattr(plan, "auto", None) is None else AutoRecord(**plan.auto.record()),
        noise=None if getattr(problem, "noise", None) is None else NoiseRecord(**problem.noise.record()),
        safeguard=None if getattr(solution, "safeguard", None) is None else SafeguardRecord(**solution.safeguard),
        environment=environment(plan.device),
        timings=TimingsRecord(
            total_s=round(time.perf_counter() - started, 3),
            fit_s=round(solution.seconds, 3),
            per_iteration_s=round(solution.seconds / fit.iterations_run, 5) if fit and fit.iterations_run else None,
        ),
        result=ResultRecord(
            iteration=solution.iteration,
            iterations_run=fit.iterations_run if fit else 0,
            output=fit.output_kind if fit else "solver",
            backtracks=fit.backtracks if fit else 0,
            stopped_early=bool(fit.stopped_early) if fit else False,
            stop_reason=fit.stop_reason if fit else None,
            variance_minimum=fit.variance_minimum if fit else None,
            members=[MemberRecord(**m) for m in solution.members],
            metrics=metrics,
            baseline=baseline,
            baseline_kind=None if not baseline else ("degraded" if problem.scale == 1 else "bicubic"),
        ),
        notes=plan.notes,
        history=HistoryRecord(**(fit.history.as_dict() if fit else {})),
    )
