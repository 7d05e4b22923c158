"""Reading an index: snapshot reads, vector search, metadata. (Writes: `indexer.writer`.)

An index is a directory (`clapsearch.index.paths`): a SQLite database, the source of truth
with every vector (`clapsearch.index.schema`), and a derived FAISS cache (`ann_cache`).
A stale or missing cache is never wrong: searches exclude the ids deleted since the cache was
written (`IDSelector`) and search the ids added since exactly, both read by `cache_delta`,
the one query for what a cache misses (the writer's in-place cache update uses it too).

Snapshots: every public read is one transaction, so it sees one database state; several reads
see the same state inside `with reader.snapshot():`.

Thread model: an `IndexReader` may be shared by threads. Each thread reads through its own
SQLite connection (`clapsearch.index.db`), so snapshots are per thread; the corrected cache
view (`_View`) is immutable and replaced whole, and FAISS answers concurrent searches.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np

from clapsearch.config import from_dict
from clapsearch.errors import IndexNotFoundError, IndexStorageError
from clapsearch.identity import ModelIdentity
from clapsearch.index.ann_cache import (
    AnnCache,
    AnnCacheError,
    AnnHeader,
    cache_problem,
    parse_header,
    read_ann,
)
from clapsearch.index.ann_search import ann_search
from clapsearch.index.db import Database, needs_immutable
from clapsearch.index.paths import (
    ann_path,
    db_path,
    normalize_path,
    path_candidates,
    resolve_index_dir,
)
from clapsearch.index.schema import (
    FailureRecord,
    FileRecord,
    IndexConfig,
    IndexedFile,
    IndexMeta,
    IndexStatus,
    SegmentRecord,
)
from clapsearch.index.storage import explain
from clapsearch.index.vectors import decode_vectors, exact_topk, topk_merge

EXACT_SUBSET_MAX = 4096  # allowed_ids up to this many: exact search over their stored vectors
CHUNK = 900  # SQLite host-parameter batch


@dataclass(frozen=True)
class _View:
    """What a search at one generation runs on: the cache corrected by the database."""

    generation: int
    build: str | None  # index_meta.ann_build when the view was made
    cache: AnnCache | None
    dead: np.ndarray  # (n,) int64 ids in the cache that the database no longer has
    fresh_ids: np.ndarray  # (m,) int64 ids the cache lacks
    fresh_vecs: np.ndarray  # (m, dim) float32


def read_generation(conn) -> int:
    return int(conn.execute("SELECT generation FROM index_meta WHERE id = 1").scalar())


def cache_delta(conn, cache_ids: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What an ANN cache holding `cache_ids` (sorted int64) misses in `conn`'s snapshot:
    `(dead ids (in the cache, gone), fresh ids (m,), fresh vectors (m, dim))`.
    AUTOINCREMENT ids make every id the cache lacks larger than its largest."""
    top = int(cache_ids[-1]) if len(cache_ids) else -1
    live = np.fromiter(
        (r[0] for r in conn.execute(("SELECT id FROM segments WHERE id <= :t"), dict(t=top))),
        dtype=np.int64,
    )
    rows = conn.execute(
        ("SELECT id, vector FROM segments WHERE id > :t ORDER BY id"), dict(t=top)
    ).all()
    dead = np.setdiff1d(cache_ids, live)
    fresh = np.array([r[0] for r in rows], dtype=np.int64)
    return dead, fresh, decode_vectors([r[1] for r in rows], dim)


