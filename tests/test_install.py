"""restorekit install (pip argv, status, errors), the plugins folder, and restorekit.register_plugin.

No network and no change to the environment: pip is never really run (the
subprocess call is replaced and its argv asserted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import restorekit
import restorekit.plugins
from restorekit.errors import RegistryError
from tests.helpers import invoke, one_line_error

pytestmark = pytest.mark.usefixtures("fresh_host")  # chdir into tmp_path, fresh plugin host (conftest.py)

EXAMPLE_ROW = {"name": "example", "module": "restorekit_example", "dist": "restorekit-example", "version": "0.1.0",
               "builtin": False, "status": "loaded", "error": None, "hooks": [],
               "components": [{"kind": "degradation", "name": "jpeg"}]}


class FakeRun:
    """Stands in for subprocess.run in restorekit.cli.install: records every argv; pip answers ``pip``."""

    def __init__(self, pip: subprocess.CompletedProcess, rows_after: list[dict]) -> None:
        self.calls: list[list[str]] = []
        self.pip, self.rows_after = pip, rows_after
        self.rows_before: list[dict] = []

    def __call__(self, argv, **kwargs):
        self.calls.append(list(argv))
        if argv[1:4] == ["-m", "pip", "install"]:
            return self.pip
        pip_ran = any(c[1:4] == ["-m", "pip", "install"] for c in self.calls)
        rows = self.rows_after if pip_ran else self.rows_before
        return subprocess.CompletedProcess(argv, 0, stdout=json.dumps(rows), stderr="")


def fake(monkeypatch, returncode=0, stderr="", rows_after=()):
    from restorekit.cli import install

    run = FakeRun(subprocess.CompletedProcess([], returncode, stdout="", stderr=stderr), list(rows_after))
    monkeypatch.setattr(install.subprocess, "run", run)
    return run


def pip_calls(run: FakeRun) -> list[list[str]]:
    return [c for c in run.calls if c[1:4] == ["-m", "pip", "install"]]


def test_install_e_runs_this_pythons_pip_and_shows_the_plugin_loaded(monkeypatch):
    run = fake(monkeypatch, rows_after=[EXAMPLE_ROW])
    r = invoke(["install", "-e", "./plugins/restorekit-example"])
    assert r.exit_code == 0, r.output
    assert pip_calls(run) == [[sys.executable, "-m", "pip", "install", "-e", "./plugins/restorekit-example"]]
    assert "example 0.1.0: loaded (degradation:jpeg)" in r.stdout
    # the status is read by a fresh process, which sees what was just installed
    assert [sys.executable, "-m", "restorekit.cli", "plugins", "--json"] in run.calls


def test_install_upgrade_and_names_pass_through(monkeypatch):
    run = fake(monkeypatch, rows_after=[EXAMPLE_ROW])
    r = invoke(["install", "--upgrade", "restorekit-example", "other-pkg"])
    assert r.exit_code == 0, r.output
    assert pip_calls(run) == [[sys.executable, "-m", "pip", "install", "--upgrade", "restorekit-example", "other-pkg"]]
    assert "example 0.1.0: loaded" in r.stdout


def test_a_failed_pip_is_one_error_line(monkeypatch):
    fake(monkeypatch, returncode=1, stderr="Looking in indexes...\nERROR: Could not find a version that satisfies "
                                          "the requirement nope\nERROR: No matching distribution found for nope\n")
    r = invoke(["install", "nope"])
    one_line_error(r, "pip could not install nope: No matching distribution found for nope", code=1)


def test_a_failed_plugin_fails_the_install_and_nothing_to_install_is_exit_2(monkeypatch):
    fake(monkeypatch, rows_after=[{**EXAMPLE_ROW, "status": "failed", "error": "ImportError: no libjpeg"}])
    r = invoke(["install", "restorekit-example"])
    assert r.exit_code == 1 and "example 0.1.0: failed: ImportError: no libjpeg" in r.stdout
    one_line_error(invoke(["install"]), "name a plugin package to install")


ONE_FILE_PLUGIN = '''
from restorekit import Prior, hookimpl


class Keep(Prior):
    name = "folder-keep"
    summary = "Returns the observation (a one-file plugin's prior)."
    role = "solver"

    def solve(self, problem):
        return problem.observation.clone()


@hookimpl
def restorekit_register_priors(registry):
    registry.add(Keep)
'''


def plugins_dir(tmp_path: Path, broken: bool = False) -> Path:
    folder = tmp_path / "myplugins"
    folder.mkdir()
    (folder / "keep.py").write_text(ONE_FILE_PLUGIN, encoding="utf-8")
    (folder / "_helper.py").write_text("raise RuntimeError('never imported')\n", encoding="utf-8")
    if broken:
        (folder / "broken.py").write_text("raise RuntimeError('needs libfoo 2.0')\n", encoding="utf-8")
    return folder


def test_a_one_file_plugin_in_the_plugins_folder_adds_a_prior_that_list_shows_and_run_uses(tmp_path, monkeypatch):
    import imageio.v3 as iio

    monkeypatch.setenv("RESTOREKIT_PLUGINS_DIR", str(plugins_dir(tmp_path)))
    r = invoke(["list", "priors", "--json"])
    assert r.exit_code == 0, r.output
    assert "folder-keep" in r.stdout
    iio.imwrite(tmp_path / "a.png", (np.arange(16 * 16).reshape(16, 16) % 251).astype(np.uint8))
    r = invoke(["run", tmp_path / "a.png", "--prior", "folder-keep", "--degrade", "gaussian:10", "--out",
                tmp_path / "o", "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "o" / "run.json").read_text())
    assert "folder-keep" in json.dumps(rec)  # the prior that ran, and its plugin, are in the record
    assert "keep" in json.dumps(rec)
    out = iio.imread(tmp_path / "o" / next(p.name for p in (tmp_path / "o").iterdir() if p.name.startswith("restored")))
    assert np.array_equal(out, iio.imread(tmp_path / "a.png"))  # the prior kept the observation as it was
    rows = json.loads(invoke(["plugins", "--json"]).stdout)
    row = next(p for p in rows if p["name"] == "keep")
    assert row["status"] == "loaded" and row["module"].endswith("keep.py")
    assert not any(p["name"] == "_helper" for p in rows)


def test_a_broken_file_is_reported_not_fatal(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RESTOREKIT_PLUGINS_DIR", str(plugins_dir(tmp_path, broken=True)))
    r = invoke(["list", "priors", "--json"])
    assert r.exit_code == 0, r.output
    assert "folder-keep" in r.stdout and "tv" in r.stdout
    # the warning is printed while the app is built (get_app), outside the runner's capture
    assert "plugin 'broken' failed to load: RuntimeError: needs libfoo 2.0" in r.stderr + capsys.readouterr().err
    rows = json.loads(invoke(["plugins", "--json"]).stdout)
    assert next(p for p in rows if p["name"] == "broken")["status"] == "failed"
    monkeypatch.setenv("RESTOREKIT_STRICT_PLUGINS", "1")
    from restorekit.plugins import PluginError, PluginHost

    with pytest.raises(PluginError, match="broken"):
        PluginHost().load(entry_points=[])


def test_the_plugins_dir_option_of_the_console_script(tmp_path):
    folder = plugins_dir(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(restorekit.__file__).parents[1])}
    env.pop("RESTOREKIT_PLUGINS_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "restorekit.cli", "--plugins-dir", str(folder), "list", "priors",
                           "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "folder-keep" in proc.stdout
    from restorekit.cli.app import plugins_dirs_from_argv

    assert plugins_dirs_from_argv(["--plugins-dir", "a", "--plugins-dir=b", "run", "--plugins-dir", "c"]) == ["a", "b"]


def test_the_plugins_dir_option_in_process(tmp_path, monkeypatch):
    monkeypatch.setenv("RESTOREKIT_PLUGINS_DIR", "")  # so that it is restored after the test: the option sets it
    r = invoke(["--plugins-dir", plugins_dir(tmp_path), "list", "priors", "--json"])
    assert r.exit_code == 0, r.output
    assert "folder-keep" in r.stdout
    assert os.environ["RESTOREKIT_PLUGINS_DIR"] == str(tmp_path / "myplugins")  # batch's workers see it


def test_register_plugin_in_process(tmp_path):
    import types

    module = types.ModuleType("notebook_priors")
    exec(ONE_FILE_PLUGIN, module.__dict__)
    info = restorekit.register_plugin(module)
    assert info.name == "notebook_priors" and ("prior", "folder-keep") in info.components
    img = (np.arange(12 * 12).reshape(12, 12) % 200).astype(np.uint8)
    res = restorekit.restore(img, degrade="gaussian:10", prior="folder-keep")
    assert np.array_equal(res.image, img)
    with pytest.raises(RegistryError, match="registered already"):
        restorekit.register_plugin(module)
    clash = types.ModuleType("clash")
    exec(ONE_FILE_PLUGIN, clash.__dict__)
    host = restorekit.plugins.get_host()
    rows, warnings = list(host.plugins), list(host.warnings)
    with pytest.raises(RegistryError, match="clash"):
        restorekit.register_plugin(clash)
    assert host.plugins == rows and host.warnings == warnings  # a refused plugin changes nothing


def test_reinstalling_a_project_folder_shows_its_plugin(monkeypatch):
    """A folder is matched by its pyproject.toml's name: reinstalling the same version still shows its row."""
    run = fake(monkeypatch, rows_after=[EXAMPLE_ROW])
    run.rows_before = [EXAMPLE_ROW]
    folder = str(Path(__file__).resolve().parents[1] / "plugins" / "restorekit-example")
    r = invoke(["install", "-e", folder])
    assert r.exit_code == 0, r.output
    assert "example 0.1.0: loaded" in r.stdout
