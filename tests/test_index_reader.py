"""IndexReader and IndexWriter: schema, one-transaction file writes, search against a brute-force reference,
stale-cache correction, filters and snapshots."""

from __future__ import annotations

import numpy as np
import pytest

from clapsearch.errors import IndexNotFoundError
from clapsearch.identity import ModelIdentity
from clapsearch.index.ann_cache import AnnHeader, read_header
from clapsearch.index.reader import EXACT_SUBSET_MAX, IndexReader
from clapsearch.index.schema import SCHEMA_VERSION, FileRecord, IndexConfig
from clapsearch.index.vectors import exact_topk
from indexer.writer import IndexWriter

DIM = 8
MODEL = ModelIdentity(kind="test", name="", label="model", digest="1", dim=DIM)


def _unit(rng, n, dim=DIM):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _record(path, duration=5.0, h="h"):
    return FileRecord(
        path=path,
        size=10,
        mtime_ns=1,
        content_hash=h,
        duration_s=duration,
        sample_rate=48000,
        channels=1,
    )


def _fill(store, rng, n_files=20, per_file=3):
    for i in range(n_files):
        vecs = _unit(rng, per_file)
        spans = [(j * 10.0, j * 10.0 + 10.0) for j in range(per_file)]
        store.add_file(
            _record(f"/lib/{'a' if i % 2 else 'b'}/f{i:03d}.wav", 10.0 * (i + 1)), spans, vecs
        )


def _write_flat_cache(store):
    import faiss

    gen, ids, vecs = store.all_vectors()
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(store.meta.dim))
    index.add_with_ids(vecs, ids)
    header = AnnHeader(
        store.meta.db_uuid, gen, store.meta.model, store.meta.dim, "flat", int(index.ntotal)
    )
    store.write_cache(header, index)  # written, then recorded by the database


def _reference(store, q, k, allowed=None):
    _, ids, vecs = store.all_vectors()
    if allowed is not None:
        keep = np.isin(ids, allowed)
        ids, vecs = ids[keep], vecs[keep]
    return exact_topk(q, vecs, ids, k)


@pytest.fixture()
def store(tmp_path):
    s = IndexWriter.create(tmp_path / "idx", MODEL, IndexConfig(hop_s=5.0))
    yield s
    s.close()


def test_open_missing_index_is_one_sentence(tmp_path):
    with pytest.raises(IndexNotFoundError) as err:
        IndexReader.open(tmp_path / "nothing")
    msg = str(err.value)
    assert str(tmp_path / "nothing") in msg and "clapsearch index DIR" in msg


def test_meta_roundtrip_and_readonly(store, tmp_path):
    ro = IndexReader.open(tmp_path / "idx")
    assert ro.meta.model == "test:model@1" and ro.meta.dim == DIM
    assert ro.meta.model_identity == MODEL
    assert ro.meta.config.hop_s == 5.0 and ro.meta.schema_version == SCHEMA_VERSION
    assert not hasattr(ro, "add_file")  # every write lives in indexer.writer
    with pytest.raises(Exception, match="readonly"), ro.snapshot() as conn:  # and SQLite refuses
        conn.exec_driver_sql("DELETE FROM files")
    ro.close()


def test_search_matches_bruteforce_with_and_without_cache(store):
    rng = np.random.default_rng(0)
    _fill(store, rng)
    q = _unit(rng, 5)
    # no cache: everything is "fresh" and searched exactly from the database
    s0, i0 = store.search(q, 7)
    r_s, r_i = _reference(store, q, 7)
    np.testing.assert_array_equal(i0, r_i)
    np.testing.assert_allclose(s0, r_s, rtol=1e-6)
    _write_flat_cache(store)
    store._view_cache = None
    s1, i1 = store.search(q, 7)
    np.testing.assert_array_equal(i1, r_i)
    # vectors are stored as float16: scores are cosines of the rounded vectors
    assert np.all(s1 <= 1.0 + 1e-3) and np.all(np.diff(s1, axis=1) <= 0)


