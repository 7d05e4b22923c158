"""Audio decoding: any common file -> mono float32 at the model's rate, whole or window by window.

Decoders: soundfile (libsndfile: WAV/FLAC/OGG Vorbis/Opus/MP3/AIFF/...) first, PyAV (FFmpeg:
M4A/AAC/WMA/...) for whatever soundfile cannot open or fails to decode, when `av` is installed
(`clapsearch.audio_pyav`, imported only then). This module holds the public API, the libsndfile
reader and the mapping of every failure to an `AudioDecodeError` reason.
Channels are mixed to mono as they are read, before resampling (one channel to resample, not N).
Resampling is soxr at quality "HQ" (python-soxr's default: steep 0.91-Nyquist band, negligible
aliasing for 44.1 -> 48 kHz); "VHQ" costs more and changes nothing a CLAP model can hear.

Long files are never loaded whole by the windowed paths:
- `load_audio(..., offset_s, duration_s)` seeks, decodes the window plus a little context, and
  resamples it; the context starts on a source frame that maps to a whole target sample, so
  the result equals the same slice of a whole-file decode to ~1e-6 (float rounding of the
  filter tails; PyAV AAC: ~1e-3, the decoder state after a seek differs slightly).
- `iter_windows` streams the file in blocks through a `soxr.ResampleStream` (whose output equals
  one-shot `soxr.resample` exactly) and cuts windows on the `window_starts` grid, so
  its windows are exactly the slices the Embedder cuts from `load_audio(path, sr)`.
  Memory: about one window plus one block whatever the file's length.

MPEG audio (MP3, ADTS AAC) goes to PyAV first: libsndfile 1.2.2 returns silence for a few
thousand samples after each read call (and after a seek) on some VBR MP3s (a LAME-encoded
sine was enough), which breaks any block-wise read. Without PyAV, libsndfile decodes them and
MP3 seeks decode forward from the start instead of seeking.

Whole-file decodes (`load_audio(path)`, `iter_windows`) agree: a libsndfile read that fails
partway goes on through PyAV from that frame (decoded from the start, so the samples are a
whole-file PyAV decode's), a decode short of the header's exact length is truncated, and a cut
file fails before anything is decoded or yielded (WAV/AIFF chunk sizes, FLAC's last block).

Hostile headers: memory never follows what a header claims. Streamed blocks are bounded in
*target* samples (`_block_frames`: a WAV whose header says 1 Hz would otherwise turn one
64 Ki-frame read into 3 G samples at 48 kHz); a sample rate outside [`MIN_SAMPLE_RATE`,
`MAX_SAMPLE_RATE`] is `not_audio`; a file longer than `max_duration_s()` (24 h, or
`$CLAPSEARCH_MAX_DURATION_S`) is `too_long`, from its header before anything is decoded and
again while decoding when the header has no length or understates it. Non-regular files
(FIFOs, devices, sockets) are refused from `stat` alone, never opened: opening a FIFO blocks.

Every failure is one `AudioDecodeError(path, reason)`; no LibsndfileError, FFmpeg error or
OSError leaks. Reasons: missing, empty (0 bytes, or 0 samples decoded), truncated (header
parses, data cut or corrupt; also a WAV whose data chunk runs past the end of the file, which
libsndfile would silently shorten), not_audio (bytes of no known audio container),
unsupported_codec (a known container, no decoder), unreadable (permission, directory, FIFO or
device, symlink loop, I/O), too_long (over the duration limit).

Measured decode cost, `load_audio(path)` / `load_audio(path, 48000)` of 10 s 44.1 kHz clips,
best of 30 on this 2-core CPU shared with other jobs (noisy): mono FLAC 3.8 / 6.5 ms, mono WAV
0.6 / 3.2 ms, stereo FLAC 7.1 / 9.9 ms, stereo WAV 1.4 / 4.1 ms, stereo MP3 (PyAV) 9.6 /
12.5 ms, stereo OGG Vorbis 14.4 / 17.0 ms, stereo AAC M4A (PyAV) 8.4 / 10.8 ms. The soxr
resample alone is 2.5 ms (HQ; VHQ 2.8 ms). `sf.read` + `mean(1)` + soxr took 15.1 / 9.4 ms
for stereo FLAC / WAV. `audio_info` reads headers only: 0.04 ms WAV, 0.06 ms FLAC, 0.4 ms M4A.
The FLAC tail check (cut files) came later and adds about 0.35 ms per file (open + check 0.49
ms against open alone 0.15 ms, best of 3 over 100 ESC-50 clips; a full decode is 5.7 ms).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from clapsearch.errors import AudioDecodeError
from clapsearch.pcm import BLOCK_FRAMES, mix_to_mono

RESAMPLE_QUALITY = "HQ"
TAIL_FRAMES = 4096  # decoded at the end of a FLAC before streaming it: cut-file check (one block)
CONTEXT_S = 0.05  # resampler context read around a seeked window (HQ filter tails are < 10 ms)

# Sanity limits on what a header may claim (module doc, "Hostile headers").
MIN_SAMPLE_RATE = 1_000  # below this a "sample rate" is a lie or not sound
MAX_SAMPLE_RATE = 768_000  # the highest rate any real converter produces
MAX_DURATION_ENV = "CLAPSEARCH_MAX_DURATION_S"
DEFAULT_MAX_DURATION_S = 24 * 3600.0

# Leading bytes of containers we know are audio (or may carry audio): a file that starts with
# one of these but does not decode is "truncated" (or "unsupported_codec"), anything else is
# "not_audio".
# fmt: off
_MAGIC = (
    (0, b"RIFF"), (0, b"RF64"), (0, b"BW64"), (0, b"riff"), (0, b"fLaC"), (0, b"OggS"),
    (0, b"ID3"), (0, b"FORM"), (0, b"caff"), (4, b"ftyp"), (0, b"\x30\x26\xb2\x75"),
    (0, b"MAC "), (0, b"wvpk"), (0, b".snd"), (0, b"\x1a\x45\xdf\xa3"), (0, b"#!AMR"),
    (0, b"NIST"), (0, b"ADIF"),
)
# fmt: on
_SHOULD_BE = re.compile(rb"^(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.M)
_SF_UNSUPPORTED_ENCODING = 4  # libsndfile public error code SF_ERR_UNSUPPORTED_ENCODING


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header (decoded only when the header has no length)."""

    path: str
    duration_s: float
    sample_rate: int
    channels: int
    frames: int  # per channel; exact from libsndfile, from the container's duration via PyAV
    format: str  # "wav", "flac", "ogg", "mp3", ... or the FFmpeg demuxer name


