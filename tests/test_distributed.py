"""Partitioned embedding (indexer/distributed): stable partitions, atomic shards skipped when
complete, torchrun ranks covering every file once, a killed rank costing one partition, and
`clapsearch index merge` giving the index `clapsearch index` gives (in memory and on disk)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from indexer.distributed.merge import merge
from indexer.distributed.partition import assign, partition_key, partition_of, rank_from_env
from indexer.distributed.runners import ShardOptions, run_partitions
from indexer.distributed.shards import ShardFolder, read_shard, shard_name
from indexer.run import IndexOptions, run_index
from indexer.writer import IndexWriter
from tests.conftest import REPO, clotho_files, esc50_files


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """20 ESC-50 clips in two sub-folders (one a real copy, the rest symlinks) plus 2
    multi-window Clotho clips."""
    lib = tmp_path_factory.mktemp("dist") / "lib"
    for i, f in enumerate(esc50_files(20)):
        sub = lib / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        if i == 0:
            shutil.copyfile(f, sub / f.name)
        else:
            (sub / f.name).symlink_to(f)
    for f in clotho_files()[:2]:
        (lib / f.name).symlink_to(f)
    return lib


def _contents(index_dir) -> dict[str, tuple[list, np.ndarray]]:
    """path -> (spans, vectors) of an index, read back from its database."""
    out = {}
    with IndexWriter.open(index_dir) as store:
        for path in store.file_states():
            ids, vecs = store.file_vectors(path)
            recs = store.segments(ids)
            out[path] = ([(recs[i].start_s, recs[i].end_s) for i in ids], vecs)
    return out


def assert_same_index(a, b) -> None:
    ca, cb = _contents(a), _contents(b)
    assert sorted(ca) == sorted(cb)
    for path in ca:
        assert ca[path][0] == cb[path][0], path
        cos = np.sum(ca[path][1] * cb[path][1], axis=1)
        cos /= np.linalg.norm(ca[path][1], axis=1) * np.linalg.norm(cb[path][1], axis=1)
        assert cos.min() >= 0.99999, (path, cos.min())


def test_partitions_are_stable_and_do_not_depend_on_the_mount_point(tmp_path, library):
    assert partition_key("/x/lib", "/x/lib/a/b.wav") == "a/b.wav"
    assert partition_of("a/b.wav", 7) == partition_of("a/b.wav", 7)
    # pinned: another hash or key would reassign every file of existing shard folders
    assert [partition_of(k, 16) for k in ("a/1.wav", "b/2.flac", "x.wav")] == [0, 10, 7]
    moved = tmp_path / "elsewhere"
    moved.symlink_to(library)
    here, _ = assign([str(library)], [".flac", ".wav"], 5)
    there, _ = assign([str(moved)], [".flac", ".wav"], 5)
    assert {p: [w.key for w in ws] for p, ws in here.items()} == {
        p: [w.key for w in ws] for p, ws in there.items()
    }
    assert sum(len(ws) for ws in here.values()) == 22
    assert rank_from_env({"SLURM_PROCID": "3", "SLURM_NTASKS": "4"}) == (3, 4)
    assert rank_from_env({"RANK": "1", "WORLD_SIZE": "2"}) == (1, 2)
    assert rank_from_env({}) == (0, 1)


def _opts(library, shards, model, **kw) -> ShardOptions:
    return ShardOptions(
        (str(library),), str(shards), str(model), workers=0, precision="fp32", device="cpu", **kw
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory, library, tiny_clap_dir):
    """What `clapsearch index` makes of the library."""
    out = tmp_path_factory.mktemp("dist") / "reference"
    run_index(
        IndexOptions((str(library),), str(out), str(tiny_clap_dir), workers=0, precision="fp32")
    )
    return out


@pytest.fixture(scope="module")
def shards(tmp_path_factory, library, tiny_clap_dir):
    """The library embedded by the sequential runner into 4 partitions."""
    out = tmp_path_factory.mktemp("dist") / "shards"
    summary = run_partitions(_opts(library, out, tiny_clap_dir, partitions=4))
    assert sorted(summary.done) == [0, 1, 2, 3] and summary.files == 22
    return out


def test_sequential_shards_merged_equal_the_indexer(tmp_path, shards, reference):
    folder = ShardFolder(shards)
    assert folder.names() == [shard_name(p, 4) for p in range(4)]
    keys = [f["key"] for p in range(4) for f in read_shard(folder, shard_name(p, 4)).files]
    assert len(keys) == len(set(keys)) == 22
    merged = tmp_path / "merged"
    summary = merge([str(shards)], str(merged), ann="memory")
    assert summary.files == 22 and summary.shards == 4
    assert_same_index(merged, reference)
    # merging the same shards again changes nothing
    again = merge([str(shards)], str(merged), ann="memory")
    assert (again.files, again.unchanged) == (0, 22)


def test_rerun_redoes_only_the_partition_whose_file_changed(tmp_path, library, tiny_clap_dir):
    out = tmp_path / "shards"
    run_partitions(_opts(library, out, tiny_clap_dir, partitions=4))
    real = next(p for p in (library / "b").iterdir() if not p.is_symlink())
    keep = run_partitions(_opts(library, out, tiny_clap_dir))  # partitions from the folder
    assert keep.done == [] and sorted(keep.skipped) == [0, 1, 2, 3]
    st = real.stat()
    os.utime(real, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    redo = run_partitions(_opts(library, out, tiny_clap_dir))
    assert redo.done == [partition_of(f"b/{real.name}", 4)]
    assert sorted(redo.skipped + redo.done) == [0, 1, 2, 3]


def _rank_cmd(library, shards, model) -> list[str]:
    return [
        "-m",
        "clapsearch.cli",
        "index",
        "shard",
        str(library),
        "--shards",
        str(shards),
        "--model",
        str(model),
        "--runner",
        "ranks",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--partitions",
        "6",
    ]


@pytest.mark.slow
def test_two_torchrun_ranks_cover_every_file_exactly_once(tmp_path, library, tiny_clap_dir):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    run = subprocess.run(
        [*torchrun, *_rank_cmd(library, tmp_path / "shards", tiny_clap_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    folder = ShardFolder(tmp_path / "shards")
    assert folder.names() == [shard_name(p, 6) for p in range(6)]
    keys = [f["key"] for n in folder.names() for f in read_shard(folder, n).files]
    assert len(keys) == len(set(keys)) == 22


@pytest.mark.slow
def test_a_rank_killed_mid_partition_costs_only_that_partition(tmp_path, library, tiny_clap_dir):
    shards = tmp_path / "shards"
    env = dict(os.environ, RANK="0", WORLD_SIZE="1", PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, *_rank_cmd(library, shards, tiny_clap_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    folder = None
    while time.monotonic() < deadline and proc.poll() is None:
        if shards.exists() and list(shards.glob("part-*.shard")):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # while the next partition is being embedded
    proc.wait()
    folder = ShardFolder(shards)
    complete = folder.names()
    assert 1 <= len(complete) < 6, complete
    for name in complete:  # every shard there is whole
        read_shard(folder, name)
    summary = run_partitions(_opts(library, shards, tiny_clap_dir))
    assert sorted(summary.skipped) == sorted(int(n[5:10]) for n in complete)
    assert sorted(summary.skipped + summary.done) == list(range(6))
    assert not list(shards.glob("*.tmp-*"))


def _synthetic_shards(folder, partition, partitions, n_files, seed, dim=32):
    """A shard folder of `n_files` synthetic files of 2 windows each (no model needed)."""
    from clapsearch.index.schema import FileRecord
    from indexer.distributed.shards import ShardWriter, agree_layout

    rng = np.random.default_rng(seed)
    f = ShardFolder(folder)
    layout = agree_layout(
        f,
        {
            "partitions": partitions,
            "partition_hash": "x",
            "model": "test:synthetic",
            "dim": dim,
            "hop_s": None,
            "model_source": "",
            "extensions": [".wav"],
        },
    )
    paths = [f"/lib/{seed}/{i:05d}.wav" for i in range(n_files)]
    w = ShardWriter(f, layout, partition, {p: p[5:] for p in paths})
    for p in paths:
        v = rng.standard_normal((2, dim)) + 3.0 * np.eye(dim)[0]
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        w.add_file(FileRecord(p, 100, 1, "h", 20.0, 48000, 1), [(0.0, 10.0), (10.0, 20.0)], v)
    w.finish()


@pytest.mark.slow
def test_merge_on_disk_ivfpq_then_incrementally(tmp_path):
    import faiss

    from clapsearch.index.ann_cache import read_ann
    from clapsearch.index.vectors import exact_topk

    _synthetic_shards(tmp_path / "s1", 0, 2, 2500, seed=1)
    _synthetic_shards(tmp_path / "s2", 1, 2, 600, seed=2)
    index = tmp_path / "index"
    first = merge([str(tmp_path / "s1")], str(index), ann="ondisk")
    assert first.index_type.startswith("ivfpq") and first.segments_added == 5000
    cache = read_ann(index / "ann.faiss")
    assert cache.header.ondisk and (index / cache.header.ondisk).exists()
    assert (
        "OnDisk"
        in type(
            faiss.downcast_InvertedLists(faiss.extract_index_ivf(cache.index).invlists)
        ).__name__
    )
    # the merged on-disk lists equal the same trained index filled in memory
    in_memory = faiss.read_index(str(index / cache.header.ondisk.replace(".index", ".trained")))
    with IndexWriter.open(index) as store:
        _, ids = store.segment_ids()
        _, vecs = store.vectors_for(ids)
    in_memory.add_with_ids(vecs, ids)
    q = vecs[:50] + 0.1
    for nprobe in (1, 8):
        faiss.extract_index_ivf(cache.index).nprobe = nprobe
        faiss.extract_index_ivf(in_memory).nprobe = nprobe
        d1, i1 = cache.index.search(q, 10)
        d2, i2 = in_memory.search(q, 10)
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(d1, d2)
    np.testing.assert_array_equal(np.asarray(cache.ids), ids)

    old_files = {p.name for p in index.glob("ann-*")}
    second = merge([str(tmp_path / "s2")], str(index))  # auto: the cache stays on disk
    assert second.segments_added == 1200 and second.index_type == first.index_type
    cache = read_ann(index / "ann.faiss")
    assert cache.header.ntotal == 6200
    assert not old_files & {p.name for p in index.glob("ann-*")}  # the old pair is gone
    with IndexWriter.open(index) as store:
        _, ids = store.segment_ids()
        _, vecs = store.vectors_for(ids)
        queries = vecs[-40:]  # new vectors find themselves, exact cosines
        scores, got = store.search(queries, 10)
    truth = exact_topk(queries, vecs, ids, 10)[1]
    assert (got[:, 0] == ids[-40:]).all()
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=2e-3)
    # audio-like queries on a cache tuned on text-like probes: well above chance (0.002)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, truth)]) >= 0.7

    # `clapsearch index` on this index (its commits, then `refresh_ann`) keeps the cache on
    # disk and incremental: same trained quantizers, only the new windows encoded, the files
    # it replaced removed; never rebuilt in memory (not even by a mid-run checkpoint)
    from clapsearch.index.schema import FileRecord
    from indexer.run import IndexSummary, _checkpoint_ann, refresh_ann

    class Lazy:  # the run's model: only its text embeddings are asked for (probes)
        def get(self):
            return self

        def embed_text(self, texts):
            return np.random.default_rng(5).standard_normal((len(texts), 32)).astype(np.float32)

    trained = (index / cache.header.ondisk.replace(".index", ".trained")).read_bytes()
    rng = np.random.default_rng(7)
    with IndexWriter.open(index) as store:
        fresh = rng.standard_normal((60, 2, 32)) + 3.0 * np.eye(32)[1]
        fresh = (fresh / np.linalg.norm(fresh, axis=2, keepdims=True)).astype(np.float32)
        for i, v in enumerate(fresh):  # 50 new files and 10 re-embedded (replaced) ones
            path = f"/lib/9/{i:05d}.wav" if i < 50 else f"/lib/1/{i:05d}.wav"
            store.add_file(FileRecord(path, 100, 2, "h2", 20.0, 48000, 1), [(0, 10), (10, 20)], v)
        before = (index / "ann.faiss").read_bytes()
        _checkpoint_ann(store)
        assert (index / "ann.faiss").read_bytes() == before  # left for the end of the run
        summary = IndexSummary(str(index))
        refresh_ann(store, Lazy(), summary)
        _, ids = store.segment_ids()
        _, vecs = store.vectors_for(ids)
        new_ids = ids[-120:]
        scores, got = store.search(vecs[-120:], 1)
    cache = read_ann(index / "ann.faiss")
    assert summary.index_type == first.index_type and cache.header.ondisk
    assert cache.header.ntotal == 6200 + 100 == len(ids)
    assert (index / cache.header.ondisk.replace(".index", ".trained")).read_bytes() == trained
    np.testing.assert_array_equal(np.asarray(cache.ids), ids)
    assert (got[:, 0] == new_ids).all()
    assert len(list(index.glob("ann-*.ivfdata"))) == 1  # the previous data file is gone
