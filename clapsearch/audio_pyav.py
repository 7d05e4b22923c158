"""PyAV (FFmpeg) decoding for `clapsearch.audio`: the formats libsndfile cannot read (M4A/AAC,
WMA, ...), MPEG audio (libsndfile 1.2 drops samples at read boundaries on some VBR MP3s),
FLAC whose header has no length, and the rest of a stream libsndfile fails on partway.

`clapsearch.audio` imports this module only once it knows `av` is installed, so PyAV stays
optional; which error reason a file gets when PyAV is missing is decided there. Every FFmpeg
or OS error raised here is already an `AudioDecodeError(path, reason)`.
"""

from __future__ import annotations

from collections.abc import Iterator

import av
import numpy as np

from clapsearch.errors import AudioDecodeError
from clapsearch.pcm import BLOCK_FRAMES, mix_to_mono

AV_PREROLL_S = 0.2  # decoded and dropped before a PyAV seek target (codec state warm-up)


class AvSource:
    """A PyAV container reading mono float32 blocks: `read(n)` -> `(<= n,)` float32 at the
    file's own rate, `seek(frame)`, `skip_to(frame)`, `close()`; `pos` is the next frame."""

    def __init__(self, path: str, container, stream):
        self.path, self.container, self.stream = path, container, stream
        cc = stream.codec_context
        self.sample_rate = int(cc.sample_rate)
        self.channels = int(cc.layout.nb_channels if cc.layout else cc.channels)
        tb = stream.time_base
        if stream.duration and tb:
            dur = float(stream.duration * tb)
        else:
            dur = (container.duration or 0) / 1_000_000  # AV_TIME_BASE
        self.frames = int(round(dur * self.sample_rate))  # estimated for VBR/lossy streams
        self.format = container.format.name.split(",")[0]
        self.pos = 0
        self._pending = np.zeros(0, np.float32)
        self._gen: Iterator[tuple[int | None, np.ndarray]] | None = None

    def _decoded(self) -> Iterator[tuple[int | None, np.ndarray]]:
        """(pts, mono float32) per decoded frame; non-float-planar frames go through
        swresample to fltp (same rate and layout) first."""
        resampler = None
        try:
            for frame in self.container.decode(self.stream):
                if frame.format.name == "fltp":
                    yield frame.pts, mix_to_mono(frame.to_ndarray().T)
                    continue
                resampler = resampler or av.AudioResampler(format="fltp")
                pts = frame.pts
                for g in resampler.resample(frame):
                    yield pts, mix_to_mono(g.to_ndarray().T)
                    pts = None
            for g in resampler.resample(None) if resampler else ():
                yield None, mix_to_mono(g.to_ndarray().T)
        except av.FFmpegError as e:
            raise AudioDecodeError(self.path, "truncated", av_msg(e)) from None
        except OSError as e:
            raise AudioDecodeError(self.path, "unreadable", e.strerror or str(e)) from None

    def read(self, n: int = -1) -> np.ndarray:
        if self._gen is None:
            self._gen = self._decoded()
        parts, have = [self._pending], len(self._pending)
        while n < 0 or have < n:
            item = next(self._gen, None)
            if item is None:
                break
            parts.append(item[1])
            have += len(item[1])
        y = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if n >= 0:
            y, self._pending = y[:n], y[n:]
        else:
            self._pending = np.zeros(0, np.float32)
        self.pos += len(y)
        return y

    def skip_to(self, frame: int) -> None:
        """Decode forward from `pos` and drop the samples before `frame` (no container seek:
        what follows is exactly what a whole-file decode gives from `frame` on)."""
        while self.pos < frame and len(self.read(min(BLOCK_FRAMES, frame - self.pos))):
            pass

    def _restart(self) -> None:
        """A fresh decoder from the first packet: what a whole-file decode sees."""
        self.container.close()
        self.container = av.open(self.path, metadata_errors="ignore")
        self.stream = self.container.streams.audio[0]
        self._pending, self._gen, self.pos = np.zeros(0, np.float32), None, 0

    def seek(self, frame: int) -> None:
        """Container seek to `AV_PREROLL_S` before `frame`, decode forward, drop the samples
        before `frame` (located by the first frame's pts). Codecs with state (AAC's overlapped
        MDCT, MP3's bit reservoir) give junk for a frame or two after a seek; the preroll absorbs
        it, and what follows matches a whole-file decode to ~1e-3 (AAC) or exactly (MP3)."""
        st = self.stream
        preroll = int(AV_PREROLL_S * self.sample_rate)
        try:
            if frame - preroll <= 0 or self.frames <= 0:
                self._restart()
                self.skip_to(frame)
                return
            tb, t0 = st.time_base, st.start_time or 0
            self.container.seek(t0 + int((frame - preroll) / self.sample_rate / tb), stream=st)
            self._pending, self._gen, self.pos = np.zeros(0, np.float32), self._decoded(), 0
            pts, first = next(self._gen, (None, None))
            if first is None:
                self.pos = frame
                return
            at = None if pts is None else int(round(float((pts - t0) * tb) * self.sample_rate))
            if at is None or at > frame:  # no timestamps, or an overshoot: decode from the start
                self._restart()
            else:
                self._pending, self.pos = first, at
            self.skip_to(frame)
        except (av.FFmpegError, OSError) as e:
            raise AudioDecodeError(self.path, "truncated", av_msg(e)) from None

    def close(self) -> None:
        self.container.close()


def av_msg(e: Exception) -> str:
    """FFmpeg's own words without the errno and the path the message already names."""
    return str(getattr(e, "strerror", None) or e)


def open_av(path: str, looks_like_audio: bool) -> AvSource:
    """Open the first audio stream of `path`. `looks_like_audio` (the caller's sniff of the
    leading bytes) decides between "truncated"/"unsupported_codec" and "not_audio" when
    FFmpeg cannot open or decode it."""
    try:
        container = av.open(path, metadata_errors="ignore")
    except FileNotFoundError:
        raise AudioDecodeError(path, "missing") from None
    except (PermissionError, IsADirectoryError, NotADirectoryError) as e:
        raise AudioDecodeError(path, "unreadable", e.strerror or str(e)) from None
    except (av.FFmpegError, OSError, ValueError, IndexError) as e:
        if isinstance(e, OSError) and not isinstance(e, av.FFmpegError):
            raise AudioDecodeError(path, "unreadable", e.strerror or str(e)) from None
        reason = "truncated" if looks_like_audio else "not_audio"
        raise AudioDecodeError(path, reason, av_msg(e)) from None
    if not container.streams.audio:
        container.close()
        raise AudioDecodeError(path, "not_audio", "no audio stream")
    stream = container.streams.audio[0]
    cc = stream.codec_context
    if cc is None or not cc.sample_rate:
        container.close()
        if not looks_like_audio:
            raise AudioDecodeError(path, "not_audio")
        raise AudioDecodeError(path, "unsupported_codec", "FFmpeg has no decoder for it")
    return AvSource(path, container, stream)


__all__ = ["AV_PREROLL_S", "AvSource", "av_msg", "open_av"]
