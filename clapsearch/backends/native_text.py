"""The text half of a clapsearch checkpoint, loaded without transformers (fast text queries).

A text query needs the tokenizer, the text encoder and the text projection head: a fraction
of the work of loading the whole model, and none of transformers' import cost (several
seconds: it pulls in torch._dynamo). `NativeTextEmbedder` reads only the `text_encoder.*` and
`text_projection.*` tensors of `model.safetensors`, tokenises with the `tokenizers` library
from `tokenizer/tokenizer.json` and runs the encoder with `clapsearch.models.bert_inference`.
It gives the full `NativeEmbedder`'s text vectors (tests/test_bert_inference.py) and has the
same identity, so an index accepts it; its audio side is absent (it is loaded for
`parts={"text"}` only). Checkpoints it cannot reproduce exactly (a non-BERT text tower, no
`tokenizer.json`) raise `UnsupportedTextTower`; the source then loads the whole model.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from clapsearch.embedder import Embedder
from clapsearch.models.bert_inference import BertInference, BertShape, UnsupportedTextTower

ENCODER_PREFIX = "text_encoder.hf_model."
HEAD_PREFIX = "text_projection."


def read_checkpoint_tensors(
    folder: Path, prefixes: tuple[str, ...]
) -> tuple[dict[str, dict[str, torch.Tensor]], torch.Tensor | None]:
    """The tensors of a checkpoint's `model.safetensors` under each prefix, keyed without it
    (on CPU, as stored), and its raw `logit_scale` (None when absent): what the
    transformers-free embedders read instead of building the training model."""
    from safetensors import safe_open

    from clapsearch.models.checkpoint import WEIGHTS_FILE

    with safe_open(str(folder / WEIGHTS_FILE), framework="pt", device="cpu") as fh:
        keys = list(fh.keys())
        parts = {
            p: {k[len(p) :]: fh.get_tensor(k) for k in keys if k.startswith(p)} for p in prefixes
        }
        log_scale = fh.get_tensor("logit_scale").float() if "logit_scale" in keys else None
    return parts, log_scale


class NativeTextEmbedder(Embedder):
    """`embed_text` / `count_tokens` of a clapsearch checkpoint directory (module doc)."""

    def __init__(self, name_or_path: str, device: torch.device, dtype: torch.dtype):
        from tokenizers import Tokenizer

        from clapsearch.backends.native import checkpoint_identity
        from clapsearch.models.checkpoint import (
            TEXT_CONFIG_DIR,
            TOKENIZER_DIR,
            read_checkpoint_meta,
        )
        from clapsearch.models.clap import capped_scale, projection_head

        folder = Path(name_or_path).expanduser().resolve()
        config, _ = read_checkpoint_meta(folder)
        tokenizer_file = folder / TOKENIZER_DIR / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise UnsupportedTextTower("the checkpoint has no tokenizer.json")
        hf_config = json.loads((folder / TEXT_CONFIG_DIR / "config.json").read_text())
        shape = BertShape.from_hf_config(hf_config)
        parts, log_scale = read_checkpoint_tensors(folder, (ENCODER_PREFIX, HEAD_PREFIX))
        encoder = {k: v.to(device) for k, v in parts[ENCODER_PREFIX].items()}
        head_state = {k: v.float() for k, v in parts[HEAD_PREFIX].items()}
        self.encoder = BertInference(shape, encoder)
        self.head = projection_head(config.projection, shape.hidden_size, config.embed_dim)
        self.head.load_state_dict(head_state, strict=True)
        self.head.to(device).eval()
        self.pooling = config.text_encoder.pooling
        if self.pooling not in ("cls", "mean"):  # `pooler` needs the pooler layer: full path
            raise UnsupportedTextTower(f"{self.pooling} pooling is not in the torch-only forward")
        if config.text_encoder.suffix:  # MS-CLAP 2023's appended end token: the full path
            raise UnsupportedTextTower("a text suffix is not in the torch-only forward")
        self.config = config
        self.audio_config = config.audio
        self.device = torch.device(device)
        self.dtype = torch.float32  # text-only runs are small: full precision, exact parity
        self.dim = int(config.embed_dim)
        positions = int(hf_config.get("max_position_embeddings", 512))
        self._max_tokens = min(positions, int(config.text_encoder.max_length), 512)
        self._scale = float(capped_scale(log_scale, config)) if log_scale is not None else 100.0
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.enable_truncation(self._max_tokens)
        self.tokenizer.enable_padding(pad_id=shape.pad_token_id)
        self._counter = Tokenizer.from_file(str(tokenizer_file))
        self._counter.no_truncation()
        self._counter.no_padding()
        self.model_identity = checkpoint_identity(folder, name_or_path, config, self._max_tokens)
        self.name_or_path = name_or_path

    @property
    def max_text_tokens(self) -> int:
        return self._max_tokens

    @property
    def logit_scale(self) -> float:
        return self._scale

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return len(self._counter.encode(text).ids)

    def _audio_forward(self, features: torch.Tensor, is_longer: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("this model was loaded for text only (parts={'text'})")

    def _text_forward(self, texts: list[str]) -> torch.Tensor:
        encodings = self.tokenizer.encode_batch(texts)
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.long, device=self.device)
        mask = torch.tensor(
            [e.attention_mask for e in encodings], dtype=torch.long, device=self.device
        )
        hidden = self.encoder(ids, mask)
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            m = mask.to(hidden.dtype).unsqueeze(-1)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
        return self.head(pooled)


__all__ = ["NativeTextEmbedder", "UnsupportedTextTower", "read_checkpoint_tensors"]
