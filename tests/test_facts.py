"""One source per fact: what the plugin core derives instead of repeating.

* the did-you-mean hint: one helper (restorekit.suggest) behind every message;
* the registration hook of each component kind: read from restorekit.hookspecs;
* the built-in plugins: pyproject.toml's entry points, read from the installed
  metadata (or, without metadata of this copy, derived from restorekit/builtins/);
* stopping rules: a component kind like the others (registry, hook, ``list``),
  so a plugin can add one.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
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


# -- the built-in plugins ------------------------------------------------------------
def _builtin_modules() -> list[str]:
    return sorted(p.stem for p in (ROOT / "restorekit" / "builtins").glob("*.py") if not p.stem.startswith("_"))


def _pyproject_entry_points() -> dict[str, str]:
    if sys.version_info < (3, 11):
        pytest.skip("tomllib is 3.11+")
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return data["project"]["entry-points"]["restorekit"]


def test_pyproject_declares_every_builtin_module():
    """The one list of built-ins (pyproject.toml) and the fallback (restorekit/builtins/) agree.

    Also holds pyproject.toml to the naming the fallback assumes: module
    restorekit.builtins.<m> is entry point restorekit.<m>.
    """
    assert _pyproject_entry_points() == {f"restorekit.{m}": f"restorekit.builtins.{m}" for m in _builtin_modules()}


def test_no_hand_written_list_of_builtins():
    """plugins.py names no built-in module: the list lives in pyproject.toml only."""
    source = (ROOT / "restorekit" / "plugins.py").read_text(encoding="utf-8")
    for m in _builtin_modules():
        assert not re.search(rf"builtins\.{m}\b", source), m


def _fake_restorekit_dist(tmp_path, monkeypatch, entry_points: dict[str, str], source: Path | None = ROOT) -> None:
    """Put a restorekit .dist-info first on sys.path, installed (editable) from ``source``."""
    site = tmp_path / "site"
    info = site / "restorekit-9.9.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: restorekit\nVersion: 9.9\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text("[restorekit]\n" + lines)
    if source is not None:
        (info / "direct_url.json").write_text(
            '{"url": "%s", "dir_info": {"editable": true}}' % source.resolve().as_uri()
        )
    monkeypatch.syspath_prepend(str(site))
    import importlib

    importlib.invalidate_caches()


def _declared(**renamed: str) -> dict[str, str]:
    eps = {f"restorekit.{m}": f"restorekit.builtins.{m}" for m in _builtin_modules()}
    for old, new in renamed.items():
        eps[new] = eps.pop(f"restorekit.{old}")
    return eps


def test_builtins_are_read_from_this_copys_metadata(tmp_path, monkeypatch):
    import restorekit.plugins as plugins

    _fake_restorekit_dist(tmp_path, monkeypatch, _declared(degradations="restorekit.forward-models"))
    assert plugins.BUILTIN_PLUGINS["restorekit.forward-models"] == "restorekit.builtins.degradations"
    host = plugins.PluginHost().load(entry_points=[])
    assert host.warnings == []
    info = host.plugin("restorekit.forward-models")
    assert info.builtin and info.status == "loaded" and ("degradation", "gaussian") in info.components


def test_installed_entry_points_of_restorekit_are_builtins_not_third_party(tmp_path, monkeypatch):
    from restorekit.plugins import PluginHost

    _fake_restorekit_dist(tmp_path, monkeypatch, _declared(degradations="restorekit.forward-models"))
    host = PluginHost().load()
    rows = [p for p in host.plugins if p.name == "restorekit.forward-models"]
    assert len(rows) == 1 and rows[0].builtin


def test_stale_metadata_warns_and_uses_the_package(tmp_path, monkeypatch):
    from restorekit.plugins import PluginHost

    declared = _declared()
    dropped = declared.pop("restorekit.metrics")
    _fake_restorekit_dist(tmp_path, monkeypatch, declared)
    host = PluginHost().load(entry_points=[])
    assert host.warnings == [
        f"restorekit's installed entry points are out of date (it lacks {dropped}): reinstall restorekit "
        "(pip install -e . in a checkout); using the modules in restorekit/builtins/ meanwhile"
    ]
    assert host.plugin("restorekit.metrics").status == "loaded"


def test_metadata_of_another_copy_is_not_used(tmp_path, monkeypatch):
    """A second checkout run with PYTHONPATH beside an installed one: its own modules are the built-ins."""
    from restorekit.plugins import PluginHost

    other = tmp_path / "elsewhere"
    (other / "restorekit").mkdir(parents=True)
    _fake_restorekit_dist(tmp_path, monkeypatch, {"restorekit.old": "restorekit.builtins.old"}, source=other)
    host = PluginHost().load(entry_points=[])
    assert host.warnings == []
    assert {p.name for p in host.plugins if p.builtin} == {f"restorekit.{m}" for m in _builtin_modules()}


def test_without_metadata_the_builtins_come_from_the_package(monkeypatch):
    import restorekit.plugins as plugins

    def missing(name):
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(plugins.md, "distribution", missing)
    host = plugins.PluginHost().load(entry_points=[])
    assert host.warnings == []
    assert {p.name for p in host.plugins if p.builtin} == {f"restorekit.{m}" for m in _builtin_modules()}
    assert all(p.status == "loaded" for p in host.plugins)


def test_builtins_load_in_the_order_of_the_kinds(host):
    """`restorekit plugins --all` lists them as before: degradations, priors, generators, metrics, ..."""
    from restorekit.components import KINDS

    kinds = [next(k for k, _ in p.components) for p in host.plugins if p.builtin]
    assert kinds == list(KINDS)


# -- stopping rules: the fifth kind ------------------------------------------------------
PLATEAU = '''
from pydantic import Field
from restorekit import Params, StoppingRule, hookimpl


class LossPlateau(StoppingRule):
    name = "plateau"
    summary = "Stop when the change between successive outputs stops shrinking."
    primary = "patience"

    class Params(Params):
        patience: int = Field(500, ge=1, description="iterations without a new minimum before stopping")

    def reset(self):
        super().reset()
        self._last = None

    def update(self, x, iteration, average=None):
        if self._last is not None:
            self._track((x - self._last).pow(2).mean(), x, iteration, average)
        self._last = x.detach().clone()


@hookimpl
def restorekit_register_stopping_rules(registry):
    registry.add(LossPlateau)
'''


def _cli(args, env_extra=None):
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "restorekit.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_builtin_stopping_rules_are_registered(registry):
    from restorekit import StoppingRule
    from restorekit.stopping import make_stopping_rule

    assert registry.names("stopping rule") == ["esemv", "eswmv"]
    assert registry.get("stopping rule", "eswmv").plugin == "restorekit.stopping"
    rule = make_stopping_rule("esemv:alpha=0.2", registry=registry)
    assert isinstance(rule, StoppingRule) and rule.spec == "esemv:patience=1000,alpha=0.2,burn_in=100"


def test_unknown_stopping_rule_lists_none_too(registry):
    from restorekit.errors import SpecError
    from restorekit.stopping import make_stopping_rule

    with pytest.raises(SpecError) as info:
        make_stopping_rule("eswvm", registry=registry)
    assert str(info.value) == "unknown stopping rule 'eswvm'; did you mean 'eswmv'? (valid: esemv, eswmv, none)"
    assert make_stopping_rule("none", registry=registry) is None


def test_a_plugin_adds_a_stopping_rule(fake_plugin):
    import torch

    from restorekit.plugins import PluginHost
    from restorekit.stopping import make_stopping_rule
    from restorekit.testing import check_stopping_rule

    fake_plugin("plateauplug", PLATEAU)
    host = PluginHost().load()
    info = host.plugin("plateauplug")
    assert info.status == "loaded", info.error
    assert info.components == [("stopping rule", "plateau")]
    assert info.hooks == ["restorekit_register_stopping_rules"]
    rule = make_stopping_rule("plateau:20", registry=host.registry)
    assert rule.params.patience == 20
    for t in range(60):
        rule.update(torch.full((1, 1, 4, 4), (t - 10) ** 2 / 100), t)  # the change is smallest at t = 10
    assert rule.chosen_iteration() == 10 and not rule.should_stop(29) and rule.should_stop(30)
    passed = check_stopping_rule(host.registry.get("stopping rule", "plateau").cls, plugin="plateauplug")
    assert "run (with an average)" in passed and "reset" in passed


def test_restore_uses_a_plugin_stopping_rule(fake_plugin):
    import numpy as np

    import restorekit
    from restorekit.plugins import reset_host

    fake_plugin("plateauplug", PLATEAU)
    reset_host()
    try:
        r = restorekit.restore(np.full((16, 16), 0.5, dtype=np.float32), degrade="gaussian:25", prior="tv",
                               iters=20, stop="plateau:5", metrics=[], device="cpu")
        assert r.record["settings"]["stop"] == "plateau:patience=5"
    finally:
        reset_host()


def test_check_stopping_rule_catches_a_broken_rule():
    from restorekit import Params as BaseParams, StoppingRule
    from restorekit.testing import ContractError, check_stopping_rule

    class Broken(StoppingRule):
        name = "broken"
        summary = "Answers should_stop with a number."

        class Params(BaseParams):
            pass

        def update(self, x, iteration, average=None):
            pass

        def should_stop(self, iteration):
            return 0

    with pytest.raises(ContractError, match="should_stop\\(\\) returned int, not bool"):
        check_stopping_rule(Broken)


def test_list_shows_stopping_rules_like_every_kind(fake_plugin):
    root = fake_plugin("plateauplug", PLATEAU)
    env = {"PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = _cli(["list", "--json"], env)
    assert r.returncode == 0, r.stderr
    rules = {d["name"]: d for d in json.loads(r.stdout)["stopping rule"]}
    assert rules["eswmv"]["plugin"] == "restorekit.stopping"
    assert rules["plateau"]["plugin"] == "plateauplug" and rules["plateau"]["kind"] == "stopping rule"
    for alias in ("stopping", "stop", "stopping rules"):
        r = _cli(["list", alias, "--json"], env)
        assert r.returncode == 0 and set(json.loads(r.stdout)) == {"stopping rule"}, (alias, r.stderr)
    r = _cli(["list", "stop", "plateau"], env)
    assert r.returncode == 0 and "provided by plateauplug" in r.stdout, r.stderr
    r = _cli(["list", "stopping"], env)
    assert r.returncode == 0 and "stopping rules" in r.stdout and "plateau" in r.stdout


@pytest.mark.parametrize("args", [["--help"], ["list"], ["list", "stopping"], ["plugins", "--all"]])
def test_listing_imports_no_torch(args):
    code = (
        "import sys\n"
        "from restorekit.cli import main\n"
        f"sys.argv = ['restorekit', *{args!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


# -- facts the docs quote: each from one source (a benchmark JSON, the registry, the code) -------------
def _doc(path: str) -> str:
    return (ROOT / path).read_text(encoding="utf-8")


def _step_time_512() -> tuple[str, str]:
    """The 512x512 step of the paper's denoising net on 2 CPU cores, fp32 and bf16, as the docs write it."""
    data = json.loads(_doc("benchmarks/results/step-time.json"))
    row = next(c for c in data["configs"] if c["size"] == 512)
    return f"{row['fp32_median_s']:.2f} s", f"{row['bf16_median_s']:.2f} s"


