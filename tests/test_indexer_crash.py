"""kill -9 at random points of a real `python -m indexer` subprocess, then a run to the end:
every file exactly once with all its segments, no orphan or duplicate vectors, the FAISS
cache in step with the database, and query results identical to a clean build."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from clapsearch.index.ann_cache import read_ann
from clapsearch.index.reader import IndexReader
from indexer.run import IndexOptions, run_index
from tests.conftest import REPO, clotho_files, esc50_files, window_counts


def _results(idx, queries):
    with IndexReader.open(idx) as store, store.snapshot():
        scores, ids = store.search(queries, 8)
        recs = store.segments(ids.ravel())
        return [[(recs[i].path, recs[i].start_s) for i in row] for row in ids], scores


@pytest.mark.slow
def test_kill9_at_random_points_then_complete(tmp_path, tiny_clap_dir):
    lib = tmp_path / "lib"
    lib.mkdir()
    for f in esc50_files(36) + clotho_files()[:4]:  # 5 s clips and 15-30 s multi-window files
        (lib / f.name).symlink_to(f)
    clean = tmp_path / "clean"
    run_index(
        IndexOptions((str(lib),), str(clean), str(tiny_clap_dir), workers=0, precision="fp32")
    )
    want = window_counts(clean / "index.db")
    assert len(want) == 40 and max(want.values()) == 3

    idx = tmp_path / "idx"
    cmd = [
        sys.executable,
        "-m",
        "indexer",
        str(lib),
        "--index",
        str(idx),
        "--model",
        str(tiny_clap_dir),
        "--precision",
        "fp32",
        "--workers",
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    rng = np.random.default_rng(1234)
    kills = 0
    for round_ in range(6):
        workers = "1" if round_ % 3 == 1 else "0"  # the decode pool too, sometimes
        # a transaction holds the files one forward completed: one file per forward in most
        # rounds (commits one at a time), up to 4 per transaction in rounds 2 and 4
        batch = "4" if round_ in (2, 4) else "1"
        proc = subprocess.Popen(
            cmd + [workers, "--batch-size", batch],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        done_before = len(window_counts(idx / "index.db"))
        if round_ == 0:  # somewhere in start-up, model load or index creation: at a random
            # moment, but never later than the first commit (a fast machine can otherwise
            # finish the whole library before the deadline and nothing gets killed)
            deadline = time.monotonic() + rng.uniform(0.5, 6.0)
            target = done_before + 1
        elif round_ < 5:  # after a random number of further commits
            deadline = time.monotonic() + 30
            target = done_before + int(rng.integers(1, 6))
        else:  # right after the last commit: during the ANN cache write or just before
            deadline = time.monotonic() + 30
            target = len(want)
        while proc.poll() is None and time.monotonic() < deadline:
            if len(window_counts(idx / "index.db")) >= target:
                break
            time.sleep(0.05)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the indexer and its decode worker
            kills += round_ < 5  # the last round races the process's own exit: best effort
        proc.wait()
        assert b"Traceback" not in proc.stderr.read()
        proc.stderr.close()
        got = window_counts(idx / "index.db")
        assert all(got[p] == want[p] for p in got)  # each file fully present or absent
    assert kills == 5  # rounds 0-4 always kill mid-run

    final = subprocess.run(
        cmd + ["0", "--batch-size", "1"], env=env, capture_output=True, timeout=120
    )
    assert final.returncode == 0, final.stderr.decode()
    assert window_counts(idx / "index.db") == want

    with IndexReader.open(idx) as store:
        seg_ids = store.segment_ids_where()
        meta = store.refresh_meta()
    cache = read_ann(idx / "ann.faiss")
    assert cache is not None and cache.header.generation == meta.generation
    assert cache.index.ntotal == len(seg_ids) == sum(want.values())
    np.testing.assert_array_equal(cache.ids, seg_ids)

    q = np.random.default_rng(0).standard_normal((6, meta.dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    got_hits, got_scores = _results(idx, q)
    want_hits, want_scores = _results(clean, q)
    assert got_hits == want_hits
    np.testing.assert_allclose(got_scores, want_scores, atol=1e-6)
