"""The transformers-free text tower gives the full model's text vectors (fast text queries)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

TEXTS = [
    "dog barking in rain",
    "a",
    "An ambulance, passing by; in the city!!",
    "word " * 100,  # longer than any tower reads: truncated identically
    "日本語のテキスト",
]


def _both(folder):
    import torch

    from clapsearch.backends.native import NativeEmbedder
    from clapsearch.backends.native_text import NativeTextTower
    from clapsearch.device import resolve_device

    full = NativeEmbedder(str(folder), resolve_device("cpu"), torch.float32)
    return NativeTextTower(folder, full.identity), full


def test_default_model_text_vectors_match_the_full_model():
    from clapsearch.assets import default_model_dir

    fast, full = _both(default_model_dir())
    a, b = fast.embed_text(TEXTS), full.embed_text(TEXTS)
    assert a.shape == b.shape == (len(TEXTS), full.dim)
    assert np.min(np.sum(a * b, axis=1)) > 0.99999
    assert [fast.count_tokens(t) for t in TEXTS] == [full.count_tokens(t) for t in TEXTS]
    assert fast.max_text_tokens == full.max_text_tokens
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


def test_non_bert_text_towers_are_refused_so_callers_fall_back(tmp_path, tiny_native_dir):
    import shutil

    from clapsearch.backends.native_text import NativeTextTower, UnsupportedTextTower

    folder = tmp_path / "roberta-like"
    shutil.copytree(tiny_native_dir, folder)
    cfg_file = folder / "text_config" / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["model_type"] = "roberta"
    cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedTextTower):
        NativeTextTower(folder, "x")
    (folder / "tokenizer" / "tokenizer.json").unlink()
    with pytest.raises(UnsupportedTextTower):
        NativeTextTower(folder, "x")
