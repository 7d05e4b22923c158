"""Build the FAISS cache from the database vectors; the type follows the data size.

- n <= `IndexConfig.exact_threshold`: `IDMap2,Flat` (exact inner product; recall 1).
- above: `IDMap2,HNSW32,Flat` (efConstruction 200) up to `HNSW_MAX`, `IDMap2,IVF{nlist},Flat`
  beyond (nlist ~ 4 sqrt(n), power of two, k-means on <= `KMEANS_POINTS_PER_LIST` points a list), both via
  `faiss.index_factory` with inner product. `IndexConfig.ann` may force "hnsw" or "ivf".
- the search knob (efSearch / nprobe) is raised until recall@10 vs exact reaches
  `target_recall` on text-like queries only (`text_like_probes`), measured through
  `clapsearch.index.ann_search`, the function queries run; the knob and the recall are stored in the
  cache header and the recall in `index_meta` (what `clapsearch status` shows).
- IVF also tries gap-aware routing (`clapsearch.index.ann_search` module doc): the query moved a fraction
  `route_alpha` of the way towards the unit mean of the stored vectors, a candidate pool
  re-ranked exactly. The cheapest setting (distance computations per query, counted by FAISS)
  that reaches the target wins; the mean goes into the header.

Text-like queries: text embeddings sit away from the audio cone (the modality gap), and audio
vectors used as queries find themselves and their neighbours easily, overstating recall (0.95+
measured that way was 0.65-0.92 for text). The probes are the index model's own text
embeddings (`PROBE_TEXTS`), random mixes of two of them, and synthetic queries built like
`benchmarks/bench_query.py`'s text queries: `normalize(m_text + 0.7 meaning + 0.7 noise)`,
where `m_text` is the unit mean of the text embeddings (a random direction orthogonal to the
audio mean without them), `meaning` a random mix of the off-axis parts of 3 stored vectors,
`noise` a random unit vector. On that benchmark's 100k index these probes are about as hard
as its text queries for HNSW and for routed IVF (plain audio vectors are far easier).

GPU: when `faiss.get_num_gpus() > 0` the IVF k-means runs on the GPUs; the cache is always
stored as a CPU index.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from clapsearch.index.ann_cache import AnnCache, AnnHeader
from clapsearch.index.ann_search import RERANK_MIN, ann_search
from clapsearch.index.schema import IndexConfig
from indexer.writer import IndexWriter

HNSW_MAX = 300_000
EF_CONSTRUCTION = 200
EF_GRID = (16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
NPROBE_GRID = (4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 512)
N_PROBES = 200
ROUTE_ALPHAS = (0.35, 0.5, 0.2)  # IVF gap routing: q' = normalize((1 - a) q + a mu); 0 = off
# IVF-PQ: windows re-ranked exactly per query (`params["rerank"]`); the first is what the
# per-file ranking's first pass re-ranks anyway (4 x its 40 windows)
RERANK_GRID = (160, 320, 640, 1280, 2560)
# what one re-ranked window costs, in scanned PQ codes: a row read from the database and a
# 512-d dot product, 4.6-5.7 us of CPU, against 87-110 ns a 64-byte code scanned (1 thread,
# this machine loaded)
RERANK_COST = 50
PROBE_TEXTS = (
    "a dog barking",
    "rain falling on a roof",
    "a car engine starting",
    "birds singing",
    "people talking in a crowd",
    "a siren in the distance",
    "footsteps on gravel",
    "a door slamming",
    "thunder",
    "a baby crying",
    "music with drums and guitar",
    "water running from a tap",
    "wind blowing",
    "a cat meowing",
    "an airplane flying overhead",
    "typing on a keyboard",
    "a church bell ringing",
    "glass breaking",
    "a clock ticking",
    "a helicopter",
    "someone coughing",
    "waves crashing on a beach",
    "a train passing",
    "frogs croaking at night",
    "a crackling fire",
    "applause",
    "a phone ringing",
    "a vacuum cleaner",
    "chainsaw cutting wood",
    "laughter",
    "a rooster crowing",
    "snoring",
)


@dataclass(frozen=True)
class AnnReport:
    index_type: str
    ntotal: int
    recall_at_10: float | None
    params: dict
    build_s: float


def choose_type(n: int, config: IndexConfig) -> str:
    if n <= config.exact_threshold:
        return "flat"
    kind = config.ann if config.ann in ("hnsw", "ivf") else ("hnsw" if n <= HNSW_MAX else "ivf")
    if kind == "hnsw":
        return "hnsw32"
    nlist = 2 ** int(round(math.log2(max(64.0, 4 * math.sqrt(n)))))
    return f"ivf{nlist}"


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def vector_mean(vecs: np.ndarray) -> np.ndarray:
    """`(dim,)` unit mean of `(n, dim)` vectors: the axis of the audio cone."""
    return _unit(vecs.mean(0, dtype=np.float64))


def text_like_probes(vecs: np.ndarray, n: int, text_vectors: np.ndarray | None, seed: int = 0):
    """`(n', dim)` float32 unit queries, text-like only (module doc): the given text embeddings
    `(t, dim)`, n/2 mixes of two of them (when t >= 2) and the rest synthetic. No stored vector
    is used as a query, shifted or not."""
    rng = np.random.default_rng(seed)
    dim = vecs.shape[1]
    mu = vector_mean(vecs)
    texts = None if text_vectors is None else _unit(np.asarray(text_vectors, np.float32))
    parts = [] if texts is None else [texts]
    if texts is not None and len(texts) >= 2:
        m_text = vector_mean(texts)
        a = rng.random((n // 2, 1)).astype(np.float32)
        i, j = rng.integers(len(texts), size=(2, n // 2))
        parts.append(_unit(a * texts[i] + (1 - a) * texts[j]))
        n -= n // 2
    else:
        m_text = rng.standard_normal(dim).astype(np.float32)
        m_text = _unit(m_text - (m_text @ mu) * mu)
    # a meaning mixes the off-axis directions of 3 stored vectors (not one vector's own
    # neighbourhood, which routing towards the cone axis would find too easily)
    picks = vecs[rng.integers(len(vecs), size=(n, 3))]
    off = _unit(picks - (picks @ mu)[..., None] * mu)
    weights = rng.dirichlet(np.ones(3), size=n).astype(np.float32)
    meaning = _unit(np.einsum("nk,nkd->nd", weights, off))
    noise = _unit(rng.standard_normal((n, dim)).astype(np.float32))
    parts.append(_unit(m_text + 0.7 * meaning + 0.7 * noise))
    return np.concatenate(parts)


# k-means training sample per IVF list: faiss asks for 39-256. 64 keeps IVF4096 at 1M vectors
# trainable on a 2-core CPU (256 a list = all 1M points did not finish in a benchmark run);
# coarse centroids only route queries, and nprobe is tuned for recall afterwards.
KMEANS_POINTS_PER_LIST = 64


def _build(kind: str, ids: np.ndarray, vecs: np.ndarray):
    import faiss

    dim = vecs.shape[1]
    if kind == "flat":
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    elif kind.startswith("hnsw"):
        index = faiss.index_factory(dim, "IDMap2,HNSW32,Flat", faiss.METRIC_INNER_PRODUCT)
        faiss.downcast_index(index.index).hnsw.efConstruction = EF_CONSTRUCTION
    else:
        nlist = int(kind[3:])
        index = faiss.index_factory(dim, f"IDMap2,IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        if faiss.get_num_gpus() > 0:
            ivf.clustering_index = faiss.index_cpu_to_all_gpus(faiss.IndexFlatIP(dim))
        rng = np.random.default_rng(0)
        size = min(len(vecs), KMEANS_POINTS_PER_LIST * nlist)
        sample = vecs[rng.choice(len(vecs), size=size, replace=False)]
        index.train(sample)
        ivf.clustering_index = None
    index.add_with_ids(vecs, ids)
    return index


def _recall(got, truth) -> float:
    """Mean share of each truth list found in the matching got list."""
    return float(
        np.mean([len(set(g) & set(t)) / max(len(t), 1) for g, t in zip(got, truth, strict=True)])
    )


def _memory_fetch(ids: np.ndarray, vecs: np.ndarray):
    """`fetch` for `ann_search` over vectors held in memory (`ids` sorted)."""

    def fetch(want: np.ndarray):
        return want, vecs[np.searchsorted(ids, want)]

    return fetch


TRUTH_WINDOWS = 256  # exact windows per probe from which its true top-10 files are read


def top_files(window_ids: np.ndarray, ids: np.ndarray, file_of: np.ndarray, k: int = 10):
    """Per row of `window_ids` `(P, K)` (best first, -1 empty): its first k distinct files
    (`file_of[i]` is the file of segment `ids[i]`, `ids` sorted)."""
    out = []
    for row in window_ids:
        row = row[row >= 0]
        files = file_of[np.searchsorted(ids, row)]
        _, first = np.unique(files, return_index=True)
        out.append(files[np.sort(first)][:k].tolist())
    return out


@dataclass(frozen=True)
class _Seg:
    id: int
    file_id: int
    path: str
    start_s: float = 0.0
    end_s: float = 0.0


class _ProbeSource:
    """What `clapsearch.index.ranking.rank` reads (`SegmentSource`) for a cache under tuning:
    `ann_search` (with its per-query memo, as `IndexReader` searches) and each segment's
    file. So the tuner measures the per-file ranking `query` returns, over-fetch included."""

    def __init__(self, header, index, fetch, ids, file_of):
        self.header, self.index, self.fetch = header, index, fetch
        self.ids, self.file_of, self.memo = ids, file_of, {}

    def search(self, queries, k, allowed_ids=None):
        return ann_search(self.header, self.index, queries, k, fetch=self.fetch, memo=self.memo)

    def segments(self, seg_ids):
        seg_ids = np.asarray(list(seg_ids), dtype=np.int64)
        files = self.file_of[np.searchsorted(self.ids, seg_ids)]
        return {int(s): _Seg(int(s), int(f), str(int(f))) for s, f in zip(seg_ids, files)}


def _probe(header: AnnHeader, index, probes, fetch, ids, file_of) -> tuple[list, list, float]:
    """Each probe's top-10 files as `query` ranks them (best window per file, over-fetch until
    10 files) and its top-10 windows (`query --segments`), both through `ann_search`; and the
    distances computed per query."""
    import faiss

    from clapsearch.index.ranking import rank

    faiss.cvar.indexIVF_stats.reset()
    faiss.cvar.hnsw_stats.reset()
    source = _ProbeSource(header, index, fetch, ids, file_of)
    files, windows = [], []
    for lo in range(0, len(probes), 64):  # batched: the same results, less Python per probe
        q = probes[lo : lo + 64]
        files += [[int(h.path) for h in hits] for hits in rank(source, q, 10, limit=len(ids))]
        windows += ann_search(header, index, q, 10, fetch=fetch)[1].tolist()
    ndis = faiss.cvar.indexIVF_stats.ndis + faiss.cvar.hnsw_stats.ndis
    if "rerank" in header.params:  # IVF-PQ: the pool is tuned, so it is costed
        pool = RERANK_COST * max(RERANK_MIN, 160, int(header.params["rerank"]))
    else:  # a fixed pool: the same for every setting of one cache
        pool = 4 * max(RERANK_MIN, 160) if header.params.get("route_alpha") else 0
    return files, windows, ndis / len(probes) + pool


def _nlist(kind: str) -> int:
    """Lists of an "ivf<nlist>" or "ivfpq<nlist>x<m>" kind."""
    return int(kind.removeprefix("ivfpq").removeprefix("ivf").split("x")[0])


def _tune(kind: str, index, header: AnnHeader, probes, truth, fetch, ids, file_of, target):
    """The cheapest search setting whose recall@10 on `probes` reaches `target` for FILES
    (the per-file ranking `query` returns) and for windows (`query --segments`); `truth` =
    (each probe's true top-10 files, its true top-10 windows). Returns `(params, file
    recall)` (the best setting when none reaches it), the window recall in
    `params["segment_recall"]`. Cost = distances computed per query.
    IVF-PQ is always routed and re-ranked: its own scores are PQ approximations, so its
    re-rank pool (`params["rerank"]`, `RERANK_GRID`) is tuned with nprobe; a pool costs
    `RERANK_COST` scanned codes a window."""
    if kind == "flat":
        return {}, None
    key, grid = ("efSearch", EF_GRID) if kind.startswith("hnsw") else ("nprobe", NPROBE_GRID)
    alphas: tuple[float, ...] = (0.0,)
    reranks: tuple[int | None, ...] = (None,)
    if key == "nprobe":
        grid = tuple(g for g in grid if g <= _nlist(kind)) or (_nlist(kind),)
        alphas = ROUTE_ALPHAS if kind.startswith("ivfpq") else (*ROUTE_ALPHAS, 0.0)
    if kind.startswith("ivfpq"):
        reranks = RERANK_GRID
    best: tuple[float, dict, float] | None = None  # (cost, params, file recall)
    fallback: tuple[float, dict, float] = (-1.0, {}, 0.0)  # (min recall, params, file recall)
    for alpha, rerank in ((a, r) for a in alphas for r in reranks):
        last = -1.0
        for step, value in enumerate(grid):
            params = {key: value, **({"route_alpha": alpha} if alpha else {})}
            if rerank is not None:
                params["rerank"] = rerank
            files, windows, cost = _probe(
                replace(header, params=params), index, probes, fetch, ids, file_of
            )
            file_recall, seg_recall = _recall(files, truth[0]), _recall(windows, truth[1])
            recall = min(file_recall, seg_recall)
            params = {**params, "segment_recall": round(seg_recall, 4)}
            if recall > fallback[0]:
                fallback = (recall, params, file_recall)
            if best is not None and cost >= best[0]:
                break  # costs grow with the knob: this alpha cannot beat the best any more
            if recall >= target:
                best = (cost, params, file_recall)
                break
            if alpha and step >= 2 and recall < last + 0.002:
                break  # routed recall is bounded by the re-rank pool: more lists do not help
            last = recall
    if best is None:
        return fallback[1], fallback[2]
    return best[1], best[2]


def tune_ondisk(store: IndexWriter, header: AnnHeader, index, text_vectors=None):
    """`(params, file recall@10)` for an on-disk IVF-PQ cache: probes built from a sample of
    the stored vectors, their exact top windows by streaming every vector once, candidates
    re-ranked from the database (as queries run)."""
    from clapsearch.index.vectors import exact_topk, topk_merge

    ids, file_of = store.segment_files()
    rng = np.random.default_rng(0)
    _, sample = store.vectors_for(rng.choice(ids, size=min(len(ids), 65536), replace=False))
    probes = text_like_probes(sample, N_PROBES, text_vectors)
    best = exact_topk(probes, sample[:0], ids[:0], TRUTH_WINDOWS)
    for chunk_ids, vecs in store.iter_vectors(chunk=100_000):
        best = topk_merge([best, exact_topk(probes, vecs, chunk_ids, TRUTH_WINDOWS)], TRUTH_WINDOWS)
    truth = (top_files(best[1], ids, file_of), best[1][:, :10])
    target = store.meta.config.target_recall
    return _tune(
        header.index_type, index, header, probes, truth, store.vectors_for, ids, file_of, target
    )


UPDATE_MAX_FRACTION = 0.1  # ANN caches take in-place updates up to this share of changes


def update_ann(store: IndexWriter, cache: AnnCache) -> AnnReport | None:
    """Bring a valid cache up to the database's generation in place (remove the ids deleted
    since, add the ones added since), or return None when a full rebuild is due: the size
    class changed (`choose_type`), HNSW lost vectors (it cannot remove), or an ANN cache saw
    more than `UPDATE_MAX_FRACTION` of changes (its tuned knob and recall would go stale; a
    small update keeps the last measured recall)."""
    import faiss

    t0 = time.perf_counter()
    gen, dead, fresh_ids, fresh_vecs = store.changes_since(cache.ids)
    kind = cache.header.index_type
    n = len(cache.ids) - len(dead) + len(fresh_ids)
    if choose_type(n, store.meta.config) != kind:
        return None
    if kind != "flat" and len(dead) + len(fresh_ids) > UPDATE_MAX_FRACTION * max(n, 1):
        return None
    if len(dead) and kind.startswith("hnsw"):
        return None
    index = cache.index
    if len(dead):
        index.remove_ids(faiss.IDSelectorBatch(dead))
    if len(fresh_ids):
        index.add_with_ids(fresh_vecs, fresh_ids)
    header = replace(cache.header, generation=gen, ntotal=int(index.ntotal))
    store.write_cache(header, index)
    return AnnReport(
        kind, int(index.ntotal), header.recall_at_10, dict(header.params), time.perf_counter() - t0
    )


def build_ann(
    store: IndexWriter, text_vectors: np.ndarray | None = None, kind: str | None = None
) -> AnnReport:
    """Rebuild `ann.faiss` from one snapshot of the database and record its type and recall.

    `text_vectors` `(t, dim)`: the index model's embeddings of `PROBE_TEXTS` (text-like probes
    and the text-cone direction). `kind` overrides `choose_type` (e.g. "ivf1024").
    """
    t0 = time.perf_counter()
    gen, ids, vecs = store.all_vectors()
    meta = store.meta
    kind = kind or choose_type(len(ids), meta.config)
    index = _build(kind, ids, vecs)
    header = AnnHeader(
        db_uuid=meta.db_uuid,
        generation=gen,
        model=meta.model,
        dim=meta.dim,
        index_type=kind,
        ntotal=int(index.ntotal),
    )
    recall = None
    if kind != "flat":
        from clapsearch.index.vectors import exact_topk

        probes = text_like_probes(vecs, N_PROBES, text_vectors)
        file_of = store.file_ids_of(ids)
        windows = np.concatenate(
            [
                exact_topk(probes[i : i + 32], vecs, ids, TRUTH_WINDOWS)[1]
                for i in range(0, len(probes), 32)
            ]
        )
        truth = (top_files(windows, ids, file_of), windows[:, :10])
        if kind.startswith("ivf"):  # the routing axis (HNSW is tuned plainly)
            header = replace(header, route_mean=[float(x) for x in vector_mean(vecs)])
        fetch = _memory_fetch(ids, vecs)
        target = meta.config.target_recall
        params, recall = _tune(kind, index, header, probes, truth, fetch, ids, file_of, target)
        header = replace(header, params=params, recall_at_10=recall)
    store.write_cache(header, index)
    return AnnReport(kind, int(index.ntotal), recall, dict(header.params), time.perf_counter() - t0)


__all__ = [
    "AnnReport",
    "PROBE_TEXTS",
    "build_ann",
    "choose_type",
    "text_like_probes",
    "tune_ondisk",
    "update_ann",
    "vector_mean",
]
