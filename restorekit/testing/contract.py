"""The contract checks: what restorekit relies on from every component and plugin.

``check_degradation``, ``check_prior``, ``check_generator``, ``check_metric``,
``check_stopping_rule``, ``check_decomposition`` and ``check_network`` check
one component of their kind;
``check_component`` picks the check by the component's kind;
``check_plugin`` registers a plugin on a fresh host and checks every
component it adds.  Each raises :class:`ContractError` naming the
component, its spec and the check that failed, and returns the names of the
checks that passed.  Torch is imported only inside the checks.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from .. import plugins as _plugins
from ..components import (
    KINDS,
    Budget,
    Component,
    Decomposed,
    Decomposition,
    Degradation,
    Generator,
    Hint,
    LoopOptions,
    Metric,
    Network,
    Prior,
    StoppingRule,
)
from ..errors import RegistryError, UsageError
from ..registry import Entry, Registry, check_component as _check_metadata
from .problems import make_problem, make_test_image

#: image shapes ``(C, H, W)`` a degradation is prepared for by default
DEFAULT_SHAPES: tuple[tuple[int, int, int], ...] = ((3, 32, 32), (1, 24, 20))
#: the small problems a solver prior is tried on: (task, (C, H, W)) for :func:`make_problem`;
#: colour and gray, so that both channel counts are exercised
PRIOR_TASKS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("denoise", (3, 32, 32)),
    ("inpaint", (1, 32, 32)),
    ("sr", (1, 32, 32)),
)
#: the plugin name components are attributed to when checked on their own
UNDER_TEST = "under-test"


class ContractError(AssertionError):
    """A component or plugin breaks the contract restorekit relies on."""


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
class _Checker:
    """Names the component in every failure and records the checks passed."""

    def __init__(self, cls: type[Component], spec: str) -> None:
        self.cls = cls
        self.spec = spec
        self.passed: list[str] = []
        self.current = "setup"

    def fail(self, detail: str) -> None:
        raise ContractError(f"{self.cls.kind} '{self.cls.name}' ({self.spec}): {self.current}: {detail}")

    @contextlib.contextmanager
    def check(self, name: str) -> Iterator[None]:
        self.current = name
        try:
            yield
        except ContractError:
            raise
        except Exception as exc:  # the component raised: a contract failure, not a test crash
            self.fail(f"raised {type(exc).__name__}: {exc}")
        self.passed.append(self.current)

    def ensure(self, condition: Any, detail: str) -> None:
        if not condition:
            self.fail(detail)


def _resolve(
    component: type[Component] | str, spec: str | None, kind: str | None, registry: Registry | None
) -> tuple[type[Component], str]:
    """A class and the spec to build it from."""
    if isinstance(component, str):
        if spec is not None:
            raise TypeError("give either a spec string or a class and spec=, not both")
        spec = component
        from ..spec import parse_spec

        name = parse_spec(spec).name
        if registry is None:
            registry = _plugins.get_registry()
        kinds = [kind] if kind else [k for k in KINDS if name in registry.names(k)]
        if not kinds:
            raise ContractError(f"no component named '{name}' is registered (spec {spec!r})")
        if len(kinds) > 1:
            raise ContractError(f"'{name}' names a component of several kinds ({', '.join(kinds)}); pass kind=")
        return registry.get(kinds[0], name).cls, spec
    if not isinstance(component, type):
        raise TypeError(f"expected a component class or a spec string, got {component!r}")
    if kind is not None and getattr(component, "kind", None) != kind:
        raise ContractError(f"{component.__name__} is not a {kind} (its kind is {getattr(component, 'kind', None)!r})")
    return component, spec if spec is not None else getattr(component, "name", "")


def _check_common(c: _Checker, kind: str, plugin: str) -> Component:
    """Metadata, canonical spec round trip and describe(); returns an instance."""
    cls = c.cls
    with c.check("metadata"):
        try:
            _check_metadata(cls, kind, plugin)
        except RegistryError as exc:
            c.fail(str(exc))
    with c.check("spec round trip"):
        reg = Registry()
        reg.add(Entry(cls=cls, plugin=plugin))
        try:
            first = reg.create(kind, c.spec)
        except UsageError as exc:
            c.fail(f"the spec does not build: {exc}")
        canonical = first.spec
        c.ensure(isinstance(canonical, str) and canonical.split(":", 1)[0] == cls.name,
                 f"canonical spec {canonical!r} does not start with the name")
        try:
            again = reg.create(kind, canonical)
        except UsageError as exc:
            c.fail(f"canonical spec {canonical!r} does not parse back: {exc}")
        c.ensure(again.params == first.params,
                 f"canonical spec {canonical!r} gives other parameters: {again.params!r} != {first.params!r}")
        c.ensure(again.spec == canonical, f"canonical spec is not stable: {canonical!r} -> {again.spec!r}")
    with c.check("describe"):
        info = cls.describe()
        c.ensure(info.get("name") == cls.name and info.get("kind") == kind, f"describe() gave {info!r}")
        c.ensure(len(info.get("params", [])) == len(cls.Params.model_fields),
                 "describe() does not list every parameter")
    return first


def _fresh(c: _Checker, kind: str) -> Component:
    return c.cls.from_spec(c.spec)


def _as_numpy(t: Any) -> np.ndarray:
    import torch

    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    return np.asarray(t)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread meanwhile: the checks use tiny tensors, and
    several intra-op threads on a busy machine only wait for each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _single_threaded(fn):
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any):
        with _one_thread():
            return fn(*args, **kwargs)

    return wrapper


# ---------------------------------------------------------------------------
# degradations
# ---------------------------------------------------------------------------
@_single_threaded
def check_degradation(
    component: type[Degradation] | str,
    spec: str | None = None,
    *,
    registry: Registry | None = None,
    shapes: Iterable[tuple[int, int, int]] = DEFAULT_SHAPES,
    seed: int = 0,
    plugin: str = UNDER_TEST,
) -> list[str]:
    """Check a degradation: metadata, spec, prepare/forward/corrupt on small shapes.

    For each ``(C, H, W)`` in ``shapes``, on a fresh instance: ``prepare``
    with a seeded NumPy generator returns ``(C, H/s, W/s)`` for the scale
    factor ``s`` and draws the same mask for the same seed; ``forward`` maps
    a ``(1, C, H, W)`` float32 tensor to ``(1, C, H/s, W/s)`` float32,
    deterministically and differentiably (a gradient reaches the input);
    ``corrupt`` keeps the shape and gives the same draw for the same seed
    (and, for a ``noise_free`` degradation, returns its input unchanged).
    A degradation that needs a file of a given size (``mask:path=...``) is
    checked with ``shapes`` of that size.  One that is not ``simulated``
    (it describes a real observation only) is prepared in restore mode, and
    must refuse benchmark mode with a :class:`~restorekit.errors.UsageError`.
    """
    import torch

    from ..errors import UsageError

    cls, spec = _resolve(component, spec, "degradation", registry)
    c = _Checker(cls, spec)
    _check_common(c, "degradation", plugin)
    mode = "benchmark" if getattr(cls, "simulated", True) else "restore"
    if mode == "restore":
        with c.check("benchmark mode refused"):
            try:
                _fresh(c, "degradation").prepare(tuple(shapes[0]), np.random.default_rng(seed), "benchmark")
            except UsageError:
                pass
            else:
                c.fail("simulated is False but prepare() accepts benchmark mode")
    for shape in shapes:
        shape = tuple(int(v) for v in shape)
        ch, h, w = shape
        tag = f"{ch}x{h}x{w}"
        deg: Degradation = _fresh(c, "degradation")  # type: ignore[assignment]
        with c.check(f"prepare {tag}"):
            s = deg.scale_factor()
            c.ensure(isinstance(s, int) and s >= 1, f"scale_factor() must be a positive int (got {s!r})")
            if h % s or w % s:
                c.fail(f"choose shapes that are multiples of the scale factor {s}")
            out_shape = deg.prepare(shape, np.random.default_rng(seed), mode)
            expect = (ch, h // s, w // s)
            c.ensure(tuple(out_shape) == expect, f"prepare() returned {tuple(out_shape)}, expected {expect}")
            if deg.mask is not None:
                m = np.asarray(deg.mask)
                c.ensure(m.dtype == bool, f"mask must be bool (got {m.dtype})")
                c.ensure(m.shape == expect[1:], f"mask is {m.shape}, expected the output size {expect[1:]}")
            twin: Degradation = _fresh(c, "degradation")  # type: ignore[assignment]
            twin.prepare(shape, np.random.default_rng(seed), mode)
            same = (deg.mask is None and twin.mask is None) or (
                deg.mask is not None and twin.mask is not None and np.array_equal(deg.mask, twin.mask)
            )
            c.ensure(same, "prepare() draws a different mask for the same seed")
            sig = deg.noise_sigma()
            c.ensure(sig is None or (isinstance(sig, (int, float)) and sig >= 0 and math.isfinite(sig)),
                     f"noise_sigma() must be None or a finite number >= 0 (got {sig!r})")
        gen = torch.Generator().manual_seed(seed)
        x0 = torch.rand((1, ch, h, w), generator=gen, dtype=torch.float32)
        with c.check(f"forward {tag}"):
            y = deg.forward(x0.clone())
            c.ensure(isinstance(y, torch.Tensor), f"forward() must return a torch tensor (got {type(y).__name__})")
            c.ensure(tuple(y.shape) == (1, *expect), f"forward() gave {tuple(y.shape)}, expected {(1, *expect)}")
            c.ensure(y.dtype == torch.float32, f"forward() changed the dtype to {y.dtype}")
            c.ensure(bool(torch.isfinite(y).all()), "forward() gave non-finite values")
            y2 = deg.forward(x0.clone())
            c.ensure(torch.equal(y, y2), "forward() is not deterministic")
        with c.check(f"forward differentiable {tag}"):
            x = x0.clone().requires_grad_(True)
            weight = torch.rand((1, *expect), generator=gen) + 0.5
            out = deg.forward(x)
            c.ensure(out.requires_grad, "forward() is not differentiable: its output does not depend on the input through torch")
            (out * weight).sum().backward()
            c.ensure(x.grad is not None, "no gradient reaches the input of forward()")
            c.ensure(bool(torch.isfinite(x.grad).all()), "the gradient of forward() is not finite")
            c.ensure(bool((x.grad != 0).any()), "the gradient of forward() is zero everywhere")
        with c.check(f"corrupt {tag}"):
            y_np = np.ascontiguousarray(y.detach().numpy())
            a = np.asarray(deg.corrupt(y_np.copy()[0], np.random.default_rng([seed, 1])))
            b = np.asarray(deg.corrupt(y_np.copy()[0], np.random.default_rng([seed, 1])))
            c.ensure(a.shape == expect, f"corrupt() changed the shape {expect} to {a.shape}")
            c.ensure(np.isfinite(a).all(), "corrupt() gave non-finite values")
            c.ensure(np.array_equal(a, b), "corrupt() differs between two calls with the same seed")
            if getattr(deg, "noise_free", False):
                c.ensure(np.array_equal(a, y_np[0]), "noise_free is True but corrupt() changes the image")
    return c.passed


# ---------------------------------------------------------------------------
# priors
# ---------------------------------------------------------------------------
@_single_threaded
def check_prior(
    component: type[Prior] | str,
    spec: str | None = None,
    *,
    registry: Registry | None = None,
    tasks: Sequence[Any] = PRIOR_TASKS,
    size: tuple[int, int] = (16, 24),
    seed: int = 0,
    plugin: str = UNDER_TEST,
) -> list[str]:
    """Check a prior: metadata, spec, and what its role promises.

    * ``network``: ``input_channels() >= 0``; ``input_code(H, W, rng)`` is
      ``(1, input_channels(), H, W)`` (with 0: as many channels as ``init``),
      the same for the same seed;
      ``perturb`` keeps the shape; ``loop_options()`` is a LoopOptions.
    * ``penalty``: ``penalty(x)`` is a finite scalar tensor whose gradient
      reaches ``x``.
    * ``solver``: on each of ``tasks`` — ``(task, (C, H, W))`` pairs or task
      names for :func:`make_problem` (default: colour denoising, gray
      inpainting and gray 2x super-resolution at 32x32), or your own
      :class:`~restorekit.Problem` objects — ``solve`` returns a finite
      ``(1, C, H, W)`` image in [0, 1] of ``problem.image_shape`` without
      changing the observation, and the same image twice (checked on the
      first task that works).  A :class:`UsageError` declares a task
      unsupported and is accepted; at least one task must work.
    """
    import torch

    cls, spec = _resolve(component, spec, "prior", registry)
    c = _Checker(cls, spec)
    prior: Prior = _check_common(c, "prior", plugin)  # type: ignore[assignment]
    with c.check("role"):
        c.ensure(cls.role in ("network", "penalty", "solver", "none"),
                 f"role must be network, penalty, solver or none (got {cls.role!r})")
    h, w = size
    if cls.role == "network":
        with c.check("input code"):
            d = prior.input_channels()
            c.ensure(isinstance(d, int) and d >= 0, f"input_channels() must be an int >= 0 (got {d!r})")
            init = torch.rand((1, 3, h, w), generator=torch.Generator().manual_seed(seed + 1))
            d = d or init.shape[1]  # 0: the code follows the image
            z = prior.input_code(h, w, torch.Generator().manual_seed(seed), init=init)
            c.ensure(isinstance(z, torch.Tensor), f"input_code() must return a tensor (got {type(z).__name__})")
            c.ensure(tuple(z.shape) == (1, d, h, w), f"input_code() gave {tuple(z.shape)}, expected {(1, d, h, w)}")
            c.ensure(bool(torch.isfinite(z).all()), "input_code() gave non-finite values")
            z2 = prior.input_code(h, w, torch.Generator().manual_seed(seed), init=init)
            c.ensure(torch.equal(z, z2), "input_code() differs for the same seed")
            p = prior.perturb(z)
            c.ensure(tuple(p.shape) == tuple(z.shape), f"perturb() changed the shape to {tuple(p.shape)}")
        with c.check("loop options"):
            opts = prior.loop_options()
            c.ensure(isinstance(opts, LoopOptions), f"loop_options() must return LoopOptions (got {opts!r})")
    elif cls.role == "penalty":
        with c.check("penalty"):
            x = torch.rand((1, 3, h, w), generator=torch.Generator().manual_seed(seed)).requires_grad_(True)
            p = prior.penalty(x)
            c.ensure(isinstance(p, torch.Tensor), f"penalty() must return a tensor (got {type(p).__name__})")
            c.ensure(p.numel() == 1, f"penalty() must be a scalar (got shape {tuple(p.shape)})")
            c.ensure(bool(torch.isfinite(p).all()), "penalty() is not finite")
            p.sum().backward()
            c.ensure(x.grad is not None, "no gradient of penalty() reaches the image")
            c.ensure(bool(torch.isfinite(x.grad).all()), "the gradient of penalty() is not finite")
    elif cls.role == "solver":
        worked: list[str] = []
        declined: list[str] = []
        for task in tasks:
            if isinstance(task, str):
                task = (task, (3, 32, 32))
            if isinstance(task, tuple):
                name, shape = task
                label = f"{name} {'x'.join(map(str, shape))}"
            else:
                label = "problem"
            with c.check(f"solve {label}"):
                problem = make_problem(name, shape=shape, seed=seed) if isinstance(task, tuple) else task
                before = problem.observation.clone()
                try:
                    out = _fresh(c, "prior").solve(problem)  # type: ignore[attr-defined]
                except UsageError as exc:
                    declined.append(f"{label} ({exc})")
                    c.ensure(torch.equal(problem.observation, before), "solve() changed problem.observation")
                    c.current = f"solve {label}: declined"
                    continue
                c.ensure(torch.equal(problem.observation, before), "solve() changed problem.observation")
                arr = _as_numpy(out)
                expect = (1, *problem.image_shape)
                c.ensure(arr.shape == expect, f"solve() returned shape {arr.shape}, expected {expect}")
                c.ensure(np.isfinite(arr).all(), "solve() returned non-finite values")
                lo, hi = float(arr.min()), float(arr.max())
                c.ensure(lo >= -1e-6 and hi <= 1 + 1e-6, f"solve() returned values in [{lo:.4g}, {hi:.4g}], not [0, 1]")
                if not worked:  # determinism: on the first task that works (solvers can be slow)
                    again = _as_numpy(_fresh(c, "prior").solve(problem))  # type: ignore[attr-defined]
                    c.ensure(np.allclose(arr, again, atol=1e-6, rtol=0),
                             "solve() gives a different result the second time")
                worked.append(label)
        with c.check("solve supports a task"):
            c.ensure(worked, "solve() refused every task: " + "; ".join(declined))
    return c.passed


# ---------------------------------------------------------------------------
# generators
# ---------------------------------------------------------------------------
@_single_threaded
def check_generator(
    component: type[Generator] | str,
    spec: str | None = None,
    *,
    registry: Registry | None = None,
    in_channels: int = 4,
    out_channels: Sequence[int] = (3, 1),
    min_size: int = 16,
    seed: int = 0,
    plugin: str = UNDER_TEST,
) -> list[str]:
    """Check a generator: metadata, spec, and the network it builds.

    Pass a small spec (``"skip:levels=2,channels=8"``): the network is built
    a few times.  For each of ``out_channels``, ``build(in_channels, out,
    init=...)`` gives a module mapping ``(1, in_channels, H, W)`` to
    ``(1, out, H, W)`` in [0, 1] for H and W multiples of ``stride()``
    (H != W); two builds under the same torch seed give the same output;
    the gradient of the output reaches the parameters.
    """
    import torch

    cls, spec = _resolve(component, spec, "generator", registry)
    c = _Checker(cls, spec)
    gen: Generator = _check_common(c, "generator", plugin)  # type: ignore[assignment]
    with c.check("stride"):
        s = gen.stride()
        c.ensure(isinstance(s, int) and s >= 1, f"stride() must be a positive int (got {s!r})")
    h = s * max(1, math.ceil(min_size / s))
    w = h + s
    zgen = torch.Generator().manual_seed(seed)
    z = torch.rand((1, in_channels, h, w), generator=zgen) * 0.1

    def run(out_ch: int, init):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = _fresh(c, "generator").build(in_channels, out_ch, init=init)  # type: ignore[attr-defined]
            y = net(z)
        return net, y

    for out_ch in out_channels:
        init = torch.rand((1, out_ch, h, w), generator=zgen)
        with c.check(f"build {in_channels}->{out_ch}"):
            net, y = run(out_ch, init)
            c.ensure(isinstance(net, torch.nn.Module), f"build() must return a torch.nn.Module (got {type(net).__name__})")
            c.ensure(isinstance(y, torch.Tensor), f"the network must return a tensor (got {type(y).__name__})")
            c.ensure(tuple(y.shape) == (1, out_ch, h, w), f"output {tuple(y.shape)}, expected {(1, out_ch, h, w)}")
            c.ensure(bool(torch.isfinite(y).all()), "the output has non-finite values")
            lo, hi = float(y.detach().min()), float(y.detach().max())
            c.ensure(lo >= 0 and hi <= 1, f"the output is in [{lo:.4g}, {hi:.4g}], not [0, 1]")
        with c.check(f"seeded build {in_channels}->{out_ch}"):
            _, y2 = run(out_ch, init)
            c.ensure(torch.equal(y.detach(), y2.detach()), "two builds under the same torch seed differ")
        with c.check(f"gradient {in_channels}->{out_ch}"):
            params = [p for p in net.parameters() if p.requires_grad]
            c.ensure(params, "the network has no trainable parameters")
            net.zero_grad()
            net(z).mean().backward()
            grads = [p.grad for p in params if p.grad is not None]
            c.ensure(grads, "no gradient reaches the parameters")
            c.ensure(all(bool(torch.isfinite(g).all()) for g in grads), "a parameter gradient is not finite")
            c.ensure(any(bool((g != 0).any()) for g in grads), "every parameter gradient is zero")
    return c.passed


# ---------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------
@_single_threaded
def check_metric(
    component: type[Metric] | str,
    spec: str | None = None,
    *,
    registry: Registry | None = None,
    size: tuple[int, int] = (32, 32),
    channels: Sequence[int] = (3, 1),
    seed: int = 0,
    plugin: str = UNDER_TEST,
) -> list[str]:
    """Check a metric: metadata, spec, and its values on small images.

    For ``(H, W, C)`` float64 images of each of ``channels``: the score of an
    image against itself is at least as good (per ``higher_is_better``) as
    against a noisy copy (so PSNR gives inf, MSE 0, SSIM 1 at best); scores
    of random images are finite floats, with and without a boolean ``(H, W)``
    ``mask``.  A no-reference metric (one that ignores ``image_true``)
    passes when it rates the noisy image worse.
    """
    cls, spec = _resolve(component, spec, "metric", registry)
    c = _Checker(cls, spec)
    metric: Metric = _check_common(c, "metric", plugin)  # type: ignore[assignment]
    with c.check("label"):
        c.ensure(isinstance(metric.label, str) and metric.label, f"label is {metric.label!r}")
    rng = np.random.default_rng(seed)
    h, w = size
    for ch in channels:
        clean = np.moveaxis(make_test_image((ch, h, w), seed), 0, -1).astype(np.float64)
        noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
        with c.check(f"identical images score best ({ch} channel)"):
            best = float(metric.compute(clean, clean.copy(), data_range=1.0))
            worse = float(metric.compute(clean, noisy, data_range=1.0))
            c.ensure(not math.isnan(best) and not math.isnan(worse), f"got NaN ({best}, {worse})")
            if cls.higher_is_better:
                c.ensure(best >= worse, f"an image against itself scores {best}, worse than a noisy copy ({worse})")
            else:
                c.ensure(best <= worse, f"an image against itself scores {best}, worse than a noisy copy ({worse})")
        with c.check(f"finite on random images ({ch} channel)"):
            a, b = rng.random((h, w, ch)), rng.random((h, w, ch))
            v = metric.compute(a, b, data_range=1.0)
            c.ensure(isinstance(v, (float, int, np.floating, np.integer)), f"compute() returned {type(v).__name__}, not a number")
            c.ensure(math.isfinite(float(v)), f"compute() of random images is {v}")
        with c.check(f"mask ({ch} channel)"):
            mask = rng.random((h, w)) < 0.5
            v = metric.compute(a, b, data_range=1.0, mask=mask)
            c.ensure(math.isfinite(float(v)), f"compute() with a mask is {v}")
    return c.passed


# ---------------------------------------------------------------------------
# stopping rules
# ---------------------------------------------------------------------------
@_single_threaded
def check_stopping_rule(
    component: type[StoppingRule] | str,
    spec: str | None = None,
    *,
    registry: Registry | None = None,
    shape: tuple[int, int, int] = (3, 16, 16),
    steps: int = 150,
    seed: int = 0,
    plugin: str = UNDER_TEST,
) -> list[str]:
    """Check a stopping rule: metadata, spec, and a run over ``steps`` outputs.

    The outputs are a clean image plus noise that shrinks, then grows (a fit
    that starts to fit the noise), given with and without a running
    ``average``.  ``should_stop`` answers a bool on every fifth step; the
    chosen iteration is ``None`` or one of those seen, and ``best_output``
    (and ``best_average``) then has the outputs' shape; ``reset()`` forgets
    the run.
    """
    import torch

    cls, spec = _resolve(component, spec, "stopping rule", registry)
    c = _Checker(cls, spec)
    rule: StoppingRule = _check_common(c, "stopping rule", plugin)  # type: ignore[assignment]
    g = torch.Generator().manual_seed(seed)
    clean = torch.from_numpy(make_test_image(shape, seed))[None]
    for with_average in (False, True):
        label = "with an average" if with_average else "without an average"
        with c.check(f"run ({label})"):
            rule.reset()
            avg = None
            for t in range(steps):
                level = 0.3 * abs(t - steps / 2) / steps
                x = (clean + level * torch.randn(clean.shape, generator=g)).clamp(0, 1)
                avg = x.clone() if avg is None else 0.9 * avg + 0.1 * x
                rule.update(x, t, avg if with_average else None)
                if t % 5 == 0:
                    answer = rule.should_stop(t)
                    c.ensure(isinstance(answer, bool), f"should_stop() returned {type(answer).__name__}, not bool")
            chosen = rule.chosen_iteration()
            c.ensure(chosen is None or (isinstance(chosen, int) and 0 <= chosen < steps),
                     f"chosen_iteration() is {chosen!r}, not None or an iteration seen")
            if chosen is not None:
                out = rule.best_output
                c.ensure(isinstance(out, torch.Tensor) and tuple(out.shape) == tuple(clean.shape),
                         f"best_output is {getattr(out, 'shape', out)!r}, not an output of shape {tuple(clean.shape)}")
                c.ensure(bool(torch.isfinite(out).all()), "best_output is not finite")
                if with_average:
                    ba = rule.best_average
                    c.ensure(ba is None or tuple(ba.shape) == tuple(clean.shape),
                             f"best_average is {getattr(ba, 'shape', ba)!r}, not of shape {tuple(clean.shape)}")
    with c.check("reset"):
        rule.reset()
        c.ensure(rule.chosen_iteration() is None, "chosen_iteration() is not None after reset()")
    return c.passed


# ---------------------------------------------------------------------------
# decompositions
# ---------------------------------------------------------------------------
def _two_regions(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """A ``(C, H, W)`` image of a bright disc on a darker textured background."""
    c, h, w = shape
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 4) ** 2
    img = np.where(disc, 0.8, 0.25)[None].repeat(c, 0) + 0.05 * rng.standard_normal((c, h, w))
    if c >= 3:
        img[0] += 0.1 * disc
    return np.clip(img, 0, 1).astype(np.float32)


@_single_threaded
def check_decomposition(
    component: type[Decomposition] | str,
    spec: str | None = None,
    *,
    registry: Registry | None = None,
    shapes: Iterable[tuple[int, int, int]] = ((3, 24, 24), (1, 20, 24)),
    iterations: int = 3,
    seed: int = 0,
    plugin: str = UNDER_TEST,
) -> list[str]:
    """Check a decomposition: metadata, spec, ``tasks`` and ``hints``, and ``decompose`` on small images.

    For each shape and each task in ``tasks``, on a disc-on-background image
    (a box around the disc as the hint where the method takes or needs one;
    ``Budget(iterations=iterations)`` for iterative methods):
    ``decompose`` returns a :class:`Decomposed` with a mask, labels or
    layers; a mask is ``(H, W)``, finite, in [0, 1]; labels ``(H, W)``
    integers; each layer ``(C, H, W)`` (or ``(C, 1, 1)``), finite, in
    [0, 1]; and the input image is left unchanged.
    """
    cls, spec = _resolve(component, spec, "decomposition", registry)
    c = _Checker(cls, spec)
    dec: Decomposition = _check_common(c, "decomposition", plugin)  # type: ignore[assignment]
    with c.check("tasks and hints"):
        c.ensure(isinstance(cls.tasks, tuple) and cls.tasks and all(isinstance(t, str) and t for t in cls.tasks),
                 f"tasks must be a non-empty tuple of names (got {cls.tasks!r})")
        c.ensure(isinstance(cls.hints, tuple) and set(cls.hints) <= {"box", "scribbles"},
                 f"hints must be a tuple of 'box' and 'scribbles' (got {cls.hints!r})")
        c.ensure(not cls.needs_hint or cls.hints, "needs_hint is set but hints names none")
    for shape in shapes:
        h, w = shape[1:]
        hint = Hint(box=(w // 8, h // 8, w - w // 4, h - h // 4)) if cls.hints else None
        for task in cls.tasks:
            with c.check(f"decompose {task} {'x'.join(map(str, shape))}"):
                image = _two_regions(shape, seed)
                before = image.copy()
                budget = Budget(iterations=iterations) if cls.iterative else None
                out = dec.decompose(image, task, hint=hint, seed=seed, budget=budget)
                c.ensure(np.array_equal(image, before), "decompose() changed its input image")
                c.ensure(isinstance(out, Decomposed), f"decompose() returned {type(out).__name__}, not Decomposed")
                c.ensure(out.mask is not None or out.labels is not None or out.layers,
                         "decompose() returned no mask, no labels and no layers")
                if out.mask is not None:
                    m = np.asarray(out.mask)
                    c.ensure(m.shape == (h, w), f"mask has shape {m.shape}, not {(h, w)}")
                    c.ensure(np.isfinite(m).all() and m.min() >= 0 and m.max() <= 1, "mask is not finite in [0, 1]")
                if out.labels is not None:
                    lab = np.asarray(out.labels)
                    c.ensure(lab.shape == (h, w) and lab.dtype.kind in "iub",
                             f"labels are {lab.dtype} {lab.shape}, not integers of shape {(h, w)}")
                for name, layer in out.layers.items():
                    a = np.asarray(layer)
                    c.ensure(a.ndim == 3 and a.shape[1:] in ((h, w), (1, 1)),
                             f"layer {name!r} has shape {a.shape}, not (C, {h}, {w}) or (C, 1, 1)")
                    c.ensure(np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1,
                             f"layer {name!r} is not finite in [0, 1]")
    return c.passed


# ---------------------------------------------------------------------------
# networks to inspect
# ---------------------------------------------------------------------------
@_single_threaded
def check_network(
    component: type[Network] | str,
    spec: str | None = None,
    *,
    registry: Registry | None = None,
    shape: tuple[int, int, int] = (3, 32, 32),
    seed: int = 0,
    plugin: str = UNDER_TEST,
) -> list[str]:
    """Check a network: metadata, spec, ``load()`` and a forward pass.

    ``load()`` returns a ``torch.nn.Module`` in eval mode with its
    parameters on the CPU; ``input_shape()`` is None or three positive
    ints; the module maps a ``(1, C, H, W)`` input of that shape (``shape``
    when None) to a finite tensor (or a tuple/list of them).
    """
    import torch

    cls, spec = _resolve(component, spec, "network", registry)
    c = _Checker(cls, spec)
    net: Network = _check_common(c, "network", plugin)  # type: ignore[assignment]
    with c.check("input_shape"):
        s = net.input_shape()
        c.ensure(s is None or (isinstance(s, tuple) and len(s) == 3 and all(isinstance(v, int) and v > 0 for v in s)),
                 f"input_shape() is {s!r}, not None or (C, H, W)")
    with c.check("load"):
        module = net.load()
        c.ensure(isinstance(module, torch.nn.Module), f"load() returned {type(module).__name__}, not a torch.nn.Module")
        c.ensure(not module.training, "load() returned a module in training mode (call .eval())")
        devices = {p.device.type for p in module.parameters()}
        c.ensure(devices <= {"cpu"}, f"load() returned parameters on {sorted(devices)}, not the CPU")
    with c.check("forward"):
        g = torch.Generator().manual_seed(seed)
        x = torch.rand((1,) + tuple(s or shape), generator=g)
        with torch.no_grad():
            y = module(x)
        outs = list(y) if isinstance(y, (tuple, list)) else [y]
        c.ensure(outs and all(isinstance(o, torch.Tensor) and bool(torch.isfinite(o).all()) for o in outs),
                 "the forward pass gave no finite tensor")
    return c.passed


# ---------------------------------------------------------------------------
# any component; a plugin's components
# ---------------------------------------------------------------------------
_CHECKS = {
    "degradation": check_degradation,
    "prior": check_prior,
    "generator": check_generator,
    "metric": check_metric,
    "stopping rule": check_stopping_rule,
    "decomposition": check_decomposition,
    "network": check_network,
}


def check_component(
    component: type[Component] | str,
    spec: str | None = None,
    *,
    kind: str | None = None,
    registry: Registry | None = None,
    **options: Any,
) -> list[str]:
    """Run the checks of the component's kind; ``options`` go to that check."""
    cls, spec = _resolve(component, spec, kind, registry)
    k = getattr(cls, "kind", None)
    if k not in _CHECKS:
        raise ContractError(f"{cls!r} is not a component of any kind ({', '.join(KINDS)})")
    return _CHECKS[k](cls, spec, **options)


