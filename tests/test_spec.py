import pytest

from restorekit import Params, Prior, hookimpl
from restorekit.errors import RegistryError, SpecError
from restorekit.spec import format_spec, parse_spec


def test_parse_forms():
    assert parse_spec("gaussian").name == "gaussian"
    s = parse_spec("bernoulli:0.5")
    assert s.positional == "0.5" and s.params == {}
    s = parse_spec("gaussian:sigma=25,clip=false")
    assert s.params == {"sigma": "25", "clip": "false"}
    s = parse_spec("skip:channels=[16,32,64],levels=3")
    assert s.params == {"channels": ["16", "32", "64"], "levels": "3"}
    s = parse_spec("dip:noise,reg-noise-std=1/30")
    assert s.positional == "noise"
    assert float(s.params["reg_noise_std"]) == pytest.approx(1 / 30)
    assert parse_spec("  Gaussian : sigma = 5 ").params == {"sigma": "5"}


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty"),
        ("Bad Name", "invalid component name"),
        ("gaussian:", "nothing after"),
        ("gaussian:sigma=1,sigma=2", "given twice"),
        ("gaussian:sigma=1,,clip=true", "empty item"),
        ("gaussian:sigma=1,5", "has no key"),
        ("skip:channels=[1,2", "unbalanced"),
        ("gaussian:sigma=1/0", "division by zero"),
    ],
)
def test_parse_errors(text, fragment):
    with pytest.raises(SpecError, match=fragment):
        parse_spec(text)


def test_canonical_spec_round_trips(registry):
    d = registry.create("degradation", "gaussian:10")
    assert d.spec == "gaussian:sigma=10.0,clip=true"
    again = registry.create("degradation", d.spec)
    assert again.params == d.params
    assert format_spec("x", {}) == "x"


def test_primary_and_keyed_forms_agree(registry):
    a = registry.create("degradation", "bernoulli:0.3")
    b = registry.create("degradation", "bernoulli:fraction=0.3")
    assert a.params == b.params and a.params.fraction == 0.3


@pytest.mark.parametrize(
    "kind, text, fragment",
    [
        ("degradation", "gaussian:sigma=-1", "parameter 'sigma'.*greater than or equal to 0"),
        ("degradation", "gaussian:sigma=abc", "parameter 'sigma'"),
        ("degradation", "gaussian:sigm=3", "no parameter 'sigm'; did you mean 'sigma'"),
        ("degradation", "bernoulli:1.5", "parameter 'fraction'.*less than 1"),
        ("degradation", "periodic:orientation=diagonal", "'horizontal' or 'vertical'"),
        ("degradation", "mask", "parameter 'path' is required"),
        ("prior", "none:3", "no primary parameter"),
        ("degradation", "bernoulli:0.5,fraction=0.2", "given twice"),
        ("generator", "skip:levels=0", "parameter 'levels'"),
        ("generator", "skip:channels=[0,4]", "parameter 'channels'"),
    ],
)
def test_validation_errors_name_the_parameter(registry, kind, text, fragment):
    with pytest.raises(SpecError, match=fragment) as info:
        registry.create(kind, text)
    assert "\n" not in str(info.value)


def test_unknown_name_suggests(registry):
    with pytest.raises(RegistryError, match=r"unknown degradation 'gausian'; did you mean 'gaussian'\?.*valid: .*bernoulli"):
        registry.create("degradation", "gausian:25")


def test_none_for_optional_params(registry):
    b = registry.create("degradation", "box:width=none,x=3")
    assert b.params.width is None and b.params.x == 3


def test_fraction_values_convert(registry):
    p = registry.create("prior", "dip:reg_noise_std=1/20")
    assert p.params.reg_noise_std == pytest.approx(0.05)


# ---------------------------------------------------------------- non-finite numbers


