"""The core library never imports the indexer or the trainer (STYLE.md, layering)."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "clapsearch"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
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
                offenders.append(f"{path.relative_to(CORE.parent)} imports {name}")
    assert not offenders, offenders


def test_cli_modules_import_heavy_packages_lazily():
    heavy = {"torch", "transformers", "faiss", "numpy", "sqlalchemy", "indexer", "trainer"}
    offenders = []
    for path in (CORE / "cli").glob("*.py"):
        for name in _top_level_imports(path):
            if name.split(".")[0] in heavy:
                offenders.append(f"{path.name} imports {name} at module level")
    assert not offenders, offenders
