"""Serving indexed audio: the file looked up by id, re-checked, streamed with HTTP Range.

Identity re-check (`open_indexed`): the path comes from the index, never from the request,
and is opened once; the open file must be a regular file with the size and modification time
the index recorded. A file replaced since it was indexed, a path swapped for a symlink to
elsewhere (another file: another size and time), a directory or a FIFO is refused with 409,
and everything after the check reads through the same open descriptor, so the path cannot be
swapped between the check and the read.

Formats: what Chromium/Firefox play natively is streamed as is, with the content type sniffed
from the bytes (not the extension). Everything else (AIFF, CAF, W64, AU, WAV with ADPCM/u-law
and other codecs, WMA, ...) is transcoded on the fly to 16-bit PCM WAV at its own rate:
libsndfile formats keep their channels, the rest (FFmpeg-only) are mixed to mono through
`clapsearch.audio`. A transcoded stream still supports Range: its byte offsets map to frames.

Ranges: one `bytes=a-b`, `bytes=a-` or `bytes=-n` gets 206 with Content-Range; several
ranges or a malformed header get the whole file (200), as RFC 9110 allows; a range past the
end gets 416.
"""

from __future__ import annotations

import os
import re
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import numpy as np

from clapsearch.index.schema import IndexedFile
from clapsearch.server.errors import FileChanged, NotFound, TooLarge

CHUNK = 1 << 16
WAV_HEADER = 44
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# libsndfile subtypes browsers play inside WAV
_PLAYABLE_WAV = {"PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT"}


class RangeNotSatisfiable(Exception):
    def __init__(self, size: int):
        self.size = size


@dataclass
class OpenedAudio:
    """An indexed file opened and checked; `fd_path` reads through the same descriptor."""

    info: IndexedFile
    fd: int
    size: int

    @property
    def fd_path(self) -> str:
        for folder in ("/proc/self/fd", "/dev/fd"):
            if os.path.isdir(folder):
                return f"{folder}/{self.fd}"
        return self.info.record.path  # no fd file system: the checked path itself

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def head(self, n: int = 64) -> bytes:
        return os.pread(self.fd, n, 0)


def open_indexed(info: IndexedFile) -> OpenedAudio:
    """Open an indexed file and check it is still the one the index recorded (module doc)."""
    path = info.record.path
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise NotFound(
            f"File {info.id} is no longer on disk; run `clapsearch index` again."
        ) from None
    except OSError as err:
        raise FileChanged(f"File {info.id} cannot be opened ({err.strerror}).") from None
    st = os.fstat(fd)
    if (
        not stat.S_ISREG(st.st_mode)
        or st.st_size != info.record.size
        or st.st_mtime_ns != info.record.mtime_ns
    ):
        os.close(fd)
        raise FileChanged(
            f"File {info.id} is not the file that was indexed any more (changed, replaced or "
            f"swapped for a link); run `clapsearch index` again."
        )
    return OpenedAudio(info, fd, st.st_size)


# --- content types ---------------------------------------------------------------------------
def native_type(audio: OpenedAudio) -> str | None:
    """The MIME type to stream the file as is, or None when it must be transcoded."""
    head = audio.head()
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "audio/wav" if _sf_subtype(audio) in _PLAYABLE_WAV else None
    if head[:4] == b"fLaC":
        return "audio/flac"
    if head[:4] == b"OggS":
        return "audio/ogg"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        layer = (head[1] >> 1) & 3 if head[:3] != b"ID3" else 1
        return "audio/mpeg" if layer else "audio/aac"  # ADTS AAC has layer bits 00
    if head[4:8] == b"ftyp":
        return "audio/mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "audio/webm"
    return None


def _sf_subtype(audio: OpenedAudio) -> str | None:
    import soundfile as sf

    try:
        with sf.SoundFile(audio.fd_path) as f:
            return f.subtype
    except Exception:  # noqa: BLE001 - libsndfile cannot read it: transcode through FFmpeg
        return None