def test_stale_cache_is_corrected(store, tmp_path):
    rng = np.random.default_rng(1)
    _fill(store, rng)
    _write_flat_cache(store)
    gen_cached = read_header(tmp_path / "idx" / "ann.faiss").generation
    store.remove_files(["/lib/b/f000.wav", "/lib/a/f001.wav"])
    store.add_file(_record("/lib/new.wav"), [(0.0, 10.0)], _unit(rng, 1))
    assert store.refresh_meta().generation > gen_cached
    reader = IndexReader.open(tmp_path / "idx")
    q = _unit(rng, 6)
    s, i = reader.search(q, 10)
    r_s, r_i = _reference(store, q, 10)
    np.testing.assert_array_equal(i, r_i)
    removed = set(store.segment_ids_where(path_glob="/lib/b/f000.wav"))
    assert not removed  # gone from the database ...
    assert reader.segments(i.ravel()).keys() == set(i.ravel()) - {-1}  # ... and from results
    reader.close()


def test_allowed_ids_returns_k_matches_small_and_large(store, monkeypatch):
    rng = np.random.default_rng(2)
    _fill(store, rng, n_files=40, per_file=5)
    _write_flat_cache(store)
    q = _unit(rng, 3)
    allowed = store.segment_ids_where(path_glob="*/a/*")
    assert len(allowed) == 20 * 5
    for limit in (EXACT_SUBSET_MAX, 10):  # exact path, then the IDSelector path
        monkeypatch.setattr("clapsearch.index.reader.EXACT_SUBSET_MAX", limit)
        store._view_cache = None
        s, i = store.search(q, 15, allowed_ids=allowed)
        assert np.isin(i, allowed).all() and (i >= 0).all()
        np.testing.assert_array_equal(i, _reference(store, q, 15, allowed)[1])


def test_fewer_than_k_pads_with_minus_one(store):
    rng = np.random.default_rng(3)
    store.add_file(_record("/one.wav"), [(0.0, 1.0), (1.0, 2.0)], _unit(rng, 2))
    s, i = store.search(_unit(rng, 2), 5)
    assert (i[:, :2] >= 0).all() and (i[:, 2:] == -1).all() and np.isneginf(s[:, 2:]).all()


def test_filters_and_records(store):
    rng = np.random.default_rng(4)
    _fill(store, rng, n_files=6, per_file=2)
    assert len(store.segment_ids_where(path_prefix="/lib/a")) == 6
    assert len(store.segment_ids_where(min_duration_s=35, max_duration_s=50)) == 4  # f003, f004
    ids, vecs = store.file_vectors("/lib/a/f001.wav")
    assert vecs.shape == (2, DIM) and len(ids) == 2
    recs = store.segments(ids)
    assert [recs[j].start_s for j in ids] == [0.0, 10.0]
    assert recs[ids[0]].path == "/lib/a/f001.wav" and recs[ids[0]].file_duration_s == 20.0
    assert store.file_id_for_path("/nope.wav") is None
    st = store.status()
    assert (st.files, st.segments, st.failed) == (6, 12, 0)
    assert st.duration_s == pytest.approx(sum(10.0 * (i + 1) for i in range(6)))
    assert st.bytes_on_disk > 0 and set(st.to_json()) == {
        "files",
        "segments",
        "failed",
        "duration_s",
        "model",
        "dim",
        "index_type",
        "recall_at_10",
        "bytes_on_disk",
    }


def test_replace_relink_failure(store):
    rng = np.random.default_rng(5)
    store.add_file(_record("/a.wav"), [(0, 1)] * 3, _unit(rng, 3))
    store.add_file(_record("/a.wav"), [(0, 1)], _unit(rng, 1))  # changed file: replaced
    assert store.status().segments == 1
    ids_before, _ = store.file_vectors("/a.wav")
    store.relink("/a.wav", "/moved.wav", 10, 2)
    ids_after, _ = store.file_vectors("/moved.wav")
    np.testing.assert_array_equal(ids_before, ids_after)
    store.record_failure("/moved.wav", "truncated", "bad header", 1, 2)
    assert store.status().segments == 0
    assert [(f.path, f.reason) for f in store.failures()] == [("/moved.wav", "truncated")]


