"""Property tests of the spec syntax: canonical text reads back, the parser
fails only with SpecError, and validation accepts exactly the finite numbers."""

from __future__ import annotations

import math

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from restorekit import Params, Prior  # noqa: E402
from restorekit.errors import SpecError  # noqa: E402
from restorekit.spec import Spec, format_spec, parse_spec  # noqa: E402

FAST = settings(max_examples=200, deadline=None)

# every character the syntax gives a meaning to, whitespace of several kinds,
# and anything else Unicode has
SPECIAL = list(",=:[]()'\"\\ ") + ["\t", "\n", "\u3000", "\x1c"]
CHARS = st.one_of(st.sampled_from(SPECIAL), st.characters())
TRICKY = st.sampled_from(["", " ", "none", "NULL", "1/2", " 3 / 4 ", "1/0", "[a]", "''", "'", "a'b", "C:\\x.png"])
STRINGS = st.one_of(st.text(CHARS, max_size=20), TRICKY)
VALUES = st.one_of(STRINGS, st.lists(STRINGS, max_size=4))
NAMES = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)
KEYS = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)


@FAST
@given(NAMES, st.dictionaries(KEYS, VALUES, max_size=4))
def test_format_then_parse_gives_the_values_back(name, params):
    text = format_spec(name, params)
    spec = parse_spec(text)
    assert spec.name == name
    assert spec.positional is None
    assert spec.params == params


@FAST
@given(st.one_of(st.text(CHARS, max_size=40), st.text(CHARS, max_size=40).map(lambda t: "x:" + t)))
def test_parse_spec_raises_only_spec_error(text):
    try:
        result = parse_spec(text)
    except SpecError as exc:
        assert "\n" not in str(exc)  # one line: the echoed text is repr()-escaped
    else:
        assert isinstance(result, Spec)


class Gain(Prior):
    """A plugin-style component with unconstrained float parameters."""

    name = "gain"
    summary = "test only"
    primary = "gain"

    class Params(Params):
        gain: float = 1.0
        gains: list[float] = []


@FAST
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_validation_accepts_exactly_the_finite_floats(x):
    finite = math.isfinite(x)
    for spec in (f"gain:{x!r}", f"gain:gains=[0.5,{x!r}]"):
        try:
            Gain.from_spec(spec)
            accepted = True
        except SpecError as exc:
            assert "must be a finite number" in str(exc)
            accepted = False
        assert accepted == finite, spec
    try:
        Gain(gain=x)  # typed values, as the Python API passes them
        accepted = True
    except SpecError:
        accepted = False
    assert accepted == finite
