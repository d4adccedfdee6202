"""Plugin discovery, registration errors and their reporting."""

import json
import os
import subprocess
import sys

import pytest

from restorekit.errors import RegistryError
from restorekit.plugins import BUILTIN_PLUGINS, PluginError, PluginHost, PluginInfo, reset_host
from restorekit.registry import ComponentRegistry

GOOD = '''
from pydantic import Field
import restorekit
from restorekit import Degradation, Metric, Params, hookimpl


class Invert(Degradation):
    name = "invert"
    summary = "Photographic negative (a toy forward model)."

    def forward(self, x):
        return 1 - x


class Brightness(Metric):
    name = "brightness"
    summary = "Mean brightness difference."
    primary = "gain"

    class Params(Params):
        gain: float = Field(1.0, gt=0, description="scale of the score")

    def compute(self, image_true, image_test, *, data_range=1.0, mask=None):
        return float(self.params.gain * (image_test.mean() - image_true.mean()))


@hookimpl
def restorekit_register_degradations(registry):
    registry.add(Invert)


@hookimpl
def restorekit_register_metrics(registry):
    registry.add(Brightness)


@hookimpl
def restorekit_register_commands(app):
    @app.command("hello")
    def hello():
        """Say hello from a plugin."""
        print("hello from goodplug")
'''

BROKEN_IMPORT = '''
raise ImportError("this plugin needs libfoo")
'''

MISSPELLED = '''
from restorekit import hookimpl

@hookimpl
def restorekit_register_degradation(registry):
    pass
'''

CLASH = '''
from restorekit import Degradation, hookimpl

class Gaussian(Degradation):
    name = "gaussian"
    summary = "A second gaussian."

@hookimpl
def restorekit_register_degradations(registry):
    registry.add(Gaussian)
'''


def test_builtins_are_plugins(host):
    names = {p.name for p in host.plugins if p.builtin}
    assert names == set(BUILTIN_PLUGINS)
    assert all(p.status == "loaded" for p in host.plugins)
    entry = host.registry.get("degradation", "gaussian")
    assert entry.plugin == "restorekit.degradations"


def test_builtin_entry_points_are_declared():
    """The built-ins are the installed distribution's entry points (when it is this copy of restorekit)."""
    import importlib.metadata as md

    from restorekit import plugins

    dist = md.distribution("restorekit")
    if not plugins._describes_this_package(dist):
        pytest.skip("the installed restorekit is another copy (tests/test_facts.py checks pyproject.toml)")
    eps = {ep.name: ep.value for ep in md.entry_points(group="restorekit") if ep.dist and ep.dist.name == "restorekit"}
    assert eps == plugins.BUILTIN_PLUGINS, "reinstall restorekit: its metadata is older than pyproject.toml"


def test_entry_point_discovery(fake_plugin):
    fake_plugin("goodplug", GOOD, version="0.4.2")
    host = PluginHost().load()
    info = host.plugin("goodplug")
    assert info is not None and info.status == "loaded", info
    assert info.version == "0.4.2" and info.dist == "goodplug"
    assert ("degradation", "invert") in info.components
    assert ("metric", "brightness") in info.components
    assert host.registry.get("degradation", "invert").plugin == "goodplug"
    assert "restorekit_register_commands" in info.hooks


def test_broken_plugin_is_reported_and_rest_works(fake_plugin):
    fake_plugin("goodplug", GOOD)
    fake_plugin("brokenplug", BROKEN_IMPORT)
    host = PluginHost().load()
    bad = host.plugin("brokenplug")
    assert bad.status == "failed" and "libfoo" in bad.error
    assert any("brokenplug" in w and "libfoo" in w for w in host.warnings)
    assert host.plugin("goodplug").status == "loaded"
    assert "invert" in host.registry.names("degradation")


