"""The clapsearch checkpoint format: round trip, atomic writes, identity, loading through `--model`."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from clapsearch.audio import load_audio
from clapsearch.errors import ModelLoadError
from clapsearch.models import (
    Provenance,
    build_model,
    load_checkpoint,
    read_checkpoint_meta,
    save_checkpoint,
    weights_digest,
)
from clapsearch.models.presets import tiny_config
from clapsearch.sources import load_embedder
from tests.conftest import esc50_files

TEXTS = ["a dog barks", "rain on a tin roof", "church bells ring"]


def _tiny_model_and_tokenizer(seed: int = 0):
    from transformers import AutoTokenizer

    torch.manual_seed(seed)
    model = build_model(tiny_config())
    # Non-trivial BatchNorm statistics, so the test notices if buffers are not saved.
    model.train()
    with torch.no_grad():
        model.encode_audio(torch.randn(4, 1, 501, 64) * 10 - 40)
    model.eval()
    return model, AutoTokenizer.from_pretrained(model.text_encoder.tokenizer_source())


def test_round_trip_gives_identical_embeddings(tmp_path):
    from clapsearch.backends.native import NativeEmbedder

    model, tok = _tiny_model_and_tokenizer()
    folder = save_checkpoint(model, tok, tmp_path / "ck", Provenance(data=("esc50",), steps=7))
    assert sorted(p.name for p in folder.iterdir()) == [
        "clapsearch.json",
        "model.safetensors",
        "text_config",
        "tokenizer",
    ]
    waves = [load_audio(p, 48_000) for p in esc50_files(2)]

    before = NativeEmbedder.from_model(model, tok)  # the in-memory model, same Embedder path
    after = NativeEmbedder(str(folder), torch.device("cpu"), torch.float32)  # the format alone
    np.testing.assert_array_equal(before.embed_text(TEXTS), after.embed_text(TEXTS))
    np.testing.assert_array_equal(before.embed_audio(waves), after.embed_audio(waves))
    assert after.dim == 16 and after.sample_rate == 48_000 and after.window_s == 5.0
    # what `load_embedder` gives (both towers without transformers): the same to float error
    light = load_embedder(str(folder), device="cpu", precision="fp32")
    np.testing.assert_allclose(light.embed_text(TEXTS), after.embed_text(TEXTS), atol=1e-5)
    np.testing.assert_allclose(light.embed_audio(waves), after.embed_audio(waves), atol=1e-5)

    loaded, _, config = load_checkpoint(folder)
    assert config == model.config and not loaded.training
    _, prov = read_checkpoint_meta(folder)
    assert prov.steps == 7 and prov.data == ("esc50",) and prov.created and prov.clapsearch_version


def test_identity_follows_the_weights_not_the_path(tmp_path):
    model, tok = _tiny_model_and_tokenizer()
    a = save_checkpoint(model, tok, tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    assert weights_digest(a) == weights_digest(b)
    other, _ = _tiny_model_and_tokenizer(seed=1)
    c = save_checkpoint(other, tok, tmp_path / "c")
    assert weights_digest(c) != weights_digest(a)
    emb = load_embedder(str(a), device="cpu", precision="fp32")
    assert emb.identity == f"clapsearch:a@{weights_digest(a)}"


def test_overwrite_is_atomic_and_a_failed_write_keeps_the_old_checkpoint(tmp_path):
    model, tok = _tiny_model_and_tokenizer()
    folder = save_checkpoint(model, tok, tmp_path / "ck", Provenance(steps=1))
    save_checkpoint(model, tok, folder, Provenance(steps=2))
    assert read_checkpoint_meta(folder)[1].steps == 2

    class BrokenTokenizer:
        def save_pretrained(self, path):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(model, BrokenTokenizer(), folder, Provenance(steps=3))
    assert read_checkpoint_meta(folder)[1].steps == 2
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # no temporary leftovers


def test_bad_checkpoint_config_is_one_clear_error(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "clapsearch.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ModelLoadError, match="not a clapsearch checkpoint"):
        load_embedder(str(folder), device="cpu", precision="fp32")
    (folder / "clapsearch.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not a readable"):
        load_checkpoint(folder)


def test_embed_cli_accepts_a_checkpoint_directory(tiny_native_dir):
    from typer.testing import CliRunner

    from clapsearch.cli import app

    result = CliRunner().invoke(
        app,
        [
            "embed",
            "--text",
            "a dog barks",
            "--text",
            "a cat",
            "--model",
            str(tiny_native_dir),
            "--device",
            "cpu",
            "--precision",
            "fp32",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    expected = load_embedder(str(tiny_native_dir), "cpu", "fp32").embed_text(
        ["a dog barks", "a cat"]
    )
    assert payload["model"].startswith("clapsearch:tiny-native@") and payload["dim"] == 16
    assert [it["input"] for it in payload["items"]] == ["a dog barks", "a cat"]
    np.testing.assert_allclose(
        np.array([it["embedding"] for it in payload["items"]]), expected, atol=1e-6
    )


def test_weights_digest_is_remembered_and_follows_rewrites(tmp_path, monkeypatch):
    """The digest is cached per file state (cold text queries skip hashing tens of MB); a
    rewritten weights file is hashed again even when its size and mtime are put back."""
    import hashlib
    import json
    import os

    from clapsearch.models import checkpoint

    monkeypatch.setattr(checkpoint, "_digest_cache_file", lambda: tmp_path / "cache.json")
    folder = tmp_path / "ckpt"
    folder.mkdir()
    weights = folder / checkpoint.WEIGHTS_FILE
    weights.write_bytes(b"a" * 1000)
    first = checkpoint.weights_digest(folder)
    assert first == hashlib.sha256(b"a" * 1000).hexdigest()[:12]
    assert list(json.loads((tmp_path / "cache.json").read_text()).values()) == [first]
    calls = []
    real = hashlib.sha256
    monkeypatch.setattr(checkpoint.hashlib, "sha256", lambda: calls.append(1) or real())
    assert checkpoint.weights_digest(folder) == first and not calls  # from the cache
    st = weights.stat()
    weights.write_bytes(b"b" * 1000)  # same size ...
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and mtime put back
    assert checkpoint.weights_digest(folder) == real(b"b" * 1000).hexdigest()[:12]
    assert calls == [1]
