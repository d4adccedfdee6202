"""Contract tests: every registered component, built-in or installed, passes restorekit.testing.

Parametrised over what the real plugin host finds (built-ins and every
installed plugin's entry points), so a third-party component is checked by
the same tests as the built-ins.  The second half checks that the checks
themselves fail on broken components.
"""

from __future__ import annotations

import numpy as np
import pytest

from restorekit import Degradation, Generator, Metric, Params, Prior, hookimpl
from restorekit.plugins import PluginHost, get_host
from restorekit.testing import (
    ContractError,
    check_component,
    check_degradation,
    check_generator,
    check_metric,
    check_plugin,
    check_prior,
    make_problem,
    registered,
    restorekit_host,  # noqa: F401  (fixtures: imported by name, tests/conftest.py is not ours)
    restorekit_register,  # noqa: F401
)

#: small networks: the defaults are the paper's (millions of parameters)
GENERATOR_SPECS = {
    "skip": "skip:levels=2,channels=8",
    "encoder-decoder": "encoder-decoder:levels=2,channels=8",
    "unet": "unet:levels=2,feature_scale=16",
    "resnet": "resnet:blocks=2,channels=8",
}

#: components whose Params have required fields: spec factory (tmp_path -> spec, options)
def _mask_spec(tmp_path):
    import imageio.v3 as iio

    m = np.full((32, 32), 255, dtype=np.uint8)
    m[8:20, 10:22] = 0
    m[::5, ::3] = 0
    path = tmp_path / "mask.png"
    iio.imwrite(path, m)
    return f"mask:path={path}", {"shapes": [(3, 32, 32), (1, 32, 32)]}


REQUIRED_SPECS = {("degradation", "mask"): _mask_spec}

_INSTALLED = PluginHost().load()
_ENTRIES = _INSTALLED.registry.entries()


def _needs_required(cls) -> list[str]:
    return [n for n, f in cls.Params.model_fields.items() if f.is_required()]


@pytest.mark.parametrize("entry", _ENTRIES, ids=[f"{e.kind}-{e.name}" for e in _ENTRIES])
def test_component_contract(entry, tmp_path):
    key = (entry.kind, entry.name)
    options = {"plugin": entry.plugin}
    spec = None
    if key in REQUIRED_SPECS:
        spec, extra = REQUIRED_SPECS[key](tmp_path)
        options.update(extra)
    elif _needs_required(entry.cls):
        pytest.skip(
            f"{entry.kind} '{entry.name}' (plugin {entry.plugin}) has required parameters "
            f"{_needs_required(entry.cls)}; add an example spec to REQUIRED_SPECS in tests/test_contract.py"
        )
    elif entry.kind == "generator":
        spec = GENERATOR_SPECS.get(entry.name)
    passed = check_component(entry.cls, spec, **options)
    assert "metadata" in passed and "spec round trip" in passed


def test_builtins_are_all_covered():
    builtins = [e for e in _ENTRIES if e.plugin.startswith("restorekit.")]
    from restorekit.components import KINDS

    assert {e.kind for e in builtins} == set(KINDS)
    for e in builtins:
        assert not _needs_required(e.cls) or (e.kind, e.name) in REQUIRED_SPECS, e.name


def test_check_by_spec_string_uses_the_registry(registry):
    passed = check_component("gaussian:sigma=10", registry=registry)
    assert "corrupt 3x32x32" in passed
    with pytest.raises(ContractError, match="no component named 'nosuch'"):
        check_component("nosuch", registry=registry)


# ---------------------------------------------------------------------------
# the checks fail on broken components
# ---------------------------------------------------------------------------
class _Deg(Degradation):
    name = "broken"
    summary = "A deliberately broken degradation."


class WrongShape(_Deg):
    def forward(self, x):
        return x[..., :-1]


class NotDifferentiable(_Deg):
    def forward(self, x):
        import torch

        return torch.from_numpy(x.detach().numpy().copy())


class RandomForward(_Deg):
    def forward(self, x):
        import torch

        return x + torch.rand_like(x)


class UnseededCorrupt(_Deg):
    def corrupt(self, y, rng):
        return y + np.random.default_rng().normal(0, 0.1, y.shape).astype(y.dtype)


class ShrinkingCorrupt(_Deg):
    def corrupt(self, y, rng):
        return y[:, 1:]


class NoisyButNoiseFree(_Deg):
    noise_free = True

    def corrupt(self, y, rng):
        return y + rng.normal(0, 0.1, y.shape).astype(y.dtype)


