"""Ctrl-C at any moment of `clapsearch index` is one line and exit code 130, never a
traceback; a decode worker that dies is one sentence naming the file, not BrokenProcessPool;
nothing committed is lost either way (clapsearch/cli/interrupts.py, indexer/pipeline.py)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from indexer.pipeline import DecodePool, DecodeTask, WorkerDied
from indexer.scan import scan
from tests.conftest import REPO, esc50_files


def _library(tmp_path, n=12):
    lib = tmp_path / "lib"
    lib.mkdir()
    for f in esc50_files(n):
        (lib / f.name).symlink_to(f)
    return lib


def _committed(idx) -> int:
    try:
        con = sqlite3.connect(f"file:{idx}/index.db?mode=ro", uri=True)
        try:
            return con.execute("SELECT count(*) FROM files").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _start(lib, idx, model, *extra):
    cmd = [sys.executable, "-m", "clapsearch.cli", "index", str(lib), "--index", str(idx)]
    cmd += ["--model", str(model), "--precision", "fp32", "--batch-size", "1", *extra]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )


def _worker_pids(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


@pytest.mark.slow
def test_ctrl_c_at_any_moment_is_one_line(tmp_path, tiny_clap_dir):
    """SIGINT to the process group, as a terminal sends it: during start-up imports, during
    model load and worker start, and mid-run after commits; then a run completes the index."""
    lib = _library(tmp_path)
    idx = tmp_path / "idx"
    moments = [("imports", 0.15), ("start-up", 1.0), ("start-up", 2.0), ("mid-run", None)]
    for name, delay in moments:
        proc = _start(lib, idx, tiny_clap_dir, "--workers", "1")
        t0 = time.monotonic()
        if delay is None:
            before = _committed(idx)
            while _committed(idx) < before + 2 and time.monotonic() - t0 < 120:
                time.sleep(0.02)
        else:
            time.sleep(delay)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        text = err.decode()
        if proc.returncode == 0:  # finished before the signal: nothing to check
            continue
        assert proc.returncode == 130, (name, proc.returncode, text)
        assert "Traceback" not in text and text.count("\n") == 1, (name, text)
        assert text.startswith("Interrupted"), (name, text)
        if name == "mid-run":
            assert "committed so far is kept" in text
    done = _start(lib, idx, tiny_clap_dir, "--workers", "0")
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0, err.decode()
    assert _committed(idx) == 12


def test_ctrl_c_while_workers_start_leaves_no_worker(monkeypatch):
    """KeyboardInterrupt between two worker starts: the first worker is ended, not orphaned."""
    import indexer.pipeline as pipeline

    started = []
    real = pipeline.subprocess.Popen

    def popen(*args, **kwargs):
        if started:
            raise KeyboardInterrupt
        started.append(real(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(pipeline.subprocess, "Popen", popen)
    with pytest.raises(KeyboardInterrupt):
        DecodePool(2)
    assert started and started[0].poll() is not None  # ended


@pytest.mark.parametrize("when", ["before its first result", "mid-file"])
def test_killed_worker_is_one_sentence_naming_the_file(tmp_path, when):
    lib = _library(tmp_path, 4)
    files, _ = scan([str(lib)], [".flac"])
    tasks = [DecodeTask(f, None) for f in files]
    with DecodePool(1) as pool:
        pool.wait_ready()
        pid = pool._procs[0].pid
        stream = pool.stream(tasks, 48_000, 1.0, None, part_samples=48_000)
        if when == "mid-file":
            next(stream)  # the first part of the first file has arrived
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerDied) as err:
            for _ in stream:
                pass
    message = str(err.value)
    assert "died (signal 9)" in message and "run `clapsearch index` again" in message
    assert "while reading /" in message or "while starting" in message
    assert "\n" not in message


@pytest.mark.slow
def test_killed_worker_in_a_real_run_is_one_sentence(tmp_path, tiny_clap_dir):
    lib = _library(tmp_path, 12)
    idx = tmp_path / "idx"
    proc = _start(lib, idx, tiny_clap_dir, "--workers", "1")
    deadline = time.monotonic() + 120
    while _committed(idx) < 1 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    for pid in _worker_pids(proc.pid):
        os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    text = err.decode()
    if proc.returncode == 0:
        pytest.skip("the run ended before the worker could be killed")
    assert proc.returncode == 1 and "Traceback" not in text and text.count("\n") == 1, text
    assert "decoding worker process died" in text and "BrokenProcessPool" not in text
    assert _committed(idx) >= 1  # what was committed stays


def test_native_section_holds_ctrl_c_until_it_ends():
    """A KeyboardInterrupt raised inside a Python callback of C++ code (torch's import) aborts
    the process; inside a native section the interrupt waits for the section to end."""
    from clapsearch.sigint import native_section, set_exit_now

    set_exit_now(None)
    reached = False
    with pytest.raises(KeyboardInterrupt):
        with native_section():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler ran here: held, nothing raised
            reached = True
    assert reached
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    calls = []
    set_exit_now(lambda: calls.append("exit"))
    try:
        with pytest.raises(KeyboardInterrupt), native_section():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
    finally:
        set_exit_now(None)
    assert calls == ["exit"]  # the CLI's exit-now (it never returns there)