@pytest.mark.parametrize("path", ["README.md", "docs/usage.md"])
def test_512_step_time_is_the_measured_one(path):
    fp32, bf16 = _step_time_512()
    text = re.sub(r"\s+", " ", _doc(path))
    assert f"takes {fp32} on 2 CPU cores" in text or f"takes {fp32} on two CPU cores" in text, (
        f"{path}: the 512x512 step time is {fp32} in benchmarks/results/step-time.json")
    assert f"({bf16} in bfloat16" in text, f"{path}: the bf16 512x512 step is {bf16} (step-time.json)"
    assert not re.search(r"512x512[^.]*about \d+ s per", text), f"{path}: an unmeasured 'about N s' step time"


def _decompose_seconds(task: str) -> str:
    data = json.loads(_doc("benchmarks/results/decompose.json"))
    rows = [r["seconds"] for r in data[task] if r["method"] == "double-dip"]
    return f"{sum(rows) / len(rows):.1f}"


def test_double_dip_decompose_seconds_are_the_measured_ones():
    dehaze, watermark = _decompose_seconds("dehaze"), _decompose_seconds("watermark")
    seg = re.sub(r"\s+", " ", _doc("docs/segmentation.md"))
    assert f"dehazing: double-dip {dehaze}," in seg and f"watermark: double-dip {watermark}," in seg
    assert f"in about 3 ms against {dehaze} s" in seg
    assert f"| double-dip | 16.15 / 0.699 | {dehaze} |" in _doc("docs/benchmarks.md")
    assert "double-dip 18.8" not in seg  # the mean over both tasks, once quoted as dehazing's


