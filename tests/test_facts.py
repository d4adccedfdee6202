"""One source per fact: what the plugin core derives instead of repeating.

* the did-you-mean hint: one helper (restorekit.suggest) behind every message;
* the registration hook of each component kind: read from restorekit.hookspecs;
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from restorekit.suggest import closest, did_you_mean

ROOT = Path(__file__).resolve().parents[1]


# -- the did-you-mean hint -------------------------------------------------------------
def test_did_you_mean():
    assert did_you_mean("gausian", ["gaussian", "poisson"]) == "; did you mean 'gaussian'?"
    assert did_you_mean("zzz", ["gaussian", "poisson"]) == ""
    assert did_you_mean("x", []) == ""
    assert closest("priorz", {"prior": 1, "metric": 2}) == "prior"  # any iterable of names, dicts too
    assert closest("zzz", ["prior"]) is None


def test_did_you_mean_cutoff():
    # difflib's ratio of 'ab' and 'abcdef' is 2*2/8 = 0.5: below the default cutoff, at the registry's
    assert did_you_mean("ab", ["abcdef"]) == ""
    assert did_you_mean("ab", ["abcdef"], cutoff=0.5) == "; did you mean 'abcdef'?"


def test_no_other_module_calls_difflib():
    """Every suggestion goes through restorekit.suggest, so they all read (and match) alike."""
    offenders = []
    for path in sorted((ROOT / "restorekit").rglob("*.py")):
        if path.name == "suggest.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if "difflib" in names:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, f"use restorekit.suggest instead of difflib: {offenders}"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda reg: reg.get("degradation", "gausian"), "unknown degradation 'gausian'; did you mean 'gaussian'?"),
        (lambda reg: reg.create("degradation", "gaussian:sigm=3"),
         "degradation 'gaussian' has no parameter 'sigm'; did you mean 'sigma'?"),
    ],
    ids=["registry", "parameter"],
)
def test_messages_keep_their_wording(registry, call, message):
    from restorekit.errors import UsageError

    with pytest.raises(UsageError) as info:
        call(registry)
    assert str(info.value).startswith(message), str(info.value)


def test_preset_message_keeps_its_wording():
    from restorekit.errors import UsageError
    from restorekit.presets import get_preset

    with pytest.raises(UsageError) as info:
        get_preset("denoize")
    assert str(info.value) == "unknown preset 'denoize'; did you mean 'denoise'? (see: restorekit list presets)"


# -- the registration hooks ------------------------------------------------------------
def _specs() -> set[str]:
    from restorekit import hookspecs

    return {n for n, fn in vars(hookspecs).items() if hasattr(fn, "restorekit_spec")}


def test_every_kind_has_its_registration_hook():
    from restorekit.components import KINDS
    from restorekit.plugins import REGISTER_HOOKS

    assert list(REGISTER_HOOKS) == list(KINDS)
    for kind, hook in REGISTER_HOOKS.items():
        assert hook == "restorekit_register_" + kind.replace(" ", "_") + "s"
        assert hook in _specs()


def test_every_registration_hook_is_a_kind_or_the_commands_hook():
    from restorekit.plugins import REGISTER_HOOKS

    assert _specs() - set(REGISTER_HOOKS.values()) == {"restorekit_register_commands"}


def test_a_kind_without_a_hook_is_caught_on_import(monkeypatch):
    import restorekit.plugins as plugins
    from restorekit.components import KINDS, Component

    monkeypatch.setattr(plugins, "KINDS", {**KINDS, "denoiser": Component})
    with pytest.raises(ImportError, match=r"no registration hook for the component kind\(s\) \['denoiser'\].*restorekit_register_denoisers"):
        plugins._register_hooks()
