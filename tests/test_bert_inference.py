"""The transformers-free text side of clapsearch checkpoints (fast text queries) gives the full
model's text vectors, with the same identity."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

TEXTS = [
    "dog barking in rain",
    "a",
    "An ambulance, passing by; in the city!!",
    "word " * 100,  # longer than any tower reads: truncated identically
    "日本語のテキスト",
]


def _both(name):
    import torch

    from clapsearch.backends.native import NativeEmbedder
    from clapsearch.backends.native_text import NativeTextEmbedder
    from clapsearch.sources import load_embedder

    fast = load_embedder(str(name), device="cpu", precision="fp32", parts=["text"])
    path = fast.name_or_path  # the folder a name such as "default" resolves to
    full = NativeEmbedder(path, torch.device("cpu"), torch.float32)  # transformers' BertModel
    # the default source names what it loads "default"; the folder loaded directly keeps its path
    full.model_identity = dataclasses.replace(full.model_identity, name=fast.model_identity.name)
    assert isinstance(fast, NativeTextEmbedder)  # the source chose the transformers-free path
    assert fast.model_identity == full.model_identity  # an index accepts either
    return fast, full


def test_default_model_text_vectors_match_the_full_model():
    fast, full = _both("default")
    a, b = fast.embed_text(TEXTS), full.embed_text(TEXTS)
    assert a.shape == b.shape == (len(TEXTS), full.dim)
    assert np.min(np.sum(a * b, axis=1)) > 0.99999
    assert [fast.count_tokens(t) for t in TEXTS] == [full.count_tokens(t) for t in TEXTS]
    assert fast.max_text_tokens == full.max_text_tokens
    assert fast.logit_scale == pytest.approx(full.logit_scale, rel=1e-5)
    # a batch never changes a text's vector
    assert np.allclose(fast.embed_text(TEXTS[:1])[0], a[0], atol=1e-6)


def test_tiny_checkpoint_with_cls_pooling_and_linear_head(tmp_path):
    """Another pooling and head kind, random weights: a wrong key or op would show."""
    import torch
    from transformers import AutoTokenizer

    from clapsearch.models import build_model, save_checkpoint
    from clapsearch.models.presets import tiny_config

    torch.manual_seed(1)
    cfg = tiny_config()
    cfg = dataclasses.replace(
        cfg,
        projection="linear",
        text_encoder=dataclasses.replace(cfg.text_encoder, pooling="cls"),
    )
    model = build_model(cfg).eval()
    tokenizer = AutoTokenizer.from_pretrained(model.text_encoder.tokenizer_source())
    folder = save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    fast, full = _both(folder)
    a, b = fast.embed_text(TEXTS), full.embed_text(TEXTS)
    assert np.min(np.sum(a * b, axis=1)) > 0.99999
    assert not np.allclose(a[0], a[1], atol=1e-3)  # different texts, different vectors


def test_free_temperature_above_the_cap_is_the_whole_models(tmp_path):
    """`logit_cap: logits` (MS-CLAP): the scale is not capped (the loss clips the logits), so a
    trained 1/0.007 stays 142.9; the text side read from the file must say what the model says
    (it once capped it at 100 whatever the recipe)."""
    import torch
    from transformers import AutoTokenizer

    from clapsearch.models import build_model, save_checkpoint
    from clapsearch.models.presets import tiny_config

    torch.manual_seed(2)
    cfg = dataclasses.replace(tiny_config(), logit_cap="logits", logit_scale_init=1 / 0.007)
    model = build_model(cfg).eval()
    tokenizer = AutoTokenizer.from_pretrained(model.text_encoder.tokenizer_source())
    fast, full = _both(save_checkpoint(model, tokenizer, tmp_path / "ckpt"))
    assert full.logit_scale == pytest.approx(1 / 0.007, rel=1e-5)
    assert fast.logit_scale == pytest.approx(full.logit_scale, rel=1e-6)


def test_towers_it_cannot_reproduce_fall_back_to_the_whole_model(tmp_path, tiny_native_dir):
    import torch

    from clapsearch.backends.native import NativeEmbedder
    from clapsearch.backends.native_text import NativeTextEmbedder, UnsupportedTextTower
    from clapsearch.sources import load_embedder

    cpu = torch.device("cpu")
    roberta = tmp_path / "roberta-like"
    shutil.copytree(tiny_native_dir, roberta)
    cfg_file = roberta / "text_config" / "config.json"
    cfg_file.write_text(json.dumps({**json.loads(cfg_file.read_text()), "model_type": "roberta"}))
    with pytest.raises(UnsupportedTextTower):
        NativeTextEmbedder(str(roberta), cpu, torch.float32)
    no_json = tmp_path / "no-tokenizer-json"
    shutil.copytree(tiny_native_dir, no_json)
    (no_json / "tokenizer" / "tokenizer.json").unlink()
    with pytest.raises(UnsupportedTextTower):
        NativeTextEmbedder(str(no_json), cpu, torch.float32)
    got = load_embedder(str(no_json), device="cpu", precision="fp32", parts=["text"])
    assert isinstance(got, NativeEmbedder)
