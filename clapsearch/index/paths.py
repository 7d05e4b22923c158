"""Where an index lives (when no `--index` is given, shared by every command), the files in
it, and how audio paths are stored.

Precedence: the explicit `--index PATH`, then `$CLAPSEARCH_INDEX`, then
`platformdirs.user_data_dir("clapsearch")/index`. An index is a directory (see
docs/index-format.md): `index.db` (SQLite, the source of truth) and `ann.faiss` (derived cache).
"""

from __future__ import annotations

import os
from pathlib import Path

INDEX_ENV = "CLAPSEARCH_INDEX"
DB_NAME = "index.db"
ANN_NAME = "ann.faiss"


def default_index_dir() -> Path:
    env = os.environ.get(INDEX_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("clapsearch")) / "index"


def resolve_index_dir(index: str | os.PathLike | None = None) -> Path:
    """`--index` value (or None) -> the index directory, absolute; not created here."""
    path = Path(index).expanduser() if index else default_index_dir()
    if path.name == DB_NAME:  # users may point at the database file itself
        path = path.parent
    return path.absolute()


def normalize_path(path: str | os.PathLike) -> str:
    """How audio paths are stored: absolute, `~` expanded, symlinks kept (the path the user
    sees)."""
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def path_candidates(path: str | os.PathLike) -> list[str]:
    """The stored forms a user's path may match: as typed, then with symlinks resolved."""
    first = normalize_path(path)
    real = os.path.realpath(first)
    return [first] if real == first else [first, real]


def db_path(index_dir: Path) -> Path:
    return index_dir / DB_NAME


def ann_path(index_dir: Path) -> Path:
    return index_dir / ANN_NAME


__all__ = [
    "INDEX_ENV",
    "ann_path",
    "db_path",
    "default_index_dir",
    "normalize_path",
    "path_candidates",
    "resolve_index_dir",
]
