"""`ClapsearchModel`: an audio tower and a text tower projected into one shared space.

    audio features (B, C, T, n_mels) -> audio encoder -> head -> (B, embed_dim)
    input_ids, attention_mask (B, L) -> text encoder  -> head -> (B, embed_dim)

The contrastive temperature is a learnable `logit_scale` (log-space, initialised at
log(1/0.07) as in CLIP/CLAP). `ModelConfig.logit_cap` says how it is kept from collapsing the
softmax onto one pair:

- `scale` (CLIP, open_clip, LAION-CLAP): after each optimizer step the raw parameter is
  clamped to [0, L], where L is the largest float32 whose exp is <= `logit_scale_max`. The cap
  must sit strictly inside: clamping to float32 log(100) gives exp = 100.0000076, above the
  cap, and a forward clamp there would zero the gradient for ever (issue 18).
- `logits` (MS-CLAP): the scale is free (it may start above the cap, e.g. 1/0.007) and the
  loss clips the logits themselves to +-`logit_scale_max`; logits below the cap keep a
  gradient, so the scale keeps learning.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from clapsearch.models.config import ModelConfig
from clapsearch.models.heads import projection_head
from clapsearch.models.registry import create_audio_encoder, create_text_encoder


class ClapsearchModel(nn.Module):
    def __init__(self, config: ModelConfig, load_weights: bool = True, text_structure=None):
        """Build from `config`. `load_weights=False` skips the encoders' `pretrained` weights
        (a checkpoint's weights follow); `text_structure` is a transformers config directory
        to build the text tower from (a checkpoint's `text_config/`)."""
        super().__init__()
        self.audio_encoder = create_audio_encoder(
            config.audio_encoder.name, config.audio_encoder, config.audio, load_weights
        )
        self.text_encoder = create_text_encoder(
            config.text_encoder.name, config.text_encoder, load_weights, text_structure
        )
        # Keep the resolved encoder configs (defaults filled in, HTSAT shapes read from the
        # pretrained directory) so the saved config rebuilds exactly this architecture.
        self.config = dataclasses.replace(
            config, audio_encoder=self.audio_encoder.config, text_encoder=self.text_encoder.config
        )
        self.audio_projection = projection_head(
            config.projection, self.audio_encoder.out_dim, config.embed_dim
        )
        self.text_projection = projection_head(
            config.projection, self.text_encoder.out_dim, config.embed_dim
        )
        init = config.log_logit_scale_init
        if config.logit_cap == "scale":
            init = min(init, max_log_scale(config.logit_scale_max))
        self.logit_scale = nn.Parameter(torch.tensor(init, dtype=torch.float32))
        self.frozen = {"audio": False, "text": False}

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def encode_audio(
        self, features: torch.Tensor, is_longer: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`(B, C, T, n_mels)` log-mel, `(B,)` bool -> `(B, embed_dim)` (not normalised)."""
        return self.audio_projection(self.audio_encoder(features, is_longer))

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """`(B, L)` token ids and mask -> `(B, embed_dim)` (not normalised)."""
        return self.text_projection(self.text_encoder(input_ids, attention_mask))

    def forward(
        self,
        features: torch.Tensor,
        is_longer: torch.Tensor | None,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (audio `(B, d)` unit rows, text `(B, d)` unit rows, scalar logit scale)."""
        audio = F.normalize(self.encode_audio(features, is_longer), dim=-1)
        text = F.normalize(self.encode_text(input_ids, attention_mask), dim=-1)
        return audio, text, self.scale()

    def scale(self) -> torch.Tensor:
        """exp(logit_scale): the multiplier of the cosine logits (`capped_scale`)."""
        return capped_scale(self.logit_scale, self.config)

    @property
    def logit_clip(self) -> float | None:
        """Where the loss clips the logits (`logit_cap: logits`), else None."""
        return self.config.logit_scale_max if self.config.logit_cap == "logits" else None

    @torch.no_grad()
    def clamp_logit_scale(self) -> None:
        """`logit_cap: scale`: after each step keep the raw parameter in [0, L] with exp(L) <=
        `logit_scale_max` (strictly inside the cap, so its gradient never stops)."""
        if self.config.logit_cap == "scale":
            self.logit_scale.clamp_(0.0, max_log_scale(self.config.logit_scale_max))

    def freeze(self, audio: bool = False, text: bool = False) -> None:
        """Freeze a tower's encoder (its projection head keeps training), as in the CLAP
        paper's ablation. A frozen encoder also stays in eval mode (BatchNorm statistics,
        dropout)."""
        self.frozen = {"audio": audio, "text": text}
        for enc, flag in ((self.audio_encoder, audio), (self.text_encoder, text)):
            for p in enc.parameters():
                p.requires_grad_(not flag)
        self.train(self.training)

    def train(self, mode: bool = True) -> ClapsearchModel:
        super().train(mode)
        if self.frozen["audio"]:
            self.audio_encoder.eval()
        if self.frozen["text"]:
            self.text_encoder.eval()
        return self


def capped_scale(log_scale: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """exp(log_scale). With `logit_cap: scale` it is also clamped at `logit_scale_max`
    (inactive once `clamp_logit_scale` has run, since the parameter then sits strictly below
    the cap); with `logits` it is free. The one formula for a model in memory and for the
    embedders that read the parameter from a checkpoint file."""
    scale = log_scale.exp()
    if config.logit_cap == "scale":
        scale = scale.clamp(max=config.logit_scale_max)
    return scale


def max_log_scale(cap: float) -> float:
    """The largest float32 `c` with float32 exp(c) <= `cap`."""
    c = torch.tensor(math.log(cap), dtype=torch.float32)
    down = torch.tensor(-math.inf)
    while c.exp().item() > cap:
        c = torch.nextafter(c, down)
    return c.item()


def build_model(config: ModelConfig, load_weights: bool = True) -> ClapsearchModel:
    """Build a model from its config, with the encoders' `pretrained` weights when set."""
    return ClapsearchModel(config, load_weights=load_weights)
