"""A torch-only BERT encoder for query time: the text towers of clapsearch checkpoints without
importing transformers.

Why: `clapsearch query "dog barking"` needs only the text tower, and importing transformers
(which pulls in torch._dynamo and friends) costs several seconds, more than the whole query.
This module re-implements the inference forward of transformers' `BertModel` (also what
MiniLM and other BERT-family checkpoints use) with plain torch ops, reads its weights straight
from the checkpoint's safetensors and its vocabulary with the `tokenizers` library. Training
and every audio path keep using transformers; `tests/test_bert_inference.py` checks that both
give the same vectors.

Supported: `model_type` "bert" with absolute positions and GELU (erf) activations; anything
else raises `UnsupportedTextTower` so callers fall back to the transformers path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F


class UnsupportedTextTower(ValueError):
    """The text tower is not a plain BERT encoder this module reproduces exactly."""


@dataclass(frozen=True)
class BertShape:
    """The fields of a transformers `BertConfig` that the forward needs."""

    hidden_size: int
    num_layers: int
    num_heads: int
    layer_norm_eps: float
    pad_token_id: int

    @classmethod
    def from_hf_config(cls, config: Mapping) -> BertShape:
        if config.get("model_type") != "bert":
            raise UnsupportedTextTower(f"model_type {config.get('model_type')!r} is not bert")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise UnsupportedTextTower("only absolute position embeddings are reproduced")
        if config.get("hidden_act", "gelu") != "gelu":
            raise UnsupportedTextTower(f"activation {config.get('hidden_act')!r} is not gelu")
        return cls(
            hidden_size=int(config["hidden_size"]),
            num_layers=int(config["num_hidden_layers"]),
            num_heads=int(config["num_attention_heads"]),
            layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
            pad_token_id=int(config.get("pad_token_id") or 0),
        )


class BertInference:
    """`(B, L)` token ids and mask -> `(B, L, hidden)` last hidden states, as `BertModel` in
    eval mode (no dropout), from a state dict with `BertModel`'s key names."""

    def __init__(self, shape: BertShape, weights: Mapping[str, torch.Tensor]):
        self.shape = shape
        missing = [k for k in self._required_keys() if k not in weights]
        if missing:
            raise UnsupportedTextTower(f"the text weights lack {missing[0]}")
        # float32 for the math, except the word-embedding table (a third of a MiniLM's weights,
        # most rows never read by a query): its rows are cast as they are looked up
        table = "embeddings.word_embeddings.weight"
        self.w = {k: v if k == table else v.float() for k, v in weights.items()}

    def _required_keys(self) -> list[str]:
        keys = [
            "embeddings.word_embeddings.weight",
            "embeddings.position_embeddings.weight",
            "embeddings.token_type_embeddings.weight",
            "embeddings.LayerNorm.weight",
            "embeddings.LayerNorm.bias",
        ]
        for i in range(self.shape.num_layers):
            p = f"encoder.layer.{i}."
            for name in (
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
                "intermediate.dense",
                "output.dense",
            ):
                keys += [f"{p}{name}.weight", f"{p}{name}.bias"]
            for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
                keys += [f"{p}{norm}.weight", f"{p}{norm}.bias"]
        return keys

    def _linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def _norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(
            x,
            (self.shape.hidden_size,),
            self.w[f"{name}.weight"],
            self.w[f"{name}.bias"],
            self.shape.layer_norm_eps,
        )

    @torch.inference_mode()
    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        w, s = self.w, self.shape
        batch, length = input_ids.shape
        positions = torch.arange(length, device=input_ids.device)
        x = (
            F.embedding(input_ids, w["embeddings.word_embeddings.weight"]).float()
            + w["embeddings.position_embeddings.weight"][positions][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        heads, head_dim = s.num_heads, s.hidden_size // s.num_heads
        # additive mask (B, 1, 1, L): padded keys get the dtype's minimum, as transformers does
        bias = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for i in range(s.num_layers):
            p = f"encoder.layer.{i}."

            def split(t: torch.Tensor) -> torch.Tensor:
                return t.view(batch, length, heads, head_dim).transpose(1, 2)

            q = split(self._linear(x, p + "attention.self.query"))
            k = split(self._linear(x, p + "attention.self.key"))
            v = split(self._linear(x, p + "attention.self.value"))
            scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim) + bias
            ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, length, s.hidden_size)
            x = self._norm(
                self._linear(ctx, p + "attention.output.dense") + x,
                p + "attention.output.LayerNorm",
            )
            h = F.gelu(self._linear(x, p + "intermediate.dense"))
            x = self._norm(self._linear(h, p + "output.dense") + x, p + "output.LayerNorm")
        return x


__all__ = ["BertInference", "BertShape", "UnsupportedTextTower"]
