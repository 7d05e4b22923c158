"""Fault injection (issue 16): kills at every commit point of the protocol, a lost WAL, damaged
cache and database bytes, a full volume; each checks that nothing committed is lost (every
file fully present or absent, with the vectors a clean build gives) and that no query returns
a wrong result (every search equals exact search over the database's own vectors), then that
the next run (or `clapsearch doctor --repair`) brings the index back whole."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from clapsearch.errors import IndexStorageError
from clapsearch.index.ann_cache import load_ann
from clapsearch.index.reader import IndexReader
from clapsearch.index.schema import FileRecord
from clapsearch.index.vectors import exact_topk
from indexer import doctor
from indexer.ann import build_ann
from indexer.writer import IndexWriter
from tests import faults, hostile
from tests.conftest import REPO, clotho_files, esc50_files, run_cli

KILL_POINTS = [  # (point, n): the n-th time a run reaches it (tests/fault_driver.py)
    ("created", 1),
    ("failure", 1),  # the liar's failure, inside its group's transaction
    ("in_txn", 2),
    ("committed", 1),
    ("committed", 2),
    ("lost_wal", 0),  # not a kill: the -wal of the last killed run is deleted
    ("committed", 1),
    ("cache_unplaced", 1),
    ("cache_placed", 1),
    ("cache_recorded", 1),
    ("move_and_delete", 0),  # the library changes: one file renamed, one deleted
    ("relinked", 1),
    ("pruned", 1),
]


def _contents(idx) -> dict[str, np.ndarray]:
    """path -> the file's vectors in time order, read straight from SQLite; asserts that no
    window lost its file and no path is there twice."""
    if not (idx / "index.db").exists():
        return {}
    con = sqlite3.connect(f"file:{idx}/index.db?mode=ro", uri=True)
    con.text_factory = lambda b: b.decode("utf-8", "surrogateescape")
    try:
        rows = con.execute(
            "SELECT f.path, s.vector FROM files f JOIN segments s ON s.file_id = f.id "
            "ORDER BY f.path, s.start_s"
        ).fetchall()
        orphans = con.execute(
            "SELECT count(*) FROM segments WHERE file_id NOT IN (SELECT id FROM files)"
        ).fetchone()[0]
        empty = con.execute(
            "SELECT count(*) FROM files WHERE id NOT IN (SELECT file_id FROM segments)"
        ).fetchone()[0]
    except sqlite3.OperationalError:  # killed before the schema committed
        return {}
    finally:
        con.close()
    assert orphans == 0 and empty == 0
    out: dict[str, list] = {}
    for path, blob in rows:
        out.setdefault(path, []).append(np.frombuffer(blob, "<f2").astype(np.float32))
    return {p: np.stack(v) for p, v in out.items()}


def _no_wrong_results(idx, seed: int = 0) -> None:
    """Searches through the reader (cache, stale-cache correction, exact) equal exact search
    over the vectors the database holds."""
    try:
        reader = IndexReader.open(idx)
    except Exception:  # noqa: BLE001 - no index yet (killed before its first commit)
        return
    with reader:
        q = faults.unit_rows(np.random.default_rng(seed), 6, reader.meta.dim)
        scores, ids = reader.search(q, 8)
        with reader.snapshot() as conn:
            all_ids = np.array(
                [r[0] for r in conn.execute("SELECT id FROM segments ORDER BY id").all()], np.int64
            )
            got_ids, vecs = reader._vectors_for(conn, all_ids)
    want_s, want_i = exact_topk(q, vecs, got_ids, 8)
    np.testing.assert_array_equal(ids, want_i)
    np.testing.assert_allclose(scores, want_s, atol=1e-6)


def _library(root):
    lib = root / "lib"
    lib.mkdir()
    for f in esc50_files(14) + clotho_files()[:2]:  # 5 s clips and 15-30 s multi-window files
        (lib / f.name).symlink_to(f)
    hostile.lying_rate_wav(lib / "0-liar.wav")  # a failure to record, first in path order
    return lib


def _clean(root, lib, model, name):
    from indexer.run import IndexOptions, run_index

    idx = root / name
    run_index(IndexOptions((str(lib),), str(idx), str(model), workers=0, precision="fp32"))
    return _contents(idx)


@pytest.mark.slow
def test_kills_at_every_commit_point_lose_nothing_committed(tmp_path, tiny_clap_dir):
    lib = _library(tmp_path)
    want = _clean(tmp_path, lib, tiny_clap_dir, "clean")
    assert len(want) == 16
    known = dict(want)
    idx = tmp_path / "idx"
    cmd = [sys.executable, str(REPO / "tests" / "fault_driver.py")]
    args = [str(lib), "--index", str(idx), "--model", str(tiny_clap_dir), "--precision", "fp32"]
    args += ["--workers", "0", "--batch-size", "2"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    kills = 0
    for point, n in KILL_POINTS:
        if point == "lost_wal":  # right after a kill, before anything opens the database
            shutil.copytree(idx, tmp_path / "with-wal")  # (a reader merges the WAL on close)
            for suffix in ("-wal", "-shm"):
                (idx / f"index.db{suffix}").unlink(missing_ok=True)
            lost = len(_contents(tmp_path / "with-wal")) - len(_contents(idx))
            assert lost > 0  # the killed run's commits were only in its WAL
        elif point == "move_and_delete":
            os.rename(lib / esc50_files(1)[0].name, lib / "moved.flac")
            (lib / esc50_files(2)[1].name).unlink()
            known = dict(want)  # until pruned, the deleted file's rows are still valid
            want = _clean(tmp_path, lib, tiny_clap_dir, "clean2")
            known.update(want)
        else:
            proc = subprocess.run(cmd + [point, str(n), *args], env=env, capture_output=True)
            assert proc.returncode == -signal.SIGKILL, (point, proc.stderr.decode()[-2000:])
            assert b"Traceback" not in proc.stderr
            kills += 1
        nxt = KILL_POINTS[KILL_POINTS.index((point, n)) + 1][0] if point != "pruned" else ""
        if nxt == "lost_wal":
            continue  # checked after the loss: reading now would merge the WAL into the file
        got = _contents(idx)
        for path, vecs in got.items():  # each file whole, with a clean build's vectors
            np.testing.assert_allclose(vecs, known[path], atol=1e-3, err_msg=f"{point} {path}")
        _no_wrong_results(idx, seed=kills)
    assert kills == len(KILL_POINTS) - 2

    final = subprocess.run(cmd + ["none", "1", *args], env=env, capture_output=True)
    assert final.returncode == 0, final.stderr.decode()
    got = _contents(idx)
    assert got.keys() == want.keys()
    for path in want:
        np.testing.assert_allclose(got[path], want[path], atol=1e-3)
    with IndexReader.open(idx) as reader:
        header, problem = reader.cache_check()
    assert problem is None and load_ann(idx / "ann.faiss").header == header
    _no_wrong_results(idx, seed=99)


def _blob_offset(db, vector: np.ndarray) -> int:
    data = db.read_bytes()
    blob = vector.astype("<f2").tobytes()
    at = data.find(blob)
    assert at >= 0 and data.find(blob, at + 1) < 0
    return at


def test_damaged_vector_bytes_never_score_and_doctor_drops_the_file(tmp_path):
    """Bytes overwritten inside a stored vector (SQLite does not checksum rows): searches that
    read it refuse with a sentence instead of ranking by garbage; doctor finds it and --repair
    drops its file, so the next `clapsearch index` re-embeds it."""
    idx = tmp_path / "idx"
    stored = faults.synthetic_index(idx, n_files=50)
    victim = "/lib/f0017.wav"
    db = idx / "index.db"
    at = _blob_offset(db, stored[victim][1])
    data = bytearray(db.read_bytes())
    data[at + 4 : at + 12] = b"\x00\x7c" * 4  # float16 +inf x 4
    db.write_bytes(bytes(data))
    with IndexReader.open(idx) as reader, pytest.raises(IndexStorageError) as err:
        reader.search(faults.unit_rows(np.random.default_rng(0), 2), 5)
    assert err.value.kind == "corrupt" and "doctor" in str(err.value)
    report = doctor.check(idx, files=False)
    assert any("stored vectors are damaged" in f.message for f in report.problems)
    fixed = doctor.repair(idx, files=False)
    assert not fixed.problems, [f.message for f in fixed.findings]
    got = _contents(idx)
    assert victim not in got and len(got) == 49
    for path, vecs in got.items():
        np.testing.assert_array_equal(vecs, stored[path])
    _no_wrong_results(idx)


@pytest.mark.parametrize("table", ["segments", "files", "ix_segments_file"])
def test_damaged_database_pages_are_salvaged_without_re_embedding(tmp_path, capsys, table):
    idx = tmp_path / "idx"
    stored = faults.synthetic_index(idx, n_files=300)
    with IndexWriter.open(idx) as w:
        build_ann(w)
    pages = faults.db_pages(idx / "index.db")[table]
    faults.damage_page(idx / "index.db", pages[len(pages) // 2], seed=len(table))
    code, out, err = run_cli(["doctor", "--index", str(idx), "--no-files"], capsys)
    assert code == 1 and "--repair fixes it" in out and "Traceback" not in err
    code, out, err = run_cli(["doctor", "--index", str(idx), "--no-files", "--repair"], capsys)
    assert code == 0, out + err
    assert out.strip().endswith("healthy.")
    got = _contents(idx)
    assert 0 < len(got) <= 300
    for path, vecs in got.items():  # what survived is exactly what was stored
        np.testing.assert_array_equal(vecs, stored[path])
    if table == "ix_segments_file":  # an index b-tree: REINDEX, nothing lost
        assert len(got) == 300
    assert list(idx.glob("index.db.damaged-*")) or table == "ix_segments_file"
    _no_wrong_results(idx)
    with IndexReader.open(idx) as reader:
        assert reader.cache_check()[1] is None


def test_doctor_on_a_healthy_index_and_a_dead_header(tmp_path, capsys):
    idx = tmp_path / "idx"
    faults.synthetic_index(idx)
    with IndexWriter.open(idx) as w:
        build_ann(w)
    code, out, _ = run_cli(["doctor", "--index", str(idx), "--json"], capsys)
    import json

    report = json.loads(out)
    assert code == 0 and report["healthy"] and report["checked"]["segments"] == 120
    assert report["checked"]["cache"]["vectors"] == 120
    assert [f["part"] for f in report["findings"]] == ["files"]  # /lib/... are not on disk
    db = idx / "index.db"
    db.write_bytes(b"\0" * 100 + db.read_bytes()[100:])
    code, out, _ = run_cli(["doctor", "--index", str(idx), "--repair"], capsys)
    assert code == 1 and "rebuild it with `clapsearch index" in out


def test_doctor_finds_a_cache_whose_vectors_differ(tmp_path, capsys):
    """A cache that passes every header check but holds other vectors (a stale copy with the
    right build id, say): the sample of vectors catches it and --repair rebuilds it."""
    idx = tmp_path / "idx"
    faults.synthetic_index(idx, n_files=40)
    with IndexWriter.open(idx) as w:
        build_ann(w)
        cache = load_ann(idx / "ann.faiss")
        import faiss

        index = faiss.IndexIDMap2(faiss.IndexFlatIP(w.meta.dim))
        index.add_with_ids(faults.unit_rows(np.random.default_rng(5), len(cache.ids)), cache.ids)
        w.write_cache(cache.header, index)
    report = doctor.check(idx, files=False)
    assert any("differ from the stored ones" in f.message for f in report.problems)
    assert not doctor.repair(idx, files=False).problems
    assert not doctor.check(idx, files=False).problems


def test_full_volume_is_one_sentence_and_loses_nothing(tmp_path):
    """A 3 MB volume filled by an index: the write that does not fit fails with the disk-full
    sentence; every file committed before is whole; with room again, writing goes on (once
    stuck at 108 files for good: a 3.1 MB WAL for a 0.22 MB index)."""
    vol = tmp_path / "vol"
    with faults.tmpfs(vol, "3m"):
        idx = vol / "idx"
        rng = np.random.default_rng(0)
        model = faults.ModelIdentity("test", "", "full", "f", 512)
        written: dict[str, np.ndarray] = {}
        biggest = 0
        with pytest.raises(IndexStorageError) as err:
            with IndexWriter.create(idx, model, faults.IndexConfig()) as w:
                for i in range(10_000):
                    vecs = faults.unit_rows(rng, 4, 512)
                    spans = [(5.0 * j, 5.0 * j + 5.0) for j in range(4)]
                    path = f"/l/{i:05d}.wav"
                    w.add_file(FileRecord(path, 1, 1, "h", 20.0, 1, 1), spans, vecs)
                    written[path] = vecs.astype(np.float16).astype(np.float32)
                    wal = idx / "index.db-wal"
                    biggest = max(biggest, wal.stat().st_size if wal.exists() else 0)
        assert err.value.kind == "disk_full" and "is full" in str(err.value)
        assert "committed so far is kept" in str(err.value)
        got = _contents(idx)
        assert len(got) >= len(written) - 1 and len(got) > 100
        for path, vecs in got.items():
            np.testing.assert_array_equal(vecs, written[path])
        assert biggest < 1.3 * (1 << 20)  # the WAL never took more than ~1 MiB of the volume
        db_size = (idx / "index.db").stat().st_size
        subprocess.run(["mount", "-o", "remount,size=8m", str(vol)], check=True)
        with IndexWriter.open(idx) as w:
            for i in range(50):
                w.add_file(
                    FileRecord(f"/l/more{i}.wav", 1, 1, "h", 5.0, 1, 1),
                    [(0.0, 5.0)],
                    faults.unit_rows(rng, 1, 512),
                )
        assert len(_contents(idx)) == len(got) + 50
        assert db_size > 2e6  # the index itself had used most of the 3 MB
        _no_wrong_results(idx)
