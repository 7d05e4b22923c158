"""clapsearch.audio: real clips, odd-but-valid files, every AudioDecodeError reason, windows."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile as sf
from conftest import clotho_files, esc50_files

from clapsearch import audio
from clapsearch.audio import AudioInfo, audio_info, iter_windows, load_audio
from clapsearch.errors import AudioDecodeError
from clapsearch.features import window_starts


def _sine(sr: int, seconds: float, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _reason(path) -> str:
    with pytest.raises(AudioDecodeError) as load_err:
        load_audio(path, 48_000)
    with pytest.raises(AudioDecodeError) as info_err:
        audio_info(path)
    assert str(path) in str(load_err.value)  # the message names the file
    assert str(load_err.value).endswith(".")
    return load_err.value.reason if load_err.value.reason == info_err.value.reason else "differ"


def _write_m4a(path, y: np.ndarray, sr: int) -> None:
    """`(channels, samples)` float32 -> AAC in an MP4 container, with PyAV's encoder."""
    av = pytest.importorskip("av")
    try:
        av.codec.Codec("aac", "w")
    except Exception:  # noqa: BLE001
        pytest.skip("this FFmpeg build has no AAC encoder")
    layout = "mono" if y.shape[0] == 1 else "stereo"
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=sr, layout=layout)
        for i in range(0, y.shape[1], 1024):
            f = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(y[:, i : i + 1024]), format="fltp", layout=layout
            )
            f.sample_rate, f.pts = sr, i
            for packet in s.encode(f):
                c.mux(packet)
        for packet in s.encode(None):
            c.mux(packet)


# --- real clips ---------------------------------------------------------------------------


def test_esc50_flac_resampled_to_48k():
    path = esc50_files(1)[0]
    info = audio_info(path)
    assert (info.sample_rate, info.channels, info.frames, info.format) == (44100, 1, 220500, "flac")
    assert info.duration_s == pytest.approx(5.0)
    native = load_audio(path)
    y = load_audio(path, 48_000)
    assert native.shape == (220500,) and y.shape == (240000,)
    assert y.dtype == np.float32 and y.flags.c_contiguous
    ref, _ = sf.read(path, dtype="float32")
    np.testing.assert_array_equal(native, ref)
    # resampling keeps the signal: same RMS within 1%
    assert np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(ref**2)), rel=0.01)


def test_clotho_wav_windows_match_window_starts_and_full_decode():
    path = clotho_files()[0]
    sr, win_s, hop_s = 48_000, 10.0, 4.0
    full = load_audio(path, sr)
    windows = list(iter_windows(path, sr, win_s, hop_s))
    win, hop = int(win_s * sr), int(hop_s * sr)
    starts = window_starts(len(full), win, hop)
    assert [round(w.start_s * sr) for w in windows] == starts
    assert windows[-1].end_s == pytest.approx(len(full) / sr)  # last window flush with the end
    for w, s in zip(windows, starts, strict=True):
        assert w.waveform.dtype == np.float32 and len(w.waveform) == win
        np.testing.assert_array_equal(w.waveform, full[s : s + win])  # streaming == one shot


@pytest.mark.parametrize("sr", [48_000, None])
def test_windowed_read_equals_slice_of_full_read(sr):
    path = clotho_files()[0]
    full = load_audio(path, sr)
    rate = sr or audio_info(path).sample_rate
    for offset, dur in [(0.0, 1.0), (0.37, 0.5), (7.123, 2.0), (3.0, None)]:
        part = load_audio(path, sr, offset_s=offset, duration_s=dur)
        a = round(offset * rate)
        expect = len(full) - a if dur is None else round(dur * rate)
        assert len(part) == expect
        ref = full[a : a + len(part)]
        m = len(part) // 10  # compare middles: the resampler's edges may differ by rounding
        np.testing.assert_allclose(part[m:-m], ref[m:-m], atol=1e-5)
        np.testing.assert_allclose(part, ref, atol=1e-4)
    assert load_audio(path, sr, offset_s=1e4, duration_s=1.0).size == 0  # past the end


def test_windowed_read_does_not_decode_whole_file(monkeypatch):
    """A window of a long file reads about the window, not the file."""
    path = clotho_files()[0]
    read_sizes = []
    orig = audio._SfSource.read

    def spy(self, n=-1):
        read_sizes.append(n)
        return orig(self, n)

    monkeypatch.setattr(audio._SfSource, "read", spy)
    load_audio(path, 48_000, offset_s=10.0, duration_s=1.0)
    assert read_sizes and all(0 < n < 1.2 * 44100 for n in read_sizes)