@dataclass(frozen=True)
class AudioWindow:
    """One window of a file: `waveform` is `(samples,)` mono float32 at the requested rate."""

    start_s: float
    end_s: float
    waveform: np.ndarray


def window_starts(n_samples: int, window: int, hop: int | None = None) -> list[int]:
    """Start samples of the windows that cover a clip: every `hop` (default: `window`) from 0,
    plus one window flush with the end when the grid leaves a tail, so no window is mostly
    padding. A clip no longer than `window` has the single start 0."""
    hop = hop or window
    if n_samples <= window:
        return [0]
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return starts


def _is_mpeg(head: bytes) -> bool:
    """MP3 (ID3 tag or MPEG frame sync) or ADTS AAC."""
    return head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0)


def _looks_like_audio(head: bytes) -> bool:
    return _is_mpeg(head) or any(head[o : o + len(m)] == m for o, m in _MAGIC)


def _file_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, word in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return word
    return "not a regular file"


def check_regular_file(path: str) -> os.stat_result:
    """`stat` (following symlinks) -> the result when `path` is a regular file; else the
    AudioDecodeError its reading would end in, decided without opening it (opening a FIFO
    blocks until a writer comes; a device may never end)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise AudioDecodeError(path, "missing") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise AudioDecodeError(path, "unreadable", "a loop of symbolic links") from None
        raise AudioDecodeError(path, "unreadable", e.strerror or str(e)) from None
    if not stat.S_ISREG(st.st_mode):
        raise AudioDecodeError(path, "unreadable", f"it is {_file_kind(st.st_mode)}")
    return st


def _precheck(path: str) -> bytes:
    """Open the file ourselves so missing/empty/unreadable are told apart from decoder noise.
    Returns its first 64 bytes."""
    st = check_regular_file(path)
    if st.st_size == 0:
        raise AudioDecodeError(path, "empty", "0 bytes")
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError as e:
        raise AudioDecodeError(path, "unreadable", e.strerror or str(e)) from None
    if not head:
        raise AudioDecodeError(path, "empty", "0 bytes")
    return head


def resample(y: np.ndarray, sr: int, target: int) -> np.ndarray:
    """`(samples,)` float32 at `sr` -> float32 at `target`, `round(samples * target / sr)` long."""
    if sr == target or y.size == 0:
        return y
    return soxr.resample(y, sr, target, quality=RESAMPLE_QUALITY)


class _SfSource:
    """A libsndfile handle reading mono float32 blocks. Where a libsndfile read or seek fails
    partway, the stream goes on through PyAV from the same frame (`_fall_over`), so every
    decode path of a file sees the same samples a whole-file read with retry would."""

    def __init__(self, path: str, f: sf.SoundFile):
        self.path, self.f = path, f
        self.sample_rate, self.channels, self.frames = f.samplerate, f.channels, f.frames
        if self.frames >= 1 << 62:  # SF_COUNT_MAX: length unknown (e.g. a streamed FLAC)
            self.frames = -1
        self.format = f.format.lower()
        self.pos = 0
        self._av = None  # the audio_pyav.AvSource the stream fell over to, if any

    def read(self, n: int = -1) -> np.ndarray:
        if self._av is not None:
            y = self._av.read(n)
            self.pos += len(y)
            return y
        if n < 0 and self.frames < 0:  # no length to allocate for: read block by block
            parts = []
            while len(block := self.read(BLOCK_FRAMES)):
                parts.append(block)
            return np.concatenate(parts) if parts else np.zeros(0, np.float32)
        try:
            y = self.f.read(n, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as e:
            self._fall_over(e, self.pos)
            return self.read(n)
        except OSError as e:
            raise AudioDecodeError(self.path, "unreadable", e.strerror or str(e)) from None
        self.pos += len(y)
        return mix_to_mono(y)

    def _fall_over(self, error: Exception, frame: int) -> None:
        """libsndfile failed at `frame`: continue with PyAV, decoding from the start and
        dropping `frame` samples (no container seek, so the samples are exactly a whole-file
        PyAV decode's from there; for FLAC/WAV bit-identical to libsndfile's). Raises the
        libsndfile error as `truncated` when PyAV is missing or cannot get that far."""
        cut = AudioDecodeError(self.path, "truncated", _sf_msg(error))
        pyav = _import_av()
        if pyav is None:
            raise cut from None
        try:
            av_src = pyav.open_av(self.path, looks_like_audio=True)
        except AudioDecodeError:
            raise cut from None
        try:
            av_src.skip_to(frame)
            reached = av_src.pos >= frame  # PyAV's stream may end before libsndfile's failed
        except AudioDecodeError:
            reached = False
        if not reached:
            av_src.close()
            raise cut from None
        self._av, self.pos = av_src, frame

    def seek(self, frame: int) -> None:
        if self._av is not None:
            self._av.seek(frame)
            self.pos = self._av.pos
        elif self.format == "mp3":
            # libsndfile's MP3 seek is unreliable (module doc): decode forward
            if frame < self.pos:
                self._raw_seek(0)
            while self.pos < frame and len(self.read(min(BLOCK_FRAMES, frame - self.pos))):
                pass
        else:
            self._raw_seek(frame)

    def _raw_seek(self, frame: int) -> None:
        frame = frame if self.frames < 0 else min(frame, self.frames)
        try:
            self.pos = self.f.seek(frame)
        except (sf.LibsndfileError, RuntimeError) as e:
            self._fall_over(e, frame)

    def check_tail(self) -> None:
        """Raise `truncated` now if this FLAC's last frames do not decode: a cut file fails
        before its first window, not after (seek + one block of decoding, ~0.5 ms). Only FLAC:
        its header length is exact, and a cut WAV/AIFF is caught from the chunk sizes."""
        if self.format != "flac" or self.frames <= 0:
            return
        k = min(self.frames, TAIL_FRAMES)
        try:
            self.f.seek(self.frames - k)
            got = len(self.f.read(k, dtype="float32"))
            self.f.seek(self.pos)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise AudioDecodeError(
                self.path, "truncated", f"its last frames do not decode: {_sf_msg(e).rstrip('.')}"
            ) from None
        if _cut_short(self.frames, self.frames - k + got):
            raise AudioDecodeError(self.path, "truncated", f"{k - got} frames missing at its end")

    def close(self) -> None:
        self.f.close()
        if self._av is not None:
            self._av.close()


def _cut_short(frames: int, decoded: int) -> bool:
    """A decode that stops this short of the header's length (`frames` > 0, exact from
    libsndfile) is a cut file; a little slack for encoders whose headers round."""
    return frames > 0 and frames - decoded > max(2048, frames // 100)


def _sf_msg(e: Exception) -> str:
    return str(getattr(e, "error_string", "") or e).strip() or type(e).__name__


def _import_av():
    """`clapsearch.audio_pyav` (the PyAV decoder), or None where `av` is not installed."""
    try:
        import av  # noqa: F401
    except ImportError:
        return None
    from clapsearch import audio_pyav

    return audio_pyav


def _open_av(path: str, head: bytes, sf_error: Exception | None):
    """-> an `audio_pyav.AvSource`; without PyAV, the reason libsndfile's failure stands for."""
    pyav = _import_av()
    if pyav is None:
        if _looks_like_audio(head) or (getattr(sf_error, "code", None) == _SF_UNSUPPORTED_ENCODING):
            raise AudioDecodeError(
                path,
                "unsupported_codec",
                "libsndfile cannot decode it and PyAV (`av`) is not installed",
            )
        raise AudioDecodeError(path, "not_audio")
    return pyav.open_av(path, _looks_like_audio(head))


