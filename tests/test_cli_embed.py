"""`clapsearch embed`: JSON contract, .npy output, input order, one-sentence errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from typer.testing import CliRunner

from clapsearch.cli import app
from tests.conftest import esc50_files

runner = CliRunner()


def test_embed_text_json_contract(tiny_clap_dir, tiny_embedder):
    texts = ["rain on a roof", "a dog barks"]
    result = runner.invoke(
        app,
        [
            "embed",
            "--text",
            texts[0],
            "--text",
            texts[1],
            "--model",
            str(tiny_clap_dir),
            "--precision",
            "fp32",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) == {"model", "dim", "items"}
    assert payload["model"] == tiny_embedder.identity and payload["dim"] == tiny_embedder.dim
    assert [item["input"] for item in payload["items"]] == texts
    got = np.array([item["embedding"] for item in payload["items"]], dtype=np.float32)
    np.testing.assert_allclose(got, tiny_embedder.embed_text(texts), atol=1e-6)


def test_embed_audio_npy_in_input_order(tiny_clap_dir, tiny_embedder, tmp_path):
    from clapsearch.audio import load_audio

    files = esc50_files(3)[::-1]
    out = tmp_path / "sub" / "emb.npy"
    args = ["embed", "--model", str(tiny_clap_dir), "--precision", "fp32", "-o", str(out)]
    for f in files:
        args += ["--audio", str(f)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    got = np.load(out)
    expected = tiny_embedder.embed_audio([load_audio(str(f), 48_000) for f in files])
    assert got.dtype == np.float32 and got.shape == (3, tiny_embedder.dim)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert not list(out.parent.glob("*.tmp"))


def test_embed_needs_exactly_one_input_kind(tiny_clap_dir):
    result = runner.invoke(app, ["embed", "--model", str(tiny_clap_dir), "--json"])
    assert result.exit_code == 2


def test_errors_are_one_sentence_without_traceback(tmp_path, tiny_clap_dir):
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "clapsearch.cli",
            "embed",
            "--audio",
            str(bad),
            "--model",
            str(tiny_clap_dir),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and str(bad) in proc.stderr


def test_embed_takes_several_files_after_one_flag(tiny_clap_dir, tiny_embedder, tmp_path):
    """`--audio a b c` (issue 12) gives the rows of `--audio a --audio b --audio c`."""
    files = [str(f) for f in esc50_files(3)]
    base = ["embed", "--model", str(tiny_clap_dir), "--precision", "fp32", "--json"]
    once = runner.invoke(app, [*base, "--audio", *files])
    repeated = runner.invoke(app, [*base, *sum((["--audio", f] for f in files), [])])
    assert once.exit_code == 0 and repeated.exit_code == 0, once.output + repeated.output
    a, b = json.loads(once.stdout), json.loads(repeated.stdout)
    assert [i["input"] for i in a["items"]] == files == [i["input"] for i in b["items"]]
    assert a["items"] == b["items"]
    texts = runner.invoke(app, [*base, "--text", "a dog", "rain on a roof"])
    assert [i["input"] for i in json.loads(texts.stdout)["items"]] == ["a dog", "rain on a roof"]


def test_embed_flag_without_inputs_is_one_sentence(tiny_clap_dir):
    result = runner.invoke(app, ["embed", "--audio", "--model", str(tiny_clap_dir), "--json"])
    assert result.exit_code == 2 and "no audio files given" in result.output
