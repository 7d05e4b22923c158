"""The text half of a clapsearch checkpoint, loaded without transformers (fast text queries).

A text query needs the tokenizer, the text encoder and the text projection head: about a
tenth of the work of loading the whole model, and none of transformers' import cost. This
loader reads only the `text_encoder.*` and `text_projection.*` tensors from
`model.safetensors`, tokenises with the `tokenizers` library from `tokenizer/tokenizer.json`,
and runs the encoder with `clapsearch.models.bert_inference`. It gives the same vectors as the
full `NativeEmbedder` (tests/test_bert_inference.py) and has the same `identity`, so an index
accepts it. Checkpoints it cannot reproduce exactly (a non-BERT text tower, no
`tokenizer.json`) raise `UnsupportedTextTower`; callers then load the full model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from clapsearch.models.bert_inference import BertInference, BertShape, UnsupportedTextTower

ENCODER_PREFIX = "text_encoder.hf_model."
HEAD_PREFIX = "text_projection."


class NativeTextTower:
    """`embed_text` / `count_tokens` of a clapsearch checkpoint directory (see module doc)."""

    text_batch_size = 64

    def __init__(self, folder: str | Path, identity: str, device: torch.device | None = None):
        from safetensors import safe_open
        from tokenizers import Tokenizer

        from clapsearch.models.checkpoint import (
            TEXT_CONFIG_DIR,
            TOKENIZER_DIR,
            WEIGHTS_FILE,
            read_checkpoint_meta,
        )
        from clapsearch.models.clap import projection_head

        folder = Path(folder).expanduser()
        config, _ = read_checkpoint_meta(folder)
        tokenizer_file = folder / TOKENIZER_DIR / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise UnsupportedTextTower("the checkpoint has no tokenizer.json")
        hf_config = json.loads((folder / TEXT_CONFIG_DIR / "config.json").read_text())
        shape = BertShape.from_hf_config(hf_config)
        self.device = device or torch.device("cpu")
        with safe_open(str(folder / WEIGHTS_FILE), framework="pt", device="cpu") as fh:
            keys = list(fh.keys())
            encoder = {
                k[len(ENCODER_PREFIX) :]: fh.get_tensor(k)
                for k in keys
                if k.startswith(ENCODER_PREFIX)
            }
            head_state = {
                k[len(HEAD_PREFIX) :]: fh.get_tensor(k).float()
                for k in keys
                if k.startswith(HEAD_PREFIX)
            }
        self.encoder = BertInference(shape, encoder)
        self.head = projection_head(config.projection, shape.hidden_size, config.embed_dim)
        self.head.load_state_dict(head_state, strict=True)
        self.head.eval()
        self.pooling = config.text_encoder.pooling
        self.dim = int(config.embed_dim)
        self.identity = identity
        positions = int(hf_config.get("max_position_embeddings", 512))
        self.max_text_tokens = min(positions, int(config.text_encoder.max_length), 512)
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.enable_truncation(self.max_text_tokens)
        self._tokenizer.enable_padding(pad_id=shape.pad_token_id)
        self._counter = Tokenizer.from_file(str(tokenizer_file))
        self._counter.no_truncation()
        self._counter.no_padding()

    def count_tokens(self, text: str) -> int:
        """Tokens the text needs before truncation (to tell users a query was cut)."""
        return len(self._counter.encode(text).ids)

    @torch.inference_mode()
    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Strings -> `(N, dim)` float32 unit vectors, in order."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        outs = []
        for lo in range(0, len(texts), self.text_batch_size):
            encodings = self._tokenizer.encode_batch(texts[lo : lo + self.text_batch_size])
            ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
            mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
            hidden = self.encoder(ids, mask)
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                m = mask.to(hidden.dtype).unsqueeze(-1)
                pooled = (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
            outs.append(F.normalize(self.head(pooled).float(), dim=-1))
        return torch.cat(outs).numpy()


__all__ = ["NativeTextTower", "UnsupportedTextTower"]
