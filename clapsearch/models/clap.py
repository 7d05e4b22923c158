"""`ClapsearchModel`: an audio tower and a text tower projected into one shared space.

    audio features (B, C, T, n_mels) -> audio encoder -> head -> (B, embed_dim)
    input_ids, attention_mask (B, L) -> text encoder  -> head -> (B, embed_dim)

The contrastive temperature is a learnable `logit_scale` (log-space, initialised at
log(1/0.07) as in CLIP/CLAP); its exponential is clamped at `logit_scale_max` (100) so the
softmax cannot collapse onto one pair.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from clapsearch.models.config import ModelConfig
from clapsearch.models.registry import create_audio_encoder, create_text_encoder


def projection_head(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    """`linear`: one Linear; `mlp`: Linear -> ReLU -> Linear (LAION-CLAP's projection)."""
    heads = {
        "linear": lambda: nn.Linear(in_dim, out_dim),
        "mlp": lambda: nn.Sequential(
            nn.Linear(in_dim, out_dim), nn.ReLU(), nn.Linear(out_dim, out_dim)
        ),
    }
    if kind not in heads:
        raise ValueError(f"projection must be one of {sorted(heads)}, not {kind!r}")
    return heads[kind]()


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
        self.logit_scale = nn.Parameter(torch.tensor(config.log_logit_scale_init))
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
        """exp(logit_scale) clamped at `logit_scale_max`."""
        return self.logit_scale.exp().clamp(max=self.config.logit_scale_max)

    @torch.no_grad()
    def clamp_logit_scale(self) -> None:
        """Keep the raw parameter in [0, log(max)] after each step (open_clip does the same),
        so the clamp in `scale()` never silently stops its gradient for long."""
        self.logit_scale.clamp_(0.0, float(torch.tensor(self.config.logit_scale_max).log()))

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


def build_model(config: ModelConfig, load_weights: bool = True) -> ClapsearchModel:
    """Build a model from its config, with the encoders' `pretrained` weights when set."""
    return ClapsearchModel(config, load_weights=load_weights)