class BadPrepare(_Deg):
    scale = 2

    def prepare(self, shape, rng, mode):
        return shape  # ignores the scale factor


class UnseededMask(_Deg):
    def prepare(self, shape, rng, mode):
        out = super().prepare(shape, rng, mode)
        self.mask = np.random.default_rng().random(shape[1:]) < 0.5
        return out


class NoSummary(_Deg):
    summary = ""


@pytest.mark.parametrize(
    "cls, fragment",
    [
        (WrongShape, "forward 3x32x32: forward\\(\\) gave"),
        (NotDifferentiable, "forward\\(\\) is not differentiable"),
        (RandomForward, "not deterministic"),
        (UnseededCorrupt, "same seed"),
        (ShrinkingCorrupt, "changed the shape"),
        (NoisyButNoiseFree, "noise_free is True but corrupt\\(\\) changes the image"),
        (BadPrepare, "prepare\\(\\) returned"),
        (UnseededMask, "different mask for the same seed"),
        (NoSummary, "metadata: .*one-line summary"),
    ],
)
def test_degradation_checks_fail(cls, fragment):
    with pytest.raises(ContractError, match=fragment):
        check_degradation(cls)


class _Solver(Prior):
    name = "broken-solver"
    summary = "A deliberately broken solver."
    role = "solver"


class SmallSolver(_Solver):
    def solve(self, problem):
        return problem.observation[..., :-1, :]


class BrightSolver(_Solver):
    def solve(self, problem):
        return problem.init * 0 + 2.0


class RandomSolver(_Solver):
    def solve(self, problem):
        import torch

        return torch.rand((1, *problem.image_shape))


class RefusingSolver(_Solver):
    def solve(self, problem):
        from restorekit import UsageError

        raise UsageError("not today")


class InPlaceSolver(_Solver):
    def solve(self, problem):
        problem.observation.clamp_(0.2, 0.8)
        return problem.init


class BadRole(_Solver):
    role = "magic"


class WrongDepth(Prior):
    name = "broken-net"
    summary = "Input code of the wrong depth."
    role = "network"

    def input_channels(self):
        return 8

    def input_code(self, height, width, rng, init=None):
        import torch

        return torch.rand((1, 4, height, width), generator=rng)


class VectorPenalty(Prior):
    name = "broken-penalty"
    summary = "A penalty that is not a scalar."
    role = "penalty"

    def penalty(self, x):
        return x.abs().mean(dim=(2, 3))


@pytest.mark.parametrize(
    "cls, fragment",
    [
        (SmallSolver, "returned shape"),
        (BrightSolver, "not \\[0, 1\\]"),
        (RandomSolver, "different result"),
        (RefusingSolver, "refused every task: denoise 3x32x32 \\(not today\\)"),
        (InPlaceSolver, "changed problem.observation"),
        (BadRole, "role"),
        (WrongDepth, "input_code\\(\\) gave \\(1, 4"),
        (VectorPenalty, "must be a scalar"),
    ],
)
def test_prior_checks_fail(cls, fragment):
    with pytest.raises(ContractError, match=fragment):
        check_prior(cls)


class _Gen(Generator):
    name = "broken-net"
    summary = "A deliberately broken generator."


class Unbounded(_Gen):
    def build(self, in_channels, out_channels, *, init=None):
        import torch

        return torch.nn.Conv2d(in_channels, out_channels, 3, padding=1)


class Frozen(_Gen):
    def build(self, in_channels, out_channels, *, init=None):
        import torch

        conv = torch.nn.Conv2d(in_channels, out_channels, 1)
        conv.requires_grad_(False)
        return torch.nn.Sequential(conv, torch.nn.Sigmoid())


class Unseeded(_Gen):
    def build(self, in_channels, out_channels, *, init=None):
        import torch

        conv = torch.nn.Conv2d(in_channels, out_channels, 1)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(np.random.default_rng().normal(size=conv.weight.shape)))
        return torch.nn.Sequential(conv, torch.nn.Sigmoid())


@pytest.mark.parametrize(
    "cls, fragment",
    [(Unbounded, "not \\[0, 1\\]"), (Frozen, "no trainable parameters"), (Unseeded, "same torch seed differ")],
)
def test_generator_checks_fail(cls, fragment):
    with pytest.raises(ContractError, match=fragment):
        check_generator(cls)