def check_plugin(
    plugin: Any,
    *,
    name: str | None = None,
    specs: Mapping[Any, str] | None = None,
    options: Mapping[Any, Mapping[str, Any]] | None = None,
    skip: Iterable[Any] = (),
) -> dict[tuple[str, str], list[str]]:
    """Register ``plugin`` (a module or any object with ``@hookimpl``
    functions, hashable or not) on a fresh host and check every component it adds.

    ``specs`` maps a component name (or a ``(kind, name)`` pair) to the spec
    to check it with (default: its name; give required parameters and small
    networks here); ``options`` maps one to extra arguments of its check
    (``{"mask": {"shapes": [(3, 32, 32)]}}``); ``skip`` names components
    not to check.  A plugin that implements ``restorekit_register_commands``
    must add its commands to a fresh Typer app without error.  Returns
    ``{(kind, name): [checks passed]}``.
    """
    from .hosts import fresh_host, register_plugin  # not at the top: hosts.py imports ContractError from here

    host = fresh_host()
    info = register_plugin(host, plugin, name)
    if not info.hooks:
        raise ContractError(f"plugin '{info.name}' implements no restorekit hook")
    if "restorekit_register_commands" in info.hooks:
        import typer

        host.register_commands(typer.Typer())
        if info.status != "loaded":
            raise ContractError(f"plugin '{info.name}' failed to load: {info.error}")
    specs = dict(specs or {})
    options = dict(options or {})
    skipped = set(skip)
    results: dict[tuple[str, str], list[str]] = {}
    for kind, cname in info.components:
        if cname in skipped or (kind, cname) in skipped:
            continue
        cls = host.registry.get(kind, cname).cls
        spec = specs.get((kind, cname), specs.get(cname))
        opts = dict(options.get((kind, cname), options.get(cname, {})))
        results[(kind, cname)] = check_component(cls, spec, plugin=info.name, **opts)
    return results
