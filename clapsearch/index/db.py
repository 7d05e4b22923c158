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

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clapsearch.errors import ClapsearchError

BUSY_TIMEOUT_MS = 30_000


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
        """One statement; a list of parameter tuples runs it once per tuple (executemany)."""
        if isinstance(params, list) and params and isinstance(params[0], (tuple, list)):
            return Result(self.raw.executemany(sql, params))
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
                conn = _connect(self.path, self.readonly)
                self._connections.append(conn)
            self._local.conn = conn
        return conn

    @contextmanager
    def txn(self) -> Iterator[Connection]:
        """A transaction on this thread's connection; nested uses join the outer one."""
        conn = self.connection()
        if conn.in_transaction():
            yield conn
            return
        with conn.begin():
            yield conn

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()


def _connect(db: Path, readonly: bool) -> Connection:
    """SQLite in WAL mode with explicit BEGINs, so a transaction is a real snapshot
    (pysqlite's own transaction handling does not BEGIN before SELECTs)."""
    conn = sqlite3.connect(
        str(db), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    else:
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL: a committed transaction survives a process kill (it is in the
        # OS page cache); only a power cut may lose the last ones, never corrupt.
        conn.execute("PRAGMA synchronous = NORMAL")
    return Connection(conn, "BEGIN" if readonly else "BEGIN IMMEDIATE")


__all__ = ["BUSY_TIMEOUT_MS", "Connection", "Database", "Result"]
