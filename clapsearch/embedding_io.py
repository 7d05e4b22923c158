"""Library side of `clapsearch embed`: files/texts in, an (N, d) matrix out, written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def embed_inputs(
    audio: list[str],
    texts: list[str],
    model: str | None = None,
    device: str = "auto",
    precision: str = "auto",
) -> tuple[list[str], np.ndarray, str]:
    """-> (input names in order, `(N, dim)` float32 unit rows, model identity)."""
    from clapsearch.audio import load_audio
    from clapsearch.sources import load_embedder

    embedder = load_embedder(model, device=device, precision=precision)
    if texts:
        return texts, embedder.embed_text(texts), embedder.identity
    # Decode everything first so a bad file fails before any model time is spent.
    waveforms = [load_audio(p, embedder.sample_rate) for p in audio]
    return audio, embedder.embed_audio(waveforms), embedder.identity


def save_npy(path: str | Path, array: np.ndarray) -> None:
    """Write `array` to `path` atomically (`clapsearch.atomic`): never half a file."""
    from clapsearch.atomic import atomic_open

    with atomic_open(path, "wb") as f:
        np.save(f, array)
