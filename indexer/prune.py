"""Keeping an index in step with the disk: `clapsearch remove PATH...` and `index --prune`.

`clapsearch index DIR` prunes what vanished under DIR, but a folder that is gone entirely, or
that the user no longer wants searched, is never scanned again. Two operations cover that:

- `remove_paths(index, paths)`: drop the given files, and every file under the given folders,
  whether or not they still exist on disk (a folder is matched as a path prefix ending at a
  separator, so `/a/b` never takes `/a/bc`).
- `prune_missing(index)`: drop every entry whose file no longer exists (a dangling symlink
  counts as gone), across all roots ever indexed, including roots that no longer exist.

Recorded failures under those paths go too. Both take the writer lock like an index run, make
their deletions in one transaction (nothing else is touched: a kill leaves the old index or
the new one), then bring the ANN cache up to date as an index run does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from clapsearch.index.paths import normalize_path, resolve_index_dir


@dataclass(frozen=True)
class PruneSummary:
    index_dir: str
    files: int  # indexed files dropped
    failures: int  # recorded failures dropped
    index_type: str = ""

    def line(self, verb: str) -> str:
        what = f"{self.files} file{'s' * (self.files != 1)}"
        extra = f" and {self.failures} recorded failure{'s' * (self.failures != 1)}"
        return f"{verb} {what}{extra if self.failures else ''} from {self.index_dir}"

    def to_json(self) -> dict:
        return {"index": self.index_dir, "files": self.files, "failures": self.failures}


def under_any(path: str, targets: Sequence[str]) -> bool:
    """`path` is one of `targets` or inside one of them (prefix ending at a separator)."""
    for t in targets:
        base = t.rstrip(os.sep)  # "/" -> "": everything
        if path in (t, base) or path.startswith(base + os.sep):
            return True
    return False


def remove_paths(index: str | os.PathLike | None, paths: Sequence[str]) -> PruneSummary:
    """Drop the files and folders `paths` from the index (module doc)."""
    targets = [normalize_path(p) for p in paths]
    return _drop(index, lambda p: under_any(p, targets))


def prune_missing(index: str | os.PathLike | None) -> PruneSummary:
    """Drop every entry whose file is gone from disk (module doc)."""
    return _drop(index, lambda p: not os.path.exists(p))


def _drop(index, doomed) -> PruneSummary:
    from indexer.run import IndexOptions, IndexSummary, LazyEmbedder, refresh_ann
    from indexer.writer import IndexWriter, writer_lock

    index_dir = resolve_index_dir(index)
    with writer_lock(index_dir):
        with IndexWriter.open(index_dir) as store:
            files = [p for p in store.file_states() if doomed(p)]
            failures = [p for p in store.failure_states() if doomed(p)]
            with store.snapshot():  # one transaction: all of it or none of it
                removed = store.remove_files(files)
                store.remove_failures(failures)
            summary = IndexSummary(str(index_dir))
            if removed:
                meta = store.meta
                name = meta.model_identity.name
                lazy = LazyEmbedder(name, IndexOptions(()), meta.model, index_dir)
                refresh_ann(store, lazy, summary)
    return PruneSummary(str(index_dir), removed, len(failures), summary.index_type)


__all__ = ["PruneSummary", "prune_missing", "remove_paths", "under_any"]