@pytest.mark.parametrize(
    "kind, text, param, got",
    [
        ("prior", "tv:inf", "weight", "inf"),
        ("prior", "tv:weight=nan", "weight", "nan"),
        ("prior", "tv:-inf", "weight", "-inf"),
        ("prior", "dip:reg_noise_std=inf", "reg_noise_std", "inf"),
        ("prior", "dip:input_scale=1e309", "input_scale", "1e309"),
        ("prior", "dip:backtrack=Infinity", "backtrack", "Infinity"),
        ("degradation", "gaussian:sigma=inf", "sigma", "inf"),
        ("degradation", "bernoulli:nan", "fraction", "nan"),
    ],
)
def test_non_finite_numbers_are_rejected(registry, kind, text, param, got):
    name = text.split(":")[0]
    with pytest.raises(SpecError) as info:
        registry.create(kind, text)
    assert str(info.value) == f"{kind} '{name}': parameter '{param}' must be a finite number (got '{got}')"


class Scaled(Prior):
    """A test-only plugin component with float, list-of-float and str parameters."""

    name = "scaled"
    summary = "A test-only penalty."
    primary = "gain"

    class Params(Params):
        gain: float = 1.0
        gains: list[float] = [1.0]
        label: str = "x"
        limit: float = float("inf")  # a non-finite default is the plugin's business


class ScaledPlugin:
    @staticmethod
    @hookimpl
    def restorekit_register_priors(registry):
        registry.add(Scaled)


@pytest.fixture
def plugin_registry(host):
    from restorekit.plugins import PluginInfo

    assert host.register(ScaledPlugin, PluginInfo(name="test-scaled", module="tests.test_spec"))
    return host.registry


@pytest.mark.parametrize(
    "text, param, got",
    [
        ("scaled:inf", "gain", "inf"),
        ("scaled:gain=nan", "gain", "nan"),
        ("scaled:gain=1e400", "gain", "1e400"),
        ("scaled:gains=[1,inf]", "gains", "[1,inf]"),
        ("scaled:gains=[0.5,-inf,2]", "gains", "[0.5,-inf,2]"),
        ("scaled:limit=inf", "limit", "inf"),
    ],
)
def test_non_finite_numbers_are_rejected_for_plugins(plugin_registry, text, param, got):
    with pytest.raises(SpecError) as info:
        plugin_registry.create("prior", text)
    assert str(info.value) == f"prior 'scaled': parameter '{param}' must be a finite number (got '{got}')"


def test_finite_numbers_and_the_text_inf_pass(plugin_registry):
    p = plugin_registry.create("prior", "scaled:gain=2.5,gains=[1,1e300],label=inf")
    assert p.params.gain == 2.5 and p.params.gains == [1.0, 1e300] and p.params.label == "inf"
    assert plugin_registry.create("prior", "scaled").params.limit == float("inf")
    # typed values (the Python API) are checked the same way
    cls = plugin_registry.get("prior", "scaled").cls
    with pytest.raises(SpecError, match="parameter 'gain' must be a finite number"):
        cls(gain=float("nan"))
    assert cls(label="nan").params.label == "nan"


# ---------------------------------------------------------------- kernel sizes

KERNEL_PARAMS = [
    ("skip", "kernel_down"),
    ("skip", "kernel_up"),
    ("skip", "kernel_skip"),
    ("encoder-decoder", "kernel_down"),
    ("encoder-decoder", "kernel_up"),
]


def test_every_generator_kernel_parameter_is_listed(registry):
    found = {
        (e.name, f)
        for e in registry.entries("generator")
        for f in e.cls.Params.model_fields
        if "kernel" in f
    }
    assert found == set(KERNEL_PARAMS)


@pytest.mark.parametrize("name, param", KERNEL_PARAMS)
@pytest.mark.parametrize("value", ["4", "2", "[3,3,3,3,4]"])
def test_even_kernel_sizes_are_rejected(registry, name, param, value):
    if param == "kernel_skip" and value.startswith("["):
        value = "6"
    with pytest.raises(SpecError, match=rf"generator '{name}': parameter '{param}': must be (an )?odd") as info:
        registry.create("generator", f"{name}:{param}={value}")
    assert "centre pixel" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name, param", KERNEL_PARAMS)
def test_odd_kernel_sizes_are_accepted(registry, name, param):
    g = registry.create("generator", f"{name}:{param}=5")
    assert getattr(g.params, param) == 5
    with pytest.raises(SpecError, match=f"parameter '{param}'"):
        registry.create("generator", f"{name}:{param}=0")