def test_misspelled_hook_fails_with_suggestion(fake_plugin):
    fake_plugin("typoplug", MISSPELLED)
    host = PluginHost().load()
    info = host.plugin("typoplug")
    assert info.status == "failed"
    assert "unknown hook 'restorekit_register_degradation'" in info.error
    assert "did you mean 'restorekit_register_degradations'" in info.error


OPTIONAL_HOOK = '''
from restorekit import hookimpl
from restorekit.builtins.degradations import Gaussian


class Loud(Gaussian):
    name = "loud"
    summary = "Gaussian noise, under another name."


@hookimpl(optionalhook=True)
def restorekit_register_frobnicators(registry):
    """A hook of a newer restorekit: optional, so an older one loads the plugin anyway."""


@hookimpl
def restorekit_register_degradations(registry):
    registry.add(Loud)
'''


def test_optional_hook_of_a_newer_restorekit_is_not_an_error(fake_plugin):
    """Unknown hooks are pluggy's check_pending(): optionalhook=True implementations pass."""
    fake_plugin("optplug", OPTIONAL_HOOK)
    host = PluginHost().load()
    info = host.plugin("optplug")
    assert info.status == "loaded", info.error
    assert info.components == [("degradation", "loud")]
    assert "restorekit_register_frobnicators" in info.hooks


def test_duplicate_name_names_both_plugins(fake_plugin):
    fake_plugin("clashplug", CLASH)
    host = PluginHost().load()
    info = host.plugin("clashplug")
    assert info.status == "failed"
    assert "'restorekit.degradations'" in info.error and "'clashplug'" in info.error
    # the first provider keeps the name
    assert host.registry.get("degradation", "gaussian").plugin == "restorekit.degradations"