def test_snapshot_isolated_from_concurrent_writer(store, tmp_path):
    rng = np.random.default_rng(6)
    _fill(store, rng, n_files=3, per_file=1)
    reader = IndexReader.open(tmp_path / "idx")
    with reader.snapshot():
        before = len(reader.segment_ids_where())
        store.add_file(_record("/late.wav"), [(0, 1)], _unit(rng, 1))  # commits meanwhile
        assert len(reader.segment_ids_where()) == before
        assert reader.search(_unit(rng, 1), 10)[1].ravel().tolist().count(-1) == 10 - before
    assert len(reader.segment_ids_where()) == before + 1
    reader.close()


def _as_version_1(index_dir, model: str, source: str | None) -> None:
    """Rewrite a fresh index's meta row the way the first release stored it."""
    import sqlite3

    con = sqlite3.connect(index_dir / "index.db")
    con.execute("ALTER TABLE index_meta DROP COLUMN model_identity")
    if source is None:  # the oldest databases had no model_source either
        con.execute("ALTER TABLE index_meta DROP COLUMN model_source")
        con.execute("UPDATE index_meta SET model = ?, schema_version = 1", (model,))
    else:
        con.execute(
            "UPDATE index_meta SET model = ?, model_source = ?, schema_version = 1", (model, source)
        )
    con.commit()
    con.close()


@pytest.mark.parametrize(
    "model,source,name",
    [
        ("clapsearch:default_model@0123456789ab", "default", "default"),  # the packaged alias
        ("hf:laion/clap-htsat-unfused@0123456789ab", "", "laion/clap-htsat-unfused"),
        ("hf:laion/clap-htsat-unfused@0123456789ab", None, "laion/clap-htsat-unfused"),
        ("hf:my_local_copy@0123456789ab", "", ""),  # a folder name: not loadable by itself
    ],
)
def test_version_1_indexes_read_and_migrate_transparently(tmp_path, model, source, name):
    IndexWriter.create(tmp_path / "idx", MODEL, IndexConfig()).close()
    _as_version_1(tmp_path / "idx", model, source)
    with IndexReader.open(tmp_path / "idx") as ro:
        identity = ro.meta.model_identity
        assert ro.meta.model == model == identity.key and ro.meta.schema_version == 1
        assert (identity.kind, identity.name, identity.dim) == (model.split(":")[0], name, DIM)
    IndexWriter.open(tmp_path / "idx").close()  # the writer adds the column
    with IndexReader.open(tmp_path / "idx") as ro:
        assert ro.meta.model_identity == identity and ro.meta.schema_version == SCHEMA_VERSION


def test_each_thread_reads_in_its_own_snapshot(store, tmp_path):
    """A reader shared by threads: one thread's open snapshot neither leaks into another
    thread's reads nor is moved by them (one SQLite connection per thread)."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(7)
    _fill(store, rng, n_files=3, per_file=1)
    reader = IndexReader.open(tmp_path / "idx")
    with ThreadPoolExecutor(1) as other, reader.snapshot():
        before = len(reader.segment_ids_where())
        store.add_file(_record("/late.wav"), [(0, 1)], _unit(rng, 1))
        assert other.submit(lambda: len(reader.segment_ids_where())).result() == before + 1
        assert len(reader.segment_ids_where()) == before  # this thread's snapshot held
    reader.close()


def test_reading_and_searching_an_index_never_imports_sqlalchemy(tiny_index):
    """The read side runs on sqlite3 alone (a cold `clapsearch query` skips SQLAlchemy's
    ~130 modules); the writer keeps declaring the tables with SQLAlchemy."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from clapsearch.index.reader import IndexReader\n"
        f"r = IndexReader.open({str(tiny_index[0])!r})\n"
        "q = np.ones((1, r.meta.dim), np.float32) / np.sqrt(r.meta.dim)\n"
        "scores, ids = r.search(q, 3)\n"
        "assert len(r.segments(ids.ravel())) == 3 and r.status().files > 0\n"
        "print('sqlalchemy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
