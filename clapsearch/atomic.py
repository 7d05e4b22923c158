"""Atomic writes: a crash (or a kill) leaves the old file or the new one, never half of one.

Every file clapsearch writes for later use (embeddings, eval outputs, the ANN cache, manifests,
checkpoints) goes through here:

1. the data goes to a temporary sibling `<name>.tmp-<pid>-<random>` in the same directory
   (same file system, so the rename below is atomic);
2. the temporary file is flushed and fsynced (its bytes are on disk before it gets the name);
3. `os.replace` puts it over `<name>` in one step;
4. the directory is fsynced, so the rename itself survives a power cut.

On any error the temporary file is removed and the target is untouched. A process killed
between 1 and 3 leaves a `<name>.tmp-*` sibling behind; whoever owns the folder may delete
those (the indexer does, under its lock). Directories (checkpoints) are written the same way
by `atomic_directory_write`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO


def temp_prefix(path: Path) -> str:
    """The prefix of `path`'s temporary siblings: `glob(temp_prefix(p) + "*")` finds leftovers."""
    return f"{path.name}.tmp-"


def fsync_dir(folder: str | Path) -> None:
    """Persist a directory's entries (a rename in it); a no-op where directories can't be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """`with atomic_open(p, "w") as f: f.write(...)`: `p` appears, whole, when the block ends
    without an exception (module doc). `mode` is "wb" or "w" (text, UTF-8 unless `encoding`)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode 'w' or 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{temp_prefix(path)}{os.getpid()}-")
    try:
        text = {} if mode == "wb" else {"encoding": encoding or "utf-8", "newline": ""}
        with os.fdopen(fd, mode, **text) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_bytes(path: str | Path, data: bytes | memoryview) -> None:
    """Atomically replace `path` with `data`."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Atomically replace `path` with `text` (no newline translation)."""
    with atomic_open(path, "w", encoding=encoding) as fh:
        fh.write(text)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    for sub in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        fsync_dir(sub)


def atomic_directory_write(dest: str | Path, fill: Callable[[Path], None]) -> Path:
    """Call `fill(tmp_dir)`, fsync everything in it, then move it onto `dest`.

    An existing `dest` is first renamed aside, the new directory renamed into place, and the
    old one removed, so a crash leaves the old directory, or the new one (plus a hidden
    `.<name>.old-*` to delete), never a mix of the two."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        fill(tmp)
        _fsync_tree(tmp)
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}-{time.time_ns()}")
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(dest.parent)
    return dest
