"""Stored vectors (float16 blobs) and brute-force top-k shared by every search path.

Every path (the FAISS cache, exact search over a subset, the stale-cache delta) scores the
same float16-rounded vectors and merges with the same tie rule, so a result never depends on
which path found it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

UNIT_TOLERANCE = 0.02  # |norm - 1| of a stored vector (float16 rounding moves it ~1e-3)


class DamagedVectors(ValueError):
    """Stored vectors that cannot be what the indexer wrote (every vector it stores is a unit
    row): bytes overwritten inside the database, which SQLite does not checksum."""


def decode_vectors(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    """float16 blobs -> `(n, dim)` float32, each checked to be a unit row of the right length:
    a damaged vector raises `DamagedVectors` rather than score wrongly (the check costs about
    what the float16 -> float32 conversion does)."""
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    size = 2 * dim
    if any(len(b) != size for b in blobs):
        raise DamagedVectors(f"a stored vector is not {size} bytes long")
    v = np.frombuffer(b"".join(blobs), dtype="<f2").reshape(-1, dim).astype(np.float32)
    sq = np.einsum("ij,ij->i", v, v)
    bad = ~(np.abs(sq - 1.0) <= 2 * UNIT_TOLERANCE)  # NaN and inf are bad too
    if bad.any():
        raise DamagedVectors(f"{int(bad.sum())} stored vectors are not unit length")
    return v


def encode_vectors(vectors: np.ndarray) -> list[bytes]:
    """`(n, dim)` float -> float16 little-endian blobs, one per row."""
    half = np.ascontiguousarray(vectors, dtype="<f2")
    return [row.tobytes() for row in half]


def topk_merge(parts: list[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-part `(scores (Q, k_i), ids (Q, k_i))` into the best k per query.

    Ties go to the smaller id so results do not depend on which part a vector sat in.
    Empty slots are `(-inf, -1)`.
    """
    scores = np.concatenate([p[0] for p in parts], axis=1)
    ids = np.concatenate([p[1] for p in parts], axis=1)
    scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
    order = np.lexsort((ids, -scores), axis=1)[:, :k]
    out_s = np.take_along_axis(scores, order, axis=1)
    out_i = np.take_along_axis(ids, order, axis=1)
    if out_s.shape[1] < k:
        pad = k - out_s.shape[1]
        out_s = np.pad(out_s, ((0, 0), (0, pad)), constant_values=-np.inf)
        out_i = np.pad(out_i, ((0, 0), (0, pad)), constant_values=-1)
    out_i = np.where(np.isfinite(out_s), out_i, -1)
    return out_s, out_i.astype(np.int64)


def exact_topk(queries: np.ndarray, vecs: np.ndarray, ids: np.ndarray, k: int):
    """Brute-force cosine top-k: `(Q, d)`, `(n, d)`, `(n,)` -> `(Q, k)` scores and ids."""
    q = queries.shape[0]
    if len(ids) == 0:
        return np.full((q, k), -np.inf, np.float32), np.full((q, k), -1, np.int64)
    scores = queries @ vecs.T  # (Q, n)
    return topk_merge([(scores, np.broadcast_to(ids, scores.shape))], k)


__all__ = [
    "DamagedVectors",
    "UNIT_TOLERANCE",
    "decode_vectors",
    "encode_vectors",
    "exact_topk",
    "topk_merge",
]
