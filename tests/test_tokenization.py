"""A text tower never runs on a placeholder tokenizer.

The bug this guards: a transformers CLAP folder converted from a LAION `.pt` with only
`preprocessor_config.json` added loaded with a 5-token RoBERTa tokenizer, so every text got the
same vector. Such a folder must use the roberta-base tokenizer when it is installed offline (a
stand-in with roberta-base's 50265 tokens is put into a temporary hub cache here) and otherwise
refuse with one sentence naming what is missing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from clapsearch.errors import ModelLoadError
from clapsearch.sources import load_embedder
from tests.conftest import run_cli

ROBERTA_VOCAB = 50265
WEIGHTS_ONLY = {"config.json", "model.safetensors", "preprocessor_config.json"}
TEXTS = ["a dog barks in the rain", "birds chirp in the morning", "a car engine starts"]


@pytest.fixture(scope="module")
def roberta_sized_clap(tmp_path_factory) -> Path:
    """A tiny transformers CLAP whose tokenizer and text tower have roberta-base's 50265 tokens."""
    from clapsearch.synthetic_models import build_random_clap

    return build_random_clap(
        tmp_path_factory.mktemp("rs") / "clap", "tiny", vocab_size=ROBERTA_VOCAB
    )


@pytest.fixture(scope="module")
def converted_folder(roberta_sized_clap, tmp_path_factory) -> Path:
    """What a user gets from transformers' conversion script plus preprocessor_config.json."""
    folder = tmp_path_factory.mktemp("converted") / "clap-from-pt"
    folder.mkdir()
    for name in WEIGHTS_ONLY:
        shutil.copy(roberta_sized_clap / name, folder / name)
    return folder


def install_in_hub_cache(cache: Path, repo_id: str) -> None:
    """A stand-in for roberta-base laid out as huggingface_hub's cache holds it after
    `huggingface-cli download`: the files roberta-base's hub folder has for its tokenizer
    (config.json, vocab.json, merges.txt; no tokenizer_config.json), with 50265 tokens."""
    from clapsearch.synthetic_models import _build_tokenizer

    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    tokenizer = _build_tokenizer(snapshot, ROBERTA_VOCAB)
    (snapshot / "vocab.json").write_text(json.dumps(tokenizer.get_vocab()))
    config = {"model_type": "roberta", "vocab_size": ROBERTA_VOCAB}
    (snapshot / "config.json").write_text(json.dumps(config))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def _distinct(vectors: np.ndarray) -> float:
    """Largest cosine between two different texts' vectors."""
    sims = vectors @ vectors.T
    return float(sims[~np.eye(len(vectors), dtype=bool)].max())


def test_folder_without_tokenizer_uses_installed_roberta_base(
    converted_folder, roberta_sized_clap, hub_cache
):
    install_in_hub_cache(hub_cache, "FacebookAI/roberta-base")
    model = load_embedder(str(converted_folder), device="cpu", precision="fp32")
    assert len(model.tokenizer) == ROBERTA_VOCAB
    vectors = model.embed_text(TEXTS)
    assert _distinct(vectors) < 0.9999  # the placeholder gave 1.0 for every pair
    reference = load_embedder(str(roberta_sized_clap), device="cpu", precision="fp32")
    np.testing.assert_allclose(vectors, reference.embed_text(TEXTS), atol=1e-5)


def test_legacy_hub_alias_is_found_too(converted_folder, roberta_sized_clap, hub_cache):
    install_in_hub_cache(hub_cache, "roberta-base")
    model = load_embedder(str(converted_folder), device="cpu", precision="fp32")
    assert _distinct(model.embed_text(TEXTS)) < 0.9999


def test_folder_without_tokenizer_refuses_when_none_installed(converted_folder, hub_cache):
    with pytest.raises(ModelLoadError) as err:
        load_embedder(str(converted_folder), device="cpu", precision="fp32")
    msg = str(err.value)
    assert "no tokenizer files" in msg and "roberta-base" in msg
    assert "not installed offline" in msg and "FacebookAI/roberta-base" in msg
    assert msg.count(". ") == 0 and msg.endswith(".")  # one sentence


def test_cli_refuses_in_one_sentence(converted_folder, hub_cache, capsys):
    code, out, err = run_cli(
        ["embed", "--text", "a dog", "--json", "--model", str(converted_folder)], capsys
    )
    assert code == 1 and out == ""
    assert err.startswith("error: ") and "roberta-base" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_special_tokens_only_tokenizer_is_refused(converted_folder, tmp_path, hub_cache):
    """Tokenizer files that hold only special tokens are a placeholder too."""
    from transformers import RobertaTokenizerFast

    folder = tmp_path / "placeholder"
    shutil.copytree(converted_folder, folder)
    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    RobertaTokenizerFast(vocab={t: i for i, t in enumerate(special)}, merges=[]).save_pretrained(
        str(folder)
    )
    with pytest.raises(ModelLoadError, match="knows only its 5 special tokens"):
        load_embedder(str(folder), device="cpu", precision="fp32")


def test_tokenizer_larger_than_the_tower_is_refused(tiny_clap_dir, roberta_sized_clap, tmp_path):
    """Ids past the tower's embedding table would index out of range: not this model's."""
    folder = tmp_path / "mixed"
    shutil.copytree(tiny_clap_dir, folder)
    for f in folder.glob("tokenizer*"):
        f.unlink()
    shutil.copy(roberta_sized_clap / "tokenizer.json", folder / "tokenizer.json")
    with pytest.raises(ModelLoadError, match="not this model's tokenizer"):
        load_embedder(str(folder), device="cpu", precision="fp32")


def test_folder_with_vocab_and_merges_only_loads(tiny_clap_dir, tmp_path):
    """vocab.json + merges.txt (what roberta-base's hub folder holds besides tokenizer.json)."""
    from clapsearch.synthetic_models import _build_tokenizer

    folder = tmp_path / "bpe-files"
    shutil.copytree(tiny_clap_dir, folder)
    for f in folder.glob("tokenizer*"):
        f.unlink()
    _build_tokenizer(folder)  # writes vocab.json and merges.txt
    model = load_embedder(str(folder), device="cpu", precision="fp32")
    reference = load_embedder(str(tiny_clap_dir), device="cpu", precision="fp32")
    np.testing.assert_allclose(model.embed_text(TEXTS), reference.embed_text(TEXTS), atol=1e-5)
