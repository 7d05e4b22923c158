"""`clapsearch query`: the JSON contract, the table, batching, query by example, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import CLOTHO_DIR, REPO, run_cli, write_test_index

from clapsearch.library import Library


@pytest.fixture()
def cli(tiny_index, capsys):
    base = ["--index", str(tiny_index[0]), "--device", "cpu", "--precision", "fp32"]

    def run(*args: str, stdin: bytes | None = None):
        return run_cli(["query", *args, *base], capsys, stdin)

    return run


def test_json_contract_matches_the_library(cli, tiny_index, words_embedder):
    code, out, err = cli("a dog barks in the rain", "-k", "5", "--json")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert list(doc) == ["query", "results"] and doc["query"] == "a dog barks in the rain"
    assert len(doc["results"]) == 5
    for r in doc["results"]:
        assert list(r) == ["path", "score", "start", "end", "missing"]
        assert isinstance(r["score"], float) and 0.0 <= r["start"] < r["end"]
    scores = [r["score"] for r in doc["results"]]
    assert scores == sorted(scores, reverse=True)
    with Library(tiny_index[0], embedder=words_embedder) as lib:
        expected = lib.search("a dog barks in the rain", k=5)
    assert [r["path"] for r in doc["results"]] == [h.path for h in expected]


def test_several_queries_give_one_json_line_each_in_order(cli, tmp_path):
    code, out, _ = cli("church bells", "a cat meows", "-k", "3", "--json")
    assert code == 0
    docs = [json.loads(line) for line in out.splitlines()]
    assert [d["query"] for d in docs] == ["church bells", "a cat meows"]
    assert all(len(d["results"]) == 3 for d in docs)
    queries = tmp_path / "q.txt"
    queries.write_text("church bells\n\n  a cat meows  \n", encoding="utf-8")
    code, out2, _ = cli("--queries-file", str(queries), "-k", "3", "--json")
    assert code == 0 and out2 == out
    code, out3, _ = cli("-f", "-", "-k", "3", "--json", stdin=b"church bells\na cat meows\n")
    assert code == 0 and out3 == out


def test_table_and_segments(cli, tiny_index):
    code, out, _ = cli("birds chirp in the morning", "-k", "4")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["rank", "score", "time", "path"]
    assert [line.split()[0] for line in lines[1:]] == ["1", "2", "3", "4"]
    assert all("/" in line and ":" in line.split()[2] for line in lines[1:])
    long_files = [p for p, (spans, _) in tiny_index[1].items() if len(spans) > 1]
    code, out, _ = cli("birds", "--segments", "-k", "200", "--json", "--prefix", str(CLOTHO_DIR))
    results = json.loads(out)["results"]
    windows = sum(len(tiny_index[1][p][0]) for p in long_files)
    assert len(results) == windows  # every window of every Clotho clip, not one per file
    assert len({r["path"] for r in results}) == len(long_files)


def test_filters_and_query_by_example(cli, tiny_index):
    stored = tiny_index[1]
    code, out, _ = cli("rain", "--min-duration", "12", "-k", "50", "--json")
    results = json.loads(out)["results"]
    assert code == 0 and len(results) == sum(s[-1][1] >= 12 for s, _ in stored.values())
    target = sorted(stored)[0]
    for mode in ("--audio", "--similar-to"):
        code, out, err = cli(mode, target, "-k", "5", "--json")
        assert code == 0, err
        doc = json.loads(out)
        assert doc["query"] == target and len(doc["results"]) == 5
        assert target not in [r["path"] for r in doc["results"]]


def test_long_query_is_truncated_and_said(cli):
    long = " ".join(["rain falls on a tin roof"] * 30)
    code, out, err = cli(long, "-k", "2", "--json")
    assert code == 0 and len(json.loads(out)["results"]) == 2
    assert "tokens long" in err and "ignored" in err


@pytest.mark.parametrize(
    "args, code, needle",
    [
        (["", "--json"], 2, "empty"),
        (["   "], 2, "empty"),
        ([], 2, "Give a text query"),
        (["caf\udce9 noise"], 2, "UTF-8"),
        (["dog", "--audio", "x.wav"], 2, "exactly one"),
        (["dog", "-k", "0"], 2, "-k"),
        (["dog", "--min-duration", "9", "--max-duration", "3"], 2, "minimum duration"),
    ],
)
def test_usage_errors_are_one_sentence(cli, args, code, needle):
    got, out, err = cli(*args)
    assert got == code and out == ""
    assert err.startswith("error: ") and needle in err and len(err.strip().splitlines()) == 1


def test_index_errors(capsys, tmp_path, words_embedder, tiny_index, tiny_clap_fusion_dir):
    code, _, err = run_cli(["query", "dog", "--index", str(tmp_path / "none")], capsys)
    assert code == 1 and "No index at" in err and len(err.strip().splitlines()) == 1
    write_test_index(tmp_path / "empty", words_embedder, [])
    code, _, err = run_cli(["query", "dog", "--index", str(tmp_path / "empty")], capsys)
    assert code == 1 and "is empty" in err
    bad = tmp_path / "q.txt"
    bad.write_bytes(b"dog\n\xc3\x28 rain\n")
    code, _, err = run_cli(["query", "-f", str(bad), "--index", str(tiny_index[0])], capsys)
    assert code == 2 and "not valid UTF-8" in err
    args = ["query", "dog", "--index", str(tiny_index[0]), "--model", str(tiny_clap_fusion_dir)]
    code, _, err = run_cli([*args, "--device", "cpu"], capsys)
    assert code == 1 and words_embedder.identity in err and "tiny_clap_fusion" in err


def test_help_and_index_errors_do_not_import_torch(tmp_path):
    probe = (
        "import sys\n"
        "from clapsearch.cli import main\n"
        f"sys.argv = ['clapsearch', 'query', 'dog', '--index', {str(tmp_path / 'none')!r}]\n"
        "try:\n    main()\nexcept SystemExit as ex:\n    code = ex.code\n"
        "print(code, 'torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert out.stdout.split() == ["1", "False", "False"], out.stderr


@pytest.mark.slow
def test_index_built_by_the_indexer(tmp_path, capsys, tiny_clap_dir, tiny_embedder):
    """`clapsearch index` then `clapsearch query` with no --model: the model comes from the
    index; the ranking equals a brute-force one over the vectors the indexer stored."""
    import numpy as np

    from indexer.run import IndexOptions, run_index
    from indexer.writer import IndexWriter

    folder = tmp_path / "sounds"
    folder.mkdir()
    for f in sorted((CLOTHO_DIR / "evaluation").glob("*.wav"))[:3]:
        (folder / f.name).symlink_to(f)
    index = tmp_path / "index"
    opts = IndexOptions(
        (str(folder),),
        index=str(index),
        model=str(tiny_clap_dir),
        workers=0,
        device="cpu",
        precision="fp32",
    )
    run_index(opts)
    with IndexWriter.open(index) as store:
        _, ids, vecs = store.all_vectors()
        segs = store.segments(ids)
    q = tiny_embedder.embed_text(["turning pages of a book"])[0]
    best: dict[str, float] = {}
    for sid, score in zip(ids.tolist(), (vecs @ q).tolist(), strict=True):
        path = segs[sid].path
        best[path] = max(best.get(path, -np.inf), score)
    expected = sorted(best, key=lambda p: -best[p])
    code, out, err = run_cli(
        [
            "query",
            "turning pages of a book",
            "--index",
            str(index),
            "--device",
            "cpu",
            "--precision",
            "fp32",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    results = json.loads(out)["results"]
    assert [r["path"] for r in results] == expected
    assert [r["score"] for r in results] == pytest.approx([best[p] for p in expected], abs=1e-4)
