"""Clip embeddings cached on disk, so the suite embeds each clip once per model.

Key: the model (`model_key`: its identity, which includes a digest of its weights, its audio
front end and its compute dtype) and the clip's content (`clapsearch.hashing.content_hash`,
plus the segment's start and duration for clips cut from a longer file, e.g. Speech Commands'
silence), never its path: a moved or renamed data set hits the cache, and an edited file
misses it. One SQLite file per model under the cache folder (default
`platformdirs.user_cache_dir("clapsearch")/suite-embeddings`):

    files(path, size, mtime_ns, hash)      content hashes, memoised by path, size and mtime
    vectors(hash, start, duration, vector) float32 bytes, `dim` long (duration -1 = to the end)

SQLite's transactions make every write atomic: a killed run leaves the vectors it committed
and nothing half-written; concurrent runs on one cache are safe (WAL, busy timeout).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from clapsearch.hashing import content_hash

CACHE_ENV = "CLAPSEARCH_SUITE_CACHE"
Key = tuple[str, float, float]  # (content hash, start s, duration s or -1)


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("clapsearch")) / "suite-embeddings"


def model_key(embedder) -> str:
    """What makes two embedders give the same clip vector: weights, front end, dtype."""
    audio = embedder.audio_config
    parts = {
        "identity": embedder.identity,
        "dim": int(embedder.dim),
        "sample_rate": audio.sample_rate,
        "window_s": audio.window_s,
        "truncation": audio.truncation,
        "dtype": str(embedder.dtype).removeprefix("torch."),
    }
    digest = hashlib.blake2b(json.dumps(parts, sort_keys=True).encode(), digest_size=10)
    return digest.hexdigest()


class EmbeddingCache:
    """Vectors of one model (`key` = `model_key(embedder)`), `dim` floats each."""

    def __init__(self, folder: str | Path, key: str, dim: int):
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.dim = dim
        self.path = self.folder / f"{key}.sqlite"
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        with self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, "
                "mtime_ns INTEGER, hash TEXT)"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (hash TEXT, start REAL, duration REAL, "
                "vector BLOB, PRIMARY KEY (hash, start, duration))"
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def file_hashes(self, paths: Iterable[str]) -> dict[str, str]:
        """path -> content hash, reading only files whose size or mtime changed since the
        last time; files that cannot be read are left out (the decoder reports them)."""
        out: dict[str, str] = {}
        fresh: list[tuple[str, int, int, str]] = []
        for path in dict.fromkeys(paths):
            try:
                st = os.stat(path)
            except OSError:
                continue
            row = self._db.execute(
                "SELECT size, mtime_ns, hash FROM files WHERE path = ?", (path,)
            ).fetchone()
            if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
                out[path] = row[2]
                continue
            try:
                out[path] = content_hash(path, st.st_size)
            except OSError:
                continue
            fresh.append((path, st.st_size, st.st_mtime_ns, out[path]))
        if fresh:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", fresh)
        return out

    def get(self, keys: Sequence[Key]) -> dict[Key, np.ndarray]:
        """The cached vectors among `keys`."""
        out: dict[Key, np.ndarray] = {}
        for key in dict.fromkeys(keys):
            row = self._db.execute(
                "SELECT vector FROM vectors WHERE hash = ? AND start = ? AND duration = ?", key
            ).fetchone()
            if row is not None:
                vec = np.frombuffer(row[0], dtype=np.float32)
                if vec.size == self.dim:
                    out[key] = vec
        return out

    def put(self, items: Iterable[tuple[Key, np.ndarray]]) -> None:
        rows = [(*k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items]
        if rows:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", rows)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
