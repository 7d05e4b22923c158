"""Path -> file id lookups that import nothing heavy (no numpy, no FAISS): for commands that
only need ids, such as `clapsearch classify` handing indexed files to a running server."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from clapsearch.index.db import Database
from clapsearch.index.paths import db_path, path_candidates


def indexed_file_ids(index_dir: Path, paths: Sequence[str | os.PathLike]) -> list[int | None]:
    """The id of each path's file in the index (as typed, or with symlinks resolved), None
    for a path the index does not hold; all read in one snapshot."""
    db = Database(db_path(index_dir), readonly=True)
    try:
        out: list[int | None] = []
        with db.txn() as conn:
            for path in paths:
                found = None
                for candidate in path_candidates(path):
                    row = conn.execute("SELECT id FROM files WHERE path = ?", (candidate,)).first()
                    if row is not None:
                        found = int(row[0])
                        break
                out.append(found)
        return out
    finally:
        db.close()


__all__ = ["indexed_file_ids"]
