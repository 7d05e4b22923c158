"""From raw FAISS neighbours to what users see: one hit per file, filters, exclusions.

The index stores one vector per window, so a file appears as many neighbours. Users want files,
each with the window that matched best, and they want `k` of them even when a filter or an
excluded query file removes some. Taking a fixed top-`k` of windows and grouping or filtering
afterwards would return fewer than `k` files; instead `rank` over-fetches: it asks the store for
`fetch` windows, groups them, and doubles `fetch` until every query has `k` distinct files or
the store returned fewer windows than asked (the index, or the filter's allowed set, is used up).

Filters are pushed down to the store as an explicit id set (`allowed_ids`, which the store turns
into a FAISS id selector), so the vector search itself only ever sees matching windows.

Scores are inner products of unit vectors, i.e. cosine similarities in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from clapsearch.errors import UsageError

# First fetch per query, as a multiple of k: most files have a few windows.
FIRST_FETCH_FACTOR = 4
MIN_FIRST_FETCH = 32


@dataclass(frozen=True)
class SearchHit:
    """One result: a file and its best-matching window (or one window with `--segments`)."""

    path: str
    score: float  # cosine similarity of the query and the window's vector
    start: float  # seconds into the file
    end: float
    missing: bool = False  # the file is gone from disk since it was indexed (`index --prune`)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SearchFilter:
    """Which files a query may return. Every field left at None is ignored; all set ones must
    hold (AND). `path_glob` is a shell pattern on the full stored path (`*` crosses `/`);
    `path_prefix` a leading path; durations are the whole file's, in seconds."""

    path_glob: str | None = None
    path_prefix: str | None = None
    min_duration_s: float | None = None
    max_duration_s: float | None = None

    @property
    def active(self) -> bool:
        return any(v is not None for v in asdict(self).values())

    def validate(self) -> SearchFilter:
        for name, value in (("minimum", self.min_duration_s), ("maximum", self.max_duration_s)):
            if value is not None and not value >= 0:  # also catches NaN
                raise UsageError(
                    f"The {name} duration must be a non-negative number of seconds, not {value}."
                )
        lo, hi = self.min_duration_s, self.max_duration_s
        if lo is not None and hi is not None and lo > hi:
            raise UsageError(f"The minimum duration ({lo} s) is above the maximum ({hi} s).")
        return self


class Segment(Protocol):
    """What ranking reads of a stored window (the store's `SegmentRecord`)."""

    id: int
    file_id: int
    path: str
    start_s: float
    end_s: float


class SegmentSource(Protocol):
    """The two store calls ranking needs (`clapsearch.index.reader.IndexReader` implements them)."""

    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def segments(self, ids: Sequence[int]) -> dict[int, Segment]: ...


def rank(
    store: SegmentSource,
    queries: np.ndarray,
    k: int,
    *,
    allowed_ids: np.ndarray | None = None,
    exclude: Sequence[Callable[[Segment], bool] | None] | None = None,
    per_file: bool = True,
    limit: int | None = None,
) -> list[list[SearchHit]]:
    """Top-`k` hits for each row of `queries` `(Q, dim)` float32 unit vectors.

    per_file: one hit per file (its best window), else every window is a hit (`--segments`).
    allowed_ids: segment ids the search may return (a filter), None for all.
    exclude: per query, a predicate on a window's record: true for files never to return
        (the query file itself); asked once per file met, so it may be costly (a byte compare).
    limit: how many windows exist to fetch (index size or `len(allowed_ids)`); caps `fetch`.
    Returns Q lists of at most `k` hits, best first.
    """
    if k < 1:
        raise UsageError(f"-k must be at least 1, not {k}.")
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    n_queries = queries.shape[0]
    excluded = [_FileMemo(e) for e in exclude] if exclude else [_FileMemo(None)] * n_queries
    if allowed_ids is not None and len(allowed_ids) == 0:
        return [[] for _ in range(n_queries)]
    if limit is None and allowed_ids is not None:
        limit = len(allowed_ids)

    results: list[list[SearchHit]] = [[] for _ in range(n_queries)]
    pending = list(range(n_queries))
    fetch = max(k * FIRST_FETCH_FACTOR, MIN_FIRST_FETCH) if per_file else 2 * k
    cache: dict[int, Segment] = {}
    while pending:
        if limit is not None:
            fetch = min(fetch, limit)
        scores, ids = store.search(queries[pending], fetch, allowed_ids=allowed_ids)
        _fetch_missing(store, ids, cache)
        still = []
        for row, q in enumerate(pending):
            hits, exhausted = _collect(scores[row], ids[row], cache, excluded[q], k, per_file)
            results[q] = hits
            if len(hits) < k and not exhausted and not (limit is not None and fetch >= limit):
                still.append(q)
        pending = still
        fetch *= 2
    return results


