"""Randomly initialised transformers CLAP checkpoints built offline, saved like hub ones.

Tests, benchmarks and the pre-default-model demo need a real `ClapModel` directory (config,
safetensors, processor, RoBERTa-style BPE tokenizer) without network. `tiny` is for tests
(seconds on CPU); `base` has the laion/clap-htsat-* architecture (HTSAT-tiny + RoBERTa-base)
for throughput benchmarks, where only the arithmetic matters, not the weights.
"""

from __future__ import annotations

import json
from pathlib import Path

_CORPUS = [
    "a dog barks in the rain",
    "birds chirp in the morning",
    "a car engine starts",
    "rain falls on a tin roof",
    "people talk in a busy cafe",
    "a siren wails in the distance",
    "water flows in a stream",
    "a door creaks open slowly",
    "footsteps on a wooden floor",
    "thunder rumbles over the hills",
    "a cat meows",
    "this is a sound of a church bell",
    "wind blows through the trees",
    "an airplane flies overhead",
    "a baby cries",
]


def _build_tokenizer(folder: Path, vocab_size: int = 0):
    """A byte-level BPE tokenizer trained on `_CORPUS`; `vocab_size` pads its vocabulary with
    unused entries to that length (roberta-base has 50265), so tests can stand in for a real
    public tokenizer without network."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        _CORPUS * 4,
        vocab_size=400,
        min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    folder.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(folder))
    # transformers 5 takes the vocabulary and merges themselves; given file names it silently
    # builds a tokenizer of the 5 special tokens only (every text would embed the same).
    vocab = json.loads((folder / "vocab.json").read_text())
    for i in range(len(vocab), vocab_size):
        vocab[f"<unused{i}>"] = i
    merges = [
        tuple(line.split())
        for line in (folder / "merges.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    tokenizer = RobertaTokenizerFast(vocab=vocab, merges=merges, model_max_length=512)
    if len(tokenizer) != len(vocab):
        raise RuntimeError(f"BPE tokenizer has {len(tokenizer)} tokens, expected {len(vocab)}")
    return tokenizer


def _gpt2_byte_symbols() -> list[str]:
    """GPT-2's byte-level alphabet in its vocabulary order: printable bytes first."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    rest = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(rest))]


def build_gpt2_tokenizer(vocab_size: int = 50257):
    """A GPT-2-shaped byte-level BPE tokenizer trained on `_CORPUS`: the 256 byte symbols in
    GPT-2's order (so `!` is id 0, which MS-CLAP 2023 pads with), learned merges, unused
    entries up to `vocab_size` and `<|endoftext|>` last (id 50256 at GPT-2's size)."""
    import tempfile

    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_CORPUS * 4, vocab_size=400, min_frequency=1)
    with tempfile.TemporaryDirectory() as scratch:
        bpe.save_model(scratch)
        merges = [
            tuple(line.split())
            for line in (Path(scratch) / "merges.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
    vocab = {symbol: i for i, symbol in enumerate(_gpt2_byte_symbols())}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    for i in range(len(vocab), vocab_size - 1):
        vocab[f"<unused{i}>"] = i
    vocab["<|endoftext|>"] = len(vocab)
    tokenizer = GPT2TokenizerFast(vocab=vocab, merges=merges, model_max_length=1024)
    if len(tokenizer) != len(vocab) or tokenizer.convert_tokens_to_ids("!") != 0:
        raise RuntimeError("the GPT-2 stand-in tokenizer is not GPT-2 shaped")
    return tokenizer


def laion_feature_extractor(truncation: str = "rand_trunc"):
    """transformers' `ClapFeatureExtractor` with the LAION-CLAP checkpoints' settings
    (48 kHz, 10 s, 64 mels from 50 Hz to 14 kHz): the reference our front end is tested
    and benchmarked against."""
    from transformers import ClapFeatureExtractor

    return ClapFeatureExtractor(
        feature_size=64,
        sampling_rate=48_000,
        hop_length=480,
        max_length_s=10,
        fft_window_size=1024,
        frequency_min=50,
        frequency_max=14_000,
        truncation=truncation,
        padding="repeatpad",
    )


def build_random_clap(
    folder: str | Path,
    size: str = "tiny",
    truncation: str = "rand_trunc",
    seed: int = 0,
    vocab_size: int = 0,
) -> Path:
    """Write a random `ClapModel` + `ClapProcessor` to `folder` and return it.

    `truncation="fusion"` builds a fused model (`enable_fusion=True`) with the HTK front end.
    `vocab_size` pads the tokenizer (and so the text tower) to that many tokens.
    """
    import tempfile

    import torch
    from transformers import ClapConfig, ClapModel, ClapProcessor

    folder = Path(folder)
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = _build_tokenizer(Path(scratch), vocab_size)
    fusion = truncation == "fusion"
    if size == "tiny":
        text = dict(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=80,
            projection_dim=16,
        )
        audio = dict(
            hidden_size=64,
            patch_embeds_hidden_size=8,
            depths=[1, 1, 1, 1],
            num_attention_heads=[1, 2, 2, 4],
            window_size=8,
            projection_dim=16,
            enable_fusion=fusion,
        )
        projection_dim = 16
    elif size == "base":  # laion/clap-htsat-* shapes
        text = dict(vocab_size=50265, projection_dim=512)
        audio = dict(enable_fusion=fusion, projection_dim=512)
        projection_dim = 512
    else:
        raise ValueError(f"size must be tiny or base, not {size!r}")
    config = ClapConfig(text_config=text, audio_config=audio, projection_dim=projection_dim)
    torch.manual_seed(seed)
    model = ClapModel(config).eval()
    model.save_pretrained(folder)
    extractor = laion_feature_extractor(truncation)
    ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    # transformers 5 nests the extractor settings in processor_config.json; hub checkpoints
    # (and transformers 4) read preprocessor_config.json, so write that too.
    extractor.save_pretrained(folder)
    return folder
