"""Fault-injection helpers shared by the reliability tests: synthetic indexes (no model needed),
read-only folders, small volumes, damaged pages. Plain functions and context managers."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from clapsearch.identity import ModelIdentity
from clapsearch.index.schema import FileRecord, IndexConfig

DIM = 16
MODEL = ModelIdentity(kind="test", name="", label="faults", digest="f", dim=DIM)


def unit_rows(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def synthetic_index(
    folder: Path, n_files: int = 40, per_file: int = 3, dim: int = DIM, seed: int = 0
) -> dict[str, np.ndarray]:
    """An index of `n_files` made-up files written through `IndexWriter` (every file one
    transaction, as the indexer writes them) -> {path: its vectors (float16-rounded)}."""
    from indexer.writer import IndexWriter

    rng = np.random.default_rng(seed)
    model = MODEL if dim == DIM else ModelIdentity("test", "", "faults", "f", dim)
    out = {}
    with IndexWriter.create(folder, model, IndexConfig(hop_s=5.0)) as w:
        for i in range(n_files):
            path = f"/lib/f{i:04d}.wav"
            vecs = unit_rows(rng, per_file, dim)
            spans = [(5.0 * j, 5.0 * j + 5.0) for j in range(per_file)]
            w.add_file(FileRecord(path, 100 + i, i, f"h{i}", 5.0 * per_file, 48000, 1), spans, vecs)
            out[path] = vecs.astype(np.float16).astype(np.float32)
    return out


def db_pages(db: Path) -> dict[str, list[int]]:
    """Page numbers (1-based) of each table's and index's b-tree (`dbstat` when SQLite has it,
    else the root pages only)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        try:
            rows = con.execute("SELECT name, pageno FROM dbstat").fetchall()
        except sqlite3.OperationalError:
            rows = con.execute("SELECT name, rootpage FROM sqlite_master WHERE rootpage").fetchall()
    finally:
        con.close()
    out: dict[str, list[int]] = {}
    for name, page in rows:
        out.setdefault(name, []).append(int(page))
    return out


def damage_page(db: Path, page: int, page_size: int = 4096, seed: int = 0) -> None:
    """Overwrite page `page` (1-based) of `db` with random bytes, header included."""
    data = bytearray(db.read_bytes())
    start = (page - 1) * page_size
    rng = np.random.default_rng(seed)
    data[start : start + page_size] = rng.integers(0, 256, page_size, dtype=np.uint8).tobytes()
    db.write_bytes(bytes(data))


def can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@contextmanager
def tmpfs(path: Path, size: str):
    """A tmpfs of `size` (e.g. "3m") mounted at `path` (root only; skips the test otherwise)."""
    if not can_mount():
        pytest.skip("mounting a small volume needs root")
    path.mkdir(parents=True, exist_ok=True)
    got = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)])
    if got.returncode != 0:
        pytest.skip("mount is not permitted here")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)])


@contextmanager
def read_only(path: Path):
    """`path`'s folder made read-only for this process: a read-only remount of a tmpfs copy
    as root (root ignores permission bits), `chmod a-w` otherwise. Yields the folder to use."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(mode)
        return
    mount = path.parent / (path.name + "-ro")
    with tmpfs(mount, "64m"):
        target = mount / path.name
        shutil.copytree(path, target)
        if subprocess.run(["mount", "-o", "remount,ro", str(mount)]).returncode != 0:
            pytest.skip("remounting read-only is not permitted here")
        yield target


__all__ = [
    "DIM",
    "MODEL",
    "can_mount",
    "damage_page",
    "db_pages",
    "read_only",
    "synthetic_index",
    "tmpfs",
    "unit_rows",
]
