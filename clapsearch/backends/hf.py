"""transformers `ClapModel` backend: LAION-CLAP checkpoints from the hub or a local directory.

The feature extractor is replaced by `clapsearch.features` (same numbers, deterministic, ~10x
faster); its settings are read from the checkpoint's `preprocessor_config.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from clapsearch.config import AudioConfig
from clapsearch.embedder import Embedder
from clapsearch.errors import ConfigError, ModelLoadError
from clapsearch.identity import ModelIdentity, TextConfig


def audio_config_from_preprocessor(pre: dict) -> AudioConfig:
    """`preprocessor_config.json` of a `ClapProcessor` -> our `AudioConfig`."""
    return AudioConfig(
        sample_rate=int(pre.get("sampling_rate", 48_000)),
        window_s=float(pre.get("max_length_s", 10)),
        n_fft=int(pre.get("fft_window_size", 1024)),
        hop_length=int(pre.get("hop_length", 480)),
        n_mels=int(pre.get("feature_size", 64)),
        f_min=float(pre.get("frequency_min", 0)),
        f_max=float(pre.get("frequency_max", 14_000)),
        truncation=pre.get("truncation", "fusion"),
        padding=pre.get("padding", "repeatpad"),
    )


def _read_preprocessor(folder: Path) -> dict:
    """Feature-extractor settings: `preprocessor_config.json` (hub checkpoints, transformers 4)
    or the `feature_extractor` entry of `processor_config.json` (transformers 5)."""
    pre = folder / "preprocessor_config.json"
    if pre.exists():
        return json.loads(pre.read_text())
    proc = folder / "processor_config.json"
    if proc.exists():
        return json.loads(proc.read_text()).get("feature_extractor", {})
    raise ModelLoadError(f"{folder} has no preprocessor_config.json: it is not a CLAP checkpoint.")


def _resolve_files(name_or_path: str) -> Path:
    """Local directory or hub id (`clapsearch.sources.transformers` recognised it) -> the
    directory holding the checkpoint files.

    Never downloads when `HF_HUB_OFFLINE=1`; a missing offline copy is one clear sentence.
    """
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        return local
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(
            name_or_path, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*.bin"]
        )
    except Exception as err:  # offline, unknown id, no network: all end the same way for users
        raise ModelLoadError(
            f"Model {name_or_path!r} is not available offline and could not be downloaded "
            f"({type(err).__name__}); download it once with network access "
            f"(`huggingface-cli download {name_or_path}`) or pass a local directory with "
            f"--model /path/to/model."
        ) from None
    return Path(folder)


def _weights_digest(folder: Path) -> str:
    """A short content hash of the config and weights, so renaming a copy keeps its identity
    and changed weights get a new one. Hashes the first and last 8 MiB plus the size of each
    weights file: fast for 600 MB checkpoints, and different weights differ there."""
    import hashlib

    h = hashlib.sha256()
    h.update((folder / "config.json").read_bytes())
    for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        size = f.stat().st_size
        h.update(str(size).encode())
        with open(f, "rb") as fh:
            h.update(fh.read(8 << 20))
            if size > 16 << 20:
                fh.seek(-(8 << 20), 2)
                h.update(fh.read())
    return h.hexdigest()[:12]


class HFClapEmbedder(Embedder):
    """`ClapModel.get_audio_features` / `get_text_features` behind the `Embedder` interface."""

    def __init__(self, name_or_path: str, device: torch.device, dtype: torch.dtype):
        from transformers import ClapModel

        from clapsearch.tokenization import load_tokenizer

        folder = _resolve_files(name_or_path)
        try:  # first: its sizes are checked before any weight is loaded
            self.audio_config = audio_config_from_preprocessor(_read_preprocessor(folder))
        except (ValueError, TypeError) as err:  # ConfigError included: sizes out of range
            raise ConfigError(f"{folder} has an invalid preprocessor config ({err}).") from None
        try:
            model = ClapModel.from_pretrained(folder, torch_dtype=dtype)
        except Exception as err:
            raise ModelLoadError(f"Could not load a CLAP model from {folder}: {err}") from None
        # LAION's text tower is RoBERTa; a folder converted from a `.pt` may hold no vocabulary.
        vocab = int(model.config.text_config.vocab_size)
        self.tokenizer = load_tokenizer(folder, "roberta", vocab, str(name_or_path))
        self.model = model.to(device).eval()
        self.device = device
        self.dtype = dtype
        self.dim = int(model.config.projection_dim)
        label = name_or_path if not Path(name_or_path).expanduser().is_dir() else folder.name
        self.model_identity = ModelIdentity(
            kind="hf",
            name=name_or_path,
            label=label,
            digest=_weights_digest(folder),
            dim=self.dim,
            audio=self.audio_config,
            text=TextConfig(max_tokens=self.max_text_tokens),
        )
        self.name_or_path = name_or_path

    @property
    def max_text_tokens(self) -> int:
        limit = getattr(self.tokenizer, "model_max_length", 512)
        positions = getattr(self.model.config.text_config, "max_position_embeddings", 514) - 2
        return int(min(limit, positions))

    @property
    def logit_scale(self) -> float:
        """`exp(logit_scale_a)`: transformers' CLAP keeps one scale per direction; audio-to-text
        is the one zero-shot classification uses."""
        return float(self.model.logit_scale_a.detach().float().exp().cpu())

    def _audio_forward(self, features: torch.Tensor, is_longer: torch.Tensor) -> torch.Tensor:
        out = self.model.audio_model(
            input_features=features.to(self.dtype), is_longer=is_longer[:, None]
        )
        return self.model.audio_projection(out.pooler_output)

    def _text_forward(self, texts: list[str]) -> torch.Tensor:
        tokens = self._tokenize(texts)
        out = self.model.text_model(
            input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
        )
        return self.model.text_projection(out.pooler_output)
