"""One registry for every encoder: `@register_encoder("cnn14")` on a class, build by name.

An encoder class says which tower it is by its base class (`AudioEncoder` or `TextEncoder`),
so the registry needs no `kind` argument and no code anywhere branches on model names.
Encoder modules register on import; `_load_builtin()` imports them on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from torch import nn

from clapsearch.config import AudioConfig
from clapsearch.errors import ModelLoadError
from clapsearch.models.config import AudioEncoderConfig, TextEncoderConfig

_BUILTIN_MODULES = ("clapsearch.models.pann", "clapsearch.models.htsat", "clapsearch.models.text")


class AudioEncoder(nn.Module):
    """Log-mel features -> one vector per clip.

    `forward(features (B, C, frames, n_mels) float, is_longer (B,) bool) -> (B, out_dim)`.
    `config` is the resolved `AudioEncoderConfig` (enough to rebuild without `pretrained`).
    """

    out_dim: int
    config: AudioEncoderConfig

    def __init__(self, cfg: AudioEncoderConfig, front_end: AudioConfig, load_weights: bool = True):
        super().__init__()


class TextEncoder(nn.Module):
    """Token ids -> one vector per text.

    `forward(input_ids (B, L) long, attention_mask (B, L)) -> (B, out_dim)`.
    `hf_model` is the transformers model (its config is saved as `text_config/`).
    """

    out_dim: int
    config: TextEncoderConfig
    hf_model: nn.Module

    def __init__(
        self, cfg: TextEncoderConfig, load_weights: bool = True, structure: Path | None = None
    ):
        super().__init__()

    def tokenizer_source(self) -> str:
        """Directory the tokenizer is read from when training starts."""
        raise NotImplementedError


_AUDIO: dict[str, type[AudioEncoder]] = {}
_TEXT: dict[str, type[TextEncoder]] = {}


def register_encoder(*names: str) -> Callable[[type], type]:
    """Class decorator: register an `AudioEncoder` or `TextEncoder` subclass under `names`."""

    def wrap(cls: type) -> type:
        table = (
            _AUDIO
            if issubclass(cls, AudioEncoder)
            else _TEXT
            if issubclass(cls, TextEncoder)
            else None
        )
        if table is None:
            raise TypeError(f"{cls.__name__} is neither an AudioEncoder nor a TextEncoder")
        for name in names:
            if name in table and table[name] is not cls:
                raise ValueError(f"encoder name {name!r} is already registered")
            table[name] = cls
        return cls

    return wrap


def _load_builtin() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def _lookup(table: dict[str, type], name: str, kind: str) -> type:
    _load_builtin()
    if name not in table:
        raise ModelLoadError(f"Unknown {kind} encoder {name!r}; known: {', '.join(sorted(table))}.")
    return table[name]


def create_audio_encoder(
    name: str,
    cfg: AudioEncoderConfig,
    front_end: AudioConfig | None = None,
    load_weights: bool = True,
) -> AudioEncoder:
    """Build the audio encoder registered as `name`; `load_weights=False` skips `pretrained`
    (used when a checkpoint's own weights are loaded right after)."""
    cls = _lookup(_AUDIO, name, "audio")
    return cls(cfg, front_end or AudioConfig(), load_weights=load_weights)


def create_text_encoder(
    name: str,
    cfg: TextEncoderConfig,
    load_weights: bool = True,
    structure: str | Path | None = None,
) -> TextEncoder:
    """Build the text encoder registered as `name`. `structure`: a transformers config
    directory to build from with random weights (a checkpoint's `text_config/`)."""
    cls = _lookup(_TEXT, name, "text")
    return cls(cfg, load_weights=load_weights, structure=Path(structure) if structure else None)


def list_models() -> dict[str, list[str]]:
    """Registered encoder names: `{"audio": [...], "text": [...]}`, sorted."""
    _load_builtin()
    return {"audio": sorted(_AUDIO), "text": sorted(_TEXT)}


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


__all__ = [
    "AudioEncoder",
    "TextEncoder",
    "register_encoder",
    "create_audio_encoder",
    "create_text_encoder",
    "list_models",
    "count_parameters",
]
