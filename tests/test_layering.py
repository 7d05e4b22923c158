"""Layering (STYLE.md): the core library never imports the builders (indexer, trainer); the
builders build on the core; nothing imports the CLI but entry points (`__main__` modules)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "clapsearch"
PACKAGES = ("clapsearch", "indexer", "trainer", "benchmarks")


def _imported_modules(path: Path) -> set[str]:
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    return _imports_in(path.read_text(), package)


def _imports_in(source: str, package: str) -> set[str]:
    """Every module `source` imports, anywhere (lazy imports included), relative imports
    made absolute against `package`; `from a import b` counts as `a` and `a.b`."""
    tree = ast.parse(source)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_modules_do_not_import_indexer_or_trainer():
    offenders = []
    for path in CORE.rglob("*.py"):
        if "cli" in path.relative_to(CORE).parts:
            continue  # the CLI may import them, lazily (checked below)
        for name in _imported_modules(path):
            if name.split(".")[0] in {"indexer", "trainer"}:
                offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert not offenders, offenders


def test_nothing_imports_the_cli_but_entry_points():
    offenders = []
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            rel = path.relative_to(REPO)
            if rel.parts[:2] == ("clapsearch", "cli") or path.name == "__main__.py":
                continue
            for name in _imported_modules(path):
                if name == "clapsearch.cli" or name.startswith("clapsearch.cli."):
                    offenders.append(f"{rel} imports {name}")
    assert not offenders, offenders


def test_the_layering_check_sees_lazy_and_relative_imports():
    """The checks above would pass vacuously if the parser missed imports."""
    source = "def f():\n    from . import cli\n    import indexer.run\n    from .. import x\n"
    assert {"clapsearch.cli", "indexer.run"} <= _imports_in(source, "clapsearch")
    assert "clapsearch.x" in _imports_in(source, "clapsearch.datasets")
    assert "indexer.writer" in _imported_modules(REPO / "indexer" / "run.py")


def test_cli_modules_import_heavy_packages_lazily():
    heavy = {"torch", "transformers", "faiss", "numpy", "sqlalchemy", "indexer", "trainer"}
    offenders = []
    for path in (CORE / "cli").glob("*.py"):
        for name in _top_level_imports(path):
            if name.split(".")[0] in heavy:
                offenders.append(f"{path.name} imports {name} at module level")
    assert not offenders, offenders
