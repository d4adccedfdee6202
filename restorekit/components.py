"""The component kinds and what every component has in common.

A component is a class with a unique lowercase ``name``, a one-line
``summary``, a parameter schema ``Params`` (a strict pydantic model) and an
optional ``primary`` parameter that a spec may give without its key.
Plugins subclass one of :class:`Degradation`, :class:`Prior`,
:class:`Generator`, :class:`Metric`, :class:`StoppingRule`,
:class:`Decomposition` or :class:`Network` and register the class through
the matching hook (:data:`KINDS` names them).  Nothing here imports torch: listing components stays fast.
Tensors are ``(N, C, H, W)`` float tensors in ``[0, 1]``; NumPy images are
``(C, H, W)`` float arrays in ``[0, 1]`` unless stated otherwise.
"""

from __future__ import annotations

import decimal
import math
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args, get_origin

import pydantic
from pydantic import BaseModel, ConfigDict

from .errors import SpecError
from .spec import QuotedStr, Spec, format_spec, format_value, parse_spec

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

__all__ = [
    "Params",
    "Component",
    "Degradation",
    "Prior",
    "Generator",
    "Metric",
    "StoppingRule",
    "Decomposition",
    "Decomposed",
    "Hint",
    "Budget",
    "DECOMPOSITION_TASKS",
    "Network",
    "LoopOptions",
    "Geometry",
    "Problem",
    "KINDS",
]