class Backwards(Metric):
    name = "backwards"
    summary = "Rewards noise (a higher_is_better mistake)."

    def compute(self, image_true, image_test, *, data_range=1.0, mask=None):
        return float(np.mean((image_true - image_test) ** 2))


class NoMask(Metric):
    name = "no-mask"
    summary = "Forgot the mask argument."

    def compute(self, image_true, image_test, *, data_range=1.0):
        return 0.0


class NaNMetric(Metric):
    name = "nan"
    summary = "Not a number."
    higher_is_better = False

    def compute(self, image_true, image_test, *, data_range=1.0, mask=None):
        return float(np.mean(image_test - image_true) * 0) if mask is None else float("nan")


@pytest.mark.parametrize(
    "cls, fragment",
    [(Backwards, "worse than a noisy copy"), (NoMask, "mask .*unexpected keyword"), (NaNMetric, "with a mask is nan")],
)
def test_metric_checks_fail(cls, fragment):
    with pytest.raises(ContractError, match=fragment):
        check_metric(cls)


# ---------------------------------------------------------------------------
# plugins and fixtures
# ---------------------------------------------------------------------------
class _GoodPlugin:
    class Invert(Degradation):
        name = "invert"
        summary = "Photographic negative."

        def forward(self, x):
            return 1 - x

    class Level(Metric):
        name = "level"
        summary = "Absolute difference of the mean levels (lower is better)."
        higher_is_better = False
        primary = "gain"

        class Params(Params):
            gain: float = 1.0

        def compute(self, image_true, image_test, *, data_range=1.0, mask=None):
            return self.params.gain * abs(float(image_test.mean() - image_true.mean()))

    @hookimpl
    def restorekit_register_degradations(self, registry):
        registry.add(self.Invert)

    @hookimpl
    def restorekit_register_metrics(self, registry):
        registry.add(self.Level)


class _TypoPlugin:
    @hookimpl
    def restorekit_register_degradation(self, registry):
        pass


class _BadCommands:
    @hookimpl
    def restorekit_register_commands(self, app):
        raise RuntimeError("no commands today")


def test_check_plugin_runs_every_component():
    results = check_plugin(_GoodPlugin(), name="good")
    assert set(results) == {("degradation", "invert"), ("metric", "level")}


def test_check_plugin_reports_a_plugin_that_fails_to_load():
    with pytest.raises(ContractError, match="unknown hook 'restorekit_register_degradation'"):
        check_plugin(_TypoPlugin(), name="typo")
    with pytest.raises(ContractError, match="while adding commands: RuntimeError: no commands today"):
        check_plugin(_BadCommands(), name="cmds")


def test_registered_installs_the_host_meanwhile():
    before = get_host()
    with registered(_GoodPlugin(), name="good") as host:
        assert get_host() is host
        assert host.registry.get("degradation", "invert").plugin == "good"
        from restorekit import restore

        r = restore(np.full((16, 16), 0.25, dtype=np.float32), degrade="invert", prior="none",
                    iters=2, metrics=["level"], device="cpu")
        assert r.record["components"]["degradations"][0]["plugin"] == "good"
    assert get_host() is before


def test_fixtures(restorekit_host, restorekit_register):
    assert get_host() is restorekit_host
    info = restorekit_register(_GoodPlugin(), name="good")
    assert info.components == [("degradation", "invert"), ("metric", "level")]
    assert "invert" in restorekit_host.registry.names("degradation")
    with pytest.raises(ContractError, match="unknown hook"):
        restorekit_register(_TypoPlugin(), name="typo")


def test_make_problem_tasks():
    for task, obs_shape in [("denoise", (1, 3, 32, 32)), ("inpaint", (1, 3, 32, 32)), ("sr", (1, 3, 16, 16))]:
        p = make_problem(task)
        assert tuple(p.observation.shape) == obs_shape
        assert tuple(p.init.shape) == (1, 3, 32, 32) and p.image_shape == (3, 32, 32)
        assert (p.mask is not None) == (task == "inpaint")
        assert (p.sigma is not None) == (task == "denoise")


def test_the_package_offers_its_names_without_importing_torch():
    """restorekit.testing re-exports its modules' public names (the fixtures too: pytest looks on the
    package), and importing it, as pytest does in every test run, does not import torch."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import restorekit.testing as t\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "missing = [n for n in t.__all__ if not hasattr(t, n)]\n"
        "assert not missing, missing\n"
        "assert {'restorekit_host', 'restorekit_register', 'check_plugin', 'registered'} <= set(t.__all__)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
