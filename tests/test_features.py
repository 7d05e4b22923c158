"""The torch front end must reproduce transformers' ClapFeatureExtractor within 1e-3 dB."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clapsearch.config import AudioConfig
from clapsearch.features import (
    clap_features,
    log_mel,
    mel_filterbank,
    pad_or_repeat,
    window_starts,
)
from tests.conftest import clotho_files, esc50_files

TOLERANCE_DB = 1e-3


def _reference_extractor(truncation: str):
    from clapsearch.synthetic_models import laion_feature_extractor

    return laion_feature_extractor(truncation)


def _load48k(path) -> np.ndarray:
    from clapsearch.audio import load_audio

    return load_audio(str(path), 48_000)


@pytest.mark.parametrize("truncation", ["rand_trunc", "fusion"])
def test_filterbank_matches_transformers(truncation):
    ref = _reference_extractor(truncation)
    expected = ref.mel_filters if truncation == "fusion" else ref.mel_filters_slaney
    ours = mel_filterbank(AudioConfig(truncation=truncation))
    assert ours.shape == expected.shape == (513, 64)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("truncation", ["rand_trunc", "fusion"])
def test_short_clips_match_reference_within_1e3_db(truncation):
    """5 s ESC-50 clips: repeatpad to 10 s, log-mel, same numbers as the reference."""
    ref = _reference_extractor(truncation)
    config = AudioConfig(truncation=truncation)
    clips = [_load48k(p) for p in esc50_files(3)]
    ours, is_longer = clap_features([torch.from_numpy(c) for c in clips], config)
    channels = 4 if truncation == "fusion" else 1
    assert ours.shape == (3, channels, 1001, 64)
    assert not is_longer.any()
    for clip, feat in zip(clips, ours):
        expected = ref(clip, sampling_rate=48_000, return_tensors="np")["input_features"][0]
        assert np.abs(feat.numpy() - expected).max() <= TOLERANCE_DB


def test_long_fusion_clip_matches_reference_with_its_crops_fixed(monkeypatch):
    """Long clips: the reference draws crop offsets at random; pinned to our rule, equal."""
    clip = _load48k(clotho_files()[0])
    assert len(clip) > 10 * 48_000
    monkeypatch.setattr(np.random, "choice", lambda r: r[len(r) // 2])
    expected = _reference_extractor("fusion")(clip, sampling_rate=48_000, return_tensors="np")
    monkeypatch.undo()
    ours, is_longer = clap_features([torch.from_numpy(clip)], AudioConfig(truncation="fusion"))
    assert bool(is_longer[0]) and bool(expected["is_longer"][0][0])
    assert np.abs(ours[0].numpy() - expected["input_features"][0]).max() <= TOLERANCE_DB


def test_features_do_not_depend_on_batch_or_run():
    """Determinism: a clip's features are the same alone, in a batch, and on every call."""
    config = AudioConfig(truncation="fusion")
    clips = [torch.from_numpy(_load48k(p)) for p in esc50_files(2)]
    long_clip = torch.from_numpy(_load48k(clotho_files()[0]))
    alone, _ = clap_features([clips[0]], config)
    batched, flags = clap_features([long_clip, clips[0], clips[1]], config)
    again, _ = clap_features([long_clip, clips[0], clips[1]], config)
    torch.testing.assert_close(alone[0], batched[1], rtol=0, atol=1e-4)
    assert torch.equal(batched, again)
    assert flags.tolist() == [True, False, False]


def test_quiet_clip_is_not_rescaled_by_loud_neighbour():
    """Whisper's batch-wide clamp would make a quiet clip depend on its batch; ours must not."""
    config = AudioConfig()
    quiet = torch.randn(48_000) * 1e-3
    loud = torch.randn(48_000) * 10
    alone = log_mel(pad_or_repeat(quiet, config.window_samples)[None], config)
    mixed = log_mel(
        torch.stack([pad_or_repeat(x, config.window_samples) for x in (quiet, loud)]), config
    )
    torch.testing.assert_close(alone[0], mixed[0])