def _check_wav_sizes(path: str, f: sf.SoundFile) -> None:
    """libsndfile silently shortens a WAV/AIFF whose data chunk runs past the end of the file;
    its log says so ("data : 1596888 (should be 798422)"). Streaming writers' placeholder sizes
    (0, 0xFFFFFFFF) are not truncation."""
    try:
        log = f.extra_info.encode("latin-1", "replace")
    except Exception:  # noqa: BLE001 - the log is a nicety, never a reason to fail
        return
    for declared, actual in _SHOULD_BE.findall(log):
        d, a = int(declared), int(actual)
        if a < d < 0xFFFFFFF0:
            raise AudioDecodeError(path, "truncated", f"{d - a} bytes of audio data missing")


def max_duration_s() -> float:
    """The longest file decoded, in seconds: `$CLAPSEARCH_MAX_DURATION_S`, else 24 h."""
    raw = os.environ.get(MAX_DURATION_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_DURATION_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0:
        from clapsearch.errors import UsageError

        raise UsageError(f"${MAX_DURATION_ENV} must be a positive number of seconds, not {raw!r}.")
    return value


def _too_long(path: str, seconds: float, limit: float) -> AudioDecodeError:
    return AudioDecodeError(
        path,
        "too_long",
        f"{seconds / 3600:.1f} h, over the {limit / 3600:.1f} h limit for one file; split it, "
        f"or raise the limit with ${MAX_DURATION_ENV}",
    )


def _frame_limit(src) -> int:
    """Source frames past which `src` is over the duration limit."""
    return int(max_duration_s() * src.sample_rate)


def _block_frames(sr: int, target: int) -> int:
    """Source frames per streamed read, so that neither the read nor its resampled output
    exceeds about `BLOCK_FRAMES` samples (a 1 Hz header upsampled to 48 kHz would otherwise
    make one block 48,000 times larger than what was read)."""
    return max(1, min(BLOCK_FRAMES, BLOCK_FRAMES * sr // max(target, 1)))


def _open(path: str | Path):
    """-> a source (`_SfSource` or `audio_pyav.AvSource`) whose sample rate is plausible;
    raises AudioDecodeError."""
    path = os.fspath(path)
    src = _open_source(path)
    sr = src.sample_rate
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        src.close()
        raise AudioDecodeError(path, "not_audio", f"its header claims a sample rate of {sr} Hz")
    return src


def _open_source(path: str):
    head = _precheck(path)
    av_first = _is_mpeg(head) and _import_av() is not None
    if av_first:
        try:
            return _open_av(path, head, None)
        except AudioDecodeError as e:
            av_error = e
    try:
        f = sf.SoundFile(os.fsencode(path))  # bytes: soundfile cannot encode non-UTF-8 names
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        if av_first:
            raise av_error from None
        return _open_av(path, head, e)
    except OSError as e:
        raise AudioDecodeError(path, "unreadable", e.strerror or str(e)) from None
    if f.frames >= 1 << 62 and _import_av() is not None:
        # no length in the header (a streamed FLAC): libsndfile 1.2.2 fails after the first
        # block ("Internal psf_fseek() failed"), FFmpeg reads it
        f.close()
        return _open_av(path, head, None)
    try:
        _check_wav_sizes(path, f)
    except AudioDecodeError:
        f.close()
        raise
    return _SfSource(path, f)


def _open_stream(path: str):
    """`_open` for the paths that decode a whole file (`load_audio`, `iter_windows`): a FLAC
    cut short, or a file whose header says it is over the duration limit, fails here, before
    anything was decoded or yielded."""
    src = _open(path)
    try:
        if isinstance(src, _SfSource):  # first: a FLAC claiming 200 h is cut, not too long
            src.check_tail()
        limit = max_duration_s()
        if src.frames > 0 and src.frames / src.sample_rate > limit:
            raise _too_long(path, src.frames / src.sample_rate, limit)
    except BaseException:
        src.close()
        raise
    return src


def check_audio(path: str | Path) -> None:
    """Raise the AudioDecodeError that `load_audio` would raise before decoding anything (not
    a regular file, no audio, a lying header, cut short, over the duration limit), without
    decoding: for callers that answer fast before a model is loaded (`query --audio`)."""
    _open_stream(os.fspath(path)).close()


def _source_blocks(src, frames: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks of `frames` source frames until the end of `src`; raises
    `too_long` as soon as the decoded length passes the duration limit (a header without a
    length, or one that understates it)."""
    limit = _frame_limit(src)
    while True:
        y = src.read(frames)
        if src.pos > limit:
            raise _too_long(src.path, src.pos / src.sample_rate, max_duration_s())
        if len(y):
            yield y
        if len(y) < frames:
            return


def _decode_all(path: str) -> tuple[np.ndarray, int]:
    """Whole file -> (mono float32, native rate). A libsndfile failure partway goes on through
    PyAV (`_SfSource._fall_over`); a decode well short of the header's length is truncated.
    Read block by block: what is allocated is what was decoded, never what a header claims."""
    src = _open_stream(path)
    try:
        parts = list(_source_blocks(src, BLOCK_FRAMES))
        y = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        if isinstance(src, _SfSource) and _cut_short(src.frames, len(y)):
            raise AudioDecodeError(path, "truncated", f"{len(y)} of {src.frames} frames decoded")
        sr = src.sample_rate
    finally:
        src.close()
    if y.size == 0:
        raise AudioDecodeError(path, "empty", "no samples")
    return y, sr


def audio_info(path: str | Path) -> AudioInfo:
    """Header facts of `path` without decoding it (raises AudioDecodeError). Only a file whose
    header has no length (a streamed FLAC, say) is decoded, block by block, to count frames."""
    src = _open(path)
    try:
        frames = int(src.frames)
        if frames <= 0:  # the header has no length (streamed FLAC, some containers): count
            frames = sum(len(b) for b in _source_blocks(src, BLOCK_FRAMES))
        return AudioInfo(
            path=os.fspath(path),
            duration_s=frames / src.sample_rate,
            sample_rate=int(src.sample_rate),
            channels=int(src.channels),
            frames=frames,
            format=src.format,
        )
    finally:
        src.close()


def _read_window(src, target: int, offset_s: float, duration_s: float | None) -> np.ndarray:
    """Samples `[a, a + n)` of the file resampled to `target` (a = round(offset_s * target)),
    equal to the same slice of a whole-file decode: the read starts `CONTEXT_S` early on a
    source frame that maps to a whole target sample, so the resampler's grid is the same."""
    sr = src.sample_rate
    a = int(round(offset_s * target))
    n = None if duration_s is None else int(round(duration_s * target))
    if sr == target:
        src.seek(a)
        return src.read(-1 if n is None else n)
    step_in, step_out = sr // gcd(sr, target), target // gcd(sr, target)
    pad = int(CONTEXT_S * sr)
    k = max(0, (a * sr // target - pad) // step_in)  # aligned read start: k * step_in
    s0, t0 = k * step_in, k * step_out
    src.seek(s0)
    if n is None:
        y = src.read()
    else:
        y = src.read(-((-(a + n) * sr) // target) + pad - s0)
    out = resample(y, sr, target)[a - t0 :]
    return out if n is None else out[:n]


def load_audio(
    path: str | Path,
    sample_rate: int | None = None,
    offset_s: float = 0.0,
    duration_s: float | None = None,
) -> np.ndarray:
    """File -> `(samples,)` mono float32, C-contiguous, at `sample_rate` (native when None).

    With `offset_s`/`duration_s` only that span is decoded (seek + read); it may come back
    shorter (or empty) where it runs past the end of the file. Raises AudioDecodeError."""
    path = os.fspath(path)
    if offset_s < 0 or (duration_s is not None and duration_s < 0):
        raise ValueError("offset_s and duration_s must be >= 0")
    if offset_s == 0 and duration_s is None:
        y, sr = _decode_all(path)
        y = resample(y, sr, sample_rate or sr)
    else:
        src = _open(path)
        try:
            if src.frames == 0 and isinstance(src, _SfSource):
                raise AudioDecodeError(path, "empty", "no samples")
            y = _read_window(src, sample_rate or src.sample_rate, offset_s, duration_s)
        finally:
            src.close()
    return np.ascontiguousarray(y, dtype=np.float32)


def _target_blocks(src, target: int) -> Iterator[np.ndarray]:
    """Stream the whole source as mono float32 blocks at `target` (exactly the one-shot
    `soxr.resample` output, cut in pieces)."""
    sr = src.sample_rate
    if sr == target:
        yield from _source_blocks(src, BLOCK_FRAMES)
        return
    stream = soxr.ResampleStream(sr, target, 1, dtype="float32", quality=RESAMPLE_QUALITY)
    for y in _source_blocks(src, _block_frames(sr, target)):
        if len(out := stream.resample_chunk(np.ascontiguousarray(y))):
            yield out
    if len(out := stream.resample_chunk(np.zeros(0, np.float32), last=True)):
        yield out  # the filter's tail


def iter_windows(
    path: str | Path, sample_rate: int, window_s: float, hop_s: float | None = None
) -> Iterator[AudioWindow]:
    """Stream `path` as windows of `window_s` seconds every `hop_s` (default `window_s`) at
    `sample_rate`, on the `window_starts` grid (a last window flush with the end; a
    clip shorter than one window is one shorter window, the model pads it).

    The file is read block by block; memory is one window plus one block whatever its length.

    Same outcome as `load_audio(path, sample_rate)`: the windows are its slices, and where it
    raises AudioDecodeError this raises the same reason, since both read through the same source
    (libsndfile, going on through PyAV from the frame where a libsndfile read fails) and apply
    the same length check. A cut file raises `truncated` before the first window (WAV/AIFF:
    chunk sizes against the file size; FLAC: its last block is decoded first). Only damage that
    neither decoder gets through, inside a file or at the end of one whose end is not checked
    up front (MP3, Ogg, M4A, ...), can raise after some windows were yielded: keep them
    uncommitted until the iterator is exhausted (the indexer lists them first)."""
    win = int(round(window_s * sample_rate))
    hop = int(round(hop_s * sample_rate)) if hop_s else win
    if win <= 0 or hop <= 0:
        raise ValueError("window_s and hop_s must be positive")
    src = _open_stream(path)
    try:
        pieces: list[np.ndarray] = []  # decoded, not yet cut; pieces[0] starts at buf_start
        buf_start = end = 0  # target sample indices of pieces[0][0] and one past the last
        next_start, last_start = 0, None
        for block in _target_blocks(src, sample_rate):
            pieces.append(block)
            end += len(block)
            if next_start + win > end:
                continue
            buf = np.concatenate(pieces)  # one copy per block that completes a window
            while next_start + win <= end:
                i = next_start - buf_start
                yield _window(buf[i : i + win], next_start, sample_rate)
                last_start, next_start = next_start, next_start + hop
            # drop what no later window needs; keep >= one window for the flush window
            keep = max(0, min(next_start - buf_start, len(buf) - win))
            pieces, buf_start = [buf[keep:]], buf_start + keep
        buf = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        total = buf_start + len(buf)
        if isinstance(src, _SfSource) and _cut_short(src.frames, src.pos):
            raise AudioDecodeError(src.path, "truncated", f"{src.pos} of {src.frames} frames")
        if total == 0:
            raise AudioDecodeError(src.path, "empty", "no samples")
        starts = window_starts(total, win, hop)
        for s in starts:
            if last_start is None or s > last_start:
                i = s - buf_start
                yield _window(buf[i : i + win], s, sample_rate)
    finally:
        src.close()


def _window(y: np.ndarray, start: int, sr: int) -> AudioWindow:
    y = np.array(y, dtype=np.float32)  # own copy: the stream buffer is reused
    return AudioWindow(start_s=start / sr, end_s=(start + len(y)) / sr, waveform=y)


__all__ = [
    "AudioInfo",
    "AudioWindow",
    "RESAMPLE_QUALITY",
    "audio_info",
    "iter_windows",
    "load_audio",
    "check_regular_file",
    "max_duration_s",
    "mix_to_mono",
    "resample",
    "window_starts",
]
