"""Robustness augmentation: what real libraries do to audio before clapsearch hears it.

Each function maps a mono float32 waveform `(n,)` at `sample_rate` to another `(n,)` and
draws its randomness only from the `rng` it is given, so the trainer's rule (an example's
augmentation is a pure function of seed, epoch and index) holds:

- `band_limit`: resample to a lower rate (8, 11.025, 16, 22.05 or 32 kHz, those below the
  model's rate) and back: nothing is left above the lower rate's Nyquist frequency, as in a
  telephone recording or an old low-rate file;
- `bit_depth`: quantise to 8-12 bits (with 8-bit mu-law as an option), as old WAVs;
- `codec`: an MP3, Opus or AAC round trip through PyAV at a low bit rate;
- `reverb`: convolve with a synthetic room response (exponentially decaying noise, RT60
  0.15-1.2 s) mixed with the dry sound;
- `add_background`: another clip underneath at 5-30 dB below (the caption is unchanged:
  the background is meant to be heard as noise, not as an event);
- gain, time shift and two-clip mixtures with joined captions stay in `trainer.data`.

`apply(wave, sample_rate, rng, cfg, background)` runs the chain with the probabilities of an
`AugmentConfig` (all zero by default: augmentation is opt-in per training config).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soxr

BAND_RATES = (8000, 11025, 16000, 22050, 32000)
CODECS = ("mp3", "opus", "aac")
# Bit rates (kbit/s) a codec is drawn at: the low ones real libraries and phones use.
CODEC_KBPS = {"mp3": (32, 48, 64, 96, 128), "opus": (12, 16, 24, 32, 48), "aac": (24, 32, 48, 64)}
_ENCODERS = {"mp3": ("mp3", "libmp3lame"), "opus": ("ogg", "libopus"), "aac": ("adts", "aac")}
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
# FFmpeg's AAC encoder puts 1024 priming samples first and ADTS has no field to skip them
# (MP3's LAME header and Ogg Opus's pre-skip are honoured by the decoders).
_PRIMING = {"aac": 1024}


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities (0 = never) of each degradation, applied in this order: reverb,
    background, band limit, codec, bit depth. `band_rates` are the rates band limiting
    draws from (only those below the model's rate take effect); `background_db`: how far
    below the clip the background sits (min, max)."""

    reverb_p: float = 0.0
    background_p: float = 0.0
    band_limit_p: float = 0.0
    codec_p: float = 0.0
    bit_depth_p: float = 0.0
    band_rates: tuple[int, ...] = BAND_RATES
    codecs: tuple[str, ...] = CODECS
    background_db: tuple[float, float] = (5.0, 30.0)

    @property
    def active(self) -> bool:
        return (
            max(self.reverb_p, self.background_p, self.band_limit_p, self.codec_p, self.bit_depth_p)
            > 0
        )


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y, np.float32)
    if y.shape[0] >= n:
        return y[:n]
    return np.pad(y, (0, n - y.shape[0]))


def resample_through(wave: np.ndarray, sample_rate: int, low_rate: int) -> np.ndarray:
    """Down to `low_rate` and back up (soxr's anti-alias filter removes what lies above
    `low_rate / 2`); same length as the input."""
    if low_rate >= sample_rate:
        return wave.astype(np.float32, copy=True)
    down = soxr.resample(wave, sample_rate, low_rate, quality="HQ")
    return _fit(soxr.resample(down, low_rate, sample_rate, quality="HQ"), wave.shape[0])


def band_limit(
    wave: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    rates: tuple[int, ...] = BAND_RATES,
) -> np.ndarray:
    """A rate drawn from the `rates` below `sample_rate` (unchanged if none is below)."""
    below = [r for r in rates if r < sample_rate]
    if not below:
        return wave
    return resample_through(wave, sample_rate, int(below[int(rng.integers(len(below)))]))


def quantise(wave: np.ndarray, bits: int, mu_law: bool = False) -> np.ndarray:
    """Round to `bits`-bit integer levels (mu-law companded when `mu_law`), back to float."""
    x = np.clip(wave, -1.0, 1.0)
    levels = float(2 ** (bits - 1))
    if mu_law:
        mu = 255.0
        y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
        y = np.round(y * levels) / levels
        return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)
    return (np.round(x * levels) / levels).astype(np.float32)


