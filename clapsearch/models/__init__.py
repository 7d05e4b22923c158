"""clapsearch's own CLAP models: encoder registry, two-tower model, checkpoint format.

from clapsearch.models import ModelConfig, build_model, save_checkpoint, load_checkpoint
"""

from __future__ import annotations

from clapsearch.models.checkpoint import (
    Provenance,
    load_checkpoint,
    read_checkpoint_meta,
    save_checkpoint,
    weights_digest,
)
from clapsearch.models.clap import ClapsearchModel, build_model
from clapsearch.models.config import AudioEncoderConfig, ModelConfig, TextEncoderConfig
from clapsearch.models.heads import HEADS, MSClapProjection, projection_head
from clapsearch.models.registry import (
    AudioEncoder,
    TextEncoder,
    count_parameters,
    create_audio_encoder,
    create_text_encoder,
    list_models,
    register_encoder,
)

__all__ = [
    "AudioEncoder",
    "AudioEncoderConfig",
    "ClapsearchModel",
    "HEADS",
    "MSClapProjection",
    "ModelConfig",
    "Provenance",
    "TextEncoder",
    "TextEncoderConfig",
    "build_model",
    "count_parameters",
    "create_audio_encoder",
    "create_text_encoder",
    "list_models",
    "load_checkpoint",
    "projection_head",
    "read_checkpoint_meta",
    "register_encoder",
    "save_checkpoint",
    "weights_digest",
]
