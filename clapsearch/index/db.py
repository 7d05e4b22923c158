"""The SQLite connections of an open index, and the thread model.

Thread model: one SQLite connection per thread. `Database.txn()` runs on the calling thread's
own connection (opened on its first use), so threads never share a connection or a
transaction; each `with db.txn():` is a snapshot (WAL: readers never block the writer, and a
reader's snapshot does not move while it is open). Connections are closed together by
`close()`. Writers open their transactions with `BEGIN IMMEDIATE` (one writer at a time, the
others wait up to `BUSY_TIMEOUT_MS`); read-only databases set `query_only`.

Connections are plain `sqlite3` ones behind `Connection`, a small adapter with the part of
SQLAlchemy's `Connection`/`Result` API the index code uses (`execute` with `:name`
parameters, `exec_driver_sql`, `one`/`first`/`scalar`/`all`, `rowcount`). Reading an index
therefore never imports SQLAlchemy (about a quarter of a second of a cold `clapsearch query`);
the tables are still declared with it (`clapsearch.index.tables`, used by the writer).
Errors are `sqlite3.Error`s.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from clapsearch.errors import ClapsearchError
from clapsearch.index.storage import explain
from clapsearch.index.vectors import DamagedVectors

BUSY_TIMEOUT_MS = 30_000
WAL_PAGES = 256  # autocheckpoint after this many WAL pages (1 MiB at 4 KiB pages)
WAL_BYTES = 1 << 20  # the WAL file is truncated to this after a checkpoint


class Result:
    """The rows of one statement (SQLAlchemy's `Result` methods the index code uses)."""

    def __init__(self, cursor: sqlite3.Cursor):
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def __iter__(self) -> Iterator[tuple]:
        return iter(self._cursor)

    def all(self) -> list[tuple]:
        return self._cursor.fetchall()

    def first(self) -> tuple | None:
        return self._cursor.fetchone()

    def one(self) -> tuple:
        rows = self._cursor.fetchmany(2)
        if len(rows) != 1:
            raise sqlite3.DatabaseError(f"expected one row, got {len(rows) or 'none'}")
        return rows[0]

    def scalar(self) -> Any:
        row = self._cursor.fetchone()
        return None if row is None else row[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def mappings(self) -> _Mappings:
        """The rows as `{column: value}` dicts."""
        return _Mappings(self._cursor)


class _Mappings(Result):
    def _as_dict(self, row: tuple | None) -> dict | None:
        if row is None:
            return None
        return dict(zip([d[0] for d in self._cursor.description], row, strict=True))

    def __iter__(self):
        return (self._as_dict(r) for r in self._cursor)

    def all(self) -> list[dict]:
        return [self._as_dict(r) for r in self._cursor.fetchall()]

    def first(self) -> dict | None:
        return self._as_dict(self._cursor.fetchone())

    def one(self) -> dict:
        return self._as_dict(super().one())


class Connection:
    """One thread's sqlite3 connection with explicit transactions (module doc)."""

    def __init__(self, raw: sqlite3.Connection, begin: str):
        self.raw = raw
        self._begin = begin

    def execute(self, sql: str, params: Mapping[str, Any] | Sequence[Any] = ()) -> Result:
        """One statement; a list of parameter tuples runs it once per tuple (executemany).
        Parameters that are non-UTF-8 file names are bound by their bytes (`bind_any_text`)."""
        if isinstance(params, list) and params and isinstance(params[0], (tuple, list)):
            sql, params = bind_any_text(sql, params, many=True)
            return Result(self.raw.executemany(sql, params))
        sql, params = bind_any_text(sql, params)
        return Result(self.raw.execute(sql, params))

    exec_driver_sql = execute  # `?` or `:name` parameters alike: sqlite3 takes both

    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """BEGIN (IMMEDIATE for writers) ... COMMIT, or ROLLBACK if the block raises."""
        self.raw.execute(self._begin)
        try:
            yield self
        except BaseException:
            if self.raw.in_transaction:
                self.raw.execute("ROLLBACK")
            raise
        self.raw.execute("COMMIT")

    def close(self) -> None:
        self.raw.close()


class Database:
    """An index database opened read-only or for writing (module doc for the threads)."""

    def __init__(self, path: Path, readonly: bool):
        self.path = path
        self.readonly = readonly
        self.immutable = readonly and needs_immutable(path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[Connection] = []
        self._closed = False

    def connection(self) -> Connection:
        """The calling thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with self._lock:
                if self._closed:
                    raise ClapsearchError(f"The index database {self.path} is closed.")
                conn = _connect(self.path, self.readonly, self.immutable)
                self._connections.append(conn)
            self._local.conn = conn
        return conn

    @contextmanager
    def txn(self) -> Iterator[Connection]:
        """A transaction on this thread's connection; nested uses join the outer one.

        SQLite and OS errors inside become one `IndexStorageError` sentence (a full disk, a
        damaged page, a folder made read-only: `clapsearch.index.storage.explain`)."""
        try:
            conn = self.connection()
            if conn.in_transaction():
                yield conn
                return
            with conn.begin():
                yield conn
        except (sqlite3.Error, OSError, DamagedVectors) as err:
            raise explain(err, self.path.parent, writing=not self.readonly) from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

    def checkpoint(self) -> bool:
        """Copy the WAL into the database file and empty it (`wal_checkpoint(TRUNCATE)`),
        on a connection of its own; False when readers kept it from completing (it is only
        a matter of space: the WAL stays valid)."""
        try:
            con = sqlite3.connect(str(self.path), timeout=1.0, isolation_level=None)
        except sqlite3.Error:
            return False
        try:
            busy, _, _ = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return busy == 0
        except sqlite3.Error:
            return False
        finally:
            con.close()


def needs_immutable(db: Path) -> bool:
    """Whether a read-only user must open `db` as immutable: its folder is not writable (SQLite
    cannot create `index.db-shm` to read a WAL database) and no `-wal` file holds changes not
    yet in the database file. No writer can be running then (it would have made the `-wal`),
    and without a `-wal` the file is the whole committed state."""
    return (
        db.is_file()
        and not os.access(db.parent, os.W_OK)
        and not db.with_name(db.name + "-wal").exists()
    )


def _connect(db: Path, readonly: bool, immutable: bool = False) -> Connection:
    """SQLite in WAL mode with explicit BEGINs, so a transaction is a real snapshot
    (pysqlite's own transaction handling does not BEGIN before SELECTs). `immutable`
    (`needs_immutable`): a read-only folder's index, read without locks."""
    target, uri = str(db), False
    if immutable:
        target, uri = f"file:{quote(str(db))}?immutable=1", True
    conn = sqlite3.connect(
        target,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,
        uri=uri,
    )
    conn.text_factory = decode_text
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    else:
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL: a committed transaction survives a process kill (it is in the
        # OS page cache); only a power cut may lose the last ones, never corrupt.
        conn.execute("PRAGMA synchronous = NORMAL")
        # A small WAL: checkpointed every WAL_PAGES pages and cut back to WAL_BYTES after,
        # so an index needs little more free space than its own size (SQLite's default
        # lets the WAL grow to 4 MB and keeps it: 14x a 0.22 MB index).
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_BYTES}")
    return Connection(conn, "BEGIN" if readonly else "BEGIN IMMEDIATE")


# --- text of any bytes (file names that are not UTF-8) ---------------------------------------
# The rule (docs/index-format.md, "Paths"): a path is stored as TEXT holding the file name's
# exact bytes. Names that are valid UTF-8 (nearly all) are ordinary UTF-8 text; any other name
# is TEXT with its raw bytes, written from Python's surrogate-escaped str (`os.fsdecode`) by
# binding `os.fsencode(name)` as `CAST(? AS TEXT)`, and read back with `surrogateescape`, so the
# str that comes out is the one that went in and `open()` gets the same bytes. Equality,
# `GLOB`, `substr` and ordering then work on bytes, as the file system does.


def decode_text(raw: bytes) -> str:
    """SQLite TEXT -> str: UTF-8, with the bytes of a non-UTF-8 name as lone surrogates."""
    return raw.decode("utf-8", "surrogateescape")


def _has_surrogates(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _as_bytes(value: Any) -> Any:
    return os.fsencode(value) if isinstance(value, str) else value


def bind_any_text(sql: str, params: Any, many: bool = False) -> tuple[str, Any]:
    """A str parameter with surrogates (a non-UTF-8 file name) is bound as its bytes, and its
    placeholder (`:name` or the i-th `?`) becomes `CAST(... AS TEXT)`. Anything else, and
    every statement without such a parameter, is returned unchanged."""
    rows = params if many else [params]
    if not rows:
        return sql, params
    if isinstance(rows[0], Mapping):
        names = {k for row in rows for k, v in row.items() if _has_surrogates(v)}
        if not names:
            return sql, params
        pattern = re.compile(r":(" + "|".join(re.escape(n) for n in names) + r")\b")
        sql = pattern.sub(r"CAST(:\1 AS TEXT)", sql)
        fixed = [{k: _as_bytes(v) if k in names else v for k, v in row.items()} for row in rows]
        return sql, (fixed if many else fixed[0])
    marked = {i for row in rows for i, v in enumerate(row) if _has_surrogates(v)}
    if not marked:
        return sql, params
    pieces = sql.split("?")
    if len(pieces) - 1 != len(rows[0]):
        return sql, params  # not plain positional parameters: leave it to fail
    out = pieces[0]
    for i, piece in enumerate(pieces[1:]):
        out += ("CAST(? AS TEXT)" if i in marked else "?") + piece
    fixed = [
        type(row)(_as_bytes(v) if i in marked else v for i, v in enumerate(row)) for row in rows
    ]
    return out, (fixed if many else fixed[0])


__all__ = [
    "BUSY_TIMEOUT_MS",
    "Connection",
    "Database",
    "Result",
    "bind_any_text",
    "decode_text",
    "needs_immutable",
]