def bit_depth(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """8-bit (linear or mu-law), 10- or 12-bit quantisation."""
    choice = int(rng.integers(4))
    return quantise(wave, (8, 8, 10, 12)[choice], mu_law=choice == 1)


def encode(wave: np.ndarray, sample_rate: int, codec: str, kbps: int) -> tuple[bytes, int]:
    """Mono float32 -> (the bytes of an `.mp3`, `.ogg` (Opus) or `.aac` (ADTS) file, its
    rate). Opus only runs at 8/12/16/24/48 kHz, so other rates go through the next one up."""
    import av

    fmt, encoder = _ENCODERS[codec]
    rate = sample_rate
    x = wave
    if codec == "opus" and rate not in _OPUS_RATES:
        rate = next((r for r in _OPUS_RATES if r >= sample_rate), 48000)
        x = soxr.resample(wave, sample_rate, rate)
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(encoder, rate=rate, layout="mono")
        stream.bit_rate = kbps * 1000
        frame = av.AudioFrame.from_ndarray(
            np.clip(x, -1, 1).astype(np.float32)[None, :], format="flt", layout="mono"
        )
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue(), rate


def codec_round_trip(wave: np.ndarray, sample_rate: int, codec: str, kbps: int) -> np.ndarray:
    """Encode with PyAV (FFmpeg) at `kbps` and decode back; same length as the input."""
    import av

    data, rate = encode(wave, sample_rate, codec, kbps)
    fmt = _ENCODERS[codec][0]
    buf = io.BytesIO(data)
    chunks = []
    with av.open(buf, "r", format=fmt) as inp:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in inp.decode(audio=0):
            for f in resampler.resample(frame):
                chunks.append(f.to_ndarray().reshape(-1))
    y = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    y = y[_PRIMING.get(codec, 0) :]
    if rate != sample_rate:
        y = soxr.resample(y, rate, sample_rate)
    return _fit(y, wave.shape[0])


def codec(
    wave: np.ndarray, sample_rate: int, rng: np.random.Generator, codecs: tuple[str, ...] = CODECS
) -> np.ndarray:
    name = codecs[int(rng.integers(len(codecs)))]
    rates = CODEC_KBPS[name]
    return codec_round_trip(wave, sample_rate, name, int(rates[int(rng.integers(len(rates)))]))


def room_response(sample_rate: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic impulse response: unit direct path, then Gaussian noise decaying by 60 dB
    over `rt60` seconds after a 2-10 ms pre-delay; energy-normalised."""
    n = int(rt60 * sample_rate)
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)
    pre = int(rng.uniform(0.002, 0.010) * sample_rate)
    h = np.concatenate([[1.0], np.zeros(pre), 0.3 * tail])
    return (h / np.sqrt(np.sum(h**2))).astype(np.float32)


def reverb(wave: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a `room_response` (RT60 0.15-1.2 s), wet/dry mixed, RMS kept."""
    h = room_response(sample_rate, float(rng.uniform(0.15, 1.2)), rng)
    n = wave.shape[0]
    size = 1 << int(np.ceil(np.log2(n + h.shape[0])))
    wet = np.fft.irfft(np.fft.rfft(wave, size) * np.fft.rfft(h, size), size)[:n]
    dry_mix = float(rng.uniform(0.3, 0.8))
    y = dry_mix * wave + (1 - dry_mix) * wet
    rms_in = float(np.sqrt(np.mean(wave**2)) + 1e-8)
    rms_out = float(np.sqrt(np.mean(y**2)) + 1e-8)
    return (y * (rms_in / rms_out)).astype(np.float32)


def add_background(
    wave: np.ndarray, other: np.ndarray, rng: np.random.Generator, db: tuple[float, float]
) -> np.ndarray:
    """`other` mixed in `db` (drawn in the range) below `wave`'s RMS."""
    other = _fit(other, wave.shape[0])
    rms_a = float(np.sqrt(np.mean(wave**2)) + 1e-8)
    rms_b = float(np.sqrt(np.mean(other**2)) + 1e-8)
    gain = rms_a / rms_b * 10 ** (-float(rng.uniform(*db)) / 20)
    return (wave + other * np.float32(gain)).astype(np.float32)


def apply(
    wave: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    background: Callable[[], np.ndarray] | None = None,
) -> np.ndarray:
    """The chain, each step taken with its probability; `background()` gives another clip.

    Every probability is drawn whether or not its step runs, so changing one step's
    parameters never changes which other steps an example gets."""
    draws = rng.random(5)
    if draws[0] < cfg.reverb_p:
        wave = reverb(wave, sample_rate, rng)
    if draws[1] < cfg.background_p and background is not None:
        wave = add_background(wave, background(), rng, cfg.background_db)
    if draws[2] < cfg.band_limit_p:
        wave = band_limit(wave, sample_rate, rng, cfg.band_rates)
    if draws[3] < cfg.codec_p:
        wave = codec(wave, sample_rate, rng, cfg.codecs)
    if draws[4] < cfg.bit_depth_p:
        wave = bit_depth(wave, rng)
    return wave.astype(np.float32, copy=False)
