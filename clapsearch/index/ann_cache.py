"""The ANN cache file format: a FAISS index over segment vectors, tagged with the database
state it reflects, written atomically. (How it is searched: `clapsearch.index.ann_search`.)

The SQLite database is the source of truth (it holds every vector as float16); this file only
saves rebuilding the FAISS structure. It is valid for a database when `db_uuid` matches and is
exact for it when `generation` matches too; otherwise `IndexReader` corrects it on the fly
(ids deleted since are excluded with an `IDSelector`, ids added since are searched exactly).

Layout: `MAGIC` (8 bytes), header length (uint32 little-endian), UTF-8 JSON `AnnHeader`, then
`faiss.serialize_index` bytes. Written with `clapsearch.atomic` (a `ann.faiss.tmp-*` sibling,
fsynced, `os.replace`d over `ann.faiss`, directory fsynced): a reader sees the old file or the
new one, never half of one.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"CLAPANN1"


@dataclass(frozen=True)
class AnnHeader:
    """What an ANN cache file holds and which database state it reflects."""

    db_uuid: str
    generation: int
    model: str
    dim: int
    index_type: str  # "flat" | "hnsw32" | "ivf<nlist>"
    ntotal: int
    recall_at_10: float | None = None  # vs exact, measured at build time; None for flat
    params: dict = field(default_factory=dict)  # {"efSearch": 128} | {"nprobe": 32, ...}
    route_mean: list[float] | None = None  # (dim,) unit mean of the vectors (gap routing)


@dataclass
class AnnCache:
    header: AnnHeader
    index: object  # faiss.IndexIDMap2 (ids are segment ids)
    ids: np.ndarray  # (ntotal,) int64, sorted
    memo: dict = field(default_factory=dict)  # last routed candidate scan (`ann_search`)


def write_ann(path: Path, header: AnnHeader, index) -> None:
    """Atomically replace `path` with `index` tagged by `header` (see module doc)."""
    import faiss

    from clapsearch.atomic import atomic_open

    payload = faiss.serialize_index(index)
    head = json.dumps(asdict(header)).encode()
    with atomic_open(path, "wb") as fh:
        fh.write(MAGIC + struct.pack("<I", len(head)) + head)
        fh.write(memoryview(payload))


def read_header(path: Path) -> AnnHeader | None:
    """The header alone (cheap), or None when the file is missing or not an ANN cache."""
    try:
        with open(path, "rb") as fh:
            return _parse_header(fh)[0]
    except (OSError, ValueError):
        return None


def _parse_header(fh) -> tuple[AnnHeader, int]:
    start = fh.read(12)
    if len(start) != 12 or start[:8] != MAGIC:
        raise ValueError("not an ANN cache file")
    (n,) = struct.unpack("<I", start[8:])
    data = json.loads(fh.read(n).decode())
    return AnnHeader(**data), 12 + n


def read_ann(path: Path) -> AnnCache | None:
    """Load the cache, or None when it is missing or unreadable (the caller then searches the
    database vectors exactly, which is always correct)."""
    import faiss

    try:
        with open(path, "rb") as fh:
            header, _ = _parse_header(fh)
            blob = np.frombuffer(fh.read(), dtype=np.uint8)
        index = faiss.deserialize_index(blob)
    except (OSError, ValueError, RuntimeError, TypeError):
        return None
    ids = np.sort(faiss.vector_to_array(index.id_map).astype(np.int64))
    return AnnCache(header, index, ids)


__all__ = ["AnnCache", "AnnHeader", "read_ann", "read_header", "write_ann"]
