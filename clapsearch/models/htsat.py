"""HTSAT audio encoder: transformers' `ClapAudioModel` (the LAION-CLAP audio tower).

Random init from `hf_config` (`ClapAudioConfig` keyword arguments) or weights from a
transformers / LAION CLAP directory (`pretrained`); fusion inputs work when the config has
`enable_fusion=True` and the front end is `fusion`. The output is the model's pooled
`(B, hidden_size)` state, before LAION's projection (clapsearch adds its own head).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from clapsearch.config import AudioConfig
from clapsearch.errors import ModelLoadError
from clapsearch.models.config import AudioEncoderConfig
from clapsearch.models.registry import AudioEncoder, register_encoder

# Config keys that hold derived or bookkeeping values, not architecture.
_SKIP_KEYS = {"transformers_version", "architectures", "model_type", "_name_or_path", "dtype"}


def _read_state(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of a transformers checkpoint directory (safetensors, else pytorch .bin)."""
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if files:
        return {k: v for f in files for k, v in load_file(str(f)).items()}
    files = sorted(folder.glob("pytorch_model*.bin"))
    return {
        k: v for f in files for k, v in torch.load(f, map_location="cpu", weights_only=True).items()
    }


def load_clap_audio_tower(folder: Path):
    """The `ClapAudioModel` of a transformers / LAION CLAP directory (`ClapModel` weights,
    keys `audio_model.*`), or of a saved `ClapAudioModel` itself."""
    from transformers import ClapAudioConfig, ClapAudioModel

    try:
        meta = json.loads((folder / "config.json").read_text())
        full = meta.get("model_type") == "clap"
        config = ClapAudioConfig(**meta["audio_config"]) if full else ClapAudioConfig(**meta)
        state = _read_state(folder)
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise ModelLoadError(f"Could not read a CLAP checkpoint in {folder}: {err}") from None
    if full:
        state = {
            k.removeprefix("audio_model."): v
            for k, v in state.items()
            if k.startswith("audio_model.")
        }
    model = ClapAudioModel(config)
    missing, _ = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if "position_ids" not in k]
    if not state or missing:
        raise ModelLoadError(
            f"{folder} holds no complete HTSAT audio tower ({len(missing)} tensors missing)."
        )
    return model


@register_encoder("htsat")
class HTSAT(AudioEncoder):
    def __init__(self, cfg: AudioEncoderConfig, front_end: AudioConfig, load_weights: bool = True):
        super().__init__(cfg, front_end, load_weights)
        from transformers import ClapAudioConfig, ClapAudioModel

        if load_weights and cfg.pretrained:
            self.model = load_clap_audio_tower(Path(cfg.pretrained))
        else:
            self.model = ClapAudioModel(ClapAudioConfig(**cfg.hf_config))
        resolved = {
            k: v for k, v in self.model.config.to_diff_dict().items() if k not in _SKIP_KEYS
        }
        self.config = AudioEncoderConfig(
            name=cfg.name, dropout=cfg.dropout, pretrained=cfg.pretrained, hf_config=resolved
        )
        self.out_dim = int(self.model.config.hidden_size)

    def forward(
        self, features: torch.Tensor, is_longer: torch.Tensor | None = None
    ) -> torch.Tensor:
        if is_longer is None:
            is_longer = torch.zeros(features.shape[0], dtype=torch.bool, device=features.device)
        out = self.model(input_features=features, is_longer=is_longer.reshape(-1, 1))
        return out.pooler_output
