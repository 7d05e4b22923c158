"""The Python query API against brute-force numpy rankings over a small real index."""

from __future__ import annotations

import shutil
from fnmatch import fnmatchcase

import numpy as np
import pytest
from conftest import CLOTHO_DIR, write_test_index

from clapsearch.errors import EmptyIndexError, IndexNotFoundError, ModelMismatchError, UsageError
from clapsearch.index.ranking import SearchFilter, SearchHit, mean_direction, rank
from clapsearch.library import Library, check_queries


def brute_force(stored, query, k, per_file=True, keep=lambda path: True):
    """Reference ranking: cosine of `query` to every stored window, best window per file."""
    rows = []
    for path, (spans, vecs) in stored.items():
        if not keep(path):
            continue
        for (start, end), score in zip(spans, vecs @ query, strict=True):
            rows.append((float(score), path, start, end))
    rows.sort(key=lambda r: -r[0])
    out, seen = [], set()
    for score, path, start, end in rows:
        if per_file and path in seen:
            continue
        seen.add(path)
        out.append((path, score, start, end))
    return out[:k]


def assert_same(hits: list[SearchHit], expected):
    assert [h.path for h in hits] == [e[0] for e in expected]
    for h, (_, score, start, end) in zip(hits, expected, strict=True):
        assert h.score == pytest.approx(score, abs=1e-4)
        assert (h.start, h.end) == pytest.approx((start, end))


@pytest.fixture()
def lib(tiny_index, words_embedder):
    with Library(tiny_index[0], embedder=words_embedder, notify=lambda m: None) as library:
        yield library


def test_text_search_equals_brute_force(lib, tiny_index, words_embedder):
    stored = tiny_index[1]
    queries = ["a dog barks in the rain", "church bells", "wind blows through the trees"]
    batched = lib.search(queries, k=7)
    vecs = words_embedder.embed_text(queries)
    assert np.abs(vecs[0] - vecs[1]).max() > 1e-2  # texts differ: the test is not vacuous
    for text, hits in zip(queries, batched, strict=True):
        q = words_embedder.embed_text([text])[0]
        assert_same(hits, brute_force(stored, q, 7))
        single = lib.search(text, k=7)  # a single query: the same ranking (batch padding
        assert [h.path for h in single] == [h.path for h in hits]  # moves floats by ~1e-7)
    assert len({h.path for h in batched[0]}) == 7  # grouped: one hit per file


def test_segments_lists_every_window(lib, tiny_index, words_embedder):
    stored = tiny_index[1]
    q = words_embedder.embed_text(["rain falls on a tin roof"])[0]
    n_windows = sum(len(s) for s, _ in stored.values())
    hits = lib.search_segments("rain falls on a tin roof", k=n_windows)
    assert len(hits) == n_windows
    assert_same(hits, brute_force(stored, q, n_windows, per_file=False))
    assert len({h.path for h in hits}) < len(hits)  # long files contribute several windows


def test_filters_return_k_when_k_match(lib, tiny_index, words_embedder):
    stored = tiny_index[1]
    text = "birds chirp in the morning"
    q = words_embedder.embed_text([text])[0]
    clotho = str(CLOTHO_DIR / "evaluation")
    # the Clotho clips are few among ESC-50 ones: a fixed top-k then filtered would miss some
    for filt, keep in [
        (SearchFilter(path_prefix=clotho), lambda p: p.startswith(clotho)),
        (
            SearchFilter(path_glob="*/clotho-mini/*.wav"),
            lambda p: fnmatchcase(p, "*/clotho-mini/*.wav"),
        ),
        (SearchFilter(min_duration_s=12.0), lambda p: stored[p][0][-1][1] >= 12.0),
    ]:
        n_match = sum(keep(p) for p in stored)
        assert 2 <= n_match < len(stored) // 3
        hits = lib.search(text, k=n_match, filters=filt)
        assert len(hits) == n_match
        assert_same(hits, brute_force(stored, q, n_match, keep=keep))
        assert len(lib.search(text, k=n_match + 5, filters=filt)) == n_match  # all there is
    hits = lib.search(text, k=5, filters=SearchFilter(max_duration_s=6.0, path_glob="*/2-*"))
    assert all(h.end <= 6.0 and "/2-" in h.path for h in hits)
    assert lib.search(text, filters=SearchFilter(path_glob="*/nothing/*")) == []
    with pytest.raises(UsageError, match="minimum duration"):
        lib.search(text, filters=SearchFilter(min_duration_s=10, max_duration_s=5))


