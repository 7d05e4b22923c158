"""clapsearch checkpoint backend: a `ClapsearchModel` directory behind the `Embedder` interface.

The front end (`AudioConfig`) comes from the checkpoint's `clapsearch.json`, so features are
exactly those the model was trained on; the identity is the weights' hash, so a renamed copy
keeps it and retrained weights get a new one.
"""

from __future__ import annotations

from pathlib import Path

import torch

from clapsearch.embedder import Embedder
from clapsearch.identity import ModelIdentity, TextConfig


def checkpoint_identity(folder: Path, name: str, config, max_tokens: int) -> ModelIdentity:
    """The identity of the checkpoint in `folder` loaded by `name` (whole or text only: the
    same record, so an index accepts either)."""
    from clapsearch.models.checkpoint import weights_digest

    return ModelIdentity(
        kind="clapsearch",
        name=name,
        label=folder.name,
        digest=weights_digest(folder),
        dim=int(config.embed_dim),
        audio=config.audio,
        text=TextConfig(
            max_tokens=max_tokens,
            pooling=config.text_encoder.pooling,
            suffix=config.text_encoder.suffix,
        ),
    )


class NativeEmbedder(Embedder):
    def __init__(self, name_or_path: str, device: torch.device, dtype: torch.dtype):
        from clapsearch.models.checkpoint import load_checkpoint

        folder = Path(name_or_path).expanduser().resolve()
        model, tokenizer, _ = load_checkpoint(folder, device="cpu")
        model = model.to(device=device, dtype=dtype)
        self._setup(model, tokenizer, device, dtype, name_or_path, folder.name)
        self.model_identity = checkpoint_identity(
            folder, name_or_path, self.config, self.max_text_tokens
        )
        self.name_or_path = name_or_path

    @classmethod
    def from_model(cls, model, tokenizer, label: str = "in-memory") -> NativeEmbedder:
        """Wrap an in-memory `ClapsearchModel` (the trainer's validation uses the exact
        inference path: windows, averaging, normalisation). Puts the model in eval mode."""
        self = cls.__new__(cls)
        param = next(model.parameters())
        self._setup(model, tokenizer, param.device, param.dtype, "", label)
        self.name_or_path = label
        return self

    def _setup(self, model, tokenizer, device, dtype: torch.dtype, name: str, label: str) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = model.config
        self.audio_config = model.config.audio
        self.device = torch.device(device)
        self.dtype = dtype
        self.dim = int(model.config.embed_dim)
        self.model_identity = ModelIdentity(
            kind="clapsearch",
            name=name,
            label=label,
            dim=self.dim,
            audio=self.audio_config,
            text=TextConfig(
                max_tokens=self.max_text_tokens,
                pooling=model.config.text_encoder.pooling,
                suffix=model.config.text_encoder.suffix,
            ),
        )
        self.text_suffix = model.config.text_encoder.suffix

    @property
    def logit_scale(self) -> float:
        """The trained temperature, `exp(logit_scale)` clamped as in training."""
        return float(self.model.scale().detach().float().cpu())

    @property
    def max_text_tokens(self) -> int:
        limit = int(getattr(self.tokenizer, "model_max_length", 512) or 512)
        positions = getattr(self.model.text_encoder.hf_model.config, "max_position_embeddings", 512)
        return int(min(limit, positions, self.config.text_encoder.max_length))

    def _audio_forward(self, features: torch.Tensor, is_longer: torch.Tensor) -> torch.Tensor:
        return self.model.encode_audio(features.to(self.dtype), is_longer)

    def _text_forward(self, texts: list[str]) -> torch.Tensor:
        tokens = self._tokenize(texts)
        return self.model.encode_text(tokens["input_ids"], tokens["attention_mask"])
