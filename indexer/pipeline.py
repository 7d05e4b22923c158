"""Decode in worker processes; log-mel and model forward in the main one, overlapped.

reader (`indexer.decode`, in workers: decode, resample, window) -> mapper (main: log-mel with
the Embedder's `clap_features` as parts arrive, batched forward) -> writer (the caller: one
transaction per file). A window's vector is what `Embedder.embed_audio` gives for it alone.

Why the front end is not in the workers: a worker that imports torch costs ~230 MB (143 MB of
it private), a decode-only worker ~30 MB; the log-mel is a few ms a window beside the model's
forward, and on a GPU it runs there. Windows travel as float32 waveforms (16 MB a part).

Memory is bounded whatever the files' lengths or their headers' claims:
- a worker streams each file as `Part`s of at most `PART_SAMPLES` samples (`decode_parts`)
  and blocks on its pipe until the main process has read the previous one;
- the main process reads ahead in a thread (`DecodePool._pump`) so workers decode while the
  model runs, up to `ahead_samples` (two batches of windows) held unread;
- a part becomes features on arrival, and batches are cut from the features (`embed_files`);
  a file keeps only its vectors until it is handed on, when all its windows are embedded.
Files are handed on as they complete; with one worker (or inline) that is task order.

Interrupts and dead workers: workers run in their own session, so Ctrl-C reaches only the main
process, which ends them (`close`); a worker that dies (killed, out of memory) ends the run
with one sentence naming the file it was reading; a main process that dies takes its workers
with it (they see their socket close).
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

import numpy as np

from clapsearch.errors import ClapsearchError
from clapsearch.index.schema import FileRecord
from indexer.decode import (
    PART_SAMPLES,
    READY,
    DecodeJob,
    Done,
    Failed,
    Part,
    decode_parts,
    receive_message,
)
from indexer.scan import ScannedFile


@dataclass(frozen=True)
class DecodeTask:
    file: ScannedFile
    content_hash: str | None  # known when the planner already hashed it


@dataclass
class Embedded:
    record: FileRecord
    spans: list[tuple[float, float]]
    vectors: np.ndarray  # (n, dim) float32 unit rows


class WorkerDied(ClapsearchError):
    """A decode worker process ended without being asked to (killed, out of memory)."""


class _Halt:
    """The pump's last word to the consumer: an error to raise, or None at the end."""

    def __init__(self, error: BaseException | None):
        self.error = error