def test_repeatpad_tiles_whole_copies_then_zero_pads():
    x = torch.arange(1, 4, dtype=torch.float32)  # 3 samples into 8
    assert pad_or_repeat(x, 8).tolist() == [1, 2, 3, 1, 2, 3, 0, 0]
    assert pad_or_repeat(x, 8, "repeat").tolist() == [1, 2, 3, 1, 2, 3, 1, 2]
    assert pad_or_repeat(x, 8, "pad").tolist() == [1, 2, 3, 0, 0, 0, 0, 0]
    assert pad_or_repeat(torch.arange(10.0), 4).tolist() == [0, 1, 2, 3]


def test_window_starts_cover_clip_without_a_mostly_padding_tail():
    assert window_starts(5, 10) == [0]
    assert window_starts(30, 10) == [0, 10, 20]
    assert window_starts(25, 10) == [0, 10, 15]  # last window flush with the end
    assert window_starts(25, 10, hop=5) == [0, 5, 10, 15]
    for n in (11, 99, 1000):
        starts = window_starts(n, 10, 7)
        assert starts == sorted(set(starts)) and starts[0] == 0
        assert max(s + 10 for s in starts) == n


def test_quiet_bands_beside_loud_ones_stay_within_1e3_db():
    """Every 10 s window of the Clotho clips: some have mel bins 80 dB under a loud low band,
    where a float32 FFT's rounding floor moves them by 3e-3 dB. This guards the float64 FFT."""
    ref = _reference_extractor("rand_trunc")
    config = AudioConfig()
    worst = 0.0
    for path in clotho_files():
        clip = _load48k(path)
        for start in range(0, len(clip) - 480_000 + 1, 480_000):
            window = clip[start : start + 480_000]
            expected = ref(window, sampling_rate=48_000, return_tensors="np")["input_features"][0]
            ours = clap_features([torch.from_numpy(window)], config)[0][0]
            worst = max(worst, float(np.abs(ours.numpy() - expected).max()))
    assert worst <= TOLERANCE_DB


def test_filterbank_rate_default_leaves_every_existing_front_end_unchanged():
    """`filterbank_rate` 0 (the default, and what configs saved before it existed read as)
    means the decode rate: filters and features are bit-identical to naming that rate."""
    from clapsearch.config import from_dict, to_dict

    clip = torch.from_numpy(_load48k(esc50_files(1)[0]))[None]
    for truncation in ("rand_trunc", "fusion"):
        base = AudioConfig(truncation=truncation)
        legacy = to_dict(base)
        del legacy["filterbank_rate"]
        assert from_dict(AudioConfig, legacy) == base
        explicit = AudioConfig(truncation=truncation, filterbank_rate=48_000)
        assert np.array_equal(mel_filterbank(base), mel_filterbank(explicit))
        assert torch.equal(log_mel(clip, base), log_mel(clip, explicit))


def test_filterbank_rate_places_bins_at_that_rate():
    """MS-CLAP 2023: 44.1 kHz STFT, filters built for 32 kHz (librosa's slaney filters, as
    torchlibrosa builds them), not for 44.1 kHz."""
    from transformers.audio_utils import mel_filter_bank

    config = AudioConfig(
        sample_rate=44_100, window_s=7, hop_length=320, filterbank_rate=32_000, f_max=14_000
    )
    expected = mel_filter_bank(
        num_frequency_bins=513,
        num_mel_filters=64,
        min_frequency=50,
        max_frequency=14_000,
        sampling_rate=32_000,
        norm="slaney",
        mel_scale="slaney",
    )
    np.testing.assert_allclose(mel_filterbank(config), expected, rtol=0, atol=1e-12)
    at_decode_rate = mel_filterbank(AudioConfig(sample_rate=44_100, hop_length=320))
    assert np.abs(mel_filterbank(config) - at_decode_rate).max() > 1e-3
    librosa = pytest.importorskip("librosa")
    reference = librosa.filters.mel(sr=32_000, n_fft=1024, n_mels=64, fmin=50, fmax=14_000)
    np.testing.assert_allclose(mel_filterbank(config).T, reference, rtol=0, atol=1e-6)


@pytest.mark.parametrize("rate", [-32_000, 10**9])
def test_filterbank_rate_is_bounded_like_the_sample_rate(rate):
    from clapsearch.errors import ConfigError

    with pytest.raises(ConfigError, match="filterbank_rate"):
        AudioConfig(filterbank_rate=rate)
    assert AudioConfig(sample_rate=44_100, filterbank_rate=32_000).mel_rate == 32_000
