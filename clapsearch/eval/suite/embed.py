"""Clips of a LabelledSet -> one embedding each, through the on-disk cache.

Each distinct file is hashed once (`EmbeddingCache.file_hashes`, memoised by size and mtime);
vectors already cached for this model are read back, the rest are decoded in threads a chunk
ahead of the model (as `clapsearch.eval.clips` does) and written to the cache chunk by chunk,
so an interrupted run keeps what it embedded. A segment (Speech Commands' silence) is cut from
its decoded file; a file's segments are decoded once per chunk. Clips that cannot be decoded
are returned as `failed`, never a crash of the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clapsearch.datasets import MissingClip
from clapsearch.datasets.labelled import LabelledClip
from clapsearch.embedder import Embedder
from clapsearch.eval.clips import decode_file, default_workers
from clapsearch.eval.suite.cache import EmbeddingCache, Key
from clapsearch.hashing import content_hash


@dataclass(frozen=True)
class EmbeddedSet:
    """`embeddings[j]` belongs to `clips[kept[j]]`; `hashes` maps each readable path to its
    content hash (for the training-overlap check); `cached` counts clips read from the cache."""

    embeddings: np.ndarray  # (len(kept), dim) float32 unit rows
    kept: tuple[int, ...]
    failed: tuple[tuple[int, MissingClip], ...]
    hashes: dict[str, str]
    cached: int


def _hashes(paths: Sequence[str], cache: EmbeddingCache | None) -> dict[str, str]:
    if cache is not None:
        return cache.file_hashes(paths)
    out = {}
    for p in dict.fromkeys(paths):
        try:
            out[p] = content_hash(p)
        except OSError:
            pass
    return out


def _key(clip: LabelledClip, digest: str) -> Key:
    return (digest, float(clip.start_s), -1.0 if clip.duration_s is None else clip.duration_s)


def _cut(wave: np.ndarray, clip: LabelledClip, sr: int) -> np.ndarray | None:
    if clip.duration_s is None and not clip.start_s:
        return wave
    lo = int(round(clip.start_s * sr))
    hi = len(wave) if clip.duration_s is None else lo + int(round(clip.duration_s * sr))
    piece = wave[lo:hi]
    return piece if piece.size else None


def embed_clips(
    embedder: Embedder,
    clips: Sequence[LabelledClip],
    cache: EmbeddingCache | None = None,
    chunk_size: int = 32,
    workers: int | None = None,
    progress: bool = True,
    desc: str = "audio",
) -> EmbeddedSet:
    """Embed `clips` in order (module doc)."""
    from tqdm import tqdm

    sr = embedder.sample_rate
    hashes = _hashes([c.path for c in clips], cache)
    vectors: dict[int, np.ndarray] = {}
    failed: dict[int, MissingClip] = {}
    todo: list[int] = []
    keys: dict[int, Key] = {}
    for i, clip in enumerate(clips):
        if clip.path not in hashes:
            failed[i] = MissingClip(Path(clip.path).name, clip.path, "missing")
        else:
            keys[i] = _key(clip, hashes[clip.path])
    if cache is not None and keys:
        found = cache.get(list(keys.values()))
        for i, key in keys.items():
            if key in found:
                vectors[i] = found[key]
    cached = len(vectors)
    todo = [i for i in keys if i not in vectors]
    bar = tqdm(total=len(todo), desc=desc, unit="clip", disable=not progress or None)
    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:

        def submit(chunk: list[int]):
            paths = list(dict.fromkeys(clips[i].path for i in chunk))
            return {p: pool.submit(decode_file, p, sr) for p in paths}

        chunks = [todo[lo : lo + chunk_size] for lo in range(0, len(todo), chunk_size)]
        pending = submit(chunks[0]) if chunks else {}
        for n, chunk in enumerate(chunks):
            decoded = {p: f.result() for p, f in pending.items()}
            pending = submit(chunks[n + 1]) if n + 1 < len(chunks) else {}
            waves, owners = [], []
            for i in chunk:
                clip, item = clips[i], decoded[clips[i].path]
                if isinstance(item, MissingClip):
                    failed[i] = MissingClip(clip.name, clip.path, item.reason)
                    continue
                piece = _cut(item, clip, sr)
                if piece is None:
                    failed[i] = MissingClip(clip.name, clip.path, "empty")
                    continue
                waves.append(piece)
                owners.append(i)
            if waves:
                emb = embedder.embed_audio(waves)
                for i, vec in zip(owners, emb, strict=True):
                    vectors[i] = vec
                if cache is not None:
                    cache.put((keys[i], vectors[i]) for i in owners)
            bar.update(len(chunk))
    bar.close()
    kept = tuple(sorted(vectors))
    matrix = (
        np.stack([vectors[i] for i in kept]).astype(np.float32)
        if kept
        else np.zeros((0, embedder.dim), dtype=np.float32)
    )
    return EmbeddedSet(matrix, kept, tuple(sorted(failed.items())), hashes, cached)
