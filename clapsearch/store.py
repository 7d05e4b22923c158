"""The index on disk: a SQLite database (source of truth, vectors included) plus a derived
FAISS cache, behind one typed API used by the query layer (reads) and the indexer (writes).

Commit protocol (docs/index-format.md has the full version):
1. Every change to a file's vectors is ONE SQLite transaction (`BEGIN IMMEDIATE` ... `COMMIT`,
   WAL mode): the file row, all its segment rows with their float16 vectors, the removal of
   the old rows and the bump of `index_meta.generation`. A kill at any moment leaves each file
   fully present or fully absent.
2. The FAISS cache (`ann.faiss`) is written after, atomically, tagged with the generation it
   reflects. A stale or missing cache is never wrong: searches exclude ids deleted since
   (`IDSelector`) and search ids added since exactly.
Readers get a consistent snapshot per call, or across calls inside `with store.snapshot():`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import StaticPool

from clapsearch.annfile import AnnCache, ann_search, read_ann, read_header
from clapsearch.config import from_dict, to_dict
from clapsearch.errors import ClapsearchError, IndexNotFoundError
from clapsearch.paths import ann_path, db_path, resolve_index_dir
from clapsearch.store_schema import (
    SCHEMA_VERSION,
    Base,
    FailureRecord,
    FileRecord,
    IndexConfig,
    IndexMeta,
    IndexStatus,
    SegmentRecord,
)
from clapsearch.vectors import decode_vectors, encode_vectors, exact_topk, topk_merge

EXACT_SUBSET_MAX = 4096  # allowed_ids up to this many: exact search over their stored vectors
_CHUNK = 900  # SQLite host-parameter batch


@dataclass
class _View:
    """What a search at one generation runs on: the cache corrected by the database."""

    generation: int
    cache: AnnCache | None
    dead: np.ndarray  # (n,) int64 ids in the cache that the database no longer has
    fresh_ids: np.ndarray  # (m,) int64 ids the cache lacks
    fresh_vecs: np.ndarray  # (m, dim) float32


class IndexStore:
    """One open index directory. `open()` for existing indexes, `create()` for new ones."""

    def __init__(self, index_dir: Path, readonly: bool):
        self.index_dir = index_dir
        self.readonly = readonly
        self._engine = _make_engine(db_path(index_dir), readonly)
        self._conn = self._engine.connect()
        self._view_cache: _View | None = None
        self.meta: IndexMeta = None  # type: ignore[assignment]

    # --- opening ---------------------------------------------------------------------------
    @staticmethod
    def exists(path: str | os.PathLike | None) -> bool:
        """Whether `path` holds an index (a database whose schema and meta row committed;
        a process killed while creating one leaves a database without them)."""
        db = db_path(resolve_index_dir(path))
        if not db.is_file():
            return False
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30.0)
        except sqlite3.Error:
            return False
        try:
            return con.execute("SELECT count(*) FROM index_meta").fetchone()[0] > 0
        except sqlite3.Error:
            return False
        finally:
            con.close()

    @classmethod
    def open(cls, path: str | os.PathLike | None, readonly: bool = True) -> IndexStore:
        """Open an existing index (`path` None: the default location)."""
        index_dir = resolve_index_dir(path)
        if not IndexStore.exists(index_dir):
            raise IndexNotFoundError(
                f"No index at {index_dir}: run `clapsearch index DIR` to build one."
            )
        store = cls(index_dir, readonly)
        try:
            if not readonly:  # older databases: the index `segment_ids_where` relies on
                with store._txn() as conn:
                    conn.exec_driver_sql(
                        "CREATE INDEX IF NOT EXISTS ix_segments_file ON segments (file_id)"
                    )
            store.refresh_meta()
        except Exception:
            store.close()
            raise IndexNotFoundError(
                f"{index_dir} does not hold a readable clapsearch index: run `clapsearch index "
                f"DIR` with another --index, or delete it."
            ) from None
        return store

    @classmethod
    def create(
        cls,
        path: str | os.PathLike | None,
        model: str,
        dim: int,
        config: IndexConfig,
        model_source: str = "",
    ) -> IndexStore:
        """Create an empty index (schema and meta row in one transaction)."""
        index_dir = resolve_index_dir(path)
        index_dir.mkdir(parents=True, exist_ok=True)
        store = cls(index_dir, readonly=False)
        with store._txn() as conn:
            Base.metadata.create_all(conn)
            exists = conn.execute(text("SELECT count(*) FROM index_meta")).scalar()
            if not exists:
                conn.execute(
                    text(
                        "INSERT INTO index_meta (id, schema_version, db_uuid, model, model_source, "
                        "dim, config_json, generation, index_type, recall_at_10, created_at) "
                        "VALUES (1, :v, :u, :m, :s, :d, :c, 0, 'flat', NULL, :t)"
                    ),
                    dict(
                        v=SCHEMA_VERSION,
                        u=str(uuid.uuid4()),
                        m=model,
                        s=model_source,
                        d=int(dim),
                        c=json.dumps(to_dict(config)),
                        t=time.time(),
                    ),
                )
        store.refresh_meta()
        return store

    def refresh_meta(self) -> IndexMeta:
        with self._txn() as conn:
            row = conn.execute(
                text(
                    "SELECT model, dim, schema_version, index_type, recall_at_10, config_json, "
                    "generation, db_uuid, model_source FROM index_meta WHERE id = 1"
                )
            ).one()
        self.meta = IndexMeta(
            model=row[0],
            dim=int(row[1]),
            schema_version=int(row[2]),
            index_type=row[3],
            recall_at_10=row[4],
            config=from_dict(IndexConfig, json.loads(row[5])),
            generation=int(row[6]),
            db_uuid=row[7],
            model_source=row[8] or "",
        )
        return self.meta

    def close(self) -> None:
        self._conn.close()
        self._engine.dispose()

    def __enter__(self) -> IndexStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _txn(self) -> Iterator:
        """A transaction on the one connection; nested uses join the outer one."""
        if self._conn.in_transaction():
            yield self._conn
            return
        with self._conn.begin():
            yield self._conn

    def snapshot(self):
        """`with store.snapshot():` every read inside sees the same database state."""
        return self._txn()

    # --- vector search ---------------------------------------------------------------------
    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """`(Q, dim)` float32 unit queries -> `(scores (Q, k) float32 cosine, ids (Q, k) int64)`.

        Empty slots are `(-inf, -1)`. With `allowed_ids`, only those segments are searched
        (exactly when there are at most `EXACT_SUBSET_MAX`, else with a FAISS `IDSelector`),
        so k results come back whenever k of them exist.
        """
        q = np.ascontiguousarray(np.asarray(queries, dtype=np.float32).reshape(-1, self.meta.dim))
        with self._txn() as conn:
            view = self._view(conn)
            if allowed_ids is not None:
                allowed = np.unique(np.asarray(allowed_ids, dtype=np.int64))
                if view.cache is None or len(allowed) <= EXACT_SUBSET_MAX:
                    ids, vecs = self._vectors_for(conn, allowed)
                    return exact_topk(q, vecs, ids, k)
                in_cache = np.intersect1d(allowed, view.cache.ids, assume_unique=True)
                in_cache = np.setdiff1d(in_cache, view.dead, assume_unique=True)
                fresh = np.isin(view.fresh_ids, allowed)
                parts = [
                    self._search_cache(conn, view.cache, q, k, _batch_selector(in_cache)),
                    exact_topk(q, view.fresh_vecs[fresh], view.fresh_ids[fresh], k),
                ]
                return topk_merge(parts, k)
            parts = [exact_topk(q, view.fresh_vecs, view.fresh_ids, k)]
            if view.cache is not None:
                sel = None
                if len(view.dead):
                    import faiss

                    sel = faiss.IDSelectorNot(_batch_selector(view.dead))
                parts.append(self._search_cache(conn, view.cache, q, k, sel))
            return topk_merge(parts, k)

    def _search_cache(self, conn, cache: AnnCache, q: np.ndarray, k: int, selector) -> tuple:
        """The cache's top-k; a gap-routed cache re-ranks its candidates exactly with their
        vectors read in this snapshot (`annfile.ann_search`)."""
        return ann_search(
            cache.header,
            cache.index,
            q,
            k,
            selector,
            fetch=lambda ids: self._vectors_for(conn, ids),
            memo=cache.memo,
        )

    def _view(self, conn) -> _View:
        gen, db_uuid = conn.execute(
            text("SELECT generation, db_uuid FROM index_meta WHERE id = 1")
        ).one()
        if self._view_cache is not None and self._view_cache.generation == gen:
            return self._view_cache
        cache = self._load_cache(db_uuid)
        dim = self.meta.dim
        if cache is not None and cache.header.generation == gen:
            empty = np.zeros(0, np.int64)
            view = _View(gen, cache, empty, empty, np.zeros((0, dim), np.float32))
        else:
            # ids are AUTOINCREMENT: anything the cache lacks is above its largest id
            top = int(cache.ids[-1]) if cache is not None and len(cache.ids) else -1
            live = np.fromiter(
                (
                    r[0]
                    for r in conn.execute(
                        text("SELECT id FROM segments WHERE id <= :t"), dict(t=top)
                    )
                ),
                dtype=np.int64,
            )
            dead = np.setdiff1d(cache.ids, live) if cache is not None else np.zeros(0, np.int64)
            rows = conn.execute(
                text("SELECT id, vector FROM segments WHERE id > :t ORDER BY id"), dict(t=top)
            ).all()
            fresh_ids = np.array([r[0] for r in rows], dtype=np.int64)
            view = _View(gen, cache, dead, fresh_ids, decode_vectors([r[1] for r in rows], dim))
        self._view_cache = view
        return view

    def _load_cache(self, db_uuid: str) -> AnnCache | None:
        path = ann_path(self.index_dir)
        header = read_header(path)
        if header is None or header.db_uuid != db_uuid or header.dim != self.meta.dim:
            return None
        old = self._view_cache.cache if self._view_cache is not None else None
        if old is not None and old.header == header:
            return old
        cache = read_ann(path)
        if cache is None or cache.header.db_uuid != db_uuid:
            return None
        return cache

    def _vectors_for(self, conn, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out_ids: list[int] = []
        blobs: list[bytes] = []
        for lo in range(0, len(ids), _CHUNK):
            chunk = [int(i) for i in ids[lo : lo + _CHUNK]]
            marks = ",".join("?" * len(chunk))
            rows = conn.exec_driver_sql(
                f"SELECT id, vector FROM segments WHERE id IN ({marks}) ORDER BY id", tuple(chunk)
            ).all()
            out_ids.extend(r[0] for r in rows)
            blobs.extend(r[1] for r in rows)
        return np.array(out_ids, dtype=np.int64), decode_vectors(blobs, self.meta.dim)

    # --- metadata reads --------------------------------------------------------------------
    def segments(self, ids: Sequence[int]) -> dict[int, SegmentRecord]:
        """Segment id -> record (with its file's path and duration); unknown ids are absent."""
        wanted = sorted({int(i) for i in ids if int(i) >= 0})
        out: dict[int, SegmentRecord] = {}
        with self._txn() as conn:
            for lo in range(0, len(wanted), _CHUNK):
                chunk = wanted[lo : lo + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.exec_driver_sql(
                    "SELECT s.id, s.file_id, f.path, s.start_s, s.end_s, f.duration_s "
                    f"FROM segments s JOIN files f ON f.id = s.file_id WHERE s.id IN ({marks})",
                    tuple(chunk),
                ).all()
                for r in rows:
                    out[r[0]] = SegmentRecord(r[0], r[1], r[2], r[3], r[4], r[5])
        return out

    def segment_ids_where(
        self,
        path_glob: str | None = None,
        path_prefix: str | None = None,
        min_duration_s: float | None = None,
        max_duration_s: float | None = None,
    ) -> np.ndarray:
        """Sorted int64 ids of the segments whose file matches every given filter.

        `path_glob` is SQLite GLOB on the absolute path (`*` also matches `/`, case-sensitive);
        `path_prefix` is made absolute first.
        """
        where, params = [], {}
        if path_glob:
            where.append("path GLOB :glob")
            params["glob"] = path_glob
        if path_prefix:
            prefix = normalize_path(path_prefix)
            where.append("substr(path, 1, :plen) = :prefix")
            params.update(prefix=prefix, plen=len(prefix))
        if min_duration_s is not None:
            where.append("duration_s >= :dmin")
            params["dmin"] = float(min_duration_s)
        if max_duration_s is not None:
            where.append("duration_s <= :dmax")
            params["dmax"] = float(max_duration_s)
        with self._txn() as conn:
            if not where:  # the (file_id, id) index covers this: no vector pages read
                rows = conn.exec_driver_sql("SELECT id FROM segments")
                return np.sort(np.fromiter((r[0] for r in rows), dtype=np.int64))
            # matching files first, then their segments through ix_segments_file: a scan of
            # `segments` would page in every vector blob (0.9 s at 1M windows)
            fids = [
                r[0]
                for r in conn.execute(
                    text("SELECT id FROM files WHERE " + " AND ".join(where)), params
                )
            ]
            out: list[int] = []
            for lo in range(0, len(fids), _CHUNK):
                chunk = fids[lo : lo + _CHUNK]
                marks = ",".join("?" * len(chunk))
                out.extend(
                    r[0]
                    for r in conn.exec_driver_sql(
                        f"SELECT id FROM segments WHERE file_id IN ({marks})", tuple(chunk)
                    )
                )
        return np.sort(np.array(out, dtype=np.int64))

    def file_id_for_path(self, path: str | os.PathLike) -> int | None:
        with self._txn() as conn:
            for candidate in _path_candidates(path):
                row = conn.execute(
                    text("SELECT id FROM files WHERE path = :p"), dict(p=candidate)
                ).first()
                if row is not None:
                    return int(row[0])
        return None

    def file_vectors(self, path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
        """`(segment ids (n,) int64, vectors (n, dim) float32)` of one indexed file, in time
        order; empty when the file is not in the index."""
        with self._txn() as conn:
            fid = self.file_id_for_path(path)
            if fid is None:
                return np.zeros(0, np.int64), np.zeros((0, self.meta.dim), np.float32)
            rows = conn.execute(
                text("SELECT id, vector FROM segments WHERE file_id = :f ORDER BY start_s, id"),
                dict(f=fid),
            ).all()
        return (
            np.array([r[0] for r in rows], dtype=np.int64),
            decode_vectors([r[1] for r in rows], self.meta.dim),
        )

    def status(self) -> IndexStatus:
        with self._txn() as conn:
            files, duration = conn.execute(
                text("SELECT count(*), coalesce(sum(duration_s), 0) FROM files")
            ).one()
            segments = conn.execute(text("SELECT count(*) FROM segments")).scalar()
            failed = conn.execute(text("SELECT count(*) FROM failures")).scalar()
        meta = self.refresh_meta()
        return IndexStatus(
            files=int(files),
            segments=int(segments),
            failed=int(failed),
            duration_s=float(duration),
            model=meta.model,
            dim=meta.dim,
            index_type=meta.index_type,
            recall_at_10=meta.recall_at_10,
            bytes_on_disk=self.bytes_on_disk(),
        )

    def bytes_on_disk(self) -> int:
        total = 0
        for p in self.index_dir.iterdir():
            if p.name.startswith(("index.db", "ann.faiss")) and p.is_file():
                total += p.stat().st_size
        return total

    def failures(self) -> list[FailureRecord]:
        with self._txn() as conn:
            rows = conn.execute(
                text("SELECT path, reason, detail FROM failures ORDER BY path")
            ).all()
        return [FailureRecord(r[0], r[1], r[2]) for r in rows]

    # --- writes (indexer) ------------------------------------------------------------------
    def _write(self):
        if self.readonly:
            raise ClapsearchError(f"The index at {self.index_dir} was opened read-only.")
        return self._txn()

    def add_file(
        self, record: FileRecord, spans: Sequence[tuple[float, float]], vectors: np.ndarray
    ) -> int:
        """Replace whatever the index holds at `record.path` with this file and its windows,
        in ONE transaction. `spans[i]` = (start_s, end_s) of `vectors[i]` `(n, dim)`."""
        if len(spans) != len(vectors) or (len(vectors) and vectors.shape[1] != self.meta.dim):
            raise ValueError("spans and vectors must match in length, vectors in dim")
        with self._write() as conn:
            conn.execute(text("DELETE FROM files WHERE path = :p"), dict(p=record.path))
            conn.execute(text("DELETE FROM failures WHERE path = :p"), dict(p=record.path))
            fid = conn.execute(
                text(
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
                removed += conn.execute(
                    text("DELETE FROM files WHERE path = :p"), dict(p=p)
                ).rowcount
            if removed:
                _bump(conn)
        self._view_cache = None
        return removed

    def relink(self, old_path: str, new_path: str, size: int, mtime_ns: int) -> None:
        """A file moved: point its row at the new path (segments and vectors untouched)."""
        with self._write() as conn:
            if conn.execute(text("DELETE FROM files WHERE path = :p"), dict(p=new_path)).rowcount:
                _bump(conn)
            conn.execute(text("DELETE FROM failures WHERE path = :p"), dict(p=new_path))
            conn.execute(
                text("UPDATE files SET path = :new, size = :size, mtime_ns = :m WHERE path = :old"),
                dict(new=new_path, size=size, m=mtime_ns, old=old_path),
            )

    def record_failure(self, path: str, reason: str, detail: str, size: int, mtime_ns: int) -> None:
        """Remember a file that could not be indexed; any old vectors of that path go."""
        with self._write() as conn:
            if conn.execute(text("DELETE FROM files WHERE path = :p"), dict(p=path)).rowcount:
                _bump(conn)
            conn.execute(
                text(
                    "INSERT OR REPLACE INTO failures (path, reason, detail, size, mtime_ns, "
                    "failed_at) VALUES (:p, :r, :d, :s, :m, :t)"
                ),
                dict(p=path, r=reason, d=detail[:500], s=size, m=mtime_ns, t=time.time()),
            )

    def remove_failures(self, paths: Sequence[str]) -> None:
        with self._write() as conn:
            for p in paths:
                conn.execute(text("DELETE FROM failures WHERE path = :p"), dict(p=p))

    def file_states(self) -> dict[str, tuple[int, int, str]]:
        """path -> (size, mtime_ns, content_hash) of every indexed file (incremental scans)."""
        with self._write() as conn:
            rows = conn.execute(text("SELECT path, size, mtime_ns, content_hash FROM files"))
            return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def failure_states(self) -> dict[str, tuple[int, int, str]]:
        """path -> (size, mtime_ns, reason) of every recorded failure."""
        with self._write() as conn:
            rows = conn.execute(text("SELECT path, size, mtime_ns, reason FROM failures"))
            return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def reset_model(
        self, model: str, dim: int, config: IndexConfig, model_source: str = ""
    ) -> None:
        """`--reembed`: drop every file and vector and adopt a new model, in one transaction."""
        with self._write() as conn:
            conn.execute(text("DELETE FROM segments"))
            conn.execute(text("DELETE FROM files"))
            conn.execute(text("DELETE FROM failures"))
            conn.execute(
                text(
                    "UPDATE index_meta SET model = :m, model_source = :s, dim = :d, "
                    "config_json = :c, index_type = 'flat', recall_at_10 = NULL WHERE id = 1"
                ),
                dict(m=model, s=model_source, d=int(dim), c=json.dumps(to_dict(config))),
            )
            _bump(conn)
        self._view_cache = None
        self.refresh_meta()

    def set_config(self, config: IndexConfig) -> None:
        with self._write() as conn:
            conn.execute(
                text("UPDATE index_meta SET config_json = :c WHERE id = 1"),
                dict(c=json.dumps(to_dict(config))),
            )
        self.refresh_meta()

    def set_ann_info(self, index_type: str, recall_at_10: float | None) -> None:
        with self._write() as conn:
            conn.execute(
                text("UPDATE index_meta SET index_type = :t, recall_at_10 = :r WHERE id = 1"),
                dict(t=index_type, r=recall_at_10),
            )
        self.refresh_meta()

    def changes_since(
        self, cache_ids: np.ndarray
    ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """What an ANN cache holding `cache_ids` (sorted) lacks, from one snapshot:
        `(generation, dead ids (in the cache, gone), fresh ids, fresh vectors (m, dim))`.
        AUTOINCREMENT ids make every id the cache lacks larger than its largest."""
        top = int(cache_ids[-1]) if len(cache_ids) else -1
        with self._txn() as conn:
            gen = conn.execute(text("SELECT generation FROM index_meta WHERE id = 1")).scalar()
            live = np.fromiter(
                (
                    r[0]
                    for r in conn.execute(
                        text("SELECT id FROM segments WHERE id <= :t"), dict(t=top)
                    )
                ),
                dtype=np.int64,
            )
            rows = conn.execute(
                text("SELECT id, vector FROM segments WHERE id > :t ORDER BY id"), dict(t=top)
            ).all()
        dead = np.setdiff1d(cache_ids, live)
        fresh = np.array([r[0] for r in rows], dtype=np.int64)
        return int(gen), dead, fresh, decode_vectors([r[1] for r in rows], self.meta.dim)

    def all_vectors(self) -> tuple[int, np.ndarray, np.ndarray]:
        """`(generation, ids (n,) int64 sorted, vectors (n, dim) float32)` from one snapshot:
        what an ANN cache is built from."""
        with self._txn() as conn:
            gen = conn.execute(text("SELECT generation FROM index_meta WHERE id = 1")).scalar()
            ids: list[int] = []
            blobs: list[bytes] = []
            for r in conn.execute(text("SELECT id, vector FROM segments ORDER BY id")):
                ids.append(r[0])
                blobs.append(r[1])
        return int(gen), np.array(ids, dtype=np.int64), decode_vectors(blobs, self.meta.dim)


def _bump(conn) -> None:
    conn.execute(text("UPDATE index_meta SET generation = generation + 1 WHERE id = 1"))


def _batch_selector(ids: np.ndarray):
    import faiss

    return faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))


def normalize_path(path: str | os.PathLike) -> str:
    """How paths are stored: absolute, `~` expanded, symlinks kept (the path the user sees)."""
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def _path_candidates(path: str | os.PathLike) -> list[str]:
    first = normalize_path(path)
    real = os.path.realpath(first)
    return [first] if real == first else [first, real]


def _make_engine(db: Path, readonly: bool):
    """One SQLite connection in WAL mode with explicit BEGINs, so a transaction is a real
    snapshot (pysqlite's own transaction handling does not BEGIN before SELECTs)."""

    def connect():
        conn = sqlite3.connect(str(db), timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 30000")
        if readonly:
            conn.execute("PRAGMA query_only = ON")
        else:
            conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL: a committed transaction survives a process kill (it is in the
            # OS page cache); only a power cut may lose the last ones, never corrupt.
            conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    engine = create_engine("sqlite+pysqlite://", creator=connect, poolclass=StaticPool)

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


__all__ = [
    "EXACT_SUBSET_MAX",
    "FailureRecord",
    "FileRecord",
    "IndexConfig",
    "IndexMeta",
    "IndexStatus",
    "IndexStore",
    "SegmentRecord",
    "decode_vectors",
    "encode_vectors",
    "exact_topk",
    "normalize_path",
    "topk_merge",
]
