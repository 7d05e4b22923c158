"""Keyword-to-caption augmentation (template generator, T5-style hook) and the fusion front
end in training: real lengths decide `is_longer`, crops are random."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clapsearch.config import AudioConfig
from clapsearch.features import clap_features
from tests.conftest import esc50_files
from trainer.config import DataConfig
from trainer.data import Example, ItemMaker
from trainer.keywords import KeywordConfig, join_keywords, make_generator, pick_caption


def test_template_generator_writes_every_keyword_into_a_sentence():
    gen = make_generator(KeywordConfig(generator="template"))
    captions = {gen.generate(["dog_bark", "rain"], np.random.default_rng(s)) for s in range(20)}
    assert len(captions) > 2  # several templates and orders
    for c in captions:
        assert "dog bark" in c and "rain" in c and " and " in c
    again = gen.generate(["dog_bark", "rain"], np.random.default_rng(3))
    assert again == gen.generate(["dog_bark", "rain"], np.random.default_rng(3))
    assert join_keywords(["a", "b", "c"]) == "a, b and c"


def test_pick_caption_uses_keywords_when_told_and_always_without_captions():
    gen = make_generator(KeywordConfig(generator="template"))
    rng = np.random.default_rng(0)
    assert pick_caption(("a dog",), ("dog",), rng, gen, prob=0.0) == "a dog"
    assert pick_caption(("a dog",), ("dog",), rng, gen, prob=1.0) != "a dog"
    assert "siren" in pick_caption((), ("siren",), rng, gen, prob=0.0)
    assert pick_caption((), ("siren",), rng, None, prob=0.0) == "siren"  # no generator: the words


@pytest.fixture(scope="module")
def tiny_seq2seq(tmp_path_factory):
    """A random 1-layer T5 with MiniLM's (BERT) tokenizer: the hook's plumbing, offline."""
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    from clapsearch.models.presets import minilm_path

    folder = tmp_path_factory.mktemp("t5")
    tok = AutoTokenizer.from_pretrained(minilm_path())
    config = T5Config(
        vocab_size=tok.vocab_size,
        d_model=16,
        d_ff=32,
        d_kv=8,
        num_layers=1,
        num_heads=2,
        decoder_start_token_id=tok.pad_token_id,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.sep_token_id,
    )
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def test_t5_hook_generates_once_per_keyword_set(tiny_seq2seq, monkeypatch):
    gen = make_generator(
        KeywordConfig(
            generator="t5", model=tiny_seq2seq, prompt="write: {keywords}", max_new_tokens=4
        )
    )
    calls = []
    real = gen.model.generate

    def counting(**kw):
        calls.append(kw["input_ids"].shape)
        return real(**kw)

    monkeypatch.setattr(gen.model, "generate", counting)
    rng = np.random.default_rng(0)
    first = gen.generate(["rain", "thunder"], rng)
    assert isinstance(first, str) and first
    assert gen.generate(["thunder", "rain"], rng) == first  # same set: cached, not regenerated
    assert len(calls) == 1


def test_fusion_training_clips_keep_their_real_length_and_crops_are_random():
    front = AudioConfig(window_s=1.0, truncation="fusion")
    wave = np.random.default_rng(0).standard_normal(48_000 * 3).astype(np.float32)
    short = wave[:24_000]
    maker = ItemMaker(DataConfig(clip_s=0.0), front)
    rng = np.random.default_rng(1)
    long_clip, short_clip = maker.fit(wave, rng), maker.fit(short, rng)
    assert long_clip.shape == (48_000 * 3,) and short_clip.shape == (24_000,)  # never padded
    _, is_longer = clap_features([torch.from_numpy(long_clip), torch.from_numpy(short_clip)], front)
    assert is_longer.tolist() == [True, False]
    # the case: clips shorter than the window, a clip_s above it: none is "long"
    capped = ItemMaker(DataConfig(clip_s=2.0), front)
    _, is_longer = clap_features([torch.from_numpy(capped.fit(short, rng))], front)
    assert is_longer.tolist() == [False]
    # random crops in training, fixed at inference
    fixed = [clap_features([torch.from_numpy(long_clip)], front)[0] for _ in range(2)]
    assert torch.equal(fixed[0], fixed[1])
    drawn = [
        clap_features([torch.from_numpy(long_clip)], front, np.random.default_rng(s))[0]
        for s in range(2)
    ]
    assert not torch.equal(drawn[0][:, 1:], drawn[1][:, 1:])  # the three crops moved
    assert torch.equal(drawn[0][:, 0], fixed[0][:, 0])  # the whole-clip view did not


def test_keyword_captions_reach_training_items():
    files = esc50_files(1)
    data = DataConfig(keywords=KeywordConfig(generator="template", prob=1.0), clip_s=1.0)
    maker = ItemMaker(data, AudioConfig(window_s=1.0))
    caption = maker.caption(
        Example(str(files[0]), ("own",), ("keyword_x",)), np.random.default_rng(0)
    )
    assert "keyword x" in caption
