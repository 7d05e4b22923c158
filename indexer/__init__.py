"""clapsearch indexer: folder trees of audio -> a crash-safe, incremental index.

`scan` walks the roots, `plan` compares them with the index, `decode` reads files in worker
processes, `pipeline` embeds their windows in batches, `ann` builds the FAISS cache, `run`
wires them together. The core (`clapsearch/`) never imports this package; `clapsearch.index`
is the shared format (read side), `indexer.writer.IndexWriter` every write.

Imports are lazy: a decode worker imports `indexer.decode` and must not pay for the index
(SQLAlchemy, FAISS) it never touches.
"""

from __future__ import annotations

_LAZY = {
    "IndexOptions": "indexer.run",
    "IndexSummary": "indexer.run",
    "run_index": "indexer.run",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'indexer' has no attribute {name!r}")


__all__ = ["IndexOptions", "IndexSummary", "run_index"]
