"""The one interface every model backend implements: audio and text in, unit vectors out.

Backends (transformers `ClapModel`, clapsearch checkpoints) only implement the two forward
passes on prepared inputs; this base owns what must be identical across them: the front end,
batching, the long-clip policy, precision and normalisation.

Long-clip policy (applied everywhere a clip becomes one vector: `embed`, `eval`, `classify`):
- `rand_trunc` models: the clip is cut into windows of the model's length (`window_starts`:
  consecutive windows, the last flush with the end); the clip's embedding is the L2-normalised
  mean of its windows' normalised embeddings.
- `fusion` models: the whole clip goes through the model's own fusion input, with fixed crops.
The indexer, which stores one vector per window, passes window-length clips and so gets one
window each.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from clapsearch.config import AudioConfig
from clapsearch.features import clap_features, window_starts

if TYPE_CHECKING:
    from clapsearch.identity import ModelIdentity


class Embedder(abc.ABC):
    """Embeds waveforms and texts into one shared unit-norm space of size `dim`.

    Subclasses set `audio_config`, `dim`, `model_identity`, `device`, `dtype`, `tokenizer` (a
    transformers tokenizer) and implement `_audio_forward` / `_text_forward` and
    `logit_scale`.

    Threads: one Embedder may be shared by threads. Its public methods take the Embedder's
    own lock, so forwards run one at a time (each already uses torch's intra-op threads, and
    the tokenizers are not safe to call concurrently: "Already borrowed").
    """

    audio_config: AudioConfig
    dim: int
    model_identity: ModelIdentity  # which weights: indexes record it, refuse another model
    device: torch.device
    dtype: torch.dtype
    tokenizer: Any
    text_suffix: str = ""  # appended to every text before tokenizing (MS-CLAP 2023)
    audio_batch_size: int = 16
    text_batch_size: int = 64

    @property
    def identity(self) -> str:
        """`model_identity.key`, e.g. "hf:laion/clap-htsat-unfused@1a2b3c4d5e6f"."""
        return self.model_identity.key

    @property
    def _lock(self) -> threading.RLock:
        # created on first use (subclasses do not call a base __init__); setdefault is atomic
        return self.__dict__.setdefault("_forward_lock", threading.RLock())

    @property
    @abc.abstractmethod
    def logit_scale(self) -> float:
        """The model's own audio-text temperature: logits are `logit_scale * cosine`."""

    @property
    def sample_rate(self) -> int:
        return self.audio_config.sample_rate

    @property
    def window_s(self) -> float:
        return self.audio_config.window_s

    # --- backend hooks -------------------------------------------------------------------
    @abc.abstractmethod
    def _audio_forward(self, features: torch.Tensor, is_longer: torch.Tensor) -> torch.Tensor:
        """`(B, C, frames, n_mels)` float32 features, `(B,)` bool -> `(B, dim)` unnormalised."""

    @abc.abstractmethod
    def _text_forward(self, texts: list[str]) -> torch.Tensor:
        """`B` strings -> `(B, dim)` unnormalised (tokenised with truncation)."""

    def count_tokens(self, text: str) -> int:
        """Tokens the text needs before truncation (to tell users a query was cut)."""
        with self._lock:
            return len(self.tokenizer(text + self.text_suffix, truncation=False)["input_ids"])

    def _tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Padded, truncated `input_ids` / `attention_mask` on the model's device."""
        from clapsearch.tokenization import tokenize

        return tokenize(self.tokenizer, texts, self.max_text_tokens, self.text_suffix).to(
            self.device
        )

    @property
    @abc.abstractmethod
    def max_text_tokens(self) -> int:
        """Longest token sequence the text tower reads; longer texts are truncated."""

    # --- public API ----------------------------------------------------------------------
    @torch.inference_mode()
    def embed_audio(self, waveforms: Sequence[np.ndarray | torch.Tensor]) -> np.ndarray:
        """Mono float32 clips at `sample_rate` -> `(N, dim)` float32 unit vectors, in order."""
        if len(waveforms) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return self._embed_audio(waveforms)

    def _embed_audio(self, waveforms: Sequence[np.ndarray | torch.Tensor]) -> np.ndarray:
        pieces, owners = self._split_long(waveforms)
        sums = torch.zeros(len(waveforms), self.dim, dtype=torch.float32)
        for lo in range(0, len(pieces), self.audio_batch_size):
            batch = pieces[lo : lo + self.audio_batch_size]
            features, is_longer = clap_features(
                [p.to(self.device, torch.float32) for p in batch], self.audio_config
            )
            out = self._audio_forward(features, is_longer)
            out = F.normalize(out.float(), dim=-1).cpu()
            sums.index_add_(0, torch.tensor(owners[lo : lo + len(batch)]), out)
        return F.normalize(sums, dim=-1).numpy()

    @torch.inference_mode()
    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Strings -> `(N, dim)` float32 unit vectors, in order."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        outs = []
        with self._lock:
            for lo in range(0, len(texts), self.text_batch_size):
                out = self._text_forward(texts[lo : lo + self.text_batch_size])
                outs.append(F.normalize(out.float(), dim=-1).cpu())
        return torch.cat(outs).numpy()

    def _split_long(
        self, waveforms: Sequence[np.ndarray | torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[int]]:
        """Apply the long-clip policy: windows for `rand_trunc`, whole clips for `fusion`."""
        window = self.audio_config.window_samples
        pieces: list[torch.Tensor] = []
        owners: list[int] = []
        for i, w in enumerate(waveforms):
            w = torch.as_tensor(w, dtype=torch.float32)
            if w.ndim != 1:
                raise ValueError(f"expected mono 1-D waveforms, got shape {tuple(w.shape)}")
            if self.audio_config.truncation == "fusion":
                starts = [0]
                w_pieces = [w]
            else:
                starts = window_starts(w.shape[0], window)
                w_pieces = [w[s : s + window] for s in starts]
            pieces.extend(w_pieces)
            owners.extend([i] * len(starts))
        return pieces, owners
