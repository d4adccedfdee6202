"""A matrix of broken plugins: whatever one does while it loads, restorekit keeps working.

Each plugin is installed as a fake distribution (the ``fake_plugin``
fixture) and loaded twice: by ``PluginHost.load`` in this process, and by
the real command line in a subprocess.  Every time the host loads, the
built-in components work, the broken plugin is a ``failed`` row with a
warning that names it (the plugin that only prints loads), and stdout
carries nothing but the command's JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from restorekit.plugins import BUILTIN_PLUGINS, PluginHost

NAME = "brokenplug"

COMPONENT = '''
from restorekit import Degradation, hookimpl


class Darken(Degradation):
    name = "darken"
    summary = "Halve the brightness (a toy forward model)."

    def forward(self, x):
        return x * 0.5
'''

# name -> (module source, what the error says; None: the plugin loads)
CASES = {
    "raises on import": (
        'raise RuntimeError("needs libfoo 2.0")\n',
        "RuntimeError: needs libfoo 2.0",
    ),
    "sys.exit(3) on import": (
        "import sys\nsys.exit(3)\n",
        "SystemExit(3)",
    ),
    "custom BaseException on import": (
        'class Abort(BaseException):\n    pass\n\nraise Abort("cannot run here")\n',
        "Abort: cannot run here",
    ),
    "prints on import": (
        'print("brokenplug says hello on stdout")\n' + COMPONENT + '''

@hookimpl
def restorekit_register_degradations(registry):
    print("brokenplug registers darken")
    registry.add(Darken)
''',
        None,
    ),
    "raises in a hook": (
        COMPONENT + '''

@hookimpl
def restorekit_register_metrics(registry):
    raise ValueError("metric table missing")
''',
        "ValueError: metric table missing",
    ),
    "sys.exit in a hook": (
        COMPONENT + '''
import sys


@hookimpl
def restorekit_register_priors(registry):
    sys.exit("no GPU here")
''',
        "SystemExit('no GPU here')",
    ),
    "registers a component, then raises": (
        COMPONENT + '''

@hookimpl
def restorekit_register_degradations(registry):
    registry.add(Darken)
    raise KeyError("half-way")
''',
        "KeyError: 'half-way'",
    ),
}


@pytest.fixture(autouse=True)
def _no_plugin_settings(monkeypatch):
    for var in [v for v in os.environ if v.startswith("RESTOREKIT_")]:
        monkeypatch.delenv(var)


def _builtins_work(registry) -> None:
    for kind, spec in [("degradation", "gaussian:25"), ("prior", "tv"), ("generator", "skip"), ("metric", "psnr")]:
        assert registry.create(kind, spec).name == spec.split(":")[0]


@pytest.mark.parametrize("case", list(CASES))
def test_host_survives_a_broken_plugin(fake_plugin, capsys, case):
    source, error = CASES[case]
    fake_plugin(NAME, source)
    host = PluginHost().load()
    out, err = capsys.readouterr()
    assert out == "", f"the plugin wrote to stdout: {out!r}"
    assert all(host.plugin(name).status == "loaded" for name in BUILTIN_PLUGINS)
    _builtins_work(host.registry)
    info = host.plugin(NAME)
    if error is None:
        assert info.status == "loaded", info.error
        assert "brokenplug says hello on stdout" in err and "brokenplug registers darken" in err
        assert host.registry.get("degradation", "darken").plugin == NAME
        return
    assert info.status == "failed"
    assert error in info.error, info.error
    assert [w for w in host.warnings if w.startswith(f"plugin '{NAME}' failed to load: ") and error in w]
    assert "darken" not in host.registry.names("degradation")  # nothing is left behind
    assert info.components == []


@pytest.mark.parametrize("case", list(CASES))
def test_real_cli_survives_a_broken_plugin(fake_plugin, case):
    source, error = CASES[case]
    root = fake_plugin(NAME, source)
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))

    def cli(*args: str) -> subprocess.CompletedProcess:
        r = subprocess.run([sys.executable, "-m", "restorekit.cli", *args],
                           capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
        return r

    r = cli("plugins", "--json")
    row = {p["name"]: p for p in json.loads(r.stdout)}[NAME]  # stdout is nothing but JSON
    r2 = cli("list", "--json")
    listed = json.loads(r2.stdout)
    assert {"gaussian", "bernoulli"} <= {d["name"] for d in listed["degradation"]}
    assert {"dip", "tv"} <= {d["name"] for d in listed["prior"]}
    if error is None:
        assert row["status"] == "loaded"
        assert "brokenplug says hello on stdout" in r.stderr
        assert "darken" in {d["name"] for d in listed["degradation"]}
        return
    assert row["status"] == "failed" and error in row["error"], row
    for res in (r, r2):
        assert f"warning: plugin '{NAME}' failed to load: " in res.stderr, res.stderr
    assert "darken" not in {d["name"] for d in listed["degradation"]}
    r3 = cli("--help")
    assert "plugins" in r3.stdout
