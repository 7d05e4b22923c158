"""`clapsearch index --watch` (indexer/watch.py): new, modified, deleted and moved files
applied as they happen (inotify, and the polling fallback), half-written files held back,
the writer lock held, vanished folders never pruned, and kill -9 / Ctrl-C of a watching
process leaving a consistent index that the next run completes."""

from __future__ import annotations

import errno
import io
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from clapsearch.errors import ClapsearchError
from clapsearch.index.ann_cache import read_ann
from clapsearch.index.reader import IndexReader
from indexer import watch as watch_mod
from indexer.run import IndexOptions, run_index
from indexer.watch import Watcher, WatchOptions, _close_over_partners, _outermost
from tests.conftest import REPO, esc50_files, window_counts

QUIET = 0.3  # debounce in these tests: long enough for a copy, short for the suite


def _opts(lib, idx, model) -> IndexOptions:
    model = str(model) if model else None
    return IndexOptions((str(lib),), str(idx), model, workers=0, precision="fp32")


def _indexed(idx) -> set[str]:
    with IndexReader.open(idx) as store:
        return {r.path for r in store.segments(store.segment_ids_where()).values()}


def _vectors(idx, path):
    with IndexReader.open(idx) as store:
        return store.file_vectors(path)


def _batch(w: Watcher, timeout: float = 20.0):
    batch = w.next_batch(timeout=timeout)
    assert batch is not None, "no batch applied"
    return batch


def _counts(batch) -> tuple[int, int, int, int]:
    s = batch.summary
    return s.indexed, s.relinked, s.pruned, s.failed


@pytest.fixture()
def lib(tmp_path):
    lib = tmp_path / "lib"
    (lib / "sub").mkdir(parents=True)
    for f in esc50_files(3):
        shutil.copy(f, lib / f.name)
    return lib


@pytest.mark.parametrize("mode", ["inotify", "polling"])
def test_new_modified_deleted_moved(lib, tmp_path, tiny_clap_dir, monkeypatch, mode):
    lines: list[str] = []
    if mode == "polling":  # as when inotify is missing or its watch limit is reached
        err = OSError(errno.ENOSPC, "inotify watch limit reached")
        monkeypatch.setattr(watch_mod, "_start_inotify", lambda *a: (_ for _ in ()).throw(err))
    idx = tmp_path / "idx"
    wopts = WatchOptions(debounce_s=QUIET, poll_s=0.1)
    extra = esc50_files(5)[3:]
    a, b, c = sorted(lib.glob("*.flac"))
    with Watcher(_opts(lib, idx, tiny_clap_dir), wopts, report=lines.append) as w:
        assert w.mode == mode and w.catch_up.indexed == 3
        if mode == "polling":
            assert lines == [
                "the inotify watch limit was reached (raise "
                "fs.inotify.max_user_watches): polling every 0.1 s instead"
            ]
        ids_a, vecs_a = _vectors(idx, a)

        shutil.copy(extra[0], lib / "sub" / "new.flac")  # new
        assert _counts(_batch(w)) == (1, 0, 0, 0)
        assert str(lib / "sub" / "new.flac") in _indexed(idx)

        data, sr = sf.read(b)  # modified in place: re-embedded
        _, old_vecs = _vectors(idx, b)
        sf.write(b, data[::-1].copy(), sr, format="FLAC")
        assert _counts(_batch(w)) == (1, 0, 0, 0)
        _, new_vecs = _vectors(idx, b)
        assert not np.allclose(new_vecs, old_vecs)

        c.unlink()  # deleted
        assert _counts(_batch(w)) == (0, 0, 1, 0)
        assert str(c) not in _indexed(idx)

        a.rename(lib / "sub" / "moved.flac")  # moved across folders: relinked
        assert _counts(_batch(w)) == (0, 1, 0, 0)
        ids, vecs = _vectors(idx, lib / "sub" / "moved.flac")
        np.testing.assert_array_equal(ids, ids_a)  # same rows: not re-embedded
        np.testing.assert_array_equal(vecs, vecs_a)

        tmp = lib / ".new2.flac.part"  # written under a hidden name, then renamed
        shutil.copy(extra[1], tmp)
        tmp.rename(lib / "new2.flac")
        got = []
        w.run(max_batches=1, on_batch=got.append)  # the loop `clapsearch index --watch` runs
        assert [_counts(b) for b in got] == [(1, 0, 0, 0)]
        assert w.totals.indexed == 3 + 3 and w.totals.relinked == 1 and w.totals.pruned == 1

    want = {str(lib / "sub" / "new.flac"), str(b), str(lib / "sub" / "moved.flac")}
    assert _indexed(idx) == want | {str(lib / "new2.flac")}
    # the same state as a full run: nothing left for it to do
    s = run_index(_opts(lib, idx, None))
    assert (s.indexed, s.relinked, s.pruned, s.unchanged) == (0, 0, 0, 4)


