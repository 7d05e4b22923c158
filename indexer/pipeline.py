"""Decode + features in worker processes, model forward in the main one, overlapped.

reader (workers: decode, resample, window, log-mel) -> mapper (main: batched forward) ->
writer (the caller: one transaction per file). Workers return each file's windows as log-mel
features `(n_windows, C, frames, n_mels)` float32, 8x smaller to ship than 48 kHz waveforms,
computed by the same `clapsearch.features.clap_features` the Embedder uses, so a window's
vector is what `Embedder.embed_audio` gives for that window.

Files are submitted in order with a bounded number in flight; while the main process runs the
model on one batch, the workers decode the next files. Batches gather windows across files
(`Embedder.audio_batch_size`), a file is handed on when all its windows are embedded.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from clapsearch.config import AudioConfig
from clapsearch.errors import ClapsearchError
from clapsearch.index.schema import FileRecord
from indexer.scan import ScannedFile, content_hash


@dataclass(frozen=True)
class DecodeTask:
    file: ScannedFile
    content_hash: str | None  # known when the planner already hashed it


@dataclass
class Decoded:
    record: FileRecord
    spans: list[tuple[float, float]]  # (start_s, end_s) per window
    features: np.ndarray  # (n, C, frames, n_mels) float32
    is_longer: np.ndarray  # (n,) bool


@dataclass
class Embedded:
    record: FileRecord
    spans: list[tuple[float, float]]
    vectors: np.ndarray  # (n, dim) float32 unit rows


@dataclass
class Failed:
    path: str
    size: int
    mtime_ns: int
    reason: str
    detail: str


def decode(task: DecodeTask, config: AudioConfig, hop_s: float | None) -> Decoded | Failed:
    """One file -> its windows' features, or why it could not be read. Never raises."""
    import torch

    from clapsearch.audio import audio_info, iter_windows
    from clapsearch.errors import AudioDecodeError
    from clapsearch.features import clap_features

    f = task.file
    try:
        info = audio_info(f.path)
        windows = list(iter_windows(f.path, config.sample_rate, config.window_s, hop_s))
        if not windows:
            return Failed(f.path, f.size, f.mtime_ns, "empty", "no samples")
        feats, longer = clap_features([torch.from_numpy(w.waveform) for w in windows], config)
        h = task.content_hash or content_hash(f.path, f.size)
    except AudioDecodeError as e:
        return Failed(f.path, f.size, f.mtime_ns, e.reason, e.detail)
    except PermissionError as e:
        return Failed(f.path, f.size, f.mtime_ns, "permission_denied", e.strerror or str(e))
    except Exception as e:  # a decoder bug must not end a run over 100k files
        return Failed(f.path, f.size, f.mtime_ns, "unreadable", f"{type(e).__name__}: {e}")
    duration = max(info.duration_s, windows[-1].end_s)
    record = FileRecord(
        f.path, f.size, f.mtime_ns, h, float(duration), info.sample_rate, info.channels
    )
    spans = [(float(w.start_s), float(w.end_s)) for w in windows]
    return Decoded(record, spans, feats.numpy(), longer.numpy())


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # the main process's forward gets the cores


def _decode_job(args) -> Decoded | Failed:
    return decode(*args)


def embed_features(embedder, features: np.ndarray, is_longer: np.ndarray) -> np.ndarray:
    """`(n, C, frames, n_mels)` features -> `(n, dim)` float32 unit vectors, in batches.

    Uses the backend's forward hook directly: the features were already made by workers."""
    import torch
    import torch.nn.functional as F

    out = []
    bs = embedder.audio_batch_size
    with torch.inference_mode():
        for lo in range(0, len(features), bs):
            x = torch.from_numpy(features[lo : lo + bs]).to(embedder.device)
            lg = torch.from_numpy(is_longer[lo : lo + bs]).to(embedder.device)
            y = embedder._audio_forward(x, lg)
            out.append(F.normalize(y.float(), dim=-1).cpu().numpy())
    if not out:
        return np.zeros((0, embedder.dim), np.float32)
    return np.concatenate(out)


class DecodePool:
    """Worker processes for `decode`, started early (their imports overlap the model load).

    `spawn` context: forking after torch has started its thread pools can deadlock. Each
    worker runs torch with one thread; the main process's forward keeps the cores.
    With `workers == 0` decoding runs inline (tests, tiny jobs)."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool = None
        if workers > 0:
            ctx = mp.get_context("spawn")
            self._pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker)
            # start them now: their imports run while the model loads
            self._warming = [self._pool.submit(_warm) for _ in range(workers)]

    def wait_ready(self) -> None:
        """Block until every worker has imported its modules (benchmarks)."""
        for fut in getattr(self, "_warming", []):
            fut.result()

    def stream(
        self, tasks: list[DecodeTask], config: AudioConfig, hop_s: float | None, ahead: int = 0
    ) -> Iterator[Decoded | Failed]:
        """Decode results in task order, with up to max(ahead, 2 * workers + 2) files in
        flight: `ahead` should cover the next batch, so the workers fill it while the model
        runs on this one (a smaller bound leaves the model waiting on decodes each batch)."""
        if self._pool is None:
            for t in tasks:
                yield decode(t, config, hop_s)
            return
        pending: deque[Future] = deque()
        it = iter(tasks)
        try:
            for t in it:
                pending.append(self._pool.submit(_decode_job, (t, config, hop_s)))
                if len(pending) >= max(ahead, 2 * self.workers + 2):
                    break
            while pending:
                try:
                    result = pending.popleft().result()
                except BrokenProcessPool:
                    raise ClapsearchError(
                        "A decoding worker process died (killed or out of memory); the files "
                        "committed so far are kept, re-run `clapsearch index` to continue."
                    ) from None
                nxt = next(it, None)
                if nxt is not None:
                    pending.append(self._pool.submit(_decode_job, (nxt, config, hop_s)))
                yield result
        finally:
            for fut in pending:
                fut.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _warm() -> None:
    import torch  # noqa: F401

    import clapsearch.audio  # noqa: F401
    import clapsearch.features  # noqa: F401


def embed_files(
    tasks: Iterable[DecodeTask], embedder, hop_s: float | None, pool: DecodePool
) -> Iterator[Embedded | Failed]:
    """Decode `tasks` (in `pool`) and embed their windows in batches; yields each file when
    all of its windows are embedded, failures as they come."""
    tasks = list(tasks)
    bs = embedder.audio_batch_size
    ready: list[Decoded] = []
    n_ready = 0
    stream = pool.stream(tasks, embedder.audio_config, hop_s, ahead=2 * bs)
    exhausted = False
    while not exhausted or ready:
        while not exhausted and n_ready < bs:
            item = next(stream, None)
            if item is None:
                exhausted = True
            elif isinstance(item, Failed):
                yield item
            else:
                ready.append(item)
                n_ready += len(item.spans)
        if not ready:
            continue
        group, ready, n_ready = ready, [], 0
        feats = np.concatenate([d.features for d in group])
        longer = np.concatenate([d.is_longer for d in group])
        vecs = embed_features(embedder, feats, longer)
        lo = 0
        for d in group:
            n = len(d.spans)
            yield Embedded(d.record, d.spans, vecs[lo : lo + n])
            lo += n


def default_workers() -> int:
    """One decoding worker per spare core (the main process runs the model), at least one."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


__all__ = [
    "DecodePool",
    "DecodeTask",
    "Embedded",
    "Failed",
    "decode",
    "default_workers",
    "embed_files",
    "embed_features",
]