def test_over_fetch_keeps_asking_until_k_files():
    """A store whose first windows all belong to one file: `rank` must fetch deeper."""

    class Seg:
        def __init__(self, i):
            self.id, self.file_id, self.path = i, 0 if i < 100 else i, f"f{0 if i < 100 else i}"
            self.start_s, self.end_s = float(i), float(i + 1)

    class Store:
        calls: list[int] = []

        def search(self, queries, k, allowed_ids=None):
            self.calls.append(k)
            ids = np.arange(min(k, 120))
            pad = k - len(ids)
            ids = np.pad(ids, (0, pad), constant_values=-1)[None].repeat(len(queries), 0)
            return -ids.astype(np.float32), ids

        def segments(self, ids):
            return {int(i): Seg(int(i)) for i in ids}

    store = Store()
    hits = rank(store, np.ones((1, 4), np.float32), k=5)[0]
    assert [h.path for h in hits] == ["f0", "f100", "f101", "f102", "f103"]
    assert store.calls == [32, 64, 128]  # doubled until 5 distinct files were found
    store.calls.clear()
    assert len(rank(store, np.ones((1, 4), np.float32), k=50)[0]) == 21  # exhausted: all files
    assert store.calls[-1] >= 120


def test_query_by_example_leaves_out_the_query_file(lib, tiny_index, words_embedder, tmp_path):
    from clapsearch.audio import load_audio

    stored = tiny_index[1]
    path = sorted(stored)[3]
    q = words_embedder.embed_audio([load_audio(path, words_embedder.sample_rate)])[0]
    expected = brute_force(stored, q, 5, keep=lambda p: p != path)
    hits = lib.search_audio(path, k=5)
    assert path not in [h.path for h in hits]
    assert_same(hits, expected)
    copy = tmp_path / "renamed copy.flac"  # same bytes elsewhere: still the query file
    shutil.copy(path, copy)
    assert_same(lib.search_audio(copy, k=5), expected)


def test_similar_to_uses_stored_vectors(tiny_index):
    stored = tiny_index[1]
    path = max(stored, key=lambda p: len(stored[p][0]))  # a long file: several windows
    with Library(tiny_index[0], model="/nonexistent/never/loaded") as lib:
        hits = lib.similar_to(path, k=6)
        q = mean_direction(stored[path][1])
        assert_same(hits, brute_force(stored, q, 6, keep=lambda p: p != path))
        with pytest.raises(UsageError, match="not in the index"):
            lib.similar_to("/no/such/file.wav")


def test_errors(tmp_path, words_embedder, tiny_clap_fusion_dir, tiny_index):
    with pytest.raises(IndexNotFoundError):
        Library(tmp_path / "none", embedder=words_embedder).search("dog")
    empty = tmp_path / "empty"
    write_test_index(empty, words_embedder, [])
    with pytest.raises(EmptyIndexError, match="is empty"):
        Library(empty, embedder=words_embedder).search("dog")
    with Library(tiny_index[0], model=str(tiny_clap_fusion_dir), device="cpu") as lib:
        with pytest.raises(ModelMismatchError) as err:
            lib.search("dog")
        assert words_embedder.identity in str(err.value) and "tiny_clap_fusion" in str(err.value)


def test_query_text_checks(words_embedder):
    notes = []
    assert check_queries([" dog  "], words_embedder, notes.append) == ["dog"]
    assert notes == []
    with pytest.raises(UsageError, match="empty"):
        check_queries(["   "])
    with pytest.raises(UsageError, match="empty"):
        check_queries([])
    with pytest.raises(UsageError, match="UTF-8"):
        check_queries(["caf\udce9"])  # what undecodable argv bytes become
    long = " ".join(["rain on a tin roof"] * 40)
    check_queries(["dog", long], words_embedder, notes.append)
    limit = words_embedder.max_text_tokens
    assert len(notes) == 1 and "query 2" in notes[0] and f"first {limit}" in notes[0]


def test_loads_the_model_the_index_records(tiny_index, words_embedder):
    with Library(tiny_index[0], device="cpu", precision="fp32") as lib:
        hits = lib.search("a cat meows", k=3)
        assert lib.embedder.identity == words_embedder.identity
    with Library(tiny_index[0], embedder=words_embedder) as lib:
        assert [h.path for h in lib.search("a cat meows", k=3)] == [h.path for h in hits]


def test_starved_filtered_ann_search_is_redone_exactly(
    lib, tiny_index, words_embedder, monkeypatch
):
    """An id-selector ANN search that returns too few windows must not shorten the results."""
    import clapsearch.index.reader as store_module

    monkeypatch.setattr(store_module, "EXACT_SUBSET_MAX", 3)
    real = lib.store

    class Starving:  # what HNSW/IVF with a selective IDSelector can do: one window, then -1
        def search(self, queries, k, allowed_ids=None):
            scores, ids = real.search(queries, k, allowed_ids=allowed_ids)
            if allowed_ids is not None and len(allowed_ids) > 3:
                ids = ids.copy()
                ids[:, 1:] = -1
            return scores, ids

        def __getattr__(self, name):
            return getattr(real, name)

    lib._store = Starving()
    stored = tiny_index[1]
    clotho = str(CLOTHO_DIR / "evaluation")
    n_match = sum(p.startswith(clotho) for p in stored)
    hits = lib.search(
        "water flows in a stream", k=n_match, filters=SearchFilter(path_prefix=clotho)
    )
    q = words_embedder.embed_text(["water flows in a stream"])[0]
    assert_same(hits, brute_force(stored, q, n_match, keep=lambda p: p.startswith(clotho)))