def _wav_bytes(path) -> bytes:
    data, sr = sf.read(path, dtype="int16")
    buf = io.BytesIO()
    sf.write(buf, data, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_half_written_file_waits_until_complete(lib, tmp_path, tiny_clap_dir):
    idx = tmp_path / "idx"
    whole = _wav_bytes(esc50_files(4)[3])
    dest = lib / "copying.wav"
    with Watcher(_opts(lib, idx, tiny_clap_dir), WatchOptions(debounce_s=QUIET)) as w:
        if w.mode != "inotify":
            pytest.skip("inotify unavailable: an open file cannot be told from a closed one")
        with open(dest, "wb") as fh:
            fh.write(whole[: len(whole) // 2])  # the writer pauses longer than the quiet period
            fh.flush()
            assert w.next_batch(timeout=4 * QUIET) is None
            assert str(dest) not in _indexed(idx)
            fh.write(whole[len(whole) // 2 :])
        assert _counts(_batch(w)) == (1, 0, 0, 0)
    with IndexReader.open(idx) as store:
        ids, _ = store.file_vectors(dest)
        (rec,) = {r.path: r for r in store.segments(ids).values()}.values()
    assert rec.end_s == pytest.approx(5.0, abs=0.01)  # the whole clip, not half of it


def test_recent_mtime_is_still_being_written(lib, tmp_path):
    w = Watcher(_opts(lib, tmp_path / "idx", None), WatchOptions(debounce_s=2.0))
    f = next(lib.glob("*.flac"))
    now = time.monotonic()
    os.utime(f)  # just written (by a writer inotify did not report, or seen by polling)
    assert w._still_written(str(f), now)
    os.utime(f, (time.time() - 10, time.time() - 10))
    assert not w._still_written(str(f), now)
    w._pending.writing[str(f)] = now - 1  # modified and not closed yet
    assert w._still_written(str(f), now)
    assert not w._still_written(str(f), now + w.wopts.max_defer_s)  # never closed: taken
    assert not w._still_written(str(lib / "gone.flac"), now)  # a deletion is ready at once


def test_debounce_holds_busy_paths_and_both_ends_of_a_move(lib, tmp_path, monkeypatch):
    w = Watcher(_opts(lib, tmp_path / "idx", None), WatchOptions(debounce_s=1.0, max_wait_s=5))
    w.exts, applied = (".flac", ".wav"), []
    monkeypatch.setattr(w, "_apply", lambda paths, rescan: applied.append(paths) or _Empty())
    monkeypatch.setattr(w, "_still_written", lambda p, now: p.endswith("busy.wav"))
    L = str(lib)
    clock = [100.0]
    monkeypatch.setattr(watch_mod.time, "monotonic", lambda: clock[0])
    w._take(("moved", f"{L}/a.flac", f"{L}/sub/busy.wav", False))
    w._take(("touch", f"{L}/c.flac", False))
    w._take(("touch", f"{L}/notes.txt", False))  # not audio
    w._take(("touch", f"{L}/.hidden.flac", False))
    w._take(("touch", str(tmp_path / "elsewhere.flac"), False))
    assert set(w._pending.last) == {f"{L}/a.flac", f"{L}/sub/busy.wav", f"{L}/c.flac"}
    assert w._due_at() == 101.0
    clock[0] = 101.0
    w._apply_ripe(clock[0])  # busy.wav is still written: its move partner waits with it
    assert applied == [[f"{L}/c.flac"]]
    assert set(w._pending.last) == {f"{L}/a.flac", f"{L}/sub/busy.wav"}
    assert w._due_at() == 102.0

    w._pending = watch_mod._Pending()  # events never stop: what is ripe goes after max_wait
    for t in range(0, 9):
        clock[0] = 200.0 + t
        w._take(("write", f"{L}/rec.flac", False))
        if t == 0:
            w._take(("touch", f"{L}/d.flac", False))
    assert w._due_at() == 205.0  # first event + max_wait (d.flac ripe since 201)


class _Empty:
    pass


def test_helpers():
    assert _outermost(["/a", "/a/b.wav", "/ab", "/c/d", "/c/d/e/f"]) == ["/a", "/ab", "/c/d"]
    partners = {"/x": {"/y"}, "/y": {"/x"}}
    assert _close_over_partners({"/x", "/z"}, partners, set()) == {"/z"}
    assert _close_over_partners({"/x", "/y"}, partners, set()) == {"/x", "/y"}


def test_second_writer_refused_while_watching(lib, tmp_path, tiny_clap_dir):
    idx = tmp_path / "idx"
    with Watcher(_opts(lib, idx, tiny_clap_dir), WatchOptions(debounce_s=QUIET)):
        with pytest.raises(
            ClapsearchError,
            match=r"a watcher \(`clapsearch index --watch`, pid \d+\): stop it first",
        ):
            run_index(_opts(lib, idx, None))
    assert run_index(_opts(lib, idx, None)).unchanged == 3  # released on exit


def test_vanished_folder_is_not_pruned_and_overflow_rescans(lib, tmp_path, tiny_clap_dir):
    idx = tmp_path / "idx"
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(esc50_files(4)[3], other / "o.flac")
    lines: list[str] = []
    opts = IndexOptions((str(lib), str(other)), str(idx), str(tiny_clap_dir), workers=0)
    with Watcher(opts, WatchOptions(debounce_s=QUIET), report=lines.append) as w:
        if w.mode != "inotify":
            pytest.skip("inotify unavailable")
        logging.getLogger("watchdog.observers.inotify_c").warning(
            "Inotify queue overflowed; filesystem events were lost"
        )
        batch = _batch(w)
        assert batch.full_rescan and batch.summary.unchanged == 4
        shutil.rmtree(other)  # an unmounted drive looks the same
        batch = _batch(w)
        assert batch.summary.pruned == 0
        assert lines[-1].startswith(f"{other} is gone; the index keeps its files")
        assert w.roots == [str(lib)]
        shutil.rmtree(lib)
        with pytest.raises(ClapsearchError, match="Every watched folder is gone"):
            w.next_batch(timeout=20)
    assert len(_indexed(idx)) == 4  # nothing lost


# -- a watching process: kill -9 and Ctrl-C ------------------------------------------------


def _start_watching(lib, idx, model, log):
    cmd = [
        sys.executable,
        "-m",
        "clapsearch.cli",
        "index",
        str(lib),
        "--watch",
        "--index",
        str(idx),
    ]
    cmd += ["--model", str(model), "--workers", "0", "--batch-size", "1", "--precision", "fp32"]
    cmd += ["--debounce", str(QUIET)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while "watching 1 folder" not in log_text(log):
        assert proc.poll() is None, log_text(log)
        assert time.monotonic() < deadline, log_text(log)
        time.sleep(0.05)
    return proc


def log_text(log) -> str:
    log.flush()
    return open(log.name).read()


@pytest.mark.slow
def test_kill9_mid_batch_then_next_run_completes_and_ctrl_c(tmp_path, tiny_clap_dir):
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    lib.mkdir()
    clips = esc50_files(25)
    with open(tmp_path / "watch1.log", "w") as log:
        proc = _start_watching(lib, idx, tiny_clap_dir, log)
        try:
            for f in clips[:24]:  # one batch of 24 files, committed one at a time
                shutil.copy(f, lib / f.name)
            deadline = time.monotonic() + 60
            while len(window_counts(idx / "index.db")) < 3:
                assert proc.poll() is None and time.monotonic() < deadline, log_text(log)
                time.sleep(0.01)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        assert "Traceback" not in log_text(log)
    before = window_counts(idx / "index.db")
    assert 3 <= len(before) < 24, "killed after the batch, not in it"
    assert set(before.values()) == {1}  # 5 s clips: each file whole, with its one window
    kept = {p: _vectors(idx, p) for p in before}

    with open(tmp_path / "watch2.log", "w") as log:  # the next run (watching) completes it
        proc = _start_watching(lib, idx, tiny_clap_dir, log)
        try:
            assert f"indexed {24 - len(before)}, unchanged {len(before)}," in log_text(log)
            shutil.copy(clips[24], lib / "new.flac")
            deadline = time.monotonic() + 60
            while "indexed 1, relinked 0, pruned 0" not in log_text(log):
                assert proc.poll() is None and time.monotonic() < deadline, log_text(log)
                time.sleep(0.05)
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in its terminal sends
            assert proc.wait(timeout=30) == 130
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        text = log_text(log)
    assert "Traceback" not in text
    assert (
        text.strip()
        .splitlines()[-1]
        .startswith(
            f"stopped watching: {24 - len(before) + 1} indexed, 0 relinked and 0 pruned since start"
        )
    )

    after = window_counts(idx / "index.db")
    assert after == {str(lib / f.name): 1 for f in clips[:24]} | {str(lib / "new.flac"): 1}
    for p, (ids, vecs) in kept.items():  # nothing committed before the kill was redone
        got_ids, got_vecs = _vectors(idx, p)
        np.testing.assert_array_equal(got_ids, ids)
        np.testing.assert_array_equal(got_vecs, vecs)
    with IndexReader.open(idx) as store:
        meta = store.refresh_meta()
    cache = read_ann(idx / "ann.faiss")
    assert cache is not None and cache.header.generation == meta.generation
    assert cache.index.ntotal == 25


def test_watch_limit_shortfall_is_detected(tmp_path):
    """watchdog skips folders it cannot watch without a word: the watcher counts its watches
    (if watchdog's bookkeeping moved, this fails rather than the check going blind)."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "c").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "c")  # followed by a full run, not by inotify
    roots = [str(tmp_path)]
    assert watch_mod._folders(roots) == (4, 1)
    try:
        observer = watch_mod._start_inotify(roots, lambda event: None)
    except OSError:
        pytest.skip("inotify unavailable")
    try:
        assert watch_mod._unwatched_folders(observer, 4) == 0
        assert watch_mod._unwatched_folders(observer, 6) == 2  # as if 2 watches were refused
    finally:
        watch_mod._stop_observer(observer)
