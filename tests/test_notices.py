"""The built-in model is announced honestly: once per index in `index`/`query`, always in
`status`, with the model card's own words and the command that switches the index."""

from __future__ import annotations

import json
import re
import shutil

from conftest import REPO, esc50_files, run_cli

from clapsearch.notices import BUILT_IN_MODEL, NOTICE_MARKER, switch_command


def test_notice_text_is_the_model_cards():
    card = (REPO / "docs" / "model-card.md").read_text()
    section = card.split("## Notice text", 1)[1].split("\n## ", 1)[0]
    quoted = " ".join(line[1:].strip() for line in section.splitlines() if line.startswith(">"))
    assert " ".join(BUILT_IN_MODEL.split()) == " ".join(quoted.split())


def test_built_in_model_notice_once_per_index_and_always_in_status(tmp_path, capsys):
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    lib.mkdir()
    for f in esc50_files(2):
        shutil.copy(f, lib / f.name)
    code, _, err = run_cli(["index", str(lib), "--index", str(idx), "--workers", "0"], capsys)
    assert code == 0 and err.count("note: The built-in model is small") == 1
    assert f"`{switch_command(str(lib))}`" in err
    assert (idx / NOTICE_MARKER).exists()
    code, _, err = run_cli(["query", "a dog", "--index", str(idx), "--no-server"], capsys)
    assert code == 0 and "built-in model" not in err  # said once already
    code, out, err = run_cli(["status", "--index", str(idx)], capsys)
    assert "the built-in model" in out and "note: The built-in model is small" in err
    code, out, _ = run_cli(["status", "--index", str(idx), "--json"], capsys)
    payload = json.loads(out)
    assert (payload["model_kind"], payload["model_name"]) == ("built-in", "default")
    assert payload["index"] == str(idx) and switch_command() in payload["notice"]
    # a fresh index that is only queried gets it on its first query
    (idx / NOTICE_MARKER).unlink()
    code, _, err = run_cli(["query", "a dog", "--index", str(idx), "--no-server"], capsys)
    assert err.count("note: The built-in model is small") == 1


def test_other_models_get_no_notice(tmp_path, tiny_clap_dir, capsys):
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    lib.mkdir()
    shutil.copy(esc50_files(1)[0], lib / "a.flac")
    args = ["index", str(lib), "--index", str(idx), "--model", str(tiny_clap_dir), "--workers", "0"]
    code, _, err = run_cli(args, capsys)
    assert code == 0 and "built-in" not in err
    code, out, err = run_cli(["status", "--index", str(idx), "--json"], capsys)
    payload = json.loads(out)
    assert payload["model_kind"] == "hf" and "notice" not in payload and "built-in" not in err
    assert re.fullmatch(r".*tiny_clap.*", payload["model_name"])
