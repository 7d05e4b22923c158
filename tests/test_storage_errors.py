"""Storage faults name their cause in one sentence (clapsearch/index/storage.py, index/db.py):
a damaged header, a damaged page, a read-only folder, a full disk; and the WAL stays small."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from clapsearch.errors import IndexStorageError
from clapsearch.index.reader import IndexReader
from clapsearch.index.schema import FileRecord
from clapsearch.index.storage import classify, explain
from tests import faults
from tests.conftest import run_cli


def _status(capsys, idx):
    return run_cli(["status", "--index", str(idx)], capsys)


def test_damaged_header_is_named_not_no_index(tmp_path, capsys):
    idx = tmp_path / "idx"
    faults.synthetic_index(idx)
    db = idx / "index.db"
    db.write_bytes(b"NOT SQLITE AT ALL" + db.read_bytes()[17:])
    with pytest.raises(IndexStorageError) as err:
        IndexReader.open(idx)
    assert err.value.kind == "not_a_database"
    code, out, stderr = _status(capsys, idx)
    assert code == 1 and out == ""
    assert "is damaged (its header is not SQLite's)" in stderr and "No index" not in stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr


def test_damaged_page_is_named_with_what_to_do(tmp_path, capsys):
    idx = tmp_path / "idx"
    faults.synthetic_index(idx, n_files=200)
    pages = faults.db_pages(idx / "index.db")["segments"]
    faults.damage_page(idx / "index.db", pages[len(pages) // 2])
    (idx / "ann.faiss").unlink(missing_ok=True)
    with IndexReader.open(idx) as reader, pytest.raises(IndexStorageError) as err:
        reader.search(faults.unit_rows(np.random.default_rng(1), 1), 5)  # reads every vector
    assert err.value.kind == "corrupt"
    assert "clapsearch doctor" in str(err.value) and "malformed" in str(err.value)
    code, out, stderr = run_cli(
        ["query", "--similar-to", "/lib/f0000.wav", "--index", str(idx)], capsys
    )
    assert code == 1 and "is damaged" in stderr and "Traceback" not in stderr
    assert stderr.count("\n") == 1


def test_read_only_folder_is_still_readable(tmp_path, capsys):
    """An index on a read-only volume (or a folder without write permission): SQLite cannot
    create index.db-shm, so it is read as immutable (no writer can be running there)."""
    idx = tmp_path / "idx"
    want = faults.synthetic_index(idx)
    with faults.read_only(idx) as ro:
        code, out, stderr = _status(capsys, ro)
        assert code == 0, stderr
        assert f"files      {len(want)}" in out
        with IndexReader.open(ro) as reader:
            ids, vecs = reader.file_vectors("/lib/f0003.wav")
            np.testing.assert_allclose(vecs, want["/lib/f0003.wav"], atol=1e-6)


def test_read_only_folder_with_pending_wal_says_so(tmp_path, capsys):
    """Changes still in index.db-wal cannot be read without writing index.db-shm: the error
    names the folder's permissions and what to do, not "No index"."""
    idx = tmp_path / "idx"
    faults.synthetic_index(idx)
    # a crash left committed changes in the WAL (a connection that never checkpoints)
    con = sqlite3.connect(idx / "index.db", isolation_level=None)
    con.execute("PRAGMA wal_autocheckpoint = 0")
    con.execute("UPDATE index_meta SET generation = generation + 1")
    ro_src = idx.parent / "copy"
    import shutil

    shutil.copytree(idx, ro_src)  # index.db + index.db-wal, as a crash leaves them
    con.close()
    assert (ro_src / "index.db-wal").stat().st_size > 0
    (ro_src / "index.db-shm").unlink(missing_ok=True)
    with faults.read_only(ro_src) as ro:
        code, out, stderr = _status(capsys, ro)
    assert code == 1 and "not writable" in stderr and "chmod u+w" in stderr
    assert "No index" not in stderr and "Traceback" not in stderr


def test_indexing_into_a_read_only_folder_is_one_sentence(tmp_path, capsys, tiny_clap_dir):
    idx = tmp_path / "idx"
    faults.synthetic_index(idx)
    lib = tmp_path / "lib"
    lib.mkdir()
    with faults.read_only(idx) as ro:
        code, _, stderr = run_cli(
            ["index", str(lib), "--index", str(ro), "--model", str(tiny_clap_dir)], capsys
        )
    assert code != 0 and "Traceback" not in stderr and stderr.count("\n") == 1
    assert "read-only" in stderr or "not writable" in stderr or "Read-only" in stderr


@pytest.mark.parametrize(
    "err,kind",
    [
        (OSError(28, "No space left on device"), "disk_full"),
        (sqlite3.OperationalError("database or disk is full"), "disk_full"),
        (sqlite3.DatabaseError("file is not a database"), "not_a_database"),
        (sqlite3.DatabaseError("database disk image is malformed"), "corrupt"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "permission"),
        (sqlite3.OperationalError("disk I/O error"), "io"),
        (sqlite3.OperationalError("database is locked"), "busy"),
    ],
)
def test_every_cause_has_its_sentence(tmp_path, err, kind):
    assert classify(err) == kind
    message = str(explain(err, tmp_path))
    assert str(tmp_path) in message and message.endswith(".") and "\n" not in message
    if kind == "disk_full":
        assert "MB free" in message and "committed so far is kept" in message


def test_wal_stays_small_while_writing(tmp_path):
    """~4 MB of vectors written one file per transaction: SQLite's defaults let the WAL grow to
    4 MB and keep it; checkpointed every 1 MiB and cut back, it stays near 1 MiB."""
    from indexer.writer import IndexWriter

    rng = np.random.default_rng(0)
    dim = 512
    biggest = 0
    model = faults.ModelIdentity("test", "", "wal", "w", dim)
    with IndexWriter.create(tmp_path / "idx", model, faults.IndexConfig()) as w:
        wal = w.index_dir / "index.db-wal"
        for i in range(500):
            spans = [(5.0 * j, 5.0 * j + 5.0) for j in range(4)]
            w.add_file(
                FileRecord(f"/l/{i}.wav", 1, 1, "h", 20.0, 1, 1),
                spans,
                faults.unit_rows(rng, 4, dim),
            )
            biggest = max(biggest, wal.stat().st_size)
    assert biggest < 1.3 * (1 << 20), f"WAL reached {biggest / 1e6:.2f} MB"
    assert not wal.exists() or wal.stat().st_size == 0  # checkpointed at close
