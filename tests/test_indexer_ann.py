"""ANN cache: the type follows the size; recall@10 vs exact, measured on text-like probes only,
reaches the target on data with a CLAP-like modality gap (audio and text in different cones);
IVF routes across the gap and re-ranks exactly; searches honour allowed_ids and stale caches."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from clapsearch.identity import ModelIdentity
from clapsearch.index.ann_cache import read_ann, read_header
from clapsearch.index.ann_search import RERANK_MIN, ann_search
from clapsearch.index.schema import FileRecord, IndexConfig
from clapsearch.index.vectors import exact_topk
from indexer.ann import build_ann, choose_type, text_like_probes, update_ann
from indexer.writer import IndexWriter

DIM = 32
MODEL = ModelIdentity(kind="test", name="", label="m", dim=DIM)


def _clustered(n, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((40, DIM))
    x = centers[rng.integers(0, 40, n)] + 0.6 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


class _Gap:
    """Synthetic CLAP-like space (as in benchmarks/bench_query.py, smaller): a meaning mixes
    3 of 256 atoms; audio windows `normalize(m_audio + meaning + 0.7 file + 0.4 window)`, text
    `normalize(m_text + meaning + 0.7 noise)`: text queries sit away from the audio cone."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.atoms = _unit(rng.standard_normal((256, DIM)))
        self.m_audio, self.m_text = _unit(rng.standard_normal((2, DIM)))

    def _meanings(self, rng, n):
        w = rng.dirichlet(np.ones(3), size=n)
        return _unit(np.einsum("nk,nkd->nd", w, self.atoms[rng.integers(256, size=(n, 3))]))

    def audio(self, n, per, seed=0):
        rng = np.random.default_rng(seed)
        files = (
            self.m_audio
            + self._meanings(rng, n // per)
            + 0.7 * _unit(rng.standard_normal((n // per, DIM)))
        )
        return _unit(np.repeat(files, per, axis=0) + 0.4 * _unit(rng.standard_normal((n, DIM))))

    def text(self, n, seed):
        rng = np.random.default_rng(seed)
        noise = _unit(rng.standard_normal((n, DIM)))
        return _unit(self.m_text + self._meanings(rng, n) + 0.7 * noise)


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _add(store, vecs, per, prefix="/lib"):
    for i in range(0, len(vecs), per):
        rec = FileRecord(
            f"{prefix}/{'a' if i % (10 * per) == 0 else 'b'}/{i}.wav", 1, 1, str(i), 5.0, 48000, 1
        )
        store.add_file(rec, [(float(j), float(j) + 1) for j in range(per)], vecs[i : i + per])


def _recall(got, want):
    return np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want, strict=True)])


def _exact_scores(q, ids, vecs, got):
    """Cosine of each query with each returned id's stored vector (`-inf` for empty slots)."""
    pos = np.searchsorted(ids, np.maximum(got, 0))
    return np.where(got >= 0, np.einsum("qd,qkd->qk", q, vecs[pos]), -np.inf)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_recall_on_text_queries_across_the_gap(tmp_path, kind):
    gap = _Gap()
    store = IndexWriter.create(tmp_path / kind, MODEL, IndexConfig(exact_threshold=1000, ann=kind))
    _add(store, gap.audio(4000, 20), 20)
    report = build_ann(store, gap.text(32, seed=1))  # the model's prompt embeddings
    assert report.index_type.startswith(kind) and report.recall_at_10 >= 0.95
    assert store.status().recall_at_10 == pytest.approx(report.recall_at_10)
    header = read_header(store.index_dir / "ann.faiss")
    assert header.recall_at_10 == report.recall_at_10 and header.params == report.params

    # held-out text queries from the same cone: close to the tuned recall, exact scores
    _, ids, vecs = store.all_vectors()
    q = gap.text(100, seed=2)
    scores, got = store.search(q, 10)
    _, want = exact_topk(q, vecs, ids, 10)
    assert _recall(got, want) >= 0.9
    np.testing.assert_allclose(scores, _exact_scores(q, ids, vecs, got), atol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()
    # the tuner targets the per-file ranking `query` shows too (a file = its best window)
    assert report.params["segment_recall"] >= 0.95
    from clapsearch.index.ranking import rank

    files = [[h.path for h in hits] for hits in rank(store, q, 10)]
    recs = store.segments(ids)
    path_of = np.array([recs[i].path for i in ids])
    best = {}
    for row in q @ vecs.T:
        order = np.argsort(-row, kind="stable")
        best.setdefault("rows", []).append(list(dict.fromkeys(path_of[order[:400]]))[:10])
    assert _recall(files, best["rows"]) >= 0.9
    store.close()


def test_ivf_routing_reranks_the_pool_exactly(tmp_path):
    """A routed IVF search = the exact top-k (original query) of the candidates its moved
    query finds, with exact cosine scores."""
    import faiss

    gap = _Gap()
    store = IndexWriter.create(tmp_path / "r", MODEL, IndexConfig(exact_threshold=1000, ann="ivf"))
    _add(store, gap.audio(3000, 20), 20)
    build_ann(store, gap.text(32, seed=1))
    path = store.index_dir / "ann.faiss"
    cache = read_ann(path)
    assert cache.header.route_mean is not None
    h = replace(cache.header, params={"nprobe": 8, "route_alpha": 0.35})  # routing forced
    h = store.write_cache(h, cache.index)  # written and recorded, as the indexer does
    _, ids, vecs = store.all_vectors()
    q = gap.text(50, seed=3)
    scores, got = store.search(q, 10)

    mu = np.asarray(h.route_mean, np.float32)
    moved = _unit(0.65 * q + 0.35 * mu)
    _, cand = cache.index.search(moved, RERANK_MIN, params=faiss.SearchParametersIVF(nprobe=8))
    for i in range(len(q)):
        c = np.sort(cand[i][cand[i] >= 0])
        s, want = exact_topk(q[i : i + 1], vecs[np.searchsorted(ids, c)], c, 10)
        np.testing.assert_array_equal(got[i], want[0])
        np.testing.assert_allclose(scores[i], s[0], atol=1e-6)
    plain = ann_search(replace(h, params={"nprobe": 8}), cache.index, q, 10)[1]
    assert not np.array_equal(plain, got)  # the routed path really ran

    # the ranking's over-fetch (same queries, larger k) reuses the memoised scan: same result
    def fetch(want):
        return want, vecs[np.searchsorted(ids, want)]

    fresh = ann_search(h, cache.index, q, 40, fetch=fetch)
    again = store.search(q, 40)
    np.testing.assert_array_equal(again[1], fresh[1])
    np.testing.assert_allclose(again[0], fresh[0], atol=1e-6)
    store.close()


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_stale_cache_with_routing_stays_exact_scored(tmp_path, kind):
    """Files added and removed after the build: removed ids never come back, added ones are
    found (searched exactly), every score is the exact cosine."""
    gap = _Gap()
    store = IndexWriter.create(tmp_path / kind, MODEL, IndexConfig(exact_threshold=1000, ann=kind))
    _add(store, gap.audio(3000, 20), 20)
    build_ann(store, gap.text(32, seed=1))
    q = gap.text(20, seed=4)
    _, before = store.search(q, 10)
    gone = store.segments(before[:, 0])
    store.remove_files(sorted({r.path for r in gone.values()}))
    _add(store, _unit(q + 0.05 * gap.audio(20, 1, seed=5)), 1, prefix="/new")  # near the queries
    assert read_header(store.index_dir / "ann.faiss").generation != store.refresh_meta().generation
    _, ids, vecs = store.all_vectors()
    scores, got = store.search(q, 10)
    assert not np.isin(got, list(gone)).any()
    new_ids = ids[-20:]
    np.testing.assert_array_equal(got[:, 0], new_ids)  # each query's own near-copy first
    np.testing.assert_allclose(scores, _exact_scores(q, ids, vecs, got), atol=1e-5)
    store.close()


def _store(tmp_path, kind, n=4000):
    config = IndexConfig(exact_threshold=1000, ann=kind)
    store = IndexWriter.create(tmp_path / kind, MODEL, config)
    vecs = _clustered(n)
    per = 50
    for i in range(0, n, per):
        rec = FileRecord(
            f"/lib/{'a' if i % 200 == 0 else 'b'}/{i}.wav", 1, 1, str(i), 5.0, 48000, 1
        )
        store.add_file(rec, [(float(j), float(j) + 1) for j in range(per)], vecs[i : i + per])
    return store


def test_choose_type_follows_size():
    cfg = IndexConfig()
    assert choose_type(10, cfg) == "flat" and choose_type(50_000, cfg) == "flat"
    assert choose_type(100_000, cfg) == "hnsw32"
    assert choose_type(1_000_000, cfg) == "ivf4096"


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_ann_recall_and_filtered_search_without_texts(tmp_path, kind):
    store = _store(tmp_path, kind)
    report = build_ann(store)
    assert report.index_type.startswith(kind) and report.ntotal == 4000
    assert report.recall_at_10 >= 0.95
    header = read_header(store.index_dir / "ann.faiss")
    assert header.params and header.generation == store.refresh_meta().generation
    assert store.status().recall_at_10 == pytest.approx(report.recall_at_10)

    _, ids, vecs = store.all_vectors()
    q = text_like_probes(vecs, 50, None, seed=0)[:50]  # the tuning probes: recall as reported
    _, got = store.search(q, 10)
    _, want = exact_topk(q, vecs, ids, 10)
    assert _recall(got, want) >= 0.9

    allowed = store.segment_ids_where(path_prefix="/lib/a")
    assert 4096 >= len(allowed) > 0
    import clapsearch.index.reader as st

    old, st.EXACT_SUBSET_MAX = st.EXACT_SUBSET_MAX, 100  # force the IDSelector path
    try:
        _, got = store.search(q, 10, allowed_ids=allowed)
    finally:
        st.EXACT_SUBSET_MAX = old
    assert np.isin(got, allowed).all()
    store.close()


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_update_in_place_then_rebuild_when_due(tmp_path, kind):
    store = _store(tmp_path, kind, n=2000)
    if kind == "flat":
        store.set_config(IndexConfig(exact_threshold=50_000))
    build_ann(store)
    path = store.index_dir / "ann.faiss"
    extra = _clustered(50, seed=3)
    store.add_file(
        FileRecord("/lib/new.wav", 1, 1, "n", 5.0, 48000, 1),
        [(float(j), j + 1.0) for j in range(50)],
        extra,
    )
    report = update_ann(store, read_ann(path))  # additions only: in place for both
    assert report is not None and report.ntotal == 2050
    cache = read_ann(path)
    _, ids, vecs = store.all_vectors()
    assert cache.header.generation == store.refresh_meta().generation
    np.testing.assert_array_equal(cache.ids, ids)
    store.remove_files(["/lib/new.wav"])
    report = update_ann(store, read_ann(path))
    if kind == "hnsw":
        assert report is None  # HNSW cannot remove: a full rebuild is due
    else:
        assert report.ntotal == 2000
        q = text_like_probes(vecs, 20, None)
        _, got = store.search(q, 10)
        _, gen_ids, all_vecs = store.all_vectors()
        np.testing.assert_array_equal(got, exact_topk(q, all_vecs, gen_ids, 10)[1])
    store.close()


def test_ivfpq_tunes_its_rerank_pool_when_pq_scores_limit_recall():
    """IVF-PQ scores are approximations: with coarse codes the true top 10 is not inside the
    smallest re-rank pool whatever nprobe is, so the tuner raises `params["rerank"]` (and
    `ann_search` re-ranks that many), and what it reports is what the pool it chose gives."""
    import faiss

    from clapsearch.index.ann_cache import AnnHeader
    from indexer.ann import (
        RERANK_GRID,
        TRUTH_WINDOWS,
        _memory_fetch,
        _probe,
        _recall,
        _tune,
        top_files,
        vector_mean,
    )

    gap = _Gap()
    vecs = gap.audio(20_000, 10)
    ids = np.arange(1, len(vecs) + 1, dtype=np.int64)
    file_of = (ids - 1) // 10
    index = faiss.index_factory(DIM, "IVF16,PQ2x8", faiss.METRIC_INNER_PRODUCT)  # 2-byte codes
    index.train(vecs)
    index.add_with_ids(vecs, ids)
    header = AnnHeader(
        db_uuid="u", generation=1, model="m", dim=DIM, index_type="ivfpq16x2",
        ntotal=len(ids), route_mean=[float(x) for x in vector_mean(vecs)],
    )  # fmt: skip
    probes = text_like_probes(vecs, 64, gap.text(32, seed=1))
    windows = exact_topk(probes, vecs, ids, TRUTH_WINDOWS)[1]
    truth = (top_files(windows, ids, file_of), windows[:, :10])
    fetch = _memory_fetch(ids, vecs)
    params, recall = _tune("ivfpq16x2", index, header, probes, truth, fetch, ids, file_of, 0.95)
    assert params["rerank"] > RERANK_GRID[0] and recall >= 0.95
    assert params["segment_recall"] >= 0.95
    # the smallest pool at the same nprobe stays short of the target: the pool did it
    small = {**params, "rerank": RERANK_GRID[0]}
    files, got, _ = _probe(replace(header, params=small), index, probes, fetch, ids, file_of)
    assert min(_recall(files, truth[0]), _recall(got, truth[1])) < 0.95
    # and ann_search re-ranks the tuned pool: the top window of each probe is exact
    _, top = ann_search(replace(header, params=params), index, probes, 10, fetch=fetch)
    assert np.mean(top[:, 0] == windows[:, 0]) >= 0.95