def test_iter_windows_streams_in_blocks(monkeypatch):
    """iter_windows never asks the decoder for more than one block at a time."""
    path = clotho_files()[0]
    read_sizes = []
    orig = audio._SfSource.read

    def spy(self, n=-1):
        read_sizes.append(n)
        return orig(self, n)

    monkeypatch.setattr(audio._SfSource, "read", spy)
    assert len(list(iter_windows(path, 48_000, 1.0, 0.5))) > 20
    assert len(read_sizes) > 5 and all(0 < n <= audio.BLOCK_FRAMES for n in read_sizes)


# --- odd but valid ------------------------------------------------------------------------


@pytest.mark.parametrize("sr", [8000, 11025, 16000, 22050, 44100, 48000, 96000, 192000])
def test_sample_rates(tmp_path, sr):
    path = tmp_path / f"x{sr}.wav"
    sf.write(path, _sine(sr, 0.5), sr, subtype="FLOAT")
    info = audio_info(path)
    assert info.sample_rate == sr and info.duration_s == pytest.approx(0.5, abs=1e-3)
    y = load_audio(path, 48_000)
    assert len(y) == round(len(_sine(sr, 0.5)) * 48_000 / sr)
    assert np.abs(y[2000:-2000]).max() == pytest.approx(0.5, abs=0.02)  # the tone survives


def test_eight_channels_downmix(tmp_path):
    sr = 16000
    x = np.zeros((sr, 8), np.float32)
    x[:, 5] = _sine(sr, 1.0, amp=0.8)
    path = tmp_path / "eight.flac"
    sf.write(path, x, sr, subtype="PCM_24")
    assert audio_info(path).channels == 8
    y = load_audio(path)
    np.testing.assert_allclose(y, x[:, 5] / 8, atol=1e-5)
    assert len(load_audio(path, 48_000)) == 3 * sr


@pytest.mark.parametrize("channels", [1, 2, 3, 6])
def test_channel_counts(tmp_path, channels):
    sr = 22050
    x = np.stack([_sine(sr, 0.3, 200.0 * (c + 1), 0.1) for c in range(channels)], 1)
    path = tmp_path / f"c{channels}.wav"
    sf.write(path, x, sr, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), x.mean(1), atol=1e-6)


def test_stereo_mix_is_mean_of_channels(tmp_path):
    sr = 44100
    x = np.stack([_sine(sr, 1.0, 300), _sine(sr, 1.0, 500, 0.25)], 1)
    path = tmp_path / "st.wav"
    sf.write(path, x, sr, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), x.mean(1), atol=1e-7)


def test_50ms_clip_and_one_short_window(tmp_path):
    path = tmp_path / "blip.wav"
    sf.write(path, _sine(44100, 0.05), 44100)
    y = load_audio(path, 48_000)
    assert len(y) == 2400
    windows = list(iter_windows(path, 48_000, 10.0))
    assert len(windows) == 1 and windows[0].start_s == 0.0
    np.testing.assert_array_equal(windows[0].waveform, y)
    assert windows[0].end_s == pytest.approx(0.05)


def test_flac_without_length_in_header(tmp_path):
    """Streamed FLAC (STREAMINFO total_samples = 0): libsndfile cannot read it past one block."""
    pytest.importorskip("av")
    src = esc50_files(1)[0]
    data = bytearray(src.read_bytes())
    assert data[:4] == b"fLaC"
    si = 8  # STREAMINFO body; total_samples is its 36 bits from byte 13 (low nibble) to 17
    data[si + 13] &= 0xF0
    data[si + 14 : si + 18] = b"\0\0\0\0"
    path = tmp_path / "streamed.flac"
    path.write_bytes(bytes(data))
    assert audio_info(path).frames == 220500  # counted
    full = load_audio(src, 48_000)
    np.testing.assert_array_equal(load_audio(path, 48_000), full)
    np.testing.assert_allclose(load_audio(path, 48_000, 1.0, 1.0), full[48000:96000], atol=1e-5)
    assert len(list(iter_windows(path, 48_000, 1.0))) == 5


def test_non_ascii_file_name(tmp_path):
    path = tmp_path / "Ünïcødé 音声 ファイル.flac"
    sf.write(path, _sine(16000, 0.2), 16000)
    assert len(load_audio(path)) == 3200
    assert audio_info(path).path == str(path)