class Params(BaseModel):
    """Base of every parameter schema: unknown keys are errors, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _admits_none(annotation: Any) -> bool:
    if annotation is None or annotation is type(None):
        return True
    origin = get_origin(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", object)):
        return any(_admits_none(a) for a in get_args(annotation))
    return False


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return "choice"
    if origin in (list, tuple):
        args = get_args(annotation)
        return f"list[{_type_name(args[0])}]" if args else "list"
    if origin is not None and get_args(annotation):
        names = [_type_name(a) for a in get_args(annotation) if a is not type(None)]
        return " | ".join(dict.fromkeys(names))
    if annotation is type(None):
        return "none"
    return getattr(annotation, "__name__", str(annotation))


def _choices(annotation: Any) -> list[Any] | None:
    origin = get_origin(annotation)
    if origin is Literal:
        return list(get_args(annotation))
    if origin is not None:
        for a in get_args(annotation):
            c = _choices(a)
            if c:
                return c
    return None


def describe_params(params_cls: type[BaseModel]) -> list[dict[str, Any]]:
    """One dict per parameter: name, type, default, range, choices, help."""
    rows = []
    for fname, f in params_cls.model_fields.items():
        rng = {}
        for m in f.metadata:
            for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
                v = getattr(m, attr, None)
                if v is not None:
                    rng[sym] = v
        default = None if f.is_required() else f.get_default(call_default_factory=True)
        rows.append(
            {
                "name": fname,
                "type": _type_name(f.annotation),
                "default": default,
                "required": f.is_required(),
                "range": rng,
                "choices": _choices(f.annotation),
                "help": f.description or "",
            }
        )
    return rows


def format_range(rng: dict[str, Any]) -> str:
    if not rng:
        return ""
    lo = next(((s, v) for s, v in rng.items() if s in (">=", ">")), None)
    hi = next(((s, v) for s, v in rng.items() if s in ("<=", "<")), None)
    if lo and hi:
        left = "[" if lo[0] == ">=" else "("
        right = "]" if hi[0] == "<=" else ")"
        return f"{left}{lo[1]}, {hi[1]}{right}"
    s, v = lo or hi
    return f"{s} {v}"


def _pydantic_message(kind: str, name: str, err: dict[str, Any], fields: dict) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ())) or "?"
    msg = err.get("msg", "invalid value")
    if err.get("type") == "value_error" and msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]  # a field validator's own message
    got = err.get("input")
    where = f"{kind} '{name}': parameter '{loc}'"
    if err.get("type") == "missing":
        return f"{where} is required"
    return f"{where}: {msg[0].lower() + msg[1:]} (got {got!r})"


def _plain(value: Any) -> Any:
    """Quoted spec strings as plain ``str`` (also inside lists) for pydantic."""
    if isinstance(value, QuotedStr):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


#: pydantic errors of number bounds (and of allow_inf_nan=False), which nan and inf may fail
_BOUND_ERRORS = frozenset(
    {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "multiple_of", "finite_number"}
)


def _nonfinite_text(value: Any) -> bool:
    """True for a float, or the text of one, that is nan or infinite."""
    if isinstance(value, bool) or not isinstance(value, (str, float, int)):
        return False
    try:
        return not math.isfinite(float(value))
    except (ValueError, OverflowError):
        return False


def _finite_message(cls: type["Component"], key: str, raw: Any) -> str:
    return f"{cls.kind} '{cls.name}': parameter '{key}' must be a finite number (got {format_value(raw)!r})"


def _all_finite(value: Any) -> bool:
    """False if ``value`` is, or contains (lists, tuples, dicts, models), a nan or inf float."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, decimal.Decimal):
        return value.is_finite()
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(_all_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    if isinstance(value, BaseModel):
        return all(_all_finite(getattr(value, k, None)) for k in type(value).model_fields)
    return True


class Component:
    """Common base: name, summary, parameter schema, primary parameter."""

    kind: ClassVar[str] = "component"
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params
    primary: ClassVar[str | None] = None

    def __init__(self, params: Params | None = None, **kwargs: Any) -> None:
        if params is None:
            params = type(self).validate(kwargs)
        elif kwargs:
            raise TypeError("pass either a Params instance or keyword arguments, not both")
        self.params = params

    # -- construction from specs -------------------------------------------
    @classmethod
    def validate(cls, raw: dict[str, Any]) -> Params:
        """Validate raw (string or typed) values into ``cls.Params``.

        Raises :class:`SpecError` with a one-line message naming the
        parameter and what it accepts.
        """
        fields = cls.Params.model_fields
        unknown = [k for k in raw if k not in fields]
        if unknown:
            from .suggest import did_you_mean

            valid = ", ".join(fields) or "(none)"
            key = unknown[0]
            raise SpecError(
                f"{cls.kind} '{cls.name}' has no parameter '{key}'{did_you_mean(key, fields)} (valid: {valid})"
            )
        cleaned = {}
        for k, v in raw.items():
            if (
                isinstance(v, str)
                and not isinstance(v, QuotedStr)  # a quoted 'none' is the text none
                and v.strip().lower() in ("none", "null")
                and _admits_none(fields[k].annotation)
            ):
                v = None
            cleaned[k] = _plain(v)
        try:
            params = cls.Params(**cleaned)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            key = (first.get("loc") or ("?",))[0]
            if first.get("type") in _BOUND_ERRORS and _nonfinite_text(first.get("input")) and key in raw:
                # nan fails every bound; say what is wrong with it rather than "must be >= 0"
                raise SpecError(_finite_message(cls, str(key), raw[key])) from None
            raise SpecError(_pydantic_message(cls.kind, cls.name, first, fields)) from None
        # Every float the user set must be finite, whatever the schema says: a
        # bound such as ``ge=0`` lets inf through, and ``1e309`` reads as inf.
        # The validated values are checked (not the raw text), so a str
        # parameter may still be the text "inf".
        for k in raw:
            if not _all_finite(getattr(params, k, None)):
                raise SpecError(_finite_message(cls, k, raw[k]))
        return params

    @classmethod
    def from_spec(cls, spec: str | Spec) -> "Component":
        if isinstance(spec, str):
            spec = parse_spec(spec)
        raw = dict(spec.params)
        if spec.positional is not None:
            if cls.primary is None:
                raise SpecError(
                    f"{cls.kind} '{cls.name}' has no primary parameter; "
                    f"write {cls.name}:key=value (see: restorekit list {cls.kind} {cls.name})"
                )
            if cls.primary in raw:
                raise SpecError(f"parameter {cls.primary!r} given twice in {spec.text!r}")
            raw = {cls.primary: spec.positional, **raw}
        return cls(cls.validate(raw))

    # -- description ---------------------------------------------------------
    @property
    def spec(self) -> str:
        """Canonical spec with every parameter filled in."""
        return format_spec(self.name, self.params.model_dump())

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "kind": cls.kind,
            "name": cls.name,
            "summary": cls.summary,
            "primary": cls.primary,
            "params": describe_params(cls.Params),
        }

    def __repr__(self) -> str:
        return f"<{self.kind} {self.spec}>"


