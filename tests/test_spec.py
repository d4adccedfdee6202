import pytest

from restorekit import Params, Prior, hookimpl
from restorekit.errors import RegistryError, SpecError
from restorekit.spec import format_spec, format_value, parse_spec


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


# ---------------------------------------------------------------- quoting


@pytest.mark.parametrize(
    "text, positional, params",
    [
        ("mask:'my,file.png'", "my,file.png", {}),
        ('mask:"my,file.png"', "my,file.png", {}),
        ("mask:'a=b.png'", "a=b.png", {}),
        ('mask:path="a=b.png"', None, {"path": "a=b.png"}),
        ('text:"Hello, world",font_size=20', "Hello, world", {"font_size": "20"}),
        ("text:'a:b [c] (d'", "a:b [c] (d", {}),
        ("text: ' padded ' ", " padded ", {}),
        ("text:'it''s'", "it's", {}),
        ("text:\"say 'hi'\"", "say 'hi'", {}),
        ("text:it's", "it's", {}),  # a quote inside a value is an ordinary character
        ("text:''", "", {}),
        ("x:a='1/2',b=1/2", None, {"a": "1/2", "b": repr(0.5)}),
        ("x:a=['p,q', \"r]s\",t]", None, {"a": ["p,q", "r]s", "t"]}),
        ("x:a='[1,2]'", None, {"a": "[1,2]"}),
        (r"mask:C:\masks\a.png", r"C:\masks\a.png", {}),  # backslashes are not special
    ],
)
def test_quoted_values_are_literal(text, positional, params):
    s = parse_spec(text)
    assert s.positional == positional and s.params == params


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("mask:'my,file.png", "unterminated quote"),
        ('mask:path="a.png', "unterminated quote"),
        ("mask:'a'b", "after closing quote"),
        ("x:a=['p',q", "unbalanced"),
        ("mask:my,file.png", "has no key.*quote a value"),
    ],
)
def test_quoting_errors(text, fragment):
    with pytest.raises(SpecError, match=fragment) as info:
        parse_spec(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "value, text",
    [
        ("plain.png", "plain.png"),
        ("my,file.png", "'my,file.png'"),
        ("a=b.png", "'a=b.png'"),
        ("it's", "\"it's\""),
        ("it's \"x\"", "'it''s \"x\"'"),
        ("", "''"),
        (" x", "' x'"),
        ("1/2", "'1/2'"),
        ("none", "'none'"),
        (["a,b", "c"], "['a,b',c]"),
    ],
)
def test_format_value_quotes_what_would_not_read_back(value, text):
    assert format_value(value) == text
    assert parse_spec(format_spec("x", {"v": value})).params == {"v": value}


def test_quoted_paths_reach_the_component_and_round_trip(registry):
    m = registry.create("degradation", "mask:'my,file.png'")
    assert m.params.path == "my,file.png"
    assert m.spec == "mask:path='my,file.png',invert=false"
    assert registry.create("degradation", m.spec).params == m.params
    assert registry.create("degradation", 'mask:path="a=b.png"').params.path == "a=b.png"
    t = registry.create("degradation", 'text:"Hello, world",font_size=20')
    assert t.params.text == "Hello, world" and t.params.font_size == 20
    # a quoted none is the text "none", not "no value"
    d = registry.create("prior", "dip:guide='none'")
    assert d.params.guide == "none"
    assert registry.create("prior", d.spec).params == d.params
    assert registry.create("prior", "dip:guide=none").params.guide is None