def test_strict_mode_raises(fake_plugin, monkeypatch):
    fake_plugin("brokenplug", BROKEN_IMPORT)
    monkeypatch.setenv("RESTOREKIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="brokenplug"):
        PluginHost().load()


def test_disable_and_allow_lists(fake_plugin, monkeypatch):
    fake_plugin("goodplug", GOOD)
    monkeypatch.setenv("RESTOREKIT_DISABLE_PLUGINS", "goodplug")
    host = PluginHost().load()
    assert host.plugin("goodplug").status == "disabled"
    assert "invert" not in host.registry.names("degradation")
    assert host.pm.is_blocked("goodplug")  # pluggy refuses the name from now on
    import goodplug

    late = PluginInfo(name="goodplug", module="goodplug")
    assert not host.register(goodplug, late)
    assert late.status == "disabled" and late.error == "RESTOREKIT_DISABLE_PLUGINS"
    assert "invert" not in host.registry.names("degradation")
    monkeypatch.delenv("RESTOREKIT_DISABLE_PLUGINS")
    monkeypatch.setenv("RESTOREKIT_LOAD_PLUGINS", "")
    host = PluginHost().load()
    assert host.plugin("goodplug").status == "disabled" and host.pm.is_blocked("goodplug")
    assert "gaussian" in host.registry.names("degradation")  # built-ins always load


def test_registry_add_validates_with_plugin_name():
    from restorekit import Degradation, Prior

    reg = ComponentRegistry("degradation", "myplug")

    class NoName(Degradation):
        summary = "x"

    class WrongKind(Prior):
        name = "wrong"
        summary = "x"

    class NoSummary(Degradation):
        name = "nosum"

    for cls, frag in [(NoName, "name must be"), (WrongKind, "not a subclass"), (NoSummary, "one-line summary")]:
        with pytest.raises(RegistryError, match=frag) as info:
            reg.add(cls)
        assert "plugin 'myplug'" in str(info.value)


def _cli(args, env_extra=None, cwd=None):
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "restorekit.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def test_real_cli_sees_plugin(fake_plugin, tmp_path):
    root = fake_plugin("goodplug", GOOD, version="0.4.2")
    fake_plugin("brokenplug", BROKEN_IMPORT)
    env = {"PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = _cli(["list", "degradations", "--json"], env)
    assert r.returncode == 0, r.stderr
    names = {d["name"]: d for d in json.loads(r.stdout)["degradation"]}
    assert names["invert"]["plugin"] == "goodplug"
    assert "warning: plugin 'brokenplug' failed to load" in r.stderr
    assert r.stderr.count("\n") == 1  # exactly one warning line
    r = _cli(["plugins", "--json"], env)
    rows = {p["name"]: p for p in json.loads(r.stdout)}
    assert rows["goodplug"]["status"] == "loaded" and rows["goodplug"]["version"] == "0.4.2"
    assert rows["brokenplug"]["status"] == "failed"
    assert "restorekit.degradations" not in rows  # built-ins only with --all
    r = _cli(["plugins", "--all", "--json"], env)
    assert "restorekit.degradations" in {p["name"] for p in json.loads(r.stdout)}
    r = _cli(["hello"], env)
    assert r.returncode == 0 and "hello from goodplug" in r.stdout


def test_hook_with_unknown_argument_names_it(host):
    from restorekit import hookimpl
    from restorekit.plugins import PluginInfo

    class ExtraArg:
        @hookimpl
        def restorekit_register_priors(self, registry, device):
            pass

    assert not host.register(ExtraArg(), PluginInfo(name="extraarg", module="x"))
    err = host.plugin("extraarg").error
    assert "'device'" in err and "it has: registry" in err


# -- a plugin that tries to end the process -------------------------------------
EXIT_ON_IMPORT = '''
import sys
sys.exit(3)
'''

CUSTOM_BASE_ON_IMPORT = '''
class Fatal(BaseException):
    pass

raise Fatal("libgpu is missing")
'''

EXIT_IN_HOOK = '''
import sys
from restorekit import hookimpl

@hookimpl
def restorekit_register_priors(registry):
    sys.exit("no GPU, giving up")
'''

GENERATOR_EXIT_IN_HOOK = '''
from restorekit import hookimpl

@hookimpl
def restorekit_register_metrics(registry):
    raise GeneratorExit()
'''

EXIT_IN_COMMANDS = '''
import sys
from restorekit import hookimpl

@hookimpl
def restorekit_register_commands(app):
    sys.exit(4)
'''

INTERRUPT_ON_IMPORT = '''
raise KeyboardInterrupt
'''

INTERRUPT_IN_HOOK = '''
from restorekit import hookimpl

@hookimpl
def restorekit_register_degradations(registry):
    raise KeyboardInterrupt
'''


@pytest.mark.parametrize(
    "source, fragment",
    [
        (EXIT_ON_IMPORT, "SystemExit"),
        (CUSTOM_BASE_ON_IMPORT, "Fatal: libgpu is missing"),
        (EXIT_IN_HOOK, "SystemExit"),
        (GENERATOR_EXIT_IN_HOOK, "GeneratorExit"),
    ],
    ids=["sys.exit on import", "BaseException on import", "sys.exit in a hook", "GeneratorExit in a hook"],
)
def test_base_exception_in_a_plugin_is_isolated(fake_plugin, monkeypatch, source, fragment):
    """SystemExit & co. from a plugin are plugin failures, not the end of the caller's process."""
    fake_plugin("goodplug", GOOD)
    fake_plugin("exitplug", source)
    host = PluginHost().load()
    info = host.plugin("exitplug")
    assert info.status == "failed" and fragment in info.error, info
    assert [w for w in host.warnings if "exitplug" in w and fragment in w], host.warnings
    assert host.plugin("goodplug").status == "loaded"
    assert "invert" in host.registry.names("degradation") and "gaussian" in host.registry.names("degradation")
    assert not [c for c in info.components], info.components
    monkeypatch.setenv("RESTOREKIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="exitplug"):
        PluginHost().load()


def test_restore_survives_a_plugin_calling_sys_exit(fake_plugin):
    """restorekit.restore() builds the process-wide host; a plugin's sys.exit() must not end the caller."""
    import numpy as np

    import restorekit

    fake_plugin("exitplug", EXIT_ON_IMPORT)
    reset_host()
    try:
        r = restorekit.restore(np.full((16, 16), 0.5, dtype=np.float32), degrade="gaussian:25", prior="tv",
                               iters=1, metrics=[], device="cpu")
        assert r.image.shape == (16, 16)
        assert restorekit.plugins.get_host().plugin("exitplug").status == "failed"
    finally:
        reset_host()


def test_sys_exit_in_register_commands_is_isolated(fake_plugin):
    import typer

    fake_plugin("exitplug", EXIT_IN_COMMANDS)
    host = PluginHost().load()
    assert host.plugin("exitplug").status == "loaded"
    host.register_commands(typer.Typer())
    info = host.plugin("exitplug")
    assert info.status == "failed" and "while adding commands" in info.error and "SystemExit" in info.error
    assert any("exitplug" in w for w in host.warnings)


@pytest.mark.parametrize("source", [INTERRUPT_ON_IMPORT, INTERRUPT_IN_HOOK], ids=["on import", "in a hook"])
def test_keyboard_interrupt_in_a_plugin_still_propagates(fake_plugin, source):
    fake_plugin("ctrlcplug", source)
    with pytest.raises(KeyboardInterrupt):
        PluginHost().load()


def test_real_cli_survives_a_plugin_calling_sys_exit(fake_plugin):
    root = fake_plugin("exitplug", EXIT_ON_IMPORT)
    fake_plugin("cmdexitplug", EXIT_IN_COMMANDS)
    env = {"PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for args in (["--help"], ["--version"], ["list"], ["list", "--json"], ["plugins"], ["plugins", "--json"]):
        r = _cli(args, env)
        assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
        assert "warning: plugin 'exitplug' failed to load: SystemExit" in r.stderr, (args, r.stderr)
        assert "warning: plugin 'cmdexitplug' failed to load: while adding commands: SystemExit" in r.stderr, (args, r.stderr)
        assert r.stdout.strip(), args
    r = _cli(["--help"], env)
    assert "run" in r.stdout and "plugins" in r.stdout
    rows = {p["name"]: p for p in json.loads(_cli(["plugins", "--json"], env).stdout)}
    assert rows["exitplug"]["status"] == "failed" and "SystemExit" in rows["exitplug"]["error"]
    assert rows["cmdexitplug"]["status"] == "failed"
    assert "gaussian" in {d["name"] for d in json.loads(_cli(["list", "--json"], env).stdout)["degradation"]}


# -- a plugin that prints while it loads ----------------------------------------
CHATTY = '''
print("chatty: importing")
from restorekit import Degradation, hookimpl


class Swap(Degradation):
    name = "swap"
    summary = "Reverse the channels (a toy forward model)."

    def forward(self, x):
        return x.flip(1)


@hookimpl
def restorekit_register_degradations(registry):
    print("chatty: registering degradations")
    registry.add(Swap)


@hookimpl
def restorekit_register_commands(app):
    print("chatty: adding commands")
'''


def test_plugin_output_while_loading_goes_to_stderr(fake_plugin, capsys):
    import typer

    fake_plugin("chattyplug", CHATTY)
    host = PluginHost().load()
    host.register_commands(typer.Typer())
    assert host.plugin("chattyplug").status == "loaded"
    out, err = capsys.readouterr()
    assert out == ""
    for line in ("chatty: importing", "chatty: registering degradations", "chatty: adding commands"):
        assert line in err


def test_real_cli_json_stays_clean_with_a_chatty_plugin(fake_plugin):
    root = fake_plugin("chattyplug", CHATTY)
    env = {"PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = _cli(["list", "--json"], env)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert "swap" in {d["name"] for d in data["degradation"]}
    for line in ("chatty: importing", "chatty: registering degradations", "chatty: adding commands"):
        assert line in r.stderr
    r = _cli(["plugins", "--json"], env)
    assert r.returncode == 0, r.stderr
    rows = {p["name"]: p for p in json.loads(r.stdout)}
    assert rows["chattyplug"]["status"] == "loaded"
    assert "chatty: importing" in r.stderr


# -- names in RESTOREKIT_LOAD_PLUGINS / RESTOREKIT_DISABLE_PLUGINS ------------------
@pytest.mark.parametrize("var", ["RESTOREKIT_DISABLE_PLUGINS", "RESTOREKIT_LOAD_PLUGINS"])
def test_misspelled_name_in_plugin_lists_is_reported(fake_plugin, monkeypatch, var):
    fake_plugin("restorekit-goodplug", GOOD, entry_name="goodplug")
    monkeypatch.setenv(var, "restorekit-godplug, goodplug")
    host = PluginHost().load()
    hits = [w for w in host.warnings if w.startswith(var)]
    assert hits == [
        f"{var} names 'restorekit-godplug', which is not installed; did you mean 'restorekit-goodplug'?"
    ], host.warnings
    # the names that do match say nothing: the entry-point name and the distribution name
    monkeypatch.setenv(var, "goodplug,restorekit-goodplug")
    assert not [w for w in PluginHost().load().warnings if var in w]


def test_unknown_name_in_plugin_lists_without_a_close_match(fake_plugin, monkeypatch):
    fake_plugin("goodplug", GOOD)
    monkeypatch.setenv("RESTOREKIT_DISABLE_PLUGINS", "zzz")
    host = PluginHost().load()
    line = next(w for w in host.warnings if "'zzz'" in w)
    assert line.startswith("RESTOREKIT_DISABLE_PLUGINS names 'zzz', which is not installed")
    assert "goodplug" in line  # it lists what is installed instead


def test_real_cli_warns_about_a_misspelled_plugin_list(fake_plugin):
    root = fake_plugin("restorekit-goodplug", GOOD, entry_name="goodplug")
    env = {"PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "RESTOREKIT_DISABLE_PLUGINS": "restorekit-godplug"}
    r = _cli(["plugins", "--json"], env)
    assert r.returncode == 0, r.stderr
    assert ("warning: RESTOREKIT_DISABLE_PLUGINS names 'restorekit-godplug', which is not installed; "
            "did you mean 'restorekit-goodplug'?") in r.stderr
    assert {p["name"]: p for p in json.loads(r.stdout)}["goodplug"]["status"] == "loaded"


def test_disabling_a_builtin_plugin_says_it_always_loads(monkeypatch):
    monkeypatch.setenv("RESTOREKIT_DISABLE_PLUGINS", "restorekit.priors")
    host = PluginHost().load()
    assert ("RESTOREKIT_DISABLE_PLUGINS names 'restorekit.priors', a built-in plugin; "
            "the built-in plugins always load") in host.warnings
    assert "dip" in host.registry.names("prior")


def test_documented_plugin_list_warning_is_the_real_one(monkeypatch):
    """using.md quotes the warning for a misspelled restorekit-classic verbatim."""
    import importlib.util
    from pathlib import Path

    if importlib.util.find_spec("restorekit_classic") is None:
        pytest.skip("restorekit-classic is not installed")
    monkeypatch.setenv("RESTOREKIT_DISABLE_PLUGINS", "restorekit-clasic")
    line = next(w for w in PluginHost().load().warnings if "RESTOREKIT_DISABLE_PLUGINS" in w)
    using = (Path(__file__).parents[1] / "docs" / "plugins" / "using.md").read_text(encoding="utf-8")
    assert f"warning: {line}\n" in using, line


# -- restorekit.testing's fixtures in a plugin's own test suite (docs/plugins/testing.md) --
FIXTURE_TEST = '''
from restorekit import Degradation, hookimpl
from restorekit.plugins import get_host


class Negative(Degradation):
    name = "negative"
    summary = "Photographic negative."

    def forward(self, x):
        return 1 - x


class Plugin:
    @hookimpl
    def restorekit_register_degradations(self, registry):
        registry.add(Negative)


def test_fixtures(restorekit_host, restorekit_register):
    assert get_host() is restorekit_host
    assert all(p.builtin for p in restorekit_host.plugins)
    info = restorekit_register(Plugin(), name="myplug")
    assert info.components == [("degradation", "negative")]
    assert restorekit_host.registry.get("degradation", "negative").plugin == "myplug"
'''


def _pytest_project(root, *, conftest=None, addopts=None, import_fixtures=False):
    root.mkdir()
    ini = "[pytest]\n" + (f"addopts = {addopts}\n" if addopts else "")
    (root / "pytest.ini").write_text(ini)
    if conftest is not None:
        (root / "conftest.py").write_text(conftest)
    head = "from restorekit.testing import restorekit_host, restorekit_register  # noqa: F401\n" if import_fixtures else ""
    (root / "test_myplug.py").write_text(head + FIXTURE_TEST)
    return root


def _run_pytest(root, autoload):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RESTOREKIT_", "PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD"))}
    if not autoload:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_myplug.py"],
        capture_output=True, text=True, cwd=root, env=env, timeout=120,
    )


@pytest.mark.parametrize(
    "layout, autoload",
    [
        ({}, True),  # installed restorekit: nothing to write
        ({"addopts": "-p restorekit"}, True),  # the way for runs without autoloading, harmless with it
        ({"addopts": "-p restorekit"}, False),
        ({"conftest": 'pytest_plugins = ["restorekit.testing"]\n'}, False),  # only without autoloading
        ({"import_fixtures": True}, False),
        ({"import_fixtures": True}, True),
    ],
    ids=["autoload", "-p restorekit", "-p restorekit, no autoload", "pytest_plugins, no autoload",
         "import, no autoload", "import"],
)
def test_documented_ways_to_get_the_fixtures_work(tmp_path, layout, autoload):
    root = _pytest_project(tmp_path / "proj", **layout)
    r = _run_pytest(root, autoload)
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout + r.stderr


def test_documented_failure_without_autoload_and_without_p(tmp_path):
    """testing.md: with autoloading disabled and nothing else, the fixture is not found."""
    r = _run_pytest(_pytest_project(tmp_path / "proj"), autoload=False)
    assert r.returncode != 0 and "fixture 'restorekit_host' not found" in r.stdout


REGISTER_ONLY_TEST = '''
import pytest
from restorekit.plugins import PluginHost, get_host, use_host
from restorekit.testing import restorekit_register  # noqa: F401

OUTER = PluginHost()


@pytest.fixture(scope="module", autouse=True)
def outer():
    with use_host(OUTER):
        yield


def test_register_alone(restorekit_register):
    assert restorekit_register.host is not OUTER
    assert get_host() is restorekit_register.host


def test_previous_host_is_back():
    assert get_host() is OUTER
'''


def test_register_fixture_alone_installs_its_own_host_and_restores_the_previous(tmp_path):
    """restorekit_register imported without restorekit_host (no autoload): it installs a host of its own."""
    root = _pytest_project(tmp_path / "proj")
    (root / "test_myplug.py").write_text(REGISTER_ONLY_TEST)
    r = _run_pytest(root, autoload=False)
    assert r.returncode == 0 and "2 passed" in r.stdout, r.stdout + r.stderr


def _fixtures_section() -> str:
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "plugins" / "testing.md").read_text(encoding="utf-8")
    return text[text.index("## Fixtures"):text.index("### `restorekit_host`")]


@pytest.mark.parametrize("autoload", [True, False], ids=["autoload", "no autoload"])
def test_the_documented_pytest_configuration_works(tmp_path, autoload):
    """The configuration testing.md gives for the fixtures works with and without autoloading."""
    import re

    block = re.search(r"```toml\n(.*?)```", _fixtures_section(), re.S)
    assert block, "docs/plugins/testing.md shows no pytest configuration for the fixtures"
    assert "[tool.pytest.ini_options]" in block.group(1)
    addopts = re.search(r'^addopts = "([^"]*)"$', block.group(1), re.M).group(1)  # tomllib is 3.11+
    r = _run_pytest(_pytest_project(tmp_path / "proj", addopts=addopts), autoload)
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout + r.stderr


def test_testing_docs_warn_against_pytest_plugins():
    """The advice that crashed pytest (pytest_plugins in conftest.py next to the entry point) is gone."""
    import restorekit.testing

    section = " ".join(_fixtures_section().split())
    assert "Plugin already registered under a different name" in section
    assert "`-p restorekit`" in section
    doc = " ".join(restorekit.testing.__doc__.split())
    assert "pytest -p restorekit" in doc and "Plugin already registered under a different name" in doc


# -- plugin objects that cannot be hashed ------------------------------------------
def _unhashable_plugins():
    from restorekit import Degradation, hookimpl

    class Mirror(Degradation):
        name = "mirror"
        summary = "Flip left to right (a toy forward model)."

        def forward(self, x):
            return x.flip(-1)

    class WithEq:  # __eq__ without __hash__: instances are unhashable
        def __eq__(self, other):
            return isinstance(other, WithEq)

        @hookimpl
        def restorekit_register_degradations(self, registry):
            registry.add(Mirror)

    class DictLike(dict):
        @hookimpl
        def restorekit_register_degradations(self, registry):
            registry.add(Mirror)

    return [WithEq(), DictLike(a=1)]


@pytest.mark.parametrize("index", [0, 1], ids=["__eq__ without __hash__", "dict subclass"])
def test_unhashable_plugin_objects_register(index):
    from restorekit.testing import check_plugin, registered

    plugin = _unhashable_plugins()[index]
    with pytest.raises(TypeError):
        hash(plugin)
    with registered(plugin, name="unhashable") as host:
        info = host.plugin("unhashable")
        assert info.status == "loaded", info.error
        assert host.registry.get("degradation", "mirror").plugin == "unhashable"
        assert info.hooks == ["restorekit_register_degradations"]
    results = check_plugin(plugin, name="unhashable", options={"mirror": {"shapes": [(1, 8, 8)]}})
    assert list(results) == [("degradation", "mirror")]


def test_unhashable_plugin_still_reports_a_wrong_hook(host):
    from restorekit import hookimpl
    from restorekit.plugins import PluginInfo

    class Bad(dict):
        @hookimpl
        def restorekit_register_degradation(self, registry):
            pass

    assert not host.register(Bad(), PluginInfo(name="bad", module="x"))
    assert "did you mean 'restorekit_register_degradations'" in host.plugin("bad").error


# -- the process-wide host: use_host ------------------------------------------------
def test_use_host_installs_the_host_for_the_block_and_nests(host):
    from restorekit.plugins import get_host, get_registry, use_host

    other = PluginHost().load(entry_points=[])
    with use_host(host) as installed:
        assert installed is host and get_host() is host and get_registry() is host.registry
        with use_host(other):
            assert get_host() is other
        assert get_host() is host
        with pytest.raises(RuntimeError, match="boom"), use_host(other):
            raise RuntimeError("boom")
        assert get_host() is host  # restored on the way out of an exception too


def test_use_host_restores_no_host_when_none_was_built(host, monkeypatch):
    """Leaving the block does not leave a host behind, nor build one; get_host() loads as usual later."""
    import restorekit.plugins as plugins

    monkeypatch.setattr(plugins, "_HOST", None)  # plugins.py's own state: the thing under test
    with plugins.use_host(host):
        assert plugins.get_host() is host
    assert plugins._HOST is None


def test_use_host_takes_a_plugin_host_only():
    from restorekit.plugins import use_host

    with pytest.raises(TypeError, match="PluginHost"):
        with use_host(object()):
            pass
