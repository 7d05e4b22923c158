"""The tokenizer a text tower reads: its own files, else the public one it was trained with when
that is installed offline; never a placeholder.

Why this module exists: transformers builds a tokenizer from whatever a folder holds. A CLAP
folder converted from a LAION `.pt` holds weights and configs but no vocabulary, and
`AutoTokenizer` then silently returns a RoBERTa tokenizer of its 5 special tokens: every text
becomes `<s></s>` and gets the same vector. MS-CLAP `.pth` and LAION `.pt` files never carry a
tokenizer at all. So a tokenizer is accepted only when it really tokenizes text, and one that is
missing is looked up by the text tower's family among the known public tokenizers, in the local
Hugging Face cache (downloaded only when the hub is not offline); failing that, loading stops
with one sentence naming what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clapsearch.errors import ModelLoadError

# Files that hold a vocabulary (tokenizer_config.json / special_tokens_map.json alone do not).
VOCAB_FILES = (
    "tokenizer.json",
    "vocab.json",
    "vocab.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)
PROBE = "a dog barks while rain falls on the roof"


@dataclass(frozen=True)
class KnownTokenizer:
    """A public tokenizer a released CLAP text tower was trained with."""

    name: str  # what users call it
    hub_ids: tuple[str, ...]  # current hub id first, then the legacy alias
    vocab_size: int  # its length, which equals the tower's embedding rows


KNOWN_TOKENIZERS = {
    "roberta": KnownTokenizer("roberta-base", ("FacebookAI/roberta-base", "roberta-base"), 50265),
    "bert": KnownTokenizer(
        "bert-base-uncased", ("google-bert/bert-base-uncased", "bert-base-uncased"), 30522
    ),
    "gpt2": KnownTokenizer("gpt2", ("openai-community/gpt2", "gpt2"), 50257),
}


def has_vocab_files(folder: Path) -> bool:
    return any((folder / name).is_file() for name in VOCAB_FILES)


def check_tokenizer(tokenizer: Any, vocab_size: int, source: str) -> Any:
    """Refuse a tokenizer that cannot feed this tower: one that knows only its special tokens
    (every text would embed the same) or one with ids past the tower's embedding table."""
    n = len(tokenizer)
    if n > vocab_size:
        raise ModelLoadError(
            f"The tokenizer from {source} has {n} tokens but the text tower has only "
            f"{vocab_size} token embeddings: it is not this model's tokenizer."
        )
    ids = tokenizer(PROBE)["input_ids"]
    special = set(tokenizer.all_special_ids)
    if all(i in special for i in ids):
        raise ModelLoadError(
            f"The tokenizer from {source} knows only its {len(special)} special tokens (every "
            f"text would get the same embedding): its vocabulary files are missing."
        )
    return tokenizer


def _from_hub_cache(known: KnownTokenizer):
    """The known tokenizer from the local hub cache (or the hub when not offline), else None."""
    from transformers import AutoTokenizer

    for hub_id in known.hub_ids:
        try:
            return AutoTokenizer.from_pretrained(hub_id)
        except (OSError, ValueError):  # not cached offline, unknown id, no network
            continue
    return None


def load_tokenizer(folder: Path | None, family: str, vocab_size: int, owner: str) -> Any:
    """The tokenizer for a `family` (`roberta`, `bert`, `gpt2`) text tower of `vocab_size`
    embeddings: `folder`'s own vocabulary files when it has them, else the known public
    tokenizer of that family and size; `owner` names the model in error messages."""
    from transformers import AutoTokenizer

    if folder is not None and has_vocab_files(folder):
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
        except (OSError, ValueError) as err:
            raise ModelLoadError(f"Could not read the tokenizer files in {folder}: {err}") from None
        return check_tokenizer(tokenizer, vocab_size, str(folder))
    known = KNOWN_TOKENIZERS.get(family)
    if known is None or known.vocab_size != vocab_size:
        raise ModelLoadError(
            f"{owner} has no tokenizer files and its {family} text tower ({vocab_size} tokens) "
            f"matches no public tokenizer clapsearch knows; give it the tokenizer files it was "
            f"trained with (tokenizer.json, or vocab.json and merges.txt)."
        )
    tokenizer = _from_hub_cache(known)
    if tokenizer is None:
        copy = f", or copy {known.name}'s tokenizer files into {folder}" if folder else ""
        raise ModelLoadError(
            f"{owner} has no tokenizer files and the {known.name} tokenizer it needs is not "
            f"installed offline; fetch it once with `huggingface-cli download "
            f"{known.hub_ids[0]}` (network){copy}."
        )
    return check_tokenizer(tokenizer, vocab_size, known.hub_ids[0])


def tokenize(tokenizer: Any, texts: list[str], max_length: int, suffix: str = "") -> dict:
    """Padded, truncated `input_ids` / `attention_mask` tensors `(B, L)`.

    `suffix` is appended to every text first (MS-CLAP 2023: " <|endoftext|>", pooled by
    position): a text too long for `max_length` loses its own end, never the suffix's tokens.
    """
    if not suffix:
        return tokenizer(
            texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
    tail = len(tokenizer(suffix, add_special_tokens=False)["input_ids"])
    rows = []
    for text in texts:
        ids = tokenizer(text + suffix)["input_ids"]
        if len(ids) > max_length:
            ids = ids[: max_length - tail] + ids[-tail:]
        rows.append(ids)
    return tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt")


__all__ = ["KNOWN_TOKENIZERS", "KnownTokenizer", "check_tokenizer", "load_tokenizer", "tokenize"]