def _worker_env() -> dict[str, str]:
    """The environment of a worker: ours, with this checkout first on the import path."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=root + (os.pathsep + path if path else ""))


class DecodePool:
    """Decode worker processes, started early (their imports overlap the model load).

    Each worker is `python -m indexer.decode` on one socket (not `multiprocessing`: no fork
    after torch started its threads, no resource-tracker process, no re-import of the
    caller's main module), in its own session so that Ctrl-C reaches only this process.
    With `workers == 0` files are decoded inline (tests, tiny jobs). One `stream` at a time."""

    def __init__(self, workers: int, ahead_samples: int = 2 * PART_SAMPLES):
        self.workers = workers
        self.ahead_samples = ahead_samples
        self._procs: list = []
        self._conns: list = []
        self._ready: set = set()
        self._jobs: deque[DecodeJob] = deque()
        self._paths: dict = {}  # conn -> path of the job it is on
        self._out: queue.Queue = queue.Queue()
        self._budget = threading.Condition()
        self._held = 0  # samples read from workers and not yet taken by the consumer
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()  # tells the pump that jobs arrived
        self._pump_thread: threading.Thread | None = None
        if workers <= 0:
            return
        try:
            for _ in range(workers):
                ours, theirs = socket.socketpair()
                proc = subprocess.Popen(
                    [sys.executable, "-m", "indexer.decode", str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),),
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # the terminal's Ctrl-C is ours to handle
                    env=_worker_env(),
                )
                theirs.close()  # ours closed: the worker's death is EOF on `conn`
                self._procs.append(proc)
                self._conns.append(Connection(ours.detach()))
            self._pump_thread = threading.Thread(target=self._pump, daemon=True)
            self._pump_thread.start()
        except BaseException:
            self.close(graceful=False)
            raise

    # --- the reading thread --------------------------------------------------------------
    def _pump(self) -> None:
        """Hand jobs to idle workers and move their messages to `_out`, holding at most
        `ahead_samples` unread (then it stops reading, and the workers block on send)."""
        idle: deque = deque()
        try:
            while not self._stop.is_set():
                while idle and self._jobs:
                    conn = idle.popleft()
                    job = self._jobs.popleft()
                    self._paths[conn] = job.path
                    try:
                        conn.send(job)
                    except OSError:  # it died while idle
                        raise self._died(conn) from None
                live = [c for c in self._conns if not c.closed]
                for conn in wait([*live, self._wake_r], timeout=1.0):
                    if conn == self._wake_r:
                        os.read(self._wake_r, 4096)
                        continue
                    try:
                        msg = receive_message(conn)
                    except (EOFError, OSError):
                        raise self._died(conn) from None
                    if msg == READY:
                        self._ready.add(conn)
                        idle.append(conn)
                        continue
                    if isinstance(msg, Part):
                        self._hold(msg.samples)
                    else:  # Done or Failed: this worker is free
                        self._paths.pop(conn, None)
                        idle.append(conn)
                    self._out.put(msg)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            self._out.put(_Halt(e))

    def _died(self, conn) -> WorkerDied:
        proc = self._procs[self._conns.index(conn)]
        try:
            code = proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            code = None
        how = ""
        if code is not None:
            how = f" (signal {-code})" if code < 0 else f" (exit code {code})"
        path = self._paths.get(conn)
        where = f" while reading {path}" if path else " while starting"
        return WorkerDied(
            f"A decoding worker process died{how}{where}, killed or out of memory; the files "
            f"committed so far are kept: run `clapsearch index` again to continue."
        )

    def _hold(self, samples: int) -> None:
        with self._budget:
            while self._held > 0 and self._held + samples > self.ahead_samples:
                if self._stop.is_set():
                    return
                self._budget.wait(timeout=0.5)
            self._held += samples

    def _release(self, samples: int) -> None:
        with self._budget:
            self._held -= samples
            self._budget.notify_all()

    # --- public --------------------------------------------------------------------------
    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until every worker has imported its modules (benchmarks)."""
        import time

        deadline = time.monotonic() + timeout
        while len(self._ready) < len(self._conns) and time.monotonic() < deadline:
            if self._pump_thread is not None and not self._pump_thread.is_alive():
                break
            time.sleep(0.01)

    def stream(
        self,
        tasks: list[DecodeTask],
        sample_rate: int,
        window_s: float,
        hop_s: float | None,
        part_samples: int = PART_SAMPLES,
    ) -> Iterator[Part | Done | Failed]:
        """Every file's messages (`indexer.decode`): `Part`s then `Done` or `Failed`, files
        interleaved when there are several workers. `seq` is the task's position."""
        jobs = [
            DecodeJob(
                i,
                t.file.path,
                t.file.size,
                t.file.mtime_ns,
                t.content_hash,
                sample_rate,
                window_s,
                hop_s,
                part_samples,
            )
            for i, t in enumerate(tasks)
        ]
        if not self._conns:
            for job in jobs:
                yield from decode_parts(job)
            return
        self._jobs.extend(jobs)
        os.write(self._wake_w, b"j")
        left = len(jobs)
        while left:
            try:
                msg = self._out.get(timeout=0.5)
            except queue.Empty:
                continue
            if isinstance(msg, _Halt):
                raise msg.error if msg.error is not None else RuntimeError("decode pool closed")
            if isinstance(msg, Part):
                self._release(msg.samples)
            else:
                left -= 1
            yield msg

    def close(self, graceful: bool = True) -> None:
        """End the workers: asked to stop after a clean run, terminated otherwise (an error,
        Ctrl-C: no waiting for a decode to finish). Idempotent."""
        if self._wake_w < 0:
            return
        self._stop.set()
        with self._budget:
            self._budget.notify_all()
        if graceful:
            for conn in self._conns:
                try:
                    conn.send(None)
                except (OSError, ValueError):
                    pass
        for proc in self._procs:
            if graceful:
                try:
                    proc.wait(timeout=5.0)
                except subprocess.TimeoutExpired:
                    pass
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._pump_thread is not None:
            os.write(self._wake_w, b"x")
            self._pump_thread.join(timeout=5.0)
        for conn in self._conns:
            conn.close()
        self._procs, self._conns = [], []
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(graceful=exc_type is None)


@dataclass
class _Pending:
    """A file whose windows are being embedded."""

    spans: list[tuple[float, float]] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    done: Done | None = None


def embed_files(
    tasks: Iterable[DecodeTask], embedder, hop_s: float | None, pool: DecodePool
) -> Iterator[Embedded | Failed]:
    """Decode `tasks` (in `pool`) and embed their windows in batches of
    `embedder.audio_batch_size`; yields each file when all of its windows are embedded,
    failures as they come (`embed_messages`)."""
    tasks = list(tasks)
    stream = pool.stream(tasks, embedder.sample_rate, embedder.window_s, hop_s)
    return embed_messages(stream, tasks, embedder)


def embed_file_groups(
    tasks: Iterable[DecodeTask], embedder, hop_s: float | None, pool: DecodePool
) -> Iterator[list[Embedded | Failed]]:
    """`embed_files` in the groups they complete in: the files one model forward finished
    (or one failure). `clapsearch index` commits a group in one transaction."""
    tasks = list(tasks)
    stream = pool.stream(tasks, embedder.sample_rate, embedder.window_s, hop_s)
    return embed_message_groups(stream, tasks, embedder)


def embed_messages(
    stream: Iterable[Part | Done | Failed], tasks: list[DecodeTask], embedder
) -> Iterator[Embedded | Failed]:
    """The mapper stage: decode messages (`seq` = position in `tasks`) -> embedded files,
    windows batched across files. Every runner (this machine's pool, torchrun ranks, Ray
    actors) embeds through this function (`embed_message_groups`, flattened)."""
    for group in embed_message_groups(stream, tasks, embedder):
        yield from group


def embed_message_groups(
    stream: Iterable[Part | Done | Failed], tasks: list[DecodeTask], embedder
) -> Iterator[list[Embedded | Failed]]:
    """Decode messages -> lists of the files each step completed: the files whose last
    windows one forward embedded (or whose end arrived after them), or one failure.

    Each part's windows become log-mel features as soon as the part arrives (on the model's
    device, by the Embedder's own `clap_features`), so what waits for a batch is features,
    25-50x smaller than the waveforms; the vectors are what `Embedder.embed_audio` gives for
    each window alone."""
    import torch

    from clapsearch.features import clap_features

    bs = max(1, embedder.audio_batch_size)
    files: dict[int, _Pending] = {}
    feats: list[torch.Tensor] = []  # (1, C, frames, n_mels) per waiting window
    longer: list[torch.Tensor] = []  # (1,) bool per waiting window
    owners: list[int] = []

    def run(n: int) -> None:
        x, lg = torch.cat(feats[:n]), torch.cat(longer[:n])
        with torch.inference_mode():
            vecs = torch.nn.functional.normalize(embedder._audio_forward(x, lg).float(), dim=-1)
        for seq, v in zip(owners[:n], vecs.cpu().numpy(), strict=True):
            if seq in files:
                files[seq].vectors.append(v)
        del feats[:n], longer[:n], owners[:n]

    def complete() -> Iterator[list[Embedded]]:
        group = []
        for seq in [s for s, f in files.items() if f.done and len(f.vectors) == f.done.windows]:
            f = files.pop(seq)
            group.append(Embedded(_record(tasks[seq], f.done), f.spans, np.stack(f.vectors)))
        if group:
            yield group

    for msg in stream:
        if isinstance(msg, Failed):
            files.pop(msg.seq, None)
            keep = [i for i, s in enumerate(owners) if s != msg.seq]
            feats[:] = [feats[i] for i in keep]
            longer[:] = [longer[i] for i in keep]
            owners[:] = [owners[i] for i in keep]
            yield [msg]
            continue
        pending = files.setdefault(msg.seq, _Pending())
        if isinstance(msg, Part):
            pending.spans.extend(msg.spans)
            waves = [torch.from_numpy(w).to(embedder.device) for w in msg.waveforms]
            with torch.inference_mode():
                f, lg = clap_features(waves, embedder.audio_config)
            feats.extend(f.split(1))
            longer.extend(lg.split(1))
            owners.extend([msg.seq] * len(waves))
            del waves, msg
            while len(feats) >= bs:
                run(bs)
        else:
            pending.done = msg
        yield from complete()
    while feats:
        run(min(bs, len(feats)))
    yield from complete()


def _record(task: DecodeTask, done: Done) -> FileRecord:
    f = task.file
    return FileRecord(
        f.path,
        f.size,
        f.mtime_ns,
        done.content_hash,
        done.duration_s,
        done.sample_rate,
        done.channels,
    )


def embed_features(embedder, features: np.ndarray, is_longer: np.ndarray) -> np.ndarray:
    """`(n, C, frames, n_mels)` features -> `(n, dim)` float32 unit vectors, in batches, via
    the backend's forward hook (benchmarks time the model forward alone with it)."""
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


def default_workers() -> int:
    """One decoding worker per core, at most 8. The main process's forward shares the cores:
    with a small model (the built-in one: ~1.6 ms a clip against ~6.5 ms of decoding and
    features) decoding is the bound and needs every core; with a large one on CPU the workers
    wait on the bounded queue most of the time and cost little."""
    return max(1, min(8, os.cpu_count() or 2))


__all__ = [
    "DecodePool",
    "DecodeTask",
    "Done",
    "Embedded",
    "Failed",
    "Part",
    "WorkerDied",
    "default_workers",
    "embed_features",
    "embed_file_groups",
    "embed_files",
    "embed_message_groups",
    "embed_messages",
]
