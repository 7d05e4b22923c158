"""Keyword-to-caption augmentation (LAION-CLAP, Wu et al. 2023, section 3.3): clips that come
with keywords (class labels, tags) instead of, or besides, sentences get a caption written
from their keywords, so the text tower trains on sentences rather than bare label lists.

LAION-CLAP wrote those captions with a T5 model, once, ahead of training (its WebDataset JSON
carries them as `text_augment_t5`). Here the writer is pluggable (`register_generator`):

- `template` (default, offline, no model): the keywords in a random order, joined as
  "a, b and c", put into one of `TEMPLATES` ("the sound of {label}", ...);
- `t5`: any transformers sequence-to-sequence model directory (`KeywordConfig.model`, e.g. a
  T5 fine-tuned for keyword-to-caption, as LAION's), prompted with `prompt` ("{keywords}"
  filled with "a, b, c"); one caption per keyword set, generated greedily and cached, so
  the cost is one generation per distinct set (per loader worker).

`KeywordConfig.prob`: the probability that a clip with keywords *and* captions is paired with
a generated caption instead of one of its own; a clip with keywords and no caption always is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from clapsearch.errors import UsageError

TEMPLATES = (
    "the sound of {label}",
    "{label}",
    "a recording of {label}",
    "{label} can be heard",
    "sounds of {label}",
)


@dataclass(frozen=True)
class KeywordConfig:
    """`generator`: `none`, `template` or `t5` (module doc); `prob`: chance to use a generated
    caption for a clip that also has captions; `model`: the seq2seq directory for `t5`;
    `prompt`: its input, `{keywords}` = "a, b, c"; `max_new_tokens`: caption length cap."""

    generator: Literal["none", "template", "t5"] = "none"
    prob: float = 0.0
    model: str = ""
    prompt: str = "{keywords}"
    max_new_tokens: int = 32


class CaptionGenerator:
    """`generate(keywords, rng) -> caption`; `keywords` non-empty."""

    def generate(self, keywords: Sequence[str], rng: np.random.Generator) -> str:
        raise NotImplementedError


_GENERATORS: dict[str, Callable[[KeywordConfig], CaptionGenerator]] = {}


def register_generator(name: str):
    """Class decorator: a `CaptionGenerator` built from a `KeywordConfig` under `name`."""

    def wrap(cls):
        _GENERATORS[name] = cls
        return cls

    return wrap


def join_keywords(keywords: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    words = [k.replace("_", " ").strip() for k in keywords if k.strip()]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


@register_generator("template")
class TemplateGenerator(CaptionGenerator):
    def __init__(self, cfg: KeywordConfig):
        self.templates = TEMPLATES

    def generate(self, keywords: Sequence[str], rng: np.random.Generator) -> str:
        order = [keywords[i] for i in rng.permutation(len(keywords))]
        template = self.templates[int(rng.integers(len(self.templates)))]
        return template.format(label=join_keywords(order))


@register_generator("t5")
class Seq2SeqGenerator(CaptionGenerator):
    """A transformers seq2seq model (T5, BART, ...) that writes a caption from keywords."""

    def __init__(self, cfg: KeywordConfig):
        if not cfg.model:
            raise UsageError("data.keywords.generator t5 needs data.keywords.model (a directory).")
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(cfg.model)
            self.model = AutoModelForSeq2SeqLM.from_pretrained(cfg.model).eval()
        except (OSError, ValueError) as err:
            raise UsageError(f"could not load the caption model {cfg.model}: {err}") from None
        self.prompt = cfg.prompt
        self.max_new_tokens = cfg.max_new_tokens
        self._cached = functools.lru_cache(maxsize=4096)(self._generate)

    def _generate(self, keywords: tuple[str, ...]) -> str:
        import torch

        text = self.prompt.format(keywords=", ".join(keywords))
        inputs = self.tokenizer(text, return_tensors="pt")
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=inputs["input_ids"],
                attention_mask=inputs["attention_mask"],
                max_new_tokens=self.max_new_tokens,
                num_beams=1,
                do_sample=False,
            )
        caption = self.tokenizer.decode(out[0], skip_special_tokens=True).strip()
        return caption or join_keywords(keywords)

    def generate(self, keywords: Sequence[str], rng: np.random.Generator) -> str:
        return self._cached(tuple(sorted(keywords)))


def make_generator(cfg: KeywordConfig) -> CaptionGenerator | None:
    """The configured generator, or None for `none`."""
    if cfg.generator == "none":
        return None
    return _GENERATORS[cfg.generator](cfg)


def pick_caption(
    captions: Sequence[str],
    keywords: Sequence[str],
    rng: np.random.Generator,
    generator: CaptionGenerator | None,
    prob: float,
) -> str:
    """A clip's training caption: one of its own, or (keywords, see module doc) a generated
    one. Draws from `rng` in a fixed order, so the choice is reproducible."""
    own = captions[int(rng.integers(len(captions)))] if captions else ""
    use_keywords = generator is not None and keywords and (not captions or rng.random() < prob)
    if use_keywords:
        return generator.generate(list(keywords), rng)
    if not own:
        return join_keywords(keywords)
    return own


__all__ = [
    "TEMPLATES",
    "CaptionGenerator",
    "KeywordConfig",
    "join_keywords",
    "make_generator",
    "pick_caption",
    "register_generator",
]
