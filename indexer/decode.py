"""The reader stage: one file -> its windows, streamed in bounded parts (no torch here).

`decode_parts` is a plain generator, so the same code runs inline (`--workers 0`), in the
decode worker processes (`python -m indexer.decode FD`, started by
`indexer.pipeline.DecodePool`) or in any other runner. This module imports numpy, soundfile and soxr only (through `clapsearch.audio`):
a decode worker costs ~30 MB of memory, against ~230 MB once torch is imported, which is why
the log-mel front end runs in the main process with the model (`indexer.pipeline`).

Memory: a file is cut into `Part`s of at most `part_samples` samples (one window when a window
is longer), each handed on as soon as it is full; with `clapsearch.audio.iter_windows` reading
one block at a time, a worker holds about one part whatever the file's length or its header's
claims. Messages, in order, for the file at position `seq` of a run:
`Part`* then `Done`, or `Part`* then `Failed` (windows already sent must then be dropped).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

PART_SAMPLES = 1 << 19  # samples per part: 512 Ki (2 MB of float32, 10.9 s at 48 kHz)
READY = "ready"  # a worker's first message: its imports are done


@dataclass(frozen=True)
class DecodeJob:
    """What a worker needs to decode one file (plain fields: unpickling it imports nothing)."""

    seq: int
    path: str
    size: int
    mtime_ns: int
    content_hash: str | None  # known when the planner already hashed it
    sample_rate: int
    window_s: float
    hop_s: float | None
    part_samples: int = PART_SAMPLES


@dataclass
class Part:
    """Consecutive windows of file `seq`: `waveforms[i]` `(samples,)` float32 spans `spans[i]`."""

    seq: int
    spans: list[tuple[float, float]]
    waveforms: list[np.ndarray]

    @property
    def samples(self) -> int:
        return sum(len(w) for w in self.waveforms)


@dataclass
class Done:
    """File `seq` decoded whole: `windows` windows were sent in its parts."""

    seq: int
    windows: int
    content_hash: str
    duration_s: float
    sample_rate: int
    channels: int


@dataclass
class Failed:
    """File `path` could not be indexed (`reason`: `AudioDecodeError.REASONS` or
    `permission_denied`); `seq` is -1 outside a decode stream."""

    path: str
    size: int
    mtime_ns: int
    reason: str
    detail: str
    seq: int = -1


def decode_parts(job: DecodeJob) -> Iterator[Part | Done | Failed]:
    """Decode one file into `Part`s then `Done`, or end with `Failed`. Never raises an error
    of the file's making (a decoder bug must not end a run over 100k files)."""
    from clapsearch.audio import audio_info, iter_windows
    from clapsearch.errors import AudioDecodeError
    from clapsearch.hashing import content_hash

    def failed(reason: str, detail: str) -> Failed:
        return Failed(job.path, job.size, job.mtime_ns, reason, detail, job.seq)

    try:
        info = audio_info(job.path)
        spans: list[tuple[float, float]] = []
        waves: list[np.ndarray] = []
        count, samples, end_s = 0, 0, 0.0
        for w in iter_windows(job.path, job.sample_rate, job.window_s, job.hop_s):
            spans.append((float(w.start_s), float(w.end_s)))
            waves.append(w.waveform)
            samples += len(w.waveform)
            count, end_s = count + 1, float(w.end_s)
            if samples >= job.part_samples:
                yield Part(job.seq, spans, waves)
                spans, waves, samples = [], [], 0
        if spans:
            yield Part(job.seq, spans, waves)
        if not count:
            yield failed("empty", "no samples")
            return
        digest = job.content_hash or content_hash(job.path, job.size)
    except AudioDecodeError as e:
        yield failed(e.reason, e.detail)
        return
    except PermissionError as e:
        yield failed("permission_denied", e.strerror or str(e))
        return
    except Exception as e:  # noqa: BLE001 - recorded as the file's failure, the run goes on
        yield failed("unreadable", f"{type(e).__name__}: {e}")
        return
    duration = max(info.duration_s, end_s)
    yield Done(job.seq, count, digest, float(duration), info.sample_rate, info.channels)


def worker_main(conn) -> None:
    """A decode worker: jobs in, messages out, on one connection, until `None` or EOF.

    Started in its own session (`DecodePool`), so a terminal's Ctrl-C never reaches it: the
    main process handles the interrupt and ends its workers. A main process that dies (even
    by SIGKILL) closes its end: the next receive or send here fails and the worker leaves
    quietly. A `send` blocks while the main process has not read the previous message: that
    back-pressure is what bounds the memory of a worker that is ahead."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import clapsearch.audio  # noqa: F401 - imported before READY, so that READY means warm

    try:
        conn.send(READY)
        while True:
            job = conn.recv()
            if job is None:
                return
            for message in decode_parts(job):
                send_message(conn, message)
    except (EOFError, OSError):  # the main process is gone, or closed us
        return


def send_message(conn, message: Part | Done | Failed) -> None:
    """A part goes as a small pickled header and then each window's raw float32 bytes (no
    pickled copy of the waveforms on either side); anything else is pickled."""
    if not isinstance(message, Part):
        conn.send(message)
        return
    conn.send(("part", message.seq, message.spans, [len(w) for w in message.waveforms]))
    for w in message.waveforms:
        conn.send_bytes(np.ascontiguousarray(w, dtype=np.float32))


def receive_message(conn):
    """The other end of `send_message`: a `Part`, `Done`, `Failed` (or `READY`)."""
    message = conn.recv()
    if not (isinstance(message, tuple) and message[:1] == ("part",)):
        return message
    _, seq, spans, lengths = message
    waves = []
    for n in lengths:
        w = np.empty(n, dtype=np.float32)
        if conn.recv_bytes_into(w) != w.nbytes:
            raise EOFError("a part's window was cut short")
        waves.append(w)
    return Part(seq, spans, waves)


def main(argv: list[str] | None = None) -> None:
    """`python -m indexer.decode FD`: a worker on the connected socket `FD`."""
    import sys
    from multiprocessing.connection import Connection

    args = sys.argv[1:] if argv is None else argv
    worker_main(Connection(int(args[0])))


if __name__ == "__main__":  # run from the real module, so messages pickle as indexer.decode.*
    from indexer.decode import main as _main

    _main()


__all__ = [
    "PART_SAMPLES",
    "READY",
    "DecodeJob",
    "Done",
    "Failed",
    "Part",
    "decode_parts",
    "main",
    "receive_message",
    "send_message",
    "worker_main",
]
