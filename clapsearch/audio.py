"""Audio decoding (minimal first version; hardened in the audio-I/O work)."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import soxr


def load_audio(path: str, sample_rate: int | None = None) -> np.ndarray:
    """File -> mono float32 at `sample_rate` (the file's own rate when None)."""
    y, sr = sf.read(path, dtype="float32", always_2d=True)
    y = y[:, 0] if y.shape[1] == 1 else y.mean(axis=1)
    if sample_rate and sr != sample_rate:
        y = soxr.resample(y, sr, sample_rate)
    return np.ascontiguousarray(y, dtype=np.float32)