# ---------------------------------------------------------------------------
# Degradations
# ---------------------------------------------------------------------------
class Degradation(Component):
    """A forward model ``y = noise(A(x))``.

    The random part (a mask draw, a noise draw) is separated from the
    deterministic operator ``A`` that the loss differentiates through:

    * :meth:`prepare` is called once with the shape of the image entering
      this stage, a seeded NumPy generator and the mode; it draws any random
      operator state (a Bernoulli mask) and returns the output shape.
    * :meth:`forward` applies ``A`` to a torch tensor; deterministic and
      differentiable.
    * :meth:`corrupt` adds the random noise to ``A(x)`` when a clean image
      is degraded on purpose (benchmark mode); it works on NumPy arrays so
      the draw is the same on every device.
    * :attr:`mask` holds the observed pixels (1 = known) at the output size,
      or ``None`` when every pixel is observed.
    """

    kind: ClassVar[str] = "degradation"
    #: how many image pixels one observed pixel covers, per axis
    scale: ClassVar[int] = 1
    #: True when the observation is exactly ``A(x)``: :meth:`corrupt` adds no
    #: noise (pixel loss, downsampling). A fit of such a problem has no noise
    #: to overfit, so ``--stop auto`` does not stop it early. Leave it False
    #: when noise is added or unknown.
    noise_free: ClassVar[bool] = False
    #: the task this stage makes of a restoration: "denoise", "inpaint", "sr",
    #: "deblur", or a plugin's own word; None lets restorekit infer it (a
    #: mask: inpaint, a scale: sr, otherwise denoise)
    task: ClassVar[str | None] = None
    #: False for a degradation that only describes a real observation (``noise``: estimated from the image,
    #: never drawn): its :meth:`prepare` refuses benchmark mode with a UsageError, and the contract kit
    #: checks it in restore mode
    simulated: ClassVar[bool] = True

    mask: "np.ndarray | None" = None

    def adds_noise(self) -> bool:
        """Whether this instance adds noise (``gaussian:0`` does not); by default ``not noise_free``."""
        return not self.noise_free

    def scale_factor(self) -> int:
        return self.scale

    def prepare(self, shape: tuple[int, int, int], rng: "np.random.Generator", mode: str) -> tuple[int, int, int]:
        """Draw the random operator state for an input of ``shape`` (C, H, W)."""
        c, h, w = shape
        s = self.scale_factor()
        if h % s or w % s:
            raise SpecError(f"{self.name}: image size {w}x{h} is not a multiple of {s}")
        return (c, h // s, w // s)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        """The deterministic forward operator A(x); identity by default."""
        return x

    def corrupt(self, y: "np.ndarray", rng: "np.random.Generator") -> "np.ndarray":
        """Add this stage's noise to ``y`` (C, H, W); no noise by default."""
        return y

    def noise_sigma(self) -> float | None:
        """Standard deviation of additive Gaussian noise in [0, 1] units, if known."""
        return None

    def detect_lost(self, observation: "np.ndarray") -> "np.ndarray | None":
        """The pixels of the final (C, H, W) observation that this stage's noise left with no information,
        found from the observation itself ((H, W) bool, True = lost), or None.

        For noise that replaces pixels outright (impulse noise): the run then treats them as missing,
        exactly as a mask's, so every prior fits and keeps only the pixels that carry the image.
        """
        return None

    def mask_tensor(self, device: Any = None) -> "torch.Tensor | None":
        if self.mask is None:
            return None
        import torch

        return torch.as_tensor(self.mask, dtype=torch.float32, device=device)[None, None]


# ---------------------------------------------------------------------------
# Priors
# ---------------------------------------------------------------------------
@dataclass
class LoopOptions:
    """Settings of the optimisation loop that a prior may ask for."""

    #: exponential moving average of outputs (0 = off; the authors use 0.99)
    ema: float = 0.0
    #: restore the last good weights when the fit to the observation drops by
    #: more than this many dB between two checks (0 = off)
    backtrack_db: float = 0.0
    #: check every this many iterations (0: every one except multiples of 100, as the
    #: authors' denoising notebook does)
    backtrack_every: int = 0
    #: fit with Stein's unbiased risk estimate instead of the squared error (denoising with
    #: a known Gaussian sigma, the observation as the network input)
    sure: bool = False
    #: return the observed pixels as observed where the forward model is a noise-free mask (inpainting,
    #: detected impulses): only the missing pixels come from the fit
    keep_known: bool = False


@dataclass(frozen=True)
class Geometry:
    """Where the image sits on the generator's canvas, and what the user gets back.

    ``image_shape`` ``(C, H, W)`` is the size the forward model was prepared
    for: every degradation sees exactly this size, never padding.
    ``canvas_shape`` ``(C, H', W')`` is what a generator produces (its sides
    a multiple of the generator's stride); the image is the region ``crop``
    ``(top, left, H, W)`` of it, and the fitting loop crops the canvas before
    applying the forward model.  ``result_size`` ``(H0, W0)`` is the top-left
    part of the image returned to the user (smaller than ``H, W`` only when a
    clean image was extended to a multiple of a downsampling factor).
    """

    image_shape: tuple[int, int, int]
    canvas_shape: tuple[int, int, int]
    crop: tuple[int, int, int, int]
    result_size: tuple[int, int]

    @classmethod
    def identity(cls, image_shape: tuple[int, int, int]) -> "Geometry":
        """No padding: the canvas is the image and the result is all of it."""
        c, h, w = (int(v) for v in image_shape)
        return cls((c, h, w), (c, h, w), (0, 0, h, w), (h, w))

    @property
    def padded(self) -> bool:
        return self.canvas_shape != self.image_shape

    def to_image(self, x):
        """The image region ``(..., H, W)`` of a canvas-sized array or tensor."""
        top, left, h, w = self.crop
        return x[..., top : top + h, left : left + w]

    def to_result(self, x):
        """The user's result ``(..., H0, W0)`` from an image-sized array or tensor."""
        h0, w0 = self.result_size
        return x[..., :h0, :w0]

    def pad_to_canvas(self, x):
        """An image-sized ``(C, H, W)`` or ``(N, C, H, W)`` array or tensor extended to the canvas
        by reflection (edge replication for a side of one pixel)."""
        if not self.padded:
            return x
        import numpy as np

        top, left, h, w = self.crop
        _, hh, ww = self.canvas_shape
        pads = ((top, hh - h - top), (left, ww - w - left))
        mode = "reflect" if min(h, w) > 1 else "edge"
        if isinstance(x, np.ndarray):
            lead = ((0, 0),) * (x.ndim - 2)
            return np.pad(x, lead + pads, mode=mode)
        import torch

        a = np.pad(x.detach().cpu().numpy(), ((0, 0),) * (x.dim() - 2) + pads, mode=mode)
        return torch.from_numpy(np.ascontiguousarray(a)).to(device=x.device, dtype=x.dtype)


@dataclass
class Problem:
    """One restoration problem, as solvers and the fitting loop see it.

    ``observation`` is ``(1, C, h, w)``; ``forward`` the prepared forward
    model ``A`` (a callable on ``(N, C, H, W)`` tensors); ``mask``
    ``(1, 1, h, w)`` (1 = observed) or ``None``; ``image_shape`` the
    ``(C, H, W)`` of the image to recover; ``init`` a simple back-projection
    of the observation of that shape (masked pixels filled with the mean,
    low resolution upsampled).  ``sigma`` is the Gaussian noise level in
    [0, 1] units where a degradation knows it.  ``geometry`` says where the
    image sits on a generator's canvas (no padding by default); ``reference``
    is the clean image at the result's size ``(1, C, H0, W0)`` when known —
    the fitting loop reports PSNR against it, and a solver never receives it.
    Built by :func:`restorekit.run.problem.build_problem`.
    """

    observation: "torch.Tensor"
    forward: Any
    mask: "torch.Tensor | None"
    image_shape: tuple[int, int, int]
    init: "torch.Tensor"
    degradations: list[Degradation] = field(default_factory=list)
    sigma: float | None = None
    seed: int = 0
    device: Any = "cpu"
    geometry: Geometry | None = None
    reference: "torch.Tensor | None" = None
    mode: str = "restore"
    task: str = "denoise"
    #: the estimated noise model (:class:`restorekit.noise.NoiseModel`) where a degradation estimates one
    #: from the observation (``noise``); ``sigma`` is then its white-noise equivalent
    noise: Any = None

    def __post_init__(self) -> None:
        if self.geometry is None:
            self.geometry = Geometry.identity(self.image_shape)

    @property
    def scale(self) -> int:
        """Image pixels per observed pixel, per axis (super-resolution factor)."""
        return max(1, self.image_shape[1] // max(1, int(self.observation.shape[-2])))


class Prior(Component):
    """What we believe about the image.

    A prior plays one role (``role``):

    * ``"network"`` — the image is the output of a trainable generator
      ``G(z)`` (the deep image prior): :meth:`input_code` makes ``z``,
      :meth:`perturb` jitters it each step, :meth:`loop_options` asks for
      output averaging and backtracking.  At most one per run.
    * ``"penalty"`` — adds :meth:`penalty` to the data-fit loss (TV); may be
      combined with a network prior or stand alone with ``--net identity``.
    * ``"solver"`` — solves the problem directly in :meth:`solve` (no
      optimisation loop): NL-means, BM3D, ...  Stands alone.
    * ``"none"`` — no prior at all: fit the observation with the identity
      parameterisation.
    """

    kind: ClassVar[str] = "prior"
    role: ClassVar[Literal["network", "penalty", "solver", "none"]] = "penalty"

    def input_channels(self) -> int:
        """Depth of the generator's input code (network priors); 0: the image's channel count."""
        return 0

    def input_code(self, height: int, width: int, rng: "torch.Generator", init: "torch.Tensor | None" = None) -> "torch.Tensor | None":
        """The generator's input ``z`` as a ``(1, D, H, W)`` tensor (network priors)."""
        return None

    def perturb(self, z: "torch.Tensor") -> "torch.Tensor":
        """The input actually fed at each step (e.g. ``z + std * N(0, 1)``)."""
        return z

    def penalty(self, x: "torch.Tensor") -> "torch.Tensor | None":
        """A differentiable penalty added to the loss (penalty priors)."""
        return None

    def loop_options(self) -> LoopOptions:
        return LoopOptions()

    def solve(self, problem: Problem) -> "torch.Tensor":
        """Return the restored image ``(1, C, H, W)`` (solver priors)."""
        raise NotImplementedError(f"prior '{self.name}' is not a direct solver")


# ---------------------------------------------------------------------------
# Generators
# ---------------------------------------------------------------------------
class Generator(Component):
    """A network ``G`` that maps an input code to an image.

    :meth:`build` returns a ``torch.nn.Module`` taking ``(1, in_channels, H,
    W)`` and returning ``(1, out_channels, H, W)`` in ``[0, 1]``.  ``H, W`` is
    the canvas (``canvas=(H, W)`` is passed to :meth:`build` when it takes
    that keyword): the image padded to multiples of :meth:`stride`; the
    fitting loop crops the canvas to the image, so the generator never needs
    to know the image's own size.

    ``needs_input``: the network prior (``dip``) makes the input code.
    ``owns_input``: the network holds its own input (the Deep Decoder's fixed
    small tensor) and is called with ``None``; it still counts as a network,
    so ``dip`` accepts it.  Neither (``identity``): a parameterisation of the
    pixels themselves, for the penalty priors.
    """

    kind: ClassVar[str] = "generator"
    #: False for parameterisations that ignore their input (identity)
    needs_input: ClassVar[bool] = True
    #: True for networks that make their own input (called with None)
    owns_input: ClassVar[bool] = False

    @classmethod
    def is_network(cls) -> bool:
        """A trainable network (the prior is its structure), as opposed to a pixel parameterisation."""
        return bool(cls.needs_input or cls.owns_input)

    def stride(self) -> int:
        """H and W of the canvas must be multiples of this."""
        return 1

    def build(self, in_channels: int, out_channels: int, *, init: "torch.Tensor | None" = None) -> "torch.nn.Module":
        """The network; ``init`` is the initial estimate on the canvas (``(1, C, H, W)``).

        Add ``canvas: tuple[int, int] | None = None`` to the signature to be told the canvas size.
        """
        raise NotImplementedError


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------
class Metric(Component):
    """A score of ``image_test`` against ``image_true`` (scikit-image order).

    Images are ``(H, W, C)`` float64 arrays; ``data_range`` is explicit; an
    optional boolean ``mask`` of shape ``(H, W)`` restricts the score to
    those pixels (inpainting: the missing ones).
    """

    kind: ClassVar[str] = "metric"
    higher_is_better: ClassVar[bool] = True
    unit: ClassVar[str] = ""

    def compute(
        self,
        image_true: "np.ndarray",
        image_test: "np.ndarray",
        *,
        data_range: float = 1.0,
        mask: "np.ndarray | None" = None,
    ) -> float:
        raise NotImplementedError

    @property
    def label(self) -> str:
        """The key this metric's value is stored under in results."""
        defaults = type(self).Params().model_dump() if _all_defaults(type(self).Params) else None
        if defaults is not None and defaults == self.params.model_dump():
            return self.name
        return self.spec


def _all_defaults(params_cls: type[BaseModel]) -> bool:
    return all(not f.is_required() for f in params_cls.model_fields.values())


# ---------------------------------------------------------------------------
# Stopping rules
# ---------------------------------------------------------------------------
class StoppingRule(Component):
    """When to stop a fit without the clean image (``--stop``), and which iteration to keep.

    :meth:`update` sees every output ``x`` (``(1, C, H, W)``; ``average`` is
    the running average when the prior keeps one) and must not synchronise
    with the device; :meth:`should_stop` is asked on reporting iterations
    only.  The base class tracks the best iteration by a score that
    :meth:`_track` receives (lower is better) and stops ``params.patience``
    iterations after it (give ``Params`` a ``patience``, or override
    :meth:`should_stop`).
    """

    kind: ClassVar[str] = "stopping rule"

    def __init__(self, params: Params | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.reset()

    def reset(self) -> None:
        """Forget everything seen (a new fit)."""
        self.best_output = None
        self.best_average = None
        self._best_score = None
        self._best_it = None

    def update(self, x: "torch.Tensor", iteration: int, average: "torch.Tensor | None" = None) -> None:
        raise NotImplementedError  # pragma: no cover - interface

    def should_stop(self, iteration: int) -> bool:
        if self._best_it is None:
            return False
        return iteration - int(self._best_it.item()) >= self.params.patience

    def chosen_iteration(self) -> int | None:
        """The iteration whose output to keep (``best_output``), if any yet."""
        return None if self._best_it is None else int(self._best_it.item())

    def _track(self, score: "torch.Tensor", x: "torch.Tensor", iteration: int, average: "torch.Tensor | None") -> None:
        """Keep ``x`` (and ``average``) if ``score`` is the lowest so far, without a host sync."""
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


# ---------------------------------------------------------------------------
# Decompositions
# ---------------------------------------------------------------------------
#: what a decomposition may be asked to do (``restorekit segment``: "segment"; ``restorekit decompose
#: --task``: the others)
DECOMPOSITION_TASKS: tuple[str, ...] = ("segment", "transparency", "watermark", "dehaze")


@dataclass(frozen=True)
class Hint:
    """What the user marked on the image (``--hint``), for a decomposition that takes hints.

    ``box`` is ``(x, y, w, h)`` in pixels around the object (left, top, width,
    height; the object is inside, everything outside is background).
    ``scribbles`` is an ``(H, W)`` int array: 1 on pixels marked as the
    object, 2 on pixels marked as background, 0 elsewhere.
    """

    box: tuple[int, int, int, int] | None = None
    scribbles: "np.ndarray | None" = None

    def seeds(self, height: int, width: int) -> "np.ndarray":
        """``(H, W)`` int8 labels: 1 object, 2 background, 0 unknown (a box: outside is background)."""
        import numpy as np

        out = np.zeros((height, width), dtype=np.int8)
        if self.box is not None:
            x, y, w, h = self.box
            out[:] = 2
            out[max(y, 0) : y + h, max(x, 0) : x + w] = 0
        if self.scribbles is not None:
            s = np.asarray(self.scribbles)
            out[s == 1] = 1
            out[s == 2] = 2
        return out

    def describe(self) -> str:
        parts = []
        if self.box is not None:
            parts.append("box:" + ",".join(str(int(v)) for v in self.box))
        if self.scribbles is not None:
            s = self.scribbles
            parts.append(f"scribbles ({int((s == 1).sum())} object, {int((s == 2).sum())} background pixels)")
        return "; ".join(parts) or "none"


@dataclass
class Budget:
    """How long an iterative decomposition may work, and whom it tells.

    ``iterations`` overrides the method's own count where given;
    ``time_limit`` (seconds) ends the fit early, keeping the result so far;
    ``progress(iteration, total, loss)`` is called on reporting iterations.
    A Ctrl-C (``KeyboardInterrupt``) inside :meth:`Decomposition.decompose`
    should end the loop and return the best result so far, with
    ``stopped="interrupted"``.
    """

    iterations: int | None = None
    time_limit: float | None = None
    progress: Any = None
    started: float = field(default_factory=lambda: __import__("time").perf_counter())

    def elapsed(self) -> float:
        import time

        return time.perf_counter() - self.started

    def out_of_time(self) -> bool:
        return self.time_limit is not None and self.elapsed() >= self.time_limit

    def report(self, iteration: int, total: int, loss: float) -> None:
        if self.progress is not None:
            self.progress(iteration, total, loss)


@dataclass
class Decomposed:
    """What a decomposition returns.

    ``mask``: ``(H, W)`` float in [0, 1], the object's (layer 1's) share of
    each pixel, or None; ``labels``: ``(H, W)`` int segment numbers from 0
    (for a two-way split, 1 = the object), or None; ``layers``: name ->
    ``(C, H, W)`` float image in [0, 1] (the layers that add up to the
    image; a dehazing's ``"airlight"`` may be ``(C, 1, 1)``);
    ``history``: the loss per reported iteration; ``stopped``: ``"done"``,
    ``"time limit"`` or ``"interrupted"``.
    """

    mask: "np.ndarray | None" = None
    labels: "np.ndarray | None" = None
    layers: dict[str, "np.ndarray"] = field(default_factory=dict)
    iterations: int = 0
    history: dict[str, list] = field(default_factory=lambda: {"iteration": [], "loss": []})
    stopped: str = "done"
    notes: list[str] = field(default_factory=list)


class Decomposition(Component):
    """Splits one image into parts, with no training data: a segmentation or a layer decomposition.

    ``tasks`` names what it can do (of :data:`DECOMPOSITION_TASKS` or a
    plugin's own word): ``"segment"`` (object / background, or K segments),
    ``"transparency"`` (two images mixed), ``"watermark"`` (an image and a
    watermark), ``"dehaze"`` (a haze-free image, a transmission map and an
    airlight).  ``hints`` lists the :class:`Hint` parts it uses (``"box"``,
    ``"scribbles"``); ``needs_hint`` says it cannot work without one
    (random walker).  ``iterative`` methods honour ``Budget.iterations``
    and ``Budget.time_limit``.

    :meth:`decompose` takes the image as a ``(C, H, W)`` float array in
    [0, 1] and returns a :class:`Decomposed`; it may refuse an image or task
    it cannot handle by raising :class:`~restorekit.UsageError` with one line.
    """

    kind: ClassVar[str] = "decomposition"
    tasks: ClassVar[tuple[str, ...]] = ("segment",)
    hints: ClassVar[tuple[str, ...]] = ()
    needs_hint: ClassVar[bool] = False
    iterative: ClassVar[bool] = False

    def requires_hint(self, task: str) -> bool:
        """Whether ``task`` cannot be done without a hint (checked before any work); ``needs_hint`` by default."""
        return bool(self.needs_hint)

    def decompose(
        self,
        image: "np.ndarray",
        task: str = "segment",
        *,
        hint: Hint | None = None,
        seed: int = 0,
        budget: Budget | None = None,
        others: tuple["np.ndarray", ...] = (),
    ) -> Decomposed:
        """Split ``image``; ``others`` are further images of the same scene (a second mixture for
        ``transparency``), passed only when the user gives some: omit the argument if you take none."""
        raise NotImplementedError


# ---------------------------------------------------------------------------
# Networks to inspect
# ---------------------------------------------------------------------------
class Network(Component):
    """A trained network to look inside (``restorekit invert``, ``restorekit visualize``).

    :meth:`load` returns the ``torch.nn.Module`` with its weights loaded, in
    eval mode, on the CPU; :meth:`input_shape` the ``(C, H, W)`` it expects,
    or None when any size works.
    """

    kind: ClassVar[str] = "network"

    def load(self) -> "torch.nn.Module":
        raise NotImplementedError

    def input_shape(self) -> tuple[int, int, int] | None:
        return None


#: kind -> base class; each kind's registration hook is restorekit_register_<kind>s (spaces as _)
KINDS: dict[str, type[Component]] = {
    "degradation": Degradation,
    "prior": Prior,
    "generator": Generator,
    "metric": Metric,
    "stopping rule": StoppingRule,
    "decomposition": Decomposition,
    "network": Network,
}
