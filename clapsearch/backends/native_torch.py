"""Both towers of a clapsearch checkpoint without transformers (indexing with the built-in model).

`NativeEmbedder` builds the training model, whose text tower is transformers' `BertModel`:
importing it holds ~108 MB of memory in every indexing process and takes 2.6 s (quiet
machine, docs/benchmarks.md), for a text tower that indexing uses only to tune the ANN cache. When the checkpoint's text tower is one
the torch-only forward reproduces (`NativeTextEmbedder`, what text queries already use) and
its audio tower is plain torch (the PANN CNNs), `NativeTorchEmbedder` adds the audio encoder
and its projection head, read from `model.safetensors`, to that text side: the same audio
vectors as `NativeEmbedder` at the same dtype, the same text vectors as a text query, the same
identity (tests/test_native_torch.py). Anything else raises `UnsupportedTextTower` and the
source loads the whole model.
"""

from __future__ import annotations

import torch

from clapsearch.backends.native_text import (
    NativeTextEmbedder,
    UnsupportedTextTower,
    read_checkpoint_tensors,
)

TORCH_AUDIO_TOWERS = frozenset({"cnn6", "cnn10", "cnn14"})  # clapsearch.models.pann
ENCODER_PREFIX = "audio_encoder."
HEAD_PREFIX = "audio_projection."


class NativeTorchEmbedder(NativeTextEmbedder):
    """`embed_audio` and `embed_text` of a clapsearch checkpoint directory (module doc). The
    audio tower runs in the requested dtype, as in `NativeEmbedder`; the text side in float32,
    as in `NativeTextEmbedder`."""

    def __init__(self, name_or_path: str, device: torch.device, dtype: torch.dtype):
        super().__init__(name_or_path, device, dtype)  # the text side; raises when unsupported
        from pathlib import Path

        from clapsearch.models.heads import projection_head
        from clapsearch.models.registry import create_audio_encoder

        cfg = self.config
        if cfg.audio_encoder.name not in TORCH_AUDIO_TOWERS:
            raise UnsupportedTextTower(f"the {cfg.audio_encoder.name} audio tower needs the model")
        encoder = create_audio_encoder(
            cfg.audio_encoder.name, cfg.audio_encoder, cfg.audio, load_weights=False
        )
        head = projection_head(cfg.projection, encoder.out_dim, cfg.embed_dim)
        folder = Path(name_or_path).expanduser().resolve()
        parts, _ = read_checkpoint_tensors(folder, (ENCODER_PREFIX, HEAD_PREFIX))
        encoder.load_state_dict(parts[ENCODER_PREFIX])
        head.load_state_dict(parts[HEAD_PREFIX])
        self.audio_encoder = encoder.to(device=device, dtype=dtype).eval()
        self.audio_projection = head.to(device=device, dtype=dtype).eval()
        self.dtype = dtype

    def _audio_forward(self, features: torch.Tensor, is_longer: torch.Tensor) -> torch.Tensor:
        return self.audio_projection(self.audio_encoder(features.to(self.dtype), is_longer))


__all__ = ["NativeTorchEmbedder", "TORCH_AUDIO_TOWERS"]
