"""The model-source registry: recognition by content, one-sentence errors, a new source as one
registration, identities as typed records."""

from __future__ import annotations

import json
import math

import pytest

from clapsearch.errors import ModelLoadError
from clapsearch.sources import (
    ModelIdentity,
    ModelSource,
    canonical_name,
    find_source,
    load_embedder,
    registry,
    supported_formats,
)


def test_sources_recognise_by_content(tmp_path, tiny_clap_dir, tiny_native_dir):
    assert find_source("default").kind == "default"
    assert find_source(str(tiny_native_dir)).kind == "clapsearch"
    assert find_source(str(tiny_clap_dir)).kind == "hf"
    assert find_source("laion/clap-htsat-unfused").kind == "hf"  # a hub id (not a path)
    renamed = tmp_path / "weights.pt"  # a suffix does not make a folder something else
    renamed.mkdir()
    (renamed / "config.json").write_text(json.dumps({"model_type": "clap"}))
    assert find_source(str(renamed)).kind == "hf"
    (renamed / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert find_source(str(renamed)) is None
    (renamed / "config.json").write_text("{not json")
    assert find_source(str(renamed)) is None  # unreadable: not recognised, no crash


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_an_existing_unknown_model_names_the_supported_formats(tmp_path, kind):
    path = tmp_path / "model.pt"
    if kind == "file":
        path.write_bytes(b"\x80\x02 not a model clapsearch knows")
    else:
        path.mkdir()
    with pytest.raises(ModelLoadError) as err:
        load_embedder(str(path), device="cpu")
    message = str(err.value)
    assert f"The {kind} {path} is not a model clapsearch can load" in message
    assert supported_formats() in message and "\n" not in message
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_embedder(str(tmp_path / "missing.pt"), device="cpu")


def test_a_new_source_is_one_registration(tmp_path, monkeypatch, tiny_embedder):
    """What issue 13's formats do: recognise a file by its header, load it as an Embedder."""
    weights = tmp_path / "odd-name.bin"
    weights.write_bytes(b"MAGIC123" + bytes(8))
    loaded = []

    def load(name, device, dtype, parts):
        loaded.append((name, parts))
        return tiny_embedder

    def recognises(name: str) -> bool:
        with open(name, "rb") as fh:
            return fh.read(8) == b"MAGIC123"

    source = ModelSource("magic", "a MAGIC123 file", recognises, load, order=5)
    monkeypatch.setitem(registry._SOURCES, "magic", source)
    assert "a MAGIC123 file" in supported_formats()
    assert load_embedder(str(weights), device="cpu", parts=["text"]) is tiny_embedder
    assert loaded == [(str(weights), frozenset({"text"}))]  # the canonical (absolute) name


def test_canonical_names_load_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ck").mkdir()
    assert canonical_name("default") == "default"  # indexes record the alias
    assert canonical_name("ck") == str(tmp_path / "ck")
    assert canonical_name("laion/clap-htsat-unfused") == "laion/clap-htsat-unfused"


def test_identity_is_a_record_with_the_models_configuration(tiny_clap_dir, tiny_native_dir):
    import torch

    from clapsearch.backends.native import NativeEmbedder

    hf = load_embedder(str(tiny_clap_dir), device="cpu", precision="fp32")
    native = load_embedder(str(tiny_native_dir), device="cpu", precision="fp32")
    for emb, kind in ((hf, "hf"), (native, "clapsearch")):
        ident = emb.model_identity
        assert ident.kind == kind and ident.key == emb.identity
        assert ident.name == str(tiny_clap_dir if kind == "hf" else tiny_native_dir)
        assert ident.audio == emb.audio_config and ident.dim == emb.dim
        assert ident.text.max_tokens == emb.max_text_tokens
        assert ident.text.pooling == ("mean" if kind == "clapsearch" else "")
        assert ModelIdentity.from_json(ident.to_json()) == ident
    whole = NativeEmbedder(str(tiny_native_dir), torch.device("cpu"), torch.float32)
    assert native.logit_scale == pytest.approx(float(whole.model.scale().detach()))
    assert hf.logit_scale == pytest.approx(math.exp(float(hf.model.logit_scale_a.detach())))


def test_the_default_alias_records_its_name(monkeypatch, tiny_native_dir):
    import clapsearch.assets

    monkeypatch.setattr(clapsearch.assets, "default_model_dir", lambda: tiny_native_dir)
    emb = load_embedder("default", device="cpu", precision="fp32")
    assert emb.model_identity.name == "default"
    assert emb.identity == f"clapsearch:{tiny_native_dir.name}@{emb.model_identity.digest}"
    monkeypatch.setattr(clapsearch.assets, "default_model_dir", lambda: None)
    monkeypatch.delenv("CLAPSEARCH_MODEL", raising=False)
    with pytest.raises(ModelLoadError, match="packaged default model is missing"):
        load_embedder(None, device="cpu")
