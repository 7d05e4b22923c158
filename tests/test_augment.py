"""trainer.augment: every degradation keeps shape and dtype, is a function of its seed, and
does what it says (band limit removes content above the new Nyquist, quantisation leaves
2**bits levels, codecs stay aligned with the input)."""

from __future__ import annotations

import numpy as np
import pytest

from trainer import augment as A

SR = 16_000


def _noise(n: int = SR * 2, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 0.1).astype(np.float32)


def _band_energy(x: np.ndarray, sr: int, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.shape[0], 1 / sr)
    return float(spec[(freqs >= lo) & (freqs < hi)].sum())


@pytest.mark.parametrize("low", [8000, 11025])
def test_band_limit_removes_content_above_the_new_nyquist(low):
    x = _noise()
    y = A.resample_through(x, SR, low)
    assert y.shape == x.shape and y.dtype == np.float32
    nyq = low / 2
    above_in = _band_energy(x, SR, nyq * 1.05, SR / 2)
    above_out = _band_energy(y, SR, nyq * 1.05, SR / 2)
    below_in = _band_energy(x, SR, 100, nyq * 0.9)
    below_out = _band_energy(y, SR, 100, nyq * 0.9)
    assert above_out < 1e-3 * above_in  # at least 30 dB down
    assert below_out == pytest.approx(below_in, rel=0.05)  # the passband survives


def test_band_limit_at_or_above_the_model_rate_is_identity():
    x = _noise()
    rng = np.random.default_rng(0)
    assert np.array_equal(A.band_limit(x, SR, rng, rates=(16000, 22050, 32000)), x)


def test_quantise_levels():
    x = np.linspace(-1, 1, 10_000, dtype=np.float32)
    assert len(np.unique(A.quantise(x, 8))) <= 2**8 + 1
    assert len(np.unique(A.quantise(x, 12))) > 2**10
    mu = A.quantise(x, 8, mu_law=True)
    assert len(np.unique(mu)) <= 2**8 + 1
    # mu-law keeps more levels near zero than linear 8 bit
    small = np.abs(x) < 0.05
    assert len(np.unique(mu[small])) > len(np.unique(A.quantise(x, 8)[small]))


@pytest.mark.parametrize("codec", A.CODECS)
def test_codec_round_trip_is_aligned(codec):
    t = np.arange(SR * 2) / SR
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y = A.codec_round_trip(x, SR, codec, 64)
    assert y.shape == x.shape and y.dtype == np.float32
    mid = slice(2000, -2000)
    assert np.corrcoef(x[mid], y[mid])[0, 1] > 0.99  # no codec delay left over


def test_reverb_adds_a_tail_and_keeps_level():
    x = np.zeros(SR, np.float32)
    x[1000:1100] = 1.0
    y = A.reverb(x, SR, np.random.default_rng(0))
    assert y.shape == x.shape
    assert np.abs(y[3000:]).max() > 1e-3  # energy after the click ended
    assert np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=1e-3)


def test_background_sits_below_the_clip():
    x, other = _noise(seed=1), _noise(seed=2) * 10
    y = A.add_background(x, other, np.random.default_rng(0), (20.0, 20.0))
    residual = y - x
    ratio_db = 20 * np.log10(np.sqrt(np.mean(x**2)) / np.sqrt(np.mean(residual**2)))
    assert ratio_db == pytest.approx(20.0, abs=0.01)


def test_apply_is_deterministic_with_a_seed_and_changes_the_wave():
    cfg = A.AugmentConfig(
        reverb_p=1, background_p=1, band_limit_p=1, codec_p=1, bit_depth_p=1, codecs=("opus",)
    )
    x = _noise()

    def run(seed):
        rng = np.random.default_rng(seed)
        return A.apply(x.copy(), SR, rng, cfg, lambda: _noise(seed=5))

    a, b, c = run(3), run(3), run(4)
    assert a.shape == x.shape and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.allclose(a, x)


def test_inactive_config_leaves_the_wave_alone():
    x = _noise()
    assert not A.AugmentConfig().active
    assert np.array_equal(A.apply(x.copy(), SR, np.random.default_rng(0), A.AugmentConfig()), x)


def test_train_dataset_uses_the_augment_config(tmp_path):
    import soundfile as sf

    from clapsearch.config import AudioConfig
    from trainer.config import DataConfig
    from trainer.data import Example, TrainDataset

    paths = []
    for k in range(3):
        p = tmp_path / f"{k}.wav"
        sf.write(p, _noise(SR, seed=k), SR)
        paths.append(str(p))
    examples = [Example(p, ("a sound",)) for p in paths]
    front = AudioConfig(sample_rate=SR, window_s=1.0)
    plain = TrainDataset(examples, DataConfig(), front, seed=0)
    data = DataConfig(augment=A.AugmentConfig(band_limit_p=1.0, band_rates=(8000,)))
    aug = TrainDataset(examples, data, front, seed=0)
    w0 = plain[1].wave
    w1 = aug[1].wave
    assert np.array_equal(aug[1].wave, w1)  # same key, same augmentation
    assert _band_energy(w1, SR, 4200, 8000) < 1e-3 * _band_energy(w0, SR, 4200, 8000)
