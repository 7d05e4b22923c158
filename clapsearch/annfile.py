"""The ANN cache file: a FAISS index over segment vectors, tagged with the database state it
reflects, written atomically.

The SQLite database is the source of truth (it holds every vector as float16); this file only
saves rebuilding the FAISS structure. It is valid for a database when `db_uuid` matches and is
exact for it when `generation` matches too; otherwise `IndexStore` corrects it on the fly
(ids deleted since are excluded with an `IDSelector`, ids added since are searched exactly).

Gap-aware routing (IVF): text queries sit away from the audio cone (CLAP's modality gap), so
an IVF quantizer trained on audio vectors sends them to the wrong lists. A cache tuned with
`params["route_alpha"] = a > 0` is searched with the query moved towards `route_mean` (the unit
mean of the stored vectors), `q' = normalize((1 - a) q + a mu)`, for a pool of
`max(RERANK_MIN, 4 k)` candidates, which are re-ranked exactly by cosine with the ORIGINAL
query from their stored vectors (`ann_search`); scores are therefore exact, as on every path.

Layout: `MAGIC` (8 bytes), header length (uint32 little-endian), UTF-8 JSON `AnnHeader`, then
`faiss.serialize_index` bytes. Written with `clapsearch.atomic` (a `ann.faiss.tmp-*` sibling,
fsynced, `os.replace`d over `ann.faiss`, directory fsynced): a reader sees the old file or the
new one, never half of one.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from clapsearch.vectors import topk_merge

MAGIC = b"CLAPANN1"
RERANK_MIN = 100  # candidates re-ranked exactly per query when routing across the gap


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
    memo: dict = field(default_factory=dict)  # last routed candidate scan (see ann_search)


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


def search_params(header: AnnHeader, selector=None, k: int = 10):
    """FAISS search parameters for this cache's type, with an optional `IDSelector`.

    A selective filter starves graph and IVF search of candidates, so efSearch grows with k.
    """
    import faiss

    if header.index_type.startswith("hnsw"):
        ef = max(int(header.params.get("efSearch", 64)), 2 * k)
        return faiss.SearchParametersHNSW(sel=selector, efSearch=ef)
    if header.index_type.startswith("ivf"):
        return faiss.SearchParametersIVF(sel=selector, nprobe=int(header.params.get("nprobe", 16)))
    return faiss.SearchParameters(sel=selector) if selector is not None else None


def ann_search(
    header: AnnHeader,
    index,
    q: np.ndarray,
    k: int,
    selector=None,
    fetch: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
    memo: dict | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Search a cache: `(Q, dim)` float32 unit queries -> `(scores, ids)` `(Q, k')`.

    Plain caches return FAISS's top-k. Routed caches (module doc) search the moved queries for
    a candidate pool and re-rank it with the original queries; `fetch(sorted unique ids)` must
    return `(ids (u,) sorted int64, vectors (u, dim) float32)` of those still in the database
    (the caller's snapshot), and candidates it omits are dropped. Without `fetch` a routed
    cache is searched plainly. The indexer tunes with this very function.

    `memo` (unfiltered searches only): keeps the last routed scan, 4x the pool deep, so the
    per-file ranking's over-fetch (the same queries again with 2k, 4k) re-ranks a longer
    prefix of it instead of scanning the IVF lists again; the prefix is what a fresh scan
    would return.
    """
    ntotal = max(int(header.ntotal), 1)
    alpha = float(header.params.get("route_alpha", 0.0))
    if alpha <= 0 or header.route_mean is None or fetch is None:
        kk = min(k, ntotal)
        scores, ids = index.search(q, kk, params=search_params(header, selector, kk))
        return scores, ids.astype(np.int64)
    pool = min(max(RERANK_MIN, 4 * k), ntotal)
    mean = np.asarray(header.route_mean, dtype=np.float32)
    moved = (1.0 - alpha) * q + alpha * mean
    moved /= np.maximum(np.linalg.norm(moved, axis=1, keepdims=True), 1e-12)
    key = q.tobytes() if memo is not None and selector is None else None
    cand = memo.get(key) if key is not None else None
    if cand is None or cand.shape[1] < pool:
        depth = min(4 * pool, ntotal) if key is not None else pool
        _, cand = index.search(moved, depth, params=search_params(header, selector, depth))
        cand = cand.astype(np.int64)
        if key is not None:
            memo.clear()
            memo[key] = cand
    cand = cand[:, :pool]
    got_ids, vecs = fetch(np.unique(cand[cand >= 0]))
    if len(got_ids) == 0:
        return (np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64))
    pos = np.minimum(np.searchsorted(got_ids, cand), len(got_ids) - 1)
    valid = (cand >= 0) & (got_ids[pos] == cand)
    exact = q @ vecs.T  # (Q, u): the same product as `exact_topk`
    scores = np.where(valid, np.take_along_axis(exact, pos, axis=1), -np.inf)
    return topk_merge([(scores.astype(np.float32), np.where(valid, cand, -1))], k)


__all__ = [
    "RERANK_MIN",
    "AnnCache",
    "AnnHeader",
    "ann_search",
    "read_ann",
    "read_header",
    "search_params",
    "write_ann",
]
