"""The ANN cache file format: a FAISS index over segment vectors, tagged with the database
state it reflects, checksummed, written atomically. (How it is searched:
`clapsearch.index.ann_search`.)

The SQLite database is the source of truth (it holds every vector as float16); this file only
saves rebuilding the FAISS structure. A cache is used only when `cache_problem` finds nothing
wrong (otherwise every vector is searched exactly, which is always correct, and the next
`clapsearch index` rebuilds it):
- its bytes are whole: the header carries a CRC-32 of itself and of the FAISS payload, and the
  payload's length (a cut or overwritten file is caught, where FAISS would read garbage);
- it was built from this database (`db_uuid`: the index id) ...
- ... at a generation the database has reached (a cache NEWER than the database means the
  database lost its last commits, e.g. a deleted `-wal`: ids may then be reused by other files);
- it is the cache this database recorded: every cache write gets a random `build_id`, stored
  in `index_meta.ann_build` by the writer in a transaction AFTER the file is in place
  (`IndexWriter.write_cache`). A run killed between the two, or a database that lost the
  commit that recorded it, leaves a file the database does not name: not used. Since a
  database that kept that commit also kept every commit before it, a recorded cache is always
  an ancestor of the database's state, so the reader's correction below is exact;
- at the same generation, it holds exactly the database's number of segments.
A valid cache is exact for the database when `generation` matches; otherwise `IndexReader`
corrects it on the fly (ids deleted since are excluded with an `IDSelector`, ids added since
are searched exactly: AUTOINCREMENT ids, and the database never went back past the cache).

Layout (version 2): `MAGIC` (8 bytes), header length n (uint32 little-endian), CRC-32 of the
header (uint32 LE), n bytes of UTF-8 JSON `AnnHeader` (with `checksum`, the CRC-32 of the
payload, and `payload_bytes`), then `faiss.serialize_index` bytes. Version 1 files
(`CLAPANN1`, no checksums) are not trusted: they count as missing, and the next run rebuilds.
On-disk caches (IVF-PQ merged by `clapsearch index merge`, too large for memory) have no
payload: `header.ondisk` names `<name>.index` in the same folder, whose inverted lists are
memory-mapped from `<name>.ivfdata`, with the sorted ids in `<name>.ids.npy` (memory-mapped
too); their header is checked, their external files are not checksummed (gigabytes at every
open). Written with `clapsearch.atomic` (a `ann.faiss.tmp-*` sibling, fsynced, `os.replace`d
over `ann.faiss`, directory fsynced): a reader sees the old file or the new one, never half of
one.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"CLAPANN2"
OLD_MAGIC = b"CLAPANN1"


class AnnCacheError(ValueError):
    """A cache file that must not be used; the message says why (for `clapsearch doctor`)."""


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
    build_id: str = ""  # random per write; the database records it (`index_meta.ann_build`)
    checksum: str = ""  # CRC-32 of the payload, 8 hex digits (set by `write_ann`)
    payload_bytes: int = 0  # length of the payload (set by `write_ann`)


@dataclass
class AnnCache:
    header: AnnHeader
    index: object  # faiss.IndexIDMap2 (ids are segment ids)
    ids: np.ndarray  # (ntotal,) int64, sorted
    memo: dict = field(default_factory=dict)  # last routed candidate scan (`ann_search`)


def write_ann(path: Path, header: AnnHeader, index) -> AnnHeader:
    """Atomically replace `path` with `index` tagged by `header` (see module doc); returns the
    header as written (with its checksum). The database must then record `header.build_id`
    (`IndexWriter.write_cache` does both): until it does, the file is not used."""
    import faiss

    from clapsearch.atomic import atomic_open

    payload = faiss.serialize_index(index) if index is not None else np.zeros(0, np.uint8)
    header = dataclasses.replace(
        header, checksum=f"{zlib.crc32(payload):08x}", payload_bytes=int(len(payload))
    )
    head = json.dumps(asdict(header)).encode()
    with atomic_open(path, "wb") as fh:
        fh.write(MAGIC + struct.pack("<II", len(head), zlib.crc32(head)) + head)
        fh.write(memoryview(payload))
    return header


def read_header(path: Path) -> AnnHeader | None:
    """The header alone (cheap), or None when the file is missing, not a version 2 ANN cache
    or its header is damaged."""
    try:
        with open(path, "rb") as fh:
            return parse_header(fh)[0]
    except (OSError, ValueError):
        return None


def parse_header(fh) -> tuple[AnnHeader, int]:
    start = fh.read(16)
    if start[:8] == OLD_MAGIC:
        raise AnnCacheError("it is a version 1 cache, without checksums")
    if len(start) != 16 or start[:8] != MAGIC:
        raise AnnCacheError("it is not an ANN cache file (or its first bytes are damaged)")
    n, crc = struct.unpack("<II", start[8:])
    head = fh.read(n)
    if len(head) != n or zlib.crc32(head) != crc:
        raise AnnCacheError("its header is damaged (checksum mismatch)")
    try:
        data = json.loads(head.decode())
        names = {f.name for f in dataclasses.fields(AnnHeader)}
        return AnnHeader(**{k: v for k, v in data.items() if k in names}), 16 + n
    except (ValueError, TypeError) as err:
        raise AnnCacheError(f"its header cannot be read ({err})") from None


def load_ann(path: Path) -> AnnCache:
    """Load and verify the cache file (header and payload checksums); raises `AnnCacheError`
    saying what is wrong, `FileNotFoundError` when there is none."""
    import faiss

    with open(path, "rb") as fh:
        header, _ = parse_header(fh)
        if header.ondisk is not None:
            try:
                return _read_ondisk(path.parent, header)
            except (OSError, ValueError, RuntimeError) as err:
                raise AnnCacheError(f"its on-disk files cannot be read ({err})") from None
        blob = np.frombuffer(fh.read(), dtype=np.uint8)
    if len(blob) != header.payload_bytes:
        raise AnnCacheError(
            f"it is cut short ({len(blob)} of {header.payload_bytes} payload bytes)"
        )
    if f"{zlib.crc32(blob):08x}" != header.checksum:
        raise AnnCacheError("its FAISS data is damaged (checksum mismatch)")
    try:
        index = faiss.deserialize_index(blob)
        ids = np.sort(faiss.vector_to_array(index.id_map).astype(np.int64))
    except (RuntimeError, TypeError, AttributeError) as err:
        raise AnnCacheError(f"FAISS cannot read it ({err})") from None
    if len(ids) != header.ntotal:
        raise AnnCacheError(f"it holds {len(ids)} vectors, its header says {header.ntotal}")
    return AnnCache(header, index, ids)


def read_ann(path: Path) -> AnnCache | None:
    """`load_ann`, or None when the file is missing or fails its checks (the caller then
    searches the database vectors exactly, which is always correct)."""
    try:
        return load_ann(path)
    except (OSError, AnnCacheError):
        return None


def cache_problem(
    header: AnnHeader | None,
    db_uuid: str,
    generation: int,
    ann_build: str | None,
    dim: int,
    segments: int | None = None,
) -> str | None:
    """Why a cache with this header must not be used for the database state given (module
    doc), in words; None when it may. `segments`: the database's count, checked when the
    generations are equal (pass None to skip that count)."""
    if header is None:
        return "there is no readable cache"
    if header.db_uuid != db_uuid:
        return "it was built from another database"
    if header.dim != dim:
        return f"its vectors have {header.dim} dimensions, the database's {dim}"
    if header.generation > generation:
        return (
            f"it is newer than the database (generation {header.generation} > {generation}): "
            f"the database lost its last commits (a deleted or damaged -wal file?)"
        )
    if not header.build_id or header.build_id != (ann_build or ""):
        return (
            "it is not the cache the database recorded (a run ended between writing it and "
            "recording it, or the database lost the commit that recorded it)"
        )
    if segments is not None and header.generation == generation and header.ntotal != segments:
        return (
            f"it holds {header.ntotal} vectors where the database has {segments} at the same "
            f"generation"
        )
    return None


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


__all__ = [
    "AnnCache",
    "AnnCacheError",
    "AnnHeader",
    "cache_problem",
    "load_ann",
    "parse_header",
    "read_ann",
    "read_header",
    "read_ondisk_index",
    "write_ann",
]