class IndexReader:
    """One open index directory, read-only (`open`); `indexer.writer.IndexWriter` adds writes."""

    def __init__(self, index_dir: Path, readonly: bool = True):
        self.index_dir = index_dir
        self.readonly = readonly
        self.db = Database(db_path(index_dir), readonly)
        self._view_cache: _View | None = None
        self.meta: IndexMeta = None  # type: ignore[assignment]

    # --- opening ---------------------------------------------------------------------------
    @staticmethod
    def exists(path: str | os.PathLike | None) -> bool:
        """Whether `path` holds an index (a database whose schema and meta row committed;
        a process killed while creating one leaves a database without them). A database
        that cannot be read (damaged, unreadable, a full disk) is not "no index": that
        raises its `IndexStorageError` sentence (`clapsearch.index.storage`)."""
        index_dir = resolve_index_dir(path)
        db = db_path(index_dir)
        if not db.is_file():
            return False
        uri = f"file:{quote(str(db))}?" + ("immutable=1" if needs_immutable(db) else "mode=ro")
        try:
            con = sqlite3.connect(uri, uri=True, timeout=30.0)
            try:
                return con.execute("SELECT count(*) FROM index_meta").fetchone()[0] > 0
            finally:
                con.close()
        except sqlite3.OperationalError as err:
            if "no such table" in str(err):
                return False  # killed before its schema committed
            raise explain(err, index_dir) from None
        except sqlite3.Error as err:
            raise explain(err, index_dir) from None

    @classmethod
    def open(cls, path: str | os.PathLike | None) -> IndexReader:
        """Open an existing index read-only (`path` None: the default location)."""
        return cls._open(path, readonly=True)

    @classmethod
    def _open(cls, path, readonly: bool, prepare=None):
        index_dir = resolve_index_dir(path)
        if not IndexReader.exists(index_dir):
            raise IndexNotFoundError(
                f"No index at {index_dir}: run `clapsearch index DIR` to build one."
            )
        store = cls(index_dir, readonly)
        try:
            if prepare is not None:
                prepare(store)
            store.refresh_meta()
        except IndexStorageError:
            store.close()
            raise
        except Exception:
            store.close()
            raise IndexNotFoundError(
                f"{index_dir} does not hold a readable clapsearch index: run `clapsearch index "
                f"DIR` with another --index, or delete it."
            ) from None
        return store

    def refresh_meta(self) -> IndexMeta:
        with self.snapshot() as conn:
            row = conn.execute("SELECT * FROM index_meta WHERE id = 1").mappings().one()
        if row.get("model_identity"):
            identity = ModelIdentity.from_json(row["model_identity"])
        else:  # a version 1 database (schema doc)
            identity = ModelIdentity.from_legacy(
                row["model"], row.get("model_source") or "", int(row["dim"])
            )
        self.meta = IndexMeta(
            model=row["model"],
            dim=int(row["dim"]),
            schema_version=int(row["schema_version"]),
            index_type=row["index_type"],
            recall_at_10=row["recall_at_10"],
            config=from_dict(IndexConfig, json.loads(row["config_json"])),
            generation=int(row["generation"]),
            db_uuid=row["db_uuid"],
            model_identity=identity,
        )
        return self.meta

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def generation(self) -> int:
        """The database's generation: it moves with every change of the vectors."""
        with self.snapshot() as conn:
            return read_generation(conn)

    def snapshot(self):
        """`with reader.snapshot() as conn:` every read inside (on this thread) sees the
        same database state."""
        return self.db.txn()

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
        with self.snapshot() as conn:
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
        vectors read in this snapshot (`clapsearch.index.ann_search`)."""
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
        row = conn.execute("SELECT * FROM index_meta WHERE id = 1").mappings().one()
        gen, db_uuid, build = int(row["generation"]), row["db_uuid"], row.get("ann_build")
        view = self._view_cache
        if view is not None and view.generation == gen and view.build == build:
            return view
        cache = self._load_cache(conn, db_uuid, gen, build)
        dim = self.meta.dim
        if cache is not None and cache.header.generation == gen:
            empty = np.zeros(0, np.int64)
            view = _View(gen, build, cache, empty, empty, np.zeros((0, dim), np.float32))
        else:
            cache_ids = cache.ids if cache is not None else np.zeros(0, np.int64)
            dead, fresh_ids, fresh_vecs = cache_delta(conn, cache_ids, dim)
            view = _View(gen, build, cache, dead, fresh_ids, fresh_vecs)
        self._view_cache = view
        return view

    def cache_check(self) -> tuple[AnnHeader | None, str | None]:
        """The cache file's header and, when it must not be used for this database, why (in
        words; `clapsearch.index.ann_cache.cache_problem`), from one snapshot. Checks the
        header only; `load_ann` verifies the payload."""
        with self.snapshot() as conn:
            row = conn.execute("SELECT * FROM index_meta WHERE id = 1").mappings().one()
            return self._cache_header(
                conn, row["db_uuid"], int(row["generation"]), row.get("ann_build")
            )

    def _cache_header(self, conn, db_uuid, gen, build) -> tuple[AnnHeader | None, str | None]:
        path = ann_path(self.index_dir)
        try:
            with open(path, "rb") as fh:
                header = parse_header(fh)[0]
        except FileNotFoundError:
            return None, "there is no cache file"
        except (OSError, AnnCacheError) as err:
            return None, str(err)
        segments = None
        if header.generation == gen:
            segments = int(conn.execute("SELECT count(*) FROM segments").scalar())
        return header, cache_problem(header, db_uuid, gen, build, self.meta.dim, segments)

    def _load_cache(self, conn, db_uuid: str, gen: int, build: str | None) -> AnnCache | None:
        """The cache, when `cache_problem` finds nothing wrong with it and its bytes verify;
        else None (everything is then searched exactly; the next run rebuilds it)."""
        header, problem = self._cache_header(conn, db_uuid, gen, build)
        if problem is not None:
            return None
        view = self._view_cache
        old = view.cache if view is not None else None
        if old is not None and old.header == header:
            return old
        cache = read_ann(ann_path(self.index_dir))  # verifies the checksums
        if cache is None or cache.header != header:  # damaged, or replaced since
            return None
        return cache

    def _vectors_for(self, conn, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out_ids: list[int] = []
        blobs: list[bytes] = []
        for lo in range(0, len(ids), CHUNK):
            chunk = [int(i) for i in ids[lo : lo + CHUNK]]
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
        with self.snapshot() as conn:
            for lo in range(0, len(wanted), CHUNK):
                chunk = wanted[lo : lo + CHUNK]
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
            prefix = os.fsencode(normalize_path(path_prefix))  # bytes: any file name
            where.append("substr(CAST(path AS BLOB), 1, :plen) = :prefix")
            params.update(prefix=prefix, plen=len(prefix))
        if min_duration_s is not None:
            where.append("duration_s >= :dmin")
            params["dmin"] = float(min_duration_s)
        if max_duration_s is not None:
            where.append("duration_s <= :dmax")
            params["dmax"] = float(max_duration_s)
        with self.snapshot() as conn:
            if not where:  # the (file_id, id) index covers this: no vector pages read
                rows = conn.exec_driver_sql("SELECT id FROM segments")
                return np.sort(np.fromiter((r[0] for r in rows), dtype=np.int64))
            # matching files first, then their segments through ix_segments_file: a scan of
            # `segments` would page in every vector blob (0.9 s at 1M windows)
            fids = [
                r[0]
                for r in conn.execute(("SELECT id FROM files WHERE " + " AND ".join(where)), params)
            ]
            out: list[int] = []
            for lo in range(0, len(fids), CHUNK):
                chunk = fids[lo : lo + CHUNK]
                marks = ",".join("?" * len(chunk))
                out.extend(
                    r[0]
                    for r in conn.exec_driver_sql(
                        f"SELECT id FROM segments WHERE file_id IN ({marks})", tuple(chunk)
                    )
                )
        return np.sort(np.array(out, dtype=np.int64))

    def file_id_for_path(self, path: str | os.PathLike) -> int | None:
        with self.snapshot() as conn:
            for candidate in path_candidates(path):
                row = conn.execute(
                    ("SELECT id FROM files WHERE path = :p"), dict(p=candidate)
                ).first()
                if row is not None:
                    return int(row[0])
        return None

    def files_under(self, folder: str | os.PathLike) -> int:
        """How many indexed files are `folder` itself or lie inside it."""
        target = normalize_path(folder)
        inside = target.rstrip(os.sep) + os.sep
        with self.snapshot() as conn:
            return int(
                conn.execute(
                    (
                        "SELECT count(*) FROM files WHERE path = :t "
                        "OR substr(CAST(path AS BLOB), 1, :n) = :inside"
                    ),
                    dict(t=target, n=len(os.fsencode(inside)), inside=os.fsencode(inside)),
                ).scalar()
            )

    def file_info(self, file_id: int) -> IndexedFile | None:
        """One indexed file by id, with its windows' spans; None when no file has that id."""
        with self.snapshot() as conn:
            row = conn.execute(
                (
                    "SELECT path, size, mtime_ns, content_hash, duration_s, sample_rate, "
                    "channels, indexed_at FROM files WHERE id = :f"
                ),
                dict(f=int(file_id)),
            ).first()
            if row is None:
                return None
            spans = conn.execute(
                ("SELECT start_s, end_s FROM segments WHERE file_id = :f ORDER BY start_s, id"),
                dict(f=int(file_id)),
            ).all()
        record = FileRecord(
            row[0], int(row[1]), int(row[2]), row[3], float(row[4]), int(row[5]), int(row[6])
        )
        return IndexedFile(
            int(file_id), record, float(row[7]), tuple((float(a), float(b)) for a, b in spans)
        )

    def files_by_path(self, paths: Sequence[str]) -> dict[str, tuple[int, float]]:
        """Stored path -> (file id, duration_s) for those of `paths` in the index."""
        wanted = sorted(set(paths))
        out: dict[str, tuple[int, float]] = {}
        with self.snapshot() as conn:
            for lo in range(0, len(wanted), CHUNK):
                chunk = wanted[lo : lo + CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.exec_driver_sql(
                    f"SELECT path, id, duration_s FROM files WHERE path IN ({marks})", tuple(chunk)
                )
                out.update((r[0], (int(r[1]), float(r[2]))) for r in rows)
        return out

    def folders(self) -> list[tuple[str, int]]:
        """Every folder holding indexed files, sorted, with how many files it holds directly."""
        counts: dict[str, int] = {}
        with self.snapshot() as conn:
            for (path,) in conn.execute("SELECT path FROM files"):
                folder = os.path.dirname(path)
                counts[folder] = counts.get(folder, 0) + 1
        return sorted(counts.items())

    def file_vectors(self, path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
        """`(segment ids (n,) int64, vectors (n, dim) float32)` of one indexed file, in time
        order; empty when the file is not in the index."""
        with self.snapshot() as conn:
            fid = self.file_id_for_path(path)
            if fid is None:
                return np.zeros(0, np.int64), np.zeros((0, self.meta.dim), np.float32)
            rows = conn.execute(
                ("SELECT id, vector FROM segments WHERE file_id = :f ORDER BY start_s, id"),
                dict(f=fid),
            ).all()
        return (
            np.array([r[0] for r in rows], dtype=np.int64),
            decode_vectors([r[1] for r in rows], self.meta.dim),
        )

    def status(self) -> IndexStatus:
        with self.snapshot() as conn:
            files, duration = conn.execute(
                "SELECT count(*), coalesce(sum(duration_s), 0) FROM files"
            ).one()
            segments = conn.execute("SELECT count(*) FROM segments").scalar()
            failed = conn.execute("SELECT count(*) FROM failures").scalar()
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
        with self.snapshot() as conn:
            rows = conn.execute("SELECT path, reason, detail FROM failures ORDER BY path").all()
        return [FailureRecord(r[0], r[1], r[2]) for r in rows]


def _batch_selector(ids: np.ndarray):
    import faiss

    return faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))


__all__ = ["CHUNK", "EXACT_SUBSET_MAX", "IndexReader", "cache_delta", "read_generation"]
