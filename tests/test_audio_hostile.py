"""Decoding whatever a file or a model config claims: non-regular files refused unopened, lying
headers refused or streamed in bounded memory, a duration limit, sane front-end sizes."""

from __future__ import annotations

import json
import os
import shutil
import threading
import tracemalloc

import numpy as np
import pytest

from clapsearch import audio
from clapsearch.audio import audio_info, iter_windows, load_audio
from clapsearch.config import AudioConfig
from clapsearch.errors import AudioDecodeError, ConfigError, ModelLoadError, UsageError
from tests import hostile
from tests.conftest import esc50_files

DECODERS = {
    "load_audio": lambda p: load_audio(p, 48_000),
    "iter_windows": lambda p: next(iter_windows(p, 48_000, 1.0)),
    "audio_info": audio_info,
}


def _within(seconds: float, fn, *args):
    """fn(*args) in a thread; fails the test if it has not returned in time (a blocked open
    of a FIFO never returns)."""
    out: dict = {}

    def target():
        try:
            out["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            out["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        return "timeout"
    if "error" in out:
        raise out["error"]
    return out["value"]


@pytest.mark.parametrize("how", sorted(DECODERS))
def test_fifo_is_refused_without_being_opened(tmp_path, how):
    path = hostile.fifo(tmp_path / "x.wav")
    try:
        with pytest.raises(AudioDecodeError) as err:
            assert _within(5, DECODERS[how], str(path)) != "timeout", "blocked opening a FIFO"
        assert err.value.reason == "unreadable"
        assert "FIFO" in str(err.value)
    finally:  # unblock a reader stuck in open() (before the fix), so the thread can end
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass


def test_device_is_refused_without_being_read():
    with pytest.raises(AudioDecodeError) as err:
        _within(5, load_audio, "/dev/zero")
    assert err.value.reason == "unreadable" and "character device" in str(err.value)


def test_symlink_loop_says_so(tmp_path):
    links = hostile.symlink_loops(tmp_path)
    for key in ("self", "a"):
        with pytest.raises(AudioDecodeError) as err:
            load_audio(links[key])
        assert err.value.reason == "unreadable" and "loop of symbolic links" in str(err.value)


@pytest.mark.parametrize("how", sorted(DECODERS))
@pytest.mark.parametrize("rate", [1, 999, 4_000_000])
def test_implausible_sample_rate_is_not_audio(tmp_path, how, rate):
    path = hostile.lying_rate_wav(tmp_path / "liar.wav", rate=rate)
    with pytest.raises(AudioDecodeError) as err:
        DECODERS[how](path)
    assert err.value.reason == "not_audio"
    assert f"sample rate of {rate} Hz" in str(err.value)


def test_upsampled_stream_memory_is_bounded_in_output_samples(tmp_path):
    """The lowest accepted rate (1 kHz) upsampled to 48 kHz: a block of 64 Ki source frames
    would be 3.1 M samples (12.6 MB) at once. Blocks are bounded in output samples, so three
    1 s windows cost about three windows."""
    path = hostile.lying_rate_wav(tmp_path / "slow.wav", rate=audio.MIN_SAMPLE_RATE, nbytes=400_000)
    tracemalloc.start()
    try:
        windows = iter_windows(path, 48_000, 1.0)
        got = [next(windows) for _ in range(3)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [w.start_s for w in got] == [0.0, 1.0, 2.0]
    assert peak < 4e6, f"peak {peak / 1e6:.1f} MB for three 1 s windows"


def test_flac_claiming_200_hours_fails_as_truncated_without_allocating(tmp_path):
    path = hostile.lying_length_flac(tmp_path / "big.flac", esc50_files(1)[0])
    tracemalloc.start()
    try:
        for how in ("load_audio", "iter_windows"):
            with pytest.raises(AudioDecodeError) as err:
                DECODERS[how](path)
            assert err.value.reason == "truncated", how
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20e6


def test_duration_limit_from_the_header(monkeypatch):
    path = esc50_files(1)[0]  # 5 s
    monkeypatch.setenv(audio.MAX_DURATION_ENV, "2")
    for how in ("load_audio", "iter_windows"):
        with pytest.raises(AudioDecodeError) as err:
            DECODERS[how](path)
        assert err.value.reason == "too_long", how
        assert audio.MAX_DURATION_ENV in str(err.value)
    monkeypatch.setenv(audio.MAX_DURATION_ENV, "6")
    assert len(load_audio(path)) == 5 * 44_100


def test_duration_limit_while_decoding_a_header_without_length(tmp_path, monkeypatch):
    """A FLAC whose STREAMINFO has no total: nothing to check up front, so the limit is
    enforced on what is decoded."""
    path = hostile.lying_length_flac(tmp_path / "nolength.flac", esc50_files(1)[0], 0)
    assert audio_info(path).frames == 5 * 44_100  # counted, since the header cannot say
    monkeypatch.setenv(audio.MAX_DURATION_ENV, "2")
    for how in sorted(DECODERS):
        with pytest.raises(AudioDecodeError) as err:
            DECODERS[how](path) if how != "iter_windows" else list(iter_windows(path, 48_000, 1))
        assert err.value.reason == "too_long", how


def test_duration_limit_must_be_a_number(monkeypatch):
    monkeypatch.setenv(audio.MAX_DURATION_ENV, "a day")
    with pytest.raises(UsageError, match="positive number of seconds"):
        load_audio(esc50_files(1)[0])


@pytest.mark.parametrize(
    "field,value",
    [("window_s", 100_000.0), ("sample_rate", 10**9), ("n_mels", 100_000), ("window_s", 0.0)],
)
def test_audio_config_sizes_are_bounded(field, value):
    with pytest.raises(ConfigError, match=field):
        AudioConfig(**{field: value})
    AudioConfig(window_s=30.0, sample_rate=16_000)  # real front ends pass


def test_hostile_transformers_model_config_fails_at_load(tmp_path, tiny_clap_dir):
    from clapsearch.loading import load_embedder

    bad = hostile.hostile_model_dir(tiny_clap_dir, tmp_path / "bad", max_length_s=100_000)
    with pytest.raises(ModelLoadError) as err:
        load_embedder(str(bad), device="cpu", precision="fp32")
    message = str(err.value)
    assert str(bad) in message and "window_s = 100000" in message and "\n" not in message


def test_hostile_native_model_config_fails_at_load(tmp_path, tiny_native_dir):
    from clapsearch.loading import load_embedder

    bad = tmp_path / "bad-native"
    shutil.copytree(tiny_native_dir, bad)
    meta = json.loads((bad / "clapsearch.json").read_text())
    meta["model"]["audio"]["window_s"] = 100_000
    (bad / "clapsearch.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="window_s = 100000"):
        load_embedder(str(bad), device="cpu", precision="fp32")


def test_hostile_fixtures_are_what_they_say(tmp_path):
    """The shared fixtures themselves (the server's upload tests reuse them)."""
    liar = hostile.lying_rate_wav(tmp_path / "l.wav")
    assert liar.stat().st_size < 16_100
    import soundfile as sf

    info = sf.info(str(liar))
    assert info.samplerate == 1 and info.frames == 16_000
    odd = hostile.non_utf8_copy(tmp_path, esc50_files(1)[0])
    assert os.fsencode(odd).endswith(hostile.NON_UTF8_NAME)
    assert np.allclose(load_audio(odd), load_audio(esc50_files(1)[0]))