def test_docs_list_every_prior_of_the_classic_plugin():
    pytest.importorskip("restorekit_classic", reason="pip install ./plugins/restorekit-classic")
    from restorekit.plugins import PluginHost

    registry = PluginHost().load().registry
    # in the order the plugin registers them, which `restorekit plugins` keeps
    import restorekit_classic

    classic = [cls.name for cls in restorekit_classic.PRIORS]
    assert set(classic) == {n for n in registry.names("prior") if registry.get("prior", n).plugin == "classic"}
    row = next(l for l in _doc("docs/plugins/README.md").splitlines() if l.startswith("| [`plugins/restorekit-classic`"))
    assert re.findall(r"`([a-z0-9-]+)`", row.split("|")[3]) == classic, "docs/plugins/README.md: classic's priors"
    for path in ("docs/plugins/using.md", "docs/plugins/tutorial.md"):
        table = _doc(path).split("│ classic", 1)[1].split("│ example", 1)[0]
        assert re.findall(r"prior:([a-z0-9-]+)", table) == classic, f"{path}: `restorekit plugins` lists {classic}"


def test_what_fills_the_holes_of_input_observation_is_said_once_and_right():
    """usage.md describes the initial estimate as restorekit.run.problem.initial_estimate makes it."""
    from restorekit.run.problem import BIHARMONIC_MAX_MISSING, initial_estimate

    assert "biharmonic" in initial_estimate.__doc__ and "bicubic" in initial_estimate.__doc__
    usage = re.sub(r"\s+", " ", _doc("docs/usage.md"))
    limit = f"{BIHARMONIC_MAX_MISSING:,}"
    assert f"missing pixels filled by biharmonic inpainting (for holes of over {limit} pixels" in usage
    assert (f"`dip:input=observation` feeds the initial estimate: the degraded image with its missing pixels "
            f"filled by biharmonic inpainting (above {limit} missing pixels") in usage
    for path in ("README.md", "docs/usage.md", "docs/benchmarks.md", "docs/real-data.md", "docs/glossary.md"):
        assert not re.search(r"input=observation[^.]*filled with the mean", re.sub(r"\s+", " ", _doc(path))), path


