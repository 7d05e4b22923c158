"""`clapsearch doctor`: check an index's database, its ANN cache and the files it names, say what
is wrong in sentences, and (`--repair`) rebuild what can be rebuilt without re-embedding.

Checks (each finding is a `Finding`: what, how bad, whether `--repair` fixes it):
- database: it opens (else the storage sentence, `clapsearch.index.storage`); SQLite's
  `integrity_check` and `foreign_key_check`; every stored vector a unit row of the right length
  (`clapsearch.index.vectors.decode_vectors`: SQLite does not checksum the bytes of a row);
  every file has its windows; the AUTOINCREMENT counter is above every id (ids never reused);
- cache: `cache_check` (index id, generation, the recorded build, segment count), the file's
  checksums (`load_ann`), and a sample of its vectors against the stored ones;
- files on disk: each indexed file still there with its size and mtime (`--no-files` skips);
- leftovers: temporaries of killed runs.

Repairs (`--repair`, under the writer lock, so never beside a running `clapsearch index`):
damaged SQLite indexes are rebuilt (`REINDEX`); damaged rows are salvaged: every row that can
still be read is copied into a new database, with the files that lost a window or whose
vectors are damaged left out so that the next `clapsearch index` re-embeds them (the damaged
database is kept beside it as `index.db.damaged-<time>`); a cache that fails any check is
rebuilt from the stored vectors; temporaries are removed. Files gone from disk are not a
repair: `clapsearch index --prune` drops them.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from clapsearch.config import from_dict
from clapsearch.errors import IndexStorageError
from clapsearch.identity import ModelIdentity
from clapsearch.index.paths import ann_path, db_path, resolve_index_dir
from clapsearch.index.schema import IndexConfig
from clapsearch.index.vectors import UNIT_TOLERANCE

SAMPLE = 256  # cache vectors compared with the stored ones
CHUNK = 20_000  # rows read at a time


@dataclass
class Finding:
    part: str  # "database" | "cache" | "files" | "leftovers"
    message: str  # one sentence
    severity: str = "error"  # "error" | "warning"
    repairable: bool = False
    repaired: bool = False


@dataclass
class Report:
    index_dir: str
    findings: list[Finding] = field(default_factory=list)
    checked: dict = field(default_factory=dict)  # what was looked at: counts

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error" and not f.repaired]

    def add(
        self, part: str, message: str, severity: str = "error", repairable: bool = False
    ) -> Finding:
        finding = Finding(part, message, severity, repairable)
        self.findings.append(finding)
        return finding

    def to_json(self) -> dict:
        return {
            "index": self.index_dir,
            "healthy": not self.problems,
            "checked": self.checked,
            "findings": [asdict(f) for f in self.findings],
        }


def check(index: str | os.PathLike | None, files: bool = True) -> Report:
    """Every check of the module doc; reads only."""
    from clapsearch.index.reader import IndexReader

    index_dir = resolve_index_dir(index)
    report = Report(str(index_dir))
    try:
        reader = IndexReader.open(index_dir)
    except IndexStorageError as err:
        report.add("database", str(err), repairable=False)
        return report
    with reader:
        _check_database(reader, report)
        _check_cache(reader, report)
        if files:
            _check_files(reader, report)
    for tmp in index_dir.glob(ann_path(index_dir).name + ".tmp-*"):
        report.add("leftovers", f"{tmp.name} is left from a killed run.", "warning", True)
    return report


def _raw(reader) -> sqlite3.Connection:
    return reader.db.connection().raw


def _check_database(reader, report: Report) -> None:
    raw = _raw(reader)
    try:
        problems = [r[0] for r in raw.execute("PRAGMA integrity_check(20)")]
    except sqlite3.DatabaseError as err:
        problems = [str(err)]
    if problems != ["ok"]:
        shown = "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")
        only_indexes = all(p.startswith(("row ", "wrong # of entries")) for p in problems)
        report.add(
            "database",
            f"SQLite's integrity check fails ({shown}): "
            + (
                "only its lookup indexes are damaged, which REINDEX rebuilds."
                if only_indexes
                else "rows are damaged; the readable ones can be salvaged."
            ),
            repairable=True,
        )
        report.checked["integrity"] = "reindex" if only_indexes else "salvage"
    try:
        orphans = raw.execute("PRAGMA foreign_key_check(segments)").fetchall()
    except sqlite3.DatabaseError:
        orphans = []
    if orphans:
        report.add(
            "database",
            f"{len(orphans)} windows belong to no file (damaged rows).",
            repairable=True,
        )
        report.checked.setdefault("integrity", "salvage")
    damaged, files_with, n = _scan_vectors(raw, reader.meta.dim)
    report.checked["segments"] = n
    if damaged is None:
        report.add("database", "The windows table cannot be read to the end.", repairable=True)
        report.checked["integrity"] = "salvage"
    elif damaged:
        report.add(
            "database",
            f"{len(damaged)} stored vectors are damaged (not unit rows of {reader.meta.dim} "
            f"values): their files will be re-embedded by the next `clapsearch index`.",
            repairable=True,
        )
        report.checked["damaged_files"] = sorted(damaged)
    try:
        n_files = raw.execute("SELECT count(*) FROM files").fetchone()[0]
        empty = raw.execute(
            "SELECT count(*) FROM files WHERE id NOT IN (SELECT file_id FROM segments)"
        ).fetchone()[0]
        seq = raw.execute("SELECT seq FROM sqlite_sequence WHERE name = 'segments'").fetchone()
        top = raw.execute("SELECT max(id) FROM segments").fetchone()[0]
    except sqlite3.DatabaseError:
        report.checked.setdefault("integrity", "salvage")
        return
    report.checked["files"] = n_files
    if empty:
        report.add(
            "database",
            f"{empty} indexed files have no windows (lost rows): the next `clapsearch index` "
            f"re-embeds them once they are dropped.",
            repairable=True,
        )
        report.checked.setdefault("integrity", "salvage")
    if top is not None and (seq is None or seq[0] < top):
        report.add(
            "database",
            "The id counter is below the largest window id, so ids could be reused.",
            repairable=True,
        )
        report.checked.setdefault("integrity", "salvage")


def _scan_vectors(raw, dim: int) -> tuple[set[int] | None, set[int], int]:
    """(file ids with a damaged vector, or None if the table cannot be read; file ids seen;
    rows read), streamed by id range."""
    damaged: set[int] = set()
    seen: set[int] = set()
    n, after = 0, -1
    try:
        while True:
            rows = raw.execute(
                "SELECT id, file_id, vector FROM segments WHERE id > ? ORDER BY id LIMIT ?",
                (after, CHUNK),
            ).fetchall()
            if not rows:
                return damaged, seen, n
            n += len(rows)
            after = rows[-1][0]
            for _, fid, blob in rows:
                seen.add(fid)
                if not _unit_row(blob, dim):
                    damaged.add(fid)
    except sqlite3.DatabaseError:
        return None, seen, n


def _unit_row(blob, dim: int) -> bool:
    if not isinstance(blob, bytes) or len(blob) != 2 * dim:
        return False
    v = np.frombuffer(blob, dtype="<f2").astype(np.float32)
    return bool(abs(float(v @ v) - 1.0) <= 2 * UNIT_TOLERANCE)


def _check_cache(reader, report: Report) -> None:
    from clapsearch.index.ann_cache import AnnCacheError, load_ann

    path = ann_path(reader.index_dir)
    try:
        header, problem = reader.cache_check()
    except IndexStorageError:
        return  # the database's findings say it already
    if header is None and not path.exists():
        report.add(
            "cache",
            "There is no ANN cache: every search is exact until `clapsearch index` builds one.",
            "warning",
            True,
        )
        return
    if problem is not None:
        report.add("cache", f"The ANN cache is not used: {problem}.", repairable=True)
        return
    try:
        cache = load_ann(path)
    except (OSError, AnnCacheError) as err:
        report.add("cache", f"The ANN cache is not used: {err}.", repairable=True)
        return
    report.checked["cache"] = {"type": cache.header.index_type, "vectors": int(cache.header.ntotal)}
    wrong = _sample_vectors(reader, cache)
    if wrong:
        report.add(
            "cache",
            f"{wrong} of the sampled cache vectors differ from the stored ones.",
            repairable=True,
        )


def _sample_vectors(reader, cache) -> int:
    """How many of up to `SAMPLE` cached vectors differ from the database's (reconstructed
    where FAISS can, else found again by searching for themselves)."""
    import faiss

    live = cache.ids
    if not len(live):
        return 0
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(live, size=min(SAMPLE, len(live)), replace=False))
    try:
        with reader.snapshot() as conn:
            ids, stored = reader._vectors_for(conn, pick)
    except IndexStorageError:
        return 0  # the database's own findings report it
    wrong = 0
    for i, v in zip(ids, stored, strict=True):
        try:
            got = cache.index.reconstruct(int(i))
            wrong += not np.allclose(got, v, atol=1e-3)
        except RuntimeError:  # IVF without a direct map, PQ: search for itself instead
            params = (
                faiss.SearchParametersIVF(nprobe=64) if "ivf" in cache.header.index_type else None
            )
            scores, found = cache.index.search(v[None], 4, params=params)
            wrong += int(i) not in set(found[0].tolist())
    return wrong


def _check_files(reader, report: Report) -> None:
    missing = changed = 0
    example = ""
    with reader.snapshot() as conn:
        rows = conn.execute("SELECT path, size, mtime_ns FROM files").all()
    for path, size, mtime in rows:
        try:
            st = os.stat(path)
        except OSError:
            missing += 1
            example = example or path
            continue
        if st.st_size != size or st.st_mtime_ns != mtime:
            changed += 1
    report.checked["files_on_disk"] = len(rows) - missing
    if missing:
        report.add(
            "files",
            f"{missing} indexed files are gone from disk (e.g. {example}); `clapsearch index "
            f"--prune` drops them from the index.",
            "warning",
        )
    if changed:
        report.add(
            "files",
            f"{changed} indexed files changed on disk since they were indexed; `clapsearch "
            f"index` on their folders re-embeds them.",
            "warning",
        )


def repair(index: str | os.PathLike | None, files: bool = True) -> Report:
    """`check`, then fix what the module doc says can be fixed, then check again; the returned
    report marks what was repaired."""
    from indexer.writer import writer_lock

    index_dir = resolve_index_dir(index)
    first = check(index_dir, files=files)
    if not any(f.repairable and not f.repaired for f in first.findings):
        return first
    with writer_lock(index_dir, holder="wait for `clapsearch doctor --repair` to end"):
        for tmp in index_dir.glob(ann_path(index_dir).name + ".tmp-*"):
            tmp.unlink(missing_ok=True)
        how = first.checked.get("integrity")
        if how == "reindex":
            _reindex(index_dir)
            if check(index_dir, files=False).checked.get("integrity"):
                how = "salvage"
        if how == "salvage" or first.checked.get("damaged_files"):
            _salvage(index_dir, set(first.checked.get("damaged_files", [])))
        rebuilt = how or first.checked.get("damaged_files")  # a new database: a new cache
        if rebuilt or any(f.part == "cache" and f.repairable for f in first.findings):
            _rebuild_cache(index_dir)
    after = check(index_dir, files=files)
    fixed = {f.message for f in after.findings}
    for f in first.findings:
        f.repaired = f.repairable and f.message not in fixed
    first.findings += [
        f for f in after.findings if f.message not in {g.message for g in first.findings}
    ]
    first.checked = after.checked
    return first


def _reindex(index_dir: Path) -> None:
    con = sqlite3.connect(db_path(index_dir), isolation_level=None)
    try:
        con.execute("REINDEX")
    finally:
        con.close()


def _read_rows(raw, table: str, columns: str) -> list[tuple]:
    """Every row of `table` that can be read, by rowid ranges bisected around damage."""
    out: list[tuple] = []
    try:
        top = raw.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0] or 0
    except sqlite3.DatabaseError:
        top = 1 << 31
    stack = [(0, top)]
    while stack:
        lo, hi = stack.pop()
        try:
            rows = raw.execute(
                f"SELECT {columns} FROM {table} WHERE rowid BETWEEN ? AND ?", (lo, hi)
            ).fetchall()
            out.extend(rows)
        except sqlite3.DatabaseError:
            if hi - lo < 1:
                continue
            mid = (lo + hi) // 2
            stack += [(lo, mid), (mid + 1, hi)]
    return out


def _salvage(index_dir: Path, damaged_files: set[int]) -> None:
    """Copy every readable row into a new database (module doc); files that lost a window or
    hold a damaged vector stay out, so the next run re-embeds them."""
    from indexer.writer import IndexWriter

    db = db_path(index_dir)
    old = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    old.text_factory = lambda b: b.decode("utf-8", "surrogateescape")
    try:
        meta = old.execute("SELECT * FROM index_meta WHERE id = 1")
        names = [d[0] for d in meta.description]
        meta_row = dict(zip(names, meta.fetchone(), strict=True))
        file_cols = (
            "id, path, size, mtime_ns, content_hash, duration_s, sample_rate, channels, indexed_at"
        )
        files = _read_rows(old, "files", file_cols)
        segments = _read_rows(old, "segments", "id, file_id, start_s, end_s, vector")
        failures = _read_rows(old, "failures", "path, reason, detail, size, mtime_ns, failed_at")
        seqs = {
            "files": max([r[0] for r in files] + [0]),
            "segments": max([r[0] for r in segments] + [0]),
        }
        try:
            for name, got in old.execute("SELECT name, seq FROM sqlite_sequence"):
                if name in seqs:
                    seqs[name] = max(seqs[name], int(got))
        except sqlite3.DatabaseError:
            pass
    finally:
        old.close()
    dim = int(meta_row["dim"])
    by_file: dict[int, list[tuple]] = {}
    for row in segments:
        by_file.setdefault(row[1], []).append(row)
    keep = [
        f for f in files if f[0] not in damaged_files and _whole(by_file.get(f[0], []), dim, f[5])
    ]
    kept = {f[0] for f in keep}
    segs = [r for r in segments if r[1] in kept]
    identity = (
        ModelIdentity.from_json(meta_row["model_identity"])
        if meta_row.get("model_identity")
        else ModelIdentity.from_legacy(meta_row["model"], meta_row.get("model_source") or "", dim)
    )
    config = from_dict(IndexConfig, json.loads(meta_row["config_json"]))
    new_dir = index_dir / f".salvage-{os.getpid()}"
    shutil.rmtree(new_dir, ignore_errors=True)
    new_dir.mkdir()
    with IndexWriter.create(new_dir, identity, config) as w:
        conn = w.db.connection()
        with conn.begin():
            conn.execute(
                "UPDATE index_meta SET db_uuid = ?, generation = ?, created_at = ? WHERE id = 1",
                (meta_row["db_uuid"], int(meta_row["generation"]) + 1, meta_row["created_at"]),
            )
            if keep:
                conn.execute(
                    "INSERT INTO files (id, path, size, mtime_ns, content_hash, duration_s, "
                    "sample_rate, channels, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [tuple(f) for f in keep],
                )
            if segs:
                conn.execute(
                    "INSERT INTO segments (id, file_id, start_s, end_s, vector) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [tuple(r) for r in segs],
                )
            if failures:
                conn.execute(
                    "INSERT OR REPLACE INTO failures (path, reason, detail, size, mtime_ns, "
                    "failed_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [tuple(r) for r in failures],
                )
            for table, top in seqs.items():  # ids never reused, whatever was lost
                conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
                conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, top))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(db) + suffix)
        if p.exists():
            os.replace(p, Path(f"{db}.damaged-{stamp}{suffix}"))
    for suffix in ("", "-wal"):  # the WAL is empty after close; moved along if not
        p = new_dir / (db.name + suffix)
        if p.exists():
            os.replace(p, Path(str(db) + suffix))
    shutil.rmtree(new_dir, ignore_errors=True)
    ann_path(index_dir).unlink(missing_ok=True)


def _whole(rows: list[tuple], dim: int, duration: float) -> bool:
    """Whether a file's salvaged windows `(id, file_id, start, end, vector)` are all there
    and sound: unit vectors, the first at 0 s, each starting before the previous ends, the
    last ending at the file's duration (a file whose header overstated its length fails this
    and is re-embedded: time, never a lost window)."""
    if not rows or not all(_unit_row(r[4], dim) for r in rows):
        return False
    spans = sorted((float(r[2]), float(r[3])) for r in rows)
    if spans[0][0] > 1e-3 or max(e for _, e in spans) < float(duration) - 0.05:
        return False
    return all(b[0] <= a[1] + 1e-3 for a, b in zip(spans, spans[1:]))


def _rebuild_cache(index_dir: Path) -> None:
    """A cache from the stored vectors (no model: its probes are made from the vectors)."""
    from indexer.ann import build_ann
    from indexer.writer import IndexWriter

    with IndexWriter.open(index_dir) as w:
        build_ann(w)


__all__ = ["Finding", "Report", "check", "repair"]
