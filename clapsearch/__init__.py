"""clapsearch: text-to-audio search with CLAP embeddings.

Imports are lazy so that `clapsearch --help` and error messages do not pay for torch.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "AudioConfig": "clapsearch.config",
    "Embedder": "clapsearch.embedder",
    "load_embedder": "clapsearch.sources",
    "load_audio": "clapsearch.audio",
    "ClapsearchError": "clapsearch.errors",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'clapsearch' has no attribute {name!r}")
