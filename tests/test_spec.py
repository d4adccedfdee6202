import pytest

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
