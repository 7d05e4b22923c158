"""The content hash of an audio file: how the indexer recognises a moved file and how a
checkpoint's `trained_on.json` names the clips a model trained on (algorithm
"blake2b-128-clapsearch-v1", PLAN.md), so eval can tell whether it scores training clips.

blake2b-128 of the size and the content, sampled for files over 4 MiB: the first and last MiB
(headers, codec state, trailing data) plus eight 64 KiB blocks across the middle tell
different recordings apart in practice, and hashing whole multi-GB recordings would make every
new file cost a full extra read. Small files (most clips) are hashed whole.
"""

from __future__ import annotations

import hashlib
import os

HASH_NAME = "blake2b-128-clapsearch-v1"  # the `hash` field of trained_on.json
HASH_FULL_MAX = 4 << 20  # files up to 4 MiB are hashed whole
HASH_EDGE = 1 << 20  # larger: first and last 1 MiB ...
HASH_SAMPLES = 8  # ... plus 8 blocks of 64 KiB spread through the middle
HASH_SAMPLE = 64 << 10


def content_hash(path: str | os.PathLike, size: int | None = None) -> str:
    """32 hex digits identifying the file's content (`size` defaults to the file's size)."""
    if size is None:
        size = os.stat(path).st_size
    h = hashlib.blake2b(digest_size=16)
    h.update(size.to_bytes(8, "little"))
    with open(path, "rb") as fh:
        if size <= HASH_FULL_MAX:
            h.update(fh.read())
        else:
            h.update(fh.read(HASH_EDGE))
            span = size - 2 * HASH_EDGE - HASH_SAMPLE
            for i in range(HASH_SAMPLES):
                fh.seek(HASH_EDGE + span * (i + 1) // (HASH_SAMPLES + 1))
                h.update(fh.read(HASH_SAMPLE))
            fh.seek(size - HASH_EDGE)
            h.update(fh.read(HASH_EDGE))
    return h.hexdigest()


__all__ = ["HASH_NAME", "content_hash"]
