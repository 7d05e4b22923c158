"""What went wrong with an index's files, in one sentence that says what to do.

SQLite reports a read-only folder as "unable to open database file", a full disk as "database
or disk is full", a damaged header as "file is not a database" and a damaged page as
"database disk image is malformed"; before this module every one of them reached users as
"No index at ..." or a SQLAlchemy traceback. `explain(err, index_dir)` maps any SQLite,
SQLAlchemy or OS error met while using an index to an `IndexStorageError` whose `kind` says
which cause it is (`KINDS`) and whose message names it and the way out.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from pathlib import Path

from clapsearch.errors import IndexStorageError

# SQLite primary result codes (sqlite3.h)
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = (
    3,
    5,
    6,
    8,
    10,
    11,
    13,
    14,
    26,
)
KINDS = ("permission", "disk_full", "corrupt", "not_a_database", "io", "busy", "unknown")
DOCTOR = "`clapsearch doctor --index {dir} --repair`"


def sqlite_error(err: BaseException) -> sqlite3.Error | None:
    """The sqlite3 error inside `err` (SQLAlchemy wraps them as `.orig`), if any."""
    seen = 0
    while err is not None and seen < 5:
        if isinstance(err, sqlite3.Error):
            return err
        err = getattr(err, "orig", None) or err.__cause__ or err.__context__
        seen += 1
    return None


def classify(err: BaseException) -> str:
    """One of `KINDS` for an error met while using an index."""
    if isinstance(err, IndexStorageError):
        return err.kind
    if type(err).__name__ == "DamagedVectors":  # clapsearch.index.vectors (no import cycle)
        return "corrupt"
    os_err = err if isinstance(err, OSError) else None
    if os_err is not None:
        if os_err.errno == errno.ENOSPC or os_err.errno == errno.EDQUOT:
            return "disk_full"
        if os_err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return "permission"
        return "io"
    lite = sqlite_error(err)
    if lite is None:
        return "unknown"
    code = getattr(lite, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(lite).lower()
    if primary == _FULL or "disk is full" in text:
        return "disk_full"
    if primary == _NOTADB or "not a database" in text:
        return "not_a_database"
    if primary == _CORRUPT or "malformed" in text:
        return "corrupt"
    if primary in (_PERM, _READONLY, _CANTOPEN) or "readonly" in text or "unable to open" in text:
        return "permission"
    if primary in (_BUSY, _LOCKED) or "locked" in text:
        return "busy"
    if primary == _IOERR or "disk i/o" in text:
        return "io"
    return "unknown"


def _free_mb(folder: Path) -> str:
    try:
        return f"{shutil.disk_usage(folder).free / 1e6:.1f} MB free"
    except OSError:
        return "free space unknown"


def explain(err: BaseException, index_dir: Path, writing: bool = False) -> IndexStorageError:
    """`err` (met while using the index at `index_dir`) -> an `IndexStorageError` sentence."""
    if isinstance(err, IndexStorageError):
        return err
    kind = classify(err)
    db = index_dir / "index.db"
    doctor = DOCTOR.format(dir=index_dir)
    if kind == "permission":
        if not os.access(index_dir, os.W_OK) or (db.exists() and not os.access(db, os.R_OK)):
            what = "folder is not writable" if os.access(db, os.R_OK) else "database is unreadable"
            msg = (
                f"The index at {index_dir} cannot be used: its {what} for this user (SQLite "
                f"needs to write index.db-wal and index.db-shm beside it); give this user write "
                f"access (`chmod u+w {index_dir}`) or copy the index to a writable folder."
            )
        else:
            msg = (
                f"The index at {index_dir} cannot be opened{' for writing' if writing else ''}: "
                f"permission denied ({_detail(err)}); check the permissions of its files."
            )
    elif kind == "disk_full":
        msg = (
            f"The disk holding the index at {index_dir} is full ({_free_mb(index_dir)}); free "
            f"some space and run the command again (everything committed so far is kept)."
        )
    elif kind == "not_a_database":
        msg = (
            f"The index database {db} is damaged (its header is not SQLite's); it cannot be "
            f"read: move the folder away and rebuild it with `clapsearch index DIR --index "
            f"{index_dir}`."
        )
    elif kind == "corrupt":
        msg = (
            f"The index database {db} is damaged ({_detail(err)}); run {doctor} to salvage "
            f"what can be read, or rebuild it with `clapsearch index`."
        )
    elif kind == "busy":
        msg = (
            f"The index at {index_dir} stayed locked by another process ({_detail(err)}); "
            f"wait for the other `clapsearch` command to end and run this one again."
        )
    elif kind == "io":
        msg = (
            f"Reading or writing the index at {index_dir} failed with an I/O error "
            f"({_detail(err)}); the disk may be failing: check it, then run {doctor}."
        )
    else:
        msg = f"Could not use the index at {index_dir}: {_detail(err)}."
    return IndexStorageError(msg, kind)


def _detail(err: BaseException) -> str:
    lite = sqlite_error(err)
    if lite is not None:
        return str(lite).rstrip(".")
    return (getattr(err, "strerror", None) or str(err) or type(err).__name__).rstrip(".")


__all__ = ["KINDS", "classify", "explain", "sqlite_error"]
