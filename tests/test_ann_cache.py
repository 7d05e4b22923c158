"""The ANN cache is used only when it verifies: checksums, the database it was built from, a
generation the database reached, the build the database recorded; anything else is searched
exactly meanwhile (never a wrong result) and rebuilt by the next run (issue 16, items 3, 4)."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from clapsearch.index.ann_cache import (
    AnnCacheError,
    cache_problem,
    load_ann,
    read_ann,
    read_header,
)
from clapsearch.index.reader import IndexReader
from clapsearch.index.schema import FileRecord
from clapsearch.index.vectors import exact_topk
from indexer.ann import build_ann
from indexer.run import IndexSummary, refresh_ann
from indexer.writer import IndexWriter
from tests import faults, hostile


def _exact(idx, q, k=10):
    with IndexWriter.open(idx) as w:
        _, ids, vecs = w.all_vectors()
    return exact_topk(q, vecs, ids, k)


def _assert_right(idx, seed=0):
    """Every search through the reader equals exact search over the database's vectors."""
    q = faults.unit_rows(np.random.default_rng(seed), 8)
    with IndexReader.open(idx) as reader:
        scores, ids = reader.search(q, 10)
    want_s, want_i = _exact(idx, q)
    np.testing.assert_array_equal(ids, want_i)
    np.testing.assert_allclose(scores, want_s, atol=1e-6)


def _rerun(idx):
    """What the end of a `clapsearch index` run does with the cache."""
    with IndexWriter.open(idx) as w:
        refresh_ann(w, None, IndexSummary(str(idx)))


def _usable(idx) -> bool:
    with IndexReader.open(idx) as reader:
        header, problem = reader.cache_check()
    return problem is None and read_ann(idx / "ann.faiss") is not None


@pytest.fixture()
def idx(tmp_path):
    folder = tmp_path / "idx"
    faults.synthetic_index(folder, n_files=60)
    with IndexWriter.open(folder) as w:
        build_ann(w)
    assert _usable(folder)
    return folder


def test_overwritten_bytes_inside_the_cache_are_caught_and_rebuilt(idx):
    """2 KB overwritten inside ann.faiss: once scores of 2.65e37 and "unchanged" forever."""
    size = (idx / "ann.faiss").stat().st_size
    hostile.damage(idx / "ann.faiss", size // 2, 2048)
    with pytest.raises(AnnCacheError, match="damaged"):
        load_ann(idx / "ann.faiss")
    _assert_right(idx)
    _rerun(idx)
    assert _usable(idx)
    _assert_right(idx)


@pytest.mark.parametrize("cut", ["after_header", "mid_payload", "header"])
def test_cut_cache_is_rebuilt_by_the_next_run(idx, cut):
    data = (idx / "ann.faiss").read_bytes()
    keep = {"after_header": data.index(b"}") + 1, "mid_payload": len(data) // 2, "header": 20}
    (idx / "ann.faiss").write_bytes(data[: keep[cut]])
    assert read_ann(idx / "ann.faiss") is None
    _assert_right(idx)
    _rerun(idx)
    assert _usable(idx)


def test_cache_newer_than_the_database_after_a_lost_wal(tmp_path, idx):
    """The database loses its last commits (its -wal deleted after a crash): the cache is then
    newer, and the next files reuse ids whose cached vectors belong to other files. Before:
    used (wrong results) and never rebuilt ("unchanged")."""
    lost = tmp_path / "lost"
    rng = np.random.default_rng(7)
    with IndexWriter.open(idx) as w:
        w.db.connection().raw.execute("PRAGMA wal_autocheckpoint = 0")  # keep commits in WAL
        for i in range(10):
            w.add_file(
                FileRecord(f"/lib/late{i}.wav", 1, 1, "h", 5.0, 1, 1),
                [(0.0, 5.0)],
                faults.unit_rows(rng, 1),
            )
        build_ann(w)  # the cache reflects the late files, recorded in the WAL too
        shutil.copytree(idx, lost, ignore=shutil.ignore_patterns("*-wal", "*-shm"))
    with IndexReader.open(lost) as reader:
        header, problem = reader.cache_check()
        assert reader.generation() < header.generation and "newer than the database" in problem
    # new files after the loss: their ids are the ids the lost late files had in the cache
    with IndexWriter.open(lost) as w:
        for i in range(10):
            w.add_file(
                FileRecord(f"/lib/other{i}.wav", 1, 1, "h", 5.0, 1, 1),
                [(0.0, 5.0)],
                faults.unit_rows(rng, 1),
            )
    _assert_right(lost, seed=3)
    _rerun(lost)
    assert _usable(lost)
    _assert_right(lost, seed=4)


def test_kill_between_cache_write_and_its_record(idx, monkeypatch):
    """The file is replaced, the run dies before the database records it: not used."""
    rng = np.random.default_rng(9)
    with IndexWriter.open(idx) as w:
        w.add_file(
            FileRecord("/lib/x.wav", 1, 1, "h", 5.0, 1, 1), [(0.0, 5.0)], faults.unit_rows(rng, 1)
        )

        def killed(*args, **kwargs):
            raise SystemExit("killed")

        monkeypatch.setattr(IndexWriter, "set_ann_info", killed)
        with pytest.raises(SystemExit):
            build_ann(w)
        monkeypatch.undo()
    with IndexReader.open(idx) as reader:
        _, problem = reader.cache_check()
    assert "not the cache the database recorded" in problem
    _assert_right(idx)
    _rerun(idx)
    assert _usable(idx)


def test_cache_of_another_database_or_old_format_is_not_used(tmp_path, idx):
    other = tmp_path / "other"
    faults.synthetic_index(other, n_files=60, seed=1)
    shutil.copy(idx / "ann.faiss", other / "ann.faiss")  # same ids, other vectors
    _assert_right(other)
    with IndexReader.open(other) as reader:
        assert "another database" in reader.cache_check()[1]
    # a version 1 file (no checksums): not trusted
    (idx / "ann.faiss").write_bytes(b"CLAPANN1" + (idx / "ann.faiss").read_bytes()[8:])
    assert read_ann(idx / "ann.faiss") is None
    _assert_right(idx)
    _rerun(idx)
    assert _usable(idx)


def test_cache_problem_in_every_direction(idx):
    header = read_header(idx / "ann.faiss")
    with IndexReader.open(idx) as reader:
        meta = reader.meta
        build = reader.db.connection().raw.execute("SELECT ann_build FROM index_meta").fetchone()[0]
    g, n = header.generation, header.ntotal
    ok = cache_problem(header, meta.db_uuid, g, build, meta.dim, n)
    assert ok is None
    assert cache_problem(header, meta.db_uuid, g + 5, build, meta.dim) is None  # older: corrected
    assert "newer" in cache_problem(header, meta.db_uuid, g - 1, build, meta.dim)
    assert "recorded" in cache_problem(header, meta.db_uuid, g, "x" * 32, meta.dim)
    assert "recorded" in cache_problem(header, meta.db_uuid, g, None, meta.dim)
    assert "another database" in cache_problem(header, "uuid", g, build, meta.dim)
    assert "vectors where" in cache_problem(header, meta.db_uuid, g, build, meta.dim, n + 1)
    assert "dimensions" in cache_problem(replace(header, dim=3), meta.db_uuid, g, build, meta.dim)
