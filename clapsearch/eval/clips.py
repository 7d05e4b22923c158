"""Audio files -> one embedding each, decoding in threads ahead of the model.

Waveforms are decoded chunk by chunk (never the whole benchmark at once: Clotho's evaluation
split is ~6 GB of float32 at 48 kHz) while the model embeds the previous chunk. Decoding is
I/O plus libsndfile/soxr work that releases the GIL, so threads are enough. Each clip becomes
one vector by the Embedder's long-clip policy (mean of windows, or the fusion input), and
nothing here is random, so two runs give the same embeddings.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clapsearch.audio import load_audio
from clapsearch.datasets import MissingClip
from clapsearch.embedder import Embedder
from clapsearch.errors import AudioDecodeError


@dataclass(frozen=True)
class EmbeddedClips:
    """`embeddings[j]` belongs to `paths[kept[j]]`; `failed` lists clips that did not decode."""

    embeddings: np.ndarray  # (len(kept), dim) float32 unit rows
    kept: tuple[int, ...]
    failed: tuple[tuple[int, MissingClip], ...]


def default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 1)))


def decode_file(path: str, sample_rate: int) -> np.ndarray | MissingClip:
    """Decode or describe why not: a bad file is a counted miss, not a crash of the whole run."""
    try:
        wave = load_audio(path, sample_rate)
    except AudioDecodeError as err:
        return MissingClip(Path(path).name, path, err.reason)
    except FileNotFoundError:
        return MissingClip(Path(path).name, path, "missing")
    except (OSError, RuntimeError, ValueError):  # decoders without typed errors
        return MissingClip(Path(path).name, path, "unreadable")
    if wave.size == 0:
        return MissingClip(Path(path).name, path, "empty")
    return wave


def embed_files(
    embedder: Embedder,
    paths: Sequence[str],
    chunk_size: int = 32,
    workers: int | None = None,
    progress: bool = True,
    desc: str = "audio",
) -> EmbeddedClips:
    """Embed `paths` in order; undecodable files are skipped and reported in `failed`."""
    from tqdm import tqdm

    workers = workers or default_workers()
    chunks = [
        list(range(lo, min(lo + chunk_size, len(paths)))) for lo in range(0, len(paths), chunk_size)
    ]
    vectors: list[np.ndarray] = []
    kept: list[int] = []
    failed: list[tuple[int, MissingClip]] = []
    bar = tqdm(total=len(paths), desc=desc, unit="clip", disable=not progress or None)
    with ThreadPoolExecutor(max_workers=workers) as pool:

        def submit(chunk: list[int]) -> list[Future]:
            return [pool.submit(decode_file, paths[i], embedder.sample_rate) for i in chunk]

        pending = submit(chunks[0]) if chunks else []
        for n, chunk in enumerate(chunks):
            decoded = [f.result() for f in pending]
            # Decode the next chunk while this one goes through the model.
            pending = submit(chunks[n + 1]) if n + 1 < len(chunks) else []
            waves = []
            for i, item in zip(chunk, decoded, strict=True):
                if isinstance(item, MissingClip):
                    failed.append((i, item))
                else:
                    kept.append(i)
                    waves.append(item)
            if waves:
                vectors.append(embedder.embed_audio(waves))
            bar.update(len(chunk))
    bar.close()
    dim = embedder.dim
    matrix = np.concatenate(vectors) if vectors else np.zeros((0, dim), dtype=np.float32)
    return EmbeddedClips(matrix.astype(np.float32, copy=False), tuple(kept), tuple(failed))


def embed_texts(
    embedder: Embedder, texts: Sequence[str], chunk_size: int = 256, progress: bool = True
) -> np.ndarray:
    """`texts` -> `(N, dim)` float32 unit rows, with a progress bar over chunks."""
    from tqdm import tqdm

    out = [np.zeros((0, embedder.dim), dtype=np.float32)]
    with tqdm(total=len(texts), desc="text", unit="caption", disable=not progress or None) as bar:
        for lo in range(0, len(texts), chunk_size):
            out.append(embedder.embed_text(list(texts[lo : lo + chunk_size])))
            bar.update(min(chunk_size, len(texts) - lo))
    return np.concatenate(out)
