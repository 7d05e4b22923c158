"""`clapsearch query` and `classify` use a `clapsearch serve` running on the same index (its
model is warm): the same answers as a local run, without importing torch; a stopped server, a
stale discovery file or `--no-server` mean the work is done locally."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, run_cli_process

from clapsearch.assets import demo_sounds_dir

pytest.importorskip("fastapi")

SOUNDS = ("dog", "rain", "rooster", "piano")


def cli(*args: str) -> tuple[int, str, bool]:
    """(exit code, stdout, whether torch was imported) of a `clapsearch` process."""
    code, out, _, torch_loaded = run_cli_process(*args)
    return code, out, torch_loaded


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(index dir, library dir) with a `clapsearch serve` process running on the index."""
    from indexer.run import IndexOptions, run_index

    root = tmp_path_factory.mktemp("client")
    lib, idx = root / "sounds", root / "idx"
    lib.mkdir()
    for name in SOUNDS:
        shutil.copy(demo_sounds_dir() / f"{name}.flac", lib / f"{name}.flac")
    run_index(IndexOptions(roots=(str(lib),), index=str(idx), workers=0))
    cmd = [sys.executable, "-m", "clapsearch.cli", "serve", "--index", str(idx), "--port", "0"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while not (idx / "server.json").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"clapsearch serve did not start: {proc.stdout.read().decode()}")
        time.sleep(0.2)
    yield idx, lib
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)


def _same_results(a: str, b: str) -> None:
    docs_a = [json.loads(line) for line in a.splitlines()]
    docs_b = [json.loads(line) for line in b.splitlines()]
    assert [d["query"] for d in docs_a] == [d["query"] for d in docs_b]
    for x, y in zip(docs_a, docs_b, strict=True):
        assert [r["path"] for r in x["results"]] == [r["path"] for r in y["results"]]
        assert set(x["results"][0]) == {"path", "score", "start", "end", "missing"}
        for r, s in zip(x["results"], y["results"], strict=True):
            # the server runs the model at `--precision auto` (bf16 on CPUs with bf16 units),
            # a local text query at fp32: the same ranking, scores within bf16's rounding
            assert r["score"] == pytest.approx(s["score"], abs=5e-3)


def test_query_through_the_server_equals_a_local_run(served):
    idx, lib = served
    args = ["query", "a dog barking", "rain falling", "-k", "3", "--json", "--index", str(idx)]
    code, via_server, torch_loaded = cli(*args)
    assert code == 0 and not torch_loaded  # the server answered
    code, local, torch_loaded = cli(*args, "--no-server")
    assert code == 0 and torch_loaded
    _same_results(via_server, local)
    # by example: the clip is sent to the server, which leaves the same file out
    args = ["query", "--audio", str(lib / "dog.flac"), "-k", "3", "--json", "--index", str(idx)]
    code, via_server, torch_loaded = cli(*args)
    assert code == 0 and not torch_loaded
    code, local, _ = cli(*args, "--no-server")
    _same_results(via_server, local)
    results = json.loads(via_server)["results"]
    assert str(lib / "dog.flac") not in [r["path"] for r in results] and len(results) == 3


def test_classify_through_the_server_equals_a_local_run(served):
    idx, lib = served
    files = [str(lib / "dog.flac"), str(lib / "piano.flac")]
    args = ["classify", *files, "--labels", "dog,piano,rain", "--json", "--index", str(idx)]
    code, via_server, torch_loaded = cli(*args)
    assert code == 0 and not torch_loaded
    code, local, torch_loaded = cli(*args, "--no-server")
    assert code == 0 and torch_loaded
    a = [json.loads(line) for line in via_server.splitlines()]
    b = [json.loads(line) for line in local.splitlines()]
    assert [x["path"] for x in a] == files == [x["path"] for x in b]
    for x, y in zip(a, b, strict=True):
        assert [s["label"] for s in x["labels"]] == [s["label"] for s in y["labels"]]
        for s, t in zip(x["labels"], y["labels"], strict=True):
            assert s["cosine"] == pytest.approx(t["cosine"], abs=5e-3)  # bf16 vs bf16 here
    # a file the index does not hold is classified here
    outside = idx.parent / "outside.flac"
    shutil.copy(lib / "rain.flac", outside)
    code, out, torch_loaded = cli(
        "classify", str(outside), "--labels", "rain,dog", "--json", "--index", str(idx)
    )
    assert code == 0 and torch_loaded and json.loads(out)["path"] == str(outside)


def test_a_dead_server_is_passed_over(served, tmp_path):
    """A discovery file left by a killed server (its pid gone) is ignored: work is local."""
    idx, _ = served
    copy = tmp_path / "idx"
    shutil.copytree(idx, copy)
    info = json.loads((copy / "server.json").read_text())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (copy / "server.json").write_text(json.dumps({**info, "pid": dead.pid, "index": str(copy)}))
    code, out, torch_loaded = cli("query", "a rooster", "-k", "1", "--json", "--index", str(copy))
    assert code == 0 and torch_loaded and json.loads(out)["results"]
