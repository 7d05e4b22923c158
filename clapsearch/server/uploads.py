"""Search-by-example uploads: received with a size limit, decoded in a child process with a
timeout, never stored.

1. The body is streamed into a private temporary file (mode 0600, in a 0700 folder of the
   system temp dir) and refused with 413 as soon as it passes `max_upload_bytes`; the file is
   deleted when the request ends, whatever happens.
2. It is decoded by `clapsearch.audio` (the indexer's decoder, with the same one-sentence
   errors for hostile files) in a process forked from a small forkserver, so a decoder that
   hangs or blows up on crafted bytes is killed after `decode_timeout_s` and takes nothing of
   the server with it. Decoded clips longer than `max_upload_seconds` are refused (header
   check first, so a header that promises hours is refused before decoding).
3. The samples come back over a pipe as float32 at the model's rate; only then does the
   server embed them (under its lock, in `SearchService.search_waveform`).

No URL is ever fetched: a search by example takes bytes, not an address.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import numpy as np

from clapsearch.errors import AudioDecodeError, ClapsearchError
from clapsearch.server.errors import DecodeTimeout, TooLarge

_CTX = None


def _context():
    """A forkserver context preloading the decoder: each decode forks a small, clean process
    (not the server, which holds torch threads and an open database)."""
    global _CTX
    if _CTX is None:
        method = (
            "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        )
        _CTX = multiprocessing.get_context(method)
        if method == "forkserver":
            _CTX.set_forkserver_preload(["clapsearch.audio"])
    return _CTX


@contextmanager
def private_dir() -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix="clapsearch-upload-")  # 0700
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_length(header: str | None, limit: int) -> None:
    """Refuse before reading when the declared Content-Length is over the limit."""
    if header is not None and header.strip().isdigit() and int(header) > limit:
        raise TooLarge(f"The upload is larger than the {limit >> 20} MB limit.")


async def receive(chunks: AsyncIterator[bytes], folder: str, limit: int) -> str:
    """Stream an upload into `folder/upload` (0600); TooLarge past `limit` bytes."""
    path = os.path.join(folder, "upload")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    size = 0
    with os.fdopen(fd, "wb") as fh:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"The upload is larger than the {limit >> 20} MB limit.")
            fh.write(chunk)
    if size == 0:
        raise AudioDecodeError("The upload", "empty")
    return path


def _decode_child(path: str, sample_rate: int, max_seconds: float, conn) -> None:
    try:
        from clapsearch.audio import audio_info, load_audio

        info = audio_info(path)
        if info.duration_s > max_seconds:
            conn.send(("too_long", f"{info.duration_s:.0f}"))
            return
        wave = load_audio(path, sample_rate)
        if len(wave) > max_seconds * sample_rate + sample_rate:
            conn.send(("too_long", f"{len(wave) / sample_rate:.0f}"))
            return
        conn.send(("ok", len(wave)))
        conn.send_bytes(np.ascontiguousarray(wave, np.float32).tobytes())
    except AudioDecodeError as err:
        conn.send(("decode", (err.reason, err.detail)))
    except Exception as err:  # noqa: BLE001 - anything else a hostile file triggers
        conn.send(("decode", ("not_audio", type(err).__name__)))
    finally:
        conn.close()


def decode(path: str, sample_rate: int, max_seconds: float, timeout_s: float) -> np.ndarray:
    """Decode `path` in a child process (module doc) -> `(samples,)` float32 at `sample_rate`.
    Raises AudioDecodeError (hostile or broken bytes), TooLarge or DecodeTimeout."""
    ctx = _context()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_decode_child, args=(path, sample_rate, max_seconds, child))
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout_s):
            raise DecodeTimeout(f"Decoding the upload took longer than {timeout_s:g} s.")
        kind, value = parent.recv()
        if kind == "too_long":
            raise TooLarge(
                f"The upload is {value} s long; clips up to {max_seconds:g} s are searched."
            )
        if kind == "decode":
            reason, detail = value
            raise AudioDecodeError("The upload", reason, detail)
        if not parent.poll(timeout_s):
            raise DecodeTimeout(f"Decoding the upload took longer than {timeout_s:g} s.")
        wave = np.frombuffer(parent.recv_bytes(), dtype=np.float32).copy()
        if len(wave) != value:
            raise ClapsearchError("The upload's decoder stopped early.")
        return wave
    except EOFError:  # the child died (killed by the kernel, a crash in a decoder)
        raise AudioDecodeError("The upload", "not_audio", "the decoder crashed") from None
    finally:
        parent.close()
        if proc.is_alive():
            proc.kill()
        proc.join(5)


__all__ = ["check_length", "decode", "private_dir", "receive"]
