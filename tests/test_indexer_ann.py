"""ANN cache: the type follows the size, recall@10 vs exact is measured on text-like probes
and reaches the target, and searches through HNSW/IVF caches honour allowed_ids."""

from __future__ import annotations

import numpy as np
import pytest

from clapsearch.annfile import read_ann, read_header
from clapsearch.store import IndexStore, exact_topk
from clapsearch.store_schema import FileRecord, IndexConfig
from indexer.ann import build_ann, choose_type, text_like_probes, update_ann

DIM = 32


def _clustered(n, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((40, DIM))
    x = centers[rng.integers(0, 40, n)] + 0.6 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _store(tmp_path, kind, n=4000):
    config = IndexConfig(exact_threshold=1000, ann=kind)
    store = IndexStore.create(tmp_path / kind, "m", DIM, config)
    vecs = _clustered(n)
    per = 50
    for i in range(0, n, per):
        rec = FileRecord(f"/lib/{'a' if i % 200 == 0 else 'b'}/{i}.wav", 1, 1, str(i), 5.0,
                         48000, 1)
        store.add_file(rec, [(float(j), float(j) + 1) for j in range(per)], vecs[i : i + per])
    return store


def test_choose_type_follows_size():
    cfg = IndexConfig()
    assert choose_type(10, cfg) == "flat" and choose_type(50_000, cfg) == "flat"
    assert choose_type(100_000, cfg) == "hnsw32"
    assert choose_type(1_000_000, cfg) == "ivf4096"


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_ann_recall_and_filtered_search(tmp_path, kind):
    store = _store(tmp_path, kind)
    report = build_ann(store)
    assert report.index_type.startswith(kind) and report.ntotal == 4000
    assert report.recall_at_10 >= 0.95
    header = read_header(store.index_dir / "ann.faiss")
    assert header.params and header.generation == store.refresh_meta().generation
    assert store.status().recall_at_10 == pytest.approx(report.recall_at_10)

    _, ids, vecs = store.all_vectors()
    q = text_like_probes(vecs, 50, None, seed=7)
    _, got = store.search(q, 10)
    _, want = exact_topk(q, vecs, ids, 10)
    recall = np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want, strict=True)])
    assert recall >= 0.9

    allowed = store.segment_ids_where(path_prefix="/lib/a")
    assert 4096 >= len(allowed) > 0
    import clapsearch.store as st

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
    store.add_file(FileRecord("/lib/new.wav", 1, 1, "n", 5.0, 48000, 1),
                   [(float(j), j + 1.0) for j in range(50)], extra)
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