@pytest.mark.parametrize(
    "fmt,subtype,ext",
    [("MP3", "MPEG_LAYER_III", "mp3"), ("OGG", "VORBIS", "ogg"), ("OGG", "OPUS", "opus")],
)
def test_compressed_formats(tmp_path, fmt, subtype, ext):
    if fmt not in sf.available_formats() or subtype not in sf.available_subtypes(fmt):
        pytest.skip(f"libsndfile cannot write {fmt}/{subtype}")
    sr = 48000
    x = _sine(sr, 2.0)
    path = tmp_path / f"t.{ext}"
    sf.write(path, x, sr, format=fmt, subtype=subtype)
    info = audio_info(path)
    assert info.sample_rate == sr and info.duration_s == pytest.approx(2.0, abs=0.06)
    y = load_audio(path, 48_000)
    assert abs(len(y) - len(x)) < 0.06 * sr
    # lossy but the tone is there: correlation with the original after alignment-free RMS check
    assert np.sqrt(np.mean(y[4800:-4800] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)
    # windows stream without dropouts (libsndfile's MP3 reader loses audio at read boundaries)
    for w in iter_windows(path, sr, 0.5):
        s = round(w.start_s * sr)
        np.testing.assert_allclose(w.waveform, y[s : s + len(w.waveform)], atol=1e-4)
    part = load_audio(path, sr, offset_s=1.0, duration_s=0.5)
    np.testing.assert_allclose(part, y[sr : sr + sr // 2], atol=1e-4)


def test_m4a_through_pyav(tmp_path):
    sr = 44100
    x = np.stack([_sine(sr, 3.0, 440), _sine(sr, 3.0, 440)])
    path = tmp_path / "t.m4a"
    _write_m4a(path, x, sr)
    info = audio_info(path)
    assert (info.sample_rate, info.channels) == (sr, 2)
    assert info.duration_s == pytest.approx(3.0, abs=0.05)
    y = load_audio(path, 48_000)
    assert abs(len(y) - 144_000) < 0.05 * 48_000
    assert np.sqrt(np.mean(y[4800:-4800] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)
    full = load_audio(path)
    part = load_audio(path, offset_s=1.5, duration_s=0.5)  # PyAV seek + preroll
    a = round(1.5 * sr)
    np.testing.assert_allclose(part, full[a : a + len(part)], atol=5e-3)
    starts = [round(w.start_s * sr) for w in iter_windows(path, sr, 1.0)]
    assert starts == window_starts(len(full), sr)


def test_m4a_without_pyav_is_unsupported_codec(tmp_path, monkeypatch):
    path = tmp_path / "t.m4a"
    _write_m4a(path, _sine(16000, 0.5)[None], 16000)
    monkeypatch.setattr(audio, "_import_av", lambda: None)
    assert _reason(path) == "unsupported_codec"


# --- every failure reason -----------------------------------------------------------------


def test_missing(tmp_path):
    assert _reason(tmp_path / "nope.wav") == "missing"


def test_empty_file(tmp_path):
    path = tmp_path / "empty.flac"
    path.write_bytes(b"")
    assert _reason(path) == "empty"


def test_zero_samples_is_empty(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros((0, 1), np.float32), 16000)
    assert audio_info(path).frames == 0  # the header is fine
    for call in (
        lambda: load_audio(path),
        lambda: load_audio(path, 48_000, 0.5, 1.0),
        lambda: list(iter_windows(path, 48_000, 1.0)),
    ):
        with pytest.raises(AudioDecodeError) as err:
            call()
        assert err.value.reason == "empty"


@pytest.mark.parametrize("which", ["flac", "wav"])
def test_truncated_to_half(tmp_path, which):
    src = esc50_files(1)[0] if which == "flac" else clotho_files()[0]
    data = src.read_bytes()
    path = tmp_path / f"half.{which}"
    path.write_bytes(data[: len(data) // 2])
    if which == "wav":  # the data chunk's size in the header says more than the file holds
        assert _reason(path) == "truncated"
    else:  # FLAC's header (STREAMINFO) is intact: the info is right, decoding fails
        assert audio_info(path).frames == audio_info(src).frames
    for call in (lambda: load_audio(path, 48_000), lambda: list(iter_windows(path, 48_000, 1.0))):
        with pytest.raises(AudioDecodeError) as err:
            call()
        assert err.value.reason == "truncated"


@pytest.mark.parametrize(
    "which,keep", [("flac", 0.5), ("flac", 0.999), ("flac", -5), ("wav", 0.5), ("wav", -3)]
)
def test_cut_file_fails_before_the_first_window(tmp_path, which, keep):
    """A cut file is `truncated` for load_audio and iter_windows alike, and iter_windows says
    so before yielding any window (FLAC: its last block is decoded first; WAV: chunk sizes).
    At 0.999 PyAV decodes 84% of the FLAC without an error: that must not pass as the file."""
    src = esc50_files(1)[0] if which == "flac" else clotho_files()[0]
    data = src.read_bytes()
    path = tmp_path / f"cut.{which}"
    path.write_bytes(data[: int(len(data) * keep) if keep > 0 else len(data) + keep])
    windows = iter_windows(path, 48_000, 1.0)
    with pytest.raises(AudioDecodeError) as err:
        next(windows)
    assert err.value.reason == "truncated"
    with pytest.raises(AudioDecodeError) as err:
        load_audio(path, 48_000)
    assert err.value.reason == "truncated"


def _fail_reads_over(monkeypatch, frame: int) -> list[int]:
    """Make libsndfile fail every read that covers `frame` (a damaged spot inside the file);
    returns the list of read starts that failed."""
    real_read = sf.SoundFile.read
    failed = []

    def read(self, frames=-1, *args, **kwargs):
        start = self.tell()
        stop = self.frames if frames < 0 else start + frames
        if start <= frame < stop:
            failed.append(start)
            raise RuntimeError("simulated libsndfile decode error")
        return real_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", read)
    return failed


def test_libsndfile_failure_partway_goes_on_through_pyav(monkeypatch):
    """load_audio and iter_windows both continue through PyAV from the frame libsndfile failed
    at, and give the same samples (FLAC decodes bit-identically in both)."""
    pytest.importorskip("av")
    path = esc50_files(1)[0]
    ref = load_audio(path)
    ref48 = load_audio(path, 48_000)
    failed = _fail_reads_over(monkeypatch, 100_000)
    np.testing.assert_array_equal(load_audio(path), ref)  # whole read: its second block fails
    windows = list(iter_windows(path, 48_000, 1.0, 0.5))  # second block fails
    # both fell over where expected: blocks are BLOCK_FRAMES source frames when read at the
    # native rate, fewer when upsampled (44.1 -> 48 kHz), so the output block stays bounded
    assert sorted(set(failed)) == [audio._block_frames(44_100, 48_000), audio.BLOCK_FRAMES]
    starts = window_starts(len(ref48), 48_000, 24_000)
    assert [round(w.start_s * 48_000) for w in windows] == starts
    for w, s in zip(windows, starts, strict=True):
        np.testing.assert_array_equal(w.waveform, ref48[s : s + 48_000])
    part = load_audio(path, 48_000, offset_s=2.0, duration_s=0.5)  # seeked read falls over too
    np.testing.assert_allclose(part, ref48[96_000:120_000], atol=1e-5)


def test_libsndfile_failure_partway_without_pyav_is_truncated(monkeypatch):
    path = esc50_files(1)[0]
    _fail_reads_over(monkeypatch, 100_000)
    monkeypatch.setattr(audio, "_import_av", lambda: None)
    with pytest.raises(AudioDecodeError) as err:
        load_audio(path, 48_000)
    assert err.value.reason == "truncated"
    windows = iter_windows(path, 48_000, 1.0)
    assert next(windows).start_s == 0.0  # the damage is past the first block: not seen yet
    with pytest.raises(AudioDecodeError) as err:
        list(windows)
    assert err.value.reason == "truncated"


@pytest.mark.parametrize("at,nbytes", [(0.3, 1), (0.6, 1), (0.6, 50)])
def test_damaged_flac_same_outcome_whole_and_windowed(tmp_path, at, nbytes):
    """Bytes flipped inside a real FLAC: libsndfile fails partway, FFmpeg may get through
    (ignoring a CRC, or dropping a frame, which the length check catches). Whatever happens,
    iter_windows and load_audio agree: the same reason, or the same samples."""
    pytest.importorskip("av")
    data = bytearray(esc50_files(1)[0].read_bytes())
    i = int(len(data) * at)
    data[i : i + nbytes] = bytes(b ^ 0x5A for b in data[i : i + nbytes])
    path = tmp_path / "damaged.flac"
    path.write_bytes(bytes(data))
    try:
        full = load_audio(path, 48_000)
    except AudioDecodeError as e:
        with pytest.raises(AudioDecodeError) as err:
            list(iter_windows(path, 48_000, 1.0))
        assert err.value.reason == e.reason
        return
    windows = list(iter_windows(path, 48_000, 1.0))
    assert [round(w.start_s * 48_000) for w in windows] == window_starts(len(full), 48_000)
    for w in windows:
        s = round(w.start_s * 48_000)
        np.testing.assert_array_equal(w.waveform, full[s : s + 48_000])


def test_header_only_is_truncated(tmp_path):
    path = tmp_path / "head.flac"
    path.write_bytes(esc50_files(1)[0].read_bytes()[:30])
    assert _reason(path) == "truncated"


def test_truncated_m4a(tmp_path):
    full = tmp_path / "t.m4a"
    _write_m4a(full, _sine(44100, 2.0)[None], 44100)
    data = full.read_bytes()
    path = tmp_path / "half.m4a"
    path.write_bytes(data[: len(data) // 2])
    assert _reason(path) == "truncated"


@pytest.mark.parametrize(
    "name,payload",
    [
        ("text.wav", b"hello, this is not audio at all\n" * 40),
        ("random.wav", b"\x00" + np.random.default_rng(0).bytes(4000)),
        ("random.mp3", b"\x00" + np.random.default_rng(1).bytes(4000)),
        ("image.wav", b"\x89PNG\r\n\x1a\n" + np.random.default_rng(2).bytes(1000)),
        ("text.flac", b"just some text" * 50),
        ("notes.m4a", b"just some text" * 50),
    ],
)
def test_not_audio(tmp_path, name, payload):
    path = tmp_path / name
    path.write_bytes(payload)
    assert _reason(path) == "not_audio"


def test_real_png_renamed_wav_is_not_audio(tmp_path):
    av = pytest.importorskip("av")
    png = tmp_path / "img.png"
    with av.open(str(png), "w") as c:  # a real, decodable PNG image
        s = c.add_stream("png", rate=1)
        s.width, s.height, s.pix_fmt = 8, 8, "rgb24"
        frame = av.VideoFrame.from_ndarray(np.zeros((8, 8, 3), np.uint8), format="rgb24")
        for packet in [*s.encode(frame), *s.encode(None)]:
            c.mux(packet)
    path = tmp_path / "img.wav"
    path.write_bytes(png.read_bytes())
    assert _reason(path) == "not_audio"


def test_unsupported_codec_in_wav(tmp_path):
    """A well-formed RIFF/WAVE whose format tag (0x1234) no decoder knows."""
    data = np.zeros(1000, np.int16).tobytes()
    fmt = struct.pack("<HHIIHH", 0x1234, 1, 8000, 16000, 2, 16)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data"
    riff += struct.pack("<I", len(data)) + data
    path = tmp_path / "odd.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    assert _reason(path) == "unsupported_codec"


def test_directory_is_unreadable(tmp_path):
    path = tmp_path / "folder.wav"
    path.mkdir()
    assert _reason(path) == "unreadable"


def test_permission_denied_is_unreadable(tmp_path, monkeypatch):
    """Tests run as root, which ignores chmod 000: simulate the EACCES that `open` raises."""
    path = tmp_path / "locked.wav"
    sf.write(path, _sine(16000, 0.1), 16000)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(audio, "open", denied, raising=False)  # shadows the builtin in audio
    assert _reason(path) == "unreadable"


def test_errors_are_typed_not_leaked(tmp_path):
    """Nothing but AudioDecodeError escapes, whatever the bytes."""
    rng = np.random.default_rng(3)
    real = esc50_files(1)[0].read_bytes()
    for i, blob in enumerate([real[:44], real[:1000], real[:-1000], rng.bytes(50), b"RIFF"]):
        path = tmp_path / f"b{i}.flac"
        path.write_bytes(blob)
        try:
            load_audio(path, 48_000)
        except AudioDecodeError:
            pass


def test_audio_info_is_a_frozen_record(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros((800, 2), np.float32), 8000)
    info = audio_info(path)
    assert info == AudioInfo(str(path), 0.1, 8000, 2, 800, "wav")
    with pytest.raises(AttributeError):
        info.frames = 1  # type: ignore[misc]


def test_bad_arguments():
    with pytest.raises(ValueError):
        load_audio(esc50_files(1)[0], 48_000, offset_s=-1.0)
    with pytest.raises(ValueError):
        next(iter_windows(esc50_files(1)[0], 48_000, 0.0))
