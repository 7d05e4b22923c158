"""clapsearch checkpoint backend: a `ClapsearchModel` directory behind the `Embedder` interface.

The front end (`AudioConfig`) comes from the checkpoint's `clapsearch.json`, so features are
exactly those the model was trained on; the identity is the weights' hash, so a renamed copy
keeps it and retrained weights get a new one.
"""

from __future__ import annotations

from pathlib import Path

import torch

from clapsearch.embedder import Embedder


class NativeEmbedder(Embedder):
    def __init__(self, name_or_path: str, device: torch.device, dtype: torch.dtype):
        from clapsearch.models.checkpoint import load_checkpoint, weights_digest

        folder = Path(name_or_path).expanduser().resolve()
        model, tokenizer, config = load_checkpoint(folder, device="cpu")
        self.model = model.to(device=device, dtype=dtype).eval()
        self.tokenizer = tokenizer
        self.config = config
        self.audio_config = config.audio
        self.device = torch.device(device)
        self.dtype = dtype
        self.dim = int(config.embed_dim)
        self.identity = f"clapsearch:{folder.name}@{weights_digest(folder)}"
        self.name_or_path = name_or_path

    @property
    def max_text_tokens(self) -> int:
        limit = int(getattr(self.tokenizer, "model_max_length", 512) or 512)
        positions = getattr(self.model.text_encoder.hf_model.config, "max_position_embeddings", 512)
        return int(min(limit, positions, self.config.text_encoder.max_length))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, truncation=False)["input_ids"])

    def _audio_forward(self, features: torch.Tensor, is_longer: torch.Tensor) -> torch.Tensor:
        return self.model.encode_audio(features.to(self.dtype), is_longer)

    def _text_forward(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_text_tokens,
            return_tensors="pt",
        ).to(self.device)
        return self.model.encode_text(tokens["input_ids"], tokens["attention_mask"])
