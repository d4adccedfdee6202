"""The architecture's counted rules (issue 21), read from the source.

These hold the shape of the package as it grows: short functions, no
import cycles, nothing private borrowed across packages, one fitting loop
and one training loop (the only places gradients are taken, besides the
plugin contract kit), one record writer, and docs/architecture.md naming
only files that exist and describing every package.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "restorekit"
MAX_LINES = 100
#: the only files that call .backward(): the fitting loop, the training loop, the contract kit
BACKWARD_FILES = {"restorekit/fit/loop.py", "restorekit/learn/loop.py", "restorekit/testing/contract.py"}


def _modules() -> dict[str, Path]:
    mods = {}
    for p in PKG.rglob("*.py"):
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = p
    return mods


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PKG / parts[1]).is_dir()) else "<core>"


def _imports(name: str, path: Path, mods: dict[str, Path]):
    """(target module, imported name, line, module level?) for every restorekit import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]

    def visit(nodes, module_level):
        for node in nodes:
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                if mod.split(".")[0] != "restorekit":
                    continue
                for alias in node.names:
                    full = f"{mod}.{alias.name}"
                    yield (full if full in mods else mod), alias.name, node.lineno, module_level
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "restorekit":
                        yield alias.name, "", node.lineno, module_level
            elif isinstance(node, ast.If):
                type_checking = "TYPE_CHECKING" in ast.unparse(node.test)
                yield from visit(node.body, module_level and not type_checking)
                yield from visit(node.orelse, module_level)
            elif isinstance(node, ast.Try):
                yield from visit(node.body, module_level)
                for h in node.handlers:
                    yield from visit(h.body, module_level)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield from visit(node.body, False)
            elif isinstance(node, ast.ClassDef):
                yield from visit(node.body, module_level)

    yield from visit(tree.body, True)


def test_no_function_is_longer_than_a_hundred_lines():
    long = []
    for p in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_LINES:
                    long.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, long


def test_no_private_name_is_imported_across_top_level_packages():
    mods = _modules()
    borrowed = [
        f"{mods[name].relative_to(ROOT)}:{line} imports {imported} from {target}"
        for name in mods
        for target, imported, line, _ in _imports(name, mods[name], mods)
        if imported.startswith("_") and not imported.startswith("__") and _top(target) != _top(name)
    ]
    assert not borrowed, borrowed


def test_no_module_level_import_cycle():
    mods = _modules()
    edges = {name: {t for t, _, _, top in _imports(name, mods[name], mods) if top and t in mods and t != name}
             for name in mods}
    # Tarjan's strongly connected components, iteratively
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles = []
    counter = 0
    for root in mods:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter; counter += 1
        stack.append(root); on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter; counter += 1
                    stack.append(w); on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop(); on.discard(w); comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        cycles.append(sorted(comp))
    assert not cycles, cycles


def test_gradients_are_taken_in_the_fitting_loop_the_training_loop_and_the_contract_kit_only():
    found = {str(p.relative_to(ROOT)) for p in PKG.rglob("*.py") if ".backward(" in p.read_text(encoding="utf-8")}
    assert found <= BACKWARD_FILES, sorted(found - BACKWARD_FILES)
    assert "restorekit/fit/loop.py" in found and "restorekit/learn/loop.py" in found


def test_one_record_writer():
    found = [str(p.relative_to(ROOT)) for p in PKG.rglob("*.py")
             if re.search(r"^def record_json\(", p.read_text(encoding="utf-8"), re.M)]
    assert len(found) == 1, found


def test_the_architecture_doc_names_only_files_that_exist_and_every_package():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    tree = doc.split("```", 2)[1]
    # every path-like word in the tree block: a folder line sets the prefix of the names under it
    missing = []
    prefix: list[tuple[int, str]] = []
    for line in tree.splitlines():
        m = re.match(r"^( *)([\w./]+/?)(\s|$)", line)
        if not m or not (m.group(2).endswith("/") or m.group(2).endswith(".py")):
            continue
        indent, name = len(m.group(1)), m.group(2)
        prefix = [(i, n) for i, n in prefix if i < indent]
        path = "".join(n for _, n in prefix) + name
        if not (ROOT / path).exists():
            missing.append(path)
        if name.endswith("/"):
            prefix.append((indent, name))
    assert not missing, missing
    packages = {str(p.parent.relative_to(ROOT)) + "/" for p in PKG.rglob("__init__.py")}
    undescribed = sorted(p for p in packages if p.removeprefix("restorekit/") not in tree and p not in tree)
    assert not undescribed, undescribed
    assert re.search(r"!\[[^\]]*\]\((images/[^)]+)\)", doc), "the doc shows a picture of the layers"
    for img in re.findall(r"!\[[^\]]*\]\((images/[^)]+)\)", doc):
        assert (ROOT / "docs" / img).is_file(), img