def test_restore_docstring_says_the_prior_default_is_auto():
    import inspect

    from restorekit.api import restore

    doc = " ".join(restore.__doc__.split())
    assert inspect.signature(restore).parameters["prior"].default is None
    assert "``prior`` defaults to ``auto``" in doc and "``prior`` ``None`` is ``auto``" in doc
    assert "defaults to ``dip``" not in doc


def test_gallery_page_quotes_the_gallery_json():
    """docs/gallery.md: every picture exists, and each task's command and numbers are benchmarks/results/gallery.json's."""
    data = json.loads(_doc("benchmarks/results/gallery.json"))
    page = _doc("docs/gallery.md")
    shown = 0
    for task in data["tasks"]:
        for image in task["images"]:
            assert (ROOT / "docs" / "images" / "gallery" / image).is_file(), image
            shown += f"images/gallery/{image}" in page
        assert task["command"] in page, f"docs/gallery.md lacks the command of {task['name']}: {task['command']}"
        after = task["after"] if isinstance(task["after"], dict) else {"": task["after"]}
        for value in [task["before"], *after.values()]:
            if value is not None:
                assert re.search(rf"(?<![\d.]){re.escape(str(value))}(?![\d])", page), (task["name"], value)
    assert shown >= 8


def test_benchmarks_md_step_tables_are_their_json():
    """The two 512x512 step times benchmarks.md shows, each beside the JSON it was measured into."""
    text = _doc("docs/benchmarks.md")
    step = json.loads(_doc("benchmarks/results/step-time.json"))
    row = next(c for c in step["configs"] if c["size"] == 512)
    assert (f"| 512x512 | 128 (the paper's denoising net) | {row['fp32_median_s'] * 1000:.0f} | "
            f"{row['bf16_median_s'] * 1000:.0f} |") in text
    speed = json.loads(_doc("benchmarks/results/speed.json"))["sizes"]["512"]
    for config in ("reference", "paper-fp32", "paper-bf16"):
        assert re.search(rf"512x512\s+{config}\s+{speed[config]['median_s'] * 1000:.1f}\s", text), config