def test_concurrent_searches_equal_sequential_ones(tmp_path, tiny_index, words_embedder):
    """One Library shared by 8 threads (a server's workers): text, filtered, per-window and
    stored-vector searches, through an ANN cache, give the sequential answers: the same files
    and windows in the same order, scores equal to float rounding (a text forward on another
    thread may round its last bit differently: ~1e-7 measured)."""
    from concurrent.futures import ThreadPoolExecutor

    from indexer.ann import build_ann
    from indexer.writer import IndexWriter

    folder = tmp_path / "idx"
    shutil.copytree(tiny_index[0], folder)
    with IndexWriter.open(folder) as writer:
        build_ann(writer)  # searches go through the FAISS cache
    some_file = sorted(tiny_index[1])[0]
    calls = [
        lambda lib: lib.search("a dog barks in the rain", k=5),
        lambda lib: lib.search("church bells ringing", k=3),
        lambda lib: lib.search_segments("wind in the trees", k=6),
        lambda lib: lib.search("rain", k=4, filters=SearchFilter(path_glob=f"{CLOTHO_DIR}/*")),
        lambda lib: lib.similar_to(some_file, k=4),
        lambda lib: lib.search(["birds", "a siren"], k=2),
    ] * 4
    with Library(folder, embedder=words_embedder, notify=lambda m: None) as lib:
        expected = [call(lib) for call in calls]
        with ThreadPoolExecutor(8) as pool:
            for _ in range(3):
                got = list(pool.map(lambda call: call(lib), calls))
                for hits, want in zip(got, expected, strict=True):
                    _assert_same_hits(hits, want)
    assert any(len(hits) > 1 for hits in expected)  # not vacuous: real rankings compared


def _assert_same_hits(hits, want):
    if want and isinstance(want[0], list):  # a batch of queries
        for h, w in zip(hits, want, strict=True):
            _assert_same_hits(h, w)
        return
    assert [(h.path, h.start, h.end) for h in hits] == [(w.path, w.start, w.end) for w in want]
    assert [h.score for h in hits] == pytest.approx([w.score for w in want], abs=1e-6)


def test_threads_are_set_once_not_per_query(tiny_index, words_embedder, monkeypatch):
    import clapsearch.threads

    calls = []
    real = clapsearch.threads.set_compute_threads
    monkeypatch.setattr(clapsearch.threads, "set_compute_threads", lambda n: calls.append(n))
    with Library(tiny_index[0], embedder=words_embedder, notify=lambda m: None) as lib:
        for _ in range(3):
            lib.search("a dog", k=2)
    assert calls and set(calls) == {1} and len(calls) <= 2  # index opened, model checked
    calls.clear()
    with Library(tiny_index[0], embedder=words_embedder, threads=None) as lib:
        lib.search("a dog", k=2)
    assert calls == []
    real(1)


def test_text_queries_load_only_the_text_side_of_a_clapsearch_checkpoint(tmp_path, tiny_native_dir):
    """A cold text query needs no audio tower (issue 12): the Library loads the text side
    alone, which the index accepts (same identity) and which ranks exactly as the full model;
    a query by sound then loads both towers (without transformers, as the text side)."""
    import torch
    from conftest import esc50_files

    from clapsearch.backends.native import NativeEmbedder
    from clapsearch.backends.native_text import NativeTextEmbedder
    from clapsearch.backends.native_torch import NativeTorchEmbedder

    # the whole training model (transformers' BertModel): what the fast paths must equal
    full = NativeEmbedder(str(tiny_native_dir), torch.device("cpu"), torch.float32)
    write_test_index(tmp_path / "idx", full, esc50_files(8))
    with Library(tmp_path / "idx", device="cpu", precision="fp32") as cold:
        got = cold.search(["a dog barks", "rain"], k=5)
        assert type(cold.text_embedder) is NativeTextEmbedder
        assert cold._embedder is None  # the audio tower was never loaded
        cold.search_audio(esc50_files(1)[0], k=2)
        assert isinstance(cold.embedder, NativeTorchEmbedder)  # both towers, no transformers
    with Library(tmp_path / "idx", embedder=full) as warm:
        want = warm.search(["a dog barks", "rain"], k=5)
    for a, b in zip(got, want, strict=True):
        assert [h.path for h in a] == [h.path for h in b]
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-5)
