"""Every write to an index: `IndexWriter`, the indexer's side of `clapsearch.index`.

Commit protocol (docs/index-format.md has the full version):
1. Every change to a file's vectors is ONE SQLite transaction (`BEGIN IMMEDIATE` ... `COMMIT`,
   WAL mode): the file row, all its segment rows with their float16 vectors, the removal of
   the old rows and the bump of `index_meta.generation`. A kill at any moment leaves each file
   fully present or fully absent.
2. The FAISS cache (`ann.faiss`, `indexer.ann`) is written after, atomically, tagged with the
   generation it reflects; readers correct a stale one on the fly (`clapsearch.index.reader`).

One writer per index at a time (`writer_lock` below); readers in other processes or
threads keep their snapshots meanwhile.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from clapsearch.config import to_dict
from clapsearch.errors import ClapsearchError
from clapsearch.identity import ModelIdentity
from clapsearch.index.paths import resolve_index_dir
from clapsearch.index.reader import IndexReader, cache_delta, read_generation
from clapsearch.index.schema import SCHEMA_VERSION, FileRecord, IndexConfig
from clapsearch.index.vectors import decode_vectors, encode_vectors


@contextmanager
def writer_lock(index_dir: Path, holder: str = ""):
    """One writer per index: a second `clapsearch index` on it is refused, not interleaved.
    `flock` is released by the kernel if the process dies, so a kill never leaves it stale.
    `holder`: what the refusal tells the next writer instead of "wait for it to end" (a
    watcher never ends by itself); kept in the lock file while the lock is held."""
    index_dir.mkdir(parents=True, exist_ok=True)
    fh = open(index_dir / "indexer.lock", "a+")  # never truncated by a refused opener
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            how = fh.read().strip() or "wait for it to end"
            raise ClapsearchError(
                f"Another `clapsearch index` is already writing {index_dir}; {how}."
            ) from None
        fh.truncate(0)
        fh.write(holder)
        fh.flush()
        yield
    finally:
        fh.close()


class IndexWriter(IndexReader):
    """An index opened for writing: every read of `IndexReader`, and every write."""

    def __init__(self, index_dir, readonly: bool = False):
        if readonly:
            raise ValueError("an IndexWriter is never read-only; use IndexReader")
        super().__init__(index_dir, readonly=False)

    @classmethod
    def open(cls, path: str | os.PathLike | None) -> IndexWriter:
        """Open an existing index for writing (`path` None: the default location)."""

        def prepare(writer: IndexWriter) -> None:
            with writer._write() as conn:
                # older databases lack the index `segment_ids_where` relies on
                conn.exec_driver_sql(
                    "CREATE INDEX IF NOT EXISTS ix_segments_file ON segments (file_id)"
                )
                _migrate_meta(conn)
                _migrate_ann_build(conn)

        writer = cls._open(path, readonly=False, prepare=prepare)
        writer.db.checkpoint()  # a WAL left large by a killed run: give its space back
        return writer

    def close(self) -> None:
        """Checkpoint the WAL into the database file (its space back), then close."""
        if not getattr(self.db, "_closed", True):
            self.db.checkpoint()
        super().close()

    @classmethod
    def create(
        cls, path: str | os.PathLike | None, model: ModelIdentity, config: IndexConfig
    ) -> IndexWriter:
        """Create an empty index for `model`'s vectors (`model.dim` wide): schema and meta row
        in one transaction."""
        index_dir = resolve_index_dir(path)
        index_dir.mkdir(parents=True, exist_ok=True)
        writer = cls(index_dir)
        with writer._write() as conn:
            from clapsearch.index.tables import create_statements

            for statement in create_statements():
                conn.execute(statement)
            exists = conn.execute("SELECT count(*) FROM index_meta").scalar()
            if not exists:
                conn.execute(
                    (
                        "INSERT INTO index_meta (id, schema_version, db_uuid, model, model_source, "
                        "model_identity, dim, config_json, generation, index_type, recall_at_10, "
                        "created_at) VALUES (1, :v, :u, :m, :s, :i, :d, :c, 0, 'flat', NULL, :t)"
                    ),
                    dict(
                        v=SCHEMA_VERSION,
                        u=str(uuid.uuid4()),
                        m=model.key,
                        s=model.name,
                        i=model.to_json(),
                        d=int(model.dim),
                        c=json.dumps(to_dict(config)),
                        t=time.time(),
                    ),
                )
        writer.refresh_meta()
        return writer

    def _write(self):
        """A write transaction (`BEGIN IMMEDIATE`: this writer holds the database's write
        lock until it ends)."""
        return self.db.txn()

    def add_file(
        self, record: FileRecord, spans: Sequence[tuple[float, float]], vectors: np.ndarray
    ) -> int:
        """Replace whatever the index holds at `record.path` with this file and its windows,
        in ONE transaction. `spans[i]` = (start_s, end_s) of `vectors[i]` `(n, dim)`."""
        if len(spans) != len(vectors) or (len(vectors) and vectors.shape[1] != self.meta.dim):
            raise ValueError("spans and vectors must match in length, vectors in dim")
        with self._write() as conn:
            conn.execute(("DELETE FROM files WHERE path = :p"), dict(p=record.path))
            conn.execute(("DELETE FROM failures WHERE path = :p"), dict(p=record.path))
            fid = conn.execute(
                (
                    "INSERT INTO files (path, size, mtime_ns, content_hash, duration_s, "
                    "sample_rate, channels, indexed_at) VALUES (:path, :size, :mtime_ns, "
                    ":content_hash, :duration_s, :sample_rate, :channels, :t) RETURNING id"
                ),
                dict(dataclasses.asdict(record), t=time.time()),
            ).scalar_one()
            rows = [
                (fid, float(s), float(e), b)
                for (s, e), b in zip(spans, encode_vectors(vectors), strict=True)
            ]
            if rows:
                conn.exec_driver_sql(
                    "INSERT INTO segments (file_id, start_s, end_s, vector) VALUES (?, ?, ?, ?)",
                    rows,
                )
            _bump(conn)
        self._view_cache = None
        return int(fid)

    def remove_files(self, paths: Sequence[str]) -> int:
        """Delete files (and, by cascade, their segments) in one transaction; returns how many."""
        removed = 0
        with self._write() as conn:
            for p in paths:
                removed += conn.execute(("DELETE FROM files WHERE path = :p"), dict(p=p)).rowcount
            if removed:
                _bump(conn)
        self._view_cache = None
        return removed

    def relink(self, old_path: str, new_path: str, size: int, mtime_ns: int) -> None:
        """A file moved: point its row at the new path (segments and vectors untouched)."""
        with self._write() as conn:
            if conn.execute(("DELETE FROM files WHERE path = :p"), dict(p=new_path)).rowcount:
                _bump(conn)
            conn.execute(("DELETE FROM failures WHERE path = :p"), dict(p=new_path))
            conn.execute(
                ("UPDATE files SET path = :new, size = :size, mtime_ns = :m WHERE path = :old"),
                dict(new=new_path, size=size, m=mtime_ns, old=old_path),
            )

    def record_failure(self, path: str, reason: str, detail: str, size: int, mtime_ns: int) -> None:
        """Remember a file that could not be indexed; any old vectors of that path go."""
        with self._write() as conn:
            if conn.execute(("DELETE FROM files WHERE path = :p"), dict(p=path)).rowcount:
                _bump(conn)
            conn.execute(
                (
                    "INSERT OR REPLACE INTO failures (path, reason, detail, size, mtime_ns, "
                    "failed_at) VALUES (:p, :r, :d, :s, :m, :t)"
                ),
                dict(p=path, r=reason, d=detail[:500], s=size, m=mtime_ns, t=time.time()),
            )

    def remove_failures(self, paths: Sequence[str]) -> None:
        with self._write() as conn:
            for p in paths:
                conn.execute(("DELETE FROM failures WHERE path = :p"), dict(p=p))

    def file_states(self) -> dict[str, tuple[int, int, str]]:
        """path -> (size, mtime_ns, content_hash) of every indexed file (incremental scans)."""
        with self._write() as conn:
            rows = conn.execute("SELECT path, size, mtime_ns, content_hash FROM files")
            return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def failure_states(self) -> dict[str, tuple[int, int, str]]:
        """path -> (size, mtime_ns, reason) of every recorded failure."""
        with self._write() as conn:
            rows = conn.execute("SELECT path, size, mtime_ns, reason FROM failures")
            return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def reset_model(self, model: ModelIdentity, config: IndexConfig) -> None:
        """`--reembed`: drop every file and vector and adopt a new model, in one transaction."""
        with self._write() as conn:
            conn.execute("DELETE FROM segments")
            conn.execute("DELETE FROM files")
            conn.execute("DELETE FROM failures")
            conn.execute(
                (
                    "UPDATE index_meta SET model = :m, model_source = :s, model_identity = :i, "
                    "dim = :d, config_json = :c, index_type = 'flat', recall_at_10 = NULL "
                    "WHERE id = 1"
                ),
                dict(
                    m=model.key,
                    s=model.name,
                    i=model.to_json(),
                    d=int(model.dim),
                    c=json.dumps(to_dict(config)),
                ),
            )
            _bump(conn)
        self._view_cache = None
        self.refresh_meta()

    def set_config(self, config: IndexConfig) -> None:
        with self._write() as conn:
            conn.execute(
                ("UPDATE index_meta SET config_json = :c WHERE id = 1"),
                dict(c=json.dumps(to_dict(config))),
            )
        self.refresh_meta()

    def set_ann_info(
        self, index_type: str, recall_at_10: float | None, build_id: str | None = None
    ) -> None:
        """Record the cache's type and recall and, with `build_id`, that the cache file now
        in place is this database's (`clapsearch.index.ann_cache`, module doc)."""
        with self._write() as conn:
            conn.execute(
                (
                    "UPDATE index_meta SET index_type = :t, recall_at_10 = :r, "
                    "ann_build = coalesce(:b, ann_build) WHERE id = 1"
                ),
                dict(t=index_type, r=recall_at_10, b=build_id),
            )
        self.refresh_meta()

    def write_cache(self, header, index):
        """Write the ANN cache file, then record it in the database: the order that makes a
        kill between the two (or a database that loses the second) leave a cache that is
        never used (`ann_cache.cache_problem`). `index` None: an on-disk cache's header.
        Returns the header as written."""
        import dataclasses
        import uuid

        from clapsearch.index.ann_cache import write_ann
        from clapsearch.index.paths import ann_path

        header = dataclasses.replace(header, build_id=uuid.uuid4().hex)
        header = write_ann(ann_path(self.index_dir), header, index)
        self.set_ann_info(header.index_type, header.recall_at_10, header.build_id)
        return header

    def changes_since(
        self, cache_ids: np.ndarray
    ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """What an ANN cache holding `cache_ids` (sorted) lacks, from one snapshot:
        `(generation, dead ids, fresh ids, fresh vectors (m, dim))` (`cache_delta`)."""
        with self.snapshot() as conn:
            return (read_generation(conn), *cache_delta(conn, cache_ids, self.meta.dim))

    def all_vectors(self) -> tuple[int, np.ndarray, np.ndarray]:
        """`(generation, ids (n,) int64 sorted, vectors (n, dim) float32)` from one snapshot:
        what an ANN cache is built from."""
        with self.snapshot() as conn:
            gen = read_generation(conn)
            ids: list[int] = []
            blobs: list[bytes] = []
            for r in conn.execute("SELECT id, vector FROM segments ORDER BY id"):
                ids.append(r[0])
                blobs.append(r[1])
        return int(gen), np.array(ids, dtype=np.int64), decode_vectors(blobs, self.meta.dim)

    def segment_ids(self) -> tuple[int, np.ndarray]:
        """`(generation, every segment id (n,) int64 sorted)` from one snapshot (no vector
        pages read)."""
        with self.snapshot() as conn:
            gen = read_generation(conn)
            rows = conn.exec_driver_sql("SELECT id FROM segments")
            ids = np.sort(np.fromiter((r[0] for r in rows), dtype=np.int64))
        return int(gen), ids

    def segment_files(self) -> tuple[np.ndarray, np.ndarray]:
        """`(segment ids (n,) sorted, their file ids (n,))` from one snapshot (the
        `(file_id, id)` index covers it)."""
        with self.snapshot() as conn:
            rows = conn.exec_driver_sql("SELECT id, file_id FROM segments ORDER BY id").all()
        arr = np.array(rows, dtype=np.int64).reshape(-1, 2)
        return arr[:, 0].copy(), arr[:, 1].copy()

    def file_ids_of(self, ids: np.ndarray) -> np.ndarray:
        """The file id of each segment id in `ids` (sorted, all present)."""
        all_ids, files = self.segment_files()
        return files[np.searchsorted(all_ids, ids)]

    def vectors_for(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(ids found (u,) sorted, vectors (u, dim) float32)` of the given segment ids."""
        with self.snapshot() as conn:
            return self._vectors_for(conn, np.unique(np.asarray(ids, dtype=np.int64)))

    def iter_vectors(
        self, after: int = -1, chunk: int = 100_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """`(ids (m,), vectors (m, dim) float32)` of the segments with id > `after`, in id
        order, `chunk` at a time: bounded memory for caches larger than memory. Each chunk is
        its own read; callers needing one state hold the writer lock (`clapsearch index
        merge` does)."""
        while True:
            with self.snapshot() as conn:
                rows = conn.execute(
                    "SELECT id, vector FROM segments WHERE id > :a ORDER BY id LIMIT :n",
                    dict(a=int(after), n=int(chunk)),
                ).all()
            if not rows:
                return
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            yield ids, decode_vectors([r[1] for r in rows], self.meta.dim)
            after = int(ids[-1])


def _migrate_meta(conn) -> None:
    """Version 1 -> 2: add `index_meta.model_identity`, filled from the version 1 strings
    (`ModelIdentity.from_legacy`), so every later reader finds the record."""
    columns = {r[1] for r in conn.exec_driver_sql("PRAGMA table_info(index_meta)")}
    if "model_identity" in columns:
        return
    for column in ("model_source", "model_identity"):
        if column not in columns:
            conn.exec_driver_sql(f"ALTER TABLE index_meta ADD COLUMN {column} TEXT DEFAULT ''")
    row = conn.exec_driver_sql("SELECT * FROM index_meta WHERE id = 1").mappings().one()
    identity = ModelIdentity.from_legacy(row["model"], row["model_source"] or "", int(row["dim"]))
    conn.execute(
        ("UPDATE index_meta SET model_identity = :i, schema_version = :v WHERE id = 1"),
        dict(i=identity.to_json(), v=SCHEMA_VERSION),
    )


def _migrate_ann_build(conn) -> None:
    """Version 2 -> 3: `index_meta.ann_build`, the build id of the recorded ANN cache (NULL:
    no cache recorded yet, so an existing `ann.faiss` is rebuilt by the next run)."""
    columns = {r[1] for r in conn.exec_driver_sql("PRAGMA table_info(index_meta)")}
    if "ann_build" not in columns:
        conn.exec_driver_sql("ALTER TABLE index_meta ADD COLUMN ann_build TEXT")
        conn.execute(
            "UPDATE index_meta SET schema_version = :v WHERE id = 1", dict(v=SCHEMA_VERSION)
        )


def _bump(conn) -> None:
    conn.execute("UPDATE index_meta SET generation = generation + 1 WHERE id = 1")


__all__ = ["IndexWriter"]
