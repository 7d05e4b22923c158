"""Walk folder trees for audio files: recursive, hidden entries skipped, symlinks followed
without loops, each file seen once even when several links lead to it.

Loops: a directory is entered only if its `(st_dev, st_ino)` has not been entered before in
this scan, so `a/link -> ..` and cycles of links end. Files reached twice (a symlinked file
and its target) are yielded once, under the first path found (walk order is sorted, so the
choice is stable between runs).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from clapsearch.hashing import content_hash  # re-exported: the indexer's moved-file check
from clapsearch.index.paths import normalize_path


@dataclass(frozen=True)
class ScannedFile:
    path: str  # absolute, symlinks kept
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class ScanProblem:
    """A path the scan could not look into (permission denied, vanished, broken link)."""

    path: str
    reason: str  # "permission_denied" | "unreadable" | "missing"
    detail: str
    is_dir: bool


def scan(
    roots: Iterable[str | os.PathLike], extensions: Iterable[str]
) -> tuple[list[ScannedFile], list[ScanProblem]]:
    """All audio files under `roots` (files given directly are taken whatever their name),
    sorted by path, and the problems met on the way."""
    exts = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
    files: list[ScannedFile] = []
    problems: list[ScanProblem] = []
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    for root in roots:
        root = normalize_path(root)
        try:
            st = os.stat(root)
        except OSError as e:
            problems.append(_problem(root, e, is_dir=True))
            continue
        if stat.S_ISDIR(st.st_mode):
            for item in _walk(root, st, exts, seen_dirs, seen_files, problems):
                files.append(item)
        elif _take_file(st, seen_files):
            files.append(ScannedFile(root, st.st_size, st.st_mtime_ns))
    files.sort(key=lambda f: f.path)
    return files, problems


def _take_file(st: os.stat_result, seen_files: set) -> bool:
    key = (st.st_dev, st.st_ino)
    if key in seen_files:
        return False
    seen_files.add(key)
    return True


def _walk(
    top: str,
    top_st: os.stat_result,
    exts: tuple[str, ...],
    seen_dirs: set,
    seen_files: set,
    problems: list[ScanProblem],
) -> Iterator[ScannedFile]:
    """Depth-first walk with an explicit stack (deep trees do not hit the recursion limit)."""
    stack = [(top, top_st)]
    while stack:
        folder, st = stack.pop()
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            continue
        seen_dirs.add(key)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            problems.append(_problem(folder, e, is_dir=True))
            continue
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                est = entry.stat(follow_symlinks=True)
            except OSError as e:
                if entry.name.lower().endswith(exts) or not entry.is_symlink():
                    problems.append(_problem(entry.path, e, is_dir=False))
                continue
            if stat.S_ISDIR(est.st_mode):
                subdirs.append((entry.path, est))
            elif stat.S_ISREG(est.st_mode) and entry.name.lower().endswith(exts):
                if _take_file(est, seen_files):
                    yield ScannedFile(entry.path, est.st_size, est.st_mtime_ns)
        stack.extend(reversed(subdirs))


def _problem(path: str, err: OSError, is_dir: bool) -> ScanProblem:
    detail = err.strerror or str(err)
    if err.errno in (errno.EACCES, errno.EPERM):
        reason = "permission_denied"
    elif err.errno == errno.ELOOP:
        reason, detail = "unreadable", "a loop of symbolic links"
    elif err.errno == errno.ENOENT:
        reason = "missing"
    else:
        reason = "unreadable"
    return ScanProblem(path, reason, detail, is_dir)


__all__ = ["ScanProblem", "ScannedFile", "content_hash", "scan"]
