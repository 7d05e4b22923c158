"""How an ANN cache is searched: FAISS parameters per cache type, and gap-aware routing with
an exact re-rank. The indexer tunes caches with this very function, so a tuned recall is the
recall queries get.

Gap-aware routing (IVF): text queries sit away from the audio cone (CLAP's modality gap), so
an IVF quantizer trained on audio vectors sends them to the wrong lists. A cache tuned with
`params["route_alpha"] = a > 0` is searched with the query moved towards `route_mean` (the unit
mean of the stored vectors), `q' = normalize((1 - a) q + a mu)`, for a pool of
`max(RERANK_MIN, params["rerank"], 4 k)` candidates, which are re-ranked exactly by cosine with
the ORIGINAL query from their stored vectors (`ann_search`); scores are therefore exact, as on
every path. `params["rerank"]` (tuned for IVF-PQ caches, absent elsewhere): PQ scores are
approximations whose error grows with the index (measured, docs/scale.md: at 10M windows a
pool of 200 holds 0.73 of the true top 10, a pool of 800 0.95), so the pool is a knob there.

Thread safety: FAISS CPU indexes answer concurrent searches, and the `memo` dict holds one
entry keyed by the exact query bytes (a thread finds a complete entry for its own queries or
none), so one cache serves several threads at once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from clapsearch.index.ann_cache import AnnHeader
from clapsearch.index.vectors import topk_merge

RERANK_MIN = 100  # candidates re-ranked exactly per query when routing across the gap


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
    pool = min(max(RERANK_MIN, int(header.params.get("rerank", 0)), 4 * k), ntotal)
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


__all__ = ["RERANK_MIN", "ann_search", "search_params"]