# --- ranges ----------------------------------------------------------------------------------
def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """`Range` header -> inclusive (first, last) byte, or None for the whole body."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        return None  # several ranges, another unit or garbage: the whole body
    if m.group(1):
        first = int(m.group(1))
        last = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
        if m.group(2) and int(m.group(2)) < first:
            return None
    else:
        n = int(m.group(2))
        if n == 0:
            raise RangeNotSatisfiable(size)
        first, last = max(0, size - n), size - 1
    if first >= size:
        raise RangeNotSatisfiable(size)
    return first, last


def read_bytes(fd: int, first: int, last: int) -> Iterator[bytes]:
    pos = first
    while pos <= last:
        data = os.pread(fd, min(CHUNK, last - pos + 1), pos)
        if not data:
            return
        pos += len(data)
        yield data


def content_disposition(name: str, download: bool) -> str:
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    kind = "attachment" if download else "inline"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


# --- transcoding -----------------------------------------------------------------------------
class PcmSource:
    """Frames of a file as float32 `(n, channels)`: libsndfile with all channels, else the
    FFmpeg path of `clapsearch.audio` mixed to mono."""

    def __init__(self, audio: OpenedAudio):
        import soundfile as sf

        self.audio = audio
        self._sf = None
        try:
            self._sf = sf.SoundFile(audio.fd_path)
            if self._sf.frames >= 1 << 62:
                raise RuntimeError("no length in the header")
            self.frames, self.rate = int(self._sf.frames), int(self._sf.samplerate)
            self.channels = int(self._sf.channels)
        except Exception:  # noqa: BLE001 - not a libsndfile format: FFmpeg, mono
            if self._sf is not None:
                self._sf.close()
            self._sf = None
            from clapsearch.audio import audio_info

            meta = audio_info(audio.fd_path)
            self.frames, self.rate, self.channels = meta.frames, meta.sample_rate, 1

    def read(self, first: int, n: int) -> np.ndarray:
        n = max(0, min(n, self.frames - first))
        if n == 0:
            return np.zeros((0, self.channels), np.float32)
        if self._sf is not None:
            self._sf.seek(first)
            y = self._sf.read(n, dtype="float32", always_2d=True)
        else:
            from clapsearch.audio import load_audio

            y = load_audio(self.audio.fd_path, None, first / self.rate, n / self.rate)[:, None]
        if len(y) < n:  # a decoder that stops short: pad, the header promised n frames
            y = np.concatenate([y, np.zeros((n - len(y), self.channels), np.float32)])
        return y

    def close(self) -> None:
        if self._sf is not None:
            self._sf.close()


def wav_header(frames: int, rate: int, channels: int) -> bytes:
    data = frames * channels * 2
    riff = min(0xFFFFFFFF, 36 + data)
    return (
        b"RIFF"
        + struct.pack("<I", riff)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16)
        + b"data"
        + struct.pack("<I", min(0xFFFFFFFF, data))
    )


def to_pcm16(y: np.ndarray) -> bytes:
    return (np.clip(y, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


@dataclass
class WavStream:
    """A PCM16 WAV of frames [start, start + frames) of a source, addressable by byte."""

    source: PcmSource
    start: int
    frames: int

    @property
    def size(self) -> int:
        return WAV_HEADER + self.frames * self.source.channels * 2

    def iter_bytes(self, first: int, last: int) -> Iterator[bytes]:
        header = wav_header(self.frames, self.source.rate, self.source.channels)
        if first < WAV_HEADER:
            yield header[first : min(last + 1, WAV_HEADER)]
        if last < WAV_HEADER:
            return
        width = self.source.channels * 2
        lo = max(first, WAV_HEADER) - WAV_HEADER  # data byte offsets
        hi = last - WAV_HEADER
        frame = lo // width
        skip = lo - frame * width
        while frame * width <= hi:
            n = min(CHUNK // width + 1, self.frames - frame)
            if n <= 0:
                return
            block = to_pcm16(self.source.read(self.start + frame, n))
            end = min(len(block), hi - frame * width + 1)
            yield block[skip:end]
            skip = 0
            frame += n


def segment_stream(audio: OpenedAudio, start: float, end: float, max_s: float) -> WavStream:
    duration = audio.info.record.duration_s
    if not (0 <= start < end) or start >= duration + 1e-6:
        raise_usage(f"The segment must satisfy 0 <= start < end <= {duration:.3f} s.")
    if end - start > max_s:
        raise TooLarge(f"A segment is at most {max_s:g} seconds long.")
    source = PcmSource(audio)
    first = int(start * source.rate)
    last = min(source.frames, int(round(min(end, duration) * source.rate)))
    return WavStream(source, first, max(0, last - first))


def raise_usage(message: str) -> None:
    from clapsearch.errors import UsageError

    raise UsageError(message)


__all__ = [
    "OpenedAudio",
    "PcmSource",
    "RangeNotSatisfiable",
    "WavStream",
    "content_disposition",
    "native_type",
    "open_indexed",
    "parse_range",
    "read_bytes",
    "segment_stream",
]


# --- responses -------------------------------------------------------------------------------
def audio_response(audio: OpenedAudio, range_header: str | None, download: bool):
    """The file as is when a browser plays it, else transcoded (module doc), honouring Range;
    the descriptor is closed when the body is sent (or the client goes away)."""
    ctype = native_type(audio)
    name = os.path.basename(audio.info.record.path)
    if ctype is None:
        source = PcmSource(audio)
        stream = WavStream(source, 0, source.frames)
        return _respond(
            audio,
            stream.size,
            stream.iter_bytes,
            "audio/wav",
            name + ".wav",
            range_header,
            download,
            stream.source.close,
        )
    return _respond(
        audio,
        audio.size,
        lambda a, b: read_bytes(audio.fd, a, b),
        ctype,
        name,
        range_header,
        download,
        None,
    )


def wav_response(audio: OpenedAudio, stream: WavStream, name: str, range_header: str | None):
    return _respond(
        audio,
        stream.size,
        stream.iter_bytes,
        "audio/wav",
        name,
        range_header,
        False,
        stream.source.close,
    )


def _respond(audio, size, body, ctype, name, range_header, download, cleanup):
    from starlette.background import BackgroundTask
    from starlette.responses import Response, StreamingResponse

    def close() -> None:
        if cleanup is not None:
            cleanup()
        audio.close()

    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition(name, download),
        "Cache-Control": "no-cache",
        "ETag": f'"{audio.info.record.size:x}-{audio.info.record.mtime_ns:x}"',
    }
    try:
        span = parse_range(range_header, size)
    except RangeNotSatisfiable:
        close()
        headers["Content-Range"] = f"bytes */{size}"
        return Response(status_code=416, headers=headers)
    first, last = span if span is not None else (0, size - 1)
    headers["Content-Length"] = str(max(0, last - first + 1))
    if span is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return StreamingResponse(
        body(first, last) if size else iter(()),
        status_code=206 if span is not None else 200,
        media_type=ctype,
        headers=headers,
        background=BackgroundTask(close),
    )
