"""ANN cache: the type follows the size, recall@10 vs exact is measured on text-like probes
and reaches the target, and searches through HNSW/IVF caches honour allowed_ids."""

from __future__ import annotations

import numpy as np
import pytest

from clapsearch.annfile import read_header
from clapsearch.store import IndexStore, exact_topk
from clapsearch.store_schema import FileRecord, IndexConfig
from indexer.ann import build_ann, choose_type, text_like_probes

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
