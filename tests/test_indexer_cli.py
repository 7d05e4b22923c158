"""`clapsearch index` / `clapsearch status`: the status JSON contract, --errors, and user
errors as one sentence with a non-zero exit code (never a traceback)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from clapsearch.cli import app
from tests.conftest import REPO, esc50_files

runner = CliRunner()
STATUS_KEYS = {
    "index",
    "model_kind",
    "model_name",
    "files",
    "segments",
    "failed",
    "duration_s",
    "model",
    "dim",
    "index_type",
    "recall_at_10",
    "bytes_on_disk",
}


@pytest.mark.slow
def test_index_then_status_json_and_errors(tmp_path, tiny_clap_dir, tiny_embedder):
    lib = tmp_path / "lib"
    lib.mkdir()
    for f in esc50_files(3):
        shutil.copy(f, lib / f.name)
    (lib / "broken.wav").write_bytes(b"RIFF\x00\x00")
    idx = tmp_path / "idx"
    res = runner.invoke(
        app,
        [
            "index",
            str(lib),
            "--index",
            str(idx),
            "--model",
            str(tiny_clap_dir),
            "--workers",
            "0",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    run = json.loads(res.stdout)
    assert (run["indexed"], run["failed"], run["index_type"]) == (3, 1, "flat")

    res = runner.invoke(app, ["status", "--index", str(idx), "--json"])
    payload = json.loads(res.stdout)
    assert set(payload) == STATUS_KEYS
    assert payload["index"] == str(idx)
    assert (payload["files"], payload["segments"], payload["failed"]) == (3, 3, 1)
    assert payload["model"] == tiny_embedder.identity and payload["dim"] == tiny_embedder.dim
    assert payload["duration_s"] == pytest.approx(15.0, abs=0.01)
    assert payload["recall_at_10"] is None and payload["bytes_on_disk"] > 0

    res = runner.invoke(app, ["status", "--index", str(idx), "--errors"])
    assert res.exit_code == 0
    assert f"{lib / 'broken.wav'}: truncated" in res.stdout

    env = dict(os.environ, CLAPSEARCH_INDEX=str(idx))  # the default location follows the env
    res = runner.invoke(app, ["status", "--json"], env=env)
    assert json.loads(res.stdout)["files"] == 3
    assert json.loads(res.stdout)["index"] == str(idx)


@pytest.mark.slow
def test_user_errors_are_one_sentence(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    cases = {
        "clapsearch index DIR": ["status", "--index", str(tmp_path / "none")],
        "does not exist": ["index", str(tmp_path / "missing_dir"), "--index", str(tmp_path)],
    }
    for expected, args in cases.items():
        proc = subprocess.run(
            [sys.executable, "-m", "clapsearch.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode != 0
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]


def test_a_run_says_what_it_is_doing_and_an_empty_folder_says_so(tmp_path, tiny_clap_dir, capsys):
    """Stage lines from the first second (issue 12), through `IndexOptions.notify`: the CLI
    prints them on a terminal; an empty folder ends with a sentence, not a bare "indexed 0"."""
    import shutil

    from indexer.run import IndexOptions, run_index
    from tests.conftest import esc50_files, run_cli

    lib = tmp_path / "lib"
    lib.mkdir()
    for f in esc50_files(2):
        shutil.copy(f, lib / f.name)
    lines: list[str] = []
    opts = IndexOptions(
        roots=(str(lib),),
        index=str(tmp_path / "idx"),
        model=str(tiny_clap_dir),
        workers=0,
        notify=lines.append,
    )
    summary = run_index(opts)
    assert summary.indexed == 2 and summary.found == 2
    assert lines[0].startswith("loading the model")  # a new index: the model comes first
    assert lines[1].startswith("scanning 1 folder")
    assert lines[2] == "found 2 audio files: 2 to embed, 0 unchanged"
    lines.clear()
    run_index(opts)  # nothing to embed: the model is never loaded
    assert [ln.split(":")[0] for ln in lines] == [
        "scanning 1 folder for audio ...",
        "found 2 audio files",
    ]

    empty = tmp_path / "empty"
    (empty / "docs").mkdir(parents=True)
    (empty / "docs" / "readme.txt").write_text("no audio here")
    code, _, err = run_cli(["index", str(empty), "--index", str(tmp_path / "idx")], capsys)
    assert code == 0 and f"No audio files found under {empty}" in err and ".flac" in err


def test_ctrl_c_says_how_many_files_this_run_saved():
    from clapsearch.cli.index import interrupted_keeps_commits
    from clapsearch.errors import Interrupted
    from indexer.run import IndexSummary

    summary = IndexSummary("/tmp/idx")
    with pytest.raises(Interrupted) as caught, interrupted_keeps_commits(summary):
        summary.indexed, summary.relinked = 3, 1
        raise KeyboardInterrupt
    message = str(caught.value)
    assert message.startswith("Interrupted: 4 files indexed in this run;")
    assert "committed so far is kept" in message and "again to continue" in message
