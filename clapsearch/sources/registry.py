"""The model-source registry: which loader takes a `--model` value, decided by content.

A source is one module in `clapsearch/sources/` that registers a `ModelSource`:

    register_source(ModelSource(
        kind="msclap",                          # ModelIdentity.kind of what it loads
        formats="an MS-CLAP .pth checkpoint",   # named in "not a model clapsearch can load"
        recognises=looks_like_msclap,           # name -> bool, by content (open the file)
        load=load_msclap,                       # (name, device, dtype, parts) -> Embedder
        order=30,                               # asked in this order, lowest first
    ))

Every module of the package is imported the first time a model is looked up, so a new
format is one new file. `recognises` must be cheap and must not raise: read a marker file
or a few header bytes, never the weights. `load` gets the canonical name (`canonical_name`:
an absolute path for local files) and returns an `Embedder` whose `model_identity.name` is
that name. `parts` says which towers the caller needs ({"audio", "text"}); a source may
load less than asked for nothing, never less than asked (today every source loads both).
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clapsearch.errors import ModelLoadError

if TYPE_CHECKING:
    import torch

    from clapsearch.embedder import Embedder

ALL_PARTS = frozenset({"audio", "text"})


@dataclass(frozen=True)
class ModelSource:
    """One way to load a model (module doc)."""

    kind: str
    formats: str
    recognises: Callable[[str], bool]
    load: Callable[[str, torch.device, torch.dtype, frozenset[str]], Embedder]
    order: int = 100
    canonical: Callable[[str], str] | None = None  # name -> the name to record; default below


_SOURCES: dict[str, ModelSource] = {}
_discovered = False
_discover_lock = threading.Lock()


def register_source(source: ModelSource) -> ModelSource:
    """Add `source` to the registry (module doc); a second source of one kind is an error."""
    old = _SOURCES.get(source.kind)
    if old is not None and old != source:
        raise ValueError(f"model source {source.kind!r} is registered twice")
    _SOURCES[source.kind] = source
    return source


def _discover() -> None:
    global _discovered
    with _discover_lock:
        if _discovered:
            return
        for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
            if not info.name.startswith("_") and info.name != "registry":
                importlib.import_module(f"clapsearch.sources.{info.name}")
        _discovered = True


def sources() -> list[ModelSource]:
    """Every registered source, in the order they are asked."""
    _discover()
    return sorted(_SOURCES.values(), key=lambda s: (s.order, s.kind))


def find_source(name: str) -> ModelSource | None:
    """The first source that recognises `name`, or None."""
    return next((s for s in sources() if _safe(s.recognises, name)), None)


def _safe(recognises: Callable[[str], bool], name: str) -> bool:
    try:
        return bool(recognises(name))
    except (OSError, ValueError):  # an unreadable candidate is not recognised
        return False


def local_path(name: str) -> Path:
    return Path(name).expanduser()


def canonical_name(name: str) -> str:
    """What an index records to load `name` again: the source's own rule, else an existing
    local path made absolute, else `name` as given. Loads nothing."""
    source = find_source(name)
    if source is not None and source.canonical is not None:
        return source.canonical(name)
    path = local_path(name)
    return str(path.absolute()) if path.exists() else name


def supported_formats() -> str:
    """ "a; b; c": what the registered sources load, for error sentences."""
    return "; ".join(s.formats for s in sources())


def unrecognised(name: str) -> ModelLoadError:
    """The one sentence for a name no source takes."""
    path = local_path(name)
    if path.exists():
        what = "folder" if path.is_dir() else "file"
        return ModelLoadError(
            f"The {what} {name} is not a model clapsearch can load (it loads: "
            f"{supported_formats()})."
        )
    return ModelLoadError(f"Model path {name} does not exist.")


def load_with_sources(
    name: str, device: torch.device, dtype: torch.dtype, parts: frozenset[str] = ALL_PARTS
) -> Embedder:
    """Load `name` with the first source that recognises it (module doc)."""
    source = find_source(name)
    if source is None:
        raise unrecognised(name)
    return source.load(canonical_name(name), device, dtype, frozenset(parts))
