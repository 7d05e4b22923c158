"""On-disk IVF-PQ (indexer/ondisk.py): shards merged into memory-mapped lists search exactly
like the same index built in memory in one go."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from indexer.ondisk import add_shard, merge_shards, open_ondisk, train_ivfpq


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    vecs = _unit(rng.standard_normal((6000, 32)) + 2.0 * _unit(rng.standard_normal((1, 32))))
    ids = np.arange(6000, dtype=np.int64) * 3 + 7  # segment ids are not row numbers
    queries = _unit(rng.standard_normal((20, 32)))
    return vecs, ids, queries


def test_merged_ondisk_index_equals_the_in_memory_one(tmp_path, data):
    import faiss

    vecs, ids, queries = data
    trained = train_ivfpq(vecs[:3000], nlist=16, m=8, out=tmp_path / "trained.index")
    shards = [
        add_shard(trained, vecs[lo : lo + 2000], ids[lo : lo + 2000], tmp_path / f"s{lo}.index")
        for lo in range(0, 6000, 2000)
    ]
    merged = merge_shards(trained, shards, tmp_path, "merged")
    # the folder moves: the data file is found beside the index file
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for p in (merged, merged.with_suffix(".ivfdata")):
        shutil.move(p, moved / p.name)
    on_disk = open_ondisk(moved / merged.name)
    in_memory = faiss.read_index(str(trained))
    in_memory.add_with_ids(vecs, ids)

    assert on_disk.ntotal == in_memory.ntotal == 6000
    ivf = faiss.extract_index_ivf(on_disk)
    assert "OnDisk" in type(faiss.downcast_InvertedLists(ivf.invlists)).__name__
    for nprobe in (1, 4, 16):
        faiss.extract_index_ivf(on_disk).nprobe = nprobe
        faiss.extract_index_ivf(in_memory).nprobe = nprobe
        d1, i1 = on_disk.search(queries, 10)
        d2, i2 = in_memory.search(queries, 10)
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(d1, d2)
    assert set(np.unique(i1)) <= set(ids.tolist())


def test_merge_refuses_to_overwrite_a_referenced_name(tmp_path, data):
    vecs, ids, _ = data
    trained = train_ivfpq(vecs[:3000], nlist=16, m=8, out=tmp_path / "trained.index")
    shard = add_shard(trained, vecs[:500], ids[:500], tmp_path / "s.index")
    merge_shards(trained, [shard], tmp_path, "m1")
    with pytest.raises(FileExistsError):
        merge_shards(trained, [shard], tmp_path, "m1")
