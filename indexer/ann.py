"""Build the FAISS cache from the database vectors; the type follows the data size.

- n <= `IndexConfig.exact_threshold`: `IDMap2,Flat` (exact inner product; recall 1).
- above: `IDMap2,HNSW32,Flat` (efConstruction 200) up to `HNSW_MAX`, `IDMap2,IVF{nlist},Flat`
  beyond (nlist ~ 4 sqrt(n), power of two, trained on <= 256 points per list), both via
  `faiss.index_factory` with inner product. `IndexConfig.ann` may force "hnsw" or "ivf".
- the search knob (efSearch / nprobe) is raised until recall@10 vs exact reaches
  `target_recall` on held-out text-like queries (`probe_queries`); the knob and the recall
  are stored in the cache header and the recall in `index_meta`.

Text-like queries: text embeddings sit away from the audio cone, and audio vectors used as
queries find themselves and their neighbours easily, overstating recall. The probes are the
indexer's own text embeddings (`PROBE_TEXTS` through the index's model) plus held-out vectors
pushed halfway towards a random "text mean" with noise.

GPU: when `faiss.get_num_gpus() > 0` the IVF k-means runs on the GPUs; the cache is always
stored as a CPU index.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from clapsearch.annfile import AnnCache, AnnHeader, search_params, write_ann
from clapsearch.paths import ann_path
from clapsearch.store import IndexStore
from clapsearch.store_schema import IndexConfig

HNSW_MAX = 300_000
EF_CONSTRUCTION = 200
EF_GRID = (16, 32, 48, 64, 96, 128, 192, 256, 384, 512)
NPROBE_GRID = (4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 512)
N_PROBES = 200
PROBE_TEXTS = (
    "a dog barking", "rain falling on a roof", "a car engine starting", "birds singing",
    "people talking in a crowd", "a siren in the distance", "footsteps on gravel",
    "a door slamming", "thunder", "a baby crying", "music with drums and guitar",
    "water running from a tap", "wind blowing", "a cat meowing", "an airplane flying overhead",
    "typing on a keyboard", "a church bell ringing", "glass breaking", "a clock ticking",
    "a helicopter", "someone coughing", "waves crashing on a beach", "a train passing",
    "frogs croaking at night", "a crackling fire", "applause", "a phone ringing",
    "a vacuum cleaner", "chainsaw cutting wood", "laughter", "a rooster crowing", "snoring",
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


def text_like_probes(vecs: np.ndarray, n: int, text_vectors: np.ndarray | None, seed: int = 0):
    """`(n', dim)` float32 unit queries: given text embeddings + shifted held-out vectors."""
    rng = np.random.default_rng(seed)
    dim = vecs.shape[1]
    base = vecs[rng.choice(len(vecs), size=min(n, len(vecs)), replace=False)]
    shift = rng.standard_normal(dim).astype(np.float32)
    shift /= np.linalg.norm(shift)
    noise = rng.standard_normal(base.shape).astype(np.float32) / math.sqrt(dim)
    q = 0.5 * base + 0.5 * shift + 0.3 * noise
    if text_vectors is not None and len(text_vectors):
        q = np.concatenate([np.asarray(text_vectors, np.float32), q])
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


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
        sample = vecs[rng.choice(len(vecs), size=min(len(vecs), 256 * nlist), replace=False)]
        index.train(sample)
        ivf.clustering_index = None
    index.add_with_ids(vecs, ids)
    return index


def _tune(kind: str, index, header_base: dict, probes, truth_ids, target: float):
    """Smallest knob value whose recall@10 reaches `target` (the largest tried otherwise)."""
    if kind == "flat":
        return {}, None
    key, grid = ("efSearch", EF_GRID) if kind.startswith("hnsw") else ("nprobe", NPROBE_GRID)
    if key == "nprobe":
        grid = tuple(g for g in grid if g <= int(kind[3:])) or (int(kind[3:]),)
    recall = 0.0
    for value in grid:
        header = AnnHeader(**header_base, params={key: value})
        _, got = index.search(probes, 10, params=search_params(header, None, 10))
        recall = float(np.mean([len(set(g) & set(t)) / 10 for g, t in zip(got, truth_ids, strict=True)]))
        if recall >= target:
            break
    return {key: value}, recall


UPDATE_MAX_FRACTION = 0.1  # ANN caches take in-place updates up to this share of changes


def update_ann(store: IndexStore, cache: AnnCache) -> AnnReport | None:
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
    write_ann(ann_path(store.index_dir), header, index)
    return AnnReport(kind, int(index.ntotal), header.recall_at_10, dict(header.params),
                     time.perf_counter() - t0)


def build_ann(store: IndexStore, text_vectors: np.ndarray | None = None) -> AnnReport:
    """Rebuild `ann.faiss` from one snapshot of the database and record its type and recall."""
    t0 = time.perf_counter()
    gen, ids, vecs = store.all_vectors()
    meta = store.meta
    kind = choose_type(len(ids), meta.config)
    index = _build(kind, ids, vecs)
    base = dict(db_uuid=meta.db_uuid, generation=gen, model=meta.model, dim=meta.dim,
                index_type=kind, ntotal=int(index.ntotal))
    params, recall = {}, None
    if kind != "flat":
        from clapsearch.store import exact_topk

        probes = text_like_probes(vecs, N_PROBES, text_vectors)
        truth = np.concatenate([exact_topk(probes[i : i + 32], vecs, ids, 10)[1]
                                for i in range(0, len(probes), 32)])
        params, recall = _tune(kind, index, base, probes, truth, meta.config.target_recall)
    header = AnnHeader(**base, recall_at_10=recall, params=params)
    write_ann(ann_path(store.index_dir), header, index)
    store.set_ann_info(kind, recall)
    return AnnReport(kind, int(index.ntotal), recall, params, time.perf_counter() - t0)


__all__ = ["AnnReport", "PROBE_TEXTS", "build_ann", "choose_type", "text_like_probes",
           "update_ann"]
