"""A running server while another process runs `clapsearch index` on its index: every answer
shows whole files only (all of a file's windows, or none of it), and the new files appear
without a restart."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import REPO, clotho_files, esc50_files

from clapsearch.audio import load_audio
from clapsearch.features import window_starts
from indexer.run import IndexOptions, run_index

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from clapsearch.server.app import create_app  # noqa: E402
from clapsearch.server.config import ServerConfig  # noqa: E402


@pytest.mark.slow
def test_index_growing_under_a_running_server(tmp_path, tiny_clap_dir, words_embedder):
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    lib.mkdir()
    first = esc50_files(2)
    for f in first:
        shutil.copy(f, lib / f.name)
    run_index(IndexOptions(roots=(str(lib),), index=str(idx), model=str(tiny_clap_dir), workers=0))
    later = clotho_files() + esc50_files(6)[2:]
    for f in later:
        shutil.copy(f, lib / f.name)
    sr, win = words_embedder.sample_rate, words_embedder.audio_config.window_samples
    windows = {
        str(lib / f.name): len(window_starts(len(load_audio(f, sr)), win)) for f in first + later
    }
    assert max(windows.values()) > 1  # long files: a half-written one would show
    app = create_app(
        ServerConfig(index=idx), embedder=words_embedder, warm=False, discovery_file=False
    )
    cmd = [sys.executable, "-m", "clapsearch.cli", "index", str(lib), "--index", str(idx)]
    cmd += ["--workers", "0", "--batch-size", "1"]
    seen_counts = []
    with TestClient(app, base_url="http://127.0.0.1:8765") as client:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 300
        while True:
            done = proc.poll() is not None
            r = client.get("/api/search", params={"q": "a sound", "k": 500, "segments": True})
            assert r.status_code == 200, r.text
            per_file: dict[str, int] = {}
            for hit in r.json()["queries"][0]["results"]:
                per_file[hit["path"]] = per_file.get(hit["path"], 0) + 1
            for path, n in per_file.items():
                assert n == windows[path], f"{os.path.basename(path)}: {n} of {windows[path]}"
            seen_counts.append(len(per_file))
            st = client.get("/api/status").json()
            assert st["files"] >= len(per_file)  # a later snapshot: never fewer files
            if done:
                break
            assert time.monotonic() < deadline, "the indexer did not finish"
            time.sleep(0.02)  # leave the indexer some CPU
        out, err = proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert seen_counts[0] == len(first) and seen_counts[-1] == len(windows)
        assert seen_counts == sorted(seen_counts)  # files only ever appear
        assert len(set(seen_counts)) > 2  # states between the first and the last were read
        # without a restart, the new files are found by text, similarity and file id
        hits = client.get("/api/search", params={"q": "pages", "k": 500}).json()
        assert {h["path"] for h in hits["queries"][0]["results"]} == set(windows)
        new_id = max(h["file_id"] for h in hits["queries"][0]["results"])
        assert client.get(f"/api/files/{new_id}/audio").status_code == 200
        assert client.get(f"/api/files/{new_id}/similar").status_code == 200
