"""The SQLite connections of an open index, and the thread model.

Thread model: one SQLite connection per thread. `Database.txn()` runs on the calling thread's
own connection (opened on its first use), so threads never share a connection or a
transaction; each `with db.txn():` is a snapshot (WAL: readers never block the writer, and a
reader's snapshot does not move while it is open). Connections are closed together by
`close()`. Writers open their transactions with `BEGIN IMMEDIATE` (one writer at a time, the
others wait up to `BUSY_TIMEOUT_MS`); read-only databases set `query_only`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.pool import NullPool

from clapsearch.errors import ClapsearchError

BUSY_TIMEOUT_MS = 30_000


class Database:
    """An index database opened read-only or for writing (module doc for the threads)."""

    def __init__(self, path: Path, readonly: bool):
        self.path = path
        self.readonly = readonly
        self._engine = _make_engine(path, readonly)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list = []
        self._closed = False

    def connection(self):
        """The calling thread's connection (a SQLAlchemy `Connection`)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with self._lock:
                if self._closed:
                    raise ClapsearchError(f"The index database {self.path} is closed.")
                conn = self._engine.connect()
                self._connections.append(conn)
            self._local.conn = conn
        return conn

    @contextmanager
    def txn(self) -> Iterator:
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
        self._engine.dispose()


def _make_engine(db: Path, readonly: bool):
    """SQLite in WAL mode with explicit BEGINs, so a transaction is a real snapshot
    (pysqlite's own transaction handling does not BEGIN before SELECTs). `NullPool`: every
    `connect()` is a connection of its own, kept by the thread that asked for it."""

    def connect():
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
        return conn

    engine = create_engine("sqlite+pysqlite://", creator=connect, poolclass=NullPool)

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine
