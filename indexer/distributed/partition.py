"""Which partition a file belongs to, the same on every run and every machine.

A file's key is its path relative to the root it was found under (POSIX separators; a file
given directly as a root is keyed by its name), so the assignment does not depend on where a
machine mounts the library. Its partition is `blake2b-64(key) mod P`: stable, balanced, and
independent of which other files exist, so adding files to a library moves no other file's
partition (only the partitions that gain files are redone).

Ranks take partitions round-robin (`p % world == rank`); `rank_from_env` reads torchrun's
`RANK`/`WORLD_SIZE` or SLURM's `SLURM_PROCID`/`SLURM_NTASKS`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePath

from clapsearch.errors import UsageError
from indexer.scan import ScannedFile, ScanProblem, scan

PARTITION_HASH = "blake2b-64-relpath-v1"


@dataclass(frozen=True)
class WorkFile:
    """One file to embed: where it is, its stable key, and its partition."""

    file: ScannedFile
    key: str
    partition: int


def partition_key(root: str, path: str) -> str:
    """`path` relative to `root` with `/` separators (`root` itself: its name)."""
    if path == root:
        return PurePath(path).name
    rel = os.path.relpath(path, root)
    return PurePath(rel).as_posix()


def partition_of(key: str, partitions: int) -> int:
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % partitions


def assign(
    roots: Iterable[str], extensions: Iterable[str], partitions: int
) -> tuple[dict[int, list[WorkFile]], list[ScanProblem]]:
    """Scan `roots` (absolute) and group their files by partition: `{p: [WorkFile sorted by
    key]}` (every p in range(partitions), possibly empty), and the scan's problems."""
    if partitions < 1:
        raise UsageError(f"The number of partitions must be at least 1, not {partitions}.")
    out: dict[int, list[WorkFile]] = {p: [] for p in range(partitions)}
    seen: set[str] = set()
    files, problems = scan(list(roots), extensions)
    roots = sorted(roots, key=len, reverse=True)  # the deepest root a file is under names it
    for f in files:
        root = next(r for r in roots if f.path == r or f.path.startswith(r.rstrip("/") + "/"))
        key = partition_key(root, f.path)
        if key in seen:  # two roots holding the same relative path: keep them apart
            key = f"{PurePath(root).name}/{key}"
        seen.add(key)
        out[partition_of(key, partitions)].append(WorkFile(f, key, partition_of(key, partitions)))
    for p in out:
        out[p].sort(key=lambda w: w.key)
    return out, problems


def rank_from_env(env: dict | None = None) -> tuple[int, int]:
    """`(rank, world size)` from torchrun (`RANK`, `WORLD_SIZE`) or SLURM (`SLURM_PROCID`,
    `SLURM_NTASKS`); `(0, 1)` when neither is set."""
    env = os.environ if env is None else env
    for r, w in (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS")):
        if r in env and w in env:
            rank, world = int(env[r]), int(env[w])
            if not 0 <= rank < world:
                raise UsageError(f"{r}={rank} is outside 0..{world - 1} ({w}={world}).")
            return rank, world
    return 0, 1


def partitions_of_rank(partitions: int, rank: int, world: int) -> list[int]:
    return [p for p in range(partitions) if p % world == rank]


def default_partitions(n_files: int, files_per_partition: int = 1000) -> int:
    """Partitions small enough that a killed worker loses little, large enough that shard
    files stay few: ~1000 files each, at least 1."""
    return max(1, -(-n_files // files_per_partition))


__all__ = [
    "PARTITION_HASH",
    "WorkFile",
    "assign",
    "default_partitions",
    "partition_key",
    "partition_of",
    "partitions_of_rank",
    "rank_from_env",
]