def _fetch_missing(store: SegmentSource, ids: np.ndarray, cache: dict[int, Segment]) -> None:
    """One metadata round trip for the ids this pass returned that earlier passes did not."""
    wanted = {int(i) for i in np.unique(ids) if i >= 0} - cache.keys()
    if wanted:
        cache.update(store.segments(sorted(wanted)))


def _collect(
    scores: np.ndarray,
    ids: np.ndarray,
    cache: dict[int, Segment],
    excluded: _FileMemo,
    k: int,
    per_file: bool,
) -> tuple[list[SearchHit], bool]:
    """Walk one query's neighbours best first -> (up to k hits, whether the store ran out)."""
    hits: list[SearchHit] = []
    seen: set[int] = set()
    valid = 0
    for score, sid in zip(scores.tolist(), ids.tolist(), strict=True):
        if sid < 0:
            continue
        valid += 1
        seg = cache.get(sid)
        if seg is None or excluded(seg):  # None: deleted since the search (snapshot)
            continue
        if per_file:
            if seg.file_id in seen:
                continue
            seen.add(seg.file_id)
        hits.append(SearchHit(seg.path, float(score), float(seg.start_s), float(seg.end_s)))
        if len(hits) == k:
            break
    return hits, valid < len(ids)


class ChunkedExact:
    """A `SegmentSource` view that answers filtered searches exactly, `chunk` allowed ids at a
    time (the store searches id sets up to its `EXACT_SUBSET_MAX` by brute force over their
    stored vectors), merging the chunks' top lists.

    Why: an ANN search restricted by an id selector can starve (HNSW's graph walk or IVF's
    probed lists hold few allowed vectors) and return fewer windows than exist; `Library`
    reruns such short filtered queries through this view so a filter still yields k files.
    """

    def __init__(self, store: SegmentSource, chunk: int):
        self.store = store
        self.chunk = max(1, int(chunk))

    def search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None):
        if allowed_ids is None:
            return self.store.search(queries, k)
        parts = [
            self.store.search(queries, k, allowed_ids=allowed_ids[lo : lo + self.chunk])
            for lo in range(0, len(allowed_ids), self.chunk)
        ]
        scores = np.concatenate([p[0] for p in parts], axis=1)
        ids = np.concatenate([p[1] for p in parts], axis=1)
        scores = np.where(ids < 0, -np.inf, scores)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)

    def segments(self, ids: Sequence[int]) -> dict[int, Segment]:
        return self.store.segments(ids)


class _FileMemo:
    """Asks an exclusion predicate once per file id."""

    def __init__(self, predicate: Callable[[Segment], bool] | None):
        self.predicate = predicate
        self.answers: dict[int, bool] = {}

    def __call__(self, seg: Segment) -> bool:
        if self.predicate is None:
            return False
        if seg.file_id not in self.answers:
            self.answers[seg.file_id] = bool(self.predicate(seg))
        return self.answers[seg.file_id]


def mean_direction(vectors: np.ndarray) -> np.ndarray:
    """`(n, dim)` window vectors -> `(dim,)` float32 unit vector of their mean: a whole-file
    query, the same policy `Embedder.embed_audio` applies to long clips."""
    mean = np.asarray(vectors, dtype=np.float32).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean


__all__ = ["ChunkedExact", "SearchFilter", "SearchHit", "mean_direction", "rank"]
