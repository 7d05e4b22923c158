"""The ANN cache file format: a FAISS index over segment vectors, tagged with the database
state it reflects, written atomically. (How it is searched: `clapsearch.index.ann_search`.)

The SQLite database is the source of truth (it holds every vector as float16); this file only
saves rebuilding the FAISS structure. It is valid for a database when `db_uuid` matches and is
exact for it when `generation` matches too; otherwise `IndexReader` corrects it on the fly
(ids deleted since are excluded with an `IDSelector`, ids added since are searched exactly).

Layout: `MAGIC` (8 bytes), header length (uint32 little-endian), UTF-8 JSON `AnnHeader`, then
`faiss.serialize_index` bytes. On-disk caches (IVF-PQ merged by `clapsearch index merge`, too
large for memory) have no payload: `header.ondisk` names `<name>.index` in the same folder,
whose inverted lists are memory-mapped from `<name>.ivfdata`, with the sorted ids in
`<name>.ids.npy` (memory-mapped too); a merge writes a new `<name>` and then this header.
Written with `clapsearch.atomic` (a `ann.faiss.tmp-*` sibling,
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
    ondisk: str | None = None  # on-disk IVF-PQ: its `.index` file beside this one (see below)


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

    payload = faiss.serialize_index(index) if index is not None else b""
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
            if header.ondisk is not None:
                return _read_ondisk(path.parent, header)
            blob = np.frombuffer(fh.read(), dtype=np.uint8)
        index = faiss.deserialize_index(blob)
    except (OSError, ValueError, RuntimeError, TypeError):
        return None
    ids = np.sort(faiss.vector_to_array(index.id_map).astype(np.int64))
    return AnnCache(header, index, ids)


def _read_ondisk(folder: Path, header: AnnHeader) -> AnnCache:
    """An on-disk cache: lists and ids memory-mapped, found beside the header file."""
    index = read_ondisk_index(folder / header.ondisk)
    ids = np.load(folder / (header.ondisk.removesuffix(".index") + ".ids.npy"), mmap_mode="r")
    return AnnCache(header, index, ids)


def read_ondisk_index(index_file: Path, writable: bool = False):
    """A faiss index whose inverted lists are `OnDiskInvertedLists`, with its data file
    `<stem>.ivfdata` memory-mapped from beside `index_file` wherever the folder moved (the
    path recorded at merge time is ignored; faiss's `IO_FLAG_ONDISK_SAME_DIR` does the same
    but prints to stdout, which would corrupt `--json` output)."""
    import faiss

    index = faiss.read_index(str(index_file), faiss.IO_FLAG_SKIP_IVF_DATA)
    lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(index).invlists)
    if not isinstance(lists, faiss.OnDiskInvertedLists):
        raise ValueError(f"{index_file} has no on-disk inverted lists")
    lists.filename = str(Path(index_file).with_suffix(".ivfdata"))
    lists.read_only = not writable
    lists.do_mmap()
    return index


__all__ = ["AnnCache", "AnnHeader", "read_ann", "read_header", "read_ondisk_index", "write_ann"]
