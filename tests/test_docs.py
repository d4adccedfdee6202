"""The plugin author docs match the code: hook signatures and the generated component reference."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from restorekit import hookspecs

ROOT = Path(__file__).resolve().parents[1]
HOOKS_MD = ROOT / "docs" / "plugins" / "hooks.md"
GEN = ROOT / "docs" / "gen_components.py"


def _specs() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(fn)
        for name, fn in vars(hookspecs).items()
        if name.startswith("restorekit_") and callable(fn) and hasattr(fn, "restorekit_spec")
    }


def _strip(annotation: str) -> str:
    """'"ComponentRegistry"' (a string annotation under postponed evaluation) -> 'ComponentRegistry'."""
    text = str(annotation).strip()
    while len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    return text


def _spec_shape(sig: inspect.Signature) -> tuple[list[tuple[str, str]], str]:
    params = [
        (p.name, _strip(p.annotation) if p.annotation is not inspect.Parameter.empty else "")
        for p in sig.parameters.values()
    ]
    ret = _strip(sig.return_annotation) if sig.return_annotation is not inspect.Signature.empty else ""
    return params, ret


def _doc_sections() -> dict[str, str]:
    text = HOOKS_MD.read_text(encoding="utf-8")
    parts = re.split(r"^## +", text, flags=re.M)[1:]
    sections = {}
    for part in parts:
        title, _, body = part.partition("\n")
        sections[title.strip().strip("`")] = body
    return sections


def _doc_signature(name: str, body: str) -> tuple[list[tuple[str, str]], str]:
    m = re.search(r"```python\n(.*?)```", body, flags=re.S)
    assert m, f"hooks.md: section '{name}' has no ```python signature block"
    src = m.group(1).strip()
    first = src.splitlines()[0]
    assert first.startswith(f"def {name}("), f"hooks.md: the first python block of '{name}' is not its signature: {first!r}"
    if not src.rstrip().endswith(":") and "\n" not in src:
        src = src + ":"
    if src.rstrip().endswith(":"):
        src = src + "\n    ..."
    fn = ast.parse(src).body[0]
    assert isinstance(fn, ast.FunctionDef)
    args = fn.args
    params = [(a.arg, _strip(ast.unparse(a.annotation)) if a.annotation else "") for a in args.posonlyargs + args.args + args.kwonlyargs]
    ret = _strip(ast.unparse(fn.returns)) if fn.returns else ""
    return params, ret


def test_hookspecs_found():
    assert "restorekit_register_degradations" in _specs()
    assert "restorekit_register_commands" in _specs()


@pytest.mark.parametrize("name", sorted(_specs()))
def test_every_hook_is_documented_with_its_signature(name):
    sections = _doc_sections()
    assert name in sections, f"docs/plugins/hooks.md has no '## {name}' section"
    doc_params, doc_ret = _doc_signature(name, sections[name])
    spec_params, spec_ret = _spec_shape(_specs()[name])
    assert doc_params == spec_params, f"{name}: documented {doc_params}, hookspec has {spec_params}"
    assert doc_ret == spec_ret, f"{name}: documented return {doc_ret!r}, hookspec has {spec_ret!r}"


def test_no_documented_hook_is_unknown():
    documented = {t for t in _doc_sections() if t.startswith("restorekit_")}
    unknown = documented - set(_specs())
    assert not unknown, f"docs/plugins/hooks.md documents hooks that do not exist: {sorted(unknown)}"
    others = [t for t in _doc_sections() if not t.startswith("restorekit_")]
    assert not others, f"docs/plugins/hooks.md: '## ' sections must be hooks, found {others}"


def test_generated_component_reference_is_current():
    r = subprocess.run([sys.executable, str(GEN), "--check"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, (r.stderr or r.stdout) + " (run: python docs/gen_components.py)"


def test_generator_detects_a_stale_file(tmp_path):
    sys.path.insert(0, str(GEN.parent))
    try:
        import gen_components
    finally:
        sys.path.remove(str(GEN.parent))
    stale = tmp_path / "components.md"
    stale.write_text("intro\n<!-- BEGIN GENERATED -->\nold table\n<!-- END GENERATED -->\nend\n")
    assert gen_components.main(["--check", "--path", str(stale)]) == 1
    assert gen_components.main(["--path", str(stale)]) == 0
    assert gen_components.main(["--check", "--path", str(stale)]) == 0
    text = stale.read_text()
    assert text.startswith("intro\n") and text.endswith("end\n") and "#### degradation `gaussian`" in text


BROKEN_SOURCES = {
    "brokenplug": "import libfoo  # not installed\n",
    "typoplug": (
        "from restorekit import hookimpl\n\n"
        "@hookimpl\n"
        "def restorekit_register_degradation(registry):\n"
        "    pass\n"
    ),
    "clashplug": (
        "from restorekit import Degradation, hookimpl\n\n"
        "class Gaussian(Degradation):\n"
        "    name = 'gaussian'\n"
        "    summary = 'A second gaussian.'\n\n"
        "@hookimpl\n"
        "def restorekit_register_degradations(registry):\n"
        "    registry.add(Gaussian)\n"
    ),
}


def test_documented_failure_messages_are_the_real_ones(fake_plugin, monkeypatch):
    """using.md quotes the warnings of a broken import, a misspelled hook and a name clash verbatim."""
    from restorekit.plugins import PluginHost

    for dist, source in BROKEN_SOURCES.items():
        fake_plugin(dist, source, version="1.0.0")
    monkeypatch.setenv("RESTOREKIT_LOAD_PLUGINS", ",".join(BROKEN_SOURCES))
    host = PluginHost().load()
    using = (ROOT / "docs" / "plugins" / "using.md").read_text(encoding="utf-8")
    assert len(host.warnings) == 3, host.warnings
    for line in host.warnings:
        assert f"warning: {line}\n" in using, f"docs/plugins/using.md does not quote: warning: {line}"


def _readme_run_examples() -> list[list[str]]:
    import shlex

    text = (ROOT / "README.md").read_text()
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            if line.startswith("restorekit run "):
                out.append(shlex.split(line)[2:])
    return out


def test_readme_run_examples_use_real_options_and_components(registry):
    """Every `restorekit run` example in README.md names options the CLI has and specs that resolve."""
    from restorekit.api import resolve_components
    from restorekit.cli import get_app
    from typer.main import get_command

    run = get_command(get_app()).commands["run"]
    options = {o for p in run.params for o in getattr(p, "opts", [])}
    examples = _readme_run_examples()
    assert len(examples) >= 10
    for args in examples:
        given: dict[str, list[str]] = {}
        i = 0
        while i < len(args):
            a = args[i]
            if a.startswith("-"):
                assert a in options, f"README example uses unknown option {a}: {args}"
                flag_only = next(p for p in run.params if a in p.opts).is_flag
                if not flag_only:
                    given.setdefault(a, []).append(args[i + 1])
                    i += 1
            i += 1
        resolve_components(
            registry, given.get("--degrade", ["gaussian:25"]), given.get("--prior", ["dip"]),
            (given.get("--net") or [None])[0], given.get("--metric", ["psnr"]),
        )


def test_run_record_schema_doc_is_current():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_record_schema.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, (r.stderr or r.stdout) + " (run: python docs/gen_record_schema.py)"


# -- docs/plugins/prior-tutorial.md: its code is a package, and its tests pass -------------
PRIOR_TUTORIAL = ROOT / "docs" / "plugins" / "prior-tutorial.md"


def _tutorial_blocks() -> tuple[str, str, str]:
    """(pyproject.toml, the package's __init__.py, tests/test_priors.py) as the page lays them out."""
    text = PRIOR_TUTORIAL.read_text(encoding="utf-8")
    toml = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    tests = [b for b in blocks if b.startswith("# tests/test_priors.py")]
    package = [b for b in blocks if not b.startswith("# tests/")]
    assert len(toml) == 1 and len(tests) == 1 and len(package) >= 3, "prior-tutorial.md lost a code block"
    return toml[0], "\n\n".join(package), tests[0]


def test_prior_tutorial_package_is_what_its_pyproject_declares():
    if sys.version_info < (3, 11):
        pytest.skip("tomllib is 3.11+")
    import tomllib

    toml, package, _ = _tutorial_blocks()
    project = tomllib.loads(toml)["project"]
    assert project["entry-points"]["restorekit"] == {"huber": "restorekit_huber"}
    assert f'__version__ = "{project["version"]}"' in package


def test_prior_tutorial_code_runs_and_its_tests_pass(tmp_path):
    """The tutorial's blocks, written where the page says, pass the page's own tests (contract kit included)."""
    import os

    _, package, tests = _tutorial_blocks()
    (tmp_path / "restorekit_huber").mkdir()
    (tmp_path / "restorekit_huber" / "__init__.py").write_text(package, encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_priors.py").write_text(tests, encoding="utf-8")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=tmp_path,
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "4 passed" in r.stdout, r.stdout[-1000:]


# -- links and the vocabulary of the pages a user reads -----------------------------------
def _user_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _anchors(page: Path) -> set[str]:
    """The anchors of a page as GitHub makes them: each heading's slug (-1, -2 for repeats) and <a id>s."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    found = set(re.findall(r'<a id="([^"]+)"', text))
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6} +(.*)$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return found


@pytest.mark.parametrize("page", _user_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    """Every relative link and image of a page names a file or folder that exists, and an anchor it has."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if not path.exists() or (anchor and path.suffix == ".md" and anchor not in _anchors(path)):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def test_the_docs_index_links_every_page():
    """docs/README.md, the index, links every page of docs/ (the plugin pages through plugins/README.md)."""
    index = ROOT / "docs" / "README.md"
    linked = {(index.parent / t.partition("#")[0]).resolve() for t in re.findall(r"\]\(([^)\s]+)\)", index.read_text())}
    missing = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p != index and p.resolve() not in linked]
    assert not missing, f"docs/README.md does not link {missing}"


#: issue 23's old option names (docs/glossary.md, "Old names"), by command: a pattern on the command's arguments
#: (``segment --method`` and ``python -m`` are fine; ``segment -m`` and ``compare --method`` are not)
OLD_OPTIONS = {
    "compare": r"--method\b",
    "eval": r"--baseline\b|(?<!\S)-b\b",
    "segment": r"--truth\b|(?<!\S)-m\b",
    "decompose": r"(?<!\S)-m\b",
    "train": r"--steps(-per-epoch)?\b",
}
#: old names that no command has any more, wherever they appear
RETIRED = [r"--truth\b", r"--baseline\b", r"--steps\b", r"--steps-per-epoch\b"]


def _old_option_uses(text: str) -> list[str]:
    """The old option names a page uses: anywhere for the retired ones, else in one command's arguments (a
    command runs to the end of its line, continued lines joined, or to a backtick, pipe, ``;``, ``&`` or ``#``)."""
    text = re.sub(r"\\\n\s*", " ", text)
    found = [m.group(0) for pattern in RETIRED for m in re.finditer(pattern, text)]
    for command, pattern in OLD_OPTIONS.items():
        for m in re.finditer(rf"\b{command}\b([^\n`|;&#]*)", text):
            if re.search(pattern, m.group(1)):
                found.append(command + m.group(1))
    return found


def test_the_old_option_check_finds_them():
    for old in ["restorekit compare a.png --method tv", "restorekit eval model/ -b tv", "eval --baseline tv",
                "restorekit segment a.png --truth m.png", "restorekit segment a.png -m otsu",
                "restorekit decompose a.png --task dehaze -m dark-channel", "restorekit train d/ --steps 9",
                "restorekit train d/ --steps-per-epoch 9", "restorekit compare a.png \\\n  --method tv"]:
        assert _old_option_uses(old), old
    for new in ["restorekit segment a.png --method otsu --metric iou", "python -m pytest -q",
                "restorekit run a.png -m psnr", "restorekit compare a.png --prior tv -m psnr",
                "restorekit segment a.png --method double-dip\n$ python -m pip install x",
                "`restorekit segment --method NAME` and `python -m restorekit.cli`"]:
        assert not _old_option_uses(new), new


@pytest.mark.parametrize("page", _user_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_use_the_new_option_names(page):
    """Issue 23's vocabulary (docs/glossary.md): the old names appear only in the glossary's table of them."""
    text = page.read_text(encoding="utf-8")
    if page == ROOT / "docs/glossary.md":
        text = text.split("## Old names", 1)[0]
    assert not _old_option_uses(text), f"{page.relative_to(ROOT)} uses old option names: {_old_option_uses(text)}"
