"""Indexer: incremental runs (touch, modify, delete, move), hostile and odd files, model
mismatch, scan rules, and vectors equal to `Embedder.embed_audio` per window."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from clapsearch.errors import ModelMismatchError, UsageError
from clapsearch.index.reader import IndexReader
from indexer.run import IndexOptions, run_index
from indexer.scan import scan
from tests.conftest import esc50_files


def _index(root, idx, model, **kw):
    kw.setdefault("workers", 0)
    model = str(model) if model else None
    return run_index(IndexOptions(roots=(str(root),), index=str(idx), model=model, **kw))


def _library(tmp_path, n=6):
    lib = tmp_path / "lib"
    lib.mkdir()
    for f in esc50_files(n):
        shutil.copy(f, lib / f.name)
    return lib


def _rows(idx):
    """path -> sorted (start, end) spans, and the total segment count."""
    with IndexReader.open(idx) as store:
        ids = store.segment_ids_where()
        recs = store.segments(ids).values()
        out: dict[str, list] = {}
        for r in recs:
            out.setdefault(r.path, []).append((r.start_s, r.end_s))
        return {p: sorted(v) for p, v in out.items()}, len(ids)


def _topk(idx, queries, k=5):
    with IndexReader.open(idx) as store, store.snapshot():
        scores, ids = store.search(queries, k)
        recs = store.segments(ids.ravel())
        return [[(recs[i].path, recs[i].start_s) for i in row if i >= 0] for row in ids], scores


@pytest.mark.slow
def test_incremental_touch_modify_delete_move(tmp_path, tiny_clap_dir):
    lib = _library(tmp_path)
    idx = tmp_path / "idx"
    s = _index(lib, idx, tiny_clap_dir)
    assert (s.indexed, s.unchanged, s.failed) == (6, 0, 0)
    files = sorted(lib.iterdir())
    with IndexReader.open(idx) as store:
        moved_ids, moved_vecs = store.file_vectors(files[3])

    s = _index(lib, idx, None)  # model comes from the index
    assert (s.indexed, s.unchanged) == (0, 6)

    os.utime(files[0], ns=(1, 1_000_000_000))  # touched: re-embedded, same vectors
    data, sr = sf.read(files[1])
    sf.write(files[1], data[::-1].copy(), sr, format="FLAC")  # modified
    files[2].unlink()  # deleted
    (lib / "sub").mkdir()
    files[3].rename(lib / "sub" / "renamed.flac")  # moved
    s = _index(lib, idx, None)
    assert (s.indexed, s.unchanged, s.pruned, s.relinked) == (2, 2, 1, 1)

    rows, n_seg = _rows(idx)
    assert str(files[2]) not in rows and str(files[3]) not in rows
    assert len(rows) == 5 and n_seg == 5  # 5 s clips: one window each, no duplicates
    with IndexReader.open(idx) as store:
        ids, vecs = store.file_vectors(lib / "sub" / "renamed.flac")
    np.testing.assert_array_equal(ids, moved_ids)  # relinked, not re-embedded
    np.testing.assert_array_equal(vecs, moved_vecs)

    clean = tmp_path / "clean"
    _index(lib, clean, tiny_clap_dir)
    q = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    got, s1 = _topk(idx, q)
    want, s2 = _topk(clean, q)
    assert got == want
    np.testing.assert_array_equal(s1, s2)


@pytest.mark.slow
def test_vectors_equal_embed_audio_per_window(tmp_path, tiny_clap_dir, tiny_embedder):
    from clapsearch.audio import load_audio

    lib = tmp_path / "lib"
    lib.mkdir()
    sr = 16_000
    t = np.arange(25 * sr) / sr
    y = (0.3 * np.sin(2 * np.pi * 440 * t * (1 + t / 25))).astype(np.float32)
    sf.write(lib / "sweep.wav", y, sr)
    _index(lib, tmp_path / "idx", tiny_clap_dir, hop_s=5.0, workers=1, precision="fp32")
    with IndexReader.open(tmp_path / "idx") as store:
        ids, vecs = store.file_vectors(lib / "sweep.wav")
        recs = store.segments(ids)
    spans = [(recs[i].start_s, recs[i].end_s) for i in ids]
    assert spans == [(0.0, 10.0), (5.0, 15.0), (10.0, 20.0), (15.0, 25.0)]
    wave = load_audio(lib / "sweep.wav", tiny_embedder.sample_rate)
    win = tiny_embedder.audio_config.window_samples
    want = tiny_embedder.embed_audio([wave[int(a * 48000) :][:win] for a, _ in spans])
    np.testing.assert_allclose(vecs, want, atol=2e-3)  # float16 storage


def test_hostile_files_are_recorded_and_skipped(tmp_path, tiny_clap_dir):
    lib = _library(tmp_path, 2)
    (lib / "empty.wav").write_bytes(b"")
    (lib / "notes.wav").write_text("this is not audio\n" * 50)
    good = esc50_files(3)[2].read_bytes()
    (lib / "cut.flac").write_bytes(good[: len(good) // 3])
    (lib / "folder.wav").mkdir()  # a directory with an audio name: walked, not decoded
    (lib / ".hidden.wav").write_bytes(good)
    s = _index(lib, tmp_path / "idx", tiny_clap_dir)
    assert s.indexed == 2 and s.failed == 3
    with IndexReader.open(tmp_path / "idx") as store:
        reasons = {os.path.basename(f.path): f.reason for f in store.failures()}
        assert store.status().files == 2
    assert reasons == {"empty.wav": "empty", "notes.wav": "not_audio", "cut.flac": "truncated"}
    s = _index(lib, tmp_path / "idx", None)  # unchanged failures are not decoded again
    assert (s.indexed, s.failed, s.unchanged) == (0, 3, 2)
    (lib / "notes.wav").unlink()
    s = _index(lib, tmp_path / "idx", None)
    with IndexReader.open(tmp_path / "idx") as store:
        assert len(store.failures()) == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_permission_denied_is_a_failure(tmp_path, tiny_clap_dir):
    lib = _library(tmp_path, 2)
    locked = next(lib.iterdir())
    locked.chmod(0)
    s = _index(lib, tmp_path / "idx", tiny_clap_dir)
    locked.chmod(0o644)
    assert s.indexed == 1 and s.failed == 1


@pytest.mark.slow
def test_odd_valid_files_are_indexed(tmp_path, tiny_clap_dir):
    lib = tmp_path / "lib"
    lib.mkdir()
    rng = np.random.default_rng(0)

    def tone(sr, seconds, channels=1):
        t = np.arange(int(sr * seconds)) / sr
        y = 0.2 * np.sin(2 * np.pi * 330 * t) + 0.01 * rng.standard_normal(len(t))
        return np.repeat(y[:, None], channels, axis=1).astype(np.float32)

    sf.write(lib / "low_8k.wav", tone(8000, 3), 8000)
    sf.write(lib / "high_192k.wav", tone(192_000, 1), 192_000)
    sf.write(lib / "eight_channels.wav", tone(48_000, 2, 8), 48_000)
    sf.write(lib / "short_50ms.wav", tone(44_100, 0.05), 44_100)
    sf.write(lib / "Straße – 雨の音 🌧.flac", tone(22_050, 2), 22_050)
    long = np.zeros(10 * 60 * 8000, np.float32)  # 10 minutes: silence with a tone burst
    long[300 * 8000 : 302 * 8000] = tone(8000, 2)[:, 0]
    sf.write(lib / "ten_minutes.wav", long, 8000, subtype="PCM_16")
    s = _index(lib, tmp_path / "idx", tiny_clap_dir)
    assert (s.indexed, s.failed) == (6, 0), s.failures
    rows, n_seg = _rows(tmp_path / "idx")
    assert n_seg == 5 + 60
    assert rows[str(lib / "ten_minutes.wav")][-1] == (590.0, 600.0)
    assert rows[str(lib / "short_50ms.wav")] == [(0.0, pytest.approx(0.05, abs=1e-3))]
    with IndexReader.open(tmp_path / "idx") as store:
        assert store.status().duration_s == pytest.approx(3 + 1 + 2 + 0.05 + 2 + 600, abs=0.01)


def test_model_mismatch_refused_then_reembed(
    tmp_path, tiny_clap_dir, tiny_clap_fusion_dir, tiny_embedder
):
    lib = _library(tmp_path, 2)
    idx = tmp_path / "idx"
    _index(lib, idx, tiny_clap_dir)
    with pytest.raises(ModelMismatchError) as err:
        _index(lib, idx, tiny_clap_fusion_dir)
    msg = str(err.value)
    assert tiny_embedder.identity in msg and "tiny" in msg and "--reembed" in msg
    s = _index(lib, idx, tiny_clap_fusion_dir, reembed=True)
    assert s.indexed == 2
    with IndexReader.open(idx) as store:
        assert store.meta.model != tiny_embedder.identity
        assert store.meta.model_identity.name == str(tiny_clap_fusion_dir)
    with pytest.raises(UsageError, match="hop"):
        _index(lib, idx, None, hop_s=2.5)


def test_scan_hidden_symlink_loops_and_duplicates(tmp_path):
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / ".git").mkdir()
    for p in (
        root / "a" / "x.wav",
        root / "a" / "b" / "y.FLAC",
        root / ".git" / "z.wav",
        root / "a" / "readme.txt",
    ):
        p.write_bytes(b"RIFF")
    (root / "a" / "b" / "loop").symlink_to(root / "a")  # cycle
    (root / "alias.wav").symlink_to(root / "a" / "x.wav")  # same file twice
    (root / "dangling.wav").symlink_to(root / "nowhere.wav")
    files, problems = scan([root], (".wav", ".flac"))
    names = [os.path.relpath(f.path, root) for f in files]
    assert names == ["a/b/y.FLAC", "alias.wav"] or names == ["a/b/y.FLAC", "a/x.wav"]
    assert [os.path.basename(p.path) for p in problems] == ["dangling.wav"]


def test_missing_root_is_one_sentence(tmp_path, tiny_clap_dir):
    with pytest.raises(UsageError, match="does not exist"):
        _index(tmp_path / "nope", tmp_path / "idx", tiny_clap_dir)


def test_index_killed_while_being_created_is_recreated(tmp_path, tiny_clap_dir):
    import sqlite3

    idx = tmp_path / "idx"
    idx.mkdir()
    con = sqlite3.connect(idx / "index.db")  # what a kill before the first COMMIT leaves
    con.execute("PRAGMA journal_mode = WAL")
    con.close()
    (idx / "ann.faiss.tmp-999").write_bytes(b"half a file")
    assert not IndexReader.exists(idx)
    lib = _library(tmp_path, 1)
    assert _index(lib, idx, tiny_clap_dir).indexed == 1
    assert not (idx / "ann.faiss.tmp-999").exists()


def test_cache_checkpoints_during_a_run(tmp_path, tiny_clap_dir, monkeypatch):
    from clapsearch.index.ann_cache import read_ann

    monkeypatch.setattr("indexer.run.CHECKPOINT_S", 0.0)  # after every commit
    calls = []
    import indexer.run as run_mod

    real = run_mod._checkpoint_ann
    monkeypatch.setattr(run_mod, "_checkpoint_ann", lambda store: calls.append(1) or real(store))
    lib = _library(tmp_path, 4)
    _index(lib, tmp_path / "idx", tiny_clap_dir, batch_size=1)  # one file a forward, a commit
    assert len(calls) == 4
    cache = read_ann(tmp_path / "idx" / "ann.faiss")
    with IndexReader.open(tmp_path / "idx") as store:
        ids = store.segment_ids_where()
        assert cache.header.generation == store.meta.generation
    np.testing.assert_array_equal(cache.ids, ids)


def test_plan_root_test_matches_whole_path_components():
    """`plan._within` (folders looked up in a set) against the plain definition."""
    import random

    from indexer.plan import _within

    def under(path, roots):
        return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)

    rng = random.Random(0)

    def path():
        return "/" + "/".join(
            rng.choice(["a", "b", "ab", "c.wav"]) for _ in range(rng.randint(0, 4))
        )

    for _ in range(5000):
        roots = [path() for _ in range(rng.randint(0, 8))] + ["/"] * (rng.random() < 0.05)
        p = os.path.normpath(path())
        assert _within(roots)(p) == under(p, roots), (p, roots)
    assert _within(["/a/b"])("/a/b/c.wav") and not _within(["/a/b"])("/a/bc/c.wav")


def test_files_of_one_forward_commit_in_one_transaction(tmp_path, tiny_clap_dir, monkeypatch):
    """Grouped commits: 6 one-window files in forwards of 4 -> fewer transactions than files,
    each file whole (crash safety of a group: tests/test_indexer_crash.py)."""
    import indexer.run as run_mod

    groups = []
    real = run_mod._commit_group
    monkeypatch.setattr(
        run_mod,
        "_commit_group",
        lambda store, items, s: groups.append(len(items)) or real(store, items, s),
    )
    lib = _library(tmp_path, 6)
    summary = _index(lib, tmp_path / "idx", tiny_clap_dir, batch_size=4)
    assert summary.indexed == 6 and sum(groups) == 6 and max(groups) > 1
    with IndexReader.open(tmp_path / "idx") as store:
        assert store.status().files == 6
