"""Dataset layouts by name: `load_dataset("clotho", root, split)` finds the reader.

A reader is a module in `clapsearch/datasets/` that decorates its loader:

    @register_layout("esc50", task="classification", expects="meta/esc50.csv, audio/*.wav")
    def load_esc50(root, split=None, **options) -> ClassificationSet: ...

Every module of the package is imported the first time a layout is looked up, so adding a
dataset is one new file (no list to edit). Loaders take `(root, split=None, **options)` and
return a `RetrievalSet` (`task="retrieval"`) or a `ClassificationSet` (`"classification"`).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from clapsearch.datasets.base import ClassificationSet, RetrievalSet, require_dir
from clapsearch.errors import UsageError

# "labelled": the benchmark suite's LabelledSet (multi-label, folds or splits; `labelled`)
Task = Literal["retrieval", "classification", "labelled"]


@dataclass(frozen=True)
class Layout:
    """One dataset layout: its name, task, loader, default split and what it expects on disk."""

    name: str
    task: Task
    load: Callable[..., RetrievalSet | ClassificationSet]
    default_split: str | None = None
    expects: str = ""  # one line for help texts: the files the loader looks for


_LAYOUTS: dict[str, Layout] = {}
_discovered = False


def register_layout(
    name: str, task: Task, default_split: str | None = None, expects: str = ""
) -> Callable:
    """Decorator registering a loader under `name` (module doc)."""

    def wrap(load: Callable) -> Callable:
        if name in _LAYOUTS and _LAYOUTS[name].load is not load:
            raise ValueError(f"dataset layout {name!r} is registered twice")
        _LAYOUTS[name] = Layout(name, task, load, default_split, expects)
        return load

    return wrap


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    package = Path(__file__).parent
    for info in pkgutil.iter_modules([str(package)]):
        if not info.name.startswith("_") and info.name not in ("base", "registry"):
            importlib.import_module(f"clapsearch.datasets.{info.name}")
    _discovered = True


def layout_names(task: Task | None = None) -> list[str]:
    """Registered layout names (of one task), sorted."""
    _discover()
    return sorted(n for n, lay in _LAYOUTS.items() if task is None or lay.task == task)


def get_layout(name: str, task: Task | None = None) -> Layout:
    """The layout called `name`, or one sentence listing the known ones."""
    _discover()
    layout = _LAYOUTS.get(name)
    if layout is None or (task is not None and layout.task != task):
        kind = f"{task} " if task else ""
        raise UsageError(
            f"unknown {kind}dataset {name!r} (known: {', '.join(layout_names(task))})."
        )
    return layout


def load_dataset(
    name: str,
    root: str | Path,
    split: str | None = None,
    task: Task | None = None,
    **options,
) -> RetrievalSet | ClassificationSet:
    """Read dataset `name` under `root` (a folder; a manifest layout takes its file)."""
    layout = get_layout(name, task)
    if not Path(root).expanduser().is_file():
        require_dir(root, "dataset")
    return layout.load(Path(root).expanduser(), split or layout.default_split, **options)
