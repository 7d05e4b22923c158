"""Waveform peaks for drawing: a file -> `n` (min, max) pairs of its mono mix, cached.

The file is streamed once through `clapsearch.audio.iter_windows` at its own rate (no
resampling: a low rate would low-pass hi-hats into silence), so memory is a window or two
whatever the file's length. Bucket `i` covers frames `[i * F / n, (i + 1) * F / n)` of the
`F` frames, so peaks line up with time: bucket `i` starts at `i * duration / n` seconds.

Cache: in memory, least recently used, keyed by (file id, size, mtime_ns, n): a file changed
and re-indexed gets new peaks; a cache entry is 8 bytes a bucket.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from clapsearch.server.audio_stream import OpenedAudio

MIN_BUCKETS, MAX_BUCKETS = 16, 4096
CACHE_ENTRIES = 512


class PeaksCache:
    def __init__(self, entries: int = CACHE_ENTRIES):
        self.entries = entries
        self._cache: OrderedDict[tuple, dict] = OrderedDict()
        self._lock = threading.Lock()
        self.computed = 0  # how many were computed, not served from the cache (tests)

    def get(self, audio: OpenedAudio, n: int) -> dict:
        """-> {"file_id", "duration", "buckets", "peaks": [min0, max0, min1, max1, ...]}"""
        r = audio.info.record
        key = (audio.info.id, r.size, r.mtime_ns, n)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        lo, hi = compute_peaks(audio.fd_path, n)
        peaks = np.round(np.stack([lo, hi], axis=1).ravel().astype(np.float64), 4).tolist()
        value = {"file_id": audio.info.id, "duration": r.duration_s, "buckets": n, "peaks": peaks}
        with self._lock:
            self.computed += 1
            self._cache[key] = value
            while len(self._cache) > self.entries:
                self._cache.popitem(last=False)
        return value


def compute_peaks(path: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """-> (mins (n,), maxs (n,)) float32 of the mono mix; buckets past the audio are 0."""
    from clapsearch.audio import audio_info, iter_windows

    info = audio_info(path)
    total = max(1, info.frames)
    lo = np.zeros(n, np.float32)
    hi = np.zeros(n, np.float32)
    # bucket b starts at frame ceil(b * total / n); reduceat needs each block's local starts
    bounds = -((-np.arange(n + 1, dtype=np.int64) * total) // n)
    pos = 0
    for w in iter_windows(path, info.sample_rate, 5.0):
        y = w.waveform
        start = int(round(w.start_s * info.sample_rate))
        if start + len(y) <= pos:
            continue  # the flush window overlaps what was read already
        y = y[max(0, pos - start) :]
        first = max(pos, start)
        end = first + len(y)
        b0 = int(np.searchsorted(bounds, first, side="right")) - 1
        b1 = int(np.searchsorted(bounds, end - 1, side="right")) - 1
        b0, b1 = max(0, min(b0, n - 1)), max(0, min(b1, n - 1))
        cuts = np.clip(bounds[b0 : b1 + 1] - first, 0, len(y) - 1)
        cuts[0] = 0
        cuts = np.maximum.accumulate(cuts)
        mins = np.minimum.reduceat(y, cuts)
        maxs = np.maximum.reduceat(y, cuts)
        idx = np.arange(b0, b1 + 1)
        lo[idx] = np.minimum(lo[idx], mins)
        hi[idx] = np.maximum(hi[idx], maxs)
        pos = end
    return lo, hi


__all__ = ["MAX_BUCKETS", "MIN_BUCKETS", "PeaksCache", "compute_peaks"]
