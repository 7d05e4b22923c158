"""Library side of `clapsearch embed`: files/texts in, an (N, d) matrix out, written atomically."""

from __future__ import annotations

import os
import tempfile
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
    from clapsearch.loading import load_embedder

    embedder = load_embedder(model, device=device, precision=precision)
    if texts:
        return texts, embedder.embed_text(texts), embedder.identity
    # Decode everything first so a bad file fails before any model time is spent.
    waveforms = [load_audio(p, embedder.sample_rate) for p in audio]
    return audio, embedder.embed_audio(waveforms), embedder.identity


def save_npy(path: str | Path, array: np.ndarray) -> None:
    """Write `array` to `path` via a temporary file and `os.replace`: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
